"""Regional integrals against analytic cases and a plain loop over cells."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fluxcube.recipes.regions import EARTH_RADIUS
from fluxcube.regions.integrate import (
    covered_fraction,
    monthly_means,
    region_weights,
    regional_integrals,
)


def _regions(nlat: int = 6, nlon: int = 8, seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    lat = np.linspace(-60, 60, nlat)
    lon = np.linspace(-170, 170, nlon)
    frac = rng.uniform(0, 1, (3, nlat, nlon))
    frac /= frac.sum(axis=0).clip(min=1.0)
    area = rng.uniform(1e9, 3e9, (nlat, nlon))
    return xr.Dataset(
        {
            "region_fraction": (("region", "lat", "lon"), frac),
            "cell_area": (("lat", "lon"), area),
        },
        coords={"region": [1, 2, 3], "lat": lat, "lon": lon},
    )


def _flux(regions: xr.Dataset, months: int = 3, seed: int = 1) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    time = pd.date_range("2012-01-01", periods=months, freq="MS")
    values = rng.normal(0, 2, (months, regions.sizes["lat"], regions.sizes["lon"]))
    return xr.DataArray(
        values, dims=("time", "lat", "lon"), coords={"time": time, "lat": regions.lat, "lon": regions.lon}
    )


def test_constant_flux_over_a_whole_sphere_region() -> None:
    """1 g C m-2 d-1 over the whole sphere for January = 4 pi R^2 x 31 / 1e15 Pg C."""
    lat = np.arange(-89.5, 90, 1.0)
    lon = np.arange(-179.5, 180, 1.0)
    edges = np.deg2rad(np.arange(-90, 90.5, 1.0))
    band = EARTH_RADIUS**2 * np.deg2rad(1.0) * np.diff(np.sin(edges))
    regions = xr.Dataset(
        {
            "region_fraction": (("region", "lat", "lon"), np.ones((1, lat.size, lon.size))),
            "cell_area": (("lat", "lon"), np.repeat(band[:, None], lon.size, axis=1)),
        },
        coords={"region": [1], "lat": lat, "lon": lon},
    )
    flux = xr.DataArray(
        np.ones((1, lat.size, lon.size)),
        dims=("time", "lat", "lon"),
        coords={"time": pd.to_datetime(["2001-01-01"]), "lat": lat, "lon": lon},
    )
    out = regional_integrals(flux, region_weights(regions))
    expected = 4 * np.pi * EARTH_RADIUS**2 * 31 / 1e15
    assert out.attrs["units"] == "Pg C month-1"
    np.testing.assert_allclose(out.values.ravel(), [expected], rtol=1e-12)


@pytest.mark.parametrize("chunked", [False, True])
def test_integrals_match_a_loop_over_cells(chunked: bool) -> None:
    regions = _regions()
    flux = _flux(regions)
    flux[1, 2, 3] = np.nan
    weights = region_weights(regions)
    if chunked:
        flux = flux.chunk({"time": 1, "lat": 3})
    out = regional_integrals(flux, weights).compute()
    f = np.nan_to_num(np.asarray(flux))
    for k in range(3):
        for t, stamp in enumerate(pd.DatetimeIndex(flux.time.values)):
            total = 0.0
            for i in range(regions.sizes["lat"]):
                for j in range(regions.sizes["lon"]):
                    w = regions.region_fraction.values[k, i, j] * regions.cell_area.values[i, j]
                    total += f[t, i, j] * w
            assert out.values[k, t] == pytest.approx(total * stamp.days_in_month / 1e15, rel=1e-12)
    cover = covered_fraction(flux, weights).compute()
    missing = weights.values[:, 2, 3] / weights.values.sum(axis=(1, 2))
    np.testing.assert_allclose(cover.sel(time="2012-02-01").values, 1 - missing, rtol=1e-12)
    np.testing.assert_allclose(cover.sel(time="2012-01-01").values, 1.0, rtol=1e-12)


def test_monthly_means_skip_missing_days() -> None:
    time = pd.date_range("2013-02-01", "2013-03-31", freq="D")
    values = np.arange(time.size, dtype=float)
    values[3] = np.nan
    daily = xr.DataArray(values, dims="time", coords={"time": time}, attrs={"units": "g C m-2 d-1"})
    out = monthly_means(daily)
    assert out.attrs["units"] == "g C m-2 d-1"
    feb = np.delete(values[:28], 3)
    np.testing.assert_allclose(out.values, [feb.mean(), values[28:].mean()])


def test_grid_mismatch_is_refused() -> None:
    regions = _regions()
    flux = _flux(regions).assign_coords(lat=regions.lat + 0.25)
    with pytest.raises(ValueError, match="same lat/lon grid"):
        regional_integrals(flux, region_weights(regions))
