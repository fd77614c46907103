"""Benchmark: the MODIS recipe against a plain read + ``to_zarr`` of the same files, in one run.

Throughput is MB/s of decoded data: the bytes of the arrays both methods read, divided by the wall time
of the whole run in a fresh process (imports done before the clock starts); CPU time (all threads of
the process) is reported beside it, as it is the steadier figure on a shared machine. Peak memory is the
process's peak resident set size during the work (VmHWM, reset after the imports), beside its RSS after
the imports. ``--repeat N`` runs every case N times, interleaved (recipe, baseline, recipe, ...), each
in a fresh process, and reports medians.

Tiles (default part): the MOD09GA tile recipe (two Beam pipelines, file checks, QA masking, indices,
reprojection to the 0.5 degree grid, validation, publication) against pyhdf reads of the same SDS (bands
1, 2, 3, 6, 7, QC_500m_1 and state_1km_1: 83.5 MB per tile) and one ``xr.Dataset.to_zarr`` per tile on
the native 2400 x 2400 grid, nothing else. Inputs:

- ``real-1x``: the real tile MOD09GA.A2008296.h14v17 (polar; 0.25 % of its pixels observed);
- ``real-10x``: its arrays rewritten as 10 tiles on 10 consecutive dates (same content, same decoding
  work, 10x the data);
- ``land-1x`` / ``land-10x``: 1 / 10 synthetic fully observed mid-latitude tiles (h17..h21 x v04..v05,
  one date): the worst case for masking and reprojection (5.8 M valid pixels per tile).

    PYTHONPATH=src python benchmarks/bench_modis_recipe.py [--data ../shared/data] [--repeat 3]

``--part composites`` measures the lat/lon composite path instead (``modis_8day_0p5deg``,
:mod:`fluxcube.recipes.modis_composites`) on the simulated world's MOD09A1, MOD15A2H and MOD11A2 files,
written by :func:`fluxcube.simulate.world.write_world` at ``--grid-deg`` (default 0.5: the store's grid,
so that both methods write as many values as they read; 2 makes the recipe refine every value to 16
cells of 0.5 degree): ``comp-1x`` one year, ``comp-10x`` the same files as 10 consecutive years (times
moved on by whole years), against ``xr.open_mfdataset(...).to_zarr(...)`` per product (CF decoding,
native grid, no QA). Decoded = bytes of the stored layers the recipe reads, the same for both.

    PYTHONPATH=src python benchmarks/bench_modis_recipe.py --part composites [--grid-deg 0.5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TILE = "MOD09GA.A2008296.h14v17.006.2015181011753.hdf"
SDS = [*(f"sur_refl_b0{b}_1" for b in (1, 2, 3, 6, 7)), "QC_500m_1", "state_1km_1"]


def prepare(data: Path, root: Path) -> dict[str, Path]:
    from pyhdf.SD import SD, SDC

    from fluxcube.recipes import modis

    out = {}
    one = root / "real-1x"
    one.mkdir(parents=True)
    (one / TILE).symlink_to(data / "grids" / "modis" / TILE)
    out[one.name] = one
    sd = SD(str(data / "grids" / "modis" / TILE), SDC.READ)
    arrays = {n: sd.select(n).get() for n in SDS}
    sd.end()
    ten = root / "real-10x"
    ten.mkdir()
    for k in range(10):
        day = dt.date(2008, 10, 22) + dt.timedelta(days=k)
        name = f"MOD09GA.A2008{day.timetuple().tm_yday:03d}.h14v17.006.2015181011753.hdf"
        refl = {b: arrays[f"sur_refl_b0{b}_1"] for b in (1, 2, 3, 6, 7)}
        modis.write_tile(
            str(ten / name), 14, 17, day.isoformat(), refl, arrays["QC_500m_1"], arrays["state_1km_1"]
        )
    out[ten.name] = ten
    land = root / "land-10x"
    land.mkdir()
    (land / "SYNTHETIC.json").write_text("{}")
    land1 = root / "land-1x"
    land1.mkdir()
    (land1 / "SYNTHETIC.json").write_text("{}")
    rng = np.random.default_rng(0)
    noise = rng.integers(-300, 301, (2400, 2400), dtype=np.int16)
    base = {1: 0.05, 2: 0.35, 3: 0.03, 6: 0.18, 7: 0.09}
    for k, (h, v) in enumerate((h, v) for v in (4, 5) for h in range(17, 22)):
        refl = {
            b: (np.int16(m * 10000) + np.roll(noise, 97 * b + k, axis=1)).astype(np.int16)
            for b, m in base.items()
        }
        name = f"MOD09GA.A2020183.h{h:02d}v{v:02d}.061.2021000000000.hdf"
        modis.write_tile(
            str(land / name),
            h,
            v,
            "2020-07-01",
            refl,
            np.full((2400, 2400), 1 << 30, np.uint32),
            np.full((1200, 1200), 8, np.uint16),
        )
        if k == 0:
            (land1 / name).symlink_to(land / name)
    out[land1.name] = land1
    out[land.name] = land
    return out


def prepare_composites(root: Path, years: int = 10, grid_deg: float = 0.5) -> dict[str, Path]:
    """comp-1x (a simulated world year at ``grid_deg``) and comp-Nx (its files as ``years`` consecutive
    years)."""
    import shutil

    import netCDF4

    from fluxcube.simulate.world import write_world

    world = root / "world"
    write_world(
        world,
        grid_deg=grid_deg,
        start_year=2011,
        end_year=2011,
        components=("modis",),
        data_dir=root / "none",
    )
    one, many = root / "comp-1x", root / f"comp-{years}x"
    for d in (one, many):
        d.mkdir(parents=True)
        (d / "SYNTHETIC.json").write_text("{}")
    for f in sorted((world / "modis").glob("*.nc")):
        if "MOD13A2" in f.name:
            continue
        shutil.copy(f, one / f.name)
        for k in range(years):
            dst = many / f.name.replace("A2011", f"A{2011 + k}")
            shutil.copy(f, dst)
            with netCDF4.Dataset(dst, "a") as nc:  # the same days of year (composite starts), k years later
                t, b = nc["time"], nc["time_bnds"]
                first = netCDF4.num2date(t[:], t.units, only_use_cftime_datetimes=False)
                last = netCDF4.num2date(b[:, 1], b.units, only_use_cftime_datetimes=False)
                jan1 = dt.datetime(2011 + k, 1, 1)
                starts = [jan1 + dt.timedelta(days=d.timetuple().tm_yday - 1) for d in first]
                span = [e - f for e, f in zip(last, first, strict=True)]
                ends = [min(s_ + d, dt.datetime(2012 + k, 1, 1)) for s_, d in zip(starts, span, strict=True)]
                t[:] = netCDF4.date2num(starts, t.units)
                b[:] = np.stack([t[:], netCDF4.date2num(ends, b.units)], 1)
    return {one.name: one, many.name: many}


def composite_case(method: str, folder: Path, target: Path) -> dict[str, float]:
    """One run of the composite recipe or its baseline; wall time, peak RSS, decoded bytes."""
    import netCDF4
    import xarray as xr
    import zarr  # noqa: F401

    from fluxcube.publish import Publisher
    from fluxcube.recipes import modis, modis_composites

    base = reset_peak_rss()
    t0, c0 = time.perf_counter(), time.process_time()
    if method == "recipe":
        summary = modis.run(str(folder), str(target))
        assert summary.published, summary
        meta = Publisher(str(target)).current(modis_composites.DATASET)
        decoded = int(meta["metadata"]["decoded_bytes"])
    else:
        decoded = 0
        for key, layers in modis_composites.LAYERS.items():
            files = sorted(str(f) for f in folder.glob(f"MOD{key}.*.nc"))
            for f in files:
                with netCDF4.Dataset(f) as nc:
                    decoded += sum(nc[n].size * nc[n].dtype.itemsize for n in layers)
            ds = xr.open_mfdataset(files, combine="by_coords", data_vars="minimal")[list(layers)]
            ds.to_zarr(str(target / f"{key}.zarr"), mode="w", zarr_format=3, consolidated=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_mib": peak_rss(),
        "rss_after_imports_mib": base,
        "decoded_bytes": decoded,
    }


def case(method: str, folder: Path, target: Path) -> dict[str, float]:
    import xarray as xr
    import zarr  # noqa: F401 (imported before the clock starts, like the recipe's modules)
    from pyhdf.SD import SD, SDC

    if method == "recipe":
        from fluxcube.recipes import modis
    base = reset_peak_rss()
    t0, c0 = time.perf_counter(), time.process_time()
    decoded = 0
    if method == "recipe":
        summary = modis.run(str(folder), str(target))
        assert summary.published, summary
        decoded = recipe_decoded_bytes(target)
    else:
        for k, f in enumerate(sorted(folder.glob("*.hdf"))):
            sd = SD(str(f), SDC.READ)
            arrays = {n: sd.select(n).get() for n in SDS}
            sd.end()
            decoded += sum(a.nbytes for a in arrays.values())
            ds = xr.Dataset(
                {n: (("y1", "x1") if n == "state_1km_1" else ("y", "x"), a) for n, a in arrays.items()}
            )
            ds.to_zarr(str(target / f"{k:03d}.zarr"), mode="w", zarr_format=3, consolidated=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_mib": peak_rss(),
        "rss_after_imports_mib": base,
        "decoded_bytes": decoded,
    }


def _status(key: str) -> float:
    """A memory figure of this process from /proc/self/status, MiB (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(key)


def reset_peak_rss() -> float:
    """Reset the process's peak RSS (VmHWM) to the current RSS; return the current RSS (MiB).

    The imports' transient peak would otherwise hide the work's own peak; falls back to
    ``ru_maxrss`` where /proc/self/clear_refs is not writable.
    """
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _status("VmRSS")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss() -> float:
    """Peak RSS (MiB) since :func:`reset_peak_rss`."""
    try:
        return _status("VmHWM")
    except (OSError, KeyError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def recipe_decoded_bytes(target: Path) -> int:
    from fluxcube.publish import Publisher
    from fluxcube.recipes import modis

    return int(Publisher(str(target)).current(modis.GRID_DATASET)["metadata"]["decoded_bytes"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", nargs=3, metavar=("METHOD", "FOLDER", "TARGET"), help=argparse.SUPPRESS)
    ap.add_argument("--data", default=os.environ.get("FLUXCUBE_DATA", "../shared/data"))
    ap.add_argument("--out", default=None)
    ap.add_argument("--part", choices=["tiles", "composites"], default="tiles")
    ap.add_argument("--grid-deg", type=float, default=0.5, help="composites: simulated world grid (degrees)")
    ap.add_argument("--inputs", nargs="*", help="only these inputs (e.g. real-1x land-10x)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per case (interleaved); median")
    args = ap.parse_args()
    if args.case:
        method, folder, target = args.case
        run = composite_case if method.startswith("composites:") else case
        print(json.dumps(run(method.split(":")[-1], Path(folder), Path(target))))
        return
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="bench-modis-") as tmp:
        if args.part == "composites":
            folders = prepare_composites(Path(tmp) / "in", grid_deg=args.grid_deg)
            methods, pattern, kind = ("recipe", "open_mfdataset.to_zarr"), "*.nc", "composites:"
            name = f"bench_modis_composites-{args.grid_deg:g}deg-{stamp}.json"
        else:
            data = Path(args.data)
            if not (data / "grids" / "modis" / TILE).exists():
                print("SAMPLE DATA MISSING: nothing measured")
                return
            folders = prepare(data, Path(tmp) / "in")
            methods, pattern, kind = ("recipe", "pyhdf+to_zarr"), "*.hdf", ""
            name = f"bench_modis_recipe-{stamp}.json"
        if args.inputs:
            folders = {k: v for k, v in folders.items() if k in args.inputs}
        results = measure(folders, methods, pattern, kind, args.repeat, Path(tmp) / "out")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    out = Path(args.out) if args.out else Path(__file__).parent / "results" / name
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"host": platform.node(), "part": args.part, "runs": results}, indent=1))


