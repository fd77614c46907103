"""storage: one function turns a URL into a place to read and write, and a Zarr v3 store there.

Local folders by default, ``s3://bucket/prefix`` through s3fs (on a real moto S3 server), any other
fsspec URL (``memory://``). Credentials come from the environment only.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from fsspec.implementations.local import LocalFileSystem
from zarr.storage import FsspecStore, LocalStore

from fluxcube import config
from fluxcube.publish import Publisher
from fluxcube.storage import location, storage_options


@pytest.fixture(params=["local", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store root: a local folder or a prefix in a fresh bucket on the moto S3 server."""
    if request.param == "local":
        return str(tmp_path / "store")
    return request.getfixturevalue("s3") + "/some/prefix"


def _dataset() -> xr.Dataset:
    return xr.Dataset(
        {"nee": (("site", "time"), np.arange(12.0).reshape(3, 4), {"units": "g C m-2 d-1"})},
        coords={"site": np.array(["A-one", "B-two", "C-three"], dtype=object), "time": np.arange(4)},
        attrs={"title": "tiny"},
    )


# --------------------------------------------------------------------------- URL -> Location
def test_local_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rel = location("rel/dir/")
    assert rel.is_local and isinstance(rel.fs, LocalFileSystem)
    assert rel.path == str(tmp_path / "rel" / "dir") == rel.url  # absolute, no trailing slash
    assert location(f"file://{tmp_path}/rel/dir").path == rel.path
    assert location("~").path == os.path.expanduser("~")
    # with nothing configured, stores go to a local folder under the current directory
    monkeypatch.delenv(config.STORE_ENV, raising=False)
    default = location(config.store_root())
    assert default.is_local and default.path == str(tmp_path / "fluxcube-data")


def test_local_file_operations(tmp_path: Path) -> None:
    loc = location(str(tmp_path)).child("a", "/b/", "c.txt")
    assert loc.path == f"{tmp_path}/a/b/c.txt" and loc.url == loc.path
    assert not loc.exists()
    loc.write_text_atomic("first")  # creates parent folders
    loc.write_text_atomic("second")
    assert loc.read_text() == "second"
    assert os.listdir(tmp_path / "a" / "b") == ["c.txt"]  # no temporary file left behind
    location(str(tmp_path / "a")).remove()
    assert not (tmp_path / "a").exists()
    location(str(tmp_path / "a")).remove()  # removing what is not there is fine


def test_memory_url_is_any_fsspec_url() -> None:
    loc = location("memory://fluxcube-test/prefix/")
    assert not loc.is_local and type(loc.fs).__name__ == "MemoryFileSystem"
    assert loc.url == "memory://fluxcube-test/prefix" and loc.path == "/fluxcube-test/prefix"
    f = loc.child("x", "y.json")
    assert f.url == "memory://fluxcube-test/prefix/x/y.json"
    f.write_text_atomic('{"a": 1}')
    assert json.loads(f.read_text()) == {"a": 1} and f.exists()
    store = loc.child("d.zarr")
    _dataset().to_zarr(store.zarr_store(), zarr_format=3, consolidated=False)
    back = xr.open_zarr(store.zarr_store(read_only=True), consolidated=False, zarr_format=3)
    xr.testing.assert_identical(back.load(), _dataset())
    loc.remove()
    assert not loc.exists()


# --------------------------------------------------------------------------- credentials and endpoint
def test_storage_options_carry_only_the_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "TESTKEYFROMENVIRONMENT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-from-environment")
    monkeypatch.delenv(config.S3_ENDPOINT_ENV, raising=False)
    assert storage_options("s3://bucket/x") == {}
    monkeypatch.setenv(config.S3_ENDPOINT_ENV, "http://127.0.0.1:9")
    assert storage_options("s3://bucket/x") == {"endpoint_url": "http://127.0.0.1:9"}
    assert storage_options("s3a://bucket/x") == {"endpoint_url": "http://127.0.0.1:9"}
    assert storage_options("/local/folder") == {}
    assert storage_options("memory://x") == {}
    assert storage_options("gs://bucket/x") == {}


