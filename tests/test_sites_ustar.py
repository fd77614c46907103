"""u* threshold by the moving point test: known thresholds, REddyProc's published DE-Tha estimate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fluxcube.sites.common import StepError
from fluxcube.sites.synthetic import synthetic_site
from fluxcube.sites.timestamps import read_halfhourly
from fluxcube.sites.ustar import low_turbulence, season_of, ustar_threshold


def _night(df) -> np.ndarray:
    return df["Rg"].to_numpy() < 10


def test_known_threshold_recovered() -> None:
    df = synthetic_site(ustar_threshold=0.3, seed=7)
    res = ustar_threshold(
        df.index, df["NEE"].to_numpy(), df["Ustar"].to_numpy(), df["Tair"].to_numpy(), _night(df), n_boot=30
    )
    row = res.annual.loc[2001]
    assert row.threshold == pytest.approx(0.3, abs=0.04)
    assert row.p05 <= row.p50 <= row.p95
    assert row.p05 - 0.02 <= 0.3 <= row.p95 + 0.02
    assert set(res.seasonal.season) == {"DJF", "MAM", "JJA", "SON"}
    assert np.allclose(res.per_record(df.index[:3]), row.threshold)


def test_threshold_moves_with_the_truth() -> None:
    found = []
    for true in (0.2, 0.35):
        df = synthetic_site(ustar_threshold=true, seed=8)
        res = ustar_threshold(
            df.index,
            df["NEE"].to_numpy(),
            df["Ustar"].to_numpy(),
            df["Tair"].to_numpy(),
            _night(df),
            n_boot=0,
        )
        found.append(res.annual.threshold.iloc[0])
    assert found[0] < found[1]
    assert found == pytest.approx([0.2, 0.35], abs=0.05)


def test_too_few_records_is_a_clear_error() -> None:
    df = synthetic_site(days=10, seed=9)
    with pytest.raises(StepError, match="too few night-time records"):
        ustar_threshold(
            df.index,
            df["NEE"].to_numpy(),
            df["Ustar"].to_numpy(),
            df["Tair"].to_numpy(),
            _night(df),
            n_boot=5,
        )
    with pytest.raises(StepError, match="no night-time records"):
        ustar_threshold(
            df.index,
            df["NEE"].to_numpy(),
            df["Ustar"].to_numpy(),
            df["Tair"].to_numpy(),
            np.zeros(len(df), bool),
        )


def test_low_turbulence_filter() -> None:
    u = np.array([0.1, 0.5, np.nan, 0.1])
    night = np.array([True, True, True, False])
    np.testing.assert_array_equal(low_turbulence(u, night, 0.3), [True, False, True, False])


def test_detha_against_reddyproc_published(sites_dir: Path) -> None:
    """REddyProc's useCase vignette (DE-Tha 1998): threshold 0.416 m s-1, bootstrap 5/50/95 %
    0.379 / 0.451 / 0.611. With REddyProc's settings of the moving point test (7 temperature classes,
    95 % of the next 10 classes, two classes in a row) each estimate must lie inside the other's
    5-95 % bootstrap range; Papale's defaults (99 % of all higher classes) give lower thresholds."""
    df = read_halfhourly(sites_dir / "halfhourly" / "Example_DETha98.txt")
    args = (df.index, df["NEE"].to_numpy(), df["Ustar"].to_numpy(), df["Tair"].to_numpy(), _night(df))
    res = ustar_threshold(*args, n_temp=7, plateau=0.95, forward=10, consecutive=2, max_corr=0.5, n_boot=100)
    row = res.annual.loc[1998]
    assert row.p05 <= 0.416 <= row.p95
    assert 0.379 <= row.p50 <= 0.611
    papale = ustar_threshold(*args, n_boot=0).annual.loc[1998]
    assert 0.3 < papale.threshold < 0.416


def test_reddyproc_seasons() -> None:
    """REddyProc's usCreateSeasonFactorMonth: December joins the next January-February; the record's first
    January-February is a season of its own; a season's year is that of the middle of its records."""
    time = pd.date_range("2004-01-01", "2005-12-31 23:30", freq="30min")
    key, index, year = season_of(time, "reddyproc")
    at = {
        d: np.flatnonzero(time == pd.Timestamp(d))[0]
        for d in ("2004-01-15", "2004-12-15", "2005-01-15", "2005-06-15", "2005-12-15")
    }
    assert key[at["2004-12-15"]] == key[at["2005-01-15"]] != key[at["2004-01-15"]]
    assert year[at["2004-12-15"]] == 2005 and year[at["2004-01-15"]] == 2004
    assert index[at["2005-06-15"]] == 2 and year[at["2005-12-15"]] == 2005  # lone last December
    assert len(np.unique(key)) == 1 + 4 + 4  # Jan-Feb 2004, MAM..DJF(04/05), MAM..SON 2005 + Dec 2005
    cal_key, _, cal_year = season_of(time, "calendar")
    assert cal_key[at["2004-12-15"]] == cal_key[at["2004-01-15"]] and cal_year[at["2004-12-15"]] == 2004
    with pytest.raises(ValueError, match="season scheme"):
        season_of(time, "meteorological")


def test_seasonal_thresholds() -> None:
    """Summer night NEE with a threshold of 0.4 m s-1, the rest of the year 0.2: the seasonal map finds
    both, the annual threshold is the larger one (maximum over seasons), and the bootstrap scenarios
    bracket each season's estimate."""
    low, high = (synthetic_site(ustar_threshold=t, seed=21) for t in (0.2, 0.4))
    summer = low.index.month.isin([6, 7, 8])
    df = low.copy()
    df.loc[summer, "NEE"] = high.loc[summer, "NEE"]
    res = ustar_threshold(
        df.index, df["NEE"].to_numpy(), df["Ustar"].to_numpy(), df["Tair"].to_numpy(), _night(df), n_boot=30
    )
    seasons = res.seasonal.set_index("season")
    assert seasons.loc["JJA", "threshold"] == pytest.approx(0.4, abs=0.06)
    assert seasons.loc["MAM", "threshold"] == pytest.approx(0.2, abs=0.06)
    assert res.annual.loc[2001, "threshold"] == pytest.approx(res.seasonal.threshold.max())
    ok = res.seasonal.dropna()
    assert (ok.p05 <= ok.p50).all() and (ok.p50 <= ok.p95).all()
    per = res.per_record(df.index, seasonal=True)
    assert per[summer] == pytest.approx(seasons.loc["JJA", "threshold"])
    assert per[df.index.month == 4] == pytest.approx(seasons.loc["MAM", "threshold"])
    assert np.allclose(res.per_record(df.index), res.annual.loc[2001, "threshold"])
