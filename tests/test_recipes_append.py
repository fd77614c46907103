"""Incremental append of ERA5 days to a published store: equal to a full rebuild, atomic, idempotent.

Inputs are small synthetic CDS NetCDF files (9 x 9 points at 0.25 degrees, hourly t2m and tp) of
10 days each; the published store holds 40 days (time chunks of 32: one full block and a partial
one), the append adds 10 more.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from fluxcube.errors import InputError
from fluxcube.publish import FAULT_ENV, Publisher
from fluxcube.recipes import append as app
from fluxcube.recipes import era5

START = np.datetime64("2021-01-01T00", "h")
SRC = Path(__file__).resolve().parents[1] / "src"


def era5_file(path: Path, first_day: int, days: int, bump: float = 0.0) -> Path:
    """A CDS NetCDF (old layout) with hourly t2m (K) and tp (m) for ``days`` days from day ``first_day``."""
    time = START + np.arange(first_day * 24, (first_day + days) * 24).astype("timedelta64[h]")
    lat = np.arange(50.0, 47.75, -0.25)
    lon = np.arange(10.0, 12.25, 0.25)
    hours = (time - START).astype(float)[:, None, None]
    t2m = 275 + 6 * np.sin(2 * np.pi * hours / 24) + 0.1 * lat[None, :, None] + 0.05 * lon[None, None, :]
    tp = (
        1e-4
        * (1 + np.cos(2 * np.pi * hours / 24 / 3))
        * (1 + 0 * lat[None, :, None] + 0 * lon[None, None, :])
    )
    ds = xr.Dataset(
        {
            "t2m": (("time", "latitude", "longitude"), (t2m + bump).astype("f4"), {"units": "K"}),
            "tp": (("time", "latitude", "longitude"), tp.astype("f4"), {"units": "m"}),
        },
        coords={"time": time.astype("datetime64[ns]"), "latitude": lat, "longitude": lon},
    )
    ds.to_netcdf(path)
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """Four 10-day files published first (days 0..39), one new file (days 40..49)."""
    base = tmp_path_factory.mktemp("era5in")
    for d in ("old", "new", "all"):
        (base / d).mkdir()
        (base / d / "SYNTHETIC.json").write_text("{}")
    old = [era5_file(base / "old" / f"era5_{k}.nc", 10 * k, 10) for k in range(4)]
    new = era5_file(base / "new" / "era5_4.nc", 40, 10)
    for f in [*old, new]:
        shutil.copy(f, base / "all" / f.name)
    return {"old": old, "new": [new], "base": [base]}


@pytest.fixture(scope="module")
def published_old(inputs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("old") / "store"
    summary = era5.run(str(inputs["base"][0] / "old"), str(target))
    assert era5.DATASET in summary.published
    return target


@pytest.fixture(scope="module")
def full_rebuild(inputs, tmp_path_factory: pytest.TempPathFactory) -> xr.Dataset:
    target = tmp_path_factory.mktemp("full") / "store"
    era5.run(str(inputs["base"][0] / "all"), str(target))
    return Publisher(str(target)).open(era5.DATASET).load()


@pytest.fixture
def target(published_old: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "store"
    shutil.copytree(published_old, dst)
    return dst


def source_with(tmp_path: Path, files: list[Path]) -> Path:
    src = tmp_path / "src"
    src.mkdir(parents=True, exist_ok=True)
    (src / "SYNTHETIC.json").write_text("{}")
    for f in files:
        shutil.copy(f, src / f.name)
    return src


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def assert_same(a: xr.Dataset, b: xr.Dataset, skip: dict[str, object] | None = None) -> None:
    assert np.array_equal(a["time"].values, b["time"].values)
    assert set(a.data_vars) == set(b.data_vars)
    for v in a.data_vars:
        x, y = np.asarray(a[v].values), np.asarray(b[v].values)
        if skip and v in skip:
            x, y = x.copy(), y.copy()
            x[skip[v]] = y[skip[v]] = np.nan
        assert np.allclose(x, y, equal_nan=True, rtol=0, atol=0), v


def test_append_with_previous_month_equals_full_rebuild(inputs, target: Path, full_rebuild, tmp_path) -> None:
    pub = Publisher(str(target))
    old_version = pub.current(era5.DATASET)["version"]
    old_dir = pub.store_location(era5.DATASET, old_version).path
    before = tree_digest(Path(old_dir))
    # the previous file completes day 39's precipitation (its last accumulation is stamped day 40 00 UTC)
    src = source_with(tmp_path, [inputs["old"][-1], inputs["new"][0]])
    summary = app.append(str(src), str(target))
    version = summary.published[era5.DATASET]
    assert version != old_version
    ds = pub.open(era5.DATASET).load()
    assert ds.sizes["time"] == 50
    assert_same(ds, full_rebuild)
    assert tree_digest(Path(old_dir)) == before  # the published version was never written
    manifest = pub.current(era5.DATASET)
    info = manifest["metadata"]["append"]
    assert info["appended_to"] == old_version and info["steps_added"] == 10
    assert info["filled_in_overlap"] == {"P": 16}  # day 39, 4 x 4 cells
    assert info["steps_written"] == 11 and info["objects"]["linked"] > 0
    assert ds.attrs["appended_from"] == old_version and ds.attrs["fluxcube_version_id"] == version
    assert set(manifest["inputs"]) >= {str(f) for f in inputs["old"][:3]}
    # chunks of the first time block are shared (hard links), the tail block's are real copies
    new_dir = Path(pub.store_location(era5.DATASET, version).path)
    assert os.stat(new_dir / "Tair" / "c" / "0" / "3" / "4").st_nlink == 2
    assert os.stat(new_dir / "Tair" / "c" / "1" / "3" / "4").st_nlink == 1
    # idempotent: the same files again change nothing
    again = app.append(str(src), str(target))
    assert again.up_to_date == {era5.DATASET: version} and not again.published
    assert Publisher(str(target)).open(era5.DATASET).attrs["synthetic"] == "true"


def test_append_new_month_only_leaves_seam_day_precipitation_missing(
    inputs, target, full_rebuild, tmp_path
) -> None:
    src = source_with(tmp_path, inputs["new"])
    app.append(str(src), str(target))
    ds = Publisher(str(target)).open(era5.DATASET).load()
    assert ds.sizes["time"] == 50
    assert np.isnan(ds["P"].isel(time=39)).all() and np.isfinite(full_rebuild["P"].isel(time=39)).any()
    assert_same(ds, full_rebuild, skip={"P": (39,)})


def _run_append_killed(src: Path, target: str, stage: str) -> int:
    env = {**os.environ, FAULT_ENV: stage, "PYTHONPATH": str(SRC)}
    code = f"from fluxcube.recipes.append import append; append({str(src)!r}, {target!r})"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=120).returncode


@pytest.mark.parametrize("stage", ["append-copied", "validated"])
def test_killed_append_leaves_old_version_and_rerun_finishes(
    inputs, target: Path, full_rebuild, tmp_path: Path, stage: str
) -> None:
    pub = Publisher(str(target))
    old = pub.current(era5.DATASET)
    before = pub.open(era5.DATASET).load()
    src = source_with(tmp_path, [inputs["old"][-1], inputs["new"][0]])
    assert _run_append_killed(src, str(target), stage) == -9
    assert pub.current(era5.DATASET) == old  # the pointer did not move
    assert_same(pub.open(era5.DATASET).load(), before)  # and the old version reads as before
    partial = [p for p in (target / "datasets" / era5.DATASET / "versions").iterdir() if p.suffix == ".zarr"]
    assert len(partial) == 2 and len(pub.versions(era5.DATASET)) == 1  # a partial store, no manifest
    summary = app.append(str(src), str(target))  # the rerun deletes the partial store and finishes
    assert summary.published
    assert_same(pub.open(era5.DATASET).load(), full_rebuild)


def test_readers_see_the_old_version_during_append(inputs, target: Path, tmp_path: Path, monkeypatch) -> None:
    pub = Publisher(str(target))
    old = pub.current(era5.DATASET)
    before = pub.open(era5.DATASET).load()
    seen = []

    def look(stage: str) -> None:
        assert pub.current(era5.DATASET) == old
        assert_same(pub.open(era5.DATASET).load(), before)
        seen.append(stage)

    monkeypatch.setattr(app, "_stage", look)
    app.append(str(source_with(tmp_path, inputs["new"])), str(target))
    assert seen == ["append-copied", "append-written"]
    assert pub.current(era5.DATASET)["version"] != old["version"]


def test_not_an_append_is_refused(inputs, target: Path, tmp_path: Path) -> None:
    pub = Publisher(str(target))
    old = pub.current(era5.DATASET)
    inside = source_with(tmp_path / "a", [era5_file(tmp_path / "era5_mid.nc", 5, 10)])  # days 5..14
    with pytest.raises(InputError, match="not an append"):
        app.append(str(inside), str(target))
    changed = source_with(
        tmp_path / "b", [era5_file(tmp_path / "era5_3.nc", 30, 10, bump=0.5), inputs["new"][0]]
    )
    with pytest.raises(InputError, match="change published values"):
        app.append(str(changed), str(target))
    assert pub.current(era5.DATASET) == old
    assert len(pub.versions(era5.DATASET)) == 1


def test_append_on_s3(inputs, s3: str, full_rebuild, tmp_path: Path) -> None:
    era5.run(str(inputs["base"][0] / "old"), s3)
    pub = Publisher(s3)
    old = pub.current(era5.DATASET)
    summary = app.append(str(source_with(tmp_path, [inputs["old"][-1], inputs["new"][0]])), s3)
    assert summary.published
    assert_same(pub.open(era5.DATASET).load(), full_rebuild)
    info = pub.current(era5.DATASET)["metadata"]["append"]
    assert info["objects"]["server_side"] > 0 and info["objects"]["linked"] == 0
    assert_same(
        pub.open(era5.DATASET, old["version"]).load(), full_rebuild.isel(time=slice(0, 40)), skip={"P": (39,)}
    )
    assert (
        json.loads(pub.root.child("datasets", era5.DATASET, "CURRENT.json").read_text())["version"]
        == (summary.published[era5.DATASET])
    )
