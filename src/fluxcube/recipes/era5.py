"""The ERA5 recipe: hourly ERA5 single-level fields (GRIB or CDS NetCDF) -> daily 0.5 degree Zarr.

Inputs: GRIB (edition 1 or 2, decoded with ecCodes message by message) and CDS NetCDF in both
layouts: the old one (dimension ``time``, sometimes with an ``expver`` dimension mixing ERA5 and
ERA5T) and the new one (2024+, dimension ``valid_time`` with ``number`` and ``expver``
coordinates). Variables ingested and what they become (units of the store in brackets):

========== ====================================== ============================================
source     meaning, source units                  daily product
========== ====================================== ============================================
t2m (2t)   2 m temperature, K, instantaneous      Tair, Tmin, Tmax [degC]: mean/min/max of the
                                                  24 values at 00..23 UTC, minus 273.15
d2m (2d)   2 m dew point, K, instantaneous        VPD [hPa]: daily mean of hourly es(T) - es(Td)
                                                  (needs t2m at the same hours)
tp         total precipitation, m, accumulated    P [mm d-1]: sum of the 24 hourly accumulations
           over the hour ending at valid time     ending 01:00..24:00 UTC, times 1000
ssrd       surface solar radiation downwards,     Rg [W m-2]: sum of the 24 hourly accumulations
           J m-2, accumulated over the hour       ending 01:00..24:00 UTC, divided by 86400 s
msdwswrf   mean surface downward short-wave       Rg [W m-2] when no ssrd: mean of the 24 hourly
(avg_sdswrf) flux, W m-2, mean over the hour      means ending 01:00..24:00 UTC
========== ====================================== ============================================

A UTC day D is complete for an instantaneous field when all 24 hours 00..23 of D are present, and
for an accumulated or mean field when all 24 periods ending at D 01:00 .. D+1 00:00 are present
(the value at D+1 00:00 closes day D: a one-day CDS file of ``tp`` at 00..23 UTC covers 23 hours
of its day and the last hour of the day before). Incomplete days are dropped with a note; so is a
cell with a missing hour. The saturation vapour pressure is the IFS (Tetens) formula over water,
es(T) = 6.1121 hPa exp(17.502 (T - 273.16) / (T - 32.19)); VPD is clipped at 0 (dew points above
the temperature after regridding).

Regridding to the 0.5 degree grid (cell centres -89.75..89.75, -179.75..179.75) is first-order
conservative: each source value is the mean of a cell of its grid spacing centred on its grid point,
and each output cell is the area-weighted mean of the source cells overlapping it, with exact
spherical weights (longitude overlap times the difference of sin(latitude), the integral of
cos(latitude)). For ERA5's 0.25 degree grid (points on multiples of 0.25) that is a 3x3 stencil of
weights 1/4, 1/2, 1/4 per direction (times the latitude weights); for a grid whose points sit at
cell centres (0.125 offsets) it is the 2x2 block mean. Longitudes 0..360 become -180..180. Only
output cells fully covered by source cells are written; the others are NaN (regional files).
Fields are regridded hourly, then aggregated to days (so Tmin/Tmax are extremes of the 0.5 degree
cell means). From a coarser grid that nests in the 0.5 degree grid (e.g. the simulated world's 1, 2 or
4 degrees) regridding copies values, so the days are aggregated on the source grid first and then
copied: the same float32 values, at 1/k^2 of the cost for k x k output cells per source cell.

Store: ``era5_daily_0p5deg``, dimensions (time, lat, lon), float32, the full global 0.5 degree
grid (chunks with no data are not stored), chunks (32 days, 90, 90) (about 1 MB each). Pipelines:
Beam pipeline 1 scans each file (headers, grid, units, times) and refuses bad files; the driver plans
complete days and writes the store's template; Beam pipeline 2 processes 32-day blocks (one block =
one time chunk, so no two workers write the same chunk), reading only the hours each block needs.
Then the store is validated (per-block sums, physical ranges) and published with :class:`Publisher`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
import scipy.sparse as sp
import xarray as xr
from pangeo_forge_recipes.patterns import ConcatDim, FilePattern

from fluxcube.catalog import describe
from fluxcube.errors import InputError
from fluxcube.publish import Publisher, Release, iter_files
from fluxcube.recipes import gridcube
from fluxcube.recipes.fluxnet_pipeline import RunSummary
from fluxcube.recipes.regions import LAT, LAT_EDGES, LON, LON_EDGES, RESOLUTION
from fluxcube.recipes.transforms import (
    REFUSED,
    MapOrRefuse,
    WriteRecords,
    create,
    inputs_are_synthetic,
    pipeline_options,
    read_records,
)
from fluxcube.storage import Location

log = logging.getLogger(__name__)

RECIPE = "era5"
RECIPE_VERSION = "1.0.0"
DATASET = "era5_daily_0p5deg"
TIME_CHUNK, SPACE_CHUNK = gridcube.TIME_CHUNK, gridcube.SPACE_CHUNK  # days; 0.5 degree cells
HOUR = np.timedelta64(1, "h")
DAY = np.timedelta64(1, "D")
GRIB_SUFFIXES = (".grib", ".grb", ".grib1", ".grib2", ".grb2")
NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf")


@dataclass(frozen=True)
class SourceVar:
    """An ERA5 variable the recipe ingests."""

    name: str
    kind: str  # "instant" (value at valid time) or "period" (over the hour ending at valid time)
    units: tuple[str, ...]  # accepted spellings of its (only) unit
    step_types: tuple[str, ...]  # GRIB stepType values that fit


SOURCES: dict[str, SourceVar] = {
    "t2m": SourceVar("t2m", "instant", ("K", "kelvin"), ("instant",)),
    "d2m": SourceVar("d2m", "instant", ("K", "kelvin"), ("instant",)),
    "tp": SourceVar("tp", "period", ("m", "m of water equivalent"), ("accum",)),
    "ssrd": SourceVar("ssrd", "period", ("J m**-2", "J m-2", "J/m2", "J m^-2"), ("accum",)),
    "msdwswrf": SourceVar("msdwswrf", "period", ("W m**-2", "W m-2", "W/m2", "W m^-2"), ("avg",)),
}
#: Names in files (NetCDF variable names, GRIB shortName / cfVarName) -> source variable.
ALIASES = {
    "t2m": "t2m",
    "2t": "t2m",
    "d2m": "d2m",
    "2d": "d2m",
    "tp": "tp",
    "ssrd": "ssrd",
    "msdwswrf": "msdwswrf",
    "avg_sdswrf": "msdwswrf",
}

PRODUCTS: dict[str, dict[str, str]] = {
    "Tair": {
        "units": "degC",
        "standard_name": "air_temperature",
        "long_name": "daily mean air temperature at 2 m",
        "cell_methods": "time: mean (24 hourly values 00..23 UTC)",
        "source": "ERA5 t2m (K) - 273.15",
    },
    "Tmin": {
        "units": "degC",
        "standard_name": "air_temperature",
        "long_name": "daily minimum air temperature at 2 m",
        "cell_methods": "time: minimum (24 hourly values 00..23 UTC)",
        "source": "ERA5 t2m (K) - 273.15",
    },
    "Tmax": {
        "units": "degC",
        "standard_name": "air_temperature",
        "long_name": "daily maximum air temperature at 2 m",
        "cell_methods": "time: maximum (24 hourly values 00..23 UTC)",
        "source": "ERA5 t2m (K) - 273.15",
    },
    "VPD": {
        "units": "hPa",
        "standard_name": "water_vapor_saturation_deficit_in_air",
        "long_name": "daily mean vapour pressure deficit at 2 m",
        "cell_methods": "time: mean (24 hourly values 00..23 UTC)",
        "source": "ERA5 t2m, d2m: es(T) - es(Td), es = 6.1121 hPa exp(17.502 (T - 273.16) / (T - 32.19))",
    },
    "P": {
        "units": "mm d-1",
        "standard_name": "lwe_precipitation_rate",
        "long_name": "daily total precipitation",
        "cell_methods": "time: sum (24 hourly accumulations ending 01:00..24:00 UTC)",
        "source": "ERA5 tp (m per hour) summed, times 1000",
    },
    "Rg": {
        "units": "W m-2",
        "standard_name": "surface_downwelling_shortwave_flux_in_air",
        "long_name": "daily mean global radiation (surface downward short-wave)",
        "cell_methods": "time: mean (24 hourly periods ending 01:00..24:00 UTC)",
        "source": "ERA5 ssrd (J m-2 per hour) summed / 86400 s, or msdwswrf (W m-2) averaged",
    },
}
NEEDS = {"Tair": ("t2m",), "Tmin": ("t2m",), "Tmax": ("t2m",), "VPD": ("t2m", "d2m"), "P": ("tp",)}
#: Physical ranges of the daily products (store units); a value outside fails validation.
RANGES = {
    "Tair": (-90.0, 60.0),
    "Tmin": (-95.0, 60.0),
    "Tmax": (-90.0, 65.0),
    "VPD": (0.0, 120.0),
    "P": (-0.01, 2000.0),
    "Rg": (0.0, 600.0),
}


# ------------------------------------------------------------------------------------ scanning
@dataclass
class VarInfo:
    """One source variable in one file: its valid times and where each time's field lives."""

    name: str  # source variable (key of SOURCES)
    name_in_file: str
    units: str
    times: list[str]  # ISO valid times (UTC), hourly
    locators: list[int]  # GRIB: byte offset of the message; NetCDF: index along the time dimension
    lat: list[float]
    lon: list[float]
    grib_layout: dict[str, int] = field(default_factory=dict)  # Ni, Nj, scanning flags (GRIB)


