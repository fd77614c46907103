"""Area integrals of gridded fluxes over the land regions (the one implementation every stage uses).

Fluxes are densities in g C m-2 d-1 per m2 of grid cell (positive = source); a region's integral over a
period is ``sum_cells(flux x weight) x days / 1e15`` in Pg C, where ``weight`` (m2) is the part of the
cell's area that belongs to the region (``region_fraction x cell_area`` of the ``regions_land_0p5deg``
store). Missing values (NaN) count as zero in the sum; :func:`covered_fraction` says how much of each
region's area had a value, so a caller can refuse or flag incomplete integrals.
"""

from __future__ import annotations

import xarray as xr

G_PER_PG = 1e15


def region_weights(regions: xr.Dataset, area: str = "cell_area") -> xr.DataArray:
    """Area of each cell inside each region (m2), dims (region, lat, lon).

    ``regions`` is the ``regions_land_0p5deg`` store (``region_fraction`` (1) and ``cell_area`` (m2)).
    """
    weights = regions["region_fraction"].astype("float64") * regions[area].astype("float64")
    weights.attrs = {"units": "m2", "long_name": f"area of the cell inside the region ({area})"}
    return weights.rename("region_area")


def monthly_means(flux: xr.DataArray) -> xr.DataArray:
    """Calendar-month means of a daily flux (same units, e.g. g C m-2 d-1), labelled by the month's first day.

    A month's mean uses the days that have a value (NaN days are skipped).
    """
    out = flux.resample(time="MS").mean()
    out.attrs = dict(flux.attrs)
    return out


def days_in_month(time: xr.DataArray) -> xr.DataArray:
    """Number of days (d) in the month of each time stamp."""
    return time.dt.days_in_month.astype("float64")


def regional_integrals(flux: xr.DataArray, weights: xr.DataArray) -> xr.DataArray:
    """Monthly regional integrals (Pg C month-1) of monthly mean fluxes.

    ``flux``: (..., time, lat, lon) monthly means in g C m-2 d-1, ``time`` the first day of each month;
    ``weights``: (region, lat, lon) in m2 from :func:`region_weights`, on the same lat/lon.
    Result (..., region, time) = sum over cells of flux x weight x days in the month / 1e15. Works on
    numpy- or dask-backed arrays (lazy with dask).
    """
    if not all(flux.indexes[a].equals(weights.indexes[a]) for a in ("lat", "lon")):  # not scalar coords
        raise ValueError("flux and region weights are not on the same lat/lon grid")
    per_day = xr.dot(flux.fillna(0.0).astype("float64"), weights, dim=["lat", "lon"])
    out = per_day * days_in_month(flux.time) / G_PER_PG
    out = out.transpose(..., "region", "time")
    out.attrs = {
        "units": "Pg C month-1",
        "long_name": f"regional integral of {flux.attrs.get('long_name', flux.name or 'flux')}",
        "comment": "sum over cells of flux x region_fraction x cell_area x days in month; NaN cells count 0",
    }
    return out.rename(flux.name)


def covered_fraction(flux: xr.DataArray, weights: xr.DataArray) -> xr.DataArray:
    """Fraction (1) of each region's area where ``flux`` has a value, dims (..., region, time)."""
    covered = xr.dot(flux.notnull().astype("float64"), weights, dim=["lat", "lon"])
    out = (covered / weights.sum(["lat", "lon"])).transpose(..., "region", "time")
    out.attrs = {"units": "1", "long_name": "fraction of the region's area with a flux value"}
    return out.rename("covered_fraction")
