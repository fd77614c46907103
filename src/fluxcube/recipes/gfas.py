"""The GFAS recipe: CAMS GFAS daily fire CO2 emissions (NetCDF) -> daily fire carbon flux, 0.5 degree Zarr.

Input: CAMS Global Fire Assimilation System daily files in their NetCDF layout: variable ``co2fire``
("Wildfire flux of Carbon Dioxide", units ``kg m**-2 s**-1``, the day's mean rate of CO2 mass), dimensions
(``time`` or ``valid_time``, ``latitude``, ``longitude``), one time step per UTC day stamped 00:00 UTC.
The real product is on a 0.1 degree grid (latitude descending 89.95..-89.95, longitude 0.05..359.95);
the simulated world's files (:mod:`fluxcube.simulate.world`) use the same layout on the world's grid.
Packed values (``scale_factor``/``add_offset``) and fill values are decoded; missing values stay NaN.

Product ``fire_c`` (g C m-2 d-1), the carbon emitted by fires as CO2::

    fire_c = co2fire [kg CO2 m-2 s-1] x 86400 s d-1 x 1000 g kg-1 x 12.011 / 44.0095 (g C per g CO2)

Grid: the 0.5 degree grid of :mod:`fluxcube.recipes.regions`. A source grid as fine as or finer than
0.5 degree is regridded first-order conservatively (area-weighted, exact spherical overlap weights:
:class:`fluxcube.recipes.era5.Regridder`); the 0.1 degree GFAS grid becomes 5x5 block means weighted by
cell area. A coarser source grid must nest in the 0.5 degree grid (its cell edges on 0.5 degree edges);
each of its cells then gives its flux density to the 0.5 degree cells inside it (also conservative);
anything else is refused. Longitudes 0..360 become -180..180; output cells not fully covered are NaN.

Store: ``gfas_fire_daily_0p5deg``, (time, lat, lon), float32, chunks (32 days, 90, 90) like ERA5, the
days present in the inputs (a day in two files is taken from the first file, by path, with a note).
Pipelines: Beam pipeline 1 scans each file (variable, units, dimensions, grid, times) and refuses bad
files; Beam pipeline 2 processes 32-day blocks (one block = one time chunk). The store is validated
(per-block counts and sums, 0 <= fire_c <= :data:`FIRE_MAX`) and published with :class:`Publisher`. A
file refused at any stage (missing ``co2fire``, wrong units, truncated) means nothing is published.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from fluxcube.catalog import describe
from fluxcube.errors import InputError
from fluxcube.publish import Publisher, Release, iter_files
from fluxcube.recipes import gridcube
from fluxcube.recipes.era5 import SPACE_CHUNK, TIME_CHUNK, check_grid, data_extent, regridder
from fluxcube.recipes.fluxnet_pipeline import RunSummary
from fluxcube.recipes.regions import LAT, LON, RESOLUTION
from fluxcube.recipes.transforms import (
    inputs_are_synthetic,
    read_files_on_beam,
    read_records,
)
from fluxcube.storage import Location

RECIPE = "gfas"
RECIPE_VERSION = "1.0.0"
DATASET = "gfas_fire_daily_0p5deg"
VARIABLE = "co2fire"
PRODUCT = "fire_c"
NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf")
UNITS = ("kg m**-2 s**-1", "kg m-2 s-1", "kg/m2/s", "kg m^-2 s^-1", "kg/m^2/s", "kg m**-2 s-1")
M_C, M_CO2 = 12.011, 44.0095  # g mol-1
#: kg CO2 m-2 s-1 (daily mean rate) -> g C m-2 d-1
TO_G_C_PER_DAY = 86400.0 * 1000.0 * M_C / M_CO2
FIRE_MAX = 1.0e4  # g C m-2 d-1: above any plausible daily fire emission
ATTRS = {
    "units": "g C m-2 d-1",
    "long_name": "carbon emitted by fires as CO2 (daily mean flux, positive = to the atmosphere)",
    "cell_methods": "time: mean (UTC day) area: mean",
    "source": "CAMS GFAS co2fire (kg CO2 m-2 s-1) x 86400 s x 1000 g/kg x 12.011/44.0095",
}
DAY = np.timedelta64(1, "D")


def find_files(source: str) -> list[str]:
    """GFAS NetCDF files under ``source`` (a file or a folder, searched recursively), sorted."""
    p = Path(source)
    if p.is_file():
        return [str(p)]
    if not p.is_dir():
        raise InputError(source, "no such file or folder")
    return sorted(str(f) for f in p.rglob("*") if f.is_file() and f.suffix.lower() in NETCDF_SUFFIXES)


def _coord(ds: xr.Dataset, names: tuple[str, ...]) -> str | None:
    return next((n for n in names if n in ds.variables), None)


def check_nesting(path: str, lat: np.ndarray, lon: np.ndarray, name: str = VARIABLE) -> None:
    """A grid coarser than 0.5 degree must have its cell edges on 0.5 degree edges."""
    for axis, values in (("latitude", lat), ("longitude", lon)):
        d = abs(float(values[1] - values[0]))
        if d <= RESOLUTION + 1e-6:
            continue
        edges = values - d / 2
        if axis == "latitude":
            edges = np.clip(edges, -90.0, 90.0)
        steps = np.array([d, *edges]) / RESOLUTION
        if np.abs(steps - np.round(steps)).max() > 1e-4:
            raise InputError(
                path,
                f"{name}: {axis} spacing {d:g} degrees is coarser than 0.5 degree and its cells do not "
                "nest in the 0.5 degree grid (edges not on multiples of 0.5 degree)",
                column=name,
            )


def regular(values: np.ndarray) -> np.ndarray:
    """A regular axis rebuilt in float64 from its first point and mean spacing, rounded to 1e-5 degrees
    (coordinates stored as float32, as in GFAS files, are off by up to ~1e-6 degrees)."""
    step = (values[-1] - values[0]) / (values.size - 1)
    return np.round(values[0] + step * np.arange(values.size), 5)


def source_grid(path: str, name: str, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check a source grid (degrees) of variable ``name`` in file ``path``: regular, finer than or
    nesting in the 0.5 degree grid, covering at least one 0.5 degree cell; return its axes snapped to a
    regular float64 axis (:func:`regular`). Bad grid: :class:`InputError` naming the file and variable."""
    check_grid(path, name, lat, lon)
    lat, lon = regular(lat), regular(lon)
    check_nesting(path, lat, lon, name)
    try:
        regridder(lat, lon)
    except ValueError as err:
        raise InputError(path, f"{name}: {err}", column=name) from err
    return lat, lon


