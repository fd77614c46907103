"""Shared fixtures: the real sample data (skipped when absent) and a real S3 endpoint on 127.0.0.1."""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fluxcube import config


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real sample data folder (FLUXCUBE_DATA, default ../shared/data); skip when absent."""
    path = config.data_dir()
    if not (path / "sites").is_dir():
        pytest.skip(f"real sample data not found at {path}; set {config.DATA_ENV} to the shared data folder")
    return path


@pytest.fixture(scope="session")
def sites_dir(data_dir: Path) -> Path:
    return data_dir / "sites"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 (as s3fs's own tests use); yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh bucket on the moto server, with fluxcube and s3fs pointed at it; yields ``s3://bucket``."""
    import boto3
    import fsspec

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv(config.S3_ENDPOINT_ENV, s3_server)
    slug = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower())[:30].strip("-")
    bucket = f"fluxcube-{slug}-{uuid.uuid4().hex[:8]}"  # unique: parametrised variants share a name prefix
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    fsspec.filesystem("s3").clear_instance_cache()
    yield f"s3://{bucket}"
    fsspec.filesystem("s3").clear_instance_cache()
