"""Process many sites' half-hourly files on the Dask cluster and publish the products as site stores.

Each input file is one site (site id from ``--site`` or the file name, coordinates and UTC offset
from the FLUXNET metadata tables or given explicitly). Every site runs :func:`process_site` on a Dask
worker; the results become three (site, time) stores, published atomically through the catalog:

- ``sites_processed_hh``: half-hourly products and flags, ``time`` = period start in UTC;
- ``sites_processed_dd``: daily sums and means (NEE, GPP, Reco in g m-2 d-1 of carbon) with
  uncertainty and the gap-filled fraction, ``time`` = local calendar day (the EC model's training targets);
- ``sites_processed_mm``: monthly means of the daily values (g C m-2 d-1) with uncertainty, gap-filled
  fraction and number of complete days, ``time`` = first day of the month.

The u* scenario products (``NEE_U05_f`` ... and their daily/monthly values) are in all three.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fluxcube.catalog import describe
from fluxcube.errors import InputError
from fluxcube.publish import Publisher, Release, iter_files
from fluxcube.recipes import sitecube, sitemeta
from fluxcube.recipes.fluxnet import SiteTable
from fluxcube.sites.pipeline import monthly_products, process_site
from fluxcube.sites.timestamps import read_halfhourly

log = logging.getLogger(__name__)

RECIPE = "sites-processing"
RECIPE_VERSION = "0.2.0"
STORES = {
    "sites_processed_hh": "half-hourly",
    "sites_processed_dd": "daily",
    "sites_processed_mm": "monthly",
}
_SITE_ID = re.compile(r"([A-Z]{2}-[A-Za-z0-9]{3})")
_SITE_ID_NO_DASH = re.compile(r"(?<![A-Za-z])([A-Z]{2})([A-Z][a-z0-9]{2})")  # REddyProc's "DETha", "DEGeb"


@dataclass(frozen=True)
class SiteInput:
    """One half-hourly file and where its site is (degrees; hours east of UTC)."""

    file: str
    site: str
    lat: float
    lon: float
    utc_offset: float


@dataclass
class SitesSummary:
    published: dict[str, str] = field(default_factory=dict)
    up_to_date: dict[str, str] = field(default_factory=dict)
    refused: list[dict[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sites: dict[str, list[str]] = field(default_factory=dict)
    steps: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.published or self.up_to_date)


def site_inputs(
    files: list[str],
    metadata_dirs: list[str],
    site: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    utc_offset: float | None = None,
) -> tuple[list[SiteInput], list[str]]:
    """Resolve each file's site and location; files that cannot be placed are returned as reasons."""
    tables = [t for d in metadata_dirs if os.path.isdir(d) for t in sitemeta.find_metadata_tables(d)]
    meta = sitemeta.load_metadata(tables)
    out, problems = [], []
    for f in files:
        sid = site or _site_from_name(os.path.basename(f))
        if sid is None:
            problems.append(f"{f}: no site id in the file name; give --site")
            continue
        known = meta.get(sid)
        la = lat if lat is not None else known.get("lat")
        lo = lon if lon is not None else known.get("lon")
        off = utc_offset if utc_offset is not None else known.get("utc_offset")
        if la is None or lo is None or off is None:
            problems.append(f"{f}: site {sid} has no lat/lon/UTC offset in the metadata tables; give them")
            continue
        out.append(SiteInput(f, sid, float(la), float(lo), float(off)))
    return out, problems


def _site_from_name(name: str) -> str | None:
    if m := _SITE_ID.search(name):
        return m.group(1)
    if m := _SITE_ID_NO_DASH.search(name):
        return f"{m.group(1)}-{m.group(2)}"
    return None


def process_one(inp: SiteInput) -> tuple[dict[str, SiteTable], dict[str, str]]:
    """Read and process one site file; return its tables by store name (:data:`STORES`) and the step
    report."""
    df = read_halfhourly(inp.file)
    hh, daily = process_site(df, inp.lat, inp.lon, inp.utc_offset)
    steps = dict(hh.attrs.get("steps", {}))
    utc = (hh.index - pd.Timedelta(hours=inp.utc_offset)).to_numpy(dtype="datetime64[ns]")
    frames = {"sites_processed_hh": (utc, hh)}
    if not daily.empty:
        monthly = monthly_products(daily)
        steps["monthly"] = "ok"
        frames["sites_processed_dd"] = (daily.index.to_numpy(dtype="datetime64[ns]"), daily)
        frames["sites_processed_mm"] = (monthly.index.to_numpy(dtype="datetime64[ns]"), monthly)
    tables = {
        name: _table(inp, name, name[-2:].upper(), time, frame, frame.attrs.get("units", {}))
        for name, (time, frame) in frames.items()
    }
    return tables, steps


def _table(
    inp: SiteInput, store: str, step: str, time: np.ndarray, frame: pd.DataFrame, units: dict[str, str]
) -> SiteTable:
    columns, attrs = {}, {}
    for name in frame.columns:
        values = frame[name].to_numpy()
        if values.dtype.kind not in "fiub":
            continue
        columns[str(name)] = values.astype(np.float32 if values.dtype.kind in "iub" else np.float64)
        attrs[str(name)] = {"long_name": long_name(str(name)), "units": units.get(str(name), "1")}
    return SiteTable(inp.site, store, step, time, columns, attrs, [inp.file])