@dataclass
class FileInfo:
    """What a scan found in one input file."""

    path: str
    format: str  # "grib" or "netcdf"
    layout: str  # "grib", "cds-old" (time) or "cds-new" (valid_time)
    variables: dict[str, VarInfo]
    notes: list[str] = field(default_factory=list)
    time_dim: str = ""
    expver_dim: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (what :func:`dataclasses.asdict` gives, without its deep copies)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["variables"] = {
            k: {f.name: getattr(v, f.name) for f in dataclasses.fields(v)} for k, v in self.variables.items()
        }
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FileInfo:
        d = dict(d)
        d["variables"] = {k: VarInfo(**v) for k, v in d["variables"].items()}
        return cls(**d)

    def decoded_bytes(self) -> int:
        """Size of the decoded source arrays the recipe reads (float32 bytes)."""
        return sum(len(v.times) * len(v.lat) * len(v.lon) * 4 for v in self.variables.values())


def find_files(source: str) -> list[str]:
    """ERA5 input files under ``source`` (a file or a folder, searched recursively), sorted."""
    p = Path(source)
    if p.is_file():
        return [str(p)]
    if not p.is_dir():
        raise InputError(source, "no such file or folder")
    return sorted(
        str(f) for f in p.rglob("*") if f.is_file() and f.suffix.lower() in GRIB_SUFFIXES + NETCDF_SUFFIXES
    )


def scan(path: str) -> FileInfo:
    """Scan one file (headers, grid, units, valid times; no data values). Bad input: :class:`InputError`."""
    if path.lower().endswith(GRIB_SUFFIXES):
        info = scan_grib(path)
    elif path.lower().endswith(NETCDF_SUFFIXES):
        info = scan_netcdf(path)
    else:
        raise InputError(path, "not a GRIB or NetCDF file name")
    if not info.variables:
        raise InputError(
            path,
            f"no variable this recipe ingests (expected one of {sorted(SOURCES)}); {'; '.join(info.notes)}",
        )
    for v in info.variables.values():
        check_grid(path, v.name_in_file, np.asarray(v.lat), np.asarray(v.lon))
        try:
            regridder(v.lat, v.lon)
        except ValueError as err:
            raise InputError(path, f"{v.name_in_file}: {err}", column=v.name_in_file) from err
        times = np.array(v.times, dtype="datetime64[s]")
        if np.any(times.astype("int64") % 3600):
            raise InputError(
                path, f"{v.name_in_file}: valid times are not on whole hours", column=v.name_in_file
            )
        if np.unique(times).size != times.size:
            raise InputError(path, f"{v.name_in_file}: a valid time occurs twice", column=v.name_in_file)
    return info


def _check_units(path: str, src: SourceVar, name: str, units: str) -> None:
    if units.strip() not in src.units:
        raise InputError(
            path, f"{name}: units {units!r}, expected {' or '.join(repr(u) for u in src.units)}", column=name
        )


#: Keys read from every message; the rest (:data:`_GRIB_KEYS_ONCE`) once per distinct field layout.
_GRIB_KEYS_EACH: dict[str, type] = {
    "shortName": str,
    "stepType": str,
    "number": int,
    "validityDate": int,
    "validityTime": int,
    "offset": int,
    "startStep": int,
    "endStep": int,
    "stepUnits": int,
    "Ni": int,
    "Nj": int,
    "latitudeOfFirstGridPointInDegrees": float,
    "longitudeOfFirstGridPointInDegrees": float,
}
_GRIB_KEYS_ONCE: dict[str, type] = {
    "units": str,
    "gridType": str,
    "typeOfLevel": str,
    "iScansNegatively": int,
    "jScansPositively": int,
    "jPointsAreConsecutive": int,
    "latitudeOfLastGridPointInDegrees": float,
    "longitudeOfLastGridPointInDegrees": float,
}
_STEP_HOURS = {0: 1 / 60, 1: 1.0, 2: 24.0, 10: 3.0, 11: 6.0, 12: 12.0, 13: 1 / 3600}


def _grib_get(g: Any, key: str, kind: type) -> Any:
    import eccodes

    try:
        return eccodes.codes_get(g, key, kind)
    except eccodes.KeyValueNotFoundError:
        return None


