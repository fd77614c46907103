"""(time, lat, lon) Zarr v3 stores on the 0.5 degree grid: blocks written in place, with their checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import apache_beam as beam
import dask.array as da
import numpy as np
import xarray as xr

from fluxcube.recipes.regions import LAT, LON, grid_coords
from fluxcube.recipes.transforms import REFUSED, MapOrRefuse, WriteRecords, pipeline_options
from fluxcube.storage import Location

TIME_CHUNK = 32  # days per chunk and per processing block
SPACE_CHUNK = 90  # 0.5 degree cells per chunk along lat and lon


def write_template(
    store: Location,
    days: list[Any],
    products: dict[str, dict[str, str]],
    attrs: dict[str, Any],
    time_attrs: dict[str, str],
) -> None:
    """Coordinates, attributes and the empty (unwritten) float32 variables ``products`` (name -> CF
    attributes) of a (time, lat, lon) store on the 0.5 degree grid, one time step per day in ``days``."""
    time = np.array(days, dtype="datetime64[D]").astype("datetime64[ns]")
    shape = (time.size, LAT.size, LON.size)
    chunks = (TIME_CHUNK, SPACE_CHUNK, SPACE_CHUNK)
    data = {
        p: (("time", "lat", "lon"), da.full(shape, np.nan, dtype="float32", chunks=chunks), dict(a))
        for p, a in products.items()
    }
    coords: dict[str, Any] = dict(grid_coords())
    coords["time"] = ("time", time, dict(time_attrs))
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    encoding: dict[str, Any] = {p: {"chunks": chunks} for p in products}
    encoding["time"] = {"units": "days since 1970-01-01", "calendar": "proleptic_gregorian", "dtype": "int32"}
    ds.to_zarr(
        store.zarr_store(), mode="w", compute=False, zarr_format=3, consolidated=False, encoding=encoding
    )


def process_blocks_on_beam(
    blocks: list[tuple[int, int]],
    work: Callable[[tuple[int, int]], dict[str, Any]],
    run_dir: str,
    runner: str = "DirectRunner",
    refused_kind: str = "refused",
    label: str = "days",
) -> None:
    """Run ``work(block)`` for every (start, stop) time block on Beam; its results go to ``run_dir/checks``
    and refusals (bad input met while processing) to ``run_dir/<refused_kind>``."""
    with beam.Pipeline(options=pipeline_options(runner)) as p:
        out = (
            p
            | "blocks" >> beam.Create(blocks)
            | "reshuffle" >> beam.Reshuffle()
            | "process"
            >> beam.ParDo(MapOrRefuse(work, "process", lambda b: f"{label} {b[0]}:{b[1]}")).with_outputs(
                REFUSED, main="ok"
            )
        )
        _ = out.ok | "checks" >> WriteRecords(run_dir, "checks")
        _ = out[REFUSED] | "refusals" >> WriteRecords(run_dir, refused_kind)


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
