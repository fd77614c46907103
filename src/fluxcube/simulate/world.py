"""The simulated world's gridded twin of the global inputs, written in the sources' own formats.

:func:`write_world` writes, under ``out_dir``, year by year and band of grid rows by band (memory is
bounded by one band-year, whatever the grid and period), in this process or on a Dask cluster
(:mod:`fluxcube.cluster`): one task per band for the R_ref diagnosis, one task per year writing all of
that year's files (the same bytes either way):

===================== =====================================================================================
folder                files (layout: module docstrings)
===================== =====================================================================================
``truth/``            ``truth_<YYYY>.nc``: daily NEE, GPP, Reco, fire (g C m-2 d-1, NEE positive = source)
                      and fAPAR on the land cells; ``world_static.nc`` (land mask, PFT, region, cell area,
                      R_ref, sink fraction); ``regional_monthly.csv`` and ``global_annual.csv``: true
                      integrals (Pg C), :mod:`fluxcube.simulate.world`
``regions/``          ``RECCAP2_land_region_masks_synthetic.nc``: the world's 18-region mask in the
                      layout of the RECCAP2 mask files, :mod:`fluxcube.simulate.landmask`
``era5/``             ``era5_<YYYY>-<MM>_t2m_d2m_tp_ssrd.nc`` hourly, CDS NetCDF, + the 00 UTC hour
                      after the last day, :mod:`fluxcube.simulate.era5_sim`
``modis/``            ``MOD13A2``, ``MOD09A1``, ``MOD15A2H``, ``MOD11A2`` ``.A<YYYY>.sim.nc``,
                      :mod:`fluxcube.simulate.modis`
``gfas/``             ``cams_gfas_co2fire_<YYYY>.nc``: daily ``co2fire`` (kg m-2 s-1), GFAS layout
``inversions/``       ``GCP2022_inversions_1x1_version1_2_synthetic.nc``,
                      :mod:`fluxcube.simulate.inversions_sim`
``gcb/``              ``Global_Carbon_Budget_2022v1.0_synthetic.csv``
===================== =====================================================================================

Every NetCDF file has the global attributes ``synthetic = "true"``, ``generator``, ``generator_seed`` and
``generator_parameters``; every folder and the top level have a ``SYNTHETIC.json`` (the recipes mark
what they publish from a folder with one as synthetic). The same arguments write the same bytes.

The true integrals: ``regional_monthly.csv`` has one row per year, month and region number (0 = land in
no region) with the region's simulated land area (m2) and the integrals of ``NEE``, ``GPP``, ``Reco``,
``fire`` and ``net_land_flux`` = NEE + fire (Pg C per month); ``global_annual.csv`` one row per year
(Pg C yr-1) with ``residual_land_sink`` = -net_land_flux (GCB sign, sink positive). Integrals are of the
float64 values before they are rounded to the files' float32.
"""

from __future__ import annotations

import json
import logging
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import netCDF4
import numpy as np
import pandas as pd

from fluxcube.recipes.regions import EARTH_RADIUS, OTHER_LAND, REGIONS
from fluxcube.simulate import era5_sim, modis, ncfiles
from fluxcube.simulate.fire import FIRE_PFTS, KG_CO2_PER_G_C
from fluxcube.simulate.gridded import BandYear, simulate_band
from fluxcube.simulate.inversions_sim import FILE_NAME, GCB_FILE, write_gcb_table, write_inversions
from fluxcube.simulate.landmask import PFT_CLASSES, WorldGrid
from fluxcube.simulate.truth import DEFAULT_SINK_SCALE, diagnose_r_ref
from fluxcube.simulate.weather import DEFAULT_DROUGHT, DroughtSpec

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)

COMPONENTS = ("truth", "era5", "modis", "fire", "inversions", "gcb")
TRUTH_VARS = {
    "NEE": ("net ecosystem exchange (positive = source)", "g C m-2 d-1"),
    "GPP": ("gross primary production", "g C m-2 d-1"),
    "Reco": ("ecosystem respiration", "g C m-2 d-1"),
    "fire": ("carbon emitted by fires (as CO2), in addition to NEE", "g C m-2 d-1"),
    "fAPAR": ("fraction of absorbed photosynthetically active radiation", "1"),
}
QUANTITIES = ("NEE", "GPP", "Reco", "fire")
HOURS_SINCE = era5_sim.HOURS_SINCE
_MODIS_STREAM = 120
T = TypeVar("T")


@dataclass
class WorldSummary:
    """What :func:`write_world` wrote: files, the grid, true integrals, timings (s) and peak RSS (MiB).

    ``peak_rss_mib``: of the calling process; ``task_peak_rss_mib``: per year (``"year_<YYYY>"``), the peak
    RSS of the process that wrote it (a Dask worker, or the calling process), MiB; ``task_cpu_seconds``:
    the CPU seconds (user + system) each year's task took.
    """

    out_dir: Path
    files: list[Path]
    grid: WorldGrid
    global_annual: pd.DataFrame
    regional_monthly: pd.DataFrame
    seconds: dict[str, float] = field(default_factory=dict)
    peak_rss_mib: float = 0.0
    task_peak_rss_mib: dict[str, float] = field(default_factory=dict)
    task_cpu_seconds: dict[str, float] = field(default_factory=dict)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ------------------------------------------------------------------------------------ static files
