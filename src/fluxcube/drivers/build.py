"""Build and publish the two driver stores on the Dask cluster.

Inputs, opened through the :class:`~fluxcube.publish.Publisher` (their published versions are the
provenance of the outputs): ``era5_daily_0p5deg`` (Tair degC, P mm d-1, Rg W m-2), ``modis_8day_0p5deg``
(EVI, fAPAR, LST_day, LST_night, MIR, NDVI, NDWI on 8-day composite start dates), ``regions_land_0p5deg``
(region_id: the land mask) and the daily NEE targets (``sites_processed_dd`` or ``fluxnet2015_dd``).

**Global driver cube** ``drivers_land_0p5deg``: land pixels packed along one ``pixel`` dimension. Land =
the cells with a RECCAP2 region (``region_id`` 1..18: land_fraction >= 0.5 with a region majority;
Greenland and Antarctica are left out), in the order of the input chunks (see :func:`land_pixels`), with
``lat``, ``lon``, ``row``, ``col`` (grid indices, to unpack to maps), ``cell_area``, ``land_fraction``
and ``region_id`` along ``pixel``. Variables: daily drivers (time, pixel) in chunks of
:data:`TIME_CHUNK` days x :data:`PIXEL_CHUNK` pixels; mean seasonal cycles and Rpot (dayofyear, pixel)
in chunks of (366, :data:`PIXEL_CHUNK`); seasonal metrics (pixel). One Dask task per run of whole pixel
chunks (at most :data:`MAX_TASK_PIXELS` pixels) walks the whole record (the bucket's state goes forward in
time) and writes only its own chunks; memory per task is one time chunk of its pixels, whatever the grid
size or record length.

**Site driver store** ``drivers_sites_dd``: dimensions (site, time) exactly as the targets'; each site
takes the drivers of the 0.5 degree cell containing it (``cell_lat``, ``cell_lon``), Rpot at the
site's own latitude, the mean seasonal cycles on each date's day of year. Target days (local days at
the towers) are matched to ERA5's UTC days by date. Days outside the ERA5 record are NaN.

:func:`driver_matrix` turns either store into the (..., driver) matrix a model reads.
"""

from __future__ import annotations

import json
import logging
import resource
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
import zarr

from fluxcube.catalog import describe
from fluxcube.drivers import seasonal
from fluxcube.drivers.pixels import ERA5_NEEDS, MODIS_NEEDS, Sources, cell_drivers, cell_index
from fluxcube.drivers.radiation import daily_potential_radiation
from fluxcube.drivers.table import DAILY, DRIVERS, METRICS, SEASONAL, STATIC
from fluxcube.errors import InputError
from fluxcube.publish import Publisher, Release, iter_files
from fluxcube.recipes import era5, gridcube, regions
from fluxcube.recipes.fluxnet_pipeline import RunSummary
from fluxcube.recipes.regions import LAT, LON
from fluxcube.storage import location

log = logging.getLogger(__name__)

RECIPE = "drivers"
RECIPE_VERSION = "1.0.0"
CUBE_DATASET = "drivers_land_0p5deg"
SITES_DATASET = "drivers_sites_dd"
MODIS_DATASET = "modis_8day_0p5deg"
TARGET_DATASETS = ("sites_processed_dd", "fluxnet2015_dd")
TIME_CHUNK = 96  # days per chunk of the daily drivers (3 input time chunks; measured: docs/drivers.md)
PIXEL_CHUNK = 8192  # land pixels per chunk (about one input (90, 90) chunk's worth of land)
MAX_TASK_PIXELS = 8192  # pixels per Dask task at most (memory per task: see docs/drivers.md)
#: Physical ranges (driver units); a value outside fails validation. MSC metrics share their MSC's.
RANGES = {
    "Tair": (-90.0, 60.0),
    "Rg": (0.0, 600.0),
    "WAI": (0.0, 1.0),
    "Rpot": (0.0, 600.0),
    "EVI_msc": (-1.0, 1.0),
    "fAPAR_msc": (0.0, 1.0),
    "LST_day_msc": (150.0, 380.0),
    "LST_night_msc": (150.0, 380.0),
    "MIR_msc": (0.0, 1.0),
    "NDVI_msc": (-1.0, 1.0),
    "NDWI_msc": (-1.0, 1.0),
}
_TIME_ENCODING = {"units": "days since 1970-01-01", "calendar": "proleptic_gregorian", "dtype": "int32"}


