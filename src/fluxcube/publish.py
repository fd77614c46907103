"""Atomic, idempotent publication of versioned Zarr stores.

Layout under the store root (a local folder or any fsspec URL)::

    catalog.yaml                                  the Intake 2 catalog, regenerated on each publish
    datasets/<name>/versions/<version>.zarr/      one immutable Zarr v3 store per version
    datasets/<name>/versions/<version>.json       its manifest, written only once it is validated
    datasets/<name>/CURRENT.json                  pointer to the published version (one small file)

A version id is a hash of what determines the store's content (recipe name and version, fluxcube
version, the sha256 of every input file, parameters), so a rerun on the same inputs finds its own
version and does nothing. A new version is written beside the published one, where no reader looks,
and is validated; only then is its manifest written and ``CURRENT.json`` replaced in one step
(``os.replace`` locally, a single PUT on object storage). A run that fails or is killed at any point
leaves the previous version published and readable; its partial store has no manifest, and the next
run with the same inputs deletes and rewrites it. Old versions are kept (never lose data).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import xarray as xr

from fluxcube import __version__
from fluxcube.storage import Location, location

log = logging.getLogger(__name__)

#: Set to a stage name ("written", "validated") to kill the process right after that stage: the
#: crash test of the publication protocol. Never set in normal use.
FAULT_ENV = "FLUXCUBE_FAULT_KILL_AFTER"


class ValidationError(RuntimeError):
    """A freshly written store did not pass its checks; it was not published."""


@dataclass
class Release:
    """What a recipe wants to publish: the name, how its content is determined, and its metadata."""

    name: str
    recipe: str
    recipe_version: str
    inputs: dict[str, str]  # source URL or path -> sha256
    description: str
    params: dict[str, Any] = field(default_factory=dict)
    synthetic: bool = False

    @property
    def version(self) -> str:
        """Content-determining hash (16 hex digits)."""
        h = hashlib.sha256()
        key = {
            "name": self.name,
            "recipe": self.recipe,
            "recipe_version": self.recipe_version,
            "fluxcube": __version__,
            "inputs": sorted(self.inputs.values()),
            "params": self.params,
        }
        h.update(json.dumps(key, sort_keys=True, default=str).encode())
        return h.hexdigest()[:16]

    def provenance(self) -> dict[str, Any]:
        """Provenance attributes for the store (source files with sha256, versions, build time)."""
        return {
            "fluxcube_dataset": self.name,
            "fluxcube_version_id": self.version,
            "recipe": self.recipe,
            "recipe_version": self.recipe_version,
            "fluxcube_version": __version__,
            "source_files": json.dumps({k: self.inputs[k] for k in sorted(self.inputs)}),
            "build_time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "synthetic": str(self.synthetic).lower(),
            "params": json.dumps(self.params, sort_keys=True, default=str),
        }


def sha256_file(url: str, blocksize: int = 1 << 22) -> str:
    """Hex sha256 of a file at a path or fsspec URL, streamed in 4 MiB blocks."""
    loc = location(url)
    h = hashlib.sha256()
    with loc.fs.open(loc.path, "rb") as f:
        while block := f.read(blocksize):
            h.update(block)
    return h.hexdigest()


class Publisher:
    """Publishes datasets under one store root and keeps the catalog in step."""

    def __init__(self, root: str):
        self.root = location(root)

    def dataset(self, name: str) -> Location:
        return self.root.child("datasets", name)

    def store_location(self, name: str, version: str) -> Location:
        return self.dataset(name).child("versions", f"{version}.zarr")

    def manifest_location(self, name: str, version: str) -> Location:
        return self.dataset(name).child("versions", f"{version}.json")

    def current(self, name: str) -> dict[str, Any] | None:
        """The manifest of the published version of ``name``, or None."""
        ptr = self.dataset(name).child("CURRENT.json")
        return json.loads(ptr.read_text()) if ptr.exists() else None

    def names(self) -> list[str]:
        """Names of all published datasets."""
        base = self.root.child("datasets")
        if not base.exists():
            return []
        names = []
        for p in base.fs.ls(base.path, detail=False):
            name = p.rstrip("/").rsplit("/", 1)[-1]
            if self.dataset(name).child("CURRENT.json").exists():
                names.append(name)
        return sorted(names)

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Manifests of every committed version of ``name``, oldest first."""
        vdir = self.dataset(name).child("versions")
        if not vdir.exists():
            return []
        out = []
        for p in vdir.fs.ls(vdir.path, detail=False):
            if p.endswith(".json"):
                with vdir.fs.open(p, "r") as f:
                    out.append(json.load(f))
        return sorted(out, key=lambda m: m["published"])

    def is_current(self, release: Release) -> bool:
        cur = self.current(release.name)
        return cur is not None and cur["version"] == release.version

    def prepare(self, release: Release, force: bool = False) -> Location | None:
        """Where to write ``release``'s new store, or None when that version is already published.

        A partial store left by a failed or killed run of the same version is deleted first. A version
        committed before (a return to earlier inputs) is not rewritten: the pointer goes back to it.
        """
        from fluxcube.catalog import write_catalog

        if self.is_current(release) and not force:
            log.info("%s: version %s is already published; nothing to do", release.name, release.version)
            if not self._cataloged(release):  # a run killed between pointer and catalog
                write_catalog(self)
            return None
        manifest = self.manifest_location(release.name, release.version)
        if manifest.exists() and not force:
            log.info(
                "%s: version %s was committed before; publishing it again", release.name, release.version
            )
            self.dataset(release.name).child("CURRENT.json").write_text_atomic(manifest.read_text())
            write_catalog(self)
            return None
        store = self.store_location(release.name, release.version)
        store.remove()
        manifest.remove()
        return store

    def _cataloged(self, release: Release) -> bool:
        """Whether the catalog lists ``release``'s version as the published one of its dataset."""
        import yaml

        cat = self.root.child("catalog.yaml")
        if not cat.exists():
            return False
        entry = (yaml.safe_load(cat.read_text()).get("entries") or {}).get(release.name) or {}
        return (entry.get("metadata") or {}).get("version") == release.version

    def commit(
        self,
        release: Release,
        validate: Callable[[xr.Dataset], None] | None = None,
        catalog_metadata: Callable[[xr.Dataset], dict[str, Any]] | None = None,
        update_catalog: bool = True,
    ) -> dict[str, Any]:
        """Validate the written store, then publish it: manifest, pointer, catalog; return the manifest.

        ``validate(ds)`` raises on any problem with the store as opened back from storage; nothing is
        published unless it passes. A caller publishing several stores may pass
        ``update_catalog=False`` and call :meth:`write_catalog` once at the end.
        """
        from fluxcube.catalog import check_entry, describe, write_catalog

        _fault("written")
        version = release.version
        store = self.store_location(release.name, version)
        try:
            ds = xr.open_zarr(
                store.zarr_store(read_only=True), consolidated=False, zarr_format=3, chunks=None
            )
            _check_provenance(ds, release)
            if validate is not None:
                validate(ds)
            metadata = (catalog_metadata or describe)(ds)
        except Exception as err:
            raise ValidationError(f"{release.name} version {version} failed validation: {err}") from err
        manifest = {
            "name": release.name,
            "version": version,
            "store": f"datasets/{release.name}/versions/{version}.zarr",
            "description": release.description,
            "recipe": release.recipe,
            "recipe_version": release.recipe_version,
            "fluxcube_version": __version__,
            "inputs": dict(sorted(release.inputs.items())),
            "params": release.params,
            "synthetic": release.synthetic,
            "published": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
            "metadata": metadata,
        }
        try:  # the catalog entry must be valid too, or it would break every later catalog rebuild
            check_entry(manifest)
        except Exception as err:
            raise ValidationError(f"{release.name} version {version}: bad catalog entry: {err}") from err
        _fault("validated")
        text = json.dumps(manifest, indent=1, default=str)
        self.manifest_location(release.name, version).write_text_atomic(text)
        self.dataset(release.name).child("CURRENT.json").write_text_atomic(text)
        if update_catalog:
            write_catalog(self)
        log.info("%s: published version %s", release.name, version)
        return manifest

    def write_catalog(self) -> str:
        """Regenerate ``catalog.yaml`` from the published manifests; return its URL."""
        from fluxcube.catalog import write_catalog

        return write_catalog(self)

    def publish_dataset(
        self,
        release: Release,
        ds: xr.Dataset,
        attrs: dict[str, Any],
        validate: Callable[[xr.Dataset], None] | None = None,
        encoding: dict[str, Any] | None = None,
        refused: list[dict[str, str]] | None = None,
        force: bool = False,
    ) -> bool:
        """Publish a small in-memory dataset (one chunk per variable) as ``release``.

        ``attrs`` are added to the provenance attributes; ``refused`` inputs are listed in the catalog.
        Returns False when this version was already published (nothing written).
        """
        from fluxcube.catalog import describe

        def write(store: Location, provenance: dict[str, Any]) -> None:
            out = ds.copy()
            out.attrs = {**provenance, **attrs}
            out.to_zarr(
                store.zarr_store(), mode="w", zarr_format=3, consolidated=False, encoding=encoding or {}
            )

        if self.is_current(release) and not force:
            self.prepare(release)  # repairs a stale catalog
            return False
        self.publish(
            release,
            write,
            validate,
            catalog_metadata=lambda d: {**describe(d), "refused": list(refused or [])},
            force=force,
        )
        return True

    def publish(
        self,
        release: Release,
        write: Callable[[Location, dict[str, Any]], None],
        validate: Callable[[xr.Dataset], None] | None = None,
        catalog_metadata: Callable[[xr.Dataset], dict[str, Any]] | None = None,
        force: bool = False,
    ) -> dict[str, Any]:
        """Prepare, write (``write(store_location, provenance_attrs)``) and commit one version."""
        store = self.prepare(release, force=force)
        if store is None:
            return self.current(release.name)  # type: ignore[return-value]
        write(store, release.provenance())
        return self.commit(release, validate, catalog_metadata)

    def open(self, name: str, version: str | None = None) -> xr.Dataset:
        """Open the published (or a given committed) version of ``name`` lazily."""
        if version is None:
            cur = self.current(name)
            if cur is None:
                raise KeyError(f"no published dataset named {name!r} under {self.root.url}")
            version = cur["version"]
        store = self.store_location(name, version).zarr_store(read_only=True)
        return xr.open_zarr(store, consolidated=False, zarr_format=3)


def _check_provenance(ds: xr.Dataset, release: Release) -> None:
    got = ds.attrs.get("fluxcube_version_id")
    if got != release.version:
        raise ValueError(f"store attribute fluxcube_version_id is {got!r}, expected {release.version!r}")


def _fault(stage: str) -> None:
    if os.environ.get(FAULT_ENV) == stage:
        log.error("fault injection: killing the process after stage %r", stage)
        os.kill(os.getpid(), signal.SIGKILL)


def iter_files(urls: Iterable[str]) -> dict[str, str]:
    """Map each input URL to its sha256."""
    return {u: sha256_file(u) for u in urls}
