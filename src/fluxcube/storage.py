"""Turn a URL into a filesystem and a Zarr store.

A plain path or ``file://`` URL is a local folder; ``s3://bucket/prefix`` goes through s3fs;
any other fsspec protocol works the same way. Credentials are never passed here: s3fs reads them
from the environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``) or from
fsspec configuration. ``FLUXCUBE_S3_ENDPOINT`` points s3fs at an S3-compatible endpoint.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any

import fsspec
import zarr
from fsspec.implementations.local import LocalFileSystem
from zarr.storage import FsspecStore, LocalStore

from fluxcube.config import S3_ENDPOINT_ENV


def storage_options(url: str) -> dict[str, Any]:
    """fsspec options for ``url``: only the S3 endpoint, from the environment (no secrets)."""
    if url.startswith(("s3://", "s3a://")) and os.environ.get(S3_ENDPOINT_ENV):
        return {"endpoint_url": os.environ[S3_ENDPOINT_ENV]}
    return {}


@dataclass(frozen=True)
class Location:
    """A folder-like place in some filesystem: ``fs`` plus a protocol-less ``path``."""

    url: str
    fs: fsspec.AbstractFileSystem
    path: str

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    def child(self, *parts: str) -> Location:
        """The location ``parts`` below this one."""
        sub = "/".join(p.strip("/") for p in parts)
        return Location(f"{self.url.rstrip('/')}/{sub}", self.fs, f"{self.path.rstrip('/')}/{sub}")

    def exists(self) -> bool:
        return self.fs.exists(self.path)

    def read_text(self) -> str:
        with self.fs.open(self.path, "r") as f:
            return f.read()

    def write_text_atomic(self, text: str) -> None:
        """Replace the file's content all at once: readers see the old or the new text, never half.

        Locally: write a temporary sibling, then ``os.replace``. On object storage a single PUT is
        atomic already.
        """
        if self.is_local:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            tmp = f"{self.path}.tmp-{uuid.uuid4().hex}"
            with open(tmp, "w") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        else:
            self.fs.pipe_file(self.path, text.encode())

    def remove(self) -> None:
        """Delete this file or folder tree if it exists."""
        if self.fs.exists(self.path):
            self.fs.rm(self.path, recursive=True)

    def zarr_store(self, read_only: bool = False) -> zarr.abc.store.Store:
        """A Zarr v3 store at this location."""
        if self.is_local:
            return LocalStore(self.path, read_only=read_only)
        return FsspecStore.from_url(self.url, storage_options=storage_options(self.url), read_only=read_only)


def location(url: str) -> Location:
    """Resolve a URL or local path to a :class:`Location` (local paths become absolute)."""
    if "://" not in url or url.startswith("file://"):
        path = os.path.abspath(os.path.expanduser(url.removeprefix("file://")))
        return Location(path, fsspec.filesystem("file"), path)
    # no listing cache: other processes (recipes, the realtime service) write to the same storage, and
    # a cached listing hides their stores, versions and pointers from a long-lived process
    fs, path = fsspec.core.url_to_fs(url, use_listings_cache=False, **storage_options(url))
    return Location(url.rstrip("/"), fs, path.rstrip("/"))
