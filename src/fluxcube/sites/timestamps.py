"""Read half-hourly site files into one frame indexed by the START of each averaging period.

Understood layouts (recognised from the header, not the file name):

- REddyProc text (``Example_DETha98.txt``): tab separated, a units row under the header, ``Year``,
  ``DoY`` and ``Hour`` where ``Hour`` is the END of the period in decimal hours (0.5 .. 23.5, and 0.0
  of the next day for the period ending at midnight).
- ``DateTime`` CSV (``DEGebExample_2004-2006.csv``, exported from REddyProc's ``DEGebExample``):
  ``YYYY-mm-dd HH:MM:SS`` at the END of the period (the file runs from 00:30 of its first day to 00:00
  after its last day).
- openeddy CSV (``openeddy_CZ-Lnz_2023.csv``): ``timestamp`` ``YYYY-mm-dd HH:MM`` at the END of the
  period, units in row 2.
- FLUXNET / ONEFlux / AmeriFlux half-hourly CSV: ``TIMESTAMP_START`` (and ``TIMESTAMP_END``),
  ``YYYYmmddHHMM``.

The returned frame has a ``DatetimeIndex`` named ``time``: the period start in the file's own clock
(FLUXNET and REddyProc files are in local standard time, no daylight saving). ``frame.attrs`` holds
``source`` (the file), ``layout``, ``units`` (column -> unit string where the file states one) and
``time`` (the convention in words). Missing values (``-9999``, ``NA``) become NaN. Every problem is
raised as :class:`~fluxcube.errors.InputError` naming the file, line and column.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fluxcube.errors import InputError
from fluxcube.recipes.textfile import MISSING, decode_text, read_table

STEP = pd.Timedelta(minutes=30)
TIME_CONVENTION = "start of the averaging period, clock of the source file (local standard time)"

#: Aliases -> canonical names (REddyProc's): fluxes in umol m-2 s-1 (NEE) and W m-2 (LE, H), Rg in
#: W m-2, Tair and Tsoil in degC, rH in %, VPD in hPa, Ustar in m s-1.
ALIASES: dict[str, tuple[str, ...]] = {
    "NEE": ("NEE", "FC", "NEE_PI", "FC_1_1_1", "NEE_VUT_REF", "NEE_CUT_REF"),
    "LE": ("LE", "LE_F_MDS", "LE_1_1_1"),
    "H": ("H", "H_F_MDS", "H_1_1_1"),
    "Rg": ("Rg", "GR", "SW_IN", "SW_IN_F", "SW_IN_F_MDS", "SW_IN_1_1_1"),
    "Tair": ("Tair", "TA", "TA_F", "TA_F_MDS", "TA_1_1_1"),
    "Tsoil": ("Tsoil", "TS", "TS_1", "TS_F_MDS_1", "TS_1_1_1"),
    "rH": ("rH", "RH", "RH_1_1_1"),
    "VPD": ("VPD", "VPD_F", "VPD_F_MDS", "VPD_PI"),
    "Ustar": ("Ustar", "ustar", "USTAR", "USTAR_1_1_1"),
}
#: ONEFlux (FLUXNET2015, FluxDataKit) products that are gap-filled already: their ``<name>_QC`` is 0
#: for measured records and 1-3 for MDS-filled ones, so only the measured values are kept (the rest
#: become NaN, for fluxcube to QC, u*-filter and fill itself). The meteorology (``TA_F``, ``SW_IN_F``,
#: ``VPD_F``) is used as gap-filled by ONEFlux, as in :func:`fluxcube.sites.references.plumber_site`.
MEASURED_ONLY = ("NEE_VUT_REF", "NEE_CUT_REF", "LE_F_MDS", "H_F_MDS")


def read_halfhourly(path: str | Path, canonical: bool = True) -> pd.DataFrame:
    """Read one half-hourly file (layouts in the module docstring) indexed by period start.

    With ``canonical`` the known variables are renamed to REddyProc's names (see :data:`ALIASES`);
    other columns keep their names. Units are those of the file (listed in ``attrs['units']``).
    """
    file = str(path)
    with open(path, "rb") as f:
        text = decode_text(f.read(), file)
    header_line, sep = _header(text, file)
    units = _units_row(text, header_line, sep)
    stamp_cols = ("DateTime", "timestamp", "TIMESTAMP_START", "TIMESTAMP_END", "TIMESTAMP")
    frame, first_line = read_table(
        text, file, sep=sep, string_columns=stamp_cols, skip_rows_after_header=1 if units else 0
    )
    layout, start = _period_start(frame, file, first_line)
    _check_regular(start, file, first_line, _stamp_column(layout))
    data = frame.drop(columns=[c for c in ("Year", "DoY", "Hour", *stamp_cols) if c in frame.columns])
    data.index = pd.DatetimeIndex(start, name="time")
    data.attrs.update(
        source=file,
        layout=layout,
        units={k: v for k, v in (units or {}).items() if k in data.columns},
        time=TIME_CONVENTION,
    )
    return canonical_columns(data) if canonical else data


def canonical_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Rename the first present alias of each variable in :data:`ALIASES` to its canonical name.

    A canonical name already present wins; units in ``attrs['units']`` follow the rename. A product
    of :data:`MEASURED_ONLY` with its ``_QC`` column keeps only its measured values (``_QC`` == 0);
    ``attrs['measured_only']`` says which.
    """
    rename: dict[str, str] = {}
    for name, aliases in ALIASES.items():
        if name in frame.columns:
            continue
        found = next((a for a in aliases if a in frame.columns and a not in rename), None)
        if found is not None:
            rename[found] = name
    out = frame.rename(columns=rename)
    out.attrs = dict(frame.attrs)
    masked = {}
    for src, name in rename.items():
        if src in MEASURED_ONLY and f"{src}_QC" in frame.columns:
            out[name] = out[name].where(frame[f"{src}_QC"].to_numpy() == 0)
            masked[name] = f"{src} where {src}_QC == 0 (measured)"
    if masked:
        out.attrs["measured_only"] = masked
    if "units" in frame.attrs:
        out.attrs["units"] = {rename.get(k, k): v for k, v in frame.attrs["units"].items()}
    return out


