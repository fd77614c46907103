"""The main job end to end on the simulated world (``fluxcube demo``, ``make demo``).

Stages, each idempotent (a rerun finds the stores up to date and does nothing but the report):

1. ``simulate``: a small simulated world (``grid_deg`` cells, ``start_year..end_year``, 2011-2012 by
   default: 2012 holds the European drought) and its tower network (half-hourly FLUXNET2015 files) under
   ``<target>/_inputs`` (skipped when the same settings were simulated before);
2. ``recipes``: regions (the world's RECCAP2-layout mask), ERA5, MODIS, GFAS, inversions, GCB and FLUXNET
   into Zarr stores behind the catalog;
3. ``sites``: the half-hourly site store through QC, u*, gap filling and both partitionings;
4. ``drivers``: the site driver store and the global land-pixel driver cube;
5. ``integrals``: monthly regional integrals of every inversion member (fire removed);
6. ``bridges``: bridge models per region on the world's true NEE;
7. ``report``: ``reports/demo.md``, with the stores, the figures and the checks against the known truth.

The recipes are run through a caller-given function (the CLI passes one with progress bars).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fluxcube.publish import Publisher

#: (recipe, source folder under the simulated inputs), in the order they run.
RECIPE_SOURCES: tuple[tuple[str, str], ...] = (
    ("regions", "world/regions"),
    ("era5", "world/era5"),
    ("modis", "world/modis"),
    ("gfas", "world/gfas"),
    ("inversions", "world/inversions"),
    ("gcb", "world/gcb"),
    ("fluxnet", "towers/sites"),
)
SETTINGS_FILE = "demo-inputs.json"


@dataclass(frozen=True)
class DemoSettings:
    """What the demo simulates and runs: ``grid_deg`` (degrees) world cells, years ``start_year..end_year``
    (inclusive), ``sites`` towers, ``trials`` bridge trials per region, ``seed``, Dask ``workers``."""

    grid_deg: float = 4.0
    start_year: int = 2011
    end_year: int = 2012
    sites: int = 8
    trials: int = 20
    seed: int = 0
    workers: int | None = None


@dataclass
class Stage:
    """One stage's outcome: ``seconds`` of wall time, ``status`` ("ok", "failed: ..."), ``detail`` (what
    it published, or that it was up to date)."""

    name: str
    seconds: float = 0.0
    status: str = "ok"
    detail: str = ""


@dataclass
class DemoSummary:
    """What :func:`run_demo` did."""

    inputs: Path
    stages: list[Stage] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    report: Path | None = None

    @property
    def ok(self) -> bool:
        return all(s.status == "ok" for s in self.stages)


def simulate_inputs(inputs: Path, settings: DemoSettings) -> bool:
    """Write the world and the towers under ``inputs`` unless the same settings are there already.

    The demo's world does not depend on the real samples (box regions, synthetic tower coordinates), so
    it is the same on every machine. Returns True when it simulated. The settings file is written last:
    an interrupted run simulates again (the same bytes: the writers are deterministic)."""
    from fluxcube.simulate.towers import write_towers
    from fluxcube.simulate.world import write_world

    wanted = {k: v for k, v in asdict(settings).items() if k not in ("trials", "workers")}
    marker = inputs / SETTINGS_FILE
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return False
    nowhere = inputs / "no-real-data"  # never created: the writers fall back to their synthetic choices
    write_world(
        inputs / "world",
        grid_deg=settings.grid_deg,
        start_year=settings.start_year,
        end_year=settings.end_year,
        seed=settings.seed,
        data_dir=nowhere,
        regions="boxes",
    )
    write_towers(
        inputs / "towers",
        start_year=settings.start_year,
        end_year=settings.end_year,
        sites=settings.sites,
        seed=settings.seed,
        data_dir=nowhere,
        halfhourly=True,
        site_years=False,
    )
    marker.write_text(json.dumps(wanted, indent=1, sort_keys=True))
    return True


@contextmanager
def _stage(summary: DemoSummary, name: str, on_stage: Callable[[str], None]) -> Iterator[Stage]:
    on_stage(name)
    stage = Stage(name)
    summary.stages.append(stage)
    start = time.perf_counter()
    try:
        yield stage
    except Exception as err:  # the report says which stage failed and why; later stages may still run
        stage.status = f"failed: {type(err).__name__}: {err}"
    finally:
        stage.seconds = time.perf_counter() - start


def run_demo(
    target: str,
    settings: DemoSettings,
    run_recipe: Callable[[str, str, str], Any],
    on_stage: Callable[[str], None] = lambda name: None,
) -> DemoSummary:
    """Run every stage on ``target`` (a local folder); ``run_recipe(name, source, target)`` returns a
    recipe's RunSummary. Returns the stages, figures and the report's path."""
    root = Path(target)
    inputs = root / "_inputs" / "simulated"
    summary = DemoSummary(inputs)
    pub = Publisher(target)
    failed_steps: dict[str, dict[str, str]] = {}
    with _stage(summary, "simulate", on_stage) as stage:
        stage.detail = "simulated" if simulate_inputs(inputs, settings) else "same settings: kept"
    for recipe, source in RECIPE_SOURCES:
        with _stage(summary, f"recipe {recipe}", on_stage) as stage:
            result = run_recipe(recipe, str(inputs / source), target)
            stage.detail = _outcome(result)
            if not result.ok:
                stage.status = "failed: " + "; ".join(r["error"] for r in result.refused)[:300]
    with _stage(summary, "sites", on_stage) as stage:
        from fluxcube.sites.run import run as run_sites
        from fluxcube.sites.run import store_inputs

        site_list, problems = store_inputs(target, "fluxnet2015_hh", None, None, None, None)
        result = run_sites(site_list, target, n_workers=settings.workers)
        stage.detail = _outcome(result)
        if not result.ok or problems:
            stage.status = f"failed: {problems} {result.refused}"[:300]
        for site, steps in result.steps.items():  # steps that could not run go into the report
            failed = {k: v for k, v in steps.items() if v != "ok"}
            if failed:
                failed_steps[site] = failed
    with _stage(summary, "drivers", on_stage) as stage:
        from fluxcube.drivers.build import run as run_drivers

        stage.detail = _outcome(run_drivers(target, ("sites", "cube"), None, settings.workers, False, None))
    with _stage(summary, "integrals", on_stage) as stage:
        from fluxcube.regions.integrals import run as run_integrals

        integrals = run_integrals(target, n_workers=settings.workers)
        stage.detail = _outcome(integrals)
        summary.figures += integrals.figures
    with _stage(summary, "bridges", on_stage) as stage:
        from fluxcube.regions.bridges import BridgeParams
        from fluxcube.regions.bridges import run as run_bridges

        bridges = run_bridges(
            f"truth:{inputs / 'world'}",
            target,
            BridgeParams(n_trials=settings.trials, seed=settings.seed),
            figures_dir=root / "reports" / "bridges",
            n_workers=settings.workers,
        )
        summary.figures += bridges.figures
        stage.detail = f"{'published' if bridges.published else 'up to date'}: {bridges.name}"
    with _stage(summary, "report", on_stage):
        from fluxcube.report import site_report

        summary.figures = site_report(target, root / "reports") + summary.figures
        summary.report = write_report(root, pub, inputs, summary, failed_steps)
    return summary


def _outcome(result: Any) -> str:
    """What a stage's RunSummary published and found up to date, in a few words."""
    parts = []
    if result.published:
        parts.append("published: " + ", ".join(sorted(result.published)))
    if result.up_to_date:
        parts.append("up to date: " + ", ".join(sorted(result.up_to_date)))
    return "; ".join(parts)