def measure(
    folders: dict[str, Path], methods: tuple[str, str], pattern: str, kind: str, repeat: int, root: Path
) -> list[dict]:
    """Every input with both methods, ``repeat`` times interleaved, each in a fresh process; medians."""
    import shutil

    results = []
    for name, folder in folders.items():
        size = sum(f.stat().st_size for f in folder.glob(pattern)) / 1e6
        med = {}
        runs: dict[str, list[dict]] = {m: [] for m in methods}
        for k in range(repeat):
            for method in methods:
                target = root / f"{name}-{method}-{k}"
                target.mkdir(parents=True)
                proc = subprocess.run(
                    [sys.executable, __file__, "--case", kind + method, str(folder), str(target)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                r["load"] = os.getloadavg()[0]
                runs[method].append(r)
                shutil.rmtree(target)
        for method, rs in runs.items():
            wall = float(np.median([r["wall_s"] for r in rs]))
            mb = rs[0]["decoded_bytes"] / 1e6
            r = {
                "inputs": name,
                "method": method,
                "file_mb": size,
                "decoded_mb": mb,
                "wall_s": wall,
                "cpu_s": float(np.median([x["cpu_s"] for x in rs])),
                "mb_per_s": mb / wall,
                "peak_rss_mib": float(np.median([x["peak_rss_mib"] for x in rs])),
                "rss_after_imports_mib": float(np.median([x["rss_after_imports_mib"] for x in rs])),
                "load": [x["load"] for x in rs],
                "runs": rs,
            }
            med[method] = r
            results.append(r)
            print(
                f"{name:9s} {method:23s} files {size:7.1f} MB  decoded {mb:7.1f} MB  {wall:6.2f} s "
                f"(CPU {r['cpu_s']:6.2f} s)  {r['mb_per_s']:6.1f} MB/s  "
                f"peak RSS {r['peak_rss_mib']:5.0f} MiB "
                f"({r['rss_after_imports_mib']:.0f} after imports)",
                flush=True,
            )
        a, b = (med[m] for m in methods)
        print(
            f"{name:9s} ratio recipe / baseline: throughput {a['mb_per_s'] / b['mb_per_s']:.2f}x, "
            f"CPU {b['cpu_s'] / a['cpu_s']:.2f}x (baseline CPU / recipe CPU), load "
            f"{min(a['load'] + b['load']):.1f}-{max(a['load'] + b['load']):.1f}",
            flush=True,
        )
    return results


if __name__ == "__main__":
    main()
