"""The Global Carbon Budget recipe: GCB global budget tables (csv, xlsx) -> one annual Zarr store.

Inputs: ``Global_Carbon_Budget_<edition>v*.csv`` and ``.xlsx`` (sheet ``Global Carbon Budget``;
GCB2022 has the header in row 1, GCB2023 below 21 rows of notes: the header row is found by its
``Year`` cell). Store ``gcb_global_budget``, dimensions (edition, time), one value per year, all in
Pg C yr-1 (= GtC yr-1):

- ``land_sink`` (S_LAND), ``budget_imbalance`` (B_IM), and the other budget terms as published;
- ``residual_land_sink`` = S_LAND + B_IM, **sink positive** (the GCB sign: a positive value is
  carbon taken up by land);
- ``land_flux_to_atmosphere`` = -residual_land_sink, **positive = source** (flux to the
  atmosphere): the platform's NEE sign convention, directly comparable with global NEE integrals.

When an edition comes both as csv and as xlsx, the xlsx (full precision) is stored and the csv
(rounded to 0.01) must agree with it within 0.006 Pg C yr-1, or the csv is refused.
"""

from __future__ import annotations

import csv
import logging
import re
from collections import defaultdict
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

RECIPE = "gcb"
RECIPE_VERSION = "1.0.0"
DATASET = "gcb_global_budget"
SHEET = "Global Carbon Budget"
CSV_TOLERANCE = 0.006  # Pg C yr-1: the csv is rounded to 0.01

#: Column header in the GCB tables -> variable name in the store.
COLUMNS = {
    "fossil emissions excluding carbonation": "fossil_emissions",
    "land-use change emissions": "land_use_change_emissions",
    "atmospheric growth": "atmospheric_growth",
    "ocean sink": "ocean_sink",
    "land sink": "land_sink",
    "cement carbonation sink": "cement_carbonation_sink",
    "budget imbalance": "budget_imbalance",
}
REQUIRED = ("land sink", "budget imbalance")
LONG_NAMES = {
    "fossil_emissions": "fossil CO2 emissions excluding cement carbonation (E_FOS)",
    "land_use_change_emissions": "land-use change emissions (E_LUC)",
    "atmospheric_growth": "atmospheric CO2 growth (G_ATM)",
    "ocean_sink": "ocean sink (S_OCEAN), positive = uptake",
    "land_sink": "land sink from DGVMs (S_LAND), positive = uptake",
    "cement_carbonation_sink": "cement carbonation sink, positive = uptake",
    "budget_imbalance": "budget imbalance (B_IM) = emissions - (growth + sinks)",
}


def edition_of(path: str) -> int:
    """The GCB edition (year of release) from a file name like ``Global_Carbon_Budget_2022v1.0.csv``."""
    m = re.search(r"Global_Carbon_Budget_(\d{4})", Path(path).name)
    if not m:
        raise InputError(
            path, "file name does not say the GCB edition (expected Global_Carbon_Budget_<year>...)"
        )
    return int(m.group(1))


def find_files(source: str) -> list[str]:
    """GCB tables under ``source`` (a file or folder)."""
    p = Path(source)
    if p.is_file():
        return [str(p)]
    return sorted(str(f) for f in p.rglob("Global_Carbon_Budget_*") if f.suffix.lower() in (".csv", ".xlsx"))


