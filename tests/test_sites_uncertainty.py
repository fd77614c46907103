"""Random uncertainty and daily / monthly carbon sums with units."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fluxcube.sites.synthetic import synthetic_site
from fluxcube.sites.uncertainty import (
    GC_PER_UMOL_HALFHOUR,
    daily_means,
    daily_sums,
    monthly_from_daily,
    random_uncertainty,
)


def _grid(days: int) -> pd.DatetimeIndex:
    return pd.date_range("2001-01-01", periods=48 * days, freq="30min")


def test_conversion_factor() -> None:
    np.testing.assert_allclose(GC_PER_UMOL_HALFHOUR, 1800 * 12.011e-6)
    out = daily_sums(_grid(2), np.ones(96))
    # 1 umol m-2 s-1 for a day = 86400 s * 12.011e-6 g C umol-1 = 1.0377504 g C m-2 d-1
    np.testing.assert_allclose(out["value"], 1.0377504)


def test_daily_uncertainty_and_fraction_filled() -> None:
    sigma = np.full(96, 2.0)
    filled = np.zeros(96, bool)
    filled[:12] = True
    out = daily_sums(_grid(2), np.ones(96), sigma, filled)
    np.testing.assert_allclose(out["sigma"], GC_PER_UMOL_HALFHOUR * 2.0 * np.sqrt(48))
    np.testing.assert_allclose(out["frac_filled"], [0.25, 0.0])


def test_incomplete_days_are_not_invented() -> None:
    flux = np.ones(96)
    flux[50] = np.nan
    out = daily_sums(_grid(2), flux, np.ones(96))
    assert np.isfinite(out["value"].iloc[0]) and np.isnan(out["value"].iloc[1])
    assert np.isnan(out["sigma"].iloc[1])
    means = daily_means(_grid(2), flux)
    assert means.iloc[0] == 1.0 and np.isnan(means.iloc[1])


def test_monthly_from_daily() -> None:
    days = pd.date_range("2001-01-01", periods=59, freq="D")
    daily = pd.DataFrame(
        {"value": np.r_[np.full(31, 1.0), np.full(28, 3.0)], "sigma": 0.5, "frac_filled": 0.1}, index=days
    )
    out = monthly_from_daily(daily)
    np.testing.assert_allclose(out["value"], [1.0, 3.0])
    np.testing.assert_allclose(out["sigma"], [0.5 / np.sqrt(31), 0.5 / np.sqrt(28)])
    assert list(out["n_days"]) == [31, 28]


def test_random_uncertainty_recovers_noise() -> None:
    site = synthetic_site(days=90, noise=1.5, seed=12)
    nee = site["NEE"].to_numpy().copy()
    nee[np.random.default_rng(0).random(nee.size) < 0.3] = np.nan
    sigma = random_uncertainty(nee, *(site[c].to_numpy() for c in ("Rg", "Tair", "VPD")))
    assert np.isnan(sigma[np.isnan(nee)]).all()
    assert np.isfinite(sigma[np.isfinite(nee)]).all()
    # similar-condition spread = noise plus the signal's own spread within the tolerances
    assert 1.4 < np.median(sigma[np.isfinite(nee)]) < 2.0
