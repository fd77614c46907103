"""The Intake 2 catalog: generated from the published manifests, valid against its JSON schema, free of
credentials, and opening to lazy xarray datasets from a local folder and from S3 (moto server)."""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import uuid
from pathlib import Path
from typing import Any

import dask.array
import intake
import jsonschema
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

import fluxcube
from fluxcube import config
from fluxcube.catalog import build_catalog, describe, open_catalog, schema, validate_catalog
from fluxcube.publish import Publisher, Release, iter_files
from fluxcube.storage import location, storage_options


@pytest.fixture(params=["local", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "store")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log record per request is costly
    return request.getfixturevalue("s3") + f"/{uuid.uuid4().hex[:8]}"


def grid() -> xr.Dataset:
    """A small 0.5 degree NEE field with CF attributes."""
    lat, lon = np.array([-0.25, 0.25, 0.75]), np.array([10.25, 10.75])
    time = pd.date_range("2001-01-01", periods=5, freq="D")
    nee = np.arange(30, dtype="float32").reshape(5, 3, 2)
    dims = ("time", "lat", "lon")
    ds = xr.Dataset(
        {
            "nee": (dims, nee, {"units": "g C m-2 d-1", "long_name": "net ecosystem exchange"}),
            "nee_sd": (dims, nee / 10, {"units": "g C m-2 d-1", "long_name": "NEE spread"}),
        },
        coords={
            "time": time,
            "lat": ("lat", lat, {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
        },
    )
    return ds


def sites() -> xr.Dataset:
    """A (site, time) table: tower coordinates are per-site variables."""
    return xr.Dataset(
        {
            "NEE": (
                ("site", "time"),
                np.ones((2, 3)),
                {"units": "g C m-2 d-1", "standard_name": "surface_upward_mole_flux_of_carbon_dioxide"},
            )
        },
        coords={
            "site": np.array(["DE-Tha", "US-Prr"], dtype=object),
            "time": pd.date_range("2010-06-01", periods=3),
            "lat": ("site", [50.96, 65.12], {"units": "degrees_north"}),
            "lon": ("site", [13.57, -147.49], {"units": "degrees_east"}),
        },
    )


def publish(root: str, name: str, ds: xr.Dataset, inputs: dict[str, str]) -> dict[str, Any]:
    release = Release(name, "test-recipe", "2.1.0", inputs, f"{name}: test dataset")

    def write(loc, attrs):
        ds.assign_attrs(attrs).to_zarr(loc.zarr_store(), mode="w", zarr_format=3, consolidated=False)

    return Publisher(root).publish(release, write)


@pytest.fixture
def published(root: str) -> str:
    """Two datasets published under ``root``, with real input files; returns ``root``."""
    files = []
    for i, text in enumerate(["TIMESTAMP,NEE\n200101010000,1.5\n", "TIMESTAMP,NEE\n200101010000,2.5\n"]):
        f = location(root).child("inputs", f"in{i}.csv")
        f.write_text_atomic(text)
        files.append(f.url)
    publish(root, "grid", grid(), iter_files(files[:1]))
    publish(root, "sites", sites(), iter_files(files))
    return root


def load_catalog(root: str) -> tuple[str, dict[str, Any]]:
    text = location(root).child("catalog.yaml").read_text()
    return text, yaml.safe_load(text)


# --------------------------------------------------------------------------- content
def test_catalog_is_intake2_with_description_units_extent_and_provenance(published: str) -> None:
    _, doc = load_catalog(published)
    assert doc["version"] == 2
    assert set(doc["entries"]) == {"grid", "sites"}
    sch = schema()
    pub = Publisher(published)
    for name, entry in doc["entries"].items():
        assert entry["reader"].endswith("XArrayDatasetReader") and entry["kwargs"]["engine"] == "zarr"
        md = entry["metadata"]
        jsonschema.validate(md, sch)
        manifest = pub.current(name)
        assert md["description"] == f"{name}: test dataset"
        assert md["version"] == manifest["version"] and md["versions"] == [manifest["version"]]
        assert md["synthetic"] is False
        prov = md["provenance"]
        assert prov["recipe"] == "test-recipe" and prov["recipe_version"] == "2.1.0"
        assert prov["fluxcube_version"] == fluxcube.__version__
        assert dt.datetime.fromisoformat(prov["published"]).tzinfo is not None
        inputs = sorted(manifest["inputs"].items())
        assert prov["source_files"] == [{"url": u, "sha256": s} for u, s in inputs]
        # the store itself carries the same provenance, with its build time
        attrs = pub.open(name).attrs
        assert attrs["recipe"] == "test-recipe" and attrs["fluxcube_version_id"] == md["version"]
        assert dt.datetime.fromisoformat(attrs["build_time"]).tzinfo is not None
    # the data entry points at the published store, relative to the catalog: portable
    grid_md = doc["entries"]["grid"]["metadata"]
    urls = [d["kwargs"]["url"] for d in doc["data"].values()]
    assert f"{{CATALOG_DIR}}/datasets/grid/versions/{grid_md['version']}.zarr" in urls

    v = grid_md["variables"]
    assert set(v) == {"nee", "nee_sd"}  # dimension coordinates are not listed as variables
    assert v["nee"] == {
        "dims": ["time", "lat", "lon"],
        "dtype": "float32",
        "units": "g C m-2 d-1",
        "long_name": "net ecosystem exchange",
    }
    assert grid_md["extent"]["spatial"] == {
        "lat_min": -0.25,
        "lat_max": 0.75,
        "lon_min": 10.25,
        "lon_max": 10.75,
    }
    t = grid_md["extent"]["temporal"]
    assert (t["start"], t["end"], t["steps"]) == ("2001-01-01T00:00:00Z", "2001-01-05T00:00:00Z", 5)
    assert grid_md["dims"] == {"time": 5, "lat": 3, "lon": 2}
    assert len(grid_md["provenance"]["source_files"]) == 1

    site_md = doc["entries"]["sites"]["metadata"]
    assert site_md["variables"]["NEE"]["units"] == "g C m-2 d-1"
    assert site_md["extent"]["spatial"] == {
        "lat_min": 50.96,
        "lat_max": 65.12,
        "lon_min": -147.49,
        "lon_max": 13.57,
    }
    files = site_md["provenance"]["source_files"]
    assert [f["url"].rsplit("/", 1)[-1] for f in files] == ["in0.csv", "in1.csv"]


def test_describe_handles_a_time_axis_that_is_not_dates() -> None:
    ds = xr.Dataset({"x": ("time", [1.0, 2.0], {"units": "1"})}, coords={"time": [0, 1]})
    assert describe(ds)["extent"]["temporal"] == {"start": "0", "end": "1", "steps": 2, "convention": ""}


def test_catalog_holds_no_credentials(s3: str, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "AWS_ACCESS_KEY_ID": "TESTKEYFLUXCUBEID0001",
        "AWS_SECRET_ACCESS_KEY": "fluxcube/secret+KEY",
        "AWS_SESSION_TOKEN": "fluxcube-session-token-0001",
    }
    for k, v in secrets.items():
        monkeypatch.setenv(k, v)  # moto accepts any credentials
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    root = s3 + "/nocreds"
    publish(root, "grid", grid(), {"in.csv": "0" * 64})
    text, doc = load_catalog(root)
    for value in secrets.values():
        assert value not in text
    # nor the endpoint: the same catalog serves readers who reach the bucket by another route
    import os

    assert os.environ[config.S3_ENDPOINT_ENV] not in text

    def keys(node: Any) -> set[str]:
        if isinstance(node, dict):
            return {str(k).lower() for k in node} | {k for v in node.values() for k in keys(v)}
        if isinstance(node, list):
            return {k for v in node for k in keys(v)}
        return set()

    forbidden = {
        "key",
        "secret",
        "token",
        "password",
        "aws_access_key_id",
        "aws_secret_access_key",
        "endpoint_url",
        "client_kwargs",
    }
    assert not keys(doc) & forbidden
    # storage options are a template the reader fills in when opening
    assert {d["kwargs"]["storage_options"] for d in doc["data"].values()} == {"{STORAGE_OPTIONS}"}


# --------------------------------------------------------------------------- schema
def test_schema_rejects_incomplete_entries(tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    publish(root, "grid", grid(), {"in.csv": "a" * 64})
    doc = build_catalog(Publisher(root))
    validate_catalog(doc)
    md = doc["entries"]["grid"]["metadata"]

    def broken(change) -> dict[str, Any]:
        d = yaml.safe_load(yaml.safe_dump(doc))
        change(d["entries"]["grid"]["metadata"])
        return d

    cases = [
        lambda m: m.pop("provenance"),
        lambda m: m.pop("description"),
        lambda m: m["provenance"].pop("fluxcube_version"),
        lambda m: m["provenance"].update(source_files=[]),
        lambda m: m["provenance"]["source_files"][0].update(sha256="not-a-checksum"),
        lambda m: m.update(variables={}),
        lambda m: m["variables"]["nee"].pop("dims"),
        lambda m: m.update(version="v1"),
        lambda m: m["extent"].update(temporal={"start": "2001-01-01T00:00:00Z"}),
    ]
    for change in cases:
        with pytest.raises(ValueError, match="catalog entry 'grid'"):
            validate_catalog(broken(change))
    with pytest.raises(ValueError, match="version: 2"):
        validate_catalog({**doc, "version": 1})
    assert md["variables"]["nee"]["units"] == "g C m-2 d-1"


# --------------------------------------------------------------------------- opening with Intake
def test_intake_opens_entries_as_lazy_datasets(published: str) -> None:
    url = location(published).child("catalog.yaml").url
    cat = intake.from_yaml_file(url, **storage_options(url))  # endpoint_url for S3; nothing locally
    assert sorted(cat.entries) == ["grid", "sites"]
    ds = cat["grid"].read()
    assert isinstance(ds, xr.Dataset)
    assert isinstance(ds["nee"].data, dask.array.Array)  # lazy
    xr.testing.assert_identical(ds.load(), grid().assign_attrs(ds.attrs))
    assert ds.attrs["fluxcube_dataset"] == "grid"
    assert cat["grid"].metadata["variables"]["nee"]["units"] == "g C m-2 d-1"
    # fluxcube's helper passes the same options from the environment
    ds2 = open_catalog(url)["sites"].read()
    assert isinstance(ds2["NEE"].data, dask.array.Array)
    xr.testing.assert_equal(ds2["NEE"].load(), sites()["NEE"])


def test_local_catalog_is_relocatable(tmp_path: Path) -> None:
    """Entry URLs are relative to the catalog: the whole folder can be moved or copied."""
    root = tmp_path / "store"
    publish(str(root), "grid", grid(), {"in.csv": "b" * 64})
    moved = tmp_path / "elsewhere"
    shutil.move(root, moved)
    ds = intake.from_yaml_file(str(moved / "catalog.yaml"))["grid"].read()
    xr.testing.assert_identical(ds.load(), grid().assign_attrs(ds.attrs))