# --------------------------------------------------------------------------- layout detection
def _header(text: str, file: str) -> tuple[str, str]:
    first = text.split("\n", 1)[0]
    if not first.strip():
        raise InputError(file, "empty first line: expected a header with column names", 1)
    sep = "\t" if first.count("\t") > first.count(",") else ","
    return first, sep


def _units_row(text: str, header_line: str, sep: str) -> dict[str, str] | None:
    """The second line as units when fewer than half of its fields are numbers, else None."""
    lines = text.split("\n", 2)
    if len(lines) < 2:
        return None
    fields = lines[1].split(sep)
    numeric = sum(_is_number(f) for f in fields)
    if numeric * 2 >= len(fields):
        return None
    names = [h.strip().strip('"') for h in header_line.split(sep)]
    return {n: u.strip().strip('"') for n, u in zip(names, fields, strict=False)}


def _is_number(text: str) -> bool:
    if text.strip().strip('"') in MISSING:
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def _stamp_column(layout: str) -> str:
    return {"reddyproc": "Hour", "datetime": "DateTime", "openeddy": "timestamp"}.get(
        layout, "TIMESTAMP_START"
    )


def _period_start(frame: pd.DataFrame, file: str, first_line: int) -> tuple[str, pd.DatetimeIndex]:
    cols = set(frame.columns)
    if {"Year", "DoY", "Hour"} <= cols:
        return "reddyproc", _from_year_doy_hour(frame, file, first_line)
    if "TIMESTAMP_START" in cols:
        start = _parse(frame["TIMESTAMP_START"], "%Y%m%d%H%M", file, "TIMESTAMP_START", first_line)
        if "TIMESTAMP_END" in cols:
            end = _parse(frame["TIMESTAMP_END"], "%Y%m%d%H%M", file, "TIMESTAMP_END", first_line)
            bad = np.asarray(end - start != STEP)
            if bad.any():
                i = int(np.argmax(bad))
                raise InputError(
                    file,
                    f"period {start[i]} .. {end[i]} is not 30 minutes: expected half-hourly data",
                    first_line + i,
                    "TIMESTAMP_END",
                )
        return "fluxnet", start
    if "DateTime" in cols:
        return "datetime", _parse(frame["DateTime"], "%Y-%m-%d %H:%M:%S", file, "DateTime", first_line) - STEP
    if "timestamp" in cols:
        return "openeddy", _parse(frame["timestamp"], "%Y-%m-%d %H:%M", file, "timestamp", first_line) - STEP
    raise InputError(
        file,
        "no time columns: expected Year/DoY/Hour, TIMESTAMP_START, DateTime or timestamp",
        first_line - 1,
    )