def write_static(
    path: Path, grid: WorldGrid, r_ref: np.ndarray, sink: np.ndarray, attrs: dict[str, Any]
) -> Path:
    """``world_static.nc``: land mask, PFT codes, region, cell area, R_ref and sink fraction (lat, lon)."""
    shape = grid.shape

    def on_grid(values: np.ndarray) -> np.ndarray:
        out = np.full(grid.land.size, np.nan)
        out[grid.cells] = values
        return out.reshape(shape)

    ds = ncfiles.create(
        path,
        {"title": "Simulated world: static fields", "Conventions": "CF-1.10", **attrs},
        {"lat": shape[0], "lon": shape[1]},
    )
    with ds:
        ncfiles.coordinate(ds, "lat", grid.lat, ncfiles.LAT_ATTRS)
        ncfiles.coordinate(ds, "lon", grid.lon, ncfiles.LON_ATTRS)
        dims = ("lat", "lon")
        ncfiles.variable(
            ds,
            "land_mask",
            "i1",
            dims,
            {
                "long_name": "simulated land (global-land-mask at the cell centre, north of 60 S)",
                "flag_values": np.array([0, 1], dtype="i1"),
                "flag_meanings": "not_simulated land",
            },
            data=grid.land.astype("i1"),
        )
        ncfiles.variable(
            ds,
            "pft",
            "i1",
            dims,
            {
                "long_name": "IGBP plant functional type of the cell (0 = not simulated)",
                "flag_values": np.arange(len(PFT_CLASSES) + 1, dtype="i1"),
                "flag_meanings": " ".join(["none", *PFT_CLASSES]),
            },
            data=grid.pft_codes(),
        )
        ncfiles.variable(
            ds,
            "region_id",
            "i1",
            dims,
            {
                "long_name": "land region (0 = land in no region or not simulated)",
                "flag_values": np.arange(len(REGIONS) + 1, dtype="i1"),
                "flag_meanings": " ".join(
                    ["none", *(REGIONS[k][1].replace(" ", "_") for k in sorted(REGIONS))]
                ),
                "region_source": grid.region_source,
            },
            data=grid.region,
        )
        ncfiles.variable(
            ds,
            "cell_area",
            "f8",
            dims,
            {
                "units": "m2",
                "standard_name": "cell_area",
                "long_name": f"cell area on a sphere of radius {EARTH_RADIUS} m",
            },
            data=np.repeat(grid.area[:, None], shape[1], axis=1),
        )
        ncfiles.variable(
            ds,
            "r_ref",
            "f4",
            dims,
            {"units": "g C m-2 d-1", "long_name": "basal respiration at 15 degC, moist soil"},
            fill=np.float32(np.nan),
            data=on_grid(r_ref).astype("f4"),
        )
        ncfiles.variable(
            ds,
            "sink_fraction",
            "f4",
            dims,
            {"units": "1", "long_name": "target long-term -NEE/GPP of the reference climate"},
            fill=np.float32(np.nan),
            data=on_grid(sink).astype("f4"),
        )
    return path


