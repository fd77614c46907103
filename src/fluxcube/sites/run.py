"""Process many sites' half-hourly data on the Dask cluster and publish the products as site stores.

Inputs are either half-hourly files (:func:`site_inputs`: each file is one site, site id from
``--site`` or the file name, coordinates and UTC offset from the FLUXNET metadata tables or given
explicitly) or a published half-hourly site store such as ``fluxnet2015_hh`` (:func:`store_inputs`:
one input per site of the store, coordinates and UTC offset from the store's site coordinates; each
worker reads only its own site's chunks of the variables it uses, :func:`read_store_site`). Every
site runs :func:`process_site` on a Dask worker; the results become three (site, time) stores,
published atomically through the catalog:

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
from fluxcube.publish import Publisher, Release, iter_files, sha256_file
from fluxcube.recipes import sitecube, sitemeta
from fluxcube.recipes.fluxnet import SiteTable
from fluxcube.sites.pipeline import UNITS, monthly_products, process_site
from fluxcube.sites.timestamps import (
    ALIASES,
    MEASURED_ONLY,
    TIME_CONVENTION,
    canonical_columns,
    read_halfhourly,
)

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
    """One site's half-hourly input and where the site is (degrees; hours east of UTC).

    From a file: ``file`` is its path. From a published store: ``root``, ``store`` and ``version``
    say which (the version is pinned when the inputs are resolved) and ``file`` is a label,
    ``<store>@<version>/<site>``.
    """

    file: str
    site: str
    lat: float
    lon: float
    utc_offset: float
    root: str | None = None
    store: str | None = None
    version: str | None = None


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


#: Variables read from a store: every alias of a canonical input, and the flags that go with them.
STORE_VARIABLES = frozenset(
    {a for names in ALIASES.values() for a in names}
    | {f"{a}_QC" for a in MEASURED_ONLY}
    | {f"{name}_qc" for name in ALIASES}
)


def store_inputs(
    target: str,
    store: str,
    site: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    utc_offset: float | None = None,
) -> tuple[list[SiteInput], list[str]]:
    """One input per site of the published half-hourly ``store`` under ``target`` (or only ``site``).

    The store's current version is pinned. Coordinates and UTC offset come from the store's site
    coordinates (``lat``, ``lon``, ``utc_offset``); given values replace missing ones, and override
    lat/lon. A different ``utc_offset`` than the store's is refused: the store's times are UTC computed
    with its own offset. Sites without a location are returned as reasons. Raises
    :class:`InputError` for an unknown store, a store that is not half-hourly, or an unknown site.
    """
    pub = Publisher(target)
    cur = pub.current(store)
    if cur is None:
        known = ", ".join(n for n in pub.names() if n.endswith(("_hh", "_HH"))) or "none"
        raise InputError(store, f"no published dataset of this name under {target} (half-hourly: {known})")
    if store.startswith("plumber"):
        raise InputError(
            store,
            "PLUMBER2 stores carry ONEFlux's NEE_qc (0 measured, 1-3 filled), not input flags: "
            "use fluxcube.sites.references.plumber_site on the netCDF pair",
        )
    version = cur["version"]
    ds = pub.open(store, version)
    time = ds["time"].values
    if time.size < 2 or (time[1] - time[0]) != np.timedelta64(30, "m"):
        step = str(time[1] - time[0]) if time.size >= 2 else "one record"
        raise InputError(store, f"time step {step}: site processing needs half-hourly data")
    sites = [str(s) for s in ds["site"].values]
    if site is not None:
        if site not in sites:
            raise InputError(store, f"no site {site!r} in the store (sites: {', '.join(sites)})")
        sites = [site]
    coords = {
        name: dict(zip([str(s) for s in ds["site"].values], np.asarray(ds[name].values, float), strict=True))
        if name in ds.coords or name in ds
        else {}
        for name in ("lat", "lon", "utc_offset")
    }
    out, problems = [], []
    for sid in sites:
        la = lat if lat is not None else coords["lat"].get(sid, np.nan)
        lo = lon if lon is not None else coords["lon"].get(sid, np.nan)
        off = coords["utc_offset"].get(sid, np.nan)
        if utc_offset is not None:
            if np.isfinite(off) and off != utc_offset:
                problems.append(
                    f"{store}/{sid}: the store's times are UTC with utc_offset {off:g} h; "
                    f"--utc-offset {utc_offset:g} would misplace its local days"
                )
                continue
            off = utc_offset
        if not (np.isfinite(la) and np.isfinite(lo) and np.isfinite(off)):
            problems.append(
                f"{store}/{sid}: no lat/lon/utc_offset in the store's site coordinates; give them"
            )
            continue
        label = f"{store}@{version}/{sid}"
        out.append(SiteInput(label, sid, float(la), float(lo), float(off), target, store, version))
    return out, problems


def read_store_site(inp: SiteInput) -> pd.DataFrame:
    """One site's half-hourly frame from a published store, as :func:`read_halfhourly` gives a file's.

    Only this site's chunks of the variables in :data:`STORE_VARIABLES` are read. The store's UTC
    times are turned back into period starts in local standard time (``time + utc_offset``) and the
    frame is cut to the site's own records (the store's time axis is the union over its sites);
    columns are renamed to the canonical names (:func:`canonical_columns`, which also keeps only the
    measured values of ONEFlux's gap-filled NEE). Units are checked against the pipeline's (K is
    converted to degC); anything else is refused with :class:`InputError`.
    """
    if inp.root is None or inp.store is None:
        raise ValueError(f"{inp.file}: not a store input")
    ds = Publisher(inp.root).open(inp.store, inp.version)
    names = sorted(str(v) for v in ds.data_vars if v in STORE_VARIABLES)
    if not names:
        raise InputError(inp.file, "none of the variables site processing uses (NEE, Rg, Tair, VPD, u*...)")
    one = ds[names].sel(site=inp.site).load()  # this site's chunks only
    local = pd.DatetimeIndex(ds["time"].values) + pd.Timedelta(hours=inp.utc_offset)
    frame = pd.DataFrame(
        {v: np.asarray(one[v].values, dtype=np.float64) for v in names},
        index=pd.DatetimeIndex(local, name="time"),
    )
    present = frame.notna().any(axis=1).to_numpy()
    if not present.any():
        raise InputError(inp.file, "no values for this site")
    first, last = np.flatnonzero(present)[[0, -1]]
    frame = frame.iloc[first : last + 1].copy()
    frame.attrs.update(
        source=inp.file,
        layout="store",
        units={v: str(one[v].attrs.get("units", "")) for v in names},
        time=TIME_CONVENTION,
    )
    frame = canonical_columns(frame)
    units = frame.attrs["units"]
    for name in ALIASES:
        if name not in frame or units.get(name) in ("", None, UNITS[name]):
            continue
        if units[name] == "K" and UNITS[name] == "degC":
            frame[name] = frame[name] - 273.15
            units[name] = "degC"
        else:
            raise InputError(inp.file, f"{name} in {units[name]!r}: expected {UNITS[name]!r}", column=name)
    return frame


def _site_from_name(name: str) -> str | None:
    if m := _SITE_ID.search(name):
        return m.group(1)
    if m := _SITE_ID_NO_DASH.search(name):
        return f"{m.group(1)}-{m.group(2)}"
    return None


def process_one(inp: SiteInput) -> tuple[dict[str, SiteTable], dict[str, str]]:
    """Read and process one site (file or store, :class:`SiteInput`); return its tables by store name
    (:data:`STORES`) and the step report."""
    df = read_store_site(inp) if inp.store is not None else read_halfhourly(inp.file)
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
        method = rest[:3] if rest.startswith(("_NT", "_DT")) else ""
        inner = long_name(m["base"] + method + rest.removeprefix(method))
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
    """Process ``inputs`` in parallel on a Dask LocalCluster (one task per site) and publish the three
    stores under ``target``."""
    from distributed import as_completed

    from fluxcube.cluster import client

    summary = SitesSummary()
    if not inputs:
        return summary
    pub = Publisher(target)
    hashes = iter_files([i.file for i in inputs if i.store is None])
    synthetic = False
    for root, store, version in sorted({(i.root, i.store, i.version) for i in inputs if i.store}):
        assert root is not None and store is not None and version is not None
        manifest = Publisher(root).manifest_location(store, version).url  # names the store and its inputs
        hashes[manifest] = sha256_file(manifest)
        synthetic |= Publisher(root).open(store, version).attrs.get("synthetic") == "true"
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
            synthetic=synthetic,
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
