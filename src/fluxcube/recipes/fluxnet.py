"""Read FLUXNET-family site files into one in-memory table per site and time step.

Understood inputs (file name decides the kind):

- FLUXNET2015 / ONEFlux CSVs ``FLX_<SITE>_FLUXNET2015_<SUBSET|FULLSET|ERAI>_<HH|HR|DD|WW|MM|YY>_...csv``
- FluxDataKit CSVs ``FLX_<SITE>_FLUXDATAKIT_FULLSET_<DD|HH>_...csv`` (ISO dates, ``NA`` missing)
- FLUXNET2015 daily files merged with land-model output (``tutorial3_<CC>_<Xxx>.csv``): the model
  columns (``NEE, GPP, ER, TSOI_10CM, FSH, EFLX_LH_TOT, TSA, PBOT, RAIN, FGR``) and join helpers
  (``year.x``...) are not observations and are dropped
- AmeriFlux BASE half-hourly CSVs ``AMF_<SITE>_BASE_<HH|HR>_<ver>.csv``
- PLUMBER2 netCDF pairs ``<SITE>_<y0>-<y1>_FLUXNET2015_<Flux|Met>.nc``

Time convention (stated in every store's ``time`` attributes):

- half-hourly and hourly: ``time`` is the **start** of the averaging period in **UTC**: local standard
  time (FLUXNET files carry no daylight saving) minus the site's UTC offset from the metadata tables;
- daily, weekly, monthly, yearly: ``time`` is the first day (00:00) of the period as labelled in the
  file, i.e. periods of the site's local standard time; the site's ``utc_offset`` is stored with it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fluxcube.errors import InputError
from fluxcube.recipes import fluxnet_vars
from fluxcube.recipes.textfile import decode_text, read_table
from fluxcube.storage import location

log = logging.getLogger(__name__)

MODEL_COLUMNS = ("NEE", "GPP", "ER", "TSOI_10CM", "FSH", "EFLX_LH_TOT", "TSA", "PBOT", "RAIN", "FGR")
_HELPER = re.compile(r".*\.(x|y)$")
_FLX = re.compile(
    r"FLX_(?P<site>[A-Z]{2}-[A-Za-z0-9]{3})_(?P<product>FLUXNET2015|FLUXDATAKIT)_"
    r"(?P<set>[A-Z]+)_(?P<step>HH|HR|DD|WW|MM|YY)_.*\.csv$"
)
_FLX_AUX = re.compile(r"FLX_(?P<site>[A-Z]{2}-[A-Za-z0-9]{3})_FLUXNET2015_(?P<set>AUX[A-Z]+)_.*\.csv$")
_AMF = re.compile(r"AMF_(?P<site>[A-Z]{2}-[A-Za-z0-9]{3})_BASE_(?P<step>HH|HR)_.*\.csv$")
_MERGED = re.compile(r"tutorial3_(?P<cc>[A-Z]{2})_(?P<id>[A-Za-z0-9]{3})\.csv$")
_PLUMBER = re.compile(r"(?P<site>[A-Z]{2}-[A-Za-z0-9]{3})_\d{4}-\d{4}_FLUXNET2015_(?P<part>Flux|Met)\.nc$")

STEP_SECONDS = {"HH": 1800, "HR": 3600}
#: Variables that say a file carries CO2 fluxes (one must be present in flux files).
NEE_PREFIXES = ("NEE", "FC")


@dataclass(frozen=True)
class SourceFile:
    """One input file and what its name says about it."""

    url: str
    kind: str  # fluxnet2015 | fluxdatakit | merged | ameriflux | plumber | auxiliary
    site: str
    step: str
    product: str  # name of the store family, e.g. "fluxnet2015"
    flux_file: bool  # must carry an NEE column

    @property
    def store(self) -> str:
        """Name of the dataset this file feeds, e.g. ``fluxnet2015_dd``."""
        return f"{self.product}_{self.step.lower()}"


@dataclass
class SiteTable:
    """One site's records at one time step, as read from one or more files."""

    site: str
    store: str
    step: str
    time: np.ndarray  # datetime64[ns], see the module docstring for the convention
    columns: dict[str, np.ndarray]  # name -> values (float64, or float32 when the file had float32)
    attrs: dict[str, dict[str, str]]
    files: list[str]
    warnings: list[str] = field(default_factory=list)
    site_attrs: dict[str, Any] = field(default_factory=dict)

    def checks(self) -> dict[str, Any]:
        """Per variable: the number of values and a sha256 of them (as float64, in time order).

        The store must give back exactly these: compared after writing, before publication.
        """
        return {name: value_digest(values) for name, values in self.columns.items()}


