"""``fluxcube demo``: the main job end to end on a small simulated world, as on a fresh machine (no real
samples), checked against the world's known truth; a rerun publishes nothing new; the real samples are
ingested beside it when present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

from fluxcube import config
from fluxcube.cli import app
from fluxcube.demo import markdown, truth_checks
from fluxcube.publish import Publisher

runner = CliRunner()
ARGS = ["--grid-deg", "4", "--sites", "3", "--trials", "4", "--workers", "2"]
STORES = {
    "regions_land_0p5deg",
    "era5_daily_0p5deg",
    "modis_8day_0p5deg",
    "gfas_fire_daily_0p5deg",
    "inversions_gridded_monthly",
    "gcb_global_budget",
    "fluxnet2015_hh",
    "fluxnet2015_dd",
    "sites_processed_dd",
    "drivers_sites_dd",
    "drivers_land_0p5deg",
    "inversions_regional_monthly",
    "bridges_truth",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    """The demo on a fresh folder with no sample data (a fresh machine), with the default relative target."""
    base = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(base)
        mp.setenv(config.DATA_ENV, str(base / "nowhere"))
        result = runner.invoke(app, ["demo", *ARGS], terminal_width=250)
    return base / config.DEFAULT_STORE, result


def test_markdown_table() -> None:
    frame = pd.DataFrame({"a": [1.23456, np.nan], "b": ["x", "y"]}, index=pd.Index([2011, 2012], name="year"))
    assert markdown(frame, 2).splitlines() == [
        "| year | a | b |",
        "|---|---|---|",
        "| 2011 | 1.23 | x |",
        "| 2012 | nan | y |",
    ]


def test_demo_runs_every_stage_and_prints_how_to_open_the_data(demo) -> None:
    target, result = demo
    assert result.exit_code == 0, result.output
    assert "sample data is missing" in result.output
    assert set(Publisher(str(target)).names()) >= STORES
    report = (target / "reports" / "demo.md").read_text()
    assert "failed" not in report
    for stage in ("simulate", "recipe era5", "sites", "drivers", "integrals", "bridges", "report"):
        assert f"| {stage} |" in report
    for figure in (
        "demo_regions_vs_truth.png",
        "inversions_regional_monthly.png",
        "bridges/bridges_truth_EUR.png",
    ):
        assert (target / "reports" / figure).stat().st_size > 10_000
    lines = [line for line in result.output.splitlines() if line.strip()]
    namespace: dict = {}
    exec("\n".join(lines[-3:]), namespace)  # the user's three lines, as printed
    ds, cat = namespace["ds"], namespace["cat"]
    assert isinstance(ds, xr.Dataset) and ds.sizes["site"] == 3 and ds.attrs["synthetic"] == "true"
    assert cat["sites_processed_dd"].metadata["synthetic"] is True


def test_demo_products_against_the_known_truth(demo) -> None:
    """Independent of the demo's own report: the truth files against the published stores."""
    target, _ = demo
    checks = truth_checks(Publisher(str(target)), target / "_inputs" / "simulated")
    glob = checks["global"]
    assert list(glob.index) == [2011, 2012]
    # the GCB-like table is the true residual sink plus noise; the inversions scatter around the truth
    assert np.allclose(glob["GCB-like -residual sink"], glob["true net land flux"], atol=1.0)
    inside = (glob["inversions min"] - 1.5 <= glob["true NEE, 18 regions"]) & (
        glob["true NEE, 18 regions"] <= glob["inversions max"] + 1.5
    )
    assert inside.all(), glob
    assert (glob["true NEE, 18 regions"] < 0).all()  # a land sink
    eur = checks["regions"].xs("EUR", level="region")
    assert eur.loc[2012, "true NEE"] > eur.loc[2011, "true NEE"]  # the 2012 drought weakens the sink
    assert eur.loc[2012, "inversions mean"] > eur.loc[2011, "inversions mean"]  # and the inversions see it
    sites = checks["sites"]
    assert (sites["days"] > 600).all()
    assert (sites["RMSE"] < 1.5).all() and (sites["bias"].abs() < 0.5).all(), sites


def test_demo_rerun_publishes_nothing_new(demo) -> None:
    target, _ = demo
    pub = Publisher(str(target))
    before = {name: pub.current(name)["version"] for name in pub.names()}
    marker = target / "_inputs" / "simulated" / "demo-inputs.json"
    stamp = marker.stat().st_mtime_ns
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(config.DATA_ENV, str(target / "nowhere"))
        result = runner.invoke(app, ["demo", "--target", str(target), *ARGS], terminal_width=250)
    assert result.exit_code == 0, result.output
    assert marker.stat().st_mtime_ns == stamp  # not simulated again
    assert {name: pub.current(name)["version"] for name in pub.names()} == before
    report = (target / "reports" / "demo.md").read_text()
    assert "| simulate |" in report and "same settings: kept" in report
    assert "published:" not in report and report.count("up to date:") >= 10


def test_demo_ingests_the_real_samples_beside(demo, data_dir: Path) -> None:
    """With the samples present, the FLUXNET sites are ingested into ``samples/`` with their own catalog."""
    target, _ = demo
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(config.DATA_ENV, str(data_dir))
        result = runner.invoke(app, ["demo", "--target", str(target), *ARGS], terminal_width=250)
    assert result.exit_code == 0, result.output
    ds = Publisher(str(target / "samples")).open("fluxnet2015_dd")
    assert {"BR-Sa1", "US-Prr", "US-Wi7"} <= set(ds["site"].values.tolist())
    assert ds["NEE_VUT_REF"].attrs["units"] == "g m-2 d-1"
    assert "FLX_CH-Lae" in result.output  # the refused sample file is listed with its reason