# ------------------------------------------------------------------------------------------ inputs
@dataclass
class InputStore:
    """One published input store: name, version id, URL of that version, synthetic flag."""

    name: str
    version: str
    url: str
    manifest: str  # URL of the version's manifest (JSON)
    synthetic: bool


def input_store(pub: Publisher, name: str) -> InputStore:
    """The published version of ``name``; :class:`InputError` when there is none."""
    cur = pub.current(name)
    if cur is None:
        raise InputError(pub.dataset(name).url, f"no published store {name!r}: build it first")
    url = pub.store_location(name, cur["version"]).url
    manifest = pub.manifest_location(name, cur["version"]).url
    return InputStore(name, cur["version"], url, manifest, bool(cur.get("synthetic", False)))


def check_grid_store(ds: xr.Dataset, store: InputStore, needs: dict[str, str]) -> None:
    """A (time, lat, lon) store on the full 0.5 degree grid with ``needs`` (variable -> units)."""
    for dim, want in (("lat", LAT), ("lon", LON)):
        if dim not in ds.coords or ds[dim].size != want.size or not np.allclose(ds[dim].values, want):
            raise InputError(
                store.url, f"coordinate {dim!r} is not the 0.5 degree grid {want[0]}..{want[-1]}"
            )
    for name, units in needs.items():
        if name not in ds:
            raise InputError(store.url, f"variable missing; expected {name} in {units}", column=name)
        if ds[name].dims != ("time", "lat", "lon"):
            raise InputError(store.url, f"dimensions {ds[name].dims}, expected (time, lat, lon)", column=name)
        got = ds[name].attrs.get("units")
        if got != units:
            raise InputError(store.url, f"units {got!r}, expected {units!r}", column=name)


def _grid_inputs(pub: Publisher) -> tuple[InputStore, InputStore, xr.Dataset]:
    e5, md = input_store(pub, era5.DATASET), input_store(pub, MODIS_DATASET)
    era5_ds = pub.open(e5.name)
    check_grid_store(era5_ds, e5, ERA5_NEEDS)
    check_grid_store(pub.open(md.name), md, MODIS_NEEDS)
    return e5, md, era5_ds


def _release(name: str, stores: list[InputStore], description: str, params: dict[str, Any]) -> Release:
    """A release whose inputs are the input stores' published versions (content hashes)."""
    return Release(
        name=name,
        recipe=RECIPE,
        recipe_version=RECIPE_VERSION,
        inputs=iter_files([s.manifest for s in stores]),  # each manifest names its store and version
        description=description,
        params={**params, "input_stores": {s.name: s.version for s in stores}},
        synthetic=any(s.synthetic for s in stores),
    )


def _attrs(stores: list[InputStore], title: str) -> dict[str, Any]:
    """Store attributes besides the provenance: title, input store versions, the driver table."""
    return {
        "title": title,
        "Conventions": "CF-1.10",
        "input_stores": json.dumps({s.name: s.version for s in stores}),
        "driver_table": json.dumps({n: d.attrs() | {"time_step": d.time_step} for n, d in DRIVERS.items()}),
    }


