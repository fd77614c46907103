"""GFAS recipe: fire_c checked against the NetCDF files read with netCDF4 and regridded in plain numpy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
import pytest

from fluxcube.errors import InputError
from fluxcube.publish import FAULT_ENV, Publisher
from fluxcube.recipes import append as app
from fluxcube.recipes import gfas
from fluxcube.recipes.regions import EARTH_RADIUS, LAT_EDGES, LON_EDGES, cell_area_sphere
from fluxcube.simulate.world import WorldSummary, write_world

G_C_PER_KG_CO2_PER_S = 86400.0 * 1000.0 * 12.011 / 44.0095  # kg CO2 m-2 s-1 -> g C m-2 d-1


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> WorldSummary:
    tmp = tmp_path_factory.mktemp("world")
    return write_world(
        tmp / "world",
        grid_deg=4,
        start_year=2011,
        end_year=2011,
        components=("truth", "fire"),
        data_dir=tmp / "none",
    )


def reference(path: Path, every: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(days, fire_c on the 0.5 degree grid for every ``every``-th day, its sum over all days) computed
    independently: netCDF4, unit conversion and numpy overlap weights."""
    with netCDF4.Dataset(path) as nc:
        co2 = np.ma.filled(nc["co2fire"][:].astype("float64"), np.nan)
        lat = np.round(np.asarray(nc["latitude"][:], dtype="float64"), 4)  # float32 in the file
        lon = np.round(np.asarray(nc["longitude"][:], dtype="float64"), 4)
        t = nc["time"]
        days = netCDF4.num2date(t[:], t.units, only_use_cftime_datetimes=False)
    days = np.array([np.datetime64(d.strftime("%Y-%m-%d")) for d in days])
    fire = co2 * G_C_PER_KG_CO2_PER_S
    dlat, dlon = abs(lat[1] - lat[0]), abs(lon[1] - lon[0])
    lon = (lon + 180.0) % 360.0 - 180.0
    s = np.sin(np.deg2rad(LAT_EDGES))
    lo, hi = (
        np.sin(np.deg2rad(np.clip(lat - dlat / 2, -90, 90))),
        np.sin(np.deg2rad(np.clip(lat + dlat / 2, -90, 90))),
    )
    wlat = np.clip(np.minimum(s[1:, None], hi) - np.maximum(s[:-1, None], lo), 0, None) / np.diff(s)[:, None]
    wlon = (
        np.clip(
            np.minimum(LON_EDGES[1:, None], lon + dlon / 2)
            - np.maximum(LON_EDGES[:-1, None], lon - dlon / 2),
            0,
            None,
        )
        / np.diff(LON_EDGES)[:, None]
    )
    covered = np.outer(np.isclose(wlat.sum(1), 1), np.isclose(wlon.sum(1), 1))
    out = np.where(covered[None], wlat @ fire[::every] @ wlon.T, np.nan)  # (t, lat, lon)
    return days, out, np.where(covered, wlat @ fire.sum(axis=0) @ wlon.T, np.nan)


def write_gfas(
    path: Path, lat, lon, values, units="kg m**-2 s**-1", name="co2fire", start="2011-03-01"
) -> Path:
    """A small file in the CAMS GFAS NetCDF layout."""
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("longitude", len(lon))
        nc.createDimension("latitude", len(lat))
        nc.createDimension("time", None)
        nc.createVariable("longitude", "f4", ("longitude",))[:] = lon
        nc.createVariable("latitude", "f4", ("latitude",))[:] = lat
        t = nc.createVariable("time", "i4", ("time",))
        t.units = "hours since 1900-01-01 00:00:00.0"
        t0 = (np.datetime64(start) - np.datetime64("1900-01-01")) // np.timedelta64(1, "h")
        t[:] = t0 + 24 * np.arange(values.shape[0])
        v = nc.createVariable(name, "f4", ("time", "latitude", "longitude"))
        v.units = units
        v[:] = values
    return path


