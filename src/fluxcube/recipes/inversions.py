"""The inversion recipe: atmospheric inversion fluxes, one member per inversion system -> Zarr.

Layouts (a layout is a reader registered in :data:`LAYOUTS`; a reader returns one member record or a
list of them):

- ``zonal``: monthly fluxes integrated over longitude, dimensions (time, lat), variable
  ``SFCO2_LND`` in Pg C yr-1 per degree of latitude, positive = flux to the atmosphere (source);
  e.g. the so-co2-airborne-obs files of CAMS v20r1, CarbonTracker CT2019B, CTE2020 and Jena
  CarboScope s99oc v2020 (``<system>/fluxes_za_ts_monthly.nc``; the folder name is the member).
- ``gcb-gridded``: the GCB2022 gridded ensemble layout (``GCP*_inversions_1x1*.nc``, e.g. the simulated
  world's): ``land_flux_only_fossil_cement_adjusted`` (ensemble_member, time, latitude, longitude) in
  PgC/m2/yr per m2 of grid cell, member names in ``ensemble_member_name`` (char). Each member becomes a
  zonal member: flux x cell area (the file's ``cell_area``, else cells on the sphere of radius
  6371007.2 m) summed over longitude (missing values count as zero; a latitude with none is NaN) and
  divided by the latitude spacing, in Pg C yr-1 per degree.

Store ``inversions_zonal_monthly``, dimensions (member, time, zlat):

- ``land_flux_zonal`` (member, time, zlat): Pg C yr-1 degree-1 on each member's native latitudes
  (coordinate ``lat(member, zlat)``, NaN-padded where a member has fewer latitudes), with the width
  of each latitude band in ``lat_width`` (degrees; bands end halfway between neighbouring points and
  at the poles, so a point at +-90 has a half-width band);
- ``land_flux_global`` (member, time): Pg C yr-1 = sum over latitude of flux x band width;
- ``land_flux_global_month`` (member, time): Pg C month-1 = land_flux_global x days in the month /
  days in the year (the 12 months of a year add up to the annual mean rate).

Sign: positive = flux to the atmosphere (source), as the sources and the platform's NEE. Time: the
first day of each month (the sources stamp mid-month); months a member lacks are NaN.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from fluxcube.errors import InputError
from fluxcube.publish import Publisher, Release, iter_files
from fluxcube.recipes.fluxnet_pipeline import RunSummary
from fluxcube.recipes.transforms import inputs_are_synthetic, read_files_on_beam

log = logging.getLogger(__name__)

RECIPE = "inversions"
RECIPE_VERSION = "1.0.0"
DATASET = "inversions_zonal_monthly"
ZONAL_UNITS = "Pg C yr-1 degree-1"


def _norm_units(units: str) -> str:
    """'Pg C yr$^{-1}$ degree$^{-1}$' -> 'Pg C yr-1 degree-1'."""
    return " ".join(units.replace("$", "").replace("^", "").replace("{", "").replace("}", "").split())


def band_widths(lat: np.ndarray) -> np.ndarray:
    """Widths (degrees) of latitude bands around ascending points: edges halfway, clipped at +-90."""
    edges = np.concatenate([[-90.0], (lat[1:] + lat[:-1]) / 2, [90.0]])
    edges = np.clip(edges, -90.0, 90.0)
    return np.diff(edges)


def member_of(path: str) -> str:
    """The inversion system's name: the folder holding the file."""
    return Path(path).parent.name