_LONG = {
    "NEE": "net ecosystem exchange of CO2 as carbon, positive to the atmosphere",
    "GPP_NT": "gross primary production as carbon, night-time partitioning (Reichstein et al. 2005)",
    "Reco_NT": "ecosystem respiration as carbon, night-time partitioning (Reichstein et al. 2005)",
    "GPP_DT": "gross primary production as carbon, day-time partitioning (Lasslop et al. 2010)",
    "Reco_DT": "ecosystem respiration as carbon, day-time partitioning (Lasslop et al. 2010)",
    "LE": "latent heat flux",
    "H": "sensible heat flux",
    "Rg": "global radiation",
    "Rpot": "potential radiation",
    "Tair": "air temperature",
    "Tsoil": "soil temperature",
    "VPD": "vapour pressure deficit",
    "Ustar": "friction velocity",
    "ustar_threshold": "u* threshold of the moving point test, applied to night-time NEE",
}
_SUFFIX = {
    "_f": "gap-filled (MDS, Reichstein et al. 2005)",
    "_fqc": "gap-filling quality (0 measured, 1-3 MDS classes A-C, 9 not filled)",
    "_fsd": "standard deviation of the values used for gap filling",
    "_unc": "random uncertainty (one sigma)",
    "_frac_filled": "fraction of gap-filled half-hours",
    "_n_days": "number of complete days in the month",
    "_flag": "quality flag (0 good, 1 medium, 2 bad)",
}


_SCENARIO = re.compile(r"^(?P<base>[A-Za-z_]+?)_U(?P<pct>\d\d)(?P<rest>_.*)?$")


def long_name(name: str) -> str:
    """Human-readable long name of a processed variable."""
    if m := _SCENARIO.match(name):
        rest = m["rest"] or ""
        base = m["base"] + ("_NT" if rest.startswith("_NT") else "")
        inner = long_name(base + rest.removeprefix("_NT"))
        return f"{inner}; u* threshold scenario U{m['pct']} ({int(m['pct'])} % bootstrap percentile)"
    for suffix, what in _SUFFIX.items():
        base = name.removesuffix(suffix)
        if base != name and base in _LONG:
            return f"{_LONG[base]}: {what}"
    return _LONG.get(name, name.replace("_", " "))


def run(
    inputs: list[SiteInput],
    target: str,
    n_workers: int | None = None,
    force: bool = False,
    progress: Any = None,
) -> SitesSummary:
    """Process ``inputs`` in parallel on a Dask LocalCluster and publish the two stores under ``target``."""
    from distributed import as_completed

    from fluxcube.cluster import client

    summary = SitesSummary()
    if not inputs:
        return summary
    pub = Publisher(target)
    hashes = iter_files([i.file for i in inputs])
    params = {i.site: [i.lat, i.lon, i.utc_offset] for i in inputs}
    releases = {
        name: Release(
            name=name,
            recipe=RECIPE,
            recipe_version=RECIPE_VERSION,
            inputs=hashes,
            params=params,
            description=f"Processed eddy-covariance site data ({what}): QC, u* filtering (with the "
            "U05/U50/U95 u* scenarios), MDS gap filling, night-time and day-time partitioning, random "
            "uncertainty",
        )
        for name, what in STORES.items()
    }
    locations = {name: pub.prepare(rel, force=force) for name, rel in releases.items()}
    for name, loc in locations.items():
        if loc is None:
            summary.up_to_date[name] = releases[name].version
    if all(loc is None for loc in locations.values()):
        return summary
    tables: dict[str, list[SiteTable]] = {name: [] for name in releases}
    with client(n_workers) as c:
        futures = {c.submit(process_one, inp, pure=False): inp for inp in inputs}
        for fut in as_completed(futures):
            inp = futures[fut]
            try:
                per_store, steps = fut.result()
            except (InputError, ValueError, OSError) as err:
                summary.refused.append({"file": inp.file, "step": "process", "error": str(err)})
                continue
            finally:
                if progress is not None:
                    progress()
            for name, table in per_store.items():
                tables[name].append(table)
            summary.steps[inp.site] = steps
    for name, loc in locations.items():
        if loc is None or not tables[name]:
            continue
        mine = sorted(tables[name], key=lambda t: t.site)
        schema = sitecube.merge_schemas([sitecube.schema_of(t) for t in mine])
        site_meta = {i.site: {"lat": i.lat, "lon": i.lon, "utc_offset": i.utc_offset} for i in inputs}
        sitecube.write_template(loc, schema, site_meta, releases[name].provenance())
        checks = [sitecube.write_site(loc, schema, t) for t in mine]
        pub.commit(
            releases[name],
            validate=lambda ds, ch=checks: sitecube.validate_store(ds, ch),
            catalog_metadata=describe,
            update_catalog=False,
        )
        summary.published[name] = releases[name].version
        summary.sites[name] = [t.site for t in mine]
    pub.write_catalog()
    return summary
