"""Publication is versioned, atomic and idempotent, on a local folder and on S3 (moto server).

A store is written where no reader looks and enters the catalog only once complete and validated; a
failed run (validation raising) or a killed run (SIGKILL after a stage, in a subprocess) leaves the
previous version published, readable and in the catalog, and a rerun finishes the job; rerunning
on the same inputs gives the same version and writes nothing.

This file is also a script: ``python tests/test_publish.py ROOT TAG`` publishes the toy release
``TAG`` under ``ROOT`` (used by the kill tests, with ``FLUXCUBE_FAULT_KILL_AFTER`` set).
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

import fluxcube
from fluxcube.publish import FAULT_ENV, Publisher, Release, ValidationError, sha256_file
from fluxcube.storage import Location, location

NAME = "toy"


# --------------------------------------------------------------------------- the toy release
def toy_release(tag: str) -> Release:
    """A release whose content is fixed by ``tag`` (stands for an input file's checksum)."""
    return Release(
        name=NAME,
        recipe="toy-recipe",
        recipe_version="1.0.0",
        inputs={f"inputs/{tag}.csv": hashlib.sha256(tag.encode()).hexdigest()},
        description="toy NEE field for publication tests",
    )


def toy_dataset(tag: str) -> xr.Dataset:
    value = float(int(hashlib.sha256(tag.encode()).hexdigest()[:4], 16))
    return xr.Dataset(
        {
            "nee": (
                ("time", "lat", "lon"),
                np.full((4, 2, 3), value, "float32"),
                {"units": "g C m-2 d-1", "long_name": "net ecosystem exchange"},
            )
        },
        coords={
            "time": pd.date_range("2001-01-01", periods=4),
            "lat": [-0.25, 0.25],
            "lon": [10.25, 10.75, 11.25],
        },
    )


def toy_writer(tag: str, calls: list[str] | None = None):
    def write(loc: Location, attrs: dict[str, Any]) -> None:
        if calls is not None:
            calls.append(tag)
        toy_dataset(tag).assign_attrs(attrs).to_zarr(
            loc.zarr_store(), mode="w", zarr_format=3, consolidated=False
        )

    return write


def publish_toy(root: str, tag: str, **kw: Any) -> dict[str, Any]:
    return Publisher(root).publish(toy_release(tag), toy_writer(tag, kw.pop("calls", None)), **kw)


# --------------------------------------------------------------------------- helpers
@pytest.fixture(params=["local", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store root on each backend."""
    if request.param == "local":
        return str(tmp_path / "store")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log record per request is costly
    # a prefix of our own: the bucket name comes from the (truncated) test name and may be shared
    return request.getfixturevalue("s3") + f"/{uuid.uuid4().hex[:8]}"


@pytest.fixture
def local_root(tmp_path: Path) -> str:
    """A local store root, for protocol logic that does not depend on the backend."""
    return str(tmp_path / "store")


def fresh(root: str) -> Publisher:
    """A Publisher that sees storage as it is now (no listing cached from earlier calls)."""
    pub = Publisher(root)
    pub.root.fs.invalidate_cache()
    return pub


def version_entries(pub: Publisher) -> list[str]:
    vdir = pub.dataset(NAME).child("versions")
    if not vdir.exists():
        return []
    return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in vdir.fs.ls(vdir.path, detail=False))


def catalog_entry(pub: Publisher) -> dict[str, Any]:
    doc = yaml.safe_load(pub.root.child("catalog.yaml").read_text())
    return doc["entries"][NAME]["metadata"]


def assert_published(pub: Publisher, tag: str, versions: list[str]) -> None:
    """``tag`` is the published, readable, cataloged version; ``versions`` are all committed ones."""
    v = toy_release(tag).version
    assert pub.current(NAME)["version"] == v
    ds = pub.open(NAME).load()
    xr.testing.assert_identical(ds, toy_dataset(tag).assign_attrs(ds.attrs))
    assert [m["version"] for m in pub.versions(NAME)] == versions
    md = catalog_entry(pub)
    assert md["version"] == v and md["versions"] == versions


# --------------------------------------------------------------------------- versions
def test_version_is_determined_by_content() -> None:
    a = toy_release("a")
    assert a.version == toy_release("a").version and len(a.version) == 16
    assert a.version != toy_release("b").version
    for change in ({"recipe_version": "1.0.1"}, {"params": {"chunks": 10}}, {"name": "other"}):
        assert Release(**{**a.__dict__, **change}).version != a.version
    # where the inputs lie does not matter, only their content
    moved = Release(**{**a.__dict__, "inputs": {"elsewhere/x.csv": next(iter(a.inputs.values()))}})
    assert moved.version == a.version
    prov = a.provenance()
    assert prov["fluxcube_version_id"] == a.version and prov["fluxcube_version"] == fluxcube.__version__
    assert prov["recipe"] == "toy-recipe" and "inputs/a.csv" in prov["source_files"] and prov["build_time"]


def test_sha256_file(root: str, tmp_path: Path) -> None:
    f = location(root).child("in", "data.csv")
    f.write_text_atomic("a,b\n1,2\n")
    assert sha256_file(f.url) == hashlib.sha256(b"a,b\n1,2\n").hexdigest()


# --------------------------------------------------------------------------- publish, rerun, new version
def test_publish_writes_a_versioned_store_and_the_catalog(root: str) -> None:
    man = publish_toy(root, "a")
    pub = fresh(root)
    v = toy_release("a").version
    assert man["version"] == v and man["store"] == f"datasets/{NAME}/versions/{v}.zarr"
    assert version_entries(pub) == [f"{v}.json", f"{v}.zarr"]
    assert pub.names() == [NAME]
    assert_published(pub, "a", [v])
    ds = pub.open(NAME)
    assert ds["nee"].chunks is not None  # lazy
    assert ds.attrs["fluxcube_version_id"] == v and ds.attrs["recipe"] == "toy-recipe"


def test_rerun_on_same_inputs_is_a_no_op(root: str) -> None:
    calls: list[str] = []
    first = publish_toy(root, "a", calls=calls)
    catalog_before = location(root).child("catalog.yaml").read_text()
    second = publish_toy(root, "a", calls=calls)
    assert calls == ["a"]  # the second run wrote nothing
    assert second == first
    pub = fresh(root)
    v = first["version"]
    assert version_entries(pub) == [f"{v}.json", f"{v}.zarr"]
    assert pub.root.child("catalog.yaml").read_text() == catalog_before
    # force rewrites the same version in place: still one store and one manifest
    publish_toy(root, "a", calls=calls, force=True)
    assert calls == ["a", "a"] and version_entries(fresh(root)) == [f"{v}.json", f"{v}.zarr"]


def test_new_inputs_give_a_new_version_and_keep_the_old(root: str) -> None:
    va, vb = publish_toy(root, "a")["version"], publish_toy(root, "b")["version"]
    assert va != vb
    pub = fresh(root)
    assert_published(pub, "b", [va, vb])
    assert version_entries(pub) == sorted([f"{va}.json", f"{va}.zarr", f"{vb}.json", f"{vb}.zarr"])
    old = pub.open(NAME, version=va).load()  # old versions stay readable
    xr.testing.assert_equal(old, toy_dataset("a").assign_attrs(old.attrs))


def test_republishing_an_older_version_reuses_it(root: str) -> None:
    """Going back to earlier inputs re-points to their committed version: nothing rewritten or lost."""
    calls: list[str] = []
    va = publish_toy(root, "a", calls=calls)["version"]
    vb = publish_toy(root, "b", calls=calls)["version"]
    assert publish_toy(root, "a", calls=calls)["version"] == va
    assert calls == ["a", "b"]
    pub = fresh(root)
    assert pub.current(NAME)["version"] == va and catalog_entry(pub)["version"] == va
    assert sorted(catalog_entry(pub)["versions"]) == sorted([va, vb])
    assert version_entries(pub) == sorted([f"{va}.json", f"{va}.zarr", f"{vb}.json", f"{vb}.zarr"])
    ds = pub.open(NAME).load()
    xr.testing.assert_identical(ds, toy_dataset("a").assign_attrs(ds.attrs))


def test_rerun_repairs_a_catalog_left_behind(local_root: str) -> None:
    """A run killed after switching the pointer but before rewriting the catalog is finished by a rerun."""
    va = publish_toy(local_root, "a")["version"]
    cat = location(local_root).child("catalog.yaml")
    stale = cat.read_text()
    publish_toy(local_root, "b")
    cat.write_text_atomic(stale)  # as if killed between CURRENT.json and catalog.yaml
    calls: list[str] = []
    publish_toy(local_root, "b", calls=calls)
    assert calls == []
    assert_published(fresh(local_root), "b", [va, toy_release("b").version])


# --------------------------------------------------------------------------- failures
def test_failed_validation_leaves_the_previous_version_published(root: str) -> None:
    va = publish_toy(root, "a")["version"]

    def reject(ds: xr.Dataset) -> None:
        raise ValueError("NEE out of range")

    with pytest.raises(ValidationError, match="NEE out of range"):
        publish_toy(root, "b", validate=reject)
    pub = fresh(root)
    assert_published(pub, "a", [va])
    vb = toy_release("b").version
    assert f"{vb}.json" not in version_entries(pub)  # the rejected store never got a manifest
    # a rerun that passes validation finishes the job, replacing the rejected store
    publish_toy(root, "b", validate=lambda ds: None)
    pub = fresh(root)
    assert_published(pub, "b", [va, vb])
    assert version_entries(pub) == sorted([f"{va}.json", f"{va}.zarr", f"{vb}.json", f"{vb}.zarr"])


def test_failed_write_leaves_the_previous_version_published(local_root: str) -> None:
    va = publish_toy(local_root, "a")["version"]

    def half_write(loc: Location, attrs: dict[str, Any]) -> None:
        toy_dataset("b").to_zarr(
            loc.zarr_store(), mode="w", zarr_format=3, consolidated=False, compute=False
        )  # metadata only, then the run dies
        raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        Publisher(local_root).publish(toy_release("b"), half_write)
    assert_published(fresh(local_root), "a", [va])


def test_store_without_provenance_is_rejected(local_root: str) -> None:
    """A store that is not the release's (wrong or missing fluxcube_version_id) is not published."""

    def wrong(loc: Location, attrs: dict[str, Any]) -> None:
        toy_dataset("b").to_zarr(loc.zarr_store(), mode="w", zarr_format=3, consolidated=False)

    with pytest.raises(ValidationError, match="fluxcube_version_id"):
        Publisher(local_root).publish(toy_release("b"), wrong)
    pub = fresh(local_root)
    assert pub.current(NAME) is None and pub.names() == []


def test_invalid_catalog_entry_is_rejected_before_publication(local_root: str) -> None:
    """Metadata that would make an invalid catalog entry stops the run before anything is published."""
    va = publish_toy(local_root, "a")["version"]
    with pytest.raises(ValidationError, match="catalog entry"):
        publish_toy(local_root, "b", catalog_metadata=lambda ds: {"variables": {}})
    assert_published(fresh(local_root), "a", [va])
    publish_toy(local_root, "c")  # later publications still work
    assert fresh(local_root).current(NAME)["version"] == toy_release("c").version


@pytest.mark.parametrize("stage", ["written", "validated"])
def test_killed_run_leaves_the_previous_version_and_a_rerun_finishes(
    root: str, stage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pub = Publisher(root)  # long-lived: it must see what the killed process did, without help
    va = pub.publish(toy_release("a"), toy_writer("a"))["version"]
    vb = toy_release("b").version
    env = {
        **os.environ,
        FAULT_ENV: stage,
        "PYTHONPATH": os.pathsep.join(
            [str(Path(fluxcube.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
        ),
    }
    proc = subprocess.run(
        [sys.executable, __file__, root, "b"], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert f"killing the process after stage {stage!r}" in proc.stderr

    assert_published(pub, "a", [va])  # readable and listed, in the pointer and the catalog
    entries = version_entries(pub)
    assert f"{vb}.zarr" in entries and f"{vb}.json" not in entries  # staged, never committed
    import intake

    from fluxcube.storage import storage_options

    cat = intake.from_yaml_file(pub.root.child("catalog.yaml").url, **storage_options(root))
    assert list(cat.entries) == [NAME] and cat[NAME].metadata["version"] == va
    assert cat[NAME].read().attrs["fluxcube_version_id"] == va

    # a rerun on the same inputs finishes the job
    monkeypatch.delenv(FAULT_ENV, raising=False)
    assert pub.publish(toy_release("b"), toy_writer("b"))["version"] == vb
    assert_published(pub, "b", [va, vb])
    assert version_entries(pub) == sorted([f"{va}.json", f"{va}.zarr", f"{vb}.json", f"{vb}.zarr"])


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    publish_toy(sys.argv[1], sys.argv[2])
    print("published", sys.argv[2])
