"""(time, lat, lon) Zarr v3 stores on the 0.5 degree grid: blocks written in place, with their checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from fluxcube.storage import Location


def write_block(
    store: Location, out: dict[str, np.ndarray], time: slice, lat: slice, lon: slice
) -> dict[str, Any]:
    """Write one (time, lat, lon) block of every variable in ``out`` into the store's region; return
    per-variable ``{"count", "sum"}`` of its finite values, for validation after the store is complete."""
    ds = xr.Dataset({p: (("time", "lat", "lon"), v) for p, v in out.items()})
    ds.to_zarr(
        store.zarr_store(),
        region={"time": time, "lat": lat, "lon": lon},
        mode="r+",
        zarr_format=3,
        consolidated=False,
    )
    return {
        p: {"count": int(np.isfinite(v).sum()), "sum": float(np.nansum(v, dtype="float64"))}
        for p, v in out.items()
    }