def read_zonal(path: str) -> dict[str, Any]:
    """Read one zonal-mean file: monthly land flux (Pg C yr-1 degree-1) on its native latitudes."""
    try:
        ds = xr.open_dataset(path, cache=False)
    except Exception as err:
        raise InputError(path, f"cannot open as NetCDF (truncated or corrupt?): {err}") from err
    with ds:
        if "SFCO2_LND" not in ds:
            raise InputError(path, f"no variable SFCO2_LND (land flux); variables: {sorted(ds.data_vars)}")
        var = ds["SFCO2_LND"]
        if set(var.dims) != {"time", "lat"}:
            raise InputError(
                path, f"SFCO2_LND has dimensions {var.dims}, expected (time, lat)", column="SFCO2_LND"
            )
        units = _norm_units(str(var.attrs.get("units", "")))
        if units != ZONAL_UNITS:
            raise InputError(path, f"SFCO2_LND units {units!r}, expected {ZONAL_UNITS!r}", column="SFCO2_LND")
        var = var.transpose("time", "lat").sortby("lat")
        lat = var["lat"].values.astype("float64")
        if (
            lat.size < 10
            or lat.min() < -90 - 1e-6
            or lat.max() > 90 + 1e-6
            or np.unique(lat).size != lat.size
        ):
            raise InputError(path, f"latitudes {lat.min()}..{lat.max()} ({lat.size}) are not a zonal grid")
        times = var["time"].values
        if not np.issubdtype(times.dtype, np.datetime64):
            raise InputError(path, "time cannot be decoded as dates")
        months = times.astype("datetime64[M]")
        if np.unique(months).size != months.size:
            raise InputError(path, "two time steps fall in the same month: not monthly data")
        try:
            values = var.values.astype("float64")
        except Exception as err:
            raise InputError(path, f"cannot read SFCO2_LND: {err}") from err
    return {
        "file": path,
        "member": member_of(path),
        "layout": "zonal",
        "months": [str(m) for m in months],
        "lat": lat.tolist(),
        "values": np.where(np.isfinite(values), values, None).tolist(),
        "long_name": str(var.attrs.get("long_name", "")),
    }


GCB_VARIABLE = "land_flux_only_fossil_cement_adjusted"
GCB_UNITS = ("PgC/m2/yr", "PgC m-2 yr-1", "Pg C m-2 yr-1")
EARTH_RADIUS = 6371007.2  # m, as fluxcube.recipes.regions


def read_gcb_gridded(path: str) -> list[dict[str, Any]]:
    """Read a GCB2022-layout gridded ensemble file: one zonal member record per ensemble member."""
    try:
        ds = xr.open_dataset(path, cache=False)
    except Exception as err:
        raise InputError(path, f"cannot open as NetCDF (truncated or corrupt?): {err}") from err
    with ds:
        var = ds[GCB_VARIABLE]
        want = {"ensemble_member", "time", "latitude", "longitude"}
        if set(var.dims) != want:
            raise InputError(path, f"{GCB_VARIABLE} has dimensions {var.dims}, expected {sorted(want)}")
        units = str(var.attrs.get("units", ""))
        if units not in GCB_UNITS:
            raise InputError(path, f"{GCB_VARIABLE} units {units!r}, expected {GCB_UNITS[0]!r}")
        var = var.transpose("ensemble_member", "time", "latitude", "longitude").sortby("latitude")
        lat = var["latitude"].values.astype("float64")
        lon = var["longitude"].values.astype("float64")
        dlat, dlon = np.abs(np.diff(lat)), np.abs(np.diff(lon))
        if lat.size < 10 or np.ptp(dlat) > 1e-6 or np.ptp(dlon) > 1e-6:
            raise InputError(path, "latitude/longitude are not a regular grid")
        if "cell_area" in ds:
            area = ds["cell_area"].transpose("latitude", "longitude").sortby("latitude").values
        else:
            edges = np.deg2rad(np.clip(np.concatenate([lat - dlat[0] / 2, lat[-1:] + dlat[0] / 2]), -90, 90))
            band = EARTH_RADIUS**2 * np.deg2rad(dlon[0]) * np.diff(np.sin(edges))
            area = np.repeat(band[:, None], lon.size, axis=1)
        times = var["time"].values
        if not np.issubdtype(times.dtype, np.datetime64):
            raise InputError(path, "time cannot be decoded as dates")
        months = times.astype("datetime64[M]")
        if np.unique(months).size != months.size:
            raise InputError(path, "two time steps fall in the same month: not monthly data")
        if "ensemble_member_name" in ds:
            raw = ds["ensemble_member_name"].values
            names = [
                (
                    b"".join(r).decode() if raw.ndim == 2 else str(r.decode() if isinstance(r, bytes) else r)
                ).strip()
                for r in raw
            ]
        else:
            names = [f"member{k}" for k in range(var.sizes["ensemble_member"])]
        records = []
        for k, name in enumerate(names):
            values = var.isel(ensemble_member=k).values.astype("float64")  # (time, lat, lon)
            zonal = np.nansum(values * area[None], axis=2) / dlat[0]  # Pg C yr-1 per degree latitude
            zonal[~np.isfinite(values).any(axis=2)] = np.nan
            records.append(
                {
                    "file": path,
                    "member": name,
                    "layout": "gcb-gridded",
                    "months": [str(m) for m in months],
                    "lat": lat.tolist(),
                    "values": np.where(np.isfinite(zonal), zonal, None).tolist(),
                    "long_name": str(var.attrs.get("long_name", "")),
                }
            )
    return records


