"""The simulated world in one process vs on a Dask cluster: time, peak memory per process, same bytes.

Writes the same world (default 1 degree, 2011-2012, every component, seed 0) twice, each in a fresh
subprocess: ``serial`` runs every task in the process (``write_world(..., workers=0)``), ``dask`` on a
LocalCluster of ``--workers`` single-threaded workers from ``fluxcube.cluster`` (one task per band for the
R_ref diagnosis, one per year for the files). Reports wall time per phase, the ratio dask / serial, the
peak RSS of the calling process and of each process that wrote a year (the Dask workers), checks that
both wrote byte-identical files, and extrapolates to the 0.5 degree world of 2001-2017:

- work scales with the land cells (0.5 deg / 1 deg = 4.0x cells, measured from the grids) and the years;
- a band holds at most ``max_band_cells`` (3000) cells at any resolution (1 deg: 8 rows of 360; 0.5 deg:
  4 rows of 720), so the memory of a task does not grow with the grid: the per-worker peak carries over.

    python benchmarks/bench_simulate_world.py [--grid-deg 1] [--start 2011 --end 2012] [--workers 2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, resource, sys, time
from fluxcube.simulate.world import write_world

def cpu():
    return sum(r.ru_utime + r.ru_stime for r in map(resource.getrusage, (resource.RUSAGE_SELF,
                                                                        resource.RUSAGE_CHILDREN)))

if __name__ == "__main__":
    out, grid_deg = sys.argv[1], float(sys.argv[2])
    start, end, workers = (int(a) for a in sys.argv[3:6])
    t0 = time.perf_counter()
    s = write_world(out, grid_deg=grid_deg, start_year=start, end_year=end, seed=0, workers=workers)
    print(json.dumps({"wall": time.perf_counter() - t0, "seconds": s.seconds, "peak_rss_mib": s.peak_rss_mib,
                      "task_peak_rss_mib": s.task_peak_rss_mib, "land_cells": int(s.grid.cells.size),
                      "bytes": sum(p.stat().st_size for p in s.files), "cpu": cpu(),
                      "task_cpu_seconds": s.task_cpu_seconds}))
"""


def digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (relative path -> hex)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def land_cells(grid_deg: float) -> int:
    """Land cells of the world grid at ``grid_deg`` (for the extrapolation)."""
    from fluxcube.simulate.landmask import WorldGrid

    return int(WorldGrid.build(grid_deg, 0, regions="boxes").cells.size)


def run(variant: str, out: Path, args: argparse.Namespace) -> dict:
    workers = 0 if variant == "serial" else args.workers
    cmd = [
        sys.executable,
        "-c",
        CHILD,
        str(out),
        str(args.grid_deg),
        str(args.start),
        str(args.end),
        str(workers),
    ]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"{variant} failed")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_wall"] = time.perf_counter() - t0
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--grid-deg", type=float, default=1.0)
    parser.add_argument("--start", type=int, default=2011)
    parser.add_argument("--end", type=int, default=2012)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--target-years", type=int, default=17, help="years of the extrapolated world")
    args = parser.parse_args()
    n_years = args.end - args.start + 1
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in ("serial", "dask"):
            results[variant] = r = run(variant, Path(tmp) / variant, args)
            sec = r["seconds"]
            years = ", ".join(f"{v:.1f}" for key, v in sec.items() if key.startswith("year_"))
            print(
                f"{variant:>6}: {r['wall']:7.1f} s, CPU {r['cpu']:.1f} s (grid {sec['grid']:.1f}, "
                f"R_ref {sec['r_ref']:.1f}, "
                f"years {years} s each), peak RSS caller {r['peak_rss_mib']:.0f} MiB, per year-writing "
                f"process {max(r['task_peak_rss_mib'].values()):.0f} MiB; {r['bytes'] / 1e9:.2f} GB written",
                flush=True,
            )
        same = digest(Path(tmp) / "serial") == digest(Path(tmp) / "dask")
    s, d = results["serial"], results["dask"]
    ratio, cpu_ratio = d["wall"] / s["wall"], d["cpu"] / s["cpu"]
    load = os.getloadavg()[0]
    print(
        f"dask ({args.workers} workers) / serial: time {ratio:.2f}x, CPU {cpu_ratio:.2f}x (load average "
        f"{load:.1f} on {os.cpu_count()} cores); byte-identical files: {same}"
    )

    # extrapolation to 0.5 degrees, args.target_years years
    cells_half = land_cells(0.5)
    k = cells_half / s["land_cells"]
    # from CPU seconds (other processes' load inflates wall times, not CPU): serial = the caller's CPU
    # for R_ref and years; dask = R_ref spread over the workers, then ceil(years / workers) rounds of a year
    year_cpu_s = sum(s["task_cpu_seconds"].values()) / n_years  # a year alone on its core
    year_cpu_d = sum(d["task_cpu_seconds"].values()) / n_years  # a year beside the other workers
    rref_cpu = s["seconds"]["r_ref_cpu_caller"]  # the serial run did it in the calling process
    serial_t = (rref_cpu + year_cpu_s * args.target_years) * k
    rounds = math.ceil(args.target_years / args.workers)
    dask_t = (rref_cpu / args.workers + year_cpu_d * rounds) * k
    gb = s["bytes"] / n_years * k * args.target_years / 1e9
    worker_peak = max(d["task_peak_rss_mib"].values())
    sums_mib = args.target_years * 12 * 180 * 360 * 8 / 2**20
    print(
        f"extrapolated to 0.5 deg ({cells_half} land cells, {k:.2f}x), {args.target_years} years: "
        f"serial {serial_t / 60:.0f} min, dask with {args.workers} workers {dask_t / 60:.0f} min "
        f"(+ grid and regions), {gb:.0f} GB; peak RSS per worker about {worker_peak:.0f} MiB (bands "
        f"have the same size at 0.5 deg), caller + {sums_mib:.0f} MiB of 1 degree monthly sums"
    )
    record = {
        "host": platform.node(),
        "python": platform.python_version(),
        "args": vars(args),
        "results": results,
        "identical": same,
        "extrapolated_min": {"serial": serial_t / 60, "dask": dask_t / 60},
        "load_average": os.getloadavg(),
    }
    folder = Path(__file__).parent / "results"
    folder.mkdir(exist_ok=True)
    path = folder / f"bench_simulate_world-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"results: {path}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
