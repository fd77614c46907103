"""Benchmark: the driver stage (fluxcube.drivers) on synthetic inputs of the exact input schemas.

Part ``throughput``: the global driver cube of a small region (global-land-mask land in Europe,
36..72 N, 12 W..42 E; 2 years) built by ``fluxcube.drivers.build.build_cube`` (Dask LocalCluster,
2 workers; validation and publication included), side by side with a naive single-process
numpy/pandas version of the same computation (load the region's inputs into memory with xarray,
pandas groupby per 8-day slot, ``np.interp`` per pixel, the same bucket equations as a numpy loop
over days, ``to_zarr`` of the result; no checks, no provenance). Each variant in its own process
(peak RSS is the variant's), ``--repeat`` times, interleaved; the results are compared value by value.
Reported: pixel-days per second (land pixels x days / wall time) and the ratio ours / naive.

Part ``global``: the global 0.5 degree land cube for one year (2012) with 2 workers capped at
``FLUXCUBE_DASK_MEMORY=4GiB`` each: wall time, pixel-days per second and the peak RSS of each worker
process (VmHWM reported by the tasks) and of the client process, and the naive version on the same
global inputs (all in memory) side by side.

Part ``layout``: read patterns on the global cube's Tair (time, pixel) in several chunkings, against
the (time, lat, lon) input layout (32, 90, 90): one day at all land pixels (map), one pixel all days
(series), a year at 1000 random pixels (bridge pixels), a year at all land pixels (forward block).
Best of ``--repeat`` reads through zarr (arrays opened afresh each time; warm OS page cache).

    PYTHONPATH=src python benchmarks/bench_drivers.py [--part throughput|global|layout|all] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REGION = {"lat": (36.0, 72.0), "lon": (-12.0, 42.0)}
LAYOUTS = {
    "(time 96, pixel 8192) [chosen]": (96, 8192),
    "(time 96, pixel 2048)": (96, 2048),
    "(time 365, pixel 2048)": (365, 2048),
    "(time 365, pixel 512)": (365, 512),
    "(time 32, pixel all)": (32, None),
    "(time 366, pixel all)": (366, None),
}


def peak_mib() -> float:
    from fluxcube.drivers.build import peak_rss_mib

    return peak_rss_mib()


def region_land() -> np.ndarray:
    from fluxcube.drivers.synthetic import land_cells
    from fluxcube.recipes.regions import LAT, LON

    la, lo = np.meshgrid(LAT, LON, indexing="ij")
    box = (
        (la > REGION["lat"][0]) & (la < REGION["lat"][1]) & (lo > REGION["lon"][0]) & (lo < REGION["lon"][1])
    )
    return land_cells() & box


def write_inputs(root: str, land: np.ndarray, start_year: int, end_year: int) -> float:
    from fluxcube.drivers import synthetic
    from fluxcube.publish import Publisher

    t = time.perf_counter()
    pub = Publisher(root)
    synthetic.write_regions(pub, land)
    synthetic.write_era5(pub, land, f"{start_year}-01-01", f"{end_year}-12-31")
    synthetic.write_modis(pub, land, start_year, end_year)
    return time.perf_counter() - t


# ------------------------------------------------------------------------------------ the variants
def run_fluxcube(root: str, workers: int) -> dict:
    from fluxcube.drivers.build import LazyClient, build_cube
    from fluxcube.publish import Publisher

    t = time.perf_counter()
    with LazyClient(workers) as cluster:
        _, new, stats = build_cube(Publisher(root), cluster, force=True)
    wall = time.perf_counter() - t
    assert new
    return {"wall_s": wall, "peak_rss_mib": peak_mib(), **stats}


def run_naive(root: str, out: str) -> dict:
    """The same drivers, the simple way: everything in memory, one process, no checks."""
    import pandas as pd
    import xarray as xr

    from fluxcube.publish import Publisher

    t = time.perf_counter()
    pub = Publisher(root)
    mask = pub.open("regions_land_0p5deg").load()
    rows, cols = np.nonzero(mask["region_id"].values > 0)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    era5 = pub.open("era5_daily_0p5deg").isel(lat=slice(r0, r1), lon=slice(c0, c1)).load()
    modis = pub.open("modis_8day_0p5deg").isel(lat=slice(r0, r1), lon=slice(c0, c1)).load()
    pr, pc = rows - r0, cols - c0
    npix, ndays = rows.size, era5.sizes["time"]
    res: dict[str, np.ndarray] = {}
    doy = pd.DatetimeIndex(modis["time"].values).day_of_year.to_numpy()
    centres = np.append(8.0 * np.arange(45) + 4.5, 363.0)
    for name in ("EVI", "fAPAR", "LST_day", "LST_night", "MIR", "NDVI", "NDWI"):
        frame = pd.DataFrame(modis[name].values[:, pr, pc].astype(float))
        means = frame.groupby((doy - 1) // 8).mean().reindex(range(46)).to_numpy()
        msc = np.full((366, npix), np.nan)
        for j in range(npix):
            ok = np.isfinite(means[:, j])
            if ok.sum() >= 4:
                msc[:, j] = np.interp(np.arange(1, 367), centres[ok], means[ok, j], period=365.0)
        res[f"{name}_msc"] = msc
    tair = era5["Tair"].values[:, pr, pc].astype(float)
    rg = era5["Rg"].values[:, pr, pc].astype(float)
    p = era5["P"].values[:, pr, pc].astype(float)
    s = 4098 * 0.6108 * np.exp(17.27 * tair / (tair + 237.3)) / (tair + 237.3) ** 2
    pet = 1.26 * s / (s + 0.067) * 0.6 * np.clip(rg, 0, None) * 0.0864 / 2.45
    w = np.full(npix, 150.0)
    for _ in range(5):
        for i in range(365):
            f = np.minimum(150.0, w + p[i])
            w = f - np.minimum(pet[i], 0.05 * f)
    wai = np.empty_like(p)
    for i in range(ndays):
        f = np.minimum(150.0, w + p[i])
        w = f - np.minimum(pet[i], 0.05 * f)
        wai[i] = w / 150.0
    ds = xr.Dataset(
        {
            "Tair": (("time", "pixel"), tair.astype("float32")),
            "Rg": (("time", "pixel"), rg.astype("float32")),
            "WAI": (("time", "pixel"), wai.astype("float32")),
            **{k: (("dayofyear", "pixel"), v.astype("float32")) for k, v in res.items()},
        },
        coords={"time": era5["time"].values, "row": ("pixel", rows), "col": ("pixel", cols)},
    )
    ds.to_zarr(out, mode="w", zarr_format=3, consolidated=False)
    return {"wall_s": time.perf_counter() - t, "peak_rss_mib": peak_mib(), "pixels": npix, "days": ndays}


def child(*args: str, env: dict | None = None) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--case", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------- parts
def throughput_part(tmp: Path, repeat: int) -> dict:
    import xarray as xr

    from fluxcube.drivers.build import CUBE_DATASET
    from fluxcube.publish import Publisher

    root = str(tmp / "store")
    land = region_land()
    setup = write_inputs(root, land, 2011, 2012)
    runs: dict[str, list[dict]] = {"fluxcube": [], "naive": []}
    for _ in range(repeat):
        runs["fluxcube"].append(child("fluxcube", root, "2"))
        runs["naive"].append(child("naive", root, str(tmp / "naive.zarr")))
    cube = Publisher(root).open(CUBE_DATASET)
    naive = xr.open_zarr(tmp / "naive.zarr", consolidated=False)
    # the naive version keeps row-major order; the cube packs pixels tile by tile: match them by cell
    key = naive["row"].values * 720 + naive["col"].values
    at = np.searchsorted(key, cube["row"].values.astype(int) * 720 + cube["col"].values.astype(int))
    diff = {
        k: float(np.nanmax(np.abs(cube[k].values - naive[k].values[:, at])))
        for k in ("Tair", "WAI", "NDVI_msc", "LST_day_msc")
    }
    out: dict = {"land_pixels": int(land.sum()), "inputs_written_s": setup, "max_abs_difference": diff}
    for k, rs in runs.items():
        wall = statistics.median(r["wall_s"] for r in rs)
        pd_ = rs[0]["pixels"] * rs[0]["days"]
        out[k] = {
            "wall_s": wall,
            "pixel_days_per_s": pd_ / wall,
            "peak_rss_mib": max(r["peak_rss_mib"] for r in rs),
            "worker_peak_rss_mib": max(r.get("peak_rss_mib_per_worker", 0.0) for r in rs),
            "runs": rs,
        }
    out["ratio_wall_ours_over_naive"] = out["fluxcube"]["wall_s"] / out["naive"]["wall_s"]
    print(
        f"throughput ({out['land_pixels']} land pixels x {runs['naive'][0]['days']} days): fluxcube "
        f"{out['fluxcube']['pixel_days_per_s']:,.0f} pixel-days/s ({out['fluxcube']['wall_s']:.1f} s, "
        f"client {out['fluxcube']['peak_rss_mib']:.0f} MiB, "
        f"worker {out['fluxcube']['worker_peak_rss_mib']:.0f} MiB); "
        f"naive {out['naive']['pixel_days_per_s']:,.0f} pixel-days/s ({out['naive']['wall_s']:.1f} s, "
        f"{out['naive']['peak_rss_mib']:.0f} MiB); "
        f"ratio wall ours/naive {out['ratio_wall_ours_over_naive']:.2f}; "
        f"max |diff| {diff}",
        flush=True,
    )
    return out


def global_part(tmp: Path) -> dict:
    from fluxcube.drivers.synthetic import land_cells

    root = str(tmp / "global")
    setup = write_inputs(root, land_cells(), 2012, 2012)
    r = child("fluxcube", root, "2", env={"FLUXCUBE_DASK_MEMORY": "4GiB"})
    r["pixel_days_per_s"] = r["pixels"] * r["days"] / r["wall_s"]
    r["inputs_written_s"] = setup
    naive = child("naive", root, str(tmp / "naive-global.zarr"))
    naive["pixel_days_per_s"] = naive["pixels"] * naive["days"] / naive["wall_s"]
    print(
        f"global 0.5 deg land cube, 1 year: {r['pixels']} pixels x {r['days']} days in {r['wall_s']:.1f} s "
        f"({r['pixel_days_per_s']:,.0f} pixel-days/s, {r['tasks']} tasks); peak RSS per worker "
        f"{r['peak_rss_mib_per_worker']:.0f} MiB (limit 4 GiB), client {r['peak_rss_mib']:.0f} MiB; "
        f"naive {naive['wall_s']:.1f} s ({naive['pixel_days_per_s']:,.0f} pixel-days/s), "
        f"{naive['peak_rss_mib']:.0f} MiB; ratio wall ours/naive {r['wall_s'] / naive['wall_s']:.2f}",
        flush=True,
    )
    return {"root": root, **r, "naive": naive}


def _best_read(fn, repeat: int) -> float:
    """The fastest of ``repeat`` reads (s): on a machine shared with other jobs the minimum is the
    steadiest estimate of what a layout costs; the median is noisier."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def layout_part(tmp: Path, root: str, repeat: int) -> list[dict]:
    import xarray as xr
    import zarr

    from fluxcube.drivers.build import CUBE_DATASET
    from fluxcube.publish import Publisher

    pub = Publisher(root)
    cube = pub.open(CUBE_DATASET)
    tair = cube["Tair"].values
    rows, cols = cube["row"].values.astype(int), cube["col"].values.astype(int)
    nt, npix = tair.shape
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(npix, 1000, replace=False))
    one = int(rng.integers(npix))
    day = int(rng.integers(nt))
    out = []
    for label, (ct, cp) in LAYOUTS.items():
        path = tmp / f"layout-{ct}-{cp}.zarr"
        chunks = (ct, cp or npix)
        xr.Dataset({"Tair": (("time", "pixel"), tair)}).to_zarr(
            path, mode="w", zarr_format=3, consolidated=False, encoding={"Tair": {"chunks": chunks}}
        )

        def arr(p: Path = path) -> zarr.Array:
            return zarr.open_array(p / "Tair", mode="r")

        res = {
            "layout": label,
            "map_s": _best_read(lambda: arr()[day, :], repeat),
            "series_s": _best_read(lambda: arr()[:, one], repeat),
            "year_1000_pixels_s": _best_read(
                lambda: arr().get_orthogonal_selection((slice(None), sample)), repeat
            ),
            "year_all_pixels_s": _best_read(lambda: arr()[:, :], repeat),
            "bytes_stored": sum(f.stat().st_size for f in path.rglob("*") if f.is_file()),
        }
        out.append(res)
    grid = Path(pub.store_location("era5_daily_0p5deg", pub.current("era5_daily_0p5deg")["version"]).path)

    def grid_arr() -> zarr.Array:
        return zarr.open_array(grid / "Tair", mode="r")

    res = {
        "layout": "(time 32, lat 90, lon 90) gridded input",
        "map_s": _best_read(lambda: grid_arr()[day][rows, cols], repeat),
        "series_s": _best_read(lambda: grid_arr()[:, rows[one], cols[one]], repeat),
        "year_1000_pixels_s": _best_read(lambda: grid_arr()[:, :, :][:, rows[sample], cols[sample]], repeat),
        "year_all_pixels_s": _best_read(lambda: grid_arr()[:, :, :][:, rows, cols], repeat),
        "bytes_stored": sum(f.stat().st_size for f in (grid / "Tair").rglob("*") if f.is_file()),
    }
    out.append(res)
    print(f"{'layout':42s} {'map':>8s} {'series':>8s} {'1000 px':>8s} {'all px':>8s} {'MB':>7s}")
    for r in out:
        print(
            f"{r['layout']:42s} {r['map_s'] * 1e3:7.1f}ms {r['series_s'] * 1e3:7.1f}ms "
            f"{r['year_1000_pixels_s'] * 1e3:7.1f}ms {r['year_all_pixels_s'] * 1e3:7.1f}ms "
            f"{r['bytes_stored'] / 1e6:7.1f}",
            flush=True,
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=("throughput", "global", "layout", "all"), default="all")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--case", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument(
        "--out", default=None, help="JSON results (default benchmarks/results/bench_drivers-<time>.json)"
    )
    args = ap.parse_args()
    if args.case:
        kind, *rest = args.case
        result = run_fluxcube(rest[0], int(rest[1])) if kind == "fluxcube" else run_naive(*rest)
        print(json.dumps(result, default=float))
        return
    results: dict = {
        "host": platform.node(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with tempfile.TemporaryDirectory(prefix="bench-drivers-") as tmp:
        if args.part in ("throughput", "all"):
            results["throughput"] = throughput_part(Path(tmp), args.repeat)
        if args.part in ("global", "layout", "all"):
            results["global"] = global_part(Path(tmp))
        if args.part in ("layout", "all"):
            results["layout"] = layout_part(Path(tmp), results["global"]["root"], args.repeat)
    out = (
        Path(args.out)
        if args.out
        else Path(__file__).parent
        / "results"
        / (f"bench_drivers-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json")
    )
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=str))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
