"""process_site: every product on a real site-year, and per-step failures that leave the rest running."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fluxcube.sites import process_site, read_halfhourly
from fluxcube.sites.pipeline import monthly_products
from fluxcube.sites.synthetic import synthetic_site

DE_THA = (50.9636, 13.5669, 1.0)


@pytest.fixture(scope="module")
def detha(data_dir: Path):
    df = read_halfhourly(data_dir / "sites" / "halfhourly" / "Example_DETha98.txt")
    return process_site(df, *DE_THA, ustar_bootstrap=20)


def test_detha_all_steps(detha) -> None:
    hh, daily = detha
    assert set(hh.attrs["steps"].values()) == {"ok"}
    assert np.isfinite(hh["NEE_f"]).all() and set(np.unique(hh["NEE_fqc"])) <= {0, 1, 2, 3}
    assert (hh.loc[hh["NEE_fqc"] == 0, "NEE_f"] == hh.loc[hh["NEE_fqc"] == 0, "NEE"]).all()
    assert hh.attrs["units"]["NEE_f"] == "umol m-2 s-1" and daily.attrs["units"]["NEE"] == "g m-2 d-1"
    assert len(daily) == 365 and daily["NEE"].notna().all()
    assert (daily["NEE_unc"] > 0).all() and daily["NEE_frac_filled"].between(0, 1).all()
    assert 0.3 < hh.attrs["ustar"]["threshold"][0] < 0.45


def test_detha_gpp_against_reddyproc_published(detha) -> None:
    """REddyProc's useCase vignette: mean night-time-partitioned GPP of DE-Tha 1998 is 5.01 / 5.15 /
    5.08 umol m-2 s-1 for u* thresholds 0.38 / 0.45 / 0.61 m s-1 (its 5/50/95 % scenarios)."""
    hh, daily = detha
    gpp = hh["GPP_NT"].mean()
    assert 4.8 < gpp < 5.4
    # day-time and night-time methods agree within 10 % on the annual sums (Lasslop et al. 2010)
    assert daily["GPP_DT"].sum() == pytest.approx(daily["GPP_NT"].sum(), rel=0.1)
    assert daily["Reco_DT"].sum() == pytest.approx(daily["Reco_NT"].sum(), rel=0.1)
    # GPP - Reco = -NEE for the annual sums of the night-time method (g C m-2 yr-1)
    assert daily["GPP_NT"].sum() - daily["Reco_NT"].sum() == pytest.approx(-daily["NEE"].sum(), rel=1e-6)


def test_missing_radiation_and_ustar_fail_gracefully() -> None:
    df = synthetic_site(days=120, seed=13).drop(columns=["Rg", "Ustar", "Reco_true", "GPP_true"])
    hh, daily = process_site(df, 50.96, 13.57, 1.0)
    steps = hh.attrs["steps"]
    assert steps["radiation"].startswith("failed: no Rg")
    assert "no Ustar" in steps["ustar"]
    assert "Rg" in steps["partition_daytime"]
    assert steps["gapfill"] == "ok" and steps["partition_nighttime"] == "ok" and steps["daily"] == "ok"
    assert np.isfinite(hh["NEE_f"]).all() and daily["GPP_NT"].notna().all()


def test_short_record_and_no_night_data() -> None:
    df = synthetic_site(days=12, seed=14)
    hh, daily = process_site(df, 50.96, 13.57, 1.0, ustar_bootstrap=5)
    assert "too few night-time records" in hh.attrs["steps"]["ustar"]
    assert hh.attrs["steps"]["gapfill"] == "ok" and len(daily) == 12
    df.loc[df["Rg"] < 10, "NEE"] = np.nan  # no night-time flux at all
    hh, _ = process_site(df, 50.96, 13.57, 1.0, ustar_bootstrap=5)
    steps = hh.attrs["steps"]
    assert "no measured night-time NEE" in steps["partition_nighttime"]
    assert "night-time" in steps["partition_daytime"]
    assert "no night-time records" in steps["ustar"]


def test_ustar_scenarios(detha, data_dir: Path) -> None:
    """U05/U50/U95: NEE filtered with the 5/50/95 % bootstrap thresholds, recomputed here from the QC'd
    NEE, u* and the night mask; daily sums recomputed by reshaping to days x 48 half-hours."""
    hh, daily = detha
    assert hh.attrs["steps"]["ustar_scenarios"] == "ok"
    thr = [float(hh[f"ustar_threshold_U{p}"].iloc[0]) for p in ("05", "50", "95")]
    row = hh.attrs["ustar"]
    assert thr == pytest.approx([row["p05"][0], row["p50"][0], row["p95"][0]]) and thr[0] <= thr[1] <= thr[2]
    raw = read_halfhourly(data_dir / "sites" / "halfhourly" / "Example_DETha98.txt")["NEE"].to_numpy()
    qc_ok = np.isfinite(raw) & (hh["NEE_flag"].to_numpy() < 2)  # plausible, not a spike
    night, u = hh["night"].to_numpy(bool), hh["Ustar"].to_numpy()
    kept = []
    for tag, t in zip(("U05", "U50", "U95"), thr, strict=True):
        with np.errstate(invalid="ignore"):
            expected = qc_ok & ~(night & ~(u >= t))
        np.testing.assert_array_equal(hh[f"NEE_{tag}_fqc"].to_numpy() == 0, expected)
        assert np.isfinite(hh[f"NEE_{tag}_f"]).all()
        # REddyProc's useCase vignette: mean GPP 5.01 / 5.15 / 5.08 umol m-2 s-1 for its U05 / U50 / U95
        assert 4.8 < hh[f"GPP_{tag}_NT"].mean() < 5.4
        days = hh[f"NEE_{tag}_f"].to_numpy().reshape(-1, 48).sum(axis=1) * 1800 * 12.011e-6
        np.testing.assert_allclose(daily[f"NEE_{tag}"].to_numpy(), days, rtol=1e-12)
        kept.append(int(expected.sum()))
        # day-time partitioning of each scenario (modelled GPP and Reco, as the main GPP_DT): defined
        # almost everywhere, no GPP in the dark, annual sums within 10 % of the scenario's night-time
        # ones for GPP (Lasslop et al. 2010), 15 % for Reco (U95: 1180 vs 1312 g C m-2)
        gpp = hh[f"GPP_{tag}_DT"].to_numpy()
        assert np.isfinite(gpp).mean() > 0.95 and np.isfinite(hh[f"Reco_{tag}_DT"]).mean() > 0.95
        assert np.nanmax(np.abs(gpp[hh["Rg_f"].to_numpy() <= 0])) < 1e-9
        assert daily[f"GPP_{tag}_DT"].sum() == pytest.approx(daily[f"GPP_{tag}_NT"].sum(), rel=0.1)
        assert daily[f"Reco_{tag}_DT"].sum() == pytest.approx(daily[f"Reco_{tag}_NT"].sum(), rel=0.15)
    assert kept[0] >= kept[1] >= kept[2] and kept[0] > kept[2]
    assert (
        daily.attrs["units"]["GPP_U95_NT"] == "g m-2 d-1"
        and daily.attrs["units"]["GPP_U05_DT"] == "g m-2 d-1"
    )
    # U50 uses the bootstrap median threshold; where it equals the main threshold, the products do
    if np.allclose(hh["ustar_threshold_U50"], hh["ustar_threshold"], equal_nan=True):
        np.testing.assert_allclose(hh["GPP_U50_DT"], hh["GPP_DT"], rtol=1e-12)


def test_scenarios_without_daytime() -> None:
    """``scenario_daytime=False`` leaves the day-time columns of the scenarios out (night-time stays)."""
    df = synthetic_site(days=120, seed=21)
    hh, daily = process_site(df, 50.96, 13.57, 1.0, ustar_bootstrap=10, scenario_daytime=False)
    assert hh.attrs["steps"]["ustar_scenarios"] == "ok"
    assert "GPP_U05_NT" in hh and not any(c.endswith("_DT") and "_U" in c for c in hh.columns)
    assert "GPP_U05_DT" not in daily


def test_monthly_products(detha) -> None:
    """Monthly means, uncertainty sqrt(sum sigma_d^2) / n and gap-filled fraction, recomputed per month."""
    _, daily = detha
    monthly = monthly_products(daily)
    assert len(monthly) == 12 and monthly.attrs["units"]["NEE"] == "g m-2 d-1"
    for month, got in monthly.iterrows():
        days = daily[daily.index.month == month.month]
        assert got["NEE_n_days"] == len(days) == days.index.days_in_month[0]
        assert got["NEE"] == pytest.approx(days["NEE"].sum() / len(days), rel=1e-12)
        assert got["NEE_unc"] == pytest.approx(np.sqrt((days["NEE_unc"] ** 2).sum()) / len(days), rel=1e-12)
        assert got["NEE_frac_filled"] == pytest.approx(days["NEE_frac_filled"].mean(), rel=1e-12)
        assert got["GPP_U95_NT"] == pytest.approx(days["GPP_U95_NT"].mean(), rel=1e-12)
    # annual NEE from the months (weighted by days) equals the annual sum of the days
    assert (monthly["NEE"] * monthly["NEE_n_days"]).sum() == pytest.approx(daily["NEE"].sum(), rel=1e-12)