def detect_layout(path: str) -> str:
    """'zonal' for (time, lat) files, 'gcb-gridded' for GCB2022-layout ensemble files."""
    try:
        with xr.open_dataset(path, cache=False) as ds:
            if GCB_VARIABLE in ds and "ensemble_member" in ds[GCB_VARIABLE].dims:
                return "gcb-gridded"
            dims = set(ds["SFCO2_LND"].dims) if "SFCO2_LND" in ds else set(ds.dims)
    except Exception as err:
        raise InputError(path, f"cannot open as NetCDF (truncated or corrupt?): {err}") from err
    if dims == {"time", "lat"}:
        return "zonal"
    if {"lat", "lon"} <= dims or {"latitude", "longitude"} <= dims:
        raise InputError(path, f"gridded inversion layout without {GCB_VARIABLE}: not supported")
    raise InputError(path, f"unknown inversion layout with dimensions {sorted(dims)}")


#: Layout name -> reader returning a JSON-able member record (or a list of them).
LAYOUTS: dict[str, Callable[[str], dict[str, Any] | list[dict[str, Any]]]] = {
    "zonal": read_zonal,
    "gcb-gridded": read_gcb_gridded,
}


def read(path: str) -> dict[str, Any] | list[dict[str, Any]]:
    return LAYOUTS[detect_layout(path)](path)