def test_s3_location_uses_s3fs_with_credentials_from_environment(s3: str) -> None:
    loc = location(s3 + "/prefix/")
    assert type(loc.fs).__name__ == "S3FileSystem"
    assert loc.url == s3 + "/prefix" and loc.path == s3.removeprefix("s3://") + "/prefix"
    # the endpoint comes from FLUXCUBE_S3_ENDPOINT; the keys are not passed: s3fs finds them in the
    # environment (set by the fixture)
    assert loc.fs.storage_options["endpoint_url"] == os.environ[config.S3_ENDPOINT_ENV]
    secrets = {"key", "secret", "token", "aws_access_key_id", "aws_secret_access_key"}
    assert not secrets & set(loc.fs.storage_options)
    # no listing cache: what other processes write is seen at once
    assert not loc.fs.dircache.use_listings_cache
    f = loc.child("hello.txt")
    f.write_text_atomic("hello")
    assert f.read_text() == "hello"
    assert isinstance(loc.child("d.zarr").zarr_store(), FsspecStore)


# --------------------------------------------------------------------------- Zarr v3 on each backend
def test_zarr_v3_roundtrip(root: str) -> None:
    loc = location(root).child("tiny.zarr")
    store = loc.zarr_store()
    assert isinstance(store, LocalStore if loc.is_local else FsspecStore)
    _dataset().to_zarr(store, zarr_format=3, consolidated=False)
    # Zarr v3 on disk / in the bucket: a zarr.json per node, no .zarray or .zgroup
    meta = json.loads(loc.child("zarr.json").read_text())
    assert meta["zarr_format"] == 3 and meta["node_type"] == "group"
    assert loc.child("nee", "zarr.json").exists() and not loc.child(".zgroup").exists()
    group = zarr.open_group(loc.zarr_store(read_only=True), mode="r")
    assert group.metadata.zarr_format == 3
    back = xr.open_zarr(loc.zarr_store(read_only=True), consolidated=False, zarr_format=3)
    xr.testing.assert_identical(back.load(), _dataset())
    with pytest.raises(Exception):  # noqa: B017 - read-only stores refuse writes, whatever the type
        _dataset().to_zarr(loc.zarr_store(read_only=True), zarr_format=3, consolidated=False, mode="w")


def test_s3_publish_writes_objects_in_the_bucket(s3: str) -> None:
    """What Publisher writes on S3 is really there as objects (seen with boto3, not through fluxcube)."""
    import boto3

    from fluxcube.publish import Release

    pub = Publisher(s3 + "/prefix")
    rel = Release("tiny", "test", "1", {"in.csv": "0" * 64}, "tiny dataset")
    man = pub.publish(
        rel,
        lambda loc, attrs: (
            _dataset().assign_attrs(attrs).to_zarr(loc.zarr_store(), zarr_format=3, consolidated=False)
        ),
    )
    client = boto3.client("s3", endpoint_url=os.environ[config.S3_ENDPOINT_ENV], region_name="us-east-1")
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=s3.removeprefix("s3://"))["Contents"]}
    base = f"prefix/datasets/tiny/versions/{man['version']}"
    assert {
        "prefix/catalog.yaml",
        "prefix/datasets/tiny/CURRENT.json",
        f"{base}.json",
        f"{base}.zarr/zarr.json",
        f"{base}.zarr/nee/zarr.json",
    } <= keys
    xr.testing.assert_equal(pub.open("tiny").load(), _dataset())


# --------------------------------------------------------------------------- the FLUXNET recipe on S3
#: A few columns of two real monthly FULLSET files: every variable is one Zarr array, and each array
#: costs a few dozen requests on S3, so the full 320-column files would take ~45 s on the moto server.
COLUMNS = ["TIMESTAMP", "TA_F", "SW_IN_F", "P_F", "NEE_VUT_REF", "NEE_VUT_REF_QC", "GPP_NT_VUT_REF"]
FILES = [
    "FLX_FR-Pue_FLUXNET2015_FULLSET_MM_2007-2014_2-3.csv",
    "FLX_US-Prr_FLUXNET2015_FULLSET_MM_2010-2014_1-4.csv",
]