# ------------------------------------------------------------------------------------------ report
def _years(ds: Any) -> Any:
    """The ``time`` coordinate's years as a DataArray named ``year`` (for groupby)."""
    return ds["time"].dt.year.rename("year")


def truth_checks(pub: Publisher, inputs: Path) -> dict[str, pd.DataFrame]:
    """The products against the simulated world's known truth: tables for the report.

    ``global``: per year (Pg C yr-1, positive = source), the true net land flux (NEE + fire), the true NEE
    over the 18 regions, the GCB-like table's residual land sink with its sign flipped, and the sum over the
    18 regions of the inversions' fire-removed flux (compare with the true NEE over the regions);
    ``regions``: per region and year, the true NEE and the inversions' mean and range (Pg C yr-1);
    ``sites``: per site, daily NEE of ``sites_processed_dd`` against the tower truth: RMSE and bias
    (g C m-2 d-1)."""
    truth_dir = inputs / "world" / "truth"
    annual = pd.read_csv(truth_dir / "global_annual.csv").set_index("year")
    monthly = pd.read_csv(truth_dir / "regional_monthly.csv")
    true_regions = monthly[monthly["region_id"] > 0].groupby(["region_id", "year"])["NEE"].sum()
    inv = pub.open("inversions_regional_monthly")
    members = inv["land_flux_integral"].groupby(_years(inv)).sum().load()  # (member, region, year)
    gcb = pub.open("gcb_global_budget")["residual_land_sink"].isel(edition=0).to_pandas()
    gcb.index = pd.DatetimeIndex(gcb.index).year
    rows = []
    for year in members["year"].values.tolist():
        total = members.sel(year=year).sum("region")
        rows.append(
            {
                "year": year,
                "true net land flux": annual.loc[year, "net_land_flux"],
                "true NEE, 18 regions": true_regions.xs(year, level="year").sum(),
                "GCB-like -residual sink": -gcb.get(year, np.nan),
                "inversions mean": float(total.mean()),
                "inversions min": float(total.min()),
                "inversions max": float(total.max()),
            }
        )
    checks = {"global": pd.DataFrame(rows).set_index("year")}
    abbrev = dict(zip(inv["region"].values.tolist(), inv["region_abbrev"].values.tolist(), strict=True))
    rows = []
    for (region, year), truth in true_regions.items():
        if region in abbrev and year in members["year"].values:
            m = members.sel(region=region, year=year)
            rows.append(
                {
                    "region": abbrev[region],
                    "year": year,
                    "true NEE": truth,
                    "inversions mean": float(m.mean()),
                    "inversions range": float(m.max() - m.min()),
                }
            )
    checks["regions"] = pd.DataFrame(rows).set_index(["region", "year"])
    towers = pd.read_csv(inputs / "towers" / "truth" / "towers_truth.csv", parse_dates=["date"])
    nee = pub.open("sites_processed_dd")["NEE"].load()
    rows = []
    for site in nee["site"].values.tolist():
        truth = towers[towers["site"] == site].set_index("date")["NEE"]
        diff = (nee.sel(site=site).to_pandas().reindex(truth.index) - truth).dropna()
        rows.append({"site": site, "days": diff.size, "RMSE": np.sqrt((diff**2).mean()), "bias": diff.mean()})
    checks["sites"] = pd.DataFrame(rows).set_index("site")
    return checks


def markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame as a Markdown table (index included), numbers rounded to ``digits``."""
    flat = frame.reset_index()
    cells = [
        [f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row]
        for row in flat.itertuples(index=False)
    ]
    lines = ["| " + " | ".join(map(str, flat.columns)) + " |", "|" + "---|" * flat.shape[1]]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def regions_figure(regions: pd.DataFrame, path: Path) -> Path:
    """Bars of the true regional NEE per year against the inversions' mean and range (Pg C yr-1)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    years = sorted(set(regions.index.get_level_values("year")))
    names = list(dict.fromkeys(regions.index.get_level_values("region")))
    fig, axes = plt.subplots(len(years), 1, figsize=(11, 3.2 * len(years)), squeeze=False, sharey=True)
    x = np.arange(len(names))
    for ax, year in zip(axes[:, 0], years, strict=True):
        sub = regions.xs(year, level="year").reindex(names)
        ax.bar(x - 0.2, sub["true NEE"], 0.4, label="truth (NEE)", color="0.3")
        ax.bar(
            x + 0.2,
            sub["inversions mean"],
            0.4,
            yerr=sub["inversions range"] / 2,
            capsize=2,
            label="inversions, fire removed (mean, range)",
            color="tab:blue",
        )
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xticks(x, names, rotation=45, fontsize=8)
        ax.set_ylabel(f"{year}: Pg C yr$^{{-1}}$")
    axes[0, 0].legend(fontsize=8)
    axes[0, 0].set_title("Simulated world: regional net ecosystem exchange (positive = source)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(
    root: Path, pub: Publisher, inputs: Path, summary: DemoSummary, failed_steps: dict[str, dict[str, str]]
) -> Path:
    """``reports/demo.md``: stages, stores, the checks against the truth and the figures."""
    reports = root / "reports"
    lines = [
        "# fluxcube demo: the simulated world end to end",
        "",
        "| stage | seconds | status | detail |",
        "|---|---:|---|---|",
    ]
    lines += [f"| {s.name} | {s.seconds:.1f} | {s.status} | {s.detail} |" for s in summary.stages]
    lines += ["", "## Stores (catalog: `catalog.yaml`)", ""]
    lines += [f"- `{n}` version `{pub.current(n)['version']}`" for n in pub.names() if pub.current(n)]
    try:
        checks = truth_checks(pub, inputs)
    except Exception as err:  # a stage upstream failed: the report still lists what exists
        lines += ["", f"Checks against the truth not possible: {type(err).__name__}: {err}"]
    else:
        summary.figures.append(str(regions_figure(checks["regions"], reports / "demo_regions_vs_truth.png")))
        lines += ["", "## Against the known truth", "", "Global, Pg C per year (positive = source):", ""]
        lines += [markdown(checks["global"]), ""]
        lines += ["Regions, Pg C per year (the truth's NEE; the inversions with fire removed):", ""]
        lines += [markdown(checks["regions"]), ""]
        lines += ["Towers, daily NEE of `sites_processed_dd` against the tower truth (g C m-2 d-1):", ""]
        lines += [markdown(checks["sites"]), ""]
    if failed_steps:
        lines += ["Site processing steps that could not run:", ""]
        lines += [f"- {site}: {steps}" for site, steps in sorted(failed_steps.items())]
    lines += ["", "## Figures", ""]
    lines += [f"![{Path(f).stem}]({os.path.relpath(f, reports)})" for f in summary.figures]
    path = reports / "demo.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
