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

Store ``inversions_gridded_monthly`` (from ``gcb-gridded`` files only, and only when the catalog under the
same target holds ``gfas_fire_daily_0p5deg``; otherwise a warning says why it was not published),
dimensions (member, time, lat, lon) on the 0.5 degree grid of :mod:`fluxcube.recipes.regions`:

- ``land_flux`` (g C m-2 d-1, per m2 of grid cell, monthly mean, fire included) = source PgC/m2/yr x 1e15
  / days in that year; each source cell gives its flux density to the 0.5 degree cells inside it
  (:class:`fluxcube.recipes.era5.Regridder`, first-order conservative), so area integrals are conserved up
  to the difference between the source's cell areas and the sphere's (both measured and stored as
  attributes ``source_cell_area_max_relative_difference`` and ``area_integral_max_relative_difference``);
- ``land_flux_fire_adjusted`` = ``land_flux`` - the month's mean GFAS ``fire_c`` of the same cell; NaN in
  months the GFAS store does not fully cover (every day of the month must be there; listed in the
  attribute ``fire_adjustment_missing_months``, in ``gfas_days`` (time) and in the run's warnings) and in
  cells without a GFAS value;
- chunks (1 member, 12 months, 90, 90); written by a Beam pipeline in 12-month blocks (one block holds
  one member's months at a time: memory does not grow with the ensemble or the period; the block's
  monthly GFAS means computed once, each GFAS chunk read once), validated before publication by the
  size and CRC-32 of every chunk object taken when it was written (read back as bytes, not decoded) and
  one decoded member-block per variable against its count and sum, provenance naming the inversion
  files and the GFAS store version.
"""

from __future__ import annotations

import json
import logging
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
import zarr

from fluxcube.catalog import describe
from fluxcube.errors import InputError
from fluxcube.publish import Publisher, Release, iter_files
from fluxcube.recipes import gridcube
from fluxcube.recipes.era5 import regridder
from fluxcube.recipes.fluxnet_pipeline import RunSummary
from fluxcube.recipes.gridcube import SPACE_CHUNK
from fluxcube.recipes.regions import LAT, LON, cell_area_sphere, grid_coords
from fluxcube.recipes.transforms import inputs_are_synthetic, read_files_on_beam, read_records
from fluxcube.storage import Location

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


def open_netcdf(path: str) -> xr.Dataset:
    """Open an inversion file lazily; an unreadable one is an :class:`InputError` naming it."""
    try:
        return xr.open_dataset(path, cache=False)
    except Exception as err:
        raise InputError(path, f"cannot open as NetCDF (truncated or corrupt?): {err}") from err


def months_of(path: str, var: xr.DataArray) -> np.ndarray:
    """The months (datetime64[M]) of a monthly variable's time axis; not monthly -> :class:`InputError`."""
    times = var["time"].values
    if not np.issubdtype(times.dtype, np.datetime64):
        raise InputError(path, "time cannot be decoded as dates")
    months = times.astype("datetime64[M]")
    if np.unique(months).size != months.size:
        raise InputError(path, "two time steps fall in the same month: not monthly data")
    return months


def read_zonal(path: str) -> dict[str, Any]:
    """Read one zonal-mean file: monthly land flux (Pg C yr-1 degree-1) on its native latitudes."""
    ds = open_netcdf(path)
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
        months = months_of(path, var)
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


@dataclass
class GcbFile:
    """A checked GCB2022-layout ensemble file: the flux variable (member, time, lat ascending, lon) in
    PgC/m2/yr, its grid (degrees), cell areas (m2: the file's ``cell_area``, else the sphere's), months
    (first day) and member names."""

    path: str
    var: xr.DataArray
    lat: np.ndarray
    lon: np.ndarray
    area: np.ndarray
    months: np.ndarray  # datetime64[M]
    names: list[str]

    @property
    def dlat(self) -> float:
        return float(abs(self.lat[1] - self.lat[0]))

    def sphere_area(self) -> np.ndarray:
        """Cell areas (m2) of the file's grid on the sphere of radius :data:`EARTH_RADIUS`."""
        d = self.dlat
        dlon = float(abs(self.lon[1] - self.lon[0]))
        edges = np.deg2rad(np.clip(np.concatenate([self.lat - d / 2, self.lat[-1:] + d / 2]), -90, 90))
        band = EARTH_RADIUS**2 * np.deg2rad(dlon) * np.diff(np.sin(edges))
        return np.repeat(band[:, None], self.lon.size, axis=1)


def check_gcb(path: str, ds: xr.Dataset) -> GcbFile:
    """Check an opened GCB2022-layout file (variable, dimensions, units, grid, monthly times)."""
    if GCB_VARIABLE not in ds:
        raise InputError(path, f"no variable {GCB_VARIABLE}; variables: {sorted(map(str, ds.data_vars))}")
    var = ds[GCB_VARIABLE]
    want = {"ensemble_member", "time", "latitude", "longitude"}
    if set(var.dims) != want:
        raise InputError(path, f"{GCB_VARIABLE} has dimensions {var.dims}, expected {sorted(want)}")
    units = str(var.attrs.get("units", ""))
    if units not in GCB_UNITS:
        raise InputError(
            path, f"{GCB_VARIABLE} units {units!r}, expected {GCB_UNITS[0]!r}", column=GCB_VARIABLE
        )
    var = var.transpose("ensemble_member", "time", "latitude", "longitude").sortby("latitude")
    lat = var["latitude"].values.astype("float64")
    lon = var["longitude"].values.astype("float64")
    dlat, dlon = np.abs(np.diff(lat)), np.abs(np.diff(lon))
    if lat.size < 10 or np.ptp(dlat) > 1e-6 or np.ptp(dlon) > 1e-6:
        raise InputError(path, "latitude/longitude are not a regular grid")
    months = months_of(path, var)
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
    out = GcbFile(path, var, lat, lon, np.empty(0), months, names)
    if "cell_area" in ds:
        out.area = ds["cell_area"].transpose("latitude", "longitude").sortby("latitude").values
    else:
        out.area = out.sphere_area()
    return out


def read_gcb_gridded(path: str) -> list[dict[str, Any]]:
    """Read a GCB2022-layout gridded ensemble file: one zonal member record per ensemble member."""
    ds = open_netcdf(path)
    with ds:
        g = check_gcb(path, ds)
        records = []
        for k, name in enumerate(g.names):
            zonal = np.empty((g.months.size, g.lat.size))
            for t0 in range(0, g.months.size, MONTH_CHUNK):  # a year at a time: memory does not grow
                t = slice(t0, t0 + MONTH_CHUNK)
                values = g.var.isel(ensemble_member=k, time=t).values.astype("float64")  # (time, lat, lon)
                z = np.nansum(values * g.area[None], axis=2) / g.dlat  # Pg C yr-1 per degree latitude
                z[~np.isfinite(values).any(axis=2)] = np.nan
                zonal[t] = z
            records.append(
                {
                    "file": path,
                    "member": name,
                    "layout": "gcb-gridded",
                    "months": [str(m) for m in g.months],
                    "lat": g.lat.tolist(),
                    "values": np.where(np.isfinite(zonal), zonal, None).tolist(),
                    "long_name": str(g.var.attrs.get("long_name", "")),
                }
            )
    return records


def detect_layout(path: str) -> str:
    """'zonal' for (time, lat) files, 'gcb-gridded' for GCB2022-layout ensemble files."""
    with open_netcdf(path) as ds:
        if GCB_VARIABLE in ds and "ensemble_member" in ds[GCB_VARIABLE].dims:
            return "gcb-gridded"
        dims = set(ds["SFCO2_LND"].dims) if "SFCO2_LND" in ds else set(ds.dims)
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
    gridded = sorted({r["file"] for r in records if r["layout"] == "gcb-gridded"})
    if gridded:
        publish_gridded(gridded, pub, summary, runner, force)
    return summary


# ------------------------------------------------------------------------- the gridded 0.5 degree store
GRIDDED_DATASET = "inversions_gridded_monthly"
GRIDDED_RECIPE_VERSION = "1.0.0"
LAND_FLUX = "land_flux"
ADJUSTED = "land_flux_fire_adjusted"
MONTH_CHUNK = 12  # months per chunk and per processing block
G_PER_PG = 1e15
GRIDDED_ATTRS = {
    LAND_FLUX: {
        "units": "g C m-2 d-1",
        "long_name": "land-atmosphere CO2 flux of the inversion, fire included (monthly mean)",
        "cell_methods": "time: mean (month) area: mean",
        "comment": "per m2 of grid cell; positive = flux to the atmosphere (source); fossil fuel and cement "
        "emissions removed by the source; 1 degree cells split into their four 0.5 degree cells (flux "
        "density kept); source PgC/m2/yr x 1e15 / days in the year",
    },
    ADJUSTED: {
        "units": "g C m-2 d-1",
        "long_name": "land-atmosphere CO2 flux of the inversion minus GFAS fire emissions (monthly mean)",
        "cell_methods": "time: mean (month) area: mean",
        "comment": "land_flux - monthly mean of gfas_fire_daily_0p5deg fire_c in the same cell; NaN in "
        "months the GFAS store does not fully cover and in cells without a GFAS value; positive = source",
    },
}


def scan_gridded(path: str) -> dict[str, Any]:
    """Metadata of one GCB2022-layout file for the gridded store: members, months, grid, area check."""
    ds = open_netcdf(path)
    with ds:
        g = check_gcb(path, ds)
        try:
            regridder(g.lat, g.lon)
        except ValueError as err:
            raise InputError(path, f"{GCB_VARIABLE}: {err}", column=GCB_VARIABLE) from err
        area_diff = float(np.max(np.abs(g.area / g.sphere_area() - 1.0)))
    return {"path": path, "members": g.names, "months": [str(m) for m in g.months], "area_diff": area_diff}


def month_coverage(days: np.ndarray, months: np.ndarray) -> np.ndarray:
    """Number of days (d) of each month (datetime64[M]) present in ``days`` (datetime64)."""
    have = np.asarray(days).astype("datetime64[D]")
    counts = pd.Series(1, index=pd.DatetimeIndex(have)).resample("MS").sum()
    index = pd.DatetimeIndex(months.astype("datetime64[ns]"))
    return counts.reindex(index, fill_value=0).to_numpy().astype("int16")


def gfas_store(pub: Publisher) -> tuple[xr.DataArray, str]:
    """The published GFAS daily fire flux (g C m-2 d-1, lazy: read when indexed) and its version; checks
    units and grid."""
    from fluxcube.recipes import gfas

    cur = pub.current(gfas.DATASET)
    where = pub.dataset(gfas.DATASET).url
    if cur is None:
        raise InputError(where, f"no published {gfas.DATASET} store (run the gfas recipe first)")
    # lazily indexed without Dask: blocks read one month at a time (fire_means), 2-3x faster than through
    # a Dask graph per month
    store = pub.store_location(gfas.DATASET, cur["version"]).zarr_store(read_only=True)
    fire = xr.open_zarr(store, consolidated=False, zarr_format=3, chunks=None)[gfas.PRODUCT]
    units = str(fire.attrs.get("units", ""))
    if units != "g C m-2 d-1":
        raise InputError(
            where, f"{gfas.PRODUCT} units {units!r}, expected 'g C m-2 d-1'", column=gfas.PRODUCT
        )
    if not (np.array_equal(fire["lat"].values, LAT) and np.array_equal(fire["lon"].values, LON)):
        raise InputError(where, "not on the 0.5 degree grid of fluxcube.recipes.regions", column=gfas.PRODUCT)
    return fire, cur["version"]


def fire_means(fire: xr.DataArray, months: np.ndarray, complete: np.ndarray) -> np.ndarray:
    """Monthly mean fire flux (month, lat, lon) in g C m-2 d-1 for ``months`` (datetime64[M]); NaN for
    months not ``complete`` (days missing from the GFAS store).

    A month's mean uses the days that have a value (NaN days are skipped; a cell with none is NaN), as
    :func:`fluxcube.regions.integrate.monthly_means`. A streaming reduction: the days are read in pieces
    aligned with the store's time chunks, so that each chunk is read (and decompressed) once per call
    (months share chunks: reading month by month read most chunks twice); float32 values summed in
    float64, one running sum and count per month.
    """
    out = np.full((months.size, LAT.size, LON.size), np.nan)
    if not complete.any():
        return out
    stamps = np.asarray(fire["time"].values).astype("datetime64[M]")
    want = np.flatnonzero(complete)
    which = np.full(stamps.size, -1)  # each day's month index in ``months`` (-1: not wanted)
    for i in want:
        which[stamps == months[i]] = i
    days = np.flatnonzero(which >= 0)
    if days.size == 0:
        return out
    chunk = int((fire.encoding.get("chunks") or (gridcube.TIME_CHUNK,))[0])
    total = np.zeros((want.size, LAT.size, LON.size))
    count = np.zeros((want.size, LAT.size, LON.size), dtype="int32")
    slot = {int(i): n for n, i in enumerate(want)}
    first = int(days[0]) - int(days[0]) % chunk
    for a in range(first, int(days[-1]) + 1, chunk):
        here = days[(days >= a) & (days < a + chunk)]
        if here.size == 0:
            continue
        x = np.asarray(fire.isel(time=slice(int(here[0]), int(here[-1]) + 1)).values)
        for i in np.unique(which[here]):
            rows = here[which[here] == i] - here[0]
            xm = x[rows[0] : rows[-1] + 1] if rows[-1] - rows[0] + 1 == rows.size else x[rows]
            finite = np.isfinite(xm)
            n = slot[int(i)]
            count[n] += np.count_nonzero(finite, axis=0).astype("int32")
            total[n] += np.sum(xm, axis=0, dtype="float64", where=finite)
    with np.errstate(invalid="ignore", divide="ignore"):
        for n, i in enumerate(want):
            if np.any(which == i):
                out[i] = np.where(count[n] > 0, total[n] / count[n], np.nan)
    return out


def gridded_block(
    start: int,
    stop: int,
    members: list[tuple[str, int, str]],
    months: np.ndarray,
    complete: np.ndarray,
    fire: xr.DataArray,
    store: Location,
) -> dict[str, Any]:
    """Months ``start:stop`` of every member: convert, split to 0.5 degree, subtract fire, write; return
    per-member checks (count and sum of each variable; source and 0.5 degree global integrals, g C d-1)."""
    block = months[start:stop]
    fire_m = fire_means(fire, block, complete[start:stop])
    area05 = cell_area_sphere()
    days_in_year = np.where(pd.DatetimeIndex(block.astype("datetime64[ns]")).is_leap_year, 366.0, 365.0)
    out: dict[str, Any] = {"block": [start, stop], "members": {}}
    opened: dict[str, tuple[xr.Dataset, GcbFile]] = {}  # each file opened and checked once per block
    group = zarr.open_group(store.zarr_store(), mode="r+", zarr_format=3)
    arrays = {v: group[v] for v in GRIDDED_ATTRS}
    try:
        for k, (path, index, name) in enumerate(members):
            try:
                if path not in opened:
                    ds = open_netcdf(path)
                    opened[path] = (ds, check_gcb(path, ds))
                g = opened[path][1]
                have = np.isin(block, g.months)
                src = np.full((block.size, g.lat.size, g.lon.size), np.nan)
                if have.any():
                    t = np.searchsorted(g.months, block[have])
                    values = g.var.isel(ensemble_member=index, time=xr.DataArray(t, dims="t")).values
                    src[have] = values.astype("float64")
            except InputError:
                raise
            except Exception as err:
                raise InputError(
                    path, f"cannot read {GCB_VARIABLE} of {name}: {err}", column=GCB_VARIABLE
                ) from err
            _gridded_member(out, k, name, g, src, block, days_in_year, fire_m, area05, arrays, start, stop)
    finally:
        for ds, _ in opened.values():
            ds.close()
    return out


def _gridded_member(
    out: dict[str, Any],
    k: int,
    name: str,
    g: GcbFile,
    src: np.ndarray,
    block: np.ndarray,
    days_in_year: np.ndarray,
    fire_m: np.ndarray,
    area05: np.ndarray,
    arrays: dict[str, Any],
    start: int,
    stop: int,
) -> None:
    """Convert, split to 0.5 degree, subtract fire and write member ``k``'s months; add its checks.

    Written with Zarr directly into whole chunks (the block is one chunk row: 12 months, every 90 x 90
    tile); the checks hold each variable's count and sum and the checksum of every chunk object as
    stored (:func:`chunk_checksums`), which validation compares without decoding the store."""
    density = src * G_PER_PG / days_in_year[:, None, None]  # g C m-2 d-1
    r = regridder(g.lat, g.lon)
    flux = np.full((block.size, LAT.size, LON.size), np.nan, dtype="float32")
    flux[:, r.i0 : r.i1, r.j0 : r.j1] = r(density)
    adjusted = np.subtract(flux, fire_m, dtype="float64").astype("float32")  # one float64 temporary
    fields = {LAND_FLUX: flux, ADJUSTED: adjusted}
    for v, x in fields.items():
        arrays[v][k, start:stop] = x
    finite = np.isfinite(flux)
    band = area05[:, 0]  # the 0.5 degree cells' areas depend on latitude only
    grid_integral = np.sum(flux, axis=2, dtype="float64", where=finite) @ band
    out["members"][name] = {
        "member": k,
        **{v: gridcube.count_sum(x) for v, x in fields.items()},
        "chunks": {v: chunk_checksums(a, k, start) for v, a in arrays.items()},
        "source_integral": np.nansum(density * g.area[None], axis=(1, 2)).tolist(),
        "grid_integral": grid_integral.tolist(),
        "abs_integral": np.nansum(np.abs(density) * g.area[None], axis=(1, 2)).tolist(),
    }


def _chunk_keys(array: Any, k: int, start: int) -> list[str]:
    """Store keys of the chunk objects of member ``k``'s chunk row starting at month ``start``."""
    _, ct, cy, cx = array.chunks
    ny, nx = -(-array.shape[2] // cy), -(-array.shape[3] // cx)
    t = start // ct
    return [
        f"{array.path}/{array.metadata.encode_chunk_key((k, t, i, j))}" for i in range(ny) for j in range(nx)
    ]


def chunk_checksums(array: Any, k: int, start: int) -> list[list[int] | None]:
    """(size, CRC-32) of each stored chunk object of member ``k``'s months from ``start`` (None where
    Zarr stored no object: a chunk of fill values only), read as bytes, not decoded."""
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    proto = default_buffer_prototype()

    async def get_all() -> list[Any]:
        import asyncio

        keys = _chunk_keys(array, k, start)
        return await asyncio.gather(*(array.store.get(key, prototype=proto) for key in keys))

    out: list[list[int] | None] = []
    for buf in sync(get_all()):
        if buf is None:
            out.append(None)
        else:
            raw = buf.to_bytes()
            out.append([len(raw), zlib.crc32(raw)])
    return out


def write_gridded_template(
    store: Location,
    members: list[tuple[str, int, str]],
    months: np.ndarray,
    gfas_days: np.ndarray,
    attrs: dict[str, Any],
) -> None:
    """Coordinates, attributes, ``gfas_days`` and the empty (unwritten) float32 flux variables."""
    shape = (len(members), months.size, LAT.size, LON.size)
    chunks = (1, MONTH_CHUNK, SPACE_CHUNK, SPACE_CHUNK)
    dims = ("member", "time", "lat", "lon")
    data: dict[str, Any] = {
        v: (dims, da.full(shape, np.nan, dtype="float32", chunks=chunks), dict(a))
        for v, a in GRIDDED_ATTRS.items()
    }
    data["gfas_days"] = (
        "time",
        gfas_days,
        {
            "units": "d",
            "long_name": "days of the month present in the GFAS store (fire adjustment needs all)",
        },
    )
    coords: dict[str, Any] = dict(grid_coords())
    coords["time"] = (
        "time",
        months.astype("datetime64[ns]"),
        {"standard_name": "time", "long_name": "month (first day; monthly means)"},
    )
    coords["member"] = (
        "member",
        np.array([m[2] for m in members], dtype=object),
        {"long_name": "inversion system"},
    )
    coords["source_file"] = (
        "member",
        np.array([m[0] for m in members], dtype=object),
        {"long_name": "source file"},
    )
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    encoding: dict[str, Any] = {v: {"chunks": chunks} for v in GRIDDED_ATTRS}
    encoding["time"] = {"units": "days since 1970-01-01", "calendar": "proleptic_gregorian", "dtype": "int32"}
    ds.to_zarr(
        store.zarr_store(), mode="w", compute=False, zarr_format=3, consolidated=False, encoding=encoding
    )


def validate_gridded(ds: xr.Dataset, checks: list[dict[str, Any]], store: Location | None = None) -> None:
    """The store holds what the blocks wrote: every chunk object has the size and CRC-32 taken right
    after its block was written (a missing, truncated, corrupted or overwritten chunk fails; read as
    bytes, not decoded), and the first member-block of each variable decodes to the count and sum
    computed from the values in memory (the codec round trip). Without ``store`` (or chunk checksums in
    the checks) every member-block is decoded and compared instead."""
    group = zarr.open_group(store.zarr_store(read_only=True), mode="r", zarr_format=3) if store else None
    decoded = False
    for c in checks:
        s0, s1 = c["block"]
        for name, mc in c["members"].items():
            k = mc["member"]
            if str(ds["member"].values[k]) != name:
                raise ValueError(f"member {k} is {ds['member'].values[k]!r} in the store, expected {name!r}")
            if group is not None and "chunks" in mc:
                for v in GRIDDED_ATTRS:
                    got = chunk_checksums(group[v], k, s0)
                    if got != mc["chunks"][v]:
                        bad = sum(a != b for a, b in zip(got, mc["chunks"][v], strict=True))
                        raise ValueError(
                            f"{v} {name} months {s0}:{s1}: {bad} chunk object(s) differ from those written"
                        )
                if decoded:
                    continue
                decoded = True
            for v in GRIDDED_ATTRS:
                x = np.asarray(ds[v].isel(member=k, time=slice(s0, s1)).values)
                got = gridcube.count_sum(x)
                n, total = got["count"], got["sum"]
                want = mc[v]
                if n != want["count"] or not np.isclose(total, want["sum"], rtol=1e-6, atol=1e-3):
                    raise ValueError(
                        f"{v} {name} months {s0}:{s1}: store has {n} values summing to {total}, wrote {want}"
                    )
    for v in GRIDDED_ATTRS:
        if ds[v].attrs.get("units") != "g C m-2 d-1":
            raise ValueError(f"{v}: units {ds[v].attrs.get('units')!r}")


def conservation(checks: list[dict[str, Any]]) -> float:
    """Largest relative difference (1) between a member-month's global integral on the 0.5 degree grid and on
    the source grid, relative to the integral of |flux| (the source's cell areas against the sphere's)."""
    worst = 0.0
    for c in checks:
        for mc in c["members"].values():
            src, grid, absolute = (
                np.array(mc[k], dtype="float64") for k in ("source_integral", "grid_integral", "abs_integral")
            )
            ok = np.isfinite(src) & (absolute > 0)
            if ok.any():
                worst = max(worst, float(np.max(np.abs(grid[ok] - src[ok]) / absolute[ok])))
    return worst


def publish_gridded(
    files: list[str], pub: Publisher, summary: RunSummary, runner: str = "DirectRunner", force: bool = False
) -> None:
    """Publish ``inversions_gridded_monthly`` from the GCB2022-layout ``files`` and the GFAS store of the same
    catalog; without a GFAS store nothing is published (a warning says why)."""
    from fluxcube.recipes import gfas

    try:
        fire, gfas_version = gfas_store(pub)
    except InputError as err:
        summary.warnings.append(f"{GRIDDED_DATASET} not published: {err}")
        return
    infos, refused = read_files_on_beam(files, scan_gridded, pub.root.child("_runs", RECIPE), runner)
    if refused:
        summary.refused += refused
        summary.warnings.append(f"{GRIDDED_DATASET} not published: refused input")
        return
    members = sorted(
        ((i["path"], k, n) for i in infos for k, n in enumerate(i["members"])), key=lambda m: m[2]
    )
    names = [m[2] for m in members]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise InputError(members[0][0], f"members {dup} occur in more than one file")
    months = np.array(sorted({m for i in infos for m in i["months"]}), dtype="datetime64[M]")
    gfas_days = month_coverage(fire["time"].values, months)
    days = pd.DatetimeIndex(months.astype("datetime64[ns]")).days_in_month.to_numpy()
    complete = gfas_days == days
    missing = [str(m) for m in months[~complete]]
    gfas_manifest = pub.manifest_location(gfas.DATASET, gfas_version).url
    used = sorted({m[0] for m in members})
    release = Release(
        name=GRIDDED_DATASET,
        recipe=RECIPE,
        recipe_version=GRIDDED_RECIPE_VERSION,
        inputs=iter_files([*used, gfas_manifest]),
        description="Atmospheric inversions, monthly land CO2 flux and fire-adjusted land flux (minus GFAS) "
        "on the 0.5 degree grid, g C m-2 d-1, members " + ", ".join(names),
        params={
            "grid": "0.5deg",
            "chunks": [1, MONTH_CHUNK, SPACE_CHUNK, SPACE_CHUNK],
            "gfas_version": gfas_version,
        },
        synthetic=inputs_are_synthetic(used) or bool(pub.current(gfas.DATASET)["synthetic"]),
    )
    store = pub.prepare(release, force=force)
    if store is None:
        summary.up_to_date[GRIDDED_DATASET] = release.version
        return
    area_diff = max(i["area_diff"] for i in infos)
    attrs = {
        **release.provenance(),
        "title": "Inversion ensemble, monthly land-atmosphere CO2 flux and fire-adjusted flux, 0.5 degree",
        "Conventions": "CF-1.10",
        "sign_convention": "positive = flux to the atmosphere (source)",
        "input_stores": json.dumps({gfas.DATASET: gfas_version}),
        "regridding": "each source cell gives its flux density to the 0.5 degree cells inside it "
        "(first-order conservative, exact spherical overlap weights)",
        "source_cell_area_max_relative_difference": area_diff,
        "fire_adjustment_missing_months": json.dumps(missing),
    }
    if missing:
        summary.warnings.append(
            f"{gfas.DATASET} version {gfas_version} does not fully cover {len(missing)} month(s) "
            f"({', '.join(missing[:6])}{'...' if len(missing) > 6 else ''}): {ADJUSTED} is NaN there"
        )
    run_dir = pub.root.child("_runs", f"{RECIPE}-{uuid.uuid4().hex[:12]}")
    try:
        write_gridded_template(store, members, months, gfas_days, attrs)
        blocks = [(s, min(months.size, s + MONTH_CHUNK)) for s in range(0, months.size, MONTH_CHUNK)]

        def work(block: tuple[int, int]) -> dict[str, Any]:
            return gridded_block(block[0], block[1], members, months, complete, fire, store)

        gridcube.process_blocks_on_beam(blocks, work, run_dir.url, runner, label="months")
        checks = read_records(run_dir.url, "checks")
        failed = read_records(run_dir.url, "refused")
        if failed or len(checks) != len(blocks):
            summary.refused += sorted(failed, key=lambda r: r["file"])
            summary.warnings.append(f"{GRIDDED_DATASET}: some blocks failed: not published")
            return
        worst = conservation(checks)
        zarr.open_group(store.zarr_store(), mode="r+", zarr_format=3).attrs.update(
            {"area_integral_max_relative_difference": worst}
        )
        pub.commit(
            release,
            validate=lambda ds: validate_gridded(ds, checks, store),
            catalog_metadata=lambda ds: {**describe(ds), "fire_adjustment_missing_months": missing},
        )
        summary.published[GRIDDED_DATASET] = release.version
    finally:
        run_dir.remove()