def value_digest(values: np.ndarray) -> list[Any]:
    """``[count, sha256]`` of the non-missing values of a series, as float64 in order."""
    v = np.asarray(values, dtype=np.float64)
    ok = v[~np.isnan(v)]
    return [int(ok.size), hashlib.sha256(np.ascontiguousarray(ok).tobytes()).hexdigest()]


def classify(url: str) -> SourceFile | None:
    """What a file is, from its name; None for files the FLUXNET recipe does not read."""
    name = os.path.basename(url)
    if m := _FLX.match(name):
        product = m["product"].lower()
        return SourceFile(url, product, m["site"], m["step"], product, m["set"] != "ERAI")
    if m := _FLX_AUX.match(name):
        return SourceFile(url, "auxiliary", m["site"], "", "fluxnet2015", False)
    if m := _AMF.match(name):
        return SourceFile(url, "ameriflux", m["site"], m["step"], "ameriflux", True)
    if m := _MERGED.match(name):
        return SourceFile(url, "merged", f"{m['cc']}-{m['id']}", "DD", "fluxnet2015", True)
    if m := _PLUMBER.match(name):
        return SourceFile(url, "plumber", m["site"], "HH", "plumber", m["part"] == "Flux")
    return None


def find_files(source: str) -> list[str]:
    """All files under ``source`` (URL or folder) that the FLUXNET recipe reads, sorted."""
    loc = location(source)
    paths = loc.fs.find(loc.path)
    prefix = "" if loc.is_local else loc.url.split("://")[0] + "://"
    return sorted(prefix + p for p in paths if classify(p) is not None)