def _parse(values: pd.Series, fmt: str, file: str, column: str, first_line: int) -> pd.DatetimeIndex:
    text = values.astype(str).str.strip()
    parsed = pd.to_datetime(text, format=fmt, errors="coerce")
    width = len(pd.Timestamp(2000, 1, 1).strftime(fmt))  # pandas accepts short fields; the files do not
    bad = np.asarray(parsed.isna()) | (text.str.len() != width).to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(file, f"timestamp {text.iloc[i]!r} does not match {fmt}", first_line + i, column)
    return pd.DatetimeIndex(parsed).as_unit("ns")


def _from_year_doy_hour(frame: pd.DataFrame, file: str, first_line: int) -> pd.DatetimeIndex:
    """REddyProc's Year/DoY/Hour (Hour = period end, decimal hours) -> period start."""
    parts = {c: frame[c].to_numpy(dtype=float) for c in ("Year", "DoY", "Hour")}
    for col, lo, hi in (("Year", 1800, 2200), ("DoY", 1, 367), ("Hour", 0, 24)):
        v = parts[col]
        bad = ~np.isfinite(v) | (v < lo) | (v > hi)
        if col != "Hour":
            bad |= v != np.round(v)
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(
                file, f"{col} value {v[i]!r}: expected a number in [{lo}, {hi}]", first_line + i, col
            )
    minutes = parts["Hour"] * 60.0
    bad = np.abs(minutes / 30.0 - np.round(minutes / 30.0)) > 1e-6
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(
            file, f"Hour {parts['Hour'][i]!r} is not on the half-hour grid", first_line + i, "Hour"
        )
    years = pd.to_datetime(parts["Year"].astype(int).astype(str), format="%Y")
    offset = pd.to_timedelta(parts["DoY"] - 1, unit="D") + pd.to_timedelta(np.round(minutes), unit="min")
    return pd.DatetimeIndex(years + offset - STEP).as_unit("ns")


def _check_regular(t: pd.DatetimeIndex, file: str, first_line: int, column: str) -> None:
    """Strictly increasing half-hour steps on the :00/:30 grid; missing rows are allowed."""
    ns = t.asi8
    off = ns % STEP.value
    if (off != 0).any():
        i = int(np.argmax(off != 0))
        raise InputError(file, f"period start {t[i]} is not on the half-hour grid", first_line + i, column)
    d = np.diff(ns)
    for bad, what in ((d == 0, "duplicated"), (d < 0, "goes back in time")):
        if bad.any():
            i = int(np.argmax(bad)) + 1
            raise InputError(
                file,
                f"timestamp {t[i]} {what} (after {t[i - 1]}): expected increasing times",
                first_line + i,
                column,
            )


def regular_grid(frame: pd.DataFrame, full_days: bool = True) -> pd.DataFrame:
    """Reindex to a complete half-hourly grid (missing rows -> NaN), by default whole days.

    ``full_days`` pads the start back to 00:00 of the first day and the end to 23:30 of the last day,
    the layout that the gap filling and partitioning windows (days x 48 records) rely on.
    """
    idx = frame.index
    start, end = idx[0], idx[-1]
    if full_days:
        start = start.floor("D")
        end = end.floor("D") + pd.Timedelta(days=1) - STEP
    grid = pd.date_range(start, end, freq=STEP, name=idx.name or "time")
    out = frame.reindex(grid)
    out.attrs = dict(frame.attrs)
    return out