def scan_grib(path: str) -> FileInfo:
    """Read every message's header with ecCodes (no values decoded)."""
    import eccodes

    info = FileInfo(path, "grib", "grib", {})
    ignored: dict[str, int] = defaultdict(int)
    grids: dict[str, tuple[Any, ...]] = {}
    once: dict[tuple[Any, ...], dict[str, Any]] = {}  # field layout -> the keys read once for it
    n = 0
    with open(path, "rb") as fh:
        while True:
            try:
                g = eccodes.codes_grib_new_from_file(fh, headers_only=True)
            except eccodes.GribInternalError as err:
                raise InputError(path, f"truncated or corrupt GRIB: message {n + 1}: {err}") from err
            if g is None:
                break
            n += 1
            try:
                h = {k: _grib_get(g, k, kind) for k, kind in _GRIB_KEYS_EACH.items()}
                sig = (
                    *(h[k] for k in ("shortName", "stepType", "Ni", "Nj")),
                    h["latitudeOfFirstGridPointInDegrees"],
                    h["longitudeOfFirstGridPointInDegrees"],
                )
                if sig not in once:
                    once[sig] = {k: _grib_get(g, k, kind) for k, kind in _GRIB_KEYS_ONCE.items()}
                h.update(once[sig])
            finally:
                eccodes.codes_release(g)
            _grib_message(path, n, h, info, ignored, grids)
    if n == 0:
        raise InputError(path, "no GRIB message found (empty or not a GRIB file)")
    info.notes += [f"{path}: {k} ({c} messages) not ingested" for k, c in sorted(ignored.items())]
    return info


