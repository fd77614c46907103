"""The FLUXNET site recipe: FLUXNET-family files -> one (site, time) Zarr store per product and step.

Inputs are described by a pangeo-forge-recipes ``FilePattern``; the work runs as an Apache Beam
pipeline (DirectRunner locally): read and check each file, merge files of one site, combine the
stores' schemas, write each store's template and then each site's chunks, and record per-site
checks. Afterwards every store is validated against those checks and published atomically.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
from pangeo_forge_recipes.patterns import ConcatDim, FilePattern

from fluxcube.catalog import describe
from fluxcube.errors import InputError
from fluxcube.publish import Publisher, Release, iter_files
from fluxcube.recipes import fluxnet, sitecube, sitemeta
from fluxcube.recipes.transforms import (
    REFUSED,
    MapOrRefuse,
    WriteRecords,
    pipeline_options,
    read_records,
    refusal,
    report,
)
from fluxcube.storage import Location, location

log = logging.getLogger(__name__)

RECIPE = "fluxnet"
RECIPE_VERSION = "1.0.0"
DESCRIPTIONS = {
    "fluxnet2015": "FLUXNET2015 / ONEFlux site data",
    "fluxdatakit": "FluxDataKit-processed FLUXNET site data",
    "ameriflux": "AmeriFlux BASE site data",
    "plumber": "PLUMBER2 site data (FLUXNET2015-based flux and met netCDF pairs)",
}
STEP_NAMES = {
    "HH": "half-hourly",
    "HR": "hourly",
    "DD": "daily",
    "WW": "weekly",
    "MM": "monthly",
    "YY": "yearly",
}


def file_pattern(files: list[str]) -> FilePattern:
    """pangeo-forge ``FilePattern`` over the input files (one key per file)."""
    return FilePattern(lambda file: file, ConcatDim("file", keys=list(files)))


@dataclass
class StorePlan:
    name: str
    release: Release
    files: list[str]
    location: Location | None = None  # where to write; None when already published


@dataclass
class RunSummary:
    published: dict[str, str] = field(default_factory=dict)  # store -> version
    up_to_date: dict[str, str] = field(default_factory=dict)
    refused: list[dict[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sites: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.published or self.up_to_date)


def plan(
    source: str, pub: Publisher, synthetic: bool
) -> tuple[list[StorePlan], list[str], sitemeta.SiteMetadata]:
    """Group input files by the store they feed; decide which stores need writing."""
    files = fluxnet.find_files(source)
    tables = sitemeta.find_metadata_tables(source)
    meta = sitemeta.load_metadata(tables)
    table_hashes = iter_files(tables)
    groups: dict[str, list[str]] = defaultdict(list)
    skipped = []
    for f in files:
        src = fluxnet.classify(f)
        assert src is not None
        if src.kind == "auxiliary":
            skipped.append(f"{f}: auxiliary table (u* thresholds), not a time series: not ingested")
            continue
        groups[src.store].append(f)
    plans = []
    for store, group in sorted(groups.items()):
        product, step = store.rsplit("_", 1)
        inputs = {**iter_files(group), **table_hashes}
        release = Release(
            name=store,
            recipe=RECIPE,
            recipe_version=RECIPE_VERSION,
            inputs=inputs,
            description=f"{DESCRIPTIONS[product]}, {STEP_NAMES[step.upper()]}, dimensions (site, time)",
            synthetic=synthetic,
        )
        plans.append(StorePlan(store, release, group))
    return plans, skipped, meta


@dataclass(frozen=True)
class SiteFiles:
    """The files of one site feeding one store: the unit of work (small, cheap to pass around)."""

    store: str
    site: str
    files: tuple[str, ...]


def site_groups(files: list[str]) -> list[SiteFiles]:
    """Group files by (store, site) from their names alone."""
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for f in files:
        src = fluxnet.classify(f)
        assert src is not None
        groups[(src.store, src.site)].append(f)
    return [SiteFiles(store, site, tuple(sorted(fs))) for (store, site), fs in sorted(groups.items())]


class CheckSite(beam.DoFn):
    """Pass 1: read and check every file of a site, merge them, and keep only what describes them.

    Emits the accepted files with the site's schema and value digests (not the data), so memory
    holds one site at a time whatever the number of sites; bad files go to the ``refused`` output.
    """

    def __init__(self, offsets: dict[str, float | None]):
        self.offsets = offsets

    def process(self, sf):  # no hints: Beam would type-check them
        tables, good = [], []
        for url in sf.files:
            try:
                tables.append(_read(url, self.offsets))
                good.append(url)
            except (InputError, ValueError, OSError) as err:
                log.info("refused: %s", err)
                yield beam.pvalue.TaggedOutput(REFUSED, refusal(url, err, "read"))
            finally:
                report("read")
        if not tables:
            return
        try:
            merged = fluxnet.merge_tables(tables)
        except InputError as err:
            for url in good:
                yield beam.pvalue.TaggedOutput(REFUSED, refusal(url, err, "merge"))
            return
        yield {
            "site_files": SiteFiles(sf.store, sf.site, tuple(good)),
            "schema": sitecube.schema_of(merged),
            "checks": merged.checks(),
            "warnings": merged.warnings,
        }


def _read(url: str, offsets: dict[str, float | None]) -> fluxnet.SiteTable:
    src = fluxnet.classify(url)
    assert src is not None
    table = fluxnet.read_file(src, offsets.get(src.site))
    log.info(
        "read %s: %s, %d records, %d variables",
        url.rsplit("/", 1)[-1],
        table.store,
        table.time.size,
        len(table.columns),
    )
    return table


def build(p: beam.Pipeline, plans: list[StorePlan], meta: sitemeta.SiteMetadata, run_dir: str) -> None:
    """Add the recipe's transforms to pipeline ``p``.

    Pass 1 checks each site's files and yields schemas and digests; each store's template is written
    from the union of its sites' schemas; pass 2 reads each accepted site again and writes its chunks.
    Elements between steps are file lists and schemas, never data: memory stays bounded by one site.
    """
    todo = {sp.name: sp for sp in plans if sp.location is not None}
    files = [f for sp in todo.values() for f in sp.files]
    pattern = file_pattern(files)
    offsets = {s: meta.utc_offset(s) for s in meta.values}
    site_meta = {s: meta.get(s) for s in meta.values}

    def template(kv: tuple[str, list[sitecube.Schema]]) -> tuple[str, sitecube.Schema]:
        store, schemas = kv
        schema = sitecube.merge_schemas(sorted(schemas, key=lambda s: s.sites[0]))
        sp = todo[store]
        assert sp.location is not None
        sitecube.write_template(sp.location, schema, site_meta, sp.release.provenance())
        return store, schema

    def write(accepted: dict[str, Any], schemas: dict[str, sitecube.Schema]) -> dict[str, Any]:
        sf: SiteFiles = accepted["site_files"]
        sp = todo[sf.store]
        assert sp.location is not None
        table = fluxnet.merge_tables([_read(url, offsets) for url in sf.files])
        sitecube.write_site(sp.location, schemas[sf.store], table)
        report("write")
        return {
            "store": sf.store,
            "site": sf.site,
            "files": list(sf.files),
            "checks": accepted["checks"],
            "warnings": accepted["warnings"],
        }

    urls = [url for _, url in pattern.items()]
    checked = (
        p
        | "sites" >> beam.Create(site_groups(urls))
        | "check" >> beam.ParDo(CheckSite(offsets)).with_outputs(REFUSED, main="ok")
    )
    schemas = (
        checked.ok
        | "schema" >> beam.Map(lambda a: (a["site_files"].store, a["schema"]))
        | "group schemas" >> beam.GroupByKey()
        | "template" >> beam.Map(template)
    )
    written = checked.ok | "write" >> beam.ParDo(
        MapOrRefuse(write, "write", lambda a: a["site_files"].files[0]), schemas=beam.pvalue.AsDict(schemas)
    ).with_outputs(REFUSED, main="ok")
    _ = written.ok | "checks" >> WriteRecords(run_dir, "checks")
    _ = (
        (checked[REFUSED], written[REFUSED])
        | "all refused" >> beam.Flatten()
        | "refusals" >> WriteRecords(run_dir, "refused")
    )


def is_synthetic(source: str) -> bool:
    """Whether the inputs come from fluxcube's simulator: a ``SYNTHETIC.json`` marker in the source
    folder or the folder above it (the simulator writes it at the root of its output)."""
    loc = location(source)
    parent = loc.url.rstrip("/").rsplit("/", 1)[0]
    return loc.child("SYNTHETIC.json").exists() or location(parent).child("SYNTHETIC.json").exists()


def run(source: str, target: str, runner: str = "DirectRunner", force: bool = False) -> RunSummary:
    """Ingest every FLUXNET-family file under ``source`` into stores published under ``target``."""
    pub = Publisher(target)
    synthetic = is_synthetic(source)
    plans, skipped, meta = plan(source, pub, synthetic)
    summary = RunSummary(skipped=skipped)
    if not plans:
        return summary
    for sp in plans:
        sp.location = pub.prepare(sp.release, force=force)
        if sp.location is None:
            summary.up_to_date[sp.name] = sp.release.version
    if any(sp.location is not None for sp in plans):
        run_dir = pub.root.child("_runs", f"{RECIPE}-{uuid.uuid4().hex[:12]}").url
        todo = [sp for sp in plans if sp.location is not None]
        report("read", 0, total=sum(len(sp.files) for sp in todo))
        report("publish", 0, total=len(todo))
        with beam.Pipeline(options=pipeline_options(runner)) as p:
            build(p, plans, meta, run_dir)
        checks = read_records(run_dir, "checks")
        summary.refused = sorted(read_records(run_dir, "refused"), key=lambda r: r["file"])
        for sp in plans:
            if sp.location is None:
                continue
            mine = [c for c in checks if c["store"] == sp.name]
            if not mine:
                log.warning("%s: every input was refused; nothing published", sp.name)
                continue
            refused_here = [r for r in summary.refused if r["file"] in sp.files]
            pub.commit(
                sp.release,
                validate=lambda ds, mine=mine: sitecube.validate_store(ds, mine),
                catalog_metadata=lambda ds, r=refused_here: {**describe(ds), "refused": r},
                update_catalog=False,
            )
            summary.published[sp.name] = sp.release.version
            report("publish")
            summary.warnings += [w for c in mine for w in c["warnings"]]
        pub.root.child("_runs", run_dir.rsplit("/", 1)[-1]).remove()
    pub.write_catalog()  # also repairs a catalog left stale by a run killed after its commits
    for name in list(summary.published) + list(summary.up_to_date):
        ds = pub.open(name)
        summary.sites[name] = [str(s) for s in ds["site"].values]
    return summary
