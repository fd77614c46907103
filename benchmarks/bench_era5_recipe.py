"""Benchmark: the ERA5 recipe against a plain ``xr.open_mfdataset(...).to_zarr(...)`` of the same files.

Throughput is MB/s of decoded source array data (number of source values x 4 bytes, the same
measure for both), wall time of the whole run (the recipe includes its two Beam pipelines, hourly
conservative regridding, daily aggregation, validation and publication; the baseline only copies
the hourly native-grid fields to Zarr). Peak memory is each run's own maximum resident set size, in
a fresh process. Inputs at 1x and 10x: the real samples from ``$FLUXCUBE_DATA/grids/era5``
(``era5-2mt-2019-03-uk.grib``: 744 hourly 2t messages; ``ERA5_2022-08-31_tp.nc``: 24 hourly tp
fields), copied 10x with shifted times into a temporary folder (GRIB: dataDate moved on by 31 days
per copy with ecCodes; NetCDF: time moved on by one day per copy). The NetCDF unit is two files
(the sample and its next-day copy): one day of accumulations needs the next file's 00 UTC value,
so 1x = 2 files (1 complete day) and 10x = 20 files (19 complete days).

    PYTHONPATH=src python benchmarks/bench_era5_recipe.py [--kinds grib netcdf] [--sizes 1 10] [--repeat N]
        [--out results.json]
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

import numpy as np

GRIB = "era5-2mt-2019-03-uk.grib"
NETCDF = "ERA5_2022-08-31_tp.nc"


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


def prepare(
    era5_dir: Path, root: Path, kinds: tuple[str, ...] = ("grib", "netcdf"), sizes: tuple[int, ...] = (1, 10)
) -> dict[str, Path]:
    """Folders <kind>-<n>x (grib-1x, grib-10x, netcdf-1x, netcdf-10x by default) under ``root``."""
    out = {}
    for kind, name, shift, step in (("grib", GRIB, shifted_grib, 31), ("netcdf", NETCDF, shifted_netcdf, 1)):
        if kind not in kinds:
            continue
        for n in sizes:
            folder = root / f"{kind}-{n}x"
            folder.mkdir(parents=True)
            for k in range(n if kind == "grib" else 2 * n):
                dst = folder / (name if k == 0 else f"{k:02d}_{name}")
                if k == 0:
                    shutil.copy(era5_dir / name, dst)
                else:
                    shift(era5_dir / name, dst, k * step)
            out[folder.name] = folder
    return out


def decoded_bytes(folder: Path) -> int:
    from fluxcube.recipes import era5

    return sum(era5.scan(f).decoded_bytes() for f in era5.find_files(str(folder)))


def case(method: str, folder: Path, target: Path) -> dict[str, float]:
    """Run one case in this process; return wall time, peak RSS and the RSS after the imports."""
    import xarray as xr

    from fluxcube.recipes import era5

    if method != "recipe":
        import cfgrib  # noqa: F401 (imported before the clock starts, like the recipe's modules)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    if method == "recipe":
        summary = era5.run(str(folder), str(target))
        assert summary.published, summary
    else:
        files = sorted(str(f) for f in folder.iterdir())
        if files[0].endswith(".grib"):
            ds = xr.open_mfdataset(
                files, engine="cfgrib", backend_kwargs={"indexpath": ""}, combine="nested", concat_dim="time"
            )
        else:
            ds = xr.open_mfdataset(files, combine="by_coords")
        ds.to_zarr(str(target), mode="w", zarr_format=3, consolidated=False)
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB (Linux)
    return {"wall_s": wall, "peak_rss_mib": rss, "rss_after_imports_mib": base}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", nargs=3, metavar=("METHOD", "FOLDER", "TARGET"), help=argparse.SUPPRESS)
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--data", default=os.environ.get("FLUXCUBE_DATA", "../shared/data"))
    ap.add_argument("--kinds", nargs="+", default=["grib", "netcdf"], choices=["grib", "netcdf"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[1, 10], help="input multiples (default 1 10)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per case (interleaved); median")
    args = ap.parse_args()
    if args.case:
        method, folder, target = args.case
        print(json.dumps(case(method, Path(folder), Path(target))))
        return
    era5_dir = Path(args.data) / "grids" / "era5"
    if not (era5_dir / NETCDF).exists():
        print(f"SAMPLE DATA MISSING: {era5_dir}")
        return
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-era5-") as tmp:
        folders = prepare(era5_dir, Path(tmp) / "in", tuple(args.kinds), tuple(args.sizes))
        for name, folder in folders.items():
            mb = decoded_bytes(folder) / 1e6
            size = sum(f.stat().st_size for f in folder.iterdir()) / 1e6
            runs: dict[str, list[dict]] = {"recipe": [], "open_mfdataset.to_zarr": []}
            for k in range(args.repeat):
                for method in runs:  # interleaved, so that load changes hit both
                    target = Path(tmp) / "out" / f"{name}-{method}-{k}"
                    proc = subprocess.run(
                        [sys.executable, __file__, "--case", method, str(folder), str(target)],
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    runs[method].append(json.loads(proc.stdout.strip().splitlines()[-1]))
                    shutil.rmtree(target, ignore_errors=True)
            med = {}
            for method, rs in runs.items():
                wall = float(np.median([r["wall_s"] for r in rs]))
                r = {
                    "wall_s": wall,
                    "peak_rss_mib": float(np.median([r["peak_rss_mib"] for r in rs])),
                    "rss_after_imports_mib": float(np.median([r["rss_after_imports_mib"] for r in rs])),
                    "runs": rs,
                }
                r.update(inputs=name, method=method, file_mb=size, decoded_mb=mb, mb_per_s=mb / wall)
                results.append(r)
                med[method] = r
                print(
                    f"{name:11s} {method:23s} files {size:6.1f} MB  decoded {mb:6.1f} MB  "
                    f"{r['wall_s']:6.2f} s  {r['mb_per_s']:6.2f} MB/s  peak RSS {r['peak_rss_mib']:6.0f} MiB "
                    f"({r['rss_after_imports_mib']:.0f} after imports)",
                    flush=True,
                )
            ratio = med["recipe"]["mb_per_s"] / med["open_mfdataset.to_zarr"]["mb_per_s"]
            print(f"{name:11s} throughput ratio recipe / baseline: {ratio:.2f}x", flush=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
