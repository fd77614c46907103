"""Small helpers to write the simulated world's NetCDF files with netCDF4, slab by slab.

Every file is NetCDF-4 (HDF5) with zlib level 1 and byte shuffling, and carries the global attributes
``synthetic = "true"``, ``generator``, ``generator_seed`` and ``generator_parameters`` (JSON of every
argument of :func:`fluxcube.simulate.world.write_world`). The same calls write the same bytes (HDF5
object time stamps are off in netCDF-C; tested).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np

GENERATOR = "fluxcube.simulate.world"
COMPRESSION: dict[str, Any] = {"zlib": True, "complevel": 1, "shuffle": True}
#: HDF5 chunk cache per variable (bytes). The writers fill whole chunks, so a small cache that drops
#: written chunks first (preemption 1) suffices; netCDF's default (64 MiB per variable) would hold
#: gigabytes of a year's open files in memory until they are closed.
CHUNK_CACHE = 4 << 20


def synthetic_attrs(seed: int, parameters: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """Global attributes every simulated file carries (NetCDF attributes cannot be booleans)."""
    return {
        **extra,
        "synthetic": "true",
        "generator": GENERATOR,
        "generator_seed": int(seed),
        "generator_parameters": json.dumps(dict(parameters), sort_keys=True, default=str),
    }


def create(path: Path, attrs: Mapping[str, Any], dims: Mapping[str, int | None]) -> netCDF4.Dataset:
    """A new NetCDF-4 file at ``path`` with global attributes and dimensions (None = unlimited)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = netCDF4.Dataset(path, "w", format="NETCDF4")
    for name, size in dims.items():
        ds.createDimension(name, size)
    ds.setncatts({k: attrs[k] for k in attrs})
    return ds


def variable(
    ds: netCDF4.Dataset,
    name: str,
    dtype: str,
    dims: Sequence[str],
    attrs: Mapping[str, Any],
    fill: Any = None,
    chunks: Sequence[int] | None = None,
    compress: bool = True,
    data: np.ndarray | None = None,
) -> netCDF4.Variable:
    """Create a variable (raw values written as given: no automatic scaling or masking)."""
    kwargs: dict[str, Any] = dict(COMPRESSION) if compress else {}
    if chunks is not None:
        kwargs["chunksizes"] = tuple(int(c) for c in chunks)
    var = ds.createVariable(name, dtype, tuple(dims), fill_value=fill, **kwargs)
    if chunks is not None:
        var.set_var_chunk_cache(size=CHUNK_CACHE, nelems=1009, preemption=1.0)
    var.set_auto_maskandscale(False)
    var.setncatts({k: v for k, v in attrs.items()})
    if data is not None:
        var[...] = data
    return var


def pack(values: np.ndarray, scale: float, offset: float, dtype: str, fill: int) -> np.ndarray:
    """CF packing: ``round((values - offset) / scale)`` clipped to the side of the type's range away from
    ``fill`` (so no value packs to the fill value); NaN -> ``fill``."""
    info = np.iinfo(dtype)
    lo, hi = (fill + 1, info.max) if fill <= (int(info.min) + int(info.max)) // 2 else (info.min, fill - 1)
    finite = np.isfinite(values)
    q = np.clip(np.round((np.where(finite, values, offset) - offset) / scale), lo, hi).astype(dtype)
    q[~finite] = fill
    return q


def coordinate(
    ds: netCDF4.Dataset, name: str, values: np.ndarray, attrs: Mapping[str, Any], dtype: str = "f8"
) -> netCDF4.Variable:
    """A 1-d coordinate variable ``name(name)``, uncompressed."""
    return variable(ds, name, dtype, (name,), attrs, compress=False, data=np.asarray(values, dtype=dtype))


LAT_ATTRS = {"units": "degrees_north", "standard_name": "latitude", "long_name": "latitude"}
LON_ATTRS = {"units": "degrees_east", "standard_name": "longitude", "long_name": "longitude"}