def test_world_fire_matches_source_and_truth(world: WorldSummary, tmp_path: Path) -> None:
    src = world.out_dir / "gfas"
    target = str(tmp_path / "store")
    summary = gfas.run(str(src), target)
    assert gfas.DATASET in summary.published and not summary.refused, summary
    ds = Publisher(target).open(gfas.DATASET)
    assert ds["fire_c"].attrs["units"] == "g C m-2 d-1"
    assert ds.attrs["synthetic"] == "true" and "cams_gfas_co2fire_2011.nc" in ds.attrs["source_files"]
    assert ds["fire_c"].encoding["chunks"] == (32, 90, 90)
    days, want, want_sum = reference(src / "cams_gfas_co2fire_2011.nc", every=5)
    assert days.size == 365 and np.array_equal(ds["time"].values.astype("datetime64[D]"), days)
    fire = ds["fire_c"].values  # float32
    got = fire[::5].astype("float64")  # every 5th day compared cell by cell (memory, time)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-9)
    # fire only where the source burns: zero elsewhere, and the same cells
    assert np.array_equal(got > 0, want > 0) and np.all(got[want == 0] == 0) and (got > 0).sum() > 100
    annual = fire.sum(axis=0, dtype="float64")  # g C m-2 yr-1, all days
    np.testing.assert_allclose(annual, want_sum, rtol=1e-5, atol=1e-6)
    assert np.array_equal(annual > 0, want_sum > 0)
    # global annual total (Pg C) against the world's true fire integral
    total = float((annual * cell_area_sphere()).sum()) / 1e15
    truth = float(world.global_annual.set_index("year").loc[2011, "fire"])
    assert total == pytest.approx(truth, rel=0.01)
    again = gfas.run(str(src), target)
    assert again.up_to_date == summary.published and not again.published


def test_fine_grid_is_area_weighted(tmp_path: Path) -> None:
    """A 0.1 degree regional file in the real product's layout (latitude descending, longitude 0..360)."""
    lat = np.round(np.arange(9.95, -10.0, -0.1), 2)
    lon = np.round(np.arange(0.05, 20.0, 0.1), 2)
    rng = np.random.default_rng(1)
    values = rng.gamma(0.5, 1e-8, (3, lat.size, lon.size)) * (rng.random((3, lat.size, lon.size)) < 0.3)
    (tmp_path / "src").mkdir()
    path = write_gfas(tmp_path / "src" / "gfas_fine.nc", lat, lon, values)
    summary = gfas.run(str(tmp_path / "src"), str(tmp_path / "store"))
    assert gfas.DATASET in summary.published, summary
    got = Publisher(str(tmp_path / "store")).open(gfas.DATASET)["fire_c"].values.astype("float64")
    _, want, _ = reference(path)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-9)
    assert np.isfinite(got).sum() == 3 * 40 * 40  # the 20 x 20 degree box, nothing outside
    area = cell_area_sphere()
    src_area = (
        np.array(
            [  # source cell areas (sphere) for the same total, computed the plain way
                np.diff(np.sin(np.deg2rad([la - 0.05, la + 0.05])))[0] for la in lat
            ]
        )[:, None]
        * np.deg2rad(0.1)
        * EARTH_RADIUS**2
    )
    want_total = (values.astype("float32") * G_C_PER_KG_CO2_PER_S * src_area[None]).sum()
    assert np.nansum(got * area[None]) == pytest.approx(want_total, rel=1e-5)