def _as_records(result: dict[str, Any] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return result if isinstance(result, list) else [result]


def find_files(source: str) -> list[str]:
    """Inversion files under ``source``: ``*/fluxes_za_ts_monthly.nc``, ``GCP*_inversions_1x1*.nc``."""
    p = Path(source)
    if p.is_file():
        return [str(p)]
    found = {*p.rglob("fluxes_za_ts_monthly.nc"), *p.rglob("GCP*_inversions_1x1*.nc")}
    return sorted(str(f) for f in found)


def combine(records: list[dict[str, Any]]) -> xr.Dataset:
    """Members on a common monthly axis, zonal flux on native latitudes, global totals."""
    records = sorted(records, key=lambda r: r["member"])
    members = [r["member"] for r in records]
    if len(set(members)) != len(members):
        raise InputError(records[0]["file"], f"two files for one member in {members}")
    months = sorted({m for r in records for m in r["months"]})
    time = np.array(months, dtype="datetime64[M]")
    nz = max(len(r["lat"]) for r in records)
    zonal = np.full((len(members), time.size, nz), np.nan)
    lat = np.full((len(members), nz), np.nan)
    width = np.full((len(members), nz), np.nan)
    for i, r in enumerate(records):
        la = np.array(r["lat"])
        lat[i, : la.size] = la
        width[i, : la.size] = band_widths(la)
        idx = np.searchsorted(time, np.array(r["months"], dtype="datetime64[M]"))
        vals = np.array(r["values"], dtype="float64")  # None -> NaN
        zonal[i, idx, : la.size] = vals
    glob = np.nansum(zonal * width[:, None, :], axis=2)
    glob[~np.isfinite(zonal).any(axis=2)] = np.nan
    t = pd.DatetimeIndex(time.astype("datetime64[ns]"))
    month_fraction = (t.days_in_month / np.where(t.is_leap_year, 366.0, 365.0)).values
    data = {
        "land_flux_zonal": (
            ("member", "time", "zlat"),
            zonal,
            {
                "units": ZONAL_UNITS,
                "long_name": "land-atmosphere CO2 flux integrated over longitude, per degree latitude",
                "comment": "positive = flux to the atmosphere (source); fossil fuel emissions excluded",
            },
        ),
        "land_flux_global": (
            ("member", "time"),
            glob,
            {
                "units": "Pg C yr-1",
                "long_name": "global land-atmosphere CO2 flux (monthly mean rate)",
                "comment": "sum over latitude of land_flux_zonal x lat_width; positive = source",
            },
        ),
        "land_flux_global_month": (
            ("member", "time"),
            glob * month_fraction[None, :],
            {
                "units": "Pg C month-1",
                "long_name": "global land-atmosphere CO2 flux integrated over the month",
                "comment": "land_flux_global x days in month / days in year; positive = source",
            },
        ),
    }
    coords = {
        "member": ("member", np.array(members, dtype=object), {"long_name": "inversion system"}),
        "time": (
            "time",
            time.astype("datetime64[ns]"),
            {"standard_name": "time", "long_name": "month (first day; monthly means)"},
        ),
        "lat": (
            ("member", "zlat"),
            lat,
            {"units": "degrees_north", "standard_name": "latitude", "long_name": "member's native latitude"},
        ),
        "lat_width": (
            ("member", "zlat"),
            width,
            {"units": "degree", "long_name": "width of the latitude band around lat"},
        ),
        "source_file": ("member", np.array([r["file"] for r in records], dtype=object)),
    }
    return xr.Dataset(data, coords=coords)


def validate(ds: xr.Dataset) -> None:
    """Each member's 2010-2015 global land flux is a sink of a few Pg C per year; bands cover 180 deg."""
    widths = ds["lat_width"].sum("zlat").values
    if not np.allclose(widths, 180.0, atol=1e-6):
        raise ValueError(f"latitude bands cover {widths} degrees, not 180")
    sel = ds["land_flux_global"].sel(time=slice("2010-01-01", "2015-12-31"))
    for m in ds["member"].values:
        x = sel.sel(member=m)
        if int(x.count()) >= 12:
            mean = float(x.mean())
            if not -6.0 < mean < -0.3:
                raise ValueError(
                    f"{m}: mean 2010-2015 global land flux {mean:.2f} Pg C yr-1 is not a sink of a few Pg C"
                )


def run(source: str, target: str, runner: str = "DirectRunner", force: bool = False) -> RunSummary:
    """Ingest the inversion files under ``source`` into ``inversions_zonal_monthly`` under ``target``."""
    summary = RunSummary()
    files = find_files(source)
    if not files:
        summary.warnings.append(
            f"{source}: no inversion files (*/fluxes_za_ts_monthly.nc, GCP*_inversions_1x1*.nc)"
        )
        return summary
    pub = Publisher(target)
    records, summary.refused = read_files_on_beam(
        files, read, pub.root.child("_runs", RECIPE), runner, flatten=_as_records
    )
    if not records:
        summary.warnings.append("every file was refused: nothing published")
        return summary
    ds = combine(records)
    used = sorted({r["file"] for r in records})
    release = Release(
        name=DATASET,
        recipe=RECIPE,
        recipe_version=RECIPE_VERSION,
        inputs=iter_files(used),
        description="Atmospheric inversions, monthly land CO2 flux: zonal (native latitudes) and global "
        "totals, members " + ", ".join(str(m) for m in ds["member"].values),
        synthetic=inputs_are_synthetic(used),
    )
    attrs = {
        "title": "Inversion ensemble, monthly land-atmosphere CO2 fluxes",
        "Conventions": "CF-1.10",
        "sign_convention": "positive = flux to the atmosphere (source)",
        "references": "zonal files from NCAR/so-co2-airborne-obs (Long et al. 2021, Science)",
    }
    encoding = {"time": {"units": "days since 1970-01-01", "calendar": "proleptic_gregorian"}}
    if pub.publish_dataset(release, ds, attrs, validate, encoding, summary.refused, force=force):
        summary.published[DATASET] = release.version
    else:
        summary.up_to_date[DATASET] = release.version
    return summary