def scan(path: str) -> dict[str, Any]:
    """Check one GFAS file's metadata (no data values); return its layout, grid and days."""
    try:
        ds = xr.open_dataset(path, decode_timedelta=False, cache=False)
    except Exception as err:  # netCDF4/HDF5 raise OSError, ValueError, RuntimeError...
        raise InputError(path, f"cannot open as NetCDF (truncated or corrupt?): {err}") from err
    with ds:
        if VARIABLE not in ds.data_vars:
            raise InputError(path, f"no variable {VARIABLE!r} (found {sorted(map(str, ds.data_vars))})")
        var = ds[VARIABLE]
        units = str(var.attrs.get("units", "")).strip()
        if units not in UNITS:
            raise InputError(
                path,
                f"{VARIABLE}: units {units!r}, expected 'kg m**-2 s**-1' (kg CO2 m-2 s-1)",
                column=VARIABLE,
            )
        tdim = next((d for d in ("time", "valid_time") if d in var.dims), None)
        lat_name = _coord(ds, ("latitude", "lat"))
        lon_name = _coord(ds, ("longitude", "lon"))
        if (
            tdim is None
            or lat_name is None
            or lon_name is None
            or set(var.dims) != {tdim, lat_name, lon_name}
        ):
            raise InputError(
                path,
                f"{VARIABLE}: dimensions {var.dims}, expected (time, latitude, longitude)",
                column=VARIABLE,
            )
        times = ds[tdim].values
        if not np.issubdtype(times.dtype, np.datetime64):
            raise InputError(path, f"{tdim}: cannot decode times (units {ds[tdim].attrs.get('units')!r})")
        times = times.astype("datetime64[s]")
        if np.any(times != times.astype("datetime64[D]")):
            raise InputError(path, f"{tdim}: times not at 00:00 UTC (expected one daily mean per UTC day)")
        if np.unique(times).size != times.size:
            raise InputError(path, f"{tdim}: a day occurs twice")
        lat = np.atleast_1d(ds[lat_name].values).astype("float64")
        lon = np.atleast_1d(ds[lon_name].values).astype("float64")
    lat, lon = source_grid(path, VARIABLE, lat, lon)
    return {
        "path": path,
        "time_dim": tdim,
        "lat_dim": lat_name,
        "lon_dim": lon_name,
        "days": [str(t) for t in times.astype("datetime64[D]")],
        "lat": [round(float(x), 6) for x in lat],
        "lon": [round(float(x), 6) for x in lon],
    }