def peak_rss_mib() -> float:
    """Peak resident memory of this process (MiB): VmHWM from /proc (reset by exec, unlike ru_maxrss,
    which a child started by fork + exec inherits from its parent), else ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _checks(values: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    return {
        k: {"count": int(np.isfinite(v).sum()), "sum": float(np.nansum(v, dtype="float64"))}
        for k, v in values.items()
    }


def check_values(name: str, v: np.ndarray, want: dict[str, float] | None, where: str) -> None:
    """Raise ValueError when ``v`` differs from what was written (``want``: count and sum) or leaves the
    driver's physical range."""
    n, total = int(np.isfinite(v).sum()), float(np.nansum(v, dtype="float64"))
    if want is not None and (n != want["count"] or not np.isclose(total, want["sum"], rtol=1e-5, atol=1e-2)):
        raise ValueError(f"{name} {where}: store has {n} values summing to {total}, wrote {want}")
    base = name if name in RANGES else name.rsplit("_", 1)[0]
    lo, hi = RANGES[base]
    if n and name.endswith("_amp"):
        lo, hi = 0.0, hi - lo
    if n and (np.nanmin(v) < lo - 1e-6 or np.nanmax(v) > hi + 1e-6):
        units = DRIVERS[name].units
        raise ValueError(
            f"{name} {where}: values {np.nanmin(v):.4g}..{np.nanmax(v):.4g} outside {lo}..{hi} {units}"
        )


