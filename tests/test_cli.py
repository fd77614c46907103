"""The command line as a user meets it: help, recipes run, catalog (the demo: tests/test_demo.py)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fluxcube.cli import app

runner = CliRunner()
STAGES = (
    "recipes",
    "catalog",
    "simulate",
    "sites",
    "raw",
    "drivers",
    "regions",
    "train",
    "forward",
    "evaluate",
    "realtime",
    "demo",
)


def test_help_lists_every_stage() -> None:
    result = runner.invoke(app, ["--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for stage in STAGES:
        assert re.search(rf"\b{stage}\b", result.output), stage


@pytest.fixture
def small_source(sites_dir: Path, tmp_path: Path) -> Path:
    """Two FLUXNET2015 files and the metadata tables, copied to a folder of their own."""
    src = tmp_path / "src"
    (src / "metadata").mkdir(parents=True)
    for name in (
        "FLX_US-Prr_FLUXNET2015_SUBSET_MM_2010-2014_1-4.csv",
        "FLX_FR-Pue_FLUXNET2015_FULLSET_YY_2007-2014_2-3.csv",
    ):
        shutil.copy(sites_dir / "fluxnet2015" / name, src / name)
    shutil.copy(sites_dir / "metadata" / "siteinfo_fluxnet2015.csv", src / "metadata")
    shutil.copy(sites_dir / "metadata" / "FLX_AA-Flx_BIF_LATEST.csv", src / "metadata")
    return src


def test_recipes_run_then_rerun_then_catalog(small_source: Path, tmp_path: Path) -> None:
    target = str(tmp_path / "store")
    first = runner.invoke(
        app,
        ["recipes", "run", "fluxnet", "--source", str(small_source), "--target", target],
        terminal_width=200,
    )
    assert first.exit_code == 0, first.output
    assert "fluxnet2015_mm" in first.output and "fluxnet2015_yy" in first.output
    assert first.output.count("published") >= 2
    second = runner.invoke(
        app,
        ["recipes", "run", "fluxnet", "--source", str(small_source), "--target", target],
        terminal_width=200,
    )
    assert second.exit_code == 0, second.output
    assert second.output.count("up to date") == 2
    shown = runner.invoke(app, ["catalog", "show", "--target", target], terminal_width=200)
    assert shown.exit_code == 0 and "fluxnet2015_yy" in shown.output
    versions = runner.invoke(
        app, ["catalog", "versions", "fluxnet2015_mm", "--target", target], terminal_width=200
    )
    assert versions.exit_code == 0
    assert len([line for line in versions.output.splitlines() if line.strip()]) == 1


def test_unknown_recipe_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["recipes", "run", "nope", "--source", str(tmp_path), "--target", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "unknown recipe" in result.output


def test_simulate_world_command(tmp_path: Path) -> None:
    out = tmp_path / "world"
    result = runner.invoke(
        app,
        [
            "simulate",
            "world",
            str(out),
            "--grid-deg",
            "6",
            "--start-year",
            "2011",
            "--end-year",
            "2011",
            "--no-era5",
            "--data",
            str(tmp_path / "none"),
        ],
        terminal_width=200,
    )
    assert result.exit_code == 0, result.output
    assert (out / "SYNTHETIC.json").exists()
    assert not list(out.rglob("*era5*.nc"))  # --no-era5 honoured
    assert "net_land_flux" in result.output


def test_sites_process_from_the_fluxnet_store(tmp_path: Path) -> None:
    """Simulated half-hourly tower -> `recipes run fluxnet` -> `sites process --store fluxnet2015_hh`."""
    from fluxcube.publish import Publisher
    from fluxcube.simulate.towers import write_towers

    world, target = tmp_path / "world", str(tmp_path / "store")
    write_towers(
        world, 2012, 2012, sites=1, seed=3, data_dir=tmp_path / "none", halfhourly=True, site_years=False
    )
    ingest = runner.invoke(
        app,
        ["recipes", "run", "fluxnet", "--source", str(world / "sites"), "--target", target],
        terminal_width=200,
    )
    assert ingest.exit_code == 0, ingest.output
    site = str(Publisher(target).open("fluxnet2015_hh")["site"].values[0])
    args = [
        "sites",
        "process",
        "--store",
        "fluxnet2015_hh",
        "--target",
        target,
        "--site",
        site,
        "--workers",
        "1",
    ]
    result = runner.invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "sites_processed_dd" in result.output and "published" in result.output
    assert "could not run" not in result.output  # the simulated towers carry u* (USTAR): every step runs
    daily = Publisher(target).open("sites_processed_dd")
    assert [str(s) for s in daily["site"].values] == [site] and daily.attrs["synthetic"] == "true"
    assert float(daily["NEE"].notnull().mean()) > 0.99
    bad = runner.invoke(
        app, ["sites", "process", "--store", "nope_hh", "--target", target], terminal_width=200
    )
    assert bad.exit_code == 1 and "no published dataset" in bad.output
    neither = runner.invoke(app, ["sites", "process", "--target", target], terminal_width=200)
    assert neither.exit_code == 2