def small_fluxnet_source(sites_dir: Path, dest: Path) -> Path:
    """Two real FLUXNET2015 monthly files (a few of their columns, text kept as is) and a site table."""
    src = dest / "source"
    (src / "fluxnet2015").mkdir(parents=True)
    (src / "metadata").mkdir()
    for name in FILES:
        with open(sites_dir / "fluxnet2015" / name, newline="") as f:
            rows = list(csv.reader(f))
        keep = [rows[0].index(c) for c in COLUMNS]
        with open(src / "fluxnet2015" / name, "w", newline="") as f:
            csv.writer(f, lineterminator="\n").writerows([[r[i] for i in keep] for r in rows])
    shutil.copy(sites_dir / "metadata" / "siteinfo_fluxnet2015.csv", src / "metadata")
    return src


@pytest.mark.needs_data
def test_fluxnet_recipe_with_target_on_s3(sites_dir: Path, tmp_path: Path, s3: str) -> None:
    """`fluxcube recipes run fluxnet --source DIR --target s3://...` writes, publishes and catalogs on S3."""
    from typer.testing import CliRunner

    from fluxcube.catalog import open_catalog
    from fluxcube.cli import app
    from fluxcube.publish import sha256_file
    from fluxcube.recipes.fluxnet_pipeline import run

    src = small_fluxnet_source(sites_dir, tmp_path)
    target = s3 + "/fluxcube"
    res = CliRunner().invoke(app, ["recipes", "run", "fluxnet", "--source", str(src), "--target", target])
    assert res.exit_code == 0, res.output

    pub = Publisher(target)
    assert pub.names() == ["fluxnet2015_mm"]
    manifest = pub.current("fluxnet2015_mm")
    version = manifest["version"]
    assert set(manifest["inputs"]) == {str(src / "fluxnet2015" / f) for f in FILES} | {
        str(src / "metadata" / "siteinfo_fluxnet2015.csv")
    }
    assert all(v == sha256_file(k) for k, v in manifest["inputs"].items())

    # read back through s3fs: a lazy Zarr v3 dataset holding the files' values
    ds = pub.open("fluxnet2015_mm")
    assert ds.attrs["fluxcube_version_id"] == version
    assert ds["site"].values.tolist() == ["FR-Pue", "US-Prr"]
    nee = ds["NEE_VUT_REF"]
    assert nee.chunks is not None and nee.attrs["units"] == "g m-2 d-1"
    with open(src / "fluxnet2015" / FILES[1]) as f:
        first = next(csv.DictReader(f))  # US-Prr, January 2010
    got = float(nee.sel(site="US-Prr", time="2010-01-01"))
    assert got == pytest.approx(float(first["NEE_VUT_REF"]))

    # the catalog on S3 opens with Intake (endpoint from the environment) to the same data
    cat = open_catalog(target + "/catalog.yaml")
    via_cat = cat["fluxnet2015_mm"].read()
    assert via_cat["NEE_VUT_REF"].chunks is not None
    xr.testing.assert_equal(via_cat["NEE_VUT_REF"].load(), nee.load())

    # a rerun on the same inputs does nothing and adds nothing
    again = run(str(src), target)
    assert again.up_to_date == {"fluxnet2015_mm": version} and not again.published
    assert [m["version"] for m in pub.versions("fluxnet2015_mm")] == [version]
    vdir = pub.dataset("fluxnet2015_mm").child("versions")
    assert sorted(p.rsplit("/", 1)[-1] for p in vdir.fs.ls(vdir.path, detail=False, refresh=True)) == [
        f"{version}.json",
        f"{version}.zarr",
    ]