def plan(infos: list[dict[str, Any]]) -> tuple[list[str], dict[str, list[Any]], list[str]]:
    """Days of the store (sorted), day -> [file, index along time] and notes (days in two files)."""
    where: dict[str, list[Any]] = {}
    notes: list[str] = []
    for info in sorted(infos, key=lambda i: i["path"]):
        dup = [d for d in info["days"] if d in where]
        if dup:
            notes.append(f"{info['path']}: {len(dup)} days already in another file: not used")
        for k, d in enumerate(info["days"]):
            where.setdefault(d, [info["path"], k])
    days = sorted(where)
    if days:
        span = (np.datetime64(days[-1]) - np.datetime64(days[0])) // DAY + 1
        if span != len(days):
            notes.append(f"{span - len(days)} days missing between {days[0]} and {days[-1]}")
    return days, where, notes


def window(infos: list[dict[str, Any]]) -> tuple[int, int, int, int]:
    """Chunk-aligned window (i0, i1, j0, j1) of the 0.5 degree grid that the inputs cover."""
    i0, i1, j0, j1 = LAT.size, 0, LON.size, 0
    for info in infos:
        r = regridder(info["lat"], info["lon"])
        i0, i1, j0, j1 = min(i0, r.i0), max(i1, r.i1), min(j0, r.j0), max(j1, r.j1)
    c = SPACE_CHUNK
    return (i0 // c) * c, min(LAT.size, -(-i1 // c) * c), (j0 // c) * c, min(LON.size, -(-j1 // c) * c)


_OPEN: dict[tuple[str, int, int, int], xr.Dataset] = {}  # the file read_days opened last


def _opened(path: str) -> xr.Dataset:
    """The file opened lazily, kept open for the next blocks (a yearly file holds 12 blocks; opening and
    decoding it costs about 10 ms each time); a changed file (size, mtime, inode) is opened again."""
    st = os.stat(path)
    key = (path, st.st_mtime_ns, st.st_size, st.st_ino)
    if key not in _OPEN:
        while _OPEN:  # one file open at a time: its HDF5 chunk cache is freed with it
            _OPEN.pop(next(iter(_OPEN))).close()
        _OPEN[key] = xr.open_dataset(path, decode_timedelta=False, cache=False)
    return _OPEN[key]


def close_files() -> None:
    """Close the file :func:`read_days` keeps open."""
    while _OPEN:
        _OPEN.pop(next(iter(_OPEN))).close()


def read_days(info: dict[str, Any], index: list[int]) -> np.ndarray:
    """co2fire (time, lat, lon) in kg m-2 s-1 on the source grid; a failed read is an InputError."""
    path = info["path"]
    try:
        ds = _opened(path)
        idx = np.asarray(index)
        sel = (
            slice(int(idx[0]), int(idx[-1]) + 1)
            if np.array_equal(idx, np.arange(idx[0], idx[-1] + 1))
            else idx
        )
        var = ds[VARIABLE].isel({info["time_dim"]: sel})
        return np.asarray(var.transpose(info["time_dim"], info["lat_dim"], info["lon_dim"]).values, "float64")
    except Exception as err:
        for key in [k for k in _OPEN if k[0] == path]:
            _OPEN.pop(key).close()
        raise InputError(path, f"cannot read {VARIABLE}: {err} (truncated or corrupt file?)") from err


def process_block(
    start: int,
    stop: int,
    days: list[str],
    where: dict[str, list[Any]],
    infos: dict[str, dict[str, Any]],
    win: tuple[int, int, int, int],
    store: Location,
    offset: int = 0,
) -> dict[str, Any]:
    """Read, convert and regrid the days ``start:stop`` of the store; write them; return checks.

    ``days[start - offset:stop - offset]`` are those days (``offset``: the store index of ``days[0]``
    when ``days`` holds only part of them, see :func:`write_blocks`)."""
    i0, i1, j0, j1 = win
    out = np.full((stop - start, i1 - i0, j1 - j0), np.nan, dtype="float32")
    by_file: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for k, day in enumerate(days[start - offset : stop - offset]):
        path, index = where[day]
        by_file[path].append((k, index))
    for path, items in by_file.items():
        info = infos[path]
        fields = read_days(info, [i for _, i in items])
        neg = fields < 0
        if neg.any():
            raise InputError(
                path, f"{VARIABLE}: {int(neg.sum())} negative values (min {np.nanmin(fields):.3g})"
            )
        r = regridder(info["lat"], info["lon"])
        ks = [k for k, _ in items]
        rows = slice(ks[0], ks[-1] + 1) if ks[-1] - ks[0] + 1 == len(ks) else ks  # a slice: no fancy copy
        out[rows, r.i0 - i0 : r.i1 - i0, r.j0 - j0 : r.j1 - j0] = r(fields * TO_G_C_PER_DAY)
    checks = gridcube.write_block(store, {PRODUCT: out}, slice(start, stop), slice(i0, i1), slice(j0, j1))
    return {"block": [start, stop], "checks": checks}


def write_template(store: Location, days: list[str], attrs: dict[str, Any]) -> None:
    """Coordinates, attributes and the empty (unwritten) float32 variable of the store."""
    time_attrs = {
        "standard_name": "time",
        "long_name": "UTC day",
        "comment": "start of the UTC day (00:00 UTC)",
    }
    gridcube.write_template(store, days, {PRODUCT: ATTRS}, attrs, time_attrs)


def validate(ds: xr.Dataset, checks: list[dict[str, Any]], win: tuple[int, int, int, int]) -> None:
    """Each block's count and sum come back from the store; 0 <= fire_c <= FIRE_MAX."""
    if PRODUCT not in ds:
        raise ValueError(f"{PRODUCT} missing from the store")
    i0, i1, j0, j1 = win
    for c in checks:
        s0, s1 = c["block"]
        v = np.asarray(ds[PRODUCT].isel(time=slice(s0, s1), lat=slice(i0, i1), lon=slice(j0, j1)).values)
        want = c["checks"][PRODUCT]
        got = gridcube.count_sum(v)
        n, total = got["count"], got["sum"]
        if n != want["count"] or not np.isclose(total, want["sum"], rtol=1e-6, atol=1e-3):
            raise ValueError(
                f"{PRODUCT} days {s0}:{s1}: store has {n} values summing to {total}, wrote {want}"
            )
        vmin, vmax = gridcube.finite_range(v)
        if n and (vmin < 0 or vmax > FIRE_MAX):
            raise ValueError(f"{PRODUCT}: values {vmin:.4g}..{vmax:.4g} outside 0..{FIRE_MAX}")


def write_blocks(
    days: list[str],
    where: dict[str, list[Any]],
    infos: list[dict[str, Any]],
    win: tuple[int, int, int, int],
    store: Location,
    runner: str,
    run_dir: str,
) -> list[tuple[int, int]]:
    """Beam pipeline 2: one element per 32-day block (= one time chunk); return the blocks.

    Each element carries its own days, their sources and files: the transform itself stays small (it is
    pickled with the pipeline) and a block's payload does not grow with the run."""
    by_path = {i["path"]: i for i in infos}
    blocks = [(s, min(len(days), s + TIME_CHUNK)) for s in range(0, len(days), TIME_CHUNK)]
    tasks = []
    for s, e in blocks:
        part = days[s:e]
        sources = {d: where[d] for d in part}
        files = {path: by_path[path] for path, _ in sources.values()}
        tasks.append((s, e, (part, sources, files)))

    def work(task: tuple[int, int, Any]) -> dict[str, Any]:
        s, e, (part, sources, files) = task
        return process_block(s, e, part, sources, files, win, store, offset=s)

    try:
        gridcube.process_blocks_on_beam(tasks, work, run_dir, runner)
    finally:
        close_files()
    return blocks


def run(source: str, target: str, runner: str = "DirectRunner", force: bool = False) -> RunSummary:
    """Ingest the GFAS files under ``source`` into ``gfas_fire_daily_0p5deg`` published under ``target``."""
    pub = Publisher(target)
    files = find_files(source)
    summary = RunSummary()
    if not files:
        summary.warnings.append(f"{source}: no NetCDF files")
        return summary
    # Beam pipeline 1 over a pangeo-forge FilePattern of the files
    infos, summary.refused = read_files_on_beam(files, scan, pub.root.child("_runs"), runner)
    if summary.refused:
        summary.warnings.append("refused input: nothing published")
        return summary
    days, where, notes = plan(infos)
    summary.warnings += notes
    used = sorted({path for path, _ in where.values()})
    release = Release(
        name=DATASET,
        recipe=RECIPE,
        recipe_version=RECIPE_VERSION,
        inputs=iter_files(used),
        description="CAMS GFAS daily fire carbon emissions (fire_c, g C m-2 d-1) on the 0.5 degree grid",
        params={"grid": "0.5deg", "regrid": "conservative", "chunks": [TIME_CHUNK, SPACE_CHUNK, SPACE_CHUNK]},
        synthetic=inputs_are_synthetic(used),
    )
    store = pub.prepare(release, force=force)
    if store is None:
        summary.up_to_date[DATASET] = release.version
        return summary
    win = window([i for i in infos if i["path"] in used])
    attrs = {
        **release.provenance(),
        "title": "CAMS GFAS daily fire carbon emissions, 0.5 degree",
        "Conventions": "CF-1.10",
        "institution": "derived by fluxcube from CAMS GFAS (Copernicus Atmosphere Monitoring Service)",
        "conversion": "fire_c [g C m-2 d-1] = co2fire [kg CO2 m-2 s-1] x 86400 x 1000 x 12.011 / 44.0095",
        "regridding": "first-order conservative (area-weighted, exact spherical cell-overlap weights); "
        "cells not fully covered by the source grid are NaN",
        "dropped": json.dumps(notes),
        "license": "Contains modified Copernicus Atmosphere Monitoring Service information",
    }
    run_dir = pub.root.child("_runs", f"{RECIPE}-{uuid.uuid4().hex[:12]}")
    try:
        write_template(store, days, attrs)
        blocks = write_blocks(days, where, infos, win, store, runner, run_dir.url)
        checks = read_records(run_dir.url, "checks")
        failed = read_records(run_dir.url, "refused")
        if failed or len(checks) != len(blocks):
            summary.refused += sorted(failed, key=lambda r: r["file"])
            summary.warnings.append("some blocks failed: nothing published")
            return summary
        pub.commit(
            release,
            validate=lambda ds: validate(ds, checks, win),
            catalog_metadata=lambda ds: {
                **describe(ds),
                "refused": summary.refused,
                "data_extent": data_extent(win),
            },
            update_catalog=True,
        )
        summary.published[DATASET] = release.version
        return summary
    finally:
        run_dir.remove()