def _grib_message(
    path: str,
    n: int,
    h: dict[str, Any],
    info: FileInfo,
    ignored: dict[str, int],
    grids: dict[str, tuple[Any, ...]],
) -> None:
    name = ALIASES.get(h["shortName"])
    if name is None:
        ignored[f"{h['shortName']}"] += 1
        return
    if h["typeOfLevel"] not in ("surface", "heightAboveGround", None):
        ignored[f"{h['shortName']} on {h['typeOfLevel']}"] += 1
        return
    if h["number"] not in (None, 0):
        ignored[f"{h['shortName']} ensemble member {h['number']}"] += 1
        return
    src = SOURCES[name]
    where = f"message {n} ({h['shortName']})"
    _check_units(path, src, where, h["units"] or "")
    if h["stepType"] not in src.step_types:
        raise InputError(path, f"{where}: stepType {h['stepType']!r}, expected {src.step_types[0]!r}")
    if src.kind == "period":
        hours = (h["endStep"] - h["startStep"]) * _STEP_HOURS.get(h["stepUnits"], np.nan)
        if not np.isclose(hours, 1.0):
            raise InputError(
                path,
                f"{where}: accumulation/mean over {h['startStep']}-{h['endStep']} (stepUnits "
                f"{h['stepUnits']}), expected over the hour ending at the valid time (ERA5 hourly)",
            )
    if h["gridType"] != "regular_ll":
        raise InputError(
            path, f"{where}: gridType {h['gridType']!r}, expected a regular_ll latitude/longitude grid"
        )
    grid = tuple(
        h[k]
        for k in (
            "Ni",
            "Nj",
            "latitudeOfFirstGridPointInDegrees",
            "latitudeOfLastGridPointInDegrees",
            "longitudeOfFirstGridPointInDegrees",
            "longitudeOfLastGridPointInDegrees",
            "iScansNegatively",
            "jScansPositively",
            "jPointsAreConsecutive",
        )
    )
    if name not in info.variables:
        ni, nj, la0, la1, lo0, lo1, ineg, _jpos, jcons = grid  # rows run la0 -> la1 either way
        if ineg:
            lo0, lo1 = lo1, lo0  # values are reordered west to east when read
        if lo1 < lo0:
            lo1 += 360.0
        lat = np.linspace(la0, la1, nj) if nj > 1 else np.array([la0])
        lon = np.linspace(lo0, lo1, ni) if ni > 1 else np.array([lo0])
        info.variables[name] = VarInfo(
            name,
            h["shortName"],
            h["units"],
            [],
            [],
            [round(float(x), 6) for x in lat],
            [round(float(x), 6) for x in lon],
            {"Ni": ni, "Nj": nj, "iScansNegatively": ineg, "jPointsAreConsecutive": jcons},
        )
        grids[name] = grid
    elif grids[name] != grid:
        raise InputError(path, f"{where}: grid differs from the file's earlier {h['shortName']} messages")
    date, hhmm = str(h["validityDate"]), int(h["validityTime"])
    t = dt.datetime(int(date[:4]), int(date[4:6]), int(date[6:8]), hhmm // 100, hhmm % 100)
    info.variables[name].times.append(t.isoformat())
    info.variables[name].locators.append(int(h["offset"]))


def _data_variables(nc: Any) -> dict[str, Any]:
    """The data variables of a netCDF4 dataset (as xarray sees them): neither dimension coordinates
    nor named in any variable's ``coordinates`` attribute."""
    coords = set(nc.dimensions)
    for var in nc.variables.values():
        coords.update(str(getattr(var, "coordinates", "")).split())
    return {name: var for name, var in nc.variables.items() if name not in coords}


def _decode_times(nc: Any, name: str) -> np.ndarray:
    """CF times of variable ``name`` as datetime64[s] (netCDF4's num2date, the proleptic calendars)."""
    import netCDF4

    t = nc[name]
    values = np.ma.filled(np.atleast_1d(t[:]), np.nan)
    dates = netCDF4.num2date(
        values, t.units, getattr(t, "calendar", "standard"), only_use_cftime_datetimes=False
    )
    return np.array([np.datetime64(d.isoformat(), "s") for d in np.atleast_1d(dates)], dtype="datetime64[s]")


def scan_netcdf(path: str) -> FileInfo:
    """Read a CDS NetCDF file's metadata (old ``time`` or new ``valid_time`` layout) with netCDF4
    (no data values; about 3x faster than opening it with xarray)."""
    import netCDF4

    try:
        nc = netCDF4.Dataset(path)
    except Exception as err:  # netCDF4/HDF5 raise OSError, RuntimeError...
        raise InputError(path, f"cannot open as NetCDF (truncated or corrupt?): {err}") from err
    try:
        return _scan_netcdf(path, nc)
    except InputError:
        raise
    except Exception as err:  # HDF5 errors on a damaged header
        raise InputError(path, f"cannot read the metadata: {type(err).__name__}: {err}") from err
    finally:
        nc.close()


def _scan_netcdf(path: str, nc: Any) -> FileInfo:
    dims = set(nc.dimensions)
    tdim = "valid_time" if "valid_time" in dims else "time" if "time" in dims else None
    lat_name = next((n for n in ("latitude", "lat") if n in nc.variables), None)
    lon_name = next((n for n in ("longitude", "lon") if n in nc.variables), None)
    if tdim is None:
        raise InputError(path, "no time dimension (expected 'time' or 'valid_time')")
    if lat_name is None or lon_name is None:
        raise InputError(path, "no latitude/longitude coordinates (expected 'latitude', 'longitude')")
    info = FileInfo(path, "netcdf", "cds-new" if tdim == "valid_time" else "cds-old", {}, time_dim=tdim)
    info.expver_dim = "expver" in dims
    if info.expver_dim:
        info.notes.append(f"{path}: expver dimension (ERA5 + ERA5T): the first non-missing value is used")
    try:
        times = _decode_times(nc, tdim)
    except Exception as err:
        units = getattr(nc[tdim], "units", None) if tdim in nc.variables else None
        raise InputError(path, f"{tdim}: cannot decode times (units {units!r}): {err}") from err
    iso = [str(t) for t in times]
    lat = [round(float(x), 6) for x in np.atleast_1d(np.asarray(nc[lat_name][:], dtype="float64"))]
    lon = [round(float(x), 6) for x in np.atleast_1d(np.asarray(nc[lon_name][:], dtype="float64"))]
    allowed = {tdim, lat_name, lon_name, "expver"}
    for vname, var in _data_variables(nc).items():
        name = ALIASES.get(str(vname))
        vdims = tuple(var.dimensions)
        if name is None:
            if len(vdims) >= 2:
                info.notes.append(f"{path}: {vname} not ingested")
            continue
        if set(vdims) - allowed:
            raise InputError(
                path,
                f"{vname}: dimensions {vdims}, expected ({tdim}, {lat_name}, {lon_name})",
                column=str(vname),
            )
        if lat_name not in vdims or lon_name not in vdims or tdim not in vdims:
            raise InputError(path, f"{vname}: dimensions {vdims} lack time, latitude or longitude")
        units = str(getattr(var, "units", ""))
        _check_units(path, SOURCES[name], str(vname), units)
        step = getattr(var, "GRIB_stepType", None)
        if step is not None and step not in SOURCES[name].step_types:
            raise InputError(
                path, f"{vname}: GRIB_stepType {step!r}, expected {SOURCES[name].step_types[0]!r}"
            )
        info.variables[name] = VarInfo(name, str(vname), units, iso, list(range(len(iso))), lat, lon)
    return info


# ---------------------------------------------------------------------------------- regridding
def check_grid(path: str, name: str, lat: np.ndarray, lon: np.ndarray) -> None:
    """A regular latitude/longitude grid with at least 2 x 2 points; otherwise :class:`InputError`."""
    for axis, values in (("latitude", lat), ("longitude", lon)):
        if values.size < 2:
            raise InputError(
                path,
                f"{name}: {values.size} {axis} point(s): a single point is not a grid to regrid",
                column=name,
            )
        d = np.diff(values)
        if not (np.all(d > 0) or np.all(d < 0)) or np.ptp(np.abs(d)) > 1e-3 * np.abs(d).mean():
            raise InputError(
                path, f"{name}: {axis} is not regularly spaced (spacings {np.unique(np.round(d, 4))[:5]})"
            )
    if np.abs(lat).max() > 90 + 1e-6:
        raise InputError(path, f"{name}: latitudes beyond +-90")
    if abs(lon[1] - lon[0]) * (lon.size - 1) > 360 - 1e-6:
        raise InputError(path, f"{name}: longitudes span 360 degrees or more (first meridian repeated?)")


def _overlap(out_edges: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Overlap length of output intervals (rows) with input intervals [lo, hi] (columns)."""
    a = np.maximum(out_edges[:-1, None], lo[None, :])
    b = np.minimum(out_edges[1:, None], hi[None, :])
    return np.clip(b - a, 0.0, None)


def _single_source(w: sp.csr_matrix) -> np.ndarray | None:
    """The source index of each output row when every row takes exactly one source value with weight 1
    (an output cell inside one source cell); otherwise None."""
    if np.all(np.diff(w.indptr) == 1) and np.allclose(w.data, 1.0, rtol=0.0, atol=1e-12):
        return np.asarray(w.indices, dtype=np.intp).copy()
    return None


def _band(w: sp.csr_matrix) -> tuple[slice, int, np.ndarray] | None:
    """(source slice, k, weights (rows, k)) when output row r takes exactly the k consecutive source
    values ``x[slice][r * k:(r + 1) * k]`` (e.g. 0.1 -> 0.5 degree: 5 per row, the source ascending or
    descending); otherwise None. Overlaps below 1e-9 of a cell (float rounding of coordinates that are
    meant to meet at cell edges) are left out: they change no float32 result."""
    w = w.copy()
    w.data[np.abs(w.data) < 1e-9] = 0.0
    w.eliminate_zeros()
    nnz = np.diff(w.indptr)
    if nnz.size == 0 or nnz.min() != nnz.max() or nnz[0] < 2:
        return None
    k = int(nnz[0])
    idx = np.asarray(w.indices, dtype=np.intp).reshape(-1, k)
    weights = np.asarray(w.data, dtype="float64").reshape(-1, k)
    order = np.argsort(idx, axis=1)  # CSR keeps the column order of the source
    idx, weights = np.take_along_axis(idx, order, 1), np.take_along_axis(weights, order, 1)
    lo, hi = int(idx.min()), int(idx.max())
    if hi - lo + 1 != idx.size:
        return None
    if np.array_equal(idx.ravel(), np.arange(lo, hi + 1)):  # ascending
        return slice(lo, hi + 1), k, weights
    flipped = idx[:, ::-1]  # descending source: rows run backwards
    if np.array_equal(flipped.ravel(), np.arange(hi, lo - 1, -1)):
        return slice(hi, lo - 1 if lo > 0 else None, -1), k, weights[:, ::-1].copy()
    return None


class Regridder:
    """First-order conservative regridding from a regular lat/lon grid to the 0.5 degree grid.

    Each source value is the mean over a cell of the grid spacing centred on its point; weights are
    exact spherical overlap areas (longitude overlap x difference of sin(latitude)). Output cells
    not fully covered by source cells are NaN; so are cells with any missing source value.
    """

    def __init__(self, lat: np.ndarray, lon: np.ndarray):
        lat = np.asarray(lat, dtype="float64")
        lon = np.asarray(lon, dtype="float64")
        dlat = abs(lat[1] - lat[0])
        dlon = abs(lon[1] - lon[0])
        lon = (lon + 180.0) % 360.0 - 180.0  # 0..360 -> -180..180
        if np.isclose(dlon * lon.size, 360.0 + dlon, atol=1e-6):
            raise ValueError("longitudes repeat the first meridian; drop the last column first")
        # latitude: overlap in sin(latitude), the exact area weight
        lo = np.clip(lat - dlat / 2, -90, 90)
        hi = np.clip(lat + dlat / 2, -90, 90)
        s_out = np.sin(np.deg2rad(LAT_EDGES))
        wlat = _overlap(s_out, np.sin(np.deg2rad(lo)), np.sin(np.deg2rad(hi)))
        full_lat = np.diff(s_out)
        # longitude: overlap in degrees, the source cells shifted by -360, 0, +360 (wrap-around)
        wlon = sum(_overlap(LON_EDGES, lon - dlon / 2 + s, lon + dlon / 2 + s) for s in (-360.0, 0.0, 360.0))
        cov_lat = wlat.sum(axis=1) / full_lat
        cov_lon = wlon.sum(axis=1) / RESOLUTION
        if cov_lon.max() > 1 + 1e-6:
            raise ValueError("source longitudes overlap themselves (more than 360 degrees)")
        rows = np.flatnonzero(cov_lat > 1 - 1e-6)
        cols = np.flatnonzero(cov_lon > 1 - 1e-6)
        if rows.size == 0 or cols.size == 0:
            raise ValueError("the source grid fully covers no 0.5 degree cell")
        self.i0, self.i1 = int(rows[0]), int(rows[-1]) + 1
        self.j0, self.j1 = int(cols[0]), int(cols[-1]) + 1
        keep_lat = np.zeros(LAT.size, bool)
        keep_lat[rows] = True
        keep_lon = np.zeros(LON.size, bool)
        keep_lon[cols] = True
        wlat = (wlat * keep_lat[:, None])[self.i0 : self.i1]
        wlon = (wlon * keep_lon[:, None])[self.j0 : self.j1]
        self.wlat = sp.csr_matrix(wlat / full_lat[self.i0 : self.i1, None])
        self.wlon = sp.csr_matrix(wlon / RESOLUTION)
        self.nlat, self.nlon = lat.size, lon.size
        self.covered = np.outer(keep_lat[self.i0 : self.i1], keep_lon[self.j0 : self.j1])
        self.all_covered = bool(self.covered.all())
        # a coarser, nesting source grid: each output cell lies in one source cell (weight 1), so the
        # regridding is a gather (same values as the matrix products, about 10x faster)
        self.take_lat, self.take_lon = _single_source(self.wlat), _single_source(self.wlon)
        # a finer grid whose cells nest in the output cells (e.g. 0.1 -> 0.5 degree: 5 x 5 source cells per
        # output cell): the same weighted sums as the matrix products, as k gathered rows (columns)
        # times their weights, a block mean weighted by area (about 3x faster than the sparse products)
        self.band_lat, self.band_lon = _band(self.wlat), _band(self.wlon)
        self.use_band = self.band_lat is not None and self.band_lon is not None

    @property
    def shape(self) -> tuple[int, int]:
        return self.i1 - self.i0, self.j1 - self.j0

    def _apply(self, x: np.ndarray) -> np.ndarray:
        if self.use_band:
            return self._apply_band(x)
        return self._apply_matrix(x)

    def _apply_band(self, x: np.ndarray) -> np.ndarray:
        """The matrix products' sums over blocks of k consecutive source rows, then columns, as strided
        views of ``x`` (no gather; float64)."""
        (sl, k, wl), (sc, m, wc) = self.band_lat, self.band_lon  # type: ignore[misc]
        nt = x.shape[0]
        v = x[:, sl, :].reshape(nt, -1, k, x.shape[2])  # (t, rows, k, nlon)
        y = v[:, :, 0, :] * wl[None, :, 0, None]
        for q in range(1, k):
            y += v[:, :, q, :] * wl[None, :, q, None]
        u = y[:, :, sc].reshape(nt, y.shape[1], -1, m)  # (t, rows, cols, m)
        z = u[..., 0] * wc[None, None, :, 0]
        for q in range(1, m):
            z += u[..., q] * wc[None, None, :, q]
        return z

    def _apply_matrix(self, x: np.ndarray) -> np.ndarray:
        nt = x.shape[0]
        y = self.wlat @ x.transpose(1, 0, 2).reshape(self.nlat, nt * self.nlon)  # (wl, nt*nlon)
        y = y.reshape(-1, self.nlon)  # (wl*nt, nlon)
        z = np.asarray((self.wlon @ y.T).T)  # (wl*nt, wn)
        return z.reshape(self.shape[0], nt, self.shape[1]).transpose(1, 0, 2)

    def __call__(self, fields: np.ndarray, min_valid: float = 1.0) -> np.ndarray:
        """Regrid ``fields`` (time, lat, lon) on the source grid -> (time, wlat, wlon) float32 window
        (same units as ``fields``).

        ``min_valid``: the fraction of an output cell's area that must hold finite source values (1: all
        of it, the default); the value is the area-weighted mean over those.
        """
        if self.take_lat is not None and self.take_lon is not None:
            # a gather copies values: no float64 needed, one pass (float32 result as below)
            fields = np.asarray(fields)
            out = fields.astype("float32", copy=False)[:, self.take_lat[:, None], self.take_lon[None, :]]
            if not self.all_covered:
                out[:, ~self.covered] = np.nan
            return out
        fields = np.asarray(fields, dtype="float64")
        valid = np.isfinite(fields)
        every = bool(valid.all())
        num = self._apply(fields if every else np.where(valid, fields, 0.0))
        den = np.ones_like(num) if every else self._apply(valid.astype("float64"))
        ok = (den > min(min_valid, 1.0) - 1e-6) & (den > 0) & self.covered[None]
        out = np.where(ok, num / np.where(den > 0, den, 1.0), np.nan)
        return out.astype("float32")


def regridder(lat: Any, lon: Any) -> Regridder:
    """The :class:`Regridder` of a source grid (latitudes, longitudes in degrees), built once per grid
    and process: files of one source share their grid, and building the weights costs milliseconds.
    Callers must not modify it."""
    return _cached_regridder(tuple(float(x) for x in lat), tuple(float(x) for x in lon))


@functools.lru_cache(maxsize=16)
def _cached_regridder(lat: tuple[float, ...], lon: tuple[float, ...]) -> Regridder:
    return Regridder(np.array(lat), np.array(lon))


# ---------------------------------------------------------------------------------------- reading
class Reader:
    """Decodes hourly fields of one file (ecCodes for GRIB, netCDF4 for NetCDF)."""

    def __init__(self, info: FileInfo):
        self.info = info
        self._ds: Any = None
        self._fh: Any = None
        self.regridders: dict[str, Regridder] = {}

    def regridder(self, name: str) -> Regridder:
        if name not in self.regridders:
            v = self.info.variables[name]
            self.regridders[name] = regridder(v.lat, v.lon)
        return self.regridders[name]

    def read(self, name: str, locators: list[int]) -> np.ndarray:
        """Fields (time, lat, lon) in source units and source grid order."""
        path = self.info.path
        try:
            if self.info.format == "grib":
                return self._read_grib(name, locators)
            return self._read_netcdf(name, locators)
        except InputError:
            raise
        except Exception as err:
            raise InputError(path, f"cannot decode {name}: {err} (truncated or corrupt file?)") from err

    def _read_grib(self, name: str, offsets: list[int]) -> np.ndarray:
        import eccodes

        v = self.info.variables[name]
        ni, nj = v.grib_layout["Ni"], v.grib_layout["Nj"]
        if self._fh is None:
            self._fh = open(self.info.path, "rb")  # noqa: SIM115 (closed in close())
        out = np.empty((len(offsets), nj, ni), dtype="float64")
        for k, off in enumerate(offsets):
            self._fh.seek(off)
            g = eccodes.codes_grib_new_from_file(self._fh)
            if g is None:
                raise InputError(
                    self.info.path, f"no GRIB message at byte {off} (file changed since the scan?)"
                )
            try:
                values = eccodes.codes_get_values(g)
                if eccodes.codes_get(g, "bitmapPresent"):
                    values[values == eccodes.codes_get(g, "missingValue", float)] = np.nan
            finally:
                eccodes.codes_release(g)
            if values.size != ni * nj:
                raise InputError(
                    self.info.path, f"message at byte {off}: {values.size} values, expected {ni * nj}"
                )
            field_ = (
                values.reshape(ni, nj).T if v.grib_layout["jPointsAreConsecutive"] else values.reshape(nj, ni)
            )
            if v.grib_layout["iScansNegatively"]:
                field_ = field_[:, ::-1]
            out[k] = field_
        return out

    def _read_netcdf(self, name: str, index: list[int]) -> np.ndarray:
        """netCDF4 read (CF scale/offset applied, fill -> NaN) of the time steps ``index``."""
        import netCDF4

        v = self.info.variables[name]
        if self._ds is None:
            self._ds = netCDF4.Dataset(self.info.path)
        var = self._ds[v.name_in_file]
        dims = list(var.dimensions)
        steps, inverse = np.unique(np.asarray(index), return_inverse=True)  # netCDF4: sorted, unique
        # consecutive steps as a slice: one hyperslab read instead of one per index
        sel = slice(int(steps[0]), int(steps[-1]) + 1) if steps[-1] - steps[0] + 1 == steps.size else steps
        key = tuple(sel if d == self.info.time_dim else slice(None) for d in dims)
        values = np.ma.filled(np.ma.asarray(var[key]).astype("float64"), np.nan)
        values = np.take(values, inverse, axis=dims.index(self.info.time_dim))
        if "expver" in dims:  # ERA5 + ERA5T: the first non-missing value along expver
            axis = dims.index("expver")
            first = np.argmax(np.isfinite(values), axis=axis)
            values = np.take_along_axis(values, np.expand_dims(first, axis), axis=axis).squeeze(axis)
            dims.remove("expver")
        lat_dim = next(d for d in dims if d in ("latitude", "lat"))
        lon_dim = next(d for d in dims if d in ("longitude", "lon"))
        order = [dims.index(d) for d in (self.info.time_dim, lat_dim, lon_dim)]
        return np.ascontiguousarray(values.transpose(order))

    def close(self) -> None:
        if self._ds is not None:
            self._ds.close()
        if self._fh is not None:
            self._fh.close()


# ------------------------------------------------------------------------------------ planning
@dataclass
class Plan:
    """Which days are complete, where each hour of each day comes from, the products and window."""

    days: list[str]  # ISO dates of the store's time axis
    products: list[str]
    sources: dict[str, dict[str, list[list[Any]]]]  # var -> day -> 24 x [file, locator]
    day_products: dict[str, list[str]]  # day -> products complete that day
    rg_source: str | None
    window: tuple[int, int, int, int]  # i0, i1, j0, j1 on the 0.5 degree grid, chunk aligned
    notes: list[str]

    def blocks(self) -> list[tuple[int, int]]:
        n = len(self.days)
        return [(s, min(n, s + TIME_CHUNK)) for s in range(0, n, TIME_CHUNK)]


def _day_and_hour(t: np.datetime64, kind: str) -> tuple[np.datetime64, int]:
    ref = t - HOUR if kind == "period" else t
    day = ref.astype("datetime64[D]")
    return day, int((ref - day) // HOUR)


def plan(infos: list[FileInfo]) -> Plan:
    """Assign each hour of each variable to one file and keep the complete days."""
    notes: list[str] = []
    hours: dict[str, dict[np.datetime64, dict[int, list[Any]]]] = defaultdict(lambda: defaultdict(dict))
    for info in sorted(infos, key=lambda i: i.path):
        for name, v in info.variables.items():
            kind = SOURCES[name].kind
            dup = 0
            for t, loc in zip(np.array(v.times, dtype="datetime64[s]"), v.locators, strict=True):
                day, h = _day_and_hour(t, kind)
                if h in hours[name][day]:
                    dup += 1
                    continue
                hours[name][day][h] = [info.path, loc]
            if dup:
                notes.append(
                    f"{info.path}: {dup} hours of {v.name_in_file} already in another file: not used"
                )
    complete: dict[str, set[str]] = {}
    for name, by_day in hours.items():
        complete[name] = set()
        for day, hs in sorted(by_day.items()):
            if len(hs) == 24:
                complete[name].add(str(day))
            else:
                span = "00..23 UTC" if SOURCES[name].kind == "instant" else "ending 01:00..24:00 UTC"
                notes.append(f"{name} {day}: {len(hs)} of 24 hourly values ({span}): day dropped")
    for day in sorted(complete.get("d2m", set()) - complete.get("t2m", set())):
        notes.append(f"d2m {day}: no complete t2m that day: no VPD")
    day_products: dict[str, list[str]] = defaultdict(list)
    for product, needs in NEEDS.items():
        ok = set.intersection(*(complete.get(n, set()) for n in needs))
        for day in ok:
            day_products[day].append(product)
    rg_source = "ssrd" if complete.get("ssrd") else "msdwswrf" if complete.get("msdwswrf") else None
    if complete.get("ssrd") and complete.get("msdwswrf"):
        notes.append("both ssrd and msdwswrf present: Rg from ssrd")
    if rg_source:
        for day in complete[rg_source]:
            day_products[day].append("Rg")
    days = sorted(day_products)
    products = [p for p in PRODUCTS if any(p in day_products[d] for d in days)]
    used = {name for p in products for name in (NEEDS.get(p) or (rg_source,))}
    sources = {  # complete days only: a day of another product's may lack hours of this variable
        name: {
            str(d): [hs[h] for h in range(24)]
            for d, hs in hours[name].items()
            if str(d) in day_products and str(d) in complete[name]
        }
        for name in used
    }
    window = _window(infos, sources)
    return Plan(days, products, sources, {d: sorted(day_products[d]) for d in days}, rg_source, window, notes)


def _window(
    infos: list[FileInfo], sources: dict[str, dict[str, list[list[Any]]]]
) -> tuple[int, int, int, int]:
    used = {(f, name) for name, by_day in sources.items() for hs in by_day.values() for f, _ in hs}
    i0, i1, j0, j1 = LAT.size, 0, LON.size, 0
    for info in infos:
        for name, v in info.variables.items():
            if (info.path, name) in used:
                r = regridder(v.lat, v.lon)
                i0, i1, j0, j1 = min(i0, r.i0), max(i1, r.i1), min(j0, r.j0), max(j1, r.j1)
    if i1 <= i0:
        return 0, 0, 0, 0
    c = SPACE_CHUNK
    return (i0 // c) * c, min(LAT.size, -(-i1 // c) * c), (j0 // c) * c, min(LON.size, -(-j1 // c) * c)


# --------------------------------------------------------------------------- daily aggregation
def saturation_vapour_pressure(t_kelvin: np.ndarray) -> np.ndarray:
    """es over water (hPa) from temperature (K): IFS Tetens formula."""
    return 6.1121 * np.exp(17.502 * (t_kelvin - 273.16) / (t_kelvin - 32.19))


def daily_products(
    hourly: dict[str, np.ndarray], products: list[str], rg_source: str | None
) -> dict[str, Any]:
    """Daily values (store units) from 24 hourly fields (24, lat, lon) per source variable (source units).

    A cell with any missing hour gives NaN.
    """
    out: dict[str, np.ndarray] = {}
    if "t2m" in hourly:
        t = hourly["t2m"].astype("float64")
        out["Tair"] = t.mean(axis=0) - 273.15
        out["Tmin"] = t.min(axis=0) - 273.15
        out["Tmax"] = t.max(axis=0) - 273.15
        if "d2m" in hourly and "VPD" in products:
            vpd = saturation_vapour_pressure(t) - saturation_vapour_pressure(hourly["d2m"].astype("float64"))
            out["VPD"] = np.clip(vpd, 0.0, None).mean(axis=0)
    if "tp" in hourly:
        out["P"] = hourly["tp"].astype("float64").sum(axis=0) * 1000.0  # m per day -> mm d-1
    if rg_source == "ssrd" and "ssrd" in hourly:
        out["Rg"] = hourly["ssrd"].astype("float64").sum(axis=0) / 86400.0  # J m-2 per day -> W m-2
    elif rg_source == "msdwswrf" and "msdwswrf" in hourly:
        out["Rg"] = hourly["msdwswrf"].astype("float64").mean(axis=0)
    return {k: v.astype("float32") for k, v in out.items() if k in products}


def _on_source_grid(r: Regridder, hours: list[tuple[Regridder, list[int], np.ndarray]]) -> np.ndarray:
    """The 24 hourly fields of one variable on their own grid (float32, as the regridder copies them;
    NaN for hours not read)."""
    arr = np.full((24, r.nlat, r.nlon), np.nan, dtype="float32")
    for _, hs, fields in hours:
        arr[hs] = fields
    return arr


def process_block(
    start: int, stop: int, plan_: Plan, infos: dict[str, FileInfo], store: Location, offset: int = 0
) -> dict[str, Any]:
    """Decode, regrid and aggregate the days ``start:stop`` of the store; write them; return checks.

    ``plan_.days[start - offset:stop - offset]`` are those days (``offset``: the store index of the
    plan's first day, when the plan holds only part of the days, see :func:`block_tasks`)."""
    i0, i1, j0, j1 = plan_.window
    days = plan_.days[start - offset : stop - offset]
    out = {p: np.full((len(days), i1 - i0, j1 - j0), np.nan, dtype="float32") for p in plan_.products}
    readers: dict[str, Reader] = {}
    decoded = 0
    try:
        for k, day in enumerate(days):
            wanted = plan_.day_products[day]
            parts: dict[str, list[tuple[Regridder, list[int], np.ndarray]]] = defaultdict(list)
            for name, by_day in plan_.sources.items():
                if day not in by_day:
                    continue
                by_file: dict[str, list[tuple[int, int]]] = defaultdict(list)
                for h, (path, loc) in enumerate(by_day[day]):
                    by_file[path].append((h, loc))
                for path, items in by_file.items():
                    reader = readers.setdefault(path, Reader(infos[path]))
                    fields = reader.read(name, [loc for _, loc in items])
                    decoded += fields.size * 4
                    parts[name].append((reader.regridder(name), [h for h, _ in items], fields))
            grids = {id(r): r for hours in parts.values() for r, _, _ in hours}
            gather = next(iter(grids.values())) if len(grids) == 1 else None
            if gather is not None and gather.take_lat is not None and gather.take_lon is not None:
                # one coarser, nesting source grid: regridding copies values, so the daily products of
                # the source cells, copied, are those of the copies (the same float32 values), at a
                # fraction of the cost (1/64 of the cells at 4 degrees)
                r = gather
                hourly = {name: _on_source_grid(r, hours) for name, hours in parts.items()}
                for p, values in daily_products(hourly, wanted, plan_.rg_source).items():
                    out[p][k, r.i0 - i0 : r.i1 - i0, r.j0 - j0 : r.j1 - j0] = r(values[None])[0]
                continue
            hourly = {}
            for name, hours in parts.items():
                arr = np.full((24, i1 - i0, j1 - j0), np.nan, dtype="float32")
                for r, hs, fields in hours:
                    arr[hs, r.i0 - i0 : r.i1 - i0, r.j0 - j0 : r.j1 - j0] = r(fields)
                hourly[name] = arr
            for p, values in daily_products(hourly, wanted, plan_.rg_source).items():
                out[p][k] = values
    finally:
        for reader in readers.values():
            reader.close()
    checks = gridcube.write_block(store, out, slice(start, stop), slice(i0, i1), slice(j0, j1))
    return {"block": [start, stop], "checks": checks, "decoded_bytes": decoded}


# ------------------------------------------------------------------------------------- the store
def write_template(store: Location, plan_: Plan, attrs: dict[str, Any]) -> None:
    """Coordinates, attributes and empty (unwritten) float32 variables of the store."""
    time_attrs = {
        "standard_name": "time",
        "long_name": "UTC day",
        "comment": "start of the UTC day (00:00 UTC); only complete days are present, so days may be missing",
    }
    gridcube.write_template(store, plan_.days, {p: PRODUCTS[p] for p in plan_.products}, attrs, time_attrs)


def validate(
    ds: xr.Dataset, checks: list[dict[str, Any]], products: list[str], window: tuple[int, int, int, int]
) -> None:
    """Each block's count and sum come back from the store; every value is physically plausible.

    Reads only the data window (the chunks the blocks wrote), one block at a time.
    """
    missing = [p for p in products if p not in ds]
    if missing:
        raise ValueError(f"variables {missing} missing from the store")
    i0, i1, j0, j1 = window
    for c in checks:
        s0, s1 = c["block"]
        block = ds[list(c["checks"])].isel(time=slice(s0, s1), lat=slice(i0, i1), lon=slice(j0, j1))
        values = {p: np.asarray(block[p].values) for p in c["checks"]}
        for p, want in c["checks"].items():
            v = values[p]
            got = gridcube.count_sum(v)
            n, total = got["count"], got["sum"]
            if n != want["count"] or not np.isclose(total, want["sum"], rtol=1e-6, atol=1e-3):
                raise ValueError(f"{p} days {s0}:{s1}: store has {n} values summing to {total}, wrote {want}")
            lo, hi = RANGES[p]
            vmin, vmax = gridcube.finite_range(v)
            if n and (vmin < lo or vmax > hi):
                units = PRODUCTS[p]["units"]
                raise ValueError(f"{p}: values {vmin:.4g}..{vmax:.4g} outside {lo}..{hi} {units}")
        if {"Tmin", "Tair", "Tmax"} <= set(values):
            ok = np.isfinite(values["Tair"])
            tmin, tair, tmax = (values[p][ok] for p in ("Tmin", "Tair", "Tmax"))
            if np.any(tmin > tair + 1e-4) or np.any(tair > tmax + 1e-4):
                raise ValueError(f"days {s0}:{s1}: Tmin <= Tair <= Tmax does not hold")


# ------------------------------------------------------------------------------------ the recipe
def file_pattern(files: list[str]) -> FilePattern:
    """pangeo-forge ``FilePattern`` over the input files (one key per file)."""
    return FilePattern(lambda file: file, ConcatDim("file", keys=list(files)))


def scan_files(files: list[str], runner: str, run_dir: str) -> tuple[list[FileInfo], list[dict[str, str]]]:
    """Beam pipeline 1: scan every file; return the accepted files' info and the refusals."""
    pattern = file_pattern(files)
    with beam.Pipeline(options=pipeline_options(runner)) as p:
        out = (
            p
            | "files" >> create(list(pattern.items()), runner)
            | "scan"
            >> beam.ParDo(
                MapOrRefuse(lambda item: scan(item[1]).to_dict(), "scan", lambda e: e[1])
            ).with_outputs(REFUSED, main="ok")
        )
        _ = out.ok | "infos" >> WriteRecords(run_dir, "infos")  # one file per bundle
        _ = out[REFUSED] | "refusals" >> WriteRecords(run_dir, "refused")
    infos = sorted((FileInfo.from_dict(d) for d in read_records(run_dir, "infos")), key=lambda i: i.path)
    return infos, sorted(read_records(run_dir, "refused"), key=lambda r: r["file"])


Task = tuple[int, int, tuple["Plan", dict[str, FileInfo]]]  # (start, stop, (part of the plan, its files))


def block_tasks(plan_: Plan, infos: list[FileInfo]) -> list[Task]:
    """One element per 32-day block: (start, stop, (the plan of those days, the files they read)).

    Each element carries only its own days' part of the plan, so the Beam transform itself stays small
    (it is pickled and compressed with every pipeline) and a block's payload does not grow with the run.
    """
    by_path = {i.path: i for i in infos}
    tasks = []
    for start, stop in plan_.blocks():
        days = plan_.days[start:stop]
        sources = {
            name: {d: by_day[d] for d in days if d in by_day} for name, by_day in plan_.sources.items()
        }
        part = dataclasses.replace(
            plan_,
            days=days,
            sources=sources,
            day_products={d: plan_.day_products[d] for d in days},
            notes=[],
        )
        paths = {f for by_day in sources.values() for hs in by_day.values() for f, _ in hs}
        tasks.append((start, stop, (part, {f: by_path[f] for f in sorted(paths)})))
    return tasks


def write_blocks(plan_: Plan, infos: list[FileInfo], store: Location, runner: str, run_dir: str) -> None:
    """Beam pipeline 2: one element per 32-day block (= one time chunk)."""

    def work(task: Task) -> dict[str, Any]:
        start, stop, (part, files) = task
        return process_block(start, stop, part, files, store, offset=start)

    gridcube.process_blocks_on_beam(block_tasks(plan_, infos), work, run_dir, runner)


def run(source: str, target: str, runner: str = "DirectRunner", force: bool = False) -> RunSummary:
    """Ingest the ERA5 files under ``source`` into ``era5_daily_0p5deg`` published under ``target``."""
    pub = Publisher(target)
    files = find_files(source)
    summary = RunSummary()
    if not files:
        summary.warnings.append(f"{source}: no GRIB or NetCDF files")
        return summary
    run_dir = pub.root.child("_runs", f"{RECIPE}-{uuid.uuid4().hex[:12]}")
    try:
        infos, summary.refused = scan_files(files, runner, run_dir.url)
        summary.skipped += [n for i in infos for n in i.notes]
        plan_ = plan(infos)
        summary.warnings += plan_.notes
        if not plan_.days:
            summary.warnings.append("no complete day of any product: nothing published")
            return summary
        used = sorted({f for by_day in plan_.sources.values() for hs in by_day.values() for f, _ in hs})
        synthetic = inputs_are_synthetic(used)
        release = Release(
            name=DATASET,
            recipe=RECIPE,
            recipe_version=RECIPE_VERSION,
            inputs=iter_files(used),
            description="ERA5 daily meteorology on the 0.5 degree grid: " + ", ".join(plan_.products),
            params={
                "grid": "0.5deg",
                "regrid": "conservative",
                "chunks": [TIME_CHUNK, SPACE_CHUNK, SPACE_CHUNK],
            },
            synthetic=synthetic,
        )
        store = pub.prepare(release, force=force)
        if store is None:
            summary.up_to_date[DATASET] = release.version
            return summary
        attrs = {
            **release.provenance(),
            "title": "ERA5 daily meteorology, 0.5 degree",
            "Conventions": "CF-1.10",
            "institution": "derived by fluxcube from ECMWF ERA5 (Copernicus Climate Change Service)",
            "regridding": "first-order conservative, exact spherical cell-overlap weights; cells not fully "
            "covered by the source grid are NaN",
            "time_convention": "UTC days; instantaneous fields 00..23 UTC; accumulations/means over the "
            "hours ending 01:00..24:00 UTC",
            "dropped": json.dumps(plan_.notes),
            "license": "Contains modified Copernicus Climate Change Service information",
        }
        write_template(store, plan_, attrs)
        write_blocks(plan_, infos, store, runner, run_dir.url)
        checks = read_records(run_dir.url, "checks")
        failed = [r for r in read_records(run_dir.url, "refused") if r not in summary.refused]
        if failed or len(checks) != len(plan_.blocks()):
            summary.refused += failed
            summary.warnings.append("some blocks failed: nothing published")
            return summary
        pub.commit(
            release,
            validate=lambda ds: validate(ds, checks, plan_.products, plan_.window),
            catalog_metadata=lambda ds: {
                **describe(ds),
                "refused": summary.refused,
                "data_extent": data_extent(plan_.window),
                "decoded_bytes": sum(c["decoded_bytes"] for c in checks),
            },
            update_catalog=True,
        )
        summary.published[DATASET] = release.version
        return summary
    finally:
        run_dir.remove()


def data_extent(window: tuple[int, int, int, int]) -> dict[str, float]:
    """Edges (degrees) of a window (i0, i1, j0, j1) of the 0.5 degree grid, for the catalog."""
    i0, i1, j0, j1 = window
    return {
        "lat_min": float(LAT_EDGES[i0]),
        "lat_max": float(LAT_EDGES[i1]),
        "lon_min": float(LON_EDGES[j0]),
        "lon_max": float(LON_EDGES[j1]),
    }