def _table(path: str, rows: list[list[Any]]) -> dict[str, Any]:
    """Parse rows (header row located by its 'Year' cell) -> {column: {year: value}}."""
    header_at = None
    for i, row in enumerate(rows):
        cells = [str(c).strip().lower() if c is not None else "" for c in row]
        if "year" in cells[:3] and any(c in COLUMNS for c in cells):
            header_at, header = i, cells
            break
    if header_at is None:
        raise InputError(path, "no header row with 'Year' and the budget columns found")
    ycol = header.index("year")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InputError(path, f"missing column(s) {missing}", line=header_at + 1)
    cols = {c: header.index(c) for c in COLUMNS if c in header}
    out: dict[str, dict[int, float]] = {COLUMNS[c]: {} for c in cols}
    for i, row in enumerate(rows[header_at + 1 :], start=header_at + 2):
        y = row[ycol] if ycol < len(row) else None
        if y is None or str(y).strip() == "":
            break
        try:
            year = int(float(str(y).strip().lstrip("\ufeff")))
        except ValueError:
            break  # end of the table (notes below it)
        for c, j in cols.items():
            raw = row[j] if j < len(row) else None
            try:
                value = float(raw) if raw not in (None, "") else np.nan
            except (TypeError, ValueError) as err:
                raise InputError(path, f"{c} {year}: {raw!r} is not a number", line=i, column=c) from err
            out[COLUMNS[c]][year] = value
    if not out["land_sink"]:
        raise InputError(path, "no data rows under the header", line=header_at + 1)
    return {"file": path, "edition": edition_of(path), "kind": Path(path).suffix.lower()[1:], "columns": out}


def read_table(path: str) -> dict[str, Any]:
    """Read one GCB table (csv or the xlsx sheet 'Global Carbon Budget'); units Pg C yr-1."""
    if path.lower().endswith(".csv"):
        try:
            with open(path, newline="", encoding="utf-8-sig") as f:
                rows = [list(r) for r in csv.reader(f)]
        except (OSError, UnicodeDecodeError, csv.Error) as err:
            raise InputError(path, f"cannot read as CSV: {err}") from err
        return _table(path, rows)
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as err:  # zipfile.BadZipFile, KeyError, InvalidFileException...
        raise InputError(path, f"cannot read as an xlsx workbook: {err}") from err
    try:
        if SHEET not in wb.sheetnames:
            raise InputError(path, f"no sheet {SHEET!r} (sheets: {wb.sheetnames})")
        rows = [list(r) for r in wb[SHEET].iter_rows(values_only=True)]
    finally:
        wb.close()
    return _table(path, rows)


def combine(tables: list[dict[str, Any]]) -> tuple[xr.Dataset, list[dict[str, str]]]:
    """One dataset (edition, time) from the tables; csv duplicates of an xlsx are cross-checked."""
    tables = [  # JSON records (Beam) turn the year keys into strings
        {**t, "columns": {c: {int(y): v for y, v in col.items()} for c, col in t["columns"].items()}}
        for t in tables
    ]
    refused: list[dict[str, str]] = []
    by_edition: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for t in tables:
        by_edition[t["edition"]].append(t)
    chosen = {}
    for ed, group in sorted(by_edition.items()):
        group = sorted(group, key=lambda t: (t["kind"] != "xlsx", t["file"]))
        main = group[0]
        for other in group[1:]:
            bad = _disagreement(main, other)
            if bad:
                err = InputError(other["file"], f"disagrees with {main['file']}: {bad}")
                refused.append(
                    {"file": other["file"], "step": "combine", "error": str(err), "type": "InputError"}
                )
        chosen[ed] = main
    editions = sorted(chosen)
    years = sorted({y for t in chosen.values() for y in t["columns"]["land_sink"]})
    names = [v for v in COLUMNS.values() if any(v in t["columns"] for t in chosen.values())]
    data = {}
    for name in names:
        arr = np.full((len(editions), len(years)), np.nan)
        for i, ed in enumerate(editions):
            col = chosen[ed]["columns"].get(name, {})
            for j, y in enumerate(years):
                arr[i, j] = col.get(y, np.nan)
        data[name] = (("edition", "time"), arr, {"units": "Pg C yr-1", "long_name": LONG_NAMES[name]})
    rls = data["land_sink"][1] + data["budget_imbalance"][1]
    data["residual_land_sink"] = (
        ("edition", "time"),
        rls,
        {
            "units": "Pg C yr-1",
            "long_name": "residual land sink = land sink + budget imbalance, positive = uptake by land",
            "comment": "GCB sign convention: sink positive",
        },
    )
    data["land_flux_to_atmosphere"] = (
        ("edition", "time"),
        -rls,
        {
            "units": "Pg C yr-1",
            "long_name": "net land-to-atmosphere CO2 flux = -(residual land sink), positive = source",
            "comment": "fluxcube NEE sign convention: positive = flux to the atmosphere",
        },
    )
    time = pd.to_datetime([f"{y}-01-01" for y in years]).values
    coords = {
        "edition": (
            "edition",
            np.array(editions, dtype="int32"),
            {"long_name": "GCB edition (year of release)"},
        ),
        "time": ("time", time, {"standard_name": "time", "long_name": "calendar year (start)"}),
        "year": ("time", np.array(years, dtype="int32"), {"long_name": "calendar year"}),
        "source_file": (
            "edition",
            np.array([Path(chosen[e]["file"]).name for e in editions], dtype=object),
            {"long_name": "table the edition's values come from"},
        ),
    }
    return xr.Dataset(data, coords=coords), refused


