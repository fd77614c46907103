"""Incremental append along time: a new ERA5 month (or any new time steps) without rewriting the store.

Design (versions stay immutable; readers never see a half-appended store):

1. The appended store is a **new version** ``datasets/<name>/versions/<new>.zarr`` beside the published
   one, exactly as a full run would write it; the version id hashes all inputs (old and new) and the
   version it was appended to (``params["append_of"]``), so a rerun finds it and does nothing.
2. **Copy without re-encoding**: every object of the published store is copied into the new version
   as bytes, never decoded: a server-side copy on object storage (S3 ``CopyObject`` through fsspec's
   ``copy``; no data leaves the store, one request per object, run concurrently), a hard link on a
   local file system. Objects the append will write into are copied physically instead of linked:
   every ``zarr.json`` (shapes and attributes change) and the chunks of the time blocks at and after
   the first written time step (the last, partly filled block is read, merged and rewritten by Zarr).
   The published version's files are only ever read.
3. **Grow and write**: the arrays with the time dimension are resized in the new version's metadata,
   the new (and, at a seam, corrected) time steps are written block by block (one Zarr time chunk
   per write, so only the tail block is read-modified-written), and the root attributes get the new
   provenance (``fluxcube_version_id``, ``source_files``, ``appended_from``...).
4. **Validate, then switch**: the new version is checked (time axis = old axis + new steps, every
   written value comes back, old blocks untouched, the recipe's physical ranges), then
   :meth:`Publisher.commit` writes its manifest and replaces ``CURRENT.json`` in one atomic step.

A killed append leaves the published version as it was (nothing of it was written) and a partial
new version without a manifest that no reader looks at; the rerun (same inputs, same version id)
deletes that partial store and starts again. The cost of an append is O(number of objects) cheap
copies plus the encoding of the new steps, instead of decoding and re-encoding everything.

Rules for the new steps: their times must come after the store's last time, or overlap only its
tail (a seam). In the overlap a published value may be filled where it was missing (NaN -> value:
e.g. the last day's precipitation, whose final hourly accumulation lies in the next month's file)
but never changed: a differing value refuses the append. Variables and non-time coordinates must
match the published store.

The ERA5 entry point :func:`append` (``fluxcube recipes run era5 --append``) builds the new days
with the ERA5 recipe's own scan, plan and block pipeline into a staging store under ``_runs/``, then
appends them with :func:`append_store`, which any recipe (GFAS days, say) can call the same way.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
import zarr

from fluxcube.catalog import describe
from fluxcube.errors import InputError
from fluxcube.publish import FAULT_ENV, Publisher, Release, iter_files
from fluxcube.recipes.fluxnet_pipeline import RunSummary
from fluxcube.recipes.transforms import inputs_are_synthetic, read_files_on_beam
from fluxcube.storage import Location

log = logging.getLogger(__name__)


class AppendError(ValueError):
    """The new time steps cannot be appended (not after the store's end, a changed value, another grid)."""


def _stage(stage: str) -> None:
    """Crash-test hook: ``FLUXCUBE_FAULT_KILL_AFTER=append-copied`` (or ``append-written``) kills the
    process right after that stage of :func:`append_store`. Tests may replace this function to look at
    the published version between stages."""
    if os.environ.get(FAULT_ENV) == stage:
        log.error("fault injection: killing the process after stage %r", stage)
        os.kill(os.getpid(), signal.SIGKILL)


# ------------------------------------------------------------------------------------ planning
@dataclass
class AppendPlan:
    """Where the new steps go: ``old_n`` published steps, the result has ``new_n``; steps from
    ``write_from`` on are written (``write_from < old_n`` at a seam); ``staged_from`` is the index in
    the staged dataset of the step written at ``write_from``."""

    old_n: int
    new_n: int
    write_from: int
    staged_from: int
    overlap: int  # staged steps that are already in the store (the seam)
    filled: dict[str, int]  # variable -> values filled in the overlap (NaN -> value)


def plan_append(
    old: xr.Dataset, staged: xr.Dataset, dim: str = "time", window: dict[str, slice] | None = None
) -> AppendPlan:
    """Check that ``staged`` continues ``old`` along ``dim`` and find what must be written.

    ``window``: slices of the other dimensions outside which ``staged`` holds no data (only that part
    of the overlap is compared).
    """
    window = window or {}
    t_old = old[dim].values
    t_new = staged[dim].values
    if t_new.size == 0:
        raise AppendError("no new time steps")
    if not np.all(t_new[1:] > t_new[:-1]):
        raise AppendError(f"new {dim} values are not strictly increasing")
    extra = sorted(set(staged.data_vars) - set(old.data_vars))
    if extra:
        raise AppendError(f"variables {extra} are not in the published store: run the full recipe")
    for name, var in staged.data_vars.items():
        if var.dims != old[name].dims or dim not in var.dims:
            raise AppendError(f"{name}: dimensions {var.dims} differ from the store's {old[name].dims}")
    for name, coord in staged.coords.items():
        if name != dim and name in old.coords and not np.array_equal(coord.values, old[name].values):
            raise AppendError(f"coordinate {name} differs from the published store's")
    start = int(np.searchsorted(t_old, t_new[0]))
    k = int(np.searchsorted(t_new, t_old[-1], side="right")) if t_old.size else 0  # steps in the overlap
    if k and (start + k != t_old.size or not np.array_equal(t_new[:k], t_old[start:])):
        raise AppendError(
            f"new {dim} {str(t_new[0])[:19]}..{str(t_new[-1])[:19]} is not an append to the published "
            f"{str(t_old[0])[:19]}..{str(t_old[-1])[:19]}: new steps must follow its end or overlap its tail"
        )
    filled: dict[str, int] = {}
    first_change = k  # index in staged of the first step to write
    if k:
        for name in staged.data_vars:
            win = {d: s for d, s in window.items() if d in staged[name].dims}
            a = np.asarray(old[name].isel({dim: slice(start, None), **win}).values)
            b = np.asarray(staged[name].isel({dim: slice(0, k), **win}).values)
            both = np.isfinite(a) & np.isfinite(b)
            if not np.allclose(a[both], b[both], rtol=1e-6, atol=0):
                raise AppendError(f"{name}: the new data change published values in the overlap")
            lost = np.isfinite(a) & ~np.isfinite(b)
            if lost.any():
                raise AppendError(
                    f"{name}: the new data lack {int(lost.sum())} published values in the overlap"
                )
            gained = ~np.isfinite(a) & np.isfinite(b)
            if gained.any():
                filled[name] = int(gained.sum())
                axis = var_axis(staged[name], dim)
                steps = np.nonzero(gained.any(axis=tuple(i for i in range(gained.ndim) if i != axis)))[0]
                first_change = min(first_change, int(steps[0]))
    plan = AppendPlan(
        old_n=int(t_old.size),
        new_n=int(start + t_new.size),
        write_from=start + first_change,
        staged_from=first_change,
        overlap=k,
        filled=filled,
    )
    return plan


def var_axis(var: xr.DataArray, dim: str) -> int:
    return list(var.dims).index(dim)


# ------------------------------------------------------------------------------- copying
@dataclass(frozen=True)
class ArrayLayout:
    """What the copy needs to know of one array: its time axis and chunk length along it."""

    axis: int | None  # position of the time dimension, None when the array has none
    chunk: int
    separator: str
    prefix: str  # "c/" for the default chunk key encoding, "" for v2


def array_layouts(store: Location, dim: str) -> dict[str, ArrayLayout]:
    """Array path (relative to the store) -> layout, from the arrays' ``zarr.json``."""
    out = {}
    for p in store.fs.find(store.path):
        if not p.endswith("/zarr.json"):
            continue
        rel = p[len(store.path) :].strip("/")
        with store.fs.open(p, "r") as f:
            meta = json.load(f)
        if meta.get("node_type") != "array":
            continue
        dims = meta.get("dimension_names") or []
        axis = dims.index(dim) if dim in dims else None
        chunk_shape = meta["chunk_grid"]["configuration"]["chunk_shape"]
        enc = meta.get("chunk_key_encoding", {"name": "default"})
        sep = enc.get("configuration", {}).get("separator", "/" if enc["name"] == "default" else ".")
        out[rel.rsplit("/", 1)[0] if "/" in rel else ""] = ArrayLayout(
            axis,
            int(chunk_shape[axis]) if axis is not None else 0,
            sep,
            "c" + sep if enc["name"] == "default" else "",
        )
    return out


def classify_objects(store: Location, dim: str, write_from: int) -> tuple[list[str], list[str]]:
    """Relative object keys of ``store``: (shareable: never written by the append, to write: copied).

    To-write are every ``zarr.json`` and the chunks of time-dimensioned arrays whose time block
    reaches ``write_from`` or later.
    """
    layouts = array_layouts(store, dim)
    longest_first = sorted(layouts, key=len, reverse=True)
    share, write = [], []
    for p in store.fs.find(store.path):
        rel = p[len(store.path) :].strip("/")
        if rel.rsplit("/", 1)[-1] == "zarr.json":
            write.append(rel)
            continue
        array = next((a for a in longest_first if rel.startswith(a + "/") or a == ""), None)
        layout = layouts.get(array) if array is not None else None
        if layout is None or layout.axis is None:
            share.append(rel)
            continue
        key = rel[len(array) + 1 :] if array else rel
        if layout.prefix and key.startswith(layout.prefix):
            key = key[len(layout.prefix) :]
        try:
            index = [int(x) for x in key.split(layout.separator)]
        except ValueError:
            write.append(rel)  # not a chunk we understand: copy it physically, to be safe
            continue
        (write if (index[layout.axis] + 1) * layout.chunk > write_from else share).append(rel)
    return share, write


def copy_store(src: Location, dst: Location, share: list[str], write: list[str]) -> dict[str, int]:
    """Copy ``share`` (linked locally, server-side copies elsewhere) and ``write`` (real copies).

    Bytes are never decoded. Returns counts of linked/copied objects.
    """
    stats = {"linked": 0, "copied": 0, "server_side": 0}
    if dst.is_local:
        physical = set(write)
        for rel in share + write:
            s, d = f"{src.path}/{rel}", f"{dst.path}/{rel}"
            os.makedirs(os.path.dirname(d), exist_ok=True)
            if rel in physical:
                shutil.copyfile(s, d)
                stats["copied"] += 1
                continue
            try:
                os.link(s, d)
                stats["linked"] += 1
            except OSError:  # another device, or links not supported: a plain copy
                shutil.copyfile(s, d)
                stats["copied"] += 1
        return stats
    rels = share + write
    if rels:  # one CopyObject per object, run concurrently by fsspec
        src.fs.copy([f"{src.path}/{r}" for r in rels], [f"{dst.path}/{r}" for r in rels])
    stats["server_side"] = len(rels)
    return stats


# ------------------------------------------------------------------------------------ append
def append_store(
    pub: Publisher,
    release: Release,
    staged: xr.Dataset,
    dim: str = "time",
    attrs: dict[str, Any] | None = None,
    validate: Callable[[xr.Dataset], None] | None = None,
    catalog_metadata: Callable[[xr.Dataset], dict[str, Any]] | None = None,
    window: dict[str, slice] | None = None,
) -> dict[str, Any]:
    """Publish ``release`` as the published version of ``release.name`` plus the steps of ``staged``.

    ``staged``: the new time steps (lazily opened is fine; it is read one time chunk at a time), with
    the published store's variables (a subset) and coordinates. ``attrs``: extra root attributes.
    ``validate(ds)``: the recipe's own checks on the result. ``window``: slices of the non-time
    dimensions outside which ``staged`` holds no data (e.g. ERA5's chunk-aligned data window): only
    that part is read, compared and written. Returns the new manifest, or the
    published one when ``release`` is already published. Raises :class:`AppendError` (nothing
    published) when the steps do not continue the store.
    """
    cur = pub.current(release.name)
    if cur is None:
        raise AppendError(f"no published {release.name} under {pub.root.url} to append to: run the recipe")
    if cur["version"] == release.version:
        return cur
    old_loc = pub.store_location(release.name, cur["version"])
    old = xr.open_zarr(old_loc.zarr_store(read_only=True), consolidated=False, zarr_format=3, chunks=None)
    window = dict(window or {})
    plan = plan_append(old, staged, dim, window)
    new_loc = pub.prepare(release)
    if new_loc is None:  # committed before: the pointer went back to it
        return pub.current(release.name)  # type: ignore[return-value]
    share, write = classify_objects(old_loc, dim, plan.write_from)
    stats = copy_store(old_loc, new_loc, share, write)
    log.info("%s: %s", release.name, stats)
    _stage("append-copied")

    group = zarr.open_group(new_loc.zarr_store(), mode="r+", zarr_format=3)
    for name, arr in group.arrays():
        dims = list(arr.metadata.dimension_names or [])
        if dim in dims and arr.shape[dims.index(dim)] != plan.new_n:
            shape = list(arr.shape)
            shape[dims.index(dim)] = plan.new_n
            arr.resize(tuple(shape))
            log.debug("%s: %s resized to %s", release.name, name, shape)
    chunk = max(1, _time_chunk(group, dim))
    region_vars = [v for v in staged.data_vars if dim in staged[v].dims]
    checks: dict[str, dict[str, float]] = {v: {"count": 0, "sum": 0.0} for v in region_vars}
    pos = plan.write_from
    while pos < plan.new_n:
        stop = min(plan.new_n, (pos // chunk + 1) * chunk)  # one time chunk of the store per write
        s0 = plan.staged_from + (pos - plan.write_from)
        part = staged[region_vars].isel({dim: slice(s0, s0 + stop - pos), **window}).load()
        if pos < plan.old_n:  # at a seam: keep published values, fill only what they lacked
            prev = old[region_vars].isel({dim: slice(pos, min(stop, plan.old_n)), **window}).load()
            n_prev = prev.sizes[dim]
            for v in region_vars:
                head = part[v].isel({dim: slice(0, n_prev)}).values
                keep = prev[v].values
                part[v][{dim: slice(0, n_prev)}] = np.where(np.isfinite(keep), keep, head).astype(head.dtype)
        part = part.drop_vars([c for c in part.coords if c != dim and dim not in part[c].dims])
        part.to_zarr(
            new_loc.zarr_store(),
            region={dim: slice(pos, stop), **window},
            mode="r+",
            zarr_format=3,
            consolidated=False,
        )
        for v in region_vars:
            vals = np.asarray(part[v].values)
            checks[v]["count"] += int(np.isfinite(vals).sum())
            checks[v]["sum"] += float(np.nansum(vals, dtype="float64"))
        pos = stop
    _write_coordinate(group, dim, plan.write_from, staged[dim].values[plan.staged_from :])
    root_attrs = dict(old.attrs)
    root_attrs.update(release.provenance())
    root_attrs.update(attrs or {})
    root_attrs["appended_from"] = cur["version"]
    group = zarr.open_group(new_loc.zarr_store(), mode="r+", zarr_format=3)
    group.attrs.update(root_attrs)
    _stage("append-written")

    t_expected = np.concatenate([old[dim].values[: plan.write_from], staged[dim].values[plan.staged_from :]])

    def check(ds: xr.Dataset) -> None:
        if not np.array_equal(ds[dim].values, t_expected):
            raise ValueError(f"{dim} axis of the appended store is not the published one plus the new steps")
        for v, want in checks.items():
            vals = np.asarray(ds[v].isel({dim: slice(plan.write_from, None), **window}).values)
            n, total = int(np.isfinite(vals).sum()), float(np.nansum(vals, dtype="float64"))
            if n != want["count"] or not np.isclose(total, want["sum"], rtol=1e-6, atol=1e-3):
                raise ValueError(f"{v}: appended steps hold {n} values summing to {total}, wrote {want}")
        head = slice(0, min(plan.write_from, chunk))  # the first (shared) block still reads as published
        for v in ds.data_vars:
            if dim in ds[v].dims and head.stop:
                a = np.asarray(ds[v].isel({dim: head, **window}).values)
                b = np.asarray(old[v].isel({dim: head, **window}).values)
                if not np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
                    raise ValueError(f"{v}: the first block differs from the published version")
        old_sizes, new_sizes = _sizes(old_loc), _sizes(new_loc)
        wrong = [r for r in share if new_sizes.get(r) != old_sizes[r]]
        if wrong:
            raise ValueError(f"{len(wrong)} shared objects missing or of another size, e.g. {wrong[0]}")
        if validate is not None:
            validate(ds)

    def metadata(ds: xr.Dataset) -> dict[str, Any]:
        md = (catalog_metadata or describe)(ds)
        md["append"] = {
            "appended_to": cur["version"],
            "steps_added": plan.new_n - plan.old_n,
            "steps_written": plan.new_n - plan.write_from,
            "filled_in_overlap": plan.filled,
            "objects": stats,
        }
        return md

    return pub.commit(release, validate=check, catalog_metadata=metadata, update_catalog=True)


def _sizes(loc: Location) -> dict[str, int]:
    """Relative key -> size of every object under ``loc`` (one listing)."""
    found = loc.fs.find(loc.path, detail=True)
    return {p[len(loc.path) :].strip("/"): int(info["size"]) for p, info in found.items()}


def _write_coordinate(group: zarr.Group, dim: str, start: int, values: np.ndarray) -> None:
    """Write ``values`` into the coordinate array ``dim`` from ``start`` on, CF-encoded as the store's
    (xarray does not rewrite an existing index coordinate in a region write)."""
    arr = group[dim]
    assert isinstance(arr, zarr.Array)
    if np.issubdtype(values.dtype, np.datetime64):
        units, calendar = arr.attrs.get("units"), arr.attrs.get("calendar", "proleptic_gregorian")
        encoded, _, _ = xr.coding.times.encode_cf_datetime(values, units, calendar, dtype=arr.dtype)
        if not np.array_equal(xr.coding.times.decode_cf_datetime(encoded, units, calendar), values):
            raise AppendError(f"{dim} values cannot be encoded exactly with units {units!r}")
        values = np.asarray(encoded)
    arr[start : start + values.size] = values.astype(arr.dtype)


def _time_chunk(group: zarr.Group, dim: str) -> int:
    """The data variables' chunk length along ``dim`` (the largest, if they differ)."""
    best = 0
    for _, arr in group.arrays():
        dims = list(arr.metadata.dimension_names or [])
        if dim in dims and len(dims) > 1:
            best = max(best, arr.chunks[dims.index(dim)])
    return best


def published_by(pub: Publisher, name: str, recipe: str, recipe_version: str) -> dict[str, Any]:
    """The published manifest of ``name``; :class:`AppendError` when there is none or another recipe
    (or recipe version) made it (appending would mix two definitions of the values)."""
    cur = pub.current(name)
    if cur is None:
        raise AppendError(
            f"no published {name} under {pub.root.url} to append to: run the {recipe} recipe first"
        )
    if cur["recipe"] != recipe or cur["recipe_version"] != recipe_version:
        raise AppendError(
            f"published {name} was made by recipe {cur['recipe']} {cur['recipe_version']}, this is "
            f"{recipe} {recipe_version}: appending would mix them; run the full recipe"
        )
    return cur


@dataclass
class _Start:
    """What an append entry point knows before it builds anything."""

    pub: Publisher
    summary: RunSummary
    cur: dict[str, Any]  # the published manifest
    hashes: dict[str, str]  # input file -> sha256
    fresh: list[str]  # the input files whose content the published version lacks


def _start(
    source: str, target: str, name: str, recipe: str, recipe_version: str, files: list[str], what: str
) -> _Start:
    """The published version of ``name`` (:func:`published_by`) and which of ``files`` are new; the
    summary says why there is nothing to do when ``fresh`` is empty (no files, or all known)."""
    pub = Publisher(target)
    summary = RunSummary()
    cur = published_by(pub, name, recipe, recipe_version)
    hashes = iter_files(files)
    known = set(cur["inputs"].values())
    fresh = [f for f in files if hashes[f] not in known]
    if not files:
        summary.warnings.append(f"{source}: no {what} files")
    elif not fresh:
        summary.up_to_date[name] = cur["version"]
    return _Start(pub, summary, cur, hashes, fresh)


def _published(summary: RunSummary, manifest: dict[str, Any]) -> RunSummary:
    summary.published[manifest["name"]] = manifest["version"]
    return summary


def appended_release(cur: dict[str, Any], new_inputs: dict[str, str], files: list[str]) -> Release:
    """The release of the published version ``cur`` plus the inputs ``new_inputs`` (path -> sha256) it
    lacks: same name, recipe and description, ``params["append_of"]`` = the version it extends."""
    known = set(cur["inputs"].values())
    return Release(
        name=cur["name"],
        recipe=cur["recipe"],
        recipe_version=cur["recipe_version"],
        inputs={**cur["inputs"], **{f: h for f, h in new_inputs.items() if h not in known}},
        description=cur["description"],
        params={**cur["params"], "append_of": cur["version"]},
        synthetic=bool(cur.get("synthetic")) or inputs_are_synthetic(files),
    )


# ------------------------------------------------------------------------------------- ERA5
def append(
    source: str, target: str, name: str = "era5_daily_0p5deg", runner: str = "DirectRunner"
) -> RunSummary:
    """Append the ERA5 files under ``source`` (e.g. one new month) to the published ``name`` under ``target``.

    The files are scanned, planned and processed by the ERA5 recipe's own pipelines into a staging
    store under ``<target>/_runs/``; the complete days found there are appended with
    :func:`append_store`. To complete the published last day of an accumulated variable (its last
    hourly accumulation is stamped 00 UTC of the next day, in the new file), include the previous
    month's file in ``source``: the overlap then fills that day's missing values. Files already in
    the published version are not ingested again (a rerun is ``up_to_date``).
    """
    from fluxcube.recipes import era5

    if name != era5.DATASET:
        raise ValueError(f"append knows how to build new steps for {era5.DATASET} only, not {name!r}")
    files = era5.find_files(source)
    st = _start(source, target, name, era5.RECIPE, era5.RECIPE_VERSION, files, "GRIB or NetCDF")
    if not st.fresh:
        return st.summary
    pub, summary, cur, new_inputs = st.pub, st.summary, st.cur, st.hashes
    run_dir = pub.root.child("_runs", f"{era5.RECIPE}-append-{uuid.uuid4().hex[:12]}")
    try:
        infos, summary.refused = era5.scan_files(files, runner, run_dir.url)
        if summary.refused:
            summary.warnings.append("input refused: nothing appended")
            return summary
        summary.skipped += [n for i in infos for n in i.notes]
        plan_ = era5.plan(infos)
        summary.warnings += plan_.notes
        if not plan_.days:
            summary.warnings.append("no complete day of any product: nothing appended")
            return summary
        staging = run_dir.child("staging.zarr")
        era5.write_template(staging, plan_, {})
        era5.write_blocks(plan_, infos, staging, runner, run_dir.url)
        checks = read_checks(run_dir.url)
        failed = [r for r in _read(run_dir.url, "refused") if r not in summary.refused]
        if failed or len(checks) != len(plan_.blocks()):
            summary.refused += failed
            summary.warnings.append("some blocks failed: nothing appended")
            return summary
        staged = xr.open_zarr(staging.zarr_store(read_only=True), consolidated=False, zarr_format=3)
        try:
            era5.validate(staged, checks, plan_.products, plan_.window)
        except ValueError as err:
            summary.warnings.append(f"staged days failed validation: {err}: nothing appended")
            return summary
        release = appended_release(cur, new_inputs, files)
        old_dropped = json.loads(pub.open(name).attrs.get("dropped", "[]"))

        def ranges(ds: xr.Dataset) -> None:
            i0, i1, j0, j1 = plan_.window
            new = ds.isel(time=slice(-len(plan_.days), None), lat=slice(i0, i1), lon=slice(j0, j1))
            for p in plan_.products:
                v = np.asarray(new[p].values)
                lo, hi = era5.RANGES[p]
                if np.isfinite(v).any() and (np.nanmin(v) < lo or np.nanmax(v) > hi):
                    raise ValueError(f"{p}: appended values outside {lo}..{hi} {era5.PRODUCTS[p]['units']}")

        try:
            manifest = append_store(
                pub,
                release,
                staged,
                attrs={"dropped": json.dumps(old_dropped + plan_.notes)},
                validate=ranges,
                catalog_metadata=lambda ds: {
                    **describe(ds),
                    "refused": [],
                    "data_extent": _union_extent(cur["metadata"].get("data_extent"), plan_.window),
                    "decoded_bytes": sum(c["decoded_bytes"] for c in checks),
                },
                window={
                    "lat": slice(plan_.window[0], plan_.window[1]),
                    "lon": slice(plan_.window[2], plan_.window[3]),
                },
            )
        except AppendError as err:
            raise InputError(source, str(err)) from err
        return _published(summary, manifest)
    finally:
        run_dir.remove()


def _union_extent(old: dict[str, float] | None, window: tuple[int, int, int, int]) -> dict[str, float]:
    """The published data extent (degrees) grown by the new days' window (0.5 degree grid indices)."""
    from fluxcube.recipes.era5 import data_extent

    new = data_extent(window)
    if not old:
        return new
    return {k: (min if k.endswith("min") else max)(old[k], new[k]) for k in new}


def read_checks(run_dir: str) -> list[dict[str, Any]]:
    return _read(run_dir, "checks")


def _read(run_dir: str, kind: str) -> list[dict[str, Any]]:
    from fluxcube.recipes.transforms import read_records

    return read_records(run_dir, kind)


# ------------------------------------------------------------------------------------- GFAS
def append_gfas(source: str, target: str, runner: str = "DirectRunner") -> RunSummary:
    """Append the new GFAS days under ``source`` (e.g. a new day's or month's files) to the published
    ``gfas_fire_daily_0p5deg`` under ``target`` without rewriting it.

    Only files whose content is not among the published version's inputs (sha256) are ingested, so
    ``source`` may be the whole download folder; their days are built by the GFAS recipe's own scan,
    plan and block pipeline into a staging store under ``<target>/_runs/`` and appended with
    :func:`append_store` (new days must follow the store's end; a day already published may come again
    only unchanged). Nothing new: ``up_to_date``. Bad input: refused, nothing published.
    """
    from fluxcube.recipes import gfas

    name = gfas.DATASET
    files = gfas.find_files(source)
    st = _start(source, target, name, gfas.RECIPE, gfas.RECIPE_VERSION, files, "NetCDF")
    if not st.fresh:
        return st.summary
    pub, summary, cur, new_inputs, fresh = st.pub, st.summary, st.cur, st.hashes, st.fresh
    summary.skipped += [f"{f}: already in version {cur['version']}" for f in files if f not in fresh]
    run_dir = pub.root.child("_runs", f"{gfas.RECIPE}-append-{uuid.uuid4().hex[:12]}")
    try:
        infos, summary.refused = read_files_on_beam(fresh, gfas.scan, run_dir, runner)
        if summary.refused:
            summary.warnings.append("input refused: nothing appended")
            return summary
        days, where, notes = gfas.plan(infos)
        summary.warnings += notes
        used = {path for path, _ in where.values()}
        win = gfas.window([i for i in infos if i["path"] in used])
        staging = run_dir.child("staging.zarr")
        gfas.write_template(staging, days, {})
        blocks = gfas.write_blocks(days, where, infos, win, staging, runner, run_dir.url)
        checks = read_checks(run_dir.url)
        failed = _read(run_dir.url, "refused")
        if failed or len(checks) != len(blocks):
            summary.refused += failed
            summary.warnings.append("some blocks failed: nothing appended")
            return summary
        staged = xr.open_zarr(staging.zarr_store(read_only=True), consolidated=False, zarr_format=3)
        try:
            gfas.validate(staged, checks, win)
        except ValueError as err:
            summary.warnings.append(f"staged days failed validation: {err}: nothing appended")
            return summary
        release = appended_release(cur, {f: new_inputs[f] for f in fresh}, fresh)
        old_dropped = json.loads(pub.open(name).attrs.get("dropped", "[]"))
        i0, i1, j0, j1 = win

        def ranges(ds: xr.Dataset) -> None:
            v = np.asarray(
                ds[gfas.PRODUCT].isel(time=slice(-len(days), None), lat=slice(i0, i1), lon=slice(j0, j1))
            )
            if np.isfinite(v).any() and (np.nanmin(v) < 0 or np.nanmax(v) > gfas.FIRE_MAX):
                raise ValueError(f"{gfas.PRODUCT}: appended values outside 0..{gfas.FIRE_MAX} g C m-2 d-1")

        try:
            manifest = append_store(
                pub,
                release,
                staged,
                attrs={"dropped": json.dumps(old_dropped + notes)},
                validate=ranges,
                catalog_metadata=lambda ds: {
                    **describe(ds),
                    "refused": [],
                    "data_extent": _union_extent(cur["metadata"].get("data_extent"), win),
                },
                window={"lat": slice(i0, i1), "lon": slice(j0, j1)},
            )
        except AppendError as err:
            raise InputError(source, str(err)) from err
        return _published(summary, manifest)
    finally:
        run_dir.remove()
