"""The ``fluxcube`` command line: one subcommand group per stage of the data flow (DESIGN.md)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from fluxcube import __version__, config

console = Console(width=None if sys.stdout.isatty() else 140)  # logs and CI output: wide enough for tables
app = typer.Typer(
    help="fluxcube: land-atmosphere CO2 fluxes from towers, satellites, reanalysis and inversions to "
    "analysis-ready Zarr behind an Intake catalog, and the dual-constraint EC-ATM model.",
    no_args_is_help=True,
    add_completion=False,
)
recipes_app = typer.Typer(
    help="1. Recipes: sources in native formats -> analysis-ready Zarr v3.", no_args_is_help=True
)
catalog_app = typer.Typer(
    help="2. Catalog: the Intake 2 catalog of everything published.", no_args_is_help=True
)
simulate_app = typer.Typer(
    help="Simulated world: a known-truth twin of the global inputs, in native formats.", no_args_is_help=True
)
app.add_typer(recipes_app, name="recipes")
app.add_typer(catalog_app, name="catalog")
app.add_typer(simulate_app, name="simulate")
sites_app = typer.Typer(
    help="3. Site processing: QC, u* filtering, gap filling, partitioning, uncertainty, daily targets.",
    no_args_is_help=True,
)
app.add_typer(sites_app, name="sites")
regions_app = typer.Typer(
    help="6. Regions and bridges: regional monthly integrals of the inversions (fire removed), their "
    "range, and the Lasso bridge models.",
    no_args_is_help=True,
)
app.add_typer(regions_app, name="regions")
_PLANNED = {
    "raw": ("4. High-frequency (10-20 Hz) eddy-covariance processing to 30-min fluxes.", None),
    "modis": (
        "fluxcube.recipes.modis",
        "MODIS HDF-EOS2 tiles (MOD09GA) -> NDVI, EVI, NDWI, MIR at 0.5 deg; ORNL/GEE subsets -> tower pixels",
    ),
    "train": ("7. Training of the EC and EC-ATM models (PyTorch Lightning).", None),
    "forward": ("8. Global 0.5 deg forward runs of every ensemble member.", None),
    "evaluate": ("9. The paper's evaluation tables and figures.", None),
    "realtime": ("10. Near-real-time tower processing and the live page.", None),
}
for _name, (_help, _issue) in _PLANNED.items():
    _note = f" Not built yet (issue #{_issue})." if _issue else " Not built yet."
    app.add_typer(typer.Typer(help=_help + _note), name=_name)
drivers_app = typer.Typer(
    help="5. Drivers (FLUXCOM RS+METEO) at tower cells and on the packed 0.5 deg land grid.",
    no_args_is_help=True,
)
app.add_typer(drivers_app, name="drivers")

RECIPES = {  # name -> (module, what it does)
    "fluxnet": (
        "fluxcube.recipes.fluxnet_pipeline",
        "FLUXNET2015/ONEFlux, FluxDataKit, AmeriFlux BASE and PLUMBER2 site files -> (site, time) stores",
    ),
    "era5": (
        "fluxcube.recipes.era5",
        "ERA5 hourly GRIB or CDS NetCDF -> daily Tair, Tmin, Tmax, VPD, Rg, P at 0.5 deg",
    ),
    "gfas": (
        "fluxcube.recipes.gfas",
        "GFAS daily co2fire NetCDF -> fire carbon flux (g C m-2 d-1) at 0.5 deg",
    ),
    "gcb": (
        "fluxcube.recipes.gcb",
        "Global Carbon Budget tables (2022, 2023) -> global residual land sink per year",
    ),
    "inversions": (
        "fluxcube.recipes.inversions",
        "zonal and GCB2022 gridded inversion ensembles -> monthly land flux per member; gridded: 0.5 deg, "
        "fire-adjusted (minus GFAS)",
    ),
    "modis": (
        "fluxcube.recipes.modis",
        "MODIS HDF-EOS2 tiles (MOD09GA) and 8-day lat/lon composites (MOD09A1, MOD15A2H, MOD11A2 NetCDF) "
        "-> indices, fAPAR, LST at 0.5 deg; ORNL/GEE subsets -> tower pixels",
    ),
    "regions": (
        "fluxcube.recipes.regions",
        "Natural Earth countries -> approximate RECCAP2 land regions, cell areas",
    ),
}


def _logging(verbose: bool) -> None:
    handler = RichHandler(console=console, show_path=False, markup=False)
    # Beam warns on import that Google Cloud clients are absent: irrelevant off Google Cloud
    handler.addFilter(lambda record: "apitools" not in record.getMessage())
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[handler],
        force=True,
    )
    for noisy in ("apache_beam", "absl", "botocore", "s3fs", "fsspec", "urllib3", "distributed", "aiohttp"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def _run_recipe(
    name: str, source: str, target: str, runner: str = "DirectRunner", force: bool = False
) -> Any:
    """Run a recipe with progress bars for reading, writing and publishing; return its RunSummary."""
    import importlib

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from fluxcube.recipes.transforms import progress_events

    module = importlib.import_module(RECIPES[name][0])

    labels = {
        "read": "files read",
        "write": "sites or blocks written",
        "publish": "stores validated and published",
    }
    with Progress(
        TextColumn("{task.description:<32}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        tasks: dict[str, Any] = {}  # a bar appears with the recipe's first event of its kind

        def on_event(event: str, advance: int, total: int | None) -> None:
            if event in labels:
                if event not in tasks:
                    tasks[event] = progress.add_task(labels[event], total=None)
                progress.update(
                    tasks[event], advance=advance, **({"total": total} if total is not None else {})
                )

        with progress_events(on_event):
            summary = module.run(source, target, runner=runner, force=force)
        if "write" in tasks:
            progress.update(tasks["write"], total=progress.tasks[tasks["write"]].completed)
    return summary


def _print_summary(summary, target: str) -> None:
    table = Table(title="published stores")
    for col in ("store", "version", "status"):
        table.add_column(col, no_wrap=True)
    table.add_column("sites")
    for name, version in summary.published.items():
        table.add_row(name, version, "published", ", ".join(summary.sites.get(name, [])))
    for name, version in summary.up_to_date.items():
        table.add_row(name, version, "up to date", ", ".join(summary.sites.get(name, [])))
    console.print(table)
    for r in summary.refused:
        console.print(f"[red]refused[/red] {r['error']}", markup=True, highlight=False)
    for s in summary.skipped:
        console.print(f"[yellow]skipped[/yellow] {s}", highlight=False)
    if summary.warnings:
        console.print(f"{len(summary.warnings)} warnings (unknown variables kept):", highlight=False)
        for w in summary.warnings[:20]:
            console.print(f"  {w}", highlight=False)


@recipes_app.command("list")
def recipes_list() -> None:
    """List the recipes."""
    for name, (_, what) in RECIPES.items():
        console.print(f"[bold]{name}[/bold]: {what}")


@recipes_app.command("run")
def recipes_run(
    name: str = typer.Argument(..., help="recipe name (see `fluxcube recipes list`)"),
    source: str = typer.Option(..., help="folder or URL with the input files (searched recursively)"),
    target: str = typer.Option(
        None, help=f"store root URL (default ${config.STORE_ENV} or {config.DEFAULT_STORE})"
    ),
    runner: str = typer.Option("DirectRunner", help="Apache Beam runner"),
    force: bool = typer.Option(False, help="rewrite even when this version is already published"),
    append: bool = typer.Option(
        False, help="era5 and gfas only: append new days to the published store, no rewrite"
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="log each file"),
) -> None:
    """Run a recipe: read SOURCE, write and publish stores under TARGET, update the catalog."""
    _logging(verbose)
    if name not in RECIPES:
        console.print(f"unknown recipe {name!r}; known: {', '.join(RECIPES)}")
        raise typer.Exit(2)
    target = target or config.store_root()
    if append:
        if name not in ("era5", "gfas"):
            console.print("--append is supported by the era5 and gfas recipes only (so far)")
            raise typer.Exit(2)
        from fluxcube.recipes.append import append as append_era5
        from fluxcube.recipes.append import append_gfas

        console.print(f"appending {source} to the {name} store under {target}", highlight=False)
        summary = (append_era5 if name == "era5" else append_gfas)(source, target, runner=runner)
        _print_summary(summary, target)
        raise typer.Exit(0 if summary.ok else 1)
    console.print(f"recipe {name} on Apache Beam ({runner}): {source} -> {target}", highlight=False)
    summary = _run_recipe(name, source, target, runner=runner, force=force)
    _print_summary(summary, target)
    if not summary.ok:
        console.print("nothing was published")
        raise typer.Exit(1)


@catalog_app.command("show")
def catalog_show(target: str = typer.Option(None, help="store root URL")) -> None:
    """List the published datasets with version, dimensions and extent."""
    from fluxcube.publish import Publisher

    pub = Publisher(target or config.store_root())
    table = Table(title=f"catalog at {pub.root.url}")
    for col in ("dataset", "version", "dims", "time"):
        table.add_column(col, no_wrap=True)
    table.add_column("description")
    for name in pub.names():
        m = pub.current(name) or {}
        md = m.get("metadata", {})
        t = md.get("extent", {}).get("temporal", {})
        table.add_row(
            name,
            m.get("version", ""),
            " ".join(f"{k}:{v}" for k, v in md.get("dims", {}).items()),
            f"{t.get('start', '')[:10]}..{t.get('end', '')[:10]}",
            m.get("description", ""),
        )
    console.print(table)


@catalog_app.command("versions")
def catalog_versions(name: str, target: str = typer.Option(None, help="store root URL")) -> None:
    """List every committed version of a dataset (old versions are kept)."""
    from fluxcube.publish import Publisher

    pub = Publisher(target or config.store_root())
    current = (pub.current(name) or {}).get("version")
    for m in pub.versions(name):
        mark = "*" if m["version"] == current else " "
        console.print(f"{mark} {m['version']}  {m['published']}  {m['recipe']} {m['recipe_version']}")


@catalog_app.command("rebuild")
def catalog_rebuild(target: str = typer.Option(None, help="store root URL")) -> None:
    """Regenerate catalog.yaml from the published manifests."""
    from fluxcube.catalog import write_catalog
    from fluxcube.publish import Publisher

    console.print(write_catalog(Publisher(target or config.store_root())))


@simulate_app.command("towers")
def simulate_towers(
    out: Path = typer.Argument(..., help="folder to write into (sites/, truth/, SYNTHETIC.json)"),
    start_year: int = typer.Option(2001, help="first year"),
    end_year: int = typer.Option(2017, help="last year (inclusive)"),
    sites: int = typer.Option(0, help="number of sites (0: the whole network)"),
    site: list[str] = typer.Option(None, help="site ids to simulate (repeatable); overrides --sites"),
    seed: int = typer.Option(0, help="random seed: the same seed gives the same bytes"),
    data: Path = typer.Option(
        None, help=f"real data folder for real tower coordinates (default ${config.DATA_ENV})"
    ),
    tropical_night_bias: float = typer.Option(
        0.3, help="fraction of night-time respiration tropical evergreen towers miss (0: no bias)"
    ),
    halfhourly: bool = typer.Option(False, help="also write half-hourly files"),
    full_period: bool = typer.Option(
        False, help="every site over the whole period, not its real record years"
    ),
    noise: bool = typer.Option(True, help="measurement noise and gaps"),
    sink_scale: float = typer.Option(
        0.17, help="multiplies the PFT sink fractions of the truth; use the world's value (default 0.17)"
    ),
    representativeness: float = typer.Option(
        1.0, help="towers' stands take up this many times their grid cell's sink fraction (1: no bias)"
    ),
    ustar_threshold: float = typer.Option(
        None,
        help="true u* threshold of every tower, m s-1: measured night-time NEE is damped below it "
        "(default: by PFT, 0.1-0.3; 0: no low-turbulence loss)",
    ),
) -> None:
    """Simulate the tower network and write FLUXNET2015 CSVs, the site table and the known truth."""
    from fluxcube.simulate.towers import write_towers

    _logging(False)
    chosen: int | list[str] | None = list(site) if site else (sites or None)
    with console.status("simulating towers"):
        files = write_towers(
            out,
            start_year=start_year,
            end_year=end_year,
            sites=chosen,
            seed=seed,
            data_dir=data or config.data_dir(),
            tropical_night_bias=tropical_night_bias,
            noise=noise,
            halfhourly=halfhourly,
            site_years=not full_period,
            sink_scale=sink_scale,
            representativeness=representativeness,
            ustar_threshold=ustar_threshold,
        )
    console.print(f"wrote {len(files)} files under {out}", highlight=False)
    console.print(f"ingest them with: fluxcube recipes run fluxnet --source {out}/sites", highlight=False)


@simulate_app.command("world")
def simulate_world(
    out: Path = typer.Argument(
        ..., help="folder to write into (truth/, era5/, modis/, gfas/, inversions/, ...)"
    ),
    grid_deg: float = typer.Option(
        0.5, help="grid cell size, degrees (coarser for quick looks, e.g. 2 or 4)"
    ),
    start_year: int = typer.Option(2001, help="first year"),
    end_year: int = typer.Option(2017, help="last year (inclusive)"),
    seed: int = typer.Option(0, help="random seed: the same seed gives the same bytes"),
    inversions: int = typer.Option(5, help="number of inversion ensemble members"),
    no_era5: bool = typer.Option(False, help="skip the hourly ERA5-like files (most of the volume)"),
    data: Path = typer.Option(
        None, help=f"real data folder for Natural Earth regions (default ${config.DATA_ENV})"
    ),
    sink_scale: float = typer.Option(
        0.17, help="multiplies the PFT sink fractions of the truth; use the towers' value (default 0.17)"
    ),
    workers: int = typer.Option(
        0, help="Dask workers (fluxcube.cluster), one task per year; 0: everything in this process"
    ),
) -> None:
    """Simulate the gridded world (truth, ERA5, MODIS, GFAS, inversions, GCB, regions) in native formats."""
    from fluxcube.simulate.world import COMPONENTS, write_world

    if workers:
        import distributed  # noqa: F401  (sets its loggers up on import: quieten them after, in _logging)
    _logging(False)
    components = [c for c in COMPONENTS if not (no_era5 and c == "era5")]
    with console.status(f"simulating the world at {grid_deg} deg, {start_year}-{end_year}") as status:
        summary = write_world(
            out,
            grid_deg=grid_deg,
            start_year=start_year,
            end_year=end_year,
            seed=seed,
            data_dir=data or config.data_dir(),
            n_inversions=inversions,
            components=components,
            sink_scale=sink_scale,
            progress=lambda msg: status.update(msg),
            workers=workers,
        )
    console.print(f"wrote {len(summary.files)} files under {out} (peak RSS {summary.peak_rss_mib:.0f} MiB)")
    console.print(summary.global_annual.round(3).to_string(), highlight=False)


@sites_app.command("process")
def sites_process(
    source: list[Path] = typer.Argument(
        None, help="half-hourly files or folders (FLUXNET HH, REddyProc, openeddy); or give --store"
    ),
    store: str = typer.Option(
        None, help="published half-hourly site store under --target to process instead (e.g. fluxnet2015_hh)"
    ),
    target: str = typer.Option(None, help="store root URL"),
    site: str = typer.Option(None, help="site id (default: from the file name; with --store: every site)"),
    lat: float = typer.Option(None, help="latitude, degrees north (default: metadata tables or store)"),
    lon: float = typer.Option(None, help="longitude, degrees east (default: metadata tables or store)"),
    utc_offset: float = typer.Option(None, help="hours east of UTC of the files' clock (default: metadata)"),
    metadata: list[Path] = typer.Option(None, help="folders with FLUXNET metadata tables"),
    workers: int = typer.Option(None, help="Dask workers (default: one per core)"),
    force: bool = typer.Option(False, help="rewrite even when this version is already published"),
) -> None:
    """Process half-hourly tower files, or a published half-hourly site store (--store), on the Dask
    cluster site by site; publish sites_processed_hh, _dd and _mm."""
    from rich.progress import Progress

    from fluxcube.errors import InputError
    from fluxcube.sites.run import run as run_sites
    from fluxcube.sites.run import site_inputs, store_inputs

    _logging(False)
    target = target or config.store_root()
    if bool(source) == bool(store):
        console.print("give half-hourly files or folders, or --store NAME (not both)", highlight=False)
        raise typer.Exit(2)
    if store:
        try:
            inputs, problems = store_inputs(target, store, site, lat, lon, utc_offset)
        except InputError as err:
            console.print(f"[red]refused[/red] {err}", markup=True, highlight=False)
            raise typer.Exit(1) from err
    else:
        files = sorted(str(f) for p in source for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file())
        meta_dirs = [str(m) for m in (metadata or [])] or [str(config.data_dir() / "sites")]
        inputs, problems = site_inputs(files, meta_dirs, site, lat, lon, utc_offset)
    with Progress(console=console) as progress:
        task = progress.add_task("sites processed", total=len(inputs))
        summary = run_sites(
            inputs, target, n_workers=workers, force=force, progress=lambda: progress.advance(task)
        )
    summary.skipped += problems
    _print_summary(summary, target)
    for sid, steps in summary.steps.items():
        failed = {k: v for k, v in steps.items() if v != "ok"}
        if failed:
            console.print(f"{sid}: steps that could not run: {failed}", highlight=False)
    if not summary.ok:
        raise typer.Exit(1)


@drivers_app.command("build")
def drivers_build(
    target: str = typer.Option(None, help="store root URL (inputs are read from its catalog)"),
    what: str = typer.Option("all", help="sites, cube or all"),
    targets: str = typer.Option(
        None, help="daily NEE target store (default: sites_processed_dd, fluxnet2015_dd)"
    ),
    workers: int = typer.Option(None, help="Dask workers (default: one per core; FLUXCUBE_DASK_MEMORY each)"),
    force: bool = typer.Option(False, help="rewrite even when this version is already published"),
) -> None:
    """Build drivers_sites_dd (aligned with the targets) and/or drivers_land_0p5deg on the Dask cluster."""
    from rich.progress import Progress

    from fluxcube.drivers.build import run as run_drivers
    from fluxcube.errors import InputError

    _logging(False)
    choices = {"all": ("sites", "cube"), "sites": ("sites",), "cube": ("cube",)}
    if what not in choices:
        console.print(f"--what {what!r}: expected one of {', '.join(choices)}", highlight=False)
        raise typer.Exit(2)
    parts = choices[what]
    target = target or config.store_root()
    with Progress(console=console) as progress:
        task = progress.add_task("driver cube pixel chunks", total=None)
        try:
            summary = run_drivers(
                target,
                parts,
                targets,
                workers,
                force,
                lambda done, total: progress.update(task, completed=done, total=total),
            )
        except InputError as err:
            console.print(f"[red]refused[/red] {err}", markup=True, highlight=False)
            raise typer.Exit(1) from err
    notes, summary.warnings = summary.warnings, []  # _print_summary labels warnings as FLUXNET's
    _print_summary(summary, target)
    for w in notes:
        console.print(f"note: {w}", highlight=False)
    if summary.stats:
        console.print(f"cube: {summary.stats}", highlight=False)


@drivers_app.command("table")
def drivers_table() -> None:
    """Print the driver table (name, source, formula, units, time step)."""
    from fluxcube.drivers.table import markdown_table

    console.print(markdown_table(), highlight=False, markup=False)


@regions_app.command("integrals")
def regions_integrals(
    target: str = typer.Option(
        None, help=f"store root URL (default ${config.STORE_ENV} or {config.DEFAULT_STORE})"
    ),
    workers: int = typer.Option(None, help="Dask workers (default: one per core)"),
    force: bool = typer.Option(False, help="rewrite even when this version is already published"),
) -> None:
    """Monthly regional integrals (Pg C month-1) of every inversion's fire-adjusted flux over the 18
    regions, ensemble mean and range; publish inversions_regional_monthly and draw reports/*.png."""
    from fluxcube.errors import InputError
    from fluxcube.regions.integrals import run as run_integrals

    _logging(False)
    target = target or config.store_root()
    try:
        summary = run_integrals(target, n_workers=workers, force=force, console=console)
    except InputError as err:
        console.print(f"[red]refused[/red] {err}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from err
    _print_summary(summary, target)
    for f in summary.figures:
        console.print(f"figure: {f}", highlight=False)
    if not summary.ok:
        raise typer.Exit(1)


@regions_app.command("bridges")
def regions_bridges(
    product: str = typer.Option(
        ..., help="NEE product: 'truth:<simulated world folder>' or 'store:<name>' (a published store)"
    ),
    variable: str = typer.Option("NEE", help="variable of the product (g C m-2 d-1)"),
    target: str = typer.Option(
        None, help=f"store root URL (default ${config.STORE_ENV} or {config.DEFAULT_STORE})"
    ),
    regions_root: str = typer.Option(None, help="root with regions_land_0p5deg (default: target)"),
    region: list[int] = typer.Option(None, help="region number(s) 1-18 (default: all)"),
    trials: int = typer.Option(1000, help="random trials per region"),
    seed: int = typer.Option(0, help="random seed of clustering and sampling"),
    candidates: int = typer.Option(100, help="candidate pixels per trial"),
    clusters: int = typer.Option(8, help="spectral clusters per region"),
    threshold: float = typer.Option(0.95, help="training R2 to reach"),
    folds: int = typer.Option(5, help="k of the k-fold cross-validation"),
    series: str = typer.Option("seasonal", help="DTW on 'seasonal' cycles or full 'monthly' series"),
    name: str = typer.Option(None, help="store name (default bridges_<product>)"),
    figures: Path = typer.Option(None, help="folder for the inclusion heat maps (PNG)"),
    workers: int = typer.Option(None, help="Dask workers (default: one per core)"),
    force: bool = typer.Option(False, help="rewrite even when this version is already published"),
) -> None:
    """Lasso bridge models per region (paper section 3.3): DTW + spectral clusters, stratified random
    candidates, alpha lowered until R2 >= threshold, k-fold CV; publish bridges_<product>."""
    from fluxcube.cluster import progress_bar
    from fluxcube.regions.bridges import BridgeParams
    from fluxcube.regions.bridges import run as run_bridges

    _logging(False)
    target = target or config.store_root()
    params = BridgeParams(
        n_trials=trials,
        seed=seed,
        n_candidates=candidates,
        n_clusters=clusters,
        threshold=threshold,
        folds=folds,
        series=series,
    )
    with progress_bar(console=console) as bar:
        summary = run_bridges(
            product,
            target,
            params,
            variable=variable,
            regions_root=regions_root,
            region_numbers=region or None,
            name=name,
            figures_dir=figures,
            n_workers=workers,
            force=force,
            progress=bar,
        )
    table = Table(title=f"{summary.name} version {summary.version}")
    for col in ("region", "trial", "pixels", "R2 train", "R2 CV", "bias Pg C/month"):
        table.add_column(col)
    ds = summary.dataset
    for k in range(ds.sizes["region"]):
        n = int((ds["bridge_lat_index"].values[k] >= 0).sum())
        table.add_row(
            str(ds["region_abbrev"].values[k]),
            str(int(ds["bridge_trial"].values[k])),
            str(n),
            f"{float(ds['bridge_r2_train'].values[k]):.3f}",
            f"{float(ds['bridge_r2_cv'].values[k]):.3f}",
            f"{float(ds['bridge_bias'].values[k]):.4f}",
        )
    console.print(table)
    console.print("published" if summary.published else "up to date (already published)", highlight=False)
    for f in summary.figures:
        console.print(f"figure: {f}", highlight=False)


def _open_hint(catalog_url: str, name: str) -> str:
    return f'import intake\ncat = intake.from_yaml_file("{catalog_url}")\nds = cat["{name}"].read()'


@app.command()
def demo(
    target: str = typer.Option(config.DEFAULT_STORE, help="local folder for the demo's stores and report"),
    data: Path = typer.Option(
        None, help=f"real sample data folder (default ${config.DATA_ENV} or {config.DEFAULT_DATA})"
    ),
    grid_deg: float = typer.Option(4.0, help="simulated world cell size, degrees (0.5 is the real grid)"),
    start_year: int = typer.Option(2011, help="first simulated year"),
    end_year: int = typer.Option(2012, help="last simulated year (2012: the European drought)"),
    sites: int = typer.Option(8, help="simulated towers"),
    trials: int = typer.Option(20, help="bridge-model trials per region (1000 in the paper)"),
    workers: int = typer.Option(None, help="Dask workers (default: one per core)"),
    samples: bool = typer.Option(True, help="also ingest the real FLUXNET samples when present"),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Run the main job end to end on the simulated world (local folder, local Dask cluster): simulate,
    every recipe, site processing, drivers, regional integrals, bridge models, report."""
    _logging(verbose)
    from fluxcube.demo import DemoSettings, run_demo
    from fluxcube.storage import location

    root = location(target)
    if not root.is_local:
        console.print("the demo writes a local folder: give --target a path", highlight=False)
        raise typer.Exit(2)
    data_dir = (data or config.data_dir()).resolve()
    settings = DemoSettings(grid_deg, start_year, end_year, sites, trials, workers=workers)
    if not (data_dir / "sites").is_dir():
        console.print(
            f"[bold yellow]The real sample data is missing[/bold yellow] (looked for {data_dir}; set "
            f"${config.DATA_ENV} to point at it): the simulated world runs alone, no real samples are "
            "ingested.",
            highlight=False,
        )
    console.rule(f"fluxcube {__version__}: the simulated world end to end")
    console.print(f"{settings}\nstores, catalog and report under {root.path}", highlight=False)
    summary = run_demo(
        target,
        settings,
        lambda name, source, tgt: _run_recipe(name, source, tgt),
        on_stage=lambda name: console.rule(name, style="cyan"),
    )
    table = Table(title="demo stages")
    for col in ("stage", "seconds", "status", "detail"):
        table.add_column(col)
    for stage in summary.stages:
        table.add_row(stage.name, f"{stage.seconds:.1f}", stage.status, stage.detail)
    console.print(table)
    catalog_url = root.child("catalog.yaml").url
    if samples and (data_dir / "sites").is_dir():
        samples_root = location(str(Path(root.path) / "samples"))
        console.rule("the real FLUXNET samples")
        sample_summary = _run_recipe("fluxnet", str(data_dir / "sites"), samples_root.url)
        _print_summary(sample_summary, samples_root.url)
        console.print(f"samples catalog: {samples_root.child('catalog.yaml').url}", highlight=False)
    console.rule("done" if summary.ok else "done, with failed stages")
    console.print(f"Report: {summary.report}\nCatalog: {catalog_url}\nOpen it in Python:\n", highlight=False)
    console.print(_open_hint(catalog_url, "sites_processed_dd"), highlight=False, markup=False)
    if not summary.ok:
        raise typer.Exit(1)


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
