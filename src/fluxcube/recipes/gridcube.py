"""(time, lat, lon) Zarr v3 stores on the 0.5 degree grid: blocks written in place, with their checks."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from typing import Any

import apache_beam as beam
import numpy as np
import xarray as xr
import zarr

from fluxcube.recipes.regions import LAT, LON, grid_coords
from fluxcube.recipes.transforms import (
    REFUSED,
    MapOrRefuse,
    WriteRecords,
    create,
    current_progress,
    in_process,
    pipeline_options,
    progress_events,
    report,
)
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
    attributes) of a (time, lat, lon) store on the 0.5 degree grid, one time step per day in ``days``.

    The coordinates go through xarray; the empty variables are created with Zarr directly, with the
    metadata xarray gives them (fill value NaN, ``_FillValue`` attribute, dimension names): no Dask
    graph to build (and no import of Dask's distributed scheduler, about 0.2 s in a fresh process)."""
    time = np.array(days, dtype="datetime64[D]").astype("datetime64[ns]")
    coords: dict[str, Any] = dict(grid_coords())
    coords["time"] = ("time", time, dict(time_attrs))
    ds = xr.Dataset(coords=coords, attrs=attrs)
    encoding: dict[str, Any] = {
        "time": {"units": "days since 1970-01-01", "calendar": "proleptic_gregorian", "dtype": "int32"}
    }
    zstore = store.zarr_store()
    ds.to_zarr(zstore, mode="w", zarr_format=3, consolidated=False, encoding=encoding)
    create_empty(zstore, products, ("time", "lat", "lon"), (time.size, LAT.size, LON.size), CHUNKS)


CHUNKS = (TIME_CHUNK, SPACE_CHUNK, SPACE_CHUNK)
#: The ``_FillValue`` attribute xarray writes for a float NaN fill value in Zarr v3 (base64 of the
#: little-endian float64 NaN).
NAN_FILL_ATTR = base64.standard_b64encode(np.array(np.nan, "<f8").tobytes()).decode()


def create_empty(
    zstore: Any,
    variables: dict[str, dict[str, Any]],
    dims: tuple[str, ...],
    shape: tuple[int, ...],
    chunks: tuple[int, ...],
) -> None:
    """Add empty float32 arrays (no chunk written; fill value NaN) named ``variables`` (name -> attributes)
    to the Zarr v3 group ``zstore``, as ``xarray.Dataset.to_zarr(compute=False)`` would create them."""
    group = zarr.open_group(zstore, mode="r+", zarr_format=3)
    for name, a in variables.items():
        group.create_array(
            name,
            shape=shape,
            chunks=chunks,
            dtype="float32",
            fill_value=np.float32(np.nan),
            attributes={**a, "_FillValue": NAN_FILL_ATTR},
            dimension_names=dims,
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
    and refusals (bad input met while processing) to ``run_dir/<refused_kind>``. A block may carry more
    after its (start, stop), e.g. its own part of the plan: (start, stop, payload).

    Progress: ``report("write", 0, total=len(blocks))`` before, ``report("write")`` per finished block
    (refused ones included), seen by :func:`fluxcube.recipes.transforms.progress_events` listeners when
    the runner runs in this process (the DirectRunner's default). A ``work`` that reports ``"write"``
    itself is not counted twice.

    In this process (the DirectRunner) the blocks and ``work`` stay where they are: the pipeline carries
    (start, stop, index) and looks them up, instead of pickling (and bz2-compressing, as Beam does with
    a Create's values and every function) the payloads and ``work``'s closure."""
    report("write", 0, total=len(blocks))
    key = None
    elements: list[Any] = blocks
    fn = work
    if in_process(runner):
        key = uuid.uuid4().hex
        _IN_PROCESS[key] = (work, blocks)
        elements = [(b[0], b[1], k) for k, b in enumerate(blocks)]
        fn = _registered(key)
    try:
        with beam.Pipeline(options=pipeline_options(runner)) as p:
            out = (
                p
                | "blocks" >> create(elements, runner)  # reshuffled over the workers (not in one process)
                | "process"
                >> beam.ParDo(
                    MapOrRefuse(with_progress(fn), "process", lambda b: f"{label} {b[0]}:{b[1]}")
                ).with_outputs(REFUSED, main="ok")
            )
            _ = out.ok | "checks" >> WriteRecords(run_dir, "checks")
            _ = out[REFUSED] | "refusals" >> WriteRecords(run_dir, refused_kind)
    finally:
        if key is not None:
            _IN_PROCESS.pop(key, None)


#: Work functions and their blocks of the block pipelines running in this process, by run key.
_IN_PROCESS: dict[str, tuple[Callable[[Any], dict[str, Any]], list[Any]]] = {}


def _registered(key: str) -> Callable[[Any], dict[str, Any]]:
    """The work of an element (start, stop, index) of the in-process run ``key``."""

    def run(element: tuple[int, int, int]) -> dict[str, Any]:
        work, blocks = _IN_PROCESS[key]
        return work(blocks[element[2]])

    return run


def with_progress(work: Callable[[Any], dict[str, Any]]) -> Callable[[Any], dict[str, Any]]:
    """``work`` that reports ``"write"`` when it finishes a block (or fails on it), unless it reported
    ``"write"`` itself; nothing to do when nobody listens."""

    def run(block: Any) -> dict[str, Any]:
        listener = current_progress()
        if listener is None:
            return work(block)
        own = False

        def spy(event: str, advance: int, total: int | None) -> None:
            nonlocal own
            own = own or event == "write"
            listener(event, advance, total)

        try:
            with progress_events(spy):
                return work(block)
        finally:
            if not own:
                listener("write", 1, None)

    return run


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
    return {p: count_sum(v) for p, v in out.items()}


def count_sum(v: np.ndarray) -> dict[str, Any]:
    """``{"count", "sum"}`` of the finite values of ``v`` (the sum in float64): the per-block check
    written with a block and compared with the store read back. One pass for the mask, one for the
    sum (``np.nansum`` would copy the array first)."""
    finite = np.isfinite(v)
    return {"count": int(np.count_nonzero(finite)), "sum": float(np.sum(v, dtype="float64", where=finite))}


def finite_range(v: np.ndarray) -> tuple[float, float]:
    """(min, max) of the finite values of ``v``; (inf, -inf) when there are none."""
    finite = np.isfinite(v)
    return float(np.min(v, where=finite, initial=np.inf)), float(np.max(v, where=finite, initial=-np.inf))
