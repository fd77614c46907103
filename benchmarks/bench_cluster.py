"""Benchmark: the cluster's progress bar overhead, and worker memory as the data held grows.

Part ``progress``: the same graph (a 1000 x 1000 float64 array in 100 x 100 chunks: sum and column
means, about 400 tasks) is computed ``--repeat`` times on one LocalCluster (2 workers), two
ways interleaved: ``fluxcube.cluster.compute`` (the scheduler-fed rich progress bar, drawn to an
in-memory console) and the baseline ``client.compute`` + ``client.gather`` with no bar. Reported:
median wall time of each and the ratio ours / baseline.

Part ``memory``: one worker persists N x 32 MB chunks of random data (N x 32 MB = 0.5, 1 and 2 times
its 300 MiB limit), each in a fresh LocalCluster: fluxcube's ``local_cluster(memory_limit="300MiB")``
(Dask spills to disk above the memory target) against the baseline ``LocalCluster(memory_limit=0)``
(no limit: everything stays in RAM). Reported: the worker's peak RSS (``ru_maxrss`` inside the worker
process) and the bytes it spilled. Peak RSS of this driver process at the end.

    PYTHONPATH=src python benchmarks/bench_cluster.py [--part progress|memory|all] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import resource
import statistics
import time
from pathlib import Path
from typing import Any

import dask
import dask.array as da
from distributed import Client, LocalCluster, wait
from rich.console import Console

from fluxcube import cluster

LIMIT = 300 * 2**20
CHUNK = (4000, 1000)  # 32 MB of float64


def progress_part(repeat: int) -> dict[str, Any]:
    """Median seconds of compute with and without fluxcube's progress bar, same graph, same cluster."""
    arr = da.random.default_rng(0).random((1000, 1000), chunks=(100, 100))
    exprs = (arr.sum(), arr.mean(axis=0))
    ours: list[float] = []
    base: list[float] = []
    with cluster.local_cluster(n_workers=2, memory_limit="1GiB") as lc, Client(lc) as c:
        c.gather(c.compute(list(exprs)))  # warm the workers (imports) before timing
        for _ in range(repeat):
            t = time.perf_counter()
            bar = cluster.progress_bar(console=Console(file=io.StringIO()))
            with bar:
                cluster.compute(*exprs, client=c, progress=bar)
            ours.append(time.perf_counter() - t)
            tasks = bar.tasks[0].total
            t = time.perf_counter()
            c.gather(c.compute(list(exprs)))
            base.append(time.perf_counter() - t)
    out = {"tasks": tasks, "ours_s": statistics.median(ours), "baseline_s": statistics.median(base)}
    out["ratio"] = out["ours_s"] / out["baseline_s"]
    print(
        f"progress: {tasks:.0f} tasks, fluxcube.cluster.compute {out['ours_s']:.3f} s, "
        f"client.compute+gather {out['baseline_s']:.3f} s, ratio {out['ratio']:.2f}x (median of {repeat})"
    )
    return out


def _worker_memory(dask_worker: Any) -> dict[str, float]:
    """Inside the worker: its peak RSS (MiB) and the bytes its SpillBuffer holds on disk (MiB)."""
    data = dask_worker.data  # a SpillBuffer when the worker has a memory limit, else a dict
    spilled = float(data.spilled_total.disk) if hasattr(data, "spilled_total") else 0.0
    on_disk = len(data.slow) if hasattr(data, "slow") else 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"peak_rss_mib": peak, "spilled_mib": spilled / 2**20, "chunks_on_disk": on_disk}


def memory_case(kind: str, n_chunks: int) -> dict[str, Any]:
    """Persist ``n_chunks`` x 32 MB on one worker of a fresh cluster; the worker's memory figures."""
    if kind == "fluxcube":
        lc = cluster.local_cluster(n_workers=1, memory_limit="300MiB")
    else:
        lc = LocalCluster(n_workers=1, threads_per_worker=1, memory_limit=0, dashboard_address=":0")
    with lc, Client(lc) as c:
        arr = da.random.default_rng(1).random((n_chunks * CHUNK[0], CHUNK[1]), chunks=CHUNK).persist()
        wait(arr)
        t = time.perf_counter()
        mean = float(arr.mean().compute())
        read_s = time.perf_counter() - t
        (mem,) = c.run(_worker_memory).values()
    return {"kind": kind, "data_mib": arr.nbytes / 2**20, "mean": mean, "read_s": read_s, **mem}


def memory_part() -> list[dict[str, Any]]:
    """Worker peak RSS as held data grows, with and without fluxcube's memory limit."""
    rows = []
    for n in (5, 10, 20):  # 0.5x, 1x, 2x the 300 MiB limit
        for kind in ("fluxcube", "baseline"):
            row = memory_case(kind, n)
            rows.append(row)
            print(
                f"memory: {kind:8s} data {row['data_mib']:5.0f} MiB -> worker peak RSS "
                f"{row['peak_rss_mib']:5.0f} MiB, {row['chunks_on_disk']} chunks "
                f"({row['spilled_mib']:.0f} MiB) spilled, re-read {row['read_s']:.2f} s"
            )
    for ours, base in zip(rows[::2], rows[1::2], strict=True):
        ratio = ours["peak_rss_mib"] / base["peak_rss_mib"]
        print(f"memory: {ours['data_mib']:.0f} MiB held: worker peak RSS fluxcube / baseline {ratio:.2f}x")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["progress", "memory", "all"], default="all")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    result: dict[str, Any] = {
        "host": platform.node(),
        "python": platform.python_version(),
        "dask": dask.__version__,
        "memory_limit_mib": LIMIT / 2**20,
    }
    if args.part in ("progress", "all"):
        result["progress"] = progress_part(args.repeat)
    if args.part in ("memory", "all"):
        result["memory"] = memory_part()
    result["driver_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"driver peak RSS {result['driver_peak_rss_mib']:.0f} MiB")
    out = Path(__file__).parent / "results" / f"cluster-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