def test_bad_input_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    lat, lon = np.arange(9.75, -10.0, -0.5), np.arange(0.25, 10.0, 0.5)
    values = np.full((2, lat.size, lon.size), 1e-9)
    write_gfas(src / "good.nc", lat, lon, values)
    write_gfas(src / "units.nc", lat, lon, values, units="kg m**-2 d**-1", start="2011-04-01")
    write_gfas(src / "nofire.nc", lat, lon, values, name="cofire", start="2011-05-01")
    data = write_gfas(src / "cut.nc", lat, lon, values, start="2011-06-01").read_bytes()
    (src / "cut.nc").write_bytes(data[: len(data) // 2])
    summary = gfas.run(str(src), str(tmp_path / "store"))
    errors = {Path(r["file"]).name: r["error"] for r in summary.refused}
    assert sorted(errors) == ["cut.nc", "nofire.nc", "units.nc"]
    assert "units 'kg m**-2 d**-1'" in errors["units.nc"]
    assert "no variable 'co2fire'" in errors["nofire.nc"]
    assert "truncated" in errors["cut.nc"]
    assert not summary.published and Publisher(str(tmp_path / "store")).current(gfas.DATASET) is None


# ------------------------------------------------------------------------------ incremental append
APPEND_LAT, APPEND_LON = np.arange(9.75, -10.0, -0.5), np.arange(0.25, 10.0, 0.5)


def gfas_days(folder: Path, first: int, n: int, bump: float = 0.0) -> Path:
    """A GFAS file with days ``first .. first + n - 1`` from 2011-03-01; each day's field depends only on
    the day, so any split into files gives the same store."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "SYNTHETIC.json").write_text("{}")
    fields = [
        np.random.default_rng(d).gamma(0.5, 1e-8, (APPEND_LAT.size, APPEND_LON.size)) * (1 + bump)
        for d in range(first, first + n)
    ]
    start = str(np.datetime64("2011-03-01") + np.timedelta64(first, "D"))
    return write_gfas(folder / f"gfas_{start}.nc", APPEND_LAT, APPEND_LON, np.array(fields), start=start)


@pytest.fixture(scope="module")
def append_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Days 0..39 in four files published first (one full 32-day block and a partial one); days 40..49
    new; and the full rebuild from all five files."""
    base = tmp_path_factory.mktemp("gfasin")
    old = [gfas_days(base / "old", 10 * k, 10) for k in range(4)]
    new = gfas_days(base / "new", 40, 10)
    for f in [*old, new]:
        (base / "all").mkdir(exist_ok=True)
        shutil.copy(f, base / "all" / f.name)
    (base / "all" / "SYNTHETIC.json").write_text("{}")
    published = base / "published"
    assert gfas.DATASET in gfas.run(str(base / "old"), str(published)).published
    assert gfas.DATASET in gfas.run(str(base / "all"), str(base / "full")).published
    full = Publisher(str(base / "full")).open(gfas.DATASET).load()
    return {"base": base, "old": old, "new": new, "published": published, "full": full}


@pytest.fixture
def gfas_target(append_inputs: dict[str, Any], tmp_path: Path) -> Path:
    dst = tmp_path / "store"
    shutil.copytree(append_inputs["published"], dst)
    return dst


def assert_same_store(a, b) -> None:
    assert np.array_equal(a["time"].values, b["time"].values)
    assert np.array_equal(a["fire_c"].values, b["fire_c"].values, equal_nan=True)


def test_append_new_days_equals_full_rebuild(append_inputs: dict[str, Any], gfas_target: Path) -> None:
    pub = Publisher(str(gfas_target))
    old = pub.current(gfas.DATASET)
    before = pub.open(gfas.DATASET).load()
    summary = app.append_gfas(str(append_inputs["base"] / "new"), str(gfas_target))
    assert summary.published and not summary.refused, summary
    result = pub.open(gfas.DATASET).load()
    assert result.sizes["time"] == 50
    assert_same_store(result, append_inputs["full"])
    assert result.attrs["appended_from"] == old["version"]
    assert append_inputs["new"].name in result.attrs["source_files"]
    info = pub.current(gfas.DATASET)["metadata"]["append"]
    assert info["steps_added"] == 10 and info["objects"]["linked"] > 0  # the first block was not rewritten
    assert_same_store(pub.open(gfas.DATASET, old["version"]).load(), before)  # the old version is intact
    assert gfas.DATASET in (gfas_target / "catalog.yaml").read_text()


def test_append_from_whole_folder_ingests_only_new_files_and_is_idempotent(
    append_inputs: dict[str, Any], gfas_target: Path
) -> None:
    summary = app.append_gfas(str(append_inputs["base"] / "all"), str(gfas_target))
    assert summary.published and len(summary.skipped) == 4, summary
    assert_same_store(Publisher(str(gfas_target)).open(gfas.DATASET).load(), append_inputs["full"])
    again = app.append_gfas(str(append_inputs["base"] / "all"), str(gfas_target))
    assert again.up_to_date == summary.published and not again.published


@pytest.mark.parametrize("stage", ["append-copied", pytest.param("validated", marks=pytest.mark.slow)])
def test_killed_gfas_append_leaves_old_version_and_rerun_finishes(
    append_inputs: dict[str, Any], gfas_target: Path, stage: str
) -> None:
    pub = Publisher(str(gfas_target))
    old = pub.current(gfas.DATASET)
    before = pub.open(gfas.DATASET).load()
    src = str(append_inputs["base"] / "new")
    code = f"from fluxcube.recipes.append import append_gfas; append_gfas({src!r}, {str(gfas_target)!r})"
    env = {**os.environ, FAULT_ENV: stage, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    assert (
        subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=120).returncode
        == -9
    )
    assert pub.current(gfas.DATASET) == old  # the pointer did not move
    assert_same_store(pub.open(gfas.DATASET).load(), before)  # the old version reads as before
    assert len(pub.versions(gfas.DATASET)) == 1  # the partial version has no manifest
    summary = app.append_gfas(src, str(gfas_target))  # the rerun deletes the partial store and finishes
    assert summary.published
    assert_same_store(pub.open(gfas.DATASET).load(), append_inputs["full"])


def test_gfas_not_an_append_is_refused(
    append_inputs: dict[str, Any], gfas_target: Path, tmp_path: Path
) -> None:
    pub = Publisher(str(gfas_target))
    old = pub.current(gfas.DATASET)
    with pytest.raises(InputError, match="not an append"):
        app.append_gfas(str(gfas_days(tmp_path / "inside", 5, 10, bump=0.0).parent), str(gfas_target))
    changed = gfas_days(tmp_path / "changed", 35, 10, bump=0.5)  # days 35..44: changes 35..39
    with pytest.raises(InputError, match="change published values"):
        app.append_gfas(str(changed.parent), str(gfas_target))
    bad = tmp_path / "bad"
    bad.mkdir()
    write_gfas(
        bad / "units.nc",
        APPEND_LAT,
        APPEND_LON,
        np.full((2, APPEND_LAT.size, APPEND_LON.size), 1e-9),
        units="kg m-2 d-1",
        start="2011-04-10",
    )
    summary = app.append_gfas(str(bad), str(gfas_target))
    assert [Path(r["file"]).name for r in summary.refused] == ["units.nc"] and not summary.published
    assert pub.current(gfas.DATASET) == old and len(pub.versions(gfas.DATASET)) == 1


# ------------------------------------------------------------------------------------------ progress
def test_block_pipeline_reports_write_progress(tmp_path: Path) -> None:
    """process_blocks_on_beam (ERA5, GFAS, MODIS, inversions) reports the number of blocks, then one
    "write" per finished block; a work function that reports "write" itself is not counted twice."""
    from fluxcube.recipes import gridcube
    from fluxcube.recipes.transforms import progress_events, report

    events: list[tuple[str, int, int | None]] = []
    src = gfas_days(tmp_path / "src", 0, 40)  # 40 days: two 32-day blocks
    with progress_events(lambda e, a, t: events.append((e, a, t))):
        summary = gfas.run(str(src.parent), str(tmp_path / "store"))
    assert gfas.DATASET in summary.published
    writes = [e for e in events if e[0] == "write"]
    assert writes[0] == ("write", 0, 2)
    assert sum(a for _, a, _ in writes) == 2 and len(writes) == 3

    def own(block: tuple[int, int]) -> dict:
        report("write")
        return {"block": list(block)}

    events.clear()
    with progress_events(lambda e, a, t: events.append((e, a, t))):
        gridcube.process_blocks_on_beam([(0, 1), (1, 2), (2, 3)], own, str(tmp_path / "run"))
    assert events[0] == ("write", 0, 3)
    assert sum(a for e, a, _ in events if e == "write") == 3
    # nobody listening: nothing breaks
    gridcube.process_blocks_on_beam([(0, 1)], own, str(tmp_path / "run2"))
