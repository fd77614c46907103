"""The Intake 2 catalog of everything published under a store root.

The catalog (``catalog.yaml``, ``version: 2``) is regenerated from the published manifests after
every publication; it holds one entry per dataset, pointing at the published version with a URL
relative to the catalog itself (``{CATALOG_DIR}``), so the same file works on a local folder and on
object storage. No credentials are written: storage options are those the user passes when opening
the catalog (``intake.from_yaml_file(url, endpoint_url=...)``) or fsspec's configuration.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr
import yaml

if TYPE_CHECKING:
    from fluxcube.publish import Publisher

CATALOG_FILE = "catalog.yaml"


def _iso(value: Any) -> str:
    try:
        return str(np.datetime_as_string(np.datetime64(value, "s"), unit="s")) + "Z"
    except (ValueError, TypeError):  # not a date: a numeric time axis, a 360-day calendar date...
        return value.isoformat() if hasattr(value, "isoformat") else str(value)


def describe(ds: xr.Dataset) -> dict[str, Any]:
    """Catalog metadata of a dataset: variables with units, and spatial and temporal extent."""
    variables = {}
    for name, var in ds.variables.items():
        if name in ds.dims:
            continue
        entry = {"dims": list(var.dims), "dtype": str(var.dtype)}
        for key in ("units", "long_name", "standard_name"):
            if key in var.attrs:
                entry[key] = str(var.attrs[key])
        variables[str(name)] = entry
    extent: dict[str, Any] = {}
    lat = next((ds[n] for n in ("lat", "latitude") if n in ds.variables), None)
    lon = next((ds[n] for n in ("lon", "longitude") if n in ds.variables), None)
    if lat is not None and lon is not None and lat.size:
        extent["spatial"] = {
            "lat_min": float(lat.min()),
            "lat_max": float(lat.max()),
            "lon_min": float(lon.min()),
            "lon_max": float(lon.max()),
        }
    if "time" in ds.coords and ds.sizes.get("time", 0):
        t = ds["time"].values
        extent["temporal"] = {
            "start": _iso(t.min()),
            "end": _iso(t.max()),
            "steps": int(t.size),
            "convention": str(ds["time"].attrs.get("comment", "")),
        }
    dims = {str(k): int(v) for k, v in ds.sizes.items()}
    return {"variables": variables, "extent": extent, "dims": dims}


def entry_metadata(manifest: dict[str, Any], versions: list[str]) -> dict[str, Any]:
    """The metadata block of one catalog entry, built from a published manifest."""
    md = manifest.get("metadata", {})
    return {
        "description": manifest["description"],
        "version": manifest["version"],
        "versions": versions,
        "variables": md.get("variables", {}),
        "dims": md.get("dims", {}),
        "extent": md.get("extent", {}),
        "synthetic": bool(manifest.get("synthetic", False)),
        "provenance": {
            "recipe": manifest["recipe"],
            "recipe_version": manifest["recipe_version"],
            "fluxcube_version": manifest["fluxcube_version"],
            "published": manifest["published"],
            "params": manifest.get("params", {}),
            "source_files": [{"url": u, "sha256": s} for u, s in manifest["inputs"].items()],
        },
    }


def build_catalog(pub: Publisher) -> dict[str, Any]:
    """The catalog as a plain dict (Intake 2 YAML layout), from the published manifests."""
    from intake.readers.datatypes import Zarr
    from intake.readers.entry import Catalog
    from intake.readers.readers import XArrayDatasetReader

    cat = Catalog(
        metadata={
            "description": "fluxcube: analysis-ready land-atmosphere CO2 flux data",
            "generated_by": "fluxcube",
        }
    )
    for name in pub.names():
        manifest = pub.current(name)
        assert manifest is not None
        versions = [m["version"] for m in pub.versions(name)]
        data = Zarr(
            url="{CATALOG_DIR}/" + manifest["store"],
            storage_options="{STORAGE_OPTIONS}",
            metadata={"description": manifest["description"]},
        )
        reader = XArrayDatasetReader(
            data,
            engine="zarr",
            chunks={},
            consolidated=False,
            metadata=entry_metadata(manifest, versions),
        )
        cat[name] = reader
    # a plain-JSON round trip: numpy scalars and tuples become YAML-safe types
    return json.loads(json.dumps(cat.to_dict(), default=str))


def write_catalog(pub: Publisher) -> str:
    """Regenerate ``catalog.yaml`` at the store root atomically; return its URL."""
    doc = build_catalog(pub)
    validate_catalog(doc)
    loc = pub.root.child(CATALOG_FILE)
    loc.write_text_atomic(yaml.safe_dump(doc, sort_keys=False))
    return loc.url


def schema() -> dict[str, Any]:
    """JSON Schema of the catalog's entry metadata (shipped with the package)."""
    return json.loads(resources.files("fluxcube").joinpath("catalog_schema.json").read_text())


def check_entry(manifest: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` when ``manifest`` would make an invalid catalog entry."""
    import jsonschema

    entry = json.loads(json.dumps(entry_metadata(manifest, [manifest["version"]]), default=str))
    jsonschema.validate(entry, schema())


def validate_catalog(doc: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` when an entry's metadata misses what the schema needs."""
    import jsonschema

    sch = schema()
    if doc.get("version") != 2:
        raise ValueError("catalog must be an Intake 2 catalog (version: 2)")
    for name, entry in doc.get("entries", {}).items():
        try:
            jsonschema.validate(entry.get("metadata", {}), sch)
        except jsonschema.ValidationError as err:
            raise ValueError(f"catalog entry {name!r}: {err.message}") from err


def open_catalog(url: str, **storage_options: Any) -> Any:
    """Open a catalog with Intake; storage options default to fluxcube's (S3 endpoint from env)."""
    import intake

    from fluxcube.storage import storage_options as default_options

    opts = storage_options or default_options(url)
    return intake.from_yaml_file(url, **opts)