def _disagreement(a: dict[str, Any], b: dict[str, Any]) -> str:
    for name in REQUIRED:
        col = COLUMNS[name]
        xa, xb = a["columns"][col], b["columns"][col]
        if set(xa) != set(xb):
            return f"years differ ({min(xb)}..{max(xb)} vs {min(xa)}..{max(xa)})"
        for y in sorted(xa):
            if abs(xa[y] - xb[y]) > CSV_TOLERANCE:
                return f"{name} {y}: {xb[y]} vs {xa[y]} Pg C yr-1"
    return ""


def validate(ds: xr.Dataset) -> None:
    """Physical checks: recent residual land sink a few Pg C per year of uptake."""
    rls = ds["residual_land_sink"]
    recent = rls.where(ds["year"] >= 2000).mean("time")
    if not bool(((recent > 0.5) & (recent < 5.0)).all()):
        raise ValueError(f"mean residual land sink since 2000 {recent.values} outside 0.5..5 Pg C yr-1")
    if not np.allclose(ds["land_flux_to_atmosphere"].values, -rls.values, equal_nan=True):
        raise ValueError("land_flux_to_atmosphere != -residual_land_sink")


def run(source: str, target: str, runner: str = "DirectRunner", force: bool = False) -> RunSummary:
    """Ingest the GCB tables under ``source`` into ``gcb_global_budget`` published under ``target``."""
    summary = RunSummary()
    files = find_files(source)
    if not files:
        summary.warnings.append(f"{source}: no Global_Carbon_Budget_* csv or xlsx files")
        return summary
    pub = Publisher(target)
    tables, summary.refused = read_files_on_beam(files, read_table, pub.root.child("_runs", RECIPE), runner)
    if not tables:
        summary.warnings.append("every table was refused: nothing published")
        return summary
    ds, refused = combine(tables)
    summary.refused = sorted(summary.refused + refused, key=lambda r: r["file"])
    used = sorted({t["file"] for t in tables} - {r["file"] for r in refused})
    release = Release(
        name=DATASET,
        recipe=RECIPE,
        recipe_version=RECIPE_VERSION,
        inputs=iter_files(used),
        description="Global Carbon Budget global annual budget terms and residual land sink (Pg C yr-1), "
        "editions " + ", ".join(str(e) for e in ds["edition"].values),
        synthetic=inputs_are_synthetic(used),
    )
    attrs = {
        "title": "Global Carbon Budget, global annual terms",
        "Conventions": "CF-1.10",
        "references": "Friedlingstein et al. (2022, 2023), Global Carbon Budget, Earth Syst. Sci. Data",
        "license": "CC BY 4.0 (Global Carbon Project)",
        "sign_convention": "GCB terms as published (sinks positive); "
        "land_flux_to_atmosphere positive = source",
    }
    encoding = {"time": {"units": "days since 1900-01-01", "calendar": "proleptic_gregorian"}}
    if pub.publish_dataset(release, ds, attrs, validate, encoding, summary.refused, force=force):
        summary.published[DATASET] = release.version
    else:
        summary.up_to_date[DATASET] = release.version
    return summary