# --------------------------------------------------------------------------- timestamps
def _parse_stamp(values: pd.Series, fmt: str, file: str, column: str, first_line: int) -> pd.DatetimeIndex:
    text = values.astype(str).str.strip()
    parsed = pd.to_datetime(text, format=fmt, errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(file, f"timestamp {text.iloc[i]!r} does not match {fmt}", first_line + i, column)
    return pd.DatetimeIndex(parsed)


_STAMP_FORMATS = {4: "%Y", 6: "%Y%m", 8: "%Y%m%d", 10: "%Y-%m-%d", 12: "%Y%m%d%H%M"}


def _timestamps(frame: pd.DataFrame, file: str, step: str, first_line: int) -> pd.DatetimeIndex:
    """Period starts in local standard time, checked for order and duplicates."""
    if "TIMESTAMP_START" in frame:
        col = "TIMESTAMP_START"
        t = _parse_stamp(frame[col], "%Y%m%d%H%M", file, col, first_line)
        if "TIMESTAMP_END" in frame:
            end = _parse_stamp(frame["TIMESTAMP_END"], "%Y%m%d%H%M", file, "TIMESTAMP_END", first_line)
            width = (end - t).total_seconds().to_numpy()
            expected = STEP_SECONDS.get(step)
            if expected is not None and (width != expected).any():
                i = int(np.argmax(width != expected))
                raise InputError(
                    file,
                    f"period of {width[i]:.0f} s, expected {expected} s for step {step}",
                    first_line + i,
                    "TIMESTAMP_END",
                )
    elif "TIMESTAMP" in frame:
        col = "TIMESTAMP"
        sample = str(frame[col].iloc[0]).strip()
        fmt = _STAMP_FORMATS.get(len(sample))
        if fmt is None:
            raise InputError(
                file, f"timestamp {sample!r}: expected YYYY, YYYYMM, YYYYMMDD or YYYY-MM-DD", first_line, col
            )
        t = _parse_stamp(frame[col], fmt, file, col, first_line)
    else:
        raise InputError(file, "no TIMESTAMP or TIMESTAMP_START column", first_line - 1)
    diffs = np.diff(t.as_unit("s").asi8)
    if (diffs == 0).any():
        i = int(np.argmax(diffs == 0)) + 1
        raise InputError(file, f"duplicated timestamp {t[i]}", first_line + i, col)
    if (diffs < 0).any():
        i = int(np.argmax(diffs < 0)) + 1
        raise InputError(file, f"timestamp {t[i]} goes back in time (after {t[i - 1]})", first_line + i, col)
    _check_grid(t, step, file, first_line, col)
    return t


def _check_grid(t: pd.DatetimeIndex, step: str, file: str, first_line: int, col: str) -> None:
    if step in STEP_SECONDS:
        off = t.as_unit("s").asi8 % STEP_SECONDS[step]
        bad = off != 0
    elif step == "DD":
        bad = (t.hour != 0) | (t.minute != 0)
    elif step == "MM":
        bad = t.day != 1
    elif step == "YY":
        bad = (t.month != 1) | (t.day != 1)
    else:
        return
    bad = np.asarray(bad)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(file, f"timestamp {t[i]} is not on the {step} grid", first_line + i, col)


# --------------------------------------------------------------------------- CSV readers
def _is_model_column(name: str) -> bool:
    return name in MODEL_COLUMNS or bool(_HELPER.match(name))


def _read_bytes(url: str) -> bytes:
    loc = location(url)
    with loc.fs.open(loc.path, "rb") as f:
        return f.read()


def read_csv_file(src: SourceFile, utc_offset_hours: float | None) -> SiteTable:
    """Read one FLUXNET-family CSV; raise :class:`InputError` naming file, line and column."""
    file = src.url
    text = decode_text(_read_bytes(file), file)
    stamp_cols = ("TIMESTAMP", "TIMESTAMP_START", "TIMESTAMP_END")
    skip = _is_model_column if src.kind == "merged" else None
    frame, first_line = read_table(text, file, string_columns=stamp_cols, skip=skip)
    warnings: list[str] = []
    local = _timestamps(frame, file, src.step, first_line)
    data_cols = [c for c in frame.columns if c not in stamp_cols]
    if src.flux_file and not any(c == p or c.startswith(p + "_") for c in data_cols for p in NEE_PREFIXES):
        raise InputError(
            file,
            "no NEE column (NEE_VUT_REF, NEE_..., or FC): a flux file must carry CO2 fluxes",
            first_line - 1,
            "NEE",
        )
    columns: dict[str, np.ndarray] = {}
    attrs: dict[str, dict[str, str]] = {}
    for col in data_cols:
        values = frame[col].to_numpy(dtype=np.float64)
        a, plausible, known = fluxnet_vars.describe(col, src.step)
        if not known:
            warnings.append(f"{os.path.basename(file)}: unknown variable {col!r} kept without units")
        if plausible is not None:
            _check_plausible(values, plausible, a["units"], file, col, first_line)
        columns[col] = values
        attrs[col] = a
    time = _to_store_time(local, src.step, utc_offset_hours, file)
    return SiteTable(src.site, src.store, src.step, time, columns, attrs, [file], warnings)


def _check_plausible(
    values: np.ndarray, rng: tuple[float, float], units: str, file: str, col: str, first_line: int
) -> None:
    finite = values[np.isfinite(values)]
    if finite.size < 3:
        return
    median = float(np.median(finite))
    lo, hi = rng
    if not lo <= median <= hi:
        raise InputError(
            file,
            f"median {median:g} is outside {lo:g}..{hi:g} {units}: the values contradict the variable's "
            f"units ({units}); was it written in other units?",
            first_line,
            col,
        )


def _to_store_time(
    local: pd.DatetimeIndex, step: str, utc_offset_hours: float | None, file: str
) -> np.ndarray:
    if step not in STEP_SECONDS:
        return local.to_numpy(dtype="datetime64[ns]")
    if utc_offset_hours is None:
        raise InputError(
            file,
            "no UTC offset known for this site: add it to the metadata tables "
            "(UTC_OFFSET in the BIF table or a utc_offset column)",
        )
    shift = pd.Timedelta(hours=float(utc_offset_hours))
    if shift.total_seconds() % STEP_SECONDS[step]:
        raise InputError(file, f"UTC offset {utc_offset_hours} h is not a whole number of {step} steps")
    return (local - shift).to_numpy(dtype="datetime64[ns]")


# --------------------------------------------------------------------------- PLUMBER netCDF
_PLUMBER_UNITS = {
    "W/m2": "W m-2",
    "m/s": "m s-1",
    "umol/m2/s": "umol m-2 s-1",
    "kg/m2/s": "kg m-2 s-1",
    "kg/kg": "kg kg-1",
    "-": "1",
}
_PLUMBER_EXPECTED = {
    "Tair": "K",
    "SWdown": "W m-2",
    "LWdown": "W m-2",
    "VPD": "hPa",
    "Qair": "kg kg-1",
    "Psurf": "Pa",
    "Precip": "kg m-2 s-1",
    "Wind": "m s-1",
    "RH": "%",
    "CO2air": "ppm",
    "NEE": "umol m-2 s-1",
    "GPP": "umol m-2 s-1",
    "Resp": "umol m-2 s-1",
    "Qle": "W m-2",
    "Qh": "W m-2",
    "Ustar": "m s-1",
    "Rnet": "W m-2",
}


# PLUMBER2 standard names that are wrong: NEE is positive upward (to the atmosphere), not "downward"
# (no CF name fits, so none); RH is misspelt in the files
_PLUMBER_STANDARD_NAMES = {"NEE": None, "NEE_uc": None, "RH": "relative_humidity"}


def read_plumber_file(src: SourceFile, utc_offset_hours: float | None) -> SiteTable:
    """Read one PLUMBER2 netCDF (Flux or Met half of a pair), float32 values kept as stored."""
    import xarray as xr

    file = src.url
    loc = location(file)
    try:
        with loc.fs.open(loc.path, "rb") as f:
            engine = "scipy" if f.read(4)[:3] == b"CDF" else "h5netcdf"  # netCDF3 classic or netCDF4
            f.seek(0)
            ds = xr.open_dataset(f, engine=engine, decode_times=False, mask_and_scale=False).load()
    except Exception as err:  # h5py/netCDF raise many kinds
        raise InputError(file, f"cannot read as netCDF4/HDF5: {err}") from err
    if "time" not in ds.dims:
        raise InputError(file, "no time dimension", column="time")
    units = ds["time"].attrs.get("units", "")
    m = re.match(r"seconds since (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})", units)
    if not m:
        raise InputError(
            file, f"time units {units!r}: expected 'seconds since YYYY-MM-DD hh:mm:ss'", column="time"
        )
    local = pd.Timestamp(m[1]) + pd.to_timedelta(ds["time"].values, unit="s")
    local = pd.DatetimeIndex(local)
    diffs = np.diff(local.as_unit("s").asi8)
    if (diffs <= 0).any():
        i = int(np.argmax(diffs <= 0)) + 1
        raise InputError(
            file, f"time value {local[i]} is duplicated or goes back in time", column=f"time[{i}]"
        )
    _check_grid(local, "HH", file, 0, "time")
    columns: dict[str, np.ndarray] = {}
    attrs: dict[str, dict[str, str]] = {}
    warnings: list[str] = []
    for name, var in ds.data_vars.items():
        if var.dims != ("time", "y", "x"):
            continue
        declared = str(var.attrs.get("units", ""))
        cf = _PLUMBER_UNITS.get(declared, declared)
        expected = _PLUMBER_EXPECTED.get(str(name))
        if expected is not None and cf != expected:
            raise InputError(
                file, f"units {declared!r} contradict the variable: expected {expected}", column=str(name)
            )
        if not declared:
            warnings.append(f"{os.path.basename(file)}: variable {name!r} has no units; kept as is")
        values = var.values[:, 0, 0]
        for marker in ("_FillValue", "missing_value"):
            fill = var.attrs.get(marker)
            if fill is not None:
                values = np.where(values == fill, np.nan, values).astype(values.dtype)
        columns[str(name)] = values
        a = {"long_name": str(var.attrs.get("long_name", name)), "units": cf}
        std = _PLUMBER_STANDARD_NAMES.get(str(name), var.attrs.get("standard_name"))
        if std and std != "NULL":
            a["standard_name"] = str(std)
        if var.attrs.get("Fluxnet_name") not in (None, "NULL"):
            a["fluxnet_name"] = str(var.attrs["Fluxnet_name"])
        attrs[str(name)] = a
    if src.flux_file and "NEE" not in columns:
        raise InputError(file, "no NEE variable: a PLUMBER Flux file must carry NEE", column="NEE")
    site_attrs = {
        k: float(ds[k].values.ravel()[0]) for k in ("latitude", "longitude", "elevation") if k in ds
    }
    time = _to_store_time(local, "HH", utc_offset_hours, file)
    return SiteTable(src.site, src.store, "HH", time, columns, attrs, [file], warnings, site_attrs)


def read_file(src: SourceFile, utc_offset_hours: float | None) -> SiteTable:
    """Read any supported file (see the module docstring)."""
    if src.kind == "plumber":
        return read_plumber_file(src, utc_offset_hours)
    return read_csv_file(src, utc_offset_hours)


# --------------------------------------------------------------------------- merging
def merge_tables(tables: list[SiteTable]) -> SiteTable:
    """Merge one site's tables of one store (e.g. SUBSET and FULLSET files, PLUMBER Flux and Met).

    Where two files give the same variable at the same time, the values must agree (both missing or
    equal); otherwise :class:`InputError` names both files.
    """
    if len(tables) == 1:
        return tables[0]
    time = np.unique(np.concatenate([t.time for t in tables]))
    columns: dict[str, np.ndarray] = {}
    origin: dict[str, str] = {}
    attrs: dict[str, dict[str, str]] = {}
    for t in tables:
        idx = np.searchsorted(time, t.time)
        for name, values in t.columns.items():
            if name not in columns:
                columns[name] = np.full(time.size, np.nan, dtype=values.dtype)
                columns[name][idx] = values
                origin[name] = t.files[0]
                attrs[name] = t.attrs[name]
                continue
            current = columns[name][idx]
            both = ~np.isnan(current) & ~np.isnan(values)
            if not np.array_equal(current[both], values[both].astype(current.dtype)):
                k = int(np.argmax(both & (current != values)))
                raise InputError(
                    t.files[0],
                    f"{name} at {pd.Timestamp(t.time[k])} is {values[k]} here but {current[k]} in "
                    f"{origin[name]}: files of one site disagree",
                    column=name,
                )
            fill = np.isnan(current) & ~np.isnan(values)
            current[fill] = values[fill]
            columns[name][idx] = current
    first = tables[0]
    site_attrs: dict[str, Any] = {}
    for t in tables:
        site_attrs.update(t.site_attrs)
    return SiteTable(
        first.site,
        first.store,
        first.step,
        time,
        columns,
        attrs,
        [f for t in tables for f in t.files],
        [w for t in tables for w in t.warnings],
        site_attrs,
    )
