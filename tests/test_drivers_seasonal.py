"""Mean seasonal cycles: slot means against pandas, the vectorised periodic gap filling against
numpy's interp pixel by pixel, an analytic sine recovered, metrics of a known cycle."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fluxcube.drivers import seasonal


def _dates(years: range) -> np.ndarray:
    return np.array(
        [np.datetime64(f"{y}-01-01") + np.timedelta64(8 * k, "D") for y in years for k in range(46)],
        dtype="datetime64[D]",
    )


def test_slots_follow_the_modis_8day_calendar() -> None:
    d = np.array(
        ["2012-01-01", "2012-01-09", "2012-12-26", "2013-12-27", "2012-12-31"], dtype="datetime64[D]"
    )
    assert seasonal.slots(d).tolist() == [0, 1, 45, 45, 45]


def test_slot_means_against_pandas_groupby() -> None:
    rng = np.random.default_rng(0)
    dates = _dates(range(2005, 2009))
    v = rng.normal(size=(dates.size, 5))
    v[rng.random(v.shape) < 0.4] = np.nan
    acc = seasonal.SlotAccumulator(5)
    for t0 in range(0, dates.size, 32):  # block by block, as the build streams
        acc.add(v[t0 : t0 + 32], dates[t0 : t0 + 32])
    doy = pd.DatetimeIndex(dates).day_of_year.to_numpy()
    ref = pd.DataFrame(v).groupby((doy - 1) // 8).mean().reindex(range(46)).to_numpy()
    assert np.allclose(acc.means(), ref, equal_nan=True)


def test_periodic_fill_against_numpy_interp() -> None:
    rng = np.random.default_rng(2)
    m = rng.normal(size=(46, 300))
    m[rng.random(m.shape) < 0.6] = np.nan
    m[:, 0] = np.nan  # never observed
    m[:, 1] = np.nan
    m[[3, 20, 40], 1] = [1.0, 2.0, 3.0]  # too few slots: missing
    m[:, 2] = np.nan
    m[[0, 10, 20, 45], 2] = [1.0, 2.0, 3.0, 4.0]  # across the year boundary
    got = seasonal.fill_periodic(m)
    for j in range(m.shape[1]):
        ok = np.isfinite(m[:, j])
        if ok.sum() < seasonal.MIN_SLOTS:
            assert np.isnan(got[:, j]).all()
            continue
        ref = np.interp(seasonal.DAYS, seasonal.SLOT_CENTRES[ok], m[ok, j], period=365.0)
        assert np.allclose(got[:, j], ref, atol=1e-12)
    assert got[0, 2] == np.interp(1.0, [-2.0, 4.5], [4.0, 1.0])  # day 1 lies between slot 45 and slot 0


def test_sine_recovered_through_clouds_and_metrics() -> None:
    rng = np.random.default_rng(3)
    dates = _dates(range(2001, 2011))
    doy = pd.DatetimeIndex(dates).day_of_year.to_numpy()
    centre = seasonal.SLOT_CENTRES[seasonal.slots(dates)]
    truth = 0.5 + 0.3 * np.sin(2 * np.pi * (centre - 100) / 365)
    v = np.repeat(truth[:, None], 4, axis=1) + rng.normal(0, 0.01, (dates.size, 4))
    v[rng.random(v.shape) < 0.5] = np.nan
    v[(doy > 150) & (doy < 200), 1] = np.nan  # a monsoon: never clear in early summer
    acc = seasonal.SlotAccumulator(4)
    acc.add(v, dates)
    msc = seasonal.fill_periodic(acc.means())
    want = 0.5 + 0.3 * np.sin(2 * np.pi * (seasonal.DAYS - 100) / 365)
    assert np.abs(msc[:, 0] - want).max() < 0.02  # noise / sqrt(5) + linear interpolation of a sine
    assert np.abs(msc[:, 1] - want).max() < 0.08  # the filled gap: a chord across 7 slots
    m = seasonal.metrics(msc)
    assert abs(m["max"][0] - 0.8) < 0.02 and abs(m["min"][0] - 0.2) < 0.02
    assert np.allclose(m["amp"], m["max"] - m["min"]) and abs(m["mean"][0] - 0.5) < 0.01
    empty = seasonal.metrics(np.full((366, 1), np.nan))
    assert all(np.isnan(x[0]) for x in empty.values())