def write_region_mask(path: Path, grid: WorldGrid, attrs: dict[str, Any]) -> Path:
    """The world's regions in the RECCAP2 mask layout: int8 (lat, lon), lat ascending, lon 0..360."""
    roll = -(grid.lon.size // 2)
    lon = np.roll(np.mod(grid.lon, 360.0), roll)
    names = ", ".join(f"{k}.{REGIONS[k][1]}" for k in sorted(REGIONS))
    ds = ncfiles.create(
        path,
        {
            "description": "land region mask of the simulated fluxcube world, in the layout of the RECCAP2 "
            "region mask files (one int8 variable per mask, region numbers listed in region_name). "
            + (
                "Regions from Natural Earth 1:110m countries (approximate RECCAP2 land regions)."
                if grid.region_source == "naturalearth"
                else "Regions from latitude/longitude boxes (approximate RECCAP2 land regions)."
            ),
            "approximate": "true",
            "region_source": grid.region_source,
            **attrs,
        },
        {"lat": grid.lat.size, "lon": grid.lon.size},
    )
    with ds:
        ncfiles.coordinate(ds, "lat", grid.lat, ncfiles.LAT_ATTRS)
        ncfiles.coordinate(ds, "lon", lon, ncfiles.LON_ATTRS)
        ncfiles.variable(
            ds,
            "landmask",
            "i1",
            ("lat", "lon"),
            {"description": "1 where the world simulates land (global-land-mask, north of 60 S), else 0"},
            data=np.roll(grid.land.astype("i1"), roll, axis=1),
        )
        ncfiles.variable(
            ds,
            "land_regions",
            "i1",
            ("lat", "lon"),
            {"region_name": names},
            data=np.roll(grid.region, roll, axis=1),
        )
    return path


# --------------------------------------------------------------------------------- yearly files
def _truth_file(
    path: Path, year: int, dates: pd.DatetimeIndex, grid: WorldGrid, attrs: dict[str, Any], band_rows: int
) -> netCDF4.Dataset:
    ds = ncfiles.create(
        path,
        {
            "title": f"Simulated world: true daily fluxes {year}",
            "Conventions": "CF-1.10",
            "sign_convention": "NEE positive = flux to the atmosphere (source)",
            **attrs,
        },
        {"time": len(dates), "lat": grid.lat.size, "lon": grid.lon.size},
    )
    ncfiles.variable(
        ds,
        "time",
        "i4",
        ("time",),
        {
            "units": f"days since {year}-01-01",
            "calendar": "standard",
            "standard_name": "time",
            "long_name": "day",
        },
        compress=False,
        data=np.arange(len(dates), dtype="i4"),
    )
    ncfiles.coordinate(ds, "lat", grid.lat, ncfiles.LAT_ATTRS)
    ncfiles.coordinate(ds, "lon", grid.lon, ncfiles.LON_ATTRS)
    for name, (long_name, units) in TRUTH_VARS.items():
        ncfiles.variable(
            ds,
            name,
            "f4",
            ("time", "lat", "lon"),
            {"long_name": long_name, "units": units},
            fill=np.float32(np.nan),
            chunks=(min(32, len(dates)), band_rows, grid.lon.size),
        )
    return ds


def _gfas_file(
    path: Path, year: int, dates: pd.DatetimeIndex, grid: WorldGrid, attrs: dict[str, Any], band_rows: int
) -> netCDF4.Dataset:
    ds = ncfiles.create(
        path,
        {
            "Conventions": "CF-1.6",
            "title": "CAMS GFAS-like daily fire emissions (synthetic)",
            "history": "synthetic: fluxcube.simulate.world, GFAS layout",
            **attrs,
        },
        {"longitude": grid.lon.size, "latitude": grid.lat.size, "time": None},
    )
    ncfiles.coordinate(
        ds,
        "longitude",
        np.roll(np.mod(grid.lon, 360.0), -(grid.lon.size // 2)),
        {"units": "degrees_east", "long_name": "longitude"},
        "f4",
    )
    ncfiles.coordinate(
        ds, "latitude", grid.lat[::-1], {"units": "degrees_north", "long_name": "latitude"}, "f4"
    )
    hours = ((dates - pd.Timestamp("1900-01-01")) // pd.Timedelta(hours=1)).to_numpy().astype("i4")
    ncfiles.variable(
        ds,
        "time",
        "i4",
        ("time",),
        {"units": HOURS_SINCE, "long_name": "time", "calendar": "gregorian"},
        compress=False,
        chunks=(len(dates),),
        data=hours,
    )
    ncfiles.variable(
        ds,
        "co2fire",
        "f4",
        ("time", "latitude", "longitude"),
        {
            "units": "kg m**-2 s**-1",
            "long_name": "Wildfire flux of Carbon Dioxide",
            "comment": "daily mean; zero where nothing burns",
        },
        fill=np.float32(np.nan),
        chunks=(min(32, len(dates)), band_rows, grid.lon.size),
    )
    return ds


@dataclass
class _YearFiles:
    truth: netCDF4.Dataset | None = None
    gfas: netCDF4.Dataset | None = None
    era5: dict[tuple[int, int], netCDF4.Dataset] = field(default_factory=dict)
    closing: netCDF4.Dataset | None = None
    modis: dict[str, netCDF4.Dataset] = field(default_factory=dict)

    def close(self) -> None:
        for ds in [self.truth, self.gfas, self.closing, *self.era5.values(), *self.modis.values()]:
            if ds is not None:
                ds.close()


def _slab(values: np.ndarray, cells: np.ndarray, rows: int, n_lon: int, fill: float = np.nan) -> np.ndarray:
    """(time, point) -> (time, rows, n_lon) with ``fill`` outside the points (``cells`` flat in the band)."""
    out = np.full((values.shape[0], rows * n_lon), fill, dtype="float64")
    out[:, cells] = values
    return out.reshape(values.shape[0], rows, n_lon)


def _to_era_order(slab: np.ndarray) -> np.ndarray:
    """World order (lat ascending, lon -180..180) -> ERA5/GFAS order (lat descending, lon 0..360)."""
    return np.roll(slab[:, ::-1, :], -(slab.shape[2] // 2), axis=2)


# ------------------------------------------------------------------------------------ the world
def _params(**kwargs: Any) -> dict[str, Any]:
    out = {}
    for k, v in kwargs.items():
        if isinstance(v, DroughtSpec):
            v = asdict(v)
        elif isinstance(v, Path):
            v = str(v)
        elif isinstance(v, tuple):
            v = list(v)
        out[k] = v
    return out


def _write_json(path: Path, meta: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
    return path


@dataclass(frozen=True)
class _YearJob:
    """What every year task needs (sent once to each Dask worker): the world's fixed inputs."""

    out: Path
    grid: WorldGrid
    r_ref: np.ndarray
    sink: np.ndarray
    attrs: dict[str, Any]
    bands: list[tuple[int, int]]
    seed: int
    drought: DroughtSpec | None
    want: frozenset[str]
    era5_files: str
    era5_years: tuple[int, ...] | None
    end_year: int
    onedeg: OneDegree | None


@dataclass
class _YearResult:
    """One year's true integrals (month, region, quantity; Pg C per month), its 1 degree monthly sums of
    NEE + fire (month, 180, 360; g C per cell and month) or None, the task's wall and CPU seconds and the
    peak RSS (MiB) of the process that ran it."""

    year: int
    integrals: np.ndarray
    onedeg_sum: np.ndarray | None
    seconds: float
    cpu_seconds: float
    peak_rss_mib: float


def _run_tasks(
    client: Client | None, fn: Callable[..., T], arguments: Sequence[tuple[Any, ...]]
) -> Iterator[tuple[int, T]]:
    """``(i, fn(*arguments[i]))`` for every i: in order in this process (``client`` None), or as they
    finish on ``client``'s cluster (all submitted at once; each result is released once taken)."""
    if client is None:
        for i, args in enumerate(arguments):
            yield i, fn(*args)
        return
    from distributed import as_completed

    futures = {client.submit(fn, *args, pure=False): i for i, args in enumerate(arguments)}
    for future in as_completed(futures):
        result = future.result()
        i = futures[future]
        future.release()
        yield i, result


def _year_components(want: frozenset[str], era5_years: tuple[int, ...] | None, year: int) -> set[str]:
    """The components written for ``year`` (ERA5 only in ``era5_years`` when given)."""
    return set(want) - ({"era5"} if era5_years is not None and year not in era5_years else set())


def _write_year(job: _YearJob, year: int) -> _YearResult:
    """Simulate ``year`` band by band, write its files, return its integrals (a task of its own).

    Only this task writes the year's files, so years can run in any order and in parallel; memory is
    one band-year plus the open files' chunk caches.
    """
    t_year, cpu_year = time.perf_counter(), time.process_time()
    grid = job.grid
    n_lon = grid.shape[1]
    lat_c, lon_c, area_c, region_c = grid.cell_lat(), grid.cell_lon(), grid.cell_area(), grid.cell_region()
    region_ids = [OTHER_LAND, *sorted(REGIONS)]
    integrals = np.zeros((12, len(region_ids), len(QUANTITIES)))  # Pg C per month
    onedeg_sum = np.zeros((12, 180, 360)) if job.onedeg is not None else None
    dates = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
    want_y = _year_components(job.want, job.era5_years, year)
    band_rows = job.bands[0][1] - job.bands[0][0]
    files_y = _open_year_files(
        job.out, year, dates, grid, job.attrs, band_rows, want_y, year == job.end_year, job.era5_files
    )
    month_starts = np.flatnonzero(dates.is_month_start)
    try:
        for i0, i1 in job.bands:
            pos = grid.band_cells(i0, i1)
            if not pos.size:
                _write_empty_band(files_y, i0, i1, grid, dates)
                continue
            by = simulate_band(
                lat_c[pos],
                lon_c[pos],
                list(grid.pft[pos]),
                job.r_ref[pos],
                job.sink[pos],
                year,
                job.seed,
                job.drought,
                i0,
            )
            in_band = grid.cells[pos] - i0 * n_lon
            _write_band(files_y, by, pos, in_band, i0, i1, grid, job.seed, set(job.want))
            # true integrals: g C -> Pg C per month and region
            a = area_c[pos]
            reg = np.searchsorted(region_ids, region_c[pos])
            for q, values in enumerate((by.nee, by.gpp, by.reco, by.fire)):
                monthly = np.add.reduceat(values, month_starts, axis=0)
                for m in range(12):
                    integrals[m, :, q] += (
                        np.bincount(reg, weights=monthly[m] * a, minlength=len(region_ids)) / 1e15
                    )
            if job.onedeg is not None and onedeg_sum is not None:
                net = np.add.reduceat(by.nee + by.fire, month_starts, axis=0)  # g C m-2 per month
                onedeg_sum += job.onedeg.integrate(_slab(net, in_band, i1 - i0, n_lon, 0.0), i0, i1)
    finally:
        files_y.close()
    return _YearResult(
        year,
        integrals,
        onedeg_sum,
        time.perf_counter() - t_year,
        time.process_time() - cpu_year,
        _peak_rss_mib(),
    )


def write_world(
    out_dir: str | Path,
    grid_deg: float = 0.5,
    start_year: int = 2001,
    end_year: int = 2017,
    seed: int = 0,
    data_dir: str | Path | None = None,
    n_inversions: int = 5,
    drought: DroughtSpec | None = DEFAULT_DROUGHT,
    sink_scale: float = DEFAULT_SINK_SCALE,
    regions: str = "auto",
    components: Sequence[str] = COMPONENTS,
    era5_files: str = "monthly",
    era5_years: Sequence[int] | None = None,
    max_band_cells: int = 3000,
    progress: Callable[[str], None] | None = None,
    workers: int = 0,
    client: Client | None = None,
) -> WorldSummary:
    """Simulate the gridded world for ``start_year..end_year`` and write it under ``out_dir``.

    ``grid_deg``: cell size (see :mod:`fluxcube.simulate.landmask`); ``seed``: every random stream;
    ``data_dir``: real sample data for the Natural Earth regions (``regions="auto"`` uses it when present,
    else boxes); ``n_inversions``: ensemble members; ``drought``: the regional drought (None: off);
    ``sink_scale`` (dimensionless): multiplies the PFT sink fractions of the truth, as the towers'
    (:func:`fluxcube.simulate.truth.diagnose_r_ref`);
    ``components``: any of :data:`COMPONENTS` (the truth and its integrals are always computed; "truth"
    writes the daily truth files); ``era5_files``: "monthly" (CDS monthly downloads) or "daily";
    ``era5_years``: the years with ERA5 files (default all: about 2.4 GB per year at 0.5 degree);
    ``max_band_cells``: cells per band (memory per task); ``progress``: called with a line per step.

    Execution: ``workers = 0`` (default) runs every task in this process; ``workers = n`` runs them on a
    Dask cluster of ``n`` workers from :mod:`fluxcube.cluster`, or on ``client``'s cluster when one is
    given (its workers must see ``out_dir``). The tasks are the R_ref diagnosis of each band and the
    writing of each year (every file of a year is written by one task; memory per task: one band-year).
    Returns a :class:`WorldSummary`. The same arguments give byte-identical files whichever way they run.
    """
    era5_sim.file_spans(pd.DatetimeIndex([]), era5_files)  # checks the name
    unknown = set(components) - set(COMPONENTS)
    if unknown:
        raise ValueError(f"unknown components {sorted(unknown)}; expected some of {COMPONENTS}")
    if end_year < start_year:
        raise ValueError(f"end_year {end_year} before start_year {start_year}")
    if workers < 0:
        raise ValueError(f"workers {workers}: expected 0 (this process) or a number of Dask workers")
    if client is None and workers > 0:
        from fluxcube.cluster import client as cluster_client

        with cluster_client(workers) as c:
            return _write_world(out_dir, _arguments(locals()), progress, c)
    return _write_world(out_dir, _arguments(locals()), progress, client)


def _arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """The generator parameters of :func:`write_world` (the arguments that decide the bytes)."""
    return {k: arguments[k] for k in _PARAMETERS}


_PARAMETERS = (
    "grid_deg",
    "start_year",
    "end_year",
    "seed",
    "data_dir",
    "n_inversions",
    "drought",
    "sink_scale",
    "regions",
    "components",
    "era5_files",
    "era5_years",
    "max_band_cells",
)


def _write_world(
    out_dir: str | Path,
    arguments: dict[str, Any],
    progress: Callable[[str], None] | None,
    client: Client | None,
) -> WorldSummary:
    """:func:`write_world` with its checked ``arguments``, on ``client``'s cluster or (None) in process."""
    t_start = time.perf_counter()
    say = progress or log.info
    out = Path(out_dir)
    a = dict(arguments)
    components = tuple(a["components"])
    era5_years = None if a["era5_years"] is None else tuple(a["era5_years"])
    params = _params(**{**a, "components": components, "era5_years": era5_years})
    seed, start_year, end_year = a["seed"], a["start_year"], a["end_year"]
    attrs = ncfiles.synthetic_attrs(seed, params)
    seconds: dict[str, float] = {}

    grid = WorldGrid.build(a["grid_deg"], seed, a["data_dir"], a["regions"])
    attrs["region_source"] = grid.region_source
    n_lat, n_lon = grid.shape
    bands = _bands(grid, a["max_band_cells"])
    band_rows = bands[0][1] - bands[0][0]
    lat_c, lon_c, area_c = grid.cell_lat(), grid.cell_lon(), grid.cell_area()
    seconds["grid"] = time.perf_counter() - t_start
    n_workers = 0 if client is None else len(client.scheduler_info()["workers"])
    where = f"on {n_workers} Dask workers" if client is not None else "in this process"
    say(
        f"world grid {a['grid_deg']} deg: {grid.cells.size} land cells, {len(bands)} bands, regions "
        f"from {grid.region_source}; running {where}"
    )

    # R_ref once per cell (reference climate 1996-2000), one task per band
    t0, c0 = time.perf_counter(), time.process_time()
    r_ref = np.empty(grid.cells.size)
    sink = np.empty(grid.cells.size)
    cell_bands = [pos for pos in (grid.band_cells(i0, i1) for i0, i1 in bands) if pos.size]
    band_args = [(lat_c[pos], lon_c[pos], list(grid.pft[pos]), seed, a["sink_scale"]) for pos in cell_bands]
    for k, (b, (r, s_)) in enumerate(_run_tasks(client, diagnose_r_ref, band_args), start=1):
        r_ref[cell_bands[b]], sink[cell_bands[b]] = r, s_
        if k % max(1, len(cell_bands) // 10) == 0 or k == len(cell_bands):
            say(f"R_ref: {k}/{len(cell_bands)} bands")
    seconds["r_ref"] = time.perf_counter() - t0
    seconds["r_ref_cpu_caller"] = time.process_time() - c0  # CPU seconds of this process (serial: all)
    files = [
        write_static(out / "truth" / "world_static.nc", grid, r_ref, sink, attrs),
        write_region_mask(out / "regions" / "RECCAP2_land_region_masks_synthetic.nc", grid, attrs),
    ]

    years = list(range(start_year, end_year + 1))
    months = pd.date_range(f"{start_year}-01-01", f"{end_year}-12-01", freq="MS")
    region_ids = [OTHER_LAND, *sorted(REGIONS)]
    want = frozenset(components)
    onedeg = OneDegree(grid) if "inversions" in want else None
    job = _YearJob(
        out,
        grid,
        r_ref,
        sink,
        attrs,
        bands,
        seed,
        a["drought"],
        want,
        a["era5_files"],
        era5_years,
        end_year,
        onedeg,
    )
    for year in years:
        dates = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
        want_y = _year_components(want, era5_years, year)
        files += _year_paths(out, year, dates, want_y, year == end_year, a["era5_files"])
    integrals = np.zeros((len(months), len(region_ids), len(QUANTITIES)))  # Pg C per month
    onedeg_sum = np.zeros((len(months), 180, 360)) if onedeg else None
    peaks: dict[str, float] = {}
    cpu: dict[str, float] = {}
    shared = job if client is None else client.scatter(job, broadcast=True)
    for k, (_, result) in enumerate(_run_tasks(client, _write_year, [(shared, y) for y in years]), start=1):
        y_index = result.year - start_year
        integrals[y_index * 12 : y_index * 12 + 12] = result.integrals
        if onedeg_sum is not None and result.onedeg_sum is not None:
            onedeg_sum[y_index * 12 : y_index * 12 + 12] = result.onedeg_sum
        seconds[f"year_{result.year}"] = result.seconds
        peaks[f"year_{result.year}"] = result.peak_rss_mib
        cpu[f"year_{result.year}"] = result.cpu_seconds
        say(
            f"{result.year} written ({k}/{len(years)} years): {result.seconds:.1f} s, "
            f"peak RSS of its process {result.peak_rss_mib:.0f} MiB"
        )

    regional = _regional_frame(integrals, months, region_ids, grid)
    glob = _global_frame(regional)
    truth_dir = out / "truth"
    regional.to_csv(truth_dir / "regional_monthly.csv", index=False, float_format="%.9g", lineterminator="\n")
    glob.to_csv(truth_dir / "global_annual.csv", index=False, float_format="%.9g", lineterminator="\n")
    files += [truth_dir / "regional_monthly.csv", truth_dir / "global_annual.csv"]

    if onedeg is not None and onedeg_sum is not None:
        t0 = time.perf_counter()
        days = months.days_in_month.to_numpy()[:, None, None]
        truth_1deg = onedeg_sum / onedeg.area[None] / days  # g C m-2 d-1 per cell area
        path = write_inversions(
            out / "inversions" / FILE_NAME,
            truth_1deg,
            months,
            onedeg.region,
            onedeg.land_area,
            a["n_inversions"],
            seed,
            attrs,
        )
        files.append(path)
        seconds["inversions"] = time.perf_counter() - t0
    if "gcb" in want:
        path, _ = write_gcb_table(out / "gcb" / GCB_FILE, years, glob["net_land_flux"].to_numpy(), seed)
        files.append(path)

    meta = {
        "synthetic": True,
        "generator": ncfiles.GENERATOR,
        **params,
        "region_source": grid.region_source,
        "grid": {
            "n_lat": n_lat,
            "n_lon": n_lon,
            "land_cells": int(grid.cells.size),
            "land_area_m2": float(area_c.sum()),
            "bands": len(bands),
            "band_rows": band_rows,
        },
        "units": {
            "truth": "g C m-2 d-1, NEE positive = source",
            "integrals": "Pg C (per month; per year)",
            "era5": "t2m, d2m K; tp m; ssrd J m-2 (hourly accumulations)",
            "gfas": "co2fire kg CO2 m-2 s-1",
            "inversions": "PgC/m2/yr per grid-cell area",
            "gcb": "Pg C yr-1, sinks positive",
        },
        "fire_pfts": sorted(FIRE_PFTS),
    }
    for folder in sorted({p.relative_to(out).parts[0] for p in files}):
        files.append(_write_json(out / folder / "SYNTHETIC.json", {**meta, "folder": folder}))
    files.append(_write_json(out / "SYNTHETIC.json", meta))
    seconds["total"] = time.perf_counter() - t_start
    say(f"world written to {out} in {seconds['total']:.1f} s, peak RSS {_peak_rss_mib():.0f} MiB")
    return WorldSummary(out, files, grid, glob, regional, seconds, _peak_rss_mib(), peaks, cpu)


def _bands(grid: WorldGrid, max_cells: int) -> list[tuple[int, int]]:
    """Bands of equal height dividing the rows (and whole 1 degree rows when cells are smaller)."""
    n_lat, n_lon = grid.shape
    k = max(1, round(1.0 / grid.grid_deg))
    candidates = [r for r in range(1, n_lat + 1) if n_lat % r == 0 and r % k == 0]
    fitting = [r for r in candidates if r * n_lon <= max_cells]
    rows = max(fitting) if fitting else min(candidates)
    return [(i, i + rows) for i in range(0, n_lat, rows)]


def _year_paths(
    out: Path, year: int, dates: pd.DatetimeIndex, want: set[str], last: bool, era5_files: str
) -> list[Path]:
    paths = []
    if "truth" in want:
        paths.append(out / "truth" / f"truth_{year}.nc")
    if "fire" in want:
        paths.append(out / "gfas" / f"cams_gfas_co2fire_{year}.nc")
    if "era5" in want:
        paths += [
            era5_sim.span_path(out / "era5", dates, span, era5_files)
            for span in era5_sim.file_spans(dates, era5_files)
        ]
        if last:
            paths.append(era5_sim.closing_path(out / "era5", year + 1))
    if "modis" in want:
        paths += [modis.path_of(out / "modis", p, year) for p in modis.PRODUCTS]
    return paths


def _open_year_files(
    out: Path,
    year: int,
    dates: pd.DatetimeIndex,
    grid: WorldGrid,
    attrs: dict[str, Any],
    band_rows: int,
    want: set[str],
    last: bool,
    era5_files: str,
) -> _YearFiles:
    f = _YearFiles()
    try:
        if "truth" in want:
            f.truth = _truth_file(out / "truth" / f"truth_{year}.nc", year, dates, grid, attrs, band_rows)
        if "fire" in want:
            f.gfas = _gfas_file(
                out / "gfas" / f"cams_gfas_co2fire_{year}.nc", year, dates, grid, attrs, band_rows
            )
        if "era5" in want:
            for span in era5_sim.file_spans(dates, era5_files):
                times = pd.date_range(dates[span[0]], dates[span[1] - 1] + pd.Timedelta(hours=23), freq="h")
                f.era5[span] = era5_sim.open_file(
                    era5_sim.span_path(out / "era5", dates, span, era5_files),
                    times,
                    grid.lat,
                    grid.lon,
                    era5_sim.ERA5_VARS,
                    attrs,
                    band_rows,
                )
            if last:
                closing = pd.DatetimeIndex([pd.Timestamp(f"{year + 1}-01-01")])
                f.closing = era5_sim.open_file(
                    era5_sim.closing_path(out / "era5", year + 1),
                    closing,
                    grid.lat,
                    grid.lon,
                    ("tp", "ssrd"),
                    attrs,
                    band_rows,
                )
        if "modis" in want:
            for p in modis.PRODUCTS:
                f.modis[p] = modis.open_product(
                    modis.path_of(out / "modis", p, year),
                    p,
                    year,
                    dates,
                    grid.lat,
                    grid.lon,
                    attrs,
                    band_rows,
                )
    except BaseException:
        f.close()
        raise
    return f


def _write_empty_band(f: _YearFiles, i0: int, i1: int, grid: WorldGrid, dates: pd.DatetimeIndex) -> None:
    """A band without land: fill values (and zero fire), so every chunk of every file is written."""
    n_lat, n_lon = grid.shape
    rows = i1 - i0
    if f.truth is not None:
        nan = np.full((len(dates), rows, n_lon), np.nan, dtype="f4")
        for name in TRUTH_VARS:
            f.truth[name][:, i0:i1, :] = nan
    if f.gfas is not None:
        f.gfas["co2fire"][:, n_lat - i1 : n_lat - i0, :] = np.zeros((len(dates), rows, n_lon), dtype="f4")
    for ds in [*f.era5.values(), *([f.closing] if f.closing is not None else [])]:
        n_t = ds.dimensions["time"].size
        for name in ds.variables:
            if name in era5_sim.PACKING:
                ds[name][:, n_lat - i1 : n_lat - i0, :] = np.full(
                    (n_t, rows, n_lon), era5_sim.FILL, dtype="i2"
                )
    for product, ds in f.modis.items():
        n_t = ds.dimensions["time"].size
        _, variables, _ = modis.PRODUCTS[product]
        for name, var in variables.items():
            fill = modis.NOT_PRODUCED.get(name, var.fill)
            ds[name][:, n_lat - i1 : n_lat - i0, :] = np.full((n_t, rows, n_lon), fill, dtype=var.dtype)


def _write_band(
    f: _YearFiles,
    by: BandYear,
    pos: np.ndarray,
    in_band: np.ndarray,
    i0: int,
    i1: int,
    grid: WorldGrid,
    seed: int,
    want: set[str],
) -> None:
    """Write one band-year into every open file."""
    n_lat, n_lon = grid.shape
    rows = i1 - i0
    lat, lon = grid.cell_lat()[pos], grid.cell_lon()[pos]
    if f.truth is not None:
        for name, values in (
            ("NEE", by.nee),
            ("GPP", by.gpp),
            ("Reco", by.reco),
            ("fire", by.fire),
            ("fAPAR", by.fapar),
        ):
            f.truth[name][:, i0:i1, :] = _slab(values, in_band, rows, n_lon).astype("f4")
    if f.gfas is not None:
        co2 = by.fire * KG_CO2_PER_G_C / 86400.0  # g C m-2 d-1 -> kg CO2 m-2 s-1
        f.gfas["co2fire"][:, n_lat - i1 : n_lat - i0, :] = _to_era_order(
            _slab(co2, in_band, rows, n_lon, 0.0)
        ).astype("f4")
    if f.era5:
        doy_prev = pd.Timestamp(f"{by.year - 1}-12-31").day_of_year
        doy = np.concatenate([[doy_prev], by.dates.day_of_year.to_numpy()])
        for (d0, d1), ds in f.era5.items():
            rows_w = slice(d0, d1 + 1)  # weather rows: the day before the file's first day, then its days
            fields = era5_sim.hourly({k: v[rows_w] for k, v in by.weather.items()}, doy[rows_w], lat, lon)
            for name, values in fields.items():
                era5_sim.write_points(ds, name, values, in_band, i0, i1, n_lat, n_lon)
        if f.closing is not None:
            last = {k: np.concatenate([v[-1:], v[-1:]]) for k, v in by.weather.items()}
            fields = era5_sim.hourly(last, np.array([doy[-1], 1]), lat, lon)
            for name in ("tp", "ssrd"):
                era5_sim.write_points(f.closing, name, fields[name][:1], in_band, i0, i1, n_lat, n_lon)
    if f.modis:
        rng = np.random.default_rng([seed, _MODIS_STREAM, by.year, i0])
        observed = modis.observe(by.dates, by.weather, by.fapar, rng)
        for product, ds in f.modis.items():
            modis.write_band(ds, product, observed[product], in_band, i0, i1, n_lon)


class OneDegree:
    """Mapping of the world grid onto the 1 degree grid of the inversions.

    ``area`` (180, 360) m2 of each 1 degree cell; ``land_area`` m2 of simulated land in it; ``region``
    its region (largest land share). :meth:`integrate` turns a band's per-area amounts into amounts
    per 1 degree cell (ocean counts as zero).
    """

    def __init__(self, grid: WorldGrid):
        from fluxcube.simulate.inversions_sim import one_degree_area

        self.grid = grid
        self.area = one_degree_area()
        land_amount = np.where(grid.land, 1.0, 0.0)[None]
        self.land_area = self.integrate(land_amount, 0, grid.shape[0])[0]
        shares = np.stack(
            [
                self.integrate(np.where(grid.land & (grid.region == r), 1.0, 0.0)[None], 0, grid.shape[0])[0]
                for r in [OTHER_LAND, *sorted(REGIONS)]
            ]
        )
        self.region = np.array([OTHER_LAND, *sorted(REGIONS)])[shares.argmax(axis=0)].astype("i1")

    def integrate(self, per_area: np.ndarray, i0: int, i1: int) -> np.ndarray:
        """Amounts per m2 (t, rows i0..i1, lon) of the world -> amounts per 1 degree cell (t, 180, 360)."""
        g = self.grid.grid_deg
        t = per_area.shape[0]
        out = np.zeros((t, 180, 360))
        if g <= 1.0:
            k = round(1.0 / g)
            amount = per_area * self.grid.area[i0:i1][None, :, None]
            blocks = amount.reshape(t, (i1 - i0) // k, k, 360, k).sum(axis=(2, 4))
            out[:, i0 // k : i1 // k] = blocks
        else:
            m = round(g)
            fine = np.repeat(np.repeat(per_area, m, axis=1), m, axis=2)
            out[:, i0 * m : i1 * m] = fine * self.area[i0 * m : i1 * m][None]
        return out


def _regional_frame(
    integrals: np.ndarray, months: pd.DatetimeIndex, region_ids: list[int], grid: WorldGrid
) -> pd.DataFrame:
    areas = grid.region_areas()
    rows = []
    for t, month in enumerate(months):
        for k, r in enumerate(region_ids):
            values = dict(zip(QUANTITIES, integrals[t, k], strict=True))
            rows.append(
                {
                    "year": month.year,
                    "month": month.month,
                    "region_id": r,
                    "region": REGIONS[r][0] if r in REGIONS else "OTHER",
                    "region_name": REGIONS[r][1] if r in REGIONS else "land in no region",
                    "land_area_m2": areas[r],
                    **values,
                    "net_land_flux": values["NEE"] + values["fire"],
                }
            )
    return pd.DataFrame(rows)


def _global_frame(regional: pd.DataFrame) -> pd.DataFrame:
    cols = [*QUANTITIES, "net_land_flux"]
    glob = regional.groupby("year")[cols].sum().reset_index()
    glob["residual_land_sink"] = -glob["net_land_flux"]
    return glob
