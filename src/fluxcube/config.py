"""The few settings fluxcube reads from the environment, in one place.

- ``FLUXCUBE_DATA``: folder of real sample data (default ``../shared/data``, relative to the
  current directory). Nothing in fluxcube needs it; tests that do skip when it is absent.
- ``FLUXCUBE_STORE``: root URL of published stores and the catalog (default ``./fluxcube-data``);
  any fsspec URL, e.g. ``s3://bucket/prefix``. Credentials come from the environment
  (``AWS_ACCESS_KEY_ID``...) or fsspec configuration, never from here.
- ``FLUXCUBE_S3_ENDPOINT``: optional endpoint URL for S3-compatible storage (MinIO, Ceph, moto).
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "FLUXCUBE_DATA"
STORE_ENV = "FLUXCUBE_STORE"
S3_ENDPOINT_ENV = "FLUXCUBE_S3_ENDPOINT"
DEFAULT_DATA = "../shared/data"
DEFAULT_STORE = "./fluxcube-data"


def data_dir() -> Path:
    """Folder of the real sample data (may not exist)."""
    return Path(os.environ.get(DATA_ENV, DEFAULT_DATA)).expanduser().resolve()


def have_data(subpath: str = "") -> bool:
    """True when the sample data (or ``subpath`` inside it) exists."""
    return (data_dir() / subpath).exists()


def store_root() -> str:
    """Root URL of published stores and the catalog."""
    return os.environ.get(STORE_ENV, DEFAULT_STORE)
