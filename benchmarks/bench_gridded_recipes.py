"""Benchmark: the gridded recipes (ERA5, GFAS, inversions) against a plain xarray copy of the same files.

Per recipe and input size, side by side in one run: the recipe (``<module>.run(source, target)``: its Beam
pipelines, checks, regridding to 0.5 degree, validation by reading the store back, input hashing and
atomic publication with the catalog) and a baseline that only copies the files' arrays to Zarr v3:

========== ============================================ ====================================================
recipe     inputs (1x; 10x = 10 times as many)          baseline
========== ============================================ ====================================================
era5       GRIB: ``era5-2mt-2019-03-uk.grib`` (744       ``xr.open_mfdataset(files).to_zarr(...)`` (cfgrib
           hourly 2t messages), 10x = 10 copies, each   for GRIB, netCDF4 for NetCDF), hourly fields on
           31 days later; NetCDF: ``ERA5_2022-08-31_    their native grid
           tp.nc`` and its next-day copy (1 complete
           day), 10x = 20 files (19 days), 100x = 200
gfas       simulated world (``write_world``, 2 degree   ``xr.open_mfdataset(files).to_zarr(...)``
           grid, fire only): one year of daily          (rechunked to 32 days: the yearly files'
           ``co2fire`` (1 file); 10x = 10 years         chunks do not line up)
gfas01     (recipe ``gfas``) the same years as GFAS-    as for gfas
           layout files on the real 0.1 degree grid
           over a 20 x 20 degree region (:func:`fine_
           gfas`)
inversions the world's GCB2022-layout gridded file (5    per file ``xr.open_dataset(f)[variable]
           members, 1 x 1 degree, 12 months) + the 4    .to_zarr(...)`` (the layouts differ, so no
           so-co2-airborne-obs zonal files; 10x = the   ``open_mfdataset``)
           10-year world's file (120 months) + the same
           zonal files. The GFAS store the gridded
           product needs is published into the target
           before the clock starts                      ``baseline05``: the same 0.5 degree outputs the
                                                        plain xarray way (:func:`baseline_gridded`)
gcb        the sample GCB tables (2022 csv + xlsx,      per table ``pandas.read_csv`` / ``read_excel``,
           2023 xlsx); 10x = ten copies as editions     ``Dataset.from_dataframe(...).to_zarr(...)``
           2022 + 2k, 2023 + 2k
regions    the Natural Earth lowres polygons (1x only)  ``regionmask.from_geopandas(...).mask(LON, LAT)``
                                                        ``.to_zarr(...)`` (cell centres only)
========== ============================================ ====================================================

For gcb and regions the "decoded MB" are the input files' bytes. CPU time includes child processes
(the regions recipe rasterizes in a spawned one).

Throughput = MB of decoded source values the recipe reads (count x 4 bytes; the same figure for both)
per second of wall time of the work, in a fresh process per run (the modules both use, xarray and the
recipe modules, are imported before the clock starts; anything imported later is counted). Also
reported: CPU time of the work (user + system; less sensitive to other load on the machine), peak RSS
of the process and its RSS after the imports, and the load average. Runs are interleaved (recipe,
baseline, recipe, ...) so that load changes hit both; figures are medians over ``--repeat`` runs.

    PYTHONPATH=src python benchmarks/bench_gridded_recipes.py [--recipes era5,gfas,gfas01,inversions]
        [--kinds grib netcdf] [--sizes 1 10] [--repeat 3] [--out results.json]

The simulated inputs are written once into ``--cache`` (default ``benchmarks/results/gridded-inputs``,
gitignored; writing the 10-year world takes about a minute).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

GRIB = "era5-2mt-2019-03-uk.grib"
NETCDF = "ERA5_2022-08-31_tp.nc"
WORLD = {"grid_deg": 2.0, "start_year": 2001, "seed": 0, "regions": "boxes", "n_inversions": 5}
ZONAL = "inversions/so-co2-airborne-obs"


# ------------------------------------------------------------------------------------------- inputs
def shifted_grib(src: Path, dst: Path, days: int) -> None:
    """Copy every message of ``src`` with its dataDate moved on by ``days``."""
    import datetime as dt

    import eccodes

    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while (g := eccodes.codes_grib_new_from_file(fin)) is not None:
            try:
                d = dt.datetime.strptime(str(eccodes.codes_get(g, "dataDate")), "%Y%m%d")
                eccodes.codes_set(g, "dataDate", int((d + dt.timedelta(days=days)).strftime("%Y%m%d")))
                eccodes.codes_write(g, fout)
            finally:
                eccodes.codes_release(g)


def shifted_netcdf(src: Path, dst: Path, days: int) -> None:
    import xarray as xr

    with xr.open_dataset(src) as ds:
        ds = ds.load()
    ds["time"] = ds["time"] + np.timedelta64(days, "D")
    ds.to_netcdf(dst)


def prepare_era5(
    era5_dir: Path, root: Path, kinds: tuple[str, ...] = ("grib", "netcdf"), sizes: tuple[int, ...] = (1, 10)
) -> dict[str, Path]:
    """Folders <kind>-<n>x (grib-1x, grib-10x, netcdf-1x, netcdf-10x by default) under ``root``."""
    out = {}
    for kind, name, shift, step in (("grib", GRIB, shifted_grib, 31), ("netcdf", NETCDF, shifted_netcdf, 1)):
        if kind not in kinds:
            continue
        for n in sizes:
            folder = root / f"{kind}-{n}x"
            if not folder.exists():
                tmp = root / f".{kind}-{n}x"
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir(parents=True)
                for k in range(n if kind == "grib" else 2 * n):
                    dst = tmp / (name if k == 0 else f"{k:02d}_{name}")
                    if k == 0:
                        shutil.copy(era5_dir / name, dst)
                    else:
                        shift(era5_dir / name, dst, k * step)
                tmp.rename(folder)
            out[folder.name] = folder
    return out


prepare = prepare_era5  # the name bench_era5_recipe.py used


def world(cache: Path, years: int) -> Path:
    """The simulated world (fire and inversions, :data:`WORLD`) of ``years`` years, written once."""
    folder = cache / f"world-{years}y"
    if not folder.exists():
        from fluxcube.simulate.world import write_world

        tmp = cache / f".world-{years}y"
        shutil.rmtree(tmp, ignore_errors=True)
        write_world(
            tmp,
            end_year=WORLD["start_year"] + years - 1,
            components=("fire", "inversions"),
            **WORLD,  # type: ignore[arg-type]
        )
        tmp.rename(folder)
    return folder


def prepare_gfas(cache: Path, root: Path, sizes: tuple[int, ...]) -> dict[str, Path]:
    """Folders gfas-<n>x: the first n yearly GFAS files of the 10-year world (n <= 10)."""
    out = {}
    src = world(cache, max(10, *sizes)) / "gfas"
    files = sorted(src.glob("cams_gfas_co2fire_*.nc"))
    for n in sizes:
        folder = root / f"gfas-{n}x"
        folder.mkdir(parents=True, exist_ok=True)
        for f in files[:n]:
            if not (folder / f.name).exists():
                shutil.copy(f, folder / f.name)
        shutil.copy(src / "SYNTHETIC.json", folder / "SYNTHETIC.json")
        out[folder.name] = folder
    return out


#: The 0.1 degree region of the ``gfas01`` inputs (degrees; edges on the 2 degree world's cell edges).
FINE_REGION = {"lat": (-20.0, 0.0), "lon": (14.0, 34.0)}


def fine_gfas(src: Path, dst: Path, step: float = 0.1) -> None:
    """A GFAS-layout file on the real product's 0.1 degree grid over :data:`FINE_REGION` (latitude
    descending, longitude 0..360, float32, one zlib-compressed chunk per day) whose values are the
    2 degree world's (each 2 degree cell's value in its 400 0.1 degree cells)."""
    import netCDF4

    (la0, la1), (lo0, lo1) = FINE_REGION["lat"], FINE_REGION["lon"]
    lat = np.round(np.arange(la1 - step / 2, la0, -step), 4)
    lon = np.round(np.arange(lo0 + step / 2, lo1, step), 4)
    with netCDF4.Dataset(src) as nc:
        slat = np.asarray(nc["latitude"][:], "float64")
        slon = np.asarray(nc["longitude"][:], "float64") % 360.0
        dlat, dlon = abs(slat[1] - slat[0]), abs(slon[1] - slon[0])
        ii = np.array([np.argmin(np.abs(slat - y)) for y in lat])  # source cell holding each fine cell
        jj = np.array([np.argmin(np.abs(slon - x)) for x in lon])
        assert np.all(np.abs(slat[ii] - lat) <= dlat / 2) and np.all(np.abs(slon[jj] - lon) <= dlon / 2)
        times, units = nc["time"][:], nc["time"].units
        with netCDF4.Dataset(dst, "w") as out:
            out.title = "GFAS-layout 0.1 degree regional fire CO2 (synthetic, from the simulated world)"
            for name, values in (("longitude", lon), ("latitude", lat)):
                out.createDimension(name, values.size)
                v = out.createVariable(name, "f4", (name,))
                v.units = "degrees_east" if name == "longitude" else "degrees_north"
                v[:] = values
            out.createDimension("time", None)
            t = out.createVariable("time", "i4", ("time",))
            t.units, t.calendar = units, "gregorian"
            t[:] = times
            fire = out.createVariable(
                "co2fire",
                "f4",
                ("time", "latitude", "longitude"),
                zlib=True,
                complevel=1,
                chunksizes=(1, lat.size, lon.size),
                fill_value=np.float32(np.nan),
            )
            fire.units = "kg m**-2 s**-1"
            fire.long_name = "Wildfire flux of Carbon Dioxide"
            for k in range(0, len(times), 32):
                block = np.asarray(nc["co2fire"][k : k + 32], "float32")
                fire[k : k + block.shape[0]] = block[:, ii][:, :, jj]


def prepare_gfas01(cache: Path, root: Path, sizes: tuple[int, ...]) -> dict[str, Path]:
    """Folders gfas01-<n>x: n yearly 0.1 degree regional GFAS-layout files (:func:`fine_gfas`)."""
    out = {}
    src = world(cache, max(10, *sizes)) / "gfas"
    files = sorted(src.glob("cams_gfas_co2fire_*.nc"))
    fine = cache / "gfas01"
    fine.mkdir(parents=True, exist_ok=True)
    for n in sizes:
        folder = root / f"gfas01-{n}x"
        folder.mkdir(parents=True, exist_ok=True)
        for f in files[:n]:
            if not (fine / f.name).exists():
                fine_gfas(f, fine / f".{f.name}")
                (fine / f".{f.name}").rename(fine / f.name)
            if not (folder / f.name).exists():
                os.link(fine / f.name, folder / f.name)
        shutil.copy(src / "SYNTHETIC.json", folder / "SYNTHETIC.json")
        out[folder.name] = folder
    return out


def prepare_inversions(cache: Path, data: Path, root: Path, sizes: tuple[int, ...]) -> dict[str, Path]:
    """Folders inversions-<n>x: the n-year world's GCB2022-layout file and the 4 zonal sample files, and
    ``<folder>.gfas``: that world's GFAS files (published into the target before each timed run)."""
    out = {}
    for n in sizes:
        w = world(cache, n)
        folder = root / f"inversions-{n}x"
        (folder / "gcb").mkdir(parents=True, exist_ok=True)
        for f in (w / "inversions").iterdir():
            shutil.copy(f, folder / "gcb" / f.name)
        zonal = data / "grids" / ZONAL
        for f in sorted(zonal.glob("*/fluxes_za_ts_monthly.nc")):
            (folder / "zonal" / f.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(f, folder / "zonal" / f.parent.name / f.name)
        shutil.copytree(w / "gfas", root / f"inversions-{n}x.gfas", dirs_exist_ok=True)
        out[folder.name] = folder
    return out


GCB = "gcb"
REGIONS = "regions/naturalearth_lowres"


def prepare_gcb(data: Path, root: Path, sizes: tuple[int, ...]) -> dict[str, Path]:
    """Folders gcb-<n>x: the sample GCB tables (2022 csv + xlsx, 2023 xlsx); 10x = ten copies of them as
    editions 2022 + 2k (2022 layout) and 2023 + 2k (2023 layout), k = 0..n-1."""
    out = {}
    src = data / "grids" / GCB
    files = sorted(src.glob("Global_Carbon_Budget_*"))
    for n in sizes:
        folder = root / f"gcb-{n}x"
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(n):
            for f in files:
                edition = int(f.name.split("_")[3][:4])
                dst = folder / f.name.replace(str(edition), str(edition + 2 * k), 1)
                if not dst.exists():
                    shutil.copy(f, dst)
        out[folder.name] = folder
    return out


def prepare_regions(data: Path, root: Path) -> dict[str, Path]:
    """Folder regions-1x: the Natural Earth lowres polygons (the RECCAP2 *ocean* mask file next to them
    has no land regions, so the recipe builds from the polygons)."""
    folder = root / "regions-1x"
    if not folder.exists():
        shutil.copytree(data / "grids" / REGIONS, folder)
    return {folder.name: folder}


def decoded_bytes(recipe: str, folder: Path) -> int:
    """Bytes of the decoded source values the recipe reads (count x 4); for the tables and polygons
    (gcb, regions) the input files' bytes."""
    if recipe in ("gcb", "regions"):
        return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    if recipe == "era5":
        from fluxcube.recipes import era5

        return sum(era5.scan(f).decoded_bytes() for f in era5.find_files(str(folder)))
    import netCDF4

    from fluxcube.recipes import gfas, inversions

    names = {"gfas": (gfas.VARIABLE,), "inversions": (inversions.GCB_VARIABLE, "SFCO2_LND")}[recipe]
    files = gfas.find_files(str(folder)) if recipe == "gfas" else inversions.find_files(str(folder))
    total = 0
    for f in files:
        with netCDF4.Dataset(f) as nc:
            total += sum(int(np.prod(nc[v].shape)) * 4 for v in names if v in nc.variables)
    return total


# -------------------------------------------------------------------------------------------- runs
def baseline(recipe: str, folder: Path, target: Path) -> None:
    import xarray as xr

    if recipe == "gcb":  # pandas read of every table, one store per file
        import pandas as pd

        for k, f in enumerate(sorted(folder.iterdir())):
            if f.suffix == ".csv":
                df = pd.read_csv(f)
            else:
                raw = pd.read_excel(f, sheet_name="Global Carbon Budget", header=None)
                row = int(np.flatnonzero(raw.iloc[:, 0].astype(str).str.strip() == "Year")[0])
                df = raw.iloc[row + 1 :].set_axis(raw.iloc[row].astype(str), axis=1)
            df = df.loc[:, [str(c) != "nan" for c in df.columns]]
            df = df.apply(pd.to_numeric, errors="coerce").dropna(axis=1, how="all")
            df.columns = [str(c) for c in df.columns]
            xr.Dataset.from_dataframe(df.reset_index(drop=True)).to_zarr(
                str(target / f"{k}.zarr"), mode="w", zarr_format=3, consolidated=False
            )
        return
    if recipe == "regions":  # regionmask on the same polygons, the 0.5 degree grid
        import geopandas as gpd
        import regionmask

        from fluxcube.recipes.regions import LAT, LON

        gdf = gpd.read_file(next(folder.glob("*.shp")))
        regs = regionmask.from_geopandas(gdf, names="name", abbrevs="_from_name", overlap=False)
        mask = regs.mask(LON, LAT)
        mask.to_dataset(name="region").to_zarr(str(target), mode="w", zarr_format=3, consolidated=False)
        return

    if recipe == "inversions":
        from fluxcube.recipes import inversions

        for k, f in enumerate(inversions.find_files(str(folder))):
            with xr.open_dataset(f, chunks={}) as ds:
                var = inversions.GCB_VARIABLE if inversions.GCB_VARIABLE in ds else "SFCO2_LND"
                ds[[var]].to_zarr(str(target / f"{k}.zarr"), mode="w", zarr_format=3, consolidated=False)
        return
    files = sorted(str(f) for f in folder.iterdir() if f.suffix in (".grib", ".nc"))
    if recipe == "gfas":  # yearly files of 365/366 days: uniform Zarr chunks need a rechunk
        ds = xr.open_mfdataset(files, combine="by_coords").chunk({"time": 32})
        ds.to_zarr(str(target), mode="w", zarr_format=3, consolidated=False)
        return
    if files[0].endswith(".grib"):
        ds = xr.open_mfdataset(
            files, engine="cfgrib", backend_kwargs={"indexpath": ""}, combine="nested", concat_dim="time"
        )
    else:
        ds = xr.open_mfdataset(files, combine="by_coords")
    ds.to_zarr(str(target), mode="w", zarr_format=3, consolidated=False)


def baseline_gridded(folder: Path, target: Path) -> None:
    """The inversions' same outputs the plain xarray way (``baseline05``): the zonal files copied as in
    :func:`baseline`; each GCB2022-layout file's flux converted to g C m-2 d-1, each 1 degree cell
    repeated into its four 0.5 degree cells, minus the GFAS store's monthly means
    (``resample(time="MS").mean()``), both variables written with the recipe's chunks (1, 12, 90, 90).
    No checks, no validation, no publication. ``target`` holds the published GFAS store (as for the
    recipe)."""
    import xarray as xr

    from fluxcube.recipes import inversions
    from fluxcube.recipes.regions import LAT, LON

    gfas_store = next((target / "datasets" / "gfas_fire_daily_0p5deg" / "versions").glob("*.zarr"))
    fire = xr.open_zarr(str(gfas_store), consolidated=False, zarr_format=3)["fire_c"]
    monthly = fire.resample(time="MS").mean()
    out = target / "baseline05"
    for k, f in enumerate(inversions.find_files(str(folder))):
        with xr.open_dataset(f, chunks={"ensemble_member": 1, "time": 12}) as ds:
            if inversions.GCB_VARIABLE not in ds:
                ds[["SFCO2_LND"]].to_zarr(str(out / f"{k}.zarr"), mode="w", zarr_format=3, consolidated=False)
                continue
            v = ds[inversions.GCB_VARIABLE].sortby("latitude")
            months = v["time"].values.astype("datetime64[M]").astype("datetime64[ns]")
            v = v.assign_coords(time=months)
            days = xr.where(v["time"].dt.is_leap_year, 366.0, 365.0)
            flux = (v * 1e15 / days).isel(
                latitude=np.repeat(np.arange(v.sizes["latitude"]), 2),
                longitude=np.repeat(np.arange(v.sizes["longitude"]), 2),
            )
            flux = flux.assign_coords(latitude=LAT, longitude=LON).astype("float32")
            fire_m = monthly.rename(lat="latitude", lon="longitude").reindex(time=flux["time"])
            adjusted = (flux.astype("float64") - fire_m).astype("float32")
            chunks = {"ensemble_member": 1, "time": 12, "latitude": 90, "longitude": 90}
            xr.Dataset({"land_flux": flux, "land_flux_fire_adjusted": adjusted}).chunk(chunks).to_zarr(
                str(out / f"{k}.zarr"), mode="w", zarr_format=3, consolidated=False
            )


def case(method: str, recipe: str, folder: Path, target: Path) -> dict[str, float]:
    """Run one case in this process; return wall and CPU time, peak RSS and the RSS after the imports."""
    import importlib

    import xarray  # noqa: F401 (imported before the clock starts, by both)

    module = importlib.import_module(f"fluxcube.recipes.{recipe}")
    if recipe == "era5":
        import cfgrib  # noqa: F401 (the baseline's GRIB engine, imported before the clock like the recipe)
    if recipe == "gcb":
        import openpyxl  # noqa: F401 (both read xlsx with it)
        import pandas  # noqa: F401
    if recipe == "regions":
        import geopandas  # noqa: F401 (the baseline's; the recipe reads the shapefile itself)
        import regionmask  # noqa: F401
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load = os.getloadavg()[0]
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)  # regions rasterizes in a child process
    t0 = time.perf_counter()
    if method == "recipe":
        summary = module.run(str(folder), str(target))
        assert summary.published and not summary.refused, summary
    elif method == "baseline05":
        baseline_gridded(folder, target)
    else:
        baseline(recipe, folder, target)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    cpu += (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
    rss = r1.ru_maxrss / 1024  # KiB -> MiB (Linux)
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mib": rss, "rss_after_imports_mib": base, "load": load}


def seed_target(name: str, folder: Path, target: Path) -> None:
    """Before an inversions run: the GFAS store its gridded product subtracts, published in the target."""
    if name.startswith("inversions"):
        seed = folder.parent / f".{name}.target"
        if not seed.exists():
            from fluxcube.recipes import gfas

            assert gfas.DATASET in gfas.run(str(folder.parent / f"{name}.gfas"), str(seed)).published
        shutil.copytree(seed, target)


def median(rs: list[dict[str, float]], key: str) -> float:
    return float(np.median([r[key] for r in rs]))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--case", nargs=4, metavar=("METHOD", "RECIPE", "FOLDER", "TARGET"), help=argparse.SUPPRESS
    )
    ap.add_argument(
        "--recipes",
        default="era5,gfas,gfas01,inversions",
        help="comma-separated: era5, gfas (2 degree world), gfas01 (0.1 degree region), inversions, gcb, "
        "regions",
    )
    ap.add_argument("--kinds", nargs="+", default=["grib", "netcdf"], choices=["grib", "netcdf"], help="ERA5")
    ap.add_argument("--sizes", nargs="+", type=int, default=[1, 10], help="input multiples (default 1 10)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per case (interleaved); median")
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--data", default=os.environ.get("FLUXCUBE_DATA", "../shared/data"))
    ap.add_argument("--cache", default=str(Path(__file__).parent / "results" / "gridded-inputs"))
    args = ap.parse_args(argv)
    if args.case:
        method, recipe, folder, target = args.case
        print(json.dumps(case(method, recipe, Path(folder), Path(target))))
        return
    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    data, cache = Path(args.data), Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    sizes = tuple(args.sizes)
    cases: dict[str, tuple[str, Path]] = {}
    if "era5" in recipes:
        if not (data / "grids" / "era5" / NETCDF).exists():
            print(f"SAMPLE DATA MISSING: {data / 'grids' / 'era5'}")
        else:
            for name, f in prepare_era5(
                data / "grids" / "era5", cache / "era5", tuple(args.kinds), sizes
            ).items():
                cases[name] = ("era5", f)
    if "gfas" in recipes:
        small = tuple(n for n in sizes if n <= 10)
        cases.update({name: ("gfas", f) for name, f in prepare_gfas(cache, cache / "gfas", small).items()})
    if "gfas01" in recipes:
        small = tuple(n for n in sizes if n <= 10)
        cases.update({name: ("gfas", f) for name, f in prepare_gfas01(cache, cache / "gfas", small).items()})
    if "inversions" in recipes:
        if not (data / "grids" / ZONAL).exists():
            print(f"SAMPLE DATA MISSING: {data / 'grids' / ZONAL}")
        else:
            small = tuple(n for n in sizes if n <= 10)
            for name, f in prepare_inversions(cache, data, cache / "inversions", small).items():
                cases[name] = ("inversions", f)
    if "gcb" in recipes:
        if not (data / "grids" / GCB).exists():
            print(f"SAMPLE DATA MISSING: {data / 'grids' / GCB}")
        else:
            small = tuple(n for n in sizes if n <= 10)
            cases.update({name: ("gcb", f) for name, f in prepare_gcb(data, cache / "gcb", small).items()})
    if "regions" in recipes:
        if not (data / "grids" / REGIONS).exists():
            print(f"SAMPLE DATA MISSING: {data / 'grids' / REGIONS}")
        else:
            cases.update({n: ("regions", f) for n, f in prepare_regions(data, cache / "regions").items()})
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-gridded-") as tmp:
        for name, (recipe, folder) in cases.items():
            mb = decoded_bytes(recipe, folder) / 1e6
            size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6
            methods = (
                ("recipe", "baseline", "baseline05") if recipe == "inversions" else ("recipe", "baseline")
            )
            runs: dict[str, list[dict]] = {m: [] for m in methods}
            for k in range(args.repeat):
                for method in methods:  # interleaved, so that load changes hit both
                    target = Path(tmp) / "out" / f"{name}-{method}-{k}"
                    if method in ("recipe", "baseline05"):
                        seed_target(name, folder, target)
                    t0 = time.perf_counter()
                    proc = subprocess.run(
                        [sys.executable, __file__, "--case", method, recipe, str(folder), str(target)],
                        capture_output=True,
                        text=True,
                    )
                    if proc.returncode:
                        raise RuntimeError(f"{name} {method}: {proc.stderr[-3000:]}")
                    r = json.loads(proc.stdout.strip().splitlines()[-1])
                    r["process_wall_s"] = time.perf_counter() - t0
                    runs[method].append(r)
                    shutil.rmtree(target, ignore_errors=True)
            med: dict[str, dict[str, Any]] = {}
            for method, rs in runs.items():
                r: dict[str, Any] = {
                    k: median(rs, k)
                    for k in (
                        "wall_s",
                        "cpu_s",
                        "peak_rss_mib",
                        "rss_after_imports_mib",
                        "load",
                        "process_wall_s",
                    )
                }
                r.update(inputs=name, recipe=recipe, method=method, file_mb=size, decoded_mb=mb, runs=rs)
                r["mb_per_s"] = mb / r["wall_s"]
                results.append(r)
                med[method] = r
                print(
                    f"{name:15s} {method:10s} files {size:7.1f} MB  decoded {mb:7.1f} MB  "
                    f"{r['wall_s']:6.2f} s (CPU {r['cpu_s']:6.2f} s, process {r['process_wall_s']:6.2f} s)  "
                    f"{r['mb_per_s']:7.2f} MB/s  peak RSS {r['peak_rss_mib']:5.0f} MiB "
                    f"({r['rss_after_imports_mib']:.0f} after imports)  load {r['load']:.1f}",
                    flush=True,
                )
            for other in methods[1:]:
                ratio = med["recipe"]["mb_per_s"] / med[other]["mb_per_s"]
                cpu_ratio = med[other]["cpu_s"] / med["recipe"]["cpu_s"]
                print(
                    f"{name:15s} ratio recipe / {other}: throughput {ratio:.2f}x "
                    f"(by CPU time {cpu_ratio:.2f}x)",
                    flush=True,
                )
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