# -------------------------------------------------------------------------------------- the cube
def land_pixels(mask: xr.Dataset) -> xr.Dataset:
    """The packed land pixels of the regions store: coordinates along ``pixel``, in the order of the input
    stores' (90, 90) chunks (tiles in row-major order, cells in row-major order inside each tile), so that
    a run of pixels reads few input chunks."""
    rid = np.asarray(mask["region_id"].values)
    rows, cols = np.nonzero(rid > 0)
    tile = gridcube.SPACE_CHUNK
    order = np.lexsort((cols, rows, cols // tile, rows // tile))
    rows, cols = rows[order], cols[order]
    area = np.asarray(mask["cell_area"].values)[rows, cols]
    frac = np.asarray(mask["land_fraction"].values)[rows, cols]
    return xr.Dataset(
        coords={
            "pixel": ("pixel", np.arange(rows.size, dtype="int32"), {"long_name": "packed land pixel index"}),
            "lat": (
                "pixel",
                LAT[rows],
                {
                    "units": "degrees_north",
                    "standard_name": "latitude",
                    "long_name": "latitude of cell centre",
                },
            ),
            "lon": (
                "pixel",
                LON[cols],
                {
                    "units": "degrees_east",
                    "standard_name": "longitude",
                    "long_name": "longitude of cell centre",
                },
            ),
            "row": (
                "pixel",
                rows.astype("int16"),
                {"long_name": "row of the cell in the 0.5 degree grid (0 = -89.75)", "units": "1"},
            ),
            "col": (
                "pixel",
                cols.astype("int16"),
                {"long_name": "column of the cell in the 0.5 degree grid (0 = -179.75)", "units": "1"},
            ),
            "cell_area": (
                "pixel",
                area.astype("float64"),
                {"units": "m2", "long_name": "cell area (sphere)"},
            ),
            "land_fraction": ("pixel", frac.astype("float32"), {"units": "1", "long_name": "land fraction"}),
            "region_id": ("pixel", rid[rows, cols].astype("int8"), {"long_name": "RECCAP2 land region"}),
        }
    )


def write_cube_template(
    store_url: str,
    pixels: xr.Dataset,
    time: np.ndarray,
    attrs: dict[str, Any],
    time_chunk: int = TIME_CHUNK,
    pixel_chunk: int = PIXEL_CHUNK,
) -> None:
    """Coordinates, attributes and empty (unwritten) float32 driver variables of the cube."""
    nt, npix = time.size, pixels.sizes["pixel"]
    doy = np.arange(1, 367, dtype="int16")
    data: dict[str, Any] = {}
    encoding: dict[str, Any] = {"time": dict(_TIME_ENCODING)}
    for name in DRIVERS:
        step = DRIVERS[name].time_step
        dims, shape, chunks = {
            "daily": (("time", "pixel"), (nt, npix), (min(time_chunk, nt), pixel_chunk)),
            "day of year": (("dayofyear", "pixel"), (366, npix), (366, pixel_chunk)),
            "static": (("pixel",), (npix,), (pixel_chunk,)),
        }[step]
        data[name] = (dims, da.full(shape, np.nan, dtype="float32", chunks=chunks), DRIVERS[name].attrs())
        encoding[name] = {"chunks": chunks}
    coords = dict(pixels.coords)
    coords["time"] = (
        "time",
        np.asarray(time, dtype="datetime64[ns]"),
        {"long_name": "time", "standard_name": "time", "comment": "UTC days (ERA5)"},
    )
    coords["dayofyear"] = ("dayofyear", doy, {"long_name": "day of year (1 = 1 January)", "units": "1"})
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    ds.to_zarr(
        location(store_url).zarr_store(),
        mode="w",
        compute=False,
        zarr_format=3,
        consolidated=False,
        encoding=encoding,
    )


def _write_region(
    store_url: str, variables: dict[str, tuple[tuple[str, ...], np.ndarray]], region: dict[str, slice]
) -> None:
    """Write (dims, values) of existing variables into ``region`` (dim -> slice, chunk-aligned) with zarr
    directly (the template holds the metadata; xarray's region writes cost 0.3 s each)."""
    group = zarr.open_group(location(store_url).zarr_store(), mode="r+", zarr_format=3)
    for name, (dims, values) in variables.items():
        group[name][tuple(region[d] for d in dims)] = values.astype("float32")


def static_drivers(msc: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Seasonal metrics ``<index>_msc_<metric>`` (pixel,) of the daily MSCs ``<index>_msc`` (366, pixel)."""
    out = {}
    for name, cycle in msc.items():
        for metric, v in seasonal.metrics(cycle).items():
            out[f"{name}_{metric}"] = v
    return out


def cube_block(
    sources: Sources,
    store_url: str,
    p0: int,
    p1: int,
    rows: np.ndarray,
    cols: np.ndarray,
    lat: np.ndarray,
    time_chunk: int = TIME_CHUNK,
) -> dict[str, Any]:
    """Dask task: every driver of pixels ``p0:p1`` (grid ``rows``/``cols``, ``lat`` degrees north) over the
    whole record, written into the cube's chunks of those pixels; returns counts and sums per block
    written, for validation, and the worker process's peak RSS (MiB)."""
    checks: list[dict[str, Any]] = []
    pix = slice(p0, p1)

    def emit(t0: int, t1: int, daily: dict[str, np.ndarray]) -> None:
        _write_region(
            store_url,
            {k: (("time", "pixel"), v) for k, v in daily.items()},
            {"time": slice(t0, t1), "pixel": pix},
        )
        checks.append({"time": [t0, t1], "pixel": [p0, p1], "checks": _checks(daily)})

    msc = cell_drivers(sources, rows, cols, emit, block=time_chunk)
    cycles = {"Rpot": daily_potential_radiation(lat, seasonal.DAYS), **msc}
    _write_region(
        store_url,
        {k: (("dayofyear", "pixel"), v) for k, v in cycles.items()},
        {"dayofyear": slice(None), "pixel": pix},
    )
    static = static_drivers(msc)
    _write_region(store_url, {k: (("pixel",), v) for k, v in static.items()}, {"pixel": pix})
    checks.append({"time": None, "pixel": [p0, p1], "checks": _checks({**cycles, **static})})
    return {"checks": checks, "peak_rss_mib": peak_rss_mib()}


def validate_cube(ds: xr.Dataset, blocks: list[dict[str, Any]]) -> None:
    """Every block's counts and sums come back from the store; values lie in their physical ranges."""
    missing = [n for n in DRIVERS if n not in ds]
    if missing:
        raise ValueError(f"variables {missing} missing from the store")
    for b in blocks:
        for c in b["checks"]:
            p0, p1 = c["pixel"]
            sel: dict[str, slice] = {"pixel": slice(p0, p1)}
            if c["time"] is not None:
                sel["time"] = slice(*c["time"])
            where = f"pixels {p0}:{p1}" + (f" days {c['time'][0]}:{c['time'][1]}" if c["time"] else "")
            for name, want in c["checks"].items():
                check_values(name, np.asarray(ds[name].isel(sel).values), want, where)


class LazyClient:
    """A Dask client on the configured cluster (:mod:`fluxcube.cluster`), started on first use and shared
    by both builds: a rerun that publishes nothing starts no cluster."""

    def __init__(self, n_workers: int | None = None):
        self.n_workers = n_workers
        self._stack = ExitStack()
        self._client: Any = None

    def __call__(self) -> Any:
        if self._client is None:
            from fluxcube.cluster import client

            self._client = self._stack.enter_context(client(self.n_workers))
        return self._client

    def __enter__(self) -> LazyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


def build_cube(
    pub: Publisher,
    cluster: LazyClient,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    time_chunk: int = TIME_CHUNK,
    pixel_chunk: int = PIXEL_CHUNK,
) -> tuple[str, bool, dict[str, Any]]:
    """Build and publish ``drivers_land_0p5deg``; return (version, newly published, run statistics).

    ``progress(done, total)`` is called as pixel chunks finish.
    """
    from distributed import as_completed

    e5, md, era5_ds = _grid_inputs(pub)
    rg = input_store(pub, regions.DATASET)
    mask = pub.open(rg.name)
    for name in ("region_id", "cell_area", "land_fraction"):
        if name not in mask:
            raise InputError(rg.url, "variable missing; expected the regions store's land mask", column=name)
    pixels = land_pixels(mask)
    npix = pixels.sizes["pixel"]
    if npix == 0:
        raise InputError(rg.url, "no land cell (region_id > 0)", column="region_id")
    stores = [e5, md, rg]
    release = _release(
        CUBE_DATASET,
        stores,
        "FLUXCOM RS+METEO drivers on the 0.5 degree land pixels (packed): daily Tair, Rg, WAI; mean "
        "seasonal cycles of MODIS indices and Rpot by day of year; seasonal metrics",
        {"time_chunk": time_chunk, "pixel_chunk": pixel_chunk, "land": "region_id > 0"},
    )
    store = pub.prepare(release, force=force)
    if store is None:
        return release.version, False, {}
    attrs = {**release.provenance(), **_attrs(stores, "fluxcube driver cube (FLUXCOM RS+METEO), 0.5 degree")}
    attrs["land_definition"] = "cells with a RECCAP2 region: region_id 1..18 of regions_land_0p5deg"
    write_cube_template(store.url, pixels, era5_ds["time"].values, attrs, time_chunk, pixel_chunk)
    sources = Sources(era5=e5.url, modis=md.url)
    rows, cols = pixels["row"].values.astype("int64"), pixels["col"].values.astype("int64")
    lat = pixels["lat"].values
    # a task takes whole output chunks, up to MAX_TASK_PIXELS (fewer when there are few chunks per
    # worker), so that it reads each input chunk about once (an input chunk holds up to 8100 land cells)
    n_chunks = -(-npix // pixel_chunk)
    workers = max(1, len(cluster().scheduler_info()["workers"]))
    per_task = pixel_chunk * max(1, min(MAX_TASK_PIXELS // pixel_chunk, -(-n_chunks // workers)))
    spans = [(p0, min(npix, p0 + per_task)) for p0 in range(0, npix, per_task)]
    results = []
    futures = [
        cluster().submit(
            cube_block,
            sources,
            store.url,
            p0,
            p1,
            rows[p0:p1],
            cols[p0:p1],
            lat[p0:p1],
            time_chunk,
            pure=False,
        )
        for p0, p1 in spans
    ]
    for fut in as_completed(futures):
        results.append(fut.result())
        if progress is not None:
            progress(len(results), len(spans))
    pub.commit(release, validate=lambda ds: validate_cube(ds, results), catalog_metadata=describe)
    stats = {
        "pixels": npix,
        "days": int(era5_ds.sizes["time"]),
        "tasks": len(spans),
        "peak_rss_mib_per_worker": max(r["peak_rss_mib"] for r in results),
    }
    return release.version, True, stats


# -------------------------------------------------------------------------------------- the sites
def _targets(pub: Publisher, name: str | None) -> InputStore:
    names = [name] if name else [n for n in TARGET_DATASETS if pub.current(n) is not None]
    if not names:
        raise InputError(
            pub.root.url, f"no daily NEE targets: none of {', '.join(TARGET_DATASETS)} is published"
        )
    return input_store(pub, names[0])


def site_cells(
    sources: Sources, rows: np.ndarray, cols: np.ndarray, pos: np.ndarray
) -> dict[str, np.ndarray]:
    """Dask task: drivers of the cells (``rows``, ``cols``) on the ERA5 days ``pos`` (index into ERA5's
    time, -1 = none): daily (len(pos), cells) and MSCs (366, cells)."""
    out = {name: np.full((pos.size, rows.size), np.nan) for name in DAILY}

    def emit(t0: int, t1: int, daily: dict[str, np.ndarray]) -> None:
        k = np.nonzero((pos >= t0) & (pos < t1))[0]
        for name, v in daily.items():
            out[name][k] = v[pos[k] - t0]

    msc = cell_drivers(sources, rows, cols, emit)
    return {**out, **msc}


def build_sites(
    pub: Publisher, cluster: LazyClient, targets: str | None = None, force: bool = False
) -> tuple[str, bool, list[str]]:
    """Build and publish ``drivers_sites_dd`` aligned with the targets; return (version, newly
    published, warnings)."""
    e5, md, era5_ds = _grid_inputs(pub)
    tg = _targets(pub, targets)
    tgt = pub.open(tg.name)
    for name in ("site", "time", "lat", "lon"):
        if name not in tgt.coords:
            raise InputError(
                tg.url, "coordinate missing; expected (site, time) targets with site lat/lon", column=name
            )
    lat, lon = tgt["lat"].values.astype("float64"), tgt["lon"].values.astype("float64")
    bad = ~(np.isfinite(lat) & np.isfinite(lon))
    if bad.any():
        raise InputError(tg.url, f"sites {list(tgt['site'].values[bad])} have no coordinates", column="lat")
    stores = [e5, md, tg]
    release = _release(
        SITES_DATASET,
        stores,
        f"FLUXCOM RS+METEO drivers at tower cells (0.5 degree), aligned with {tg.name}",
        {"targets": tg.name, "cell": "0.5 degree cell containing the tower"},
    )
    if pub.is_current(release) and not force:
        pub.prepare(release)
        return release.version, False, []
    rows, cols = cell_index(lat, lon)
    cells, inverse = np.unique(rows * LON.size + cols, return_inverse=True)
    urow, ucol = cells // LON.size, cells % LON.size
    days = tgt["time"].values.astype("datetime64[D]")
    era5_days = pd.Index(era5_ds["time"].values.astype("datetime64[D]"))
    pos = era5_days.get_indexer(days)
    warnings = []
    if (pos < 0).any():
        warnings.append(
            f"{int((pos < 0).sum())} of {pos.size} target days are outside the ERA5 record "
            f"{era5_days[0].date()}..{era5_days[-1].date()}: their daily drivers are NaN"
        )
    sources = Sources(era5=e5.url, modis=md.url)
    got = cluster().submit(site_cells, sources, urow, ucol, pos, pure=False).result()
    doy = (days - days.astype("datetime64[Y]")).astype(int)  # 0-based
    data: dict[str, Any] = {}
    for name in DAILY:
        data[name] = (("site", "time"), got[name][:, inverse].T.astype("float32"))
    data["Rpot"] = (("site", "time"), daily_potential_radiation(lat, doy + 1).T.astype("float32"))
    msc = {name: got[name][:, inverse] for name in SEASONAL if name != "Rpot"}
    for name, cycle in msc.items():
        data[name] = (("site", "time"), cycle[doy].T.astype("float32"))
    for name, v in static_drivers(msc).items():
        data[name] = (("site",), v.astype("float32"))
    coords = {
        "site": ("site", tgt["site"].values, dict(tgt["site"].attrs)),
        "time": ("time", tgt["time"].values, dict(tgt["time"].attrs)),
        "lat": ("site", lat, dict(tgt["lat"].attrs)),
        "lon": ("site", lon, dict(tgt["lon"].attrs)),
        "cell_lat": (
            "site",
            LAT[rows],
            {
                "units": "degrees_north",
                "long_name": "latitude of the 0.5 degree cell whose drivers the site takes",
            },
        ),
        "cell_lon": (
            "site",
            LON[cols],
            {
                "units": "degrees_east",
                "long_name": "longitude of the 0.5 degree cell whose drivers the site takes",
            },
        ),
    }
    ds = xr.Dataset({k: (dims, v, DRIVERS[k].attrs()) for k, (dims, v) in data.items()}, coords=coords)
    ds = ds[list(DRIVERS)]
    attrs = _attrs(stores, "fluxcube site drivers (FLUXCOM RS+METEO) at tower cells")
    attrs.update(
        {
            "alignment": f"(site, time) of {tg.name} version {tg.version}; local days matched to "
            "ERA5 UTC days by date",
            "warnings": json.dumps(warnings),
        }
    )
    expected = {name: _checks({name: ds[name].values})[name] for name in DRIVERS}

    def validate(stored: xr.Dataset) -> None:
        if list(stored["site"].values) != list(tgt["site"].values) or stored.sizes["time"] != days.size:
            raise ValueError("site or time coordinates differ from the targets'")
        for name, want in expected.items():
            check_values(name, np.asarray(stored[name].values), want, "all sites")

    pub.publish_dataset(release, ds, attrs, validate=validate, force=force)
    return release.version, True, warnings


# ------------------------------------------------------------------------------------------ runs
@dataclass
class DriversSummary(RunSummary):
    """What a run published, plus the cube build's statistics (pixels, days, tasks, peak RSS per worker)."""

    stats: dict[str, Any] = field(default_factory=dict)


def run(
    target: str,
    what: tuple[str, ...] = ("sites", "cube"),
    targets: str | None = None,
    n_workers: int | None = None,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> DriversSummary:
    """Build the site driver store and/or the global cube under ``target``."""
    pub = Publisher(target)
    summary = DriversSummary()
    with LazyClient(n_workers) as cluster:
        if "sites" in what:
            version, new, warnings = build_sites(pub, cluster, targets, force)
            (summary.published if new else summary.up_to_date)[SITES_DATASET] = version
            summary.warnings += warnings
        if "cube" in what:
            version, new, stats = build_cube(pub, cluster, force, progress)
            (summary.published if new else summary.up_to_date)[CUBE_DATASET] = version
            summary.stats = stats
    return summary


def driver_matrix(ds: xr.Dataset, drivers: list[str] | None = None) -> xr.DataArray:
    """The drivers of a cube selection or the site store as one (..., time, driver) float32 array:
    seasonal drivers looked up by each day's day of year, static ones repeated over time."""
    names = drivers or list(DRIVERS)
    doy = xr.DataArray(pd.DatetimeIndex(ds["time"].values).day_of_year.to_numpy(), dims="time")
    cols = []
    for name in names:
        v = ds[name]
        if "dayofyear" in v.dims:
            v = v.sel(dayofyear=doy).drop_vars("dayofyear", errors="ignore")
        elif "time" not in v.dims:
            v = v.expand_dims(time=ds["time"].size)
        cols.append(v.astype("float32"))
    out = xr.concat(
        cols, dim=xr.DataArray(names, dims="driver", name="driver"), coords="minimal", compat="override"
    )
    return out.transpose(..., "time", "driver")


__all__ = ["METRICS", "STATIC", "build_cube", "build_sites", "driver_matrix", "run"]
