#!/usr/bin/env python
"""Throughput of the FLUXNET recipe against a plain pandas/xarray baseline, on the real sample files.

Two variants ingest the same files, each run in a subprocess of its own (so peak RSS is the variant's):

- ``fluxcube``: ``fluxcube.recipes.fluxnet_pipeline.run(source, target)``: Beam pipeline, file
  checks, timestamp parsing, units and CF attributes, site metadata, one (site, time) Zarr v3 store
  per product and step, validation against the files' sums, atomic publication and the catalog;
- ``baseline``: per file ``pandas.read_csv`` (``xarray.open_dataset`` for netCDF), then
  ``xarray.Dataset.to_zarr`` (Zarr v3), one store per file: no checks, no metadata, no catalog.

Reported per variant: median wall time of the work (imports excluded) over ``--repeat`` runs, input
rows/s and MB/s (rows and bytes of the input data files, the same for both), peak RSS, and the ratio
ours / baseline. Results go to ``benchmarks/results/`` as JSON (gitignored).

    python benchmarks/bench_fluxnet_recipe.py [--source DIR] [--repeat N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
try:
    import fluxcube  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(HERE.parent / "src"))

from fluxcube import config  # noqa: E402

VARIANTS = ("fluxcube", "baseline")


def default_source() -> str:
    return str(config.data_dir() / "sites")


def input_files(source: str) -> list[str]:
    """The data files the recipe ingests (auxiliary tables and site-metadata tables excluded)."""
    from fluxcube.recipes import fluxnet

    out = []
    for f in fluxnet.find_files(source):
        src = fluxnet.classify(f)
        if src is not None and src.kind != "auxiliary":
            out.append(f)
    return out


# --------------------------------------------------------------------------- the variants (in a child)
def _baseline_read(path: str) -> Any:
    import pandas as pd
    import xarray as xr

    if path.endswith(".nc"):
        ds = xr.open_dataset(path).load()
        for v in ds.variables.values():
            v.encoding = {}
        return ds
    with open(path, "rb") as f:  # AmeriFlux BASE files start with "# Site:", "# Version:" lines
        skip = 0
        for line in f:
            if not line.startswith(b"#"):
                break
            skip += 1
    df = pd.read_csv(path, skiprows=skip, na_values=["-9999", "NA"])
    return xr.Dataset.from_dataframe(df)


def _rows(ds: Any) -> int:
    return int(ds.sizes.get("time", 0) or max(ds.sizes.values()))


def _cpu() -> float:
    """CPU seconds (user + system) of this process and its waited-for children."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_baseline(files: list[str], target: str) -> dict[str, Any]:
    rows = 0
    for i, path in enumerate(files):
        ds = _baseline_read(path)
        rows += _rows(ds)
        ds.to_zarr(os.path.join(target, f"{i:03d}.zarr"), mode="w", zarr_format=3, consolidated=False)
    return {"rows": rows}


def run_fluxcube(source: str, target: str) -> dict[str, Any]:
    from fluxcube.recipes.fluxnet_pipeline import run

    summary = run(source, target)
    t0, c0 = time.perf_counter(), _cpu()
    again = run(source, target)  # idempotent rerun on the same inputs: hashes only, writes nothing
    rerun_s, rerun_cpu_s = time.perf_counter() - t0, _cpu() - c0
    assert not again.published, "a rerun on the same inputs must not publish anything"
    return {
        "stores": sorted(summary.published),
        "refused": [r["file"] for r in summary.refused],
        "rerun_s": rerun_s,
        "rerun_cpu_s": rerun_cpu_s,
    }


def child(variant: str, source: str) -> None:
    """Run one variant once and print one JSON line: work time, peak RSS and what it produced."""
    import warnings

    warnings.simplefilter("ignore")
    import logging

    logging.disable(logging.WARNING)
    files = input_files(source)
    with tempfile.TemporaryDirectory(prefix=f"bench-{variant}-") as target:
        t0, c0 = time.perf_counter(), _cpu()
        extra = run_baseline(files, target) if variant == "baseline" else run_fluxcube(source, target)
        work, cpu = time.perf_counter() - t0, _cpu() - c0
        work -= extra.get("rerun_s", 0.0)  # the no-op rerun is reported on its own
        cpu -= extra.get("rerun_cpu_s", 0.0)
        out_bytes = sum(p.stat().st_size for p in Path(target).rglob("*") if p.is_file())
    rss = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )  # KiB on Linux
    print(
        json.dumps(
            {
                "variant": variant,
                "work_s": work,
                "cpu_s": cpu,
                "peak_rss_mib": rss / 1024,
                "output_bytes": out_bytes,
                **extra,
            }
        )
    )


# --------------------------------------------------------------------------- the driver
def measure(variant: str, source: str) -> dict[str, Any]:
    path = os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", variant, "--source", source],
        capture_output=True,
        text=True,
        env=env,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{variant} run failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_s"] = wall - result.get("rerun_s", 0.0)  # the rerun is reported on its own
    return result


def count_rows(files: list[str]) -> int:
    return sum(_rows(_baseline_read(f)) for f in files)


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for pkg in ("fluxcube", "apache-beam", "zarr", "xarray", "pandas", "numpy", "dask"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "?"
    return out


def fmt_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = zip(r, widths, strict=True)
        lines.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(cells)))
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--source",
        default=default_source(),
        help=f"folder of FLUXNET-family files (default ${config.DATA_ENV}/sites or "
        f"{config.DEFAULT_DATA}/sites; now {default_source()})",
    )
    ap.add_argument("--repeat", type=int, default=3, help="runs per variant (median reported; default 3)")
    ap.add_argument("--results", default=str(HERE / "results"), help="folder for the JSON results")
    ap.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.source)
        return 0

    source = os.path.abspath(args.source)
    if not os.path.isdir(source) or not input_files(source):
        print(
            f"SAMPLE DATA MISSING: no FLUXNET-family files under {source}.\n"
            f"Nothing was measured. Point --source or ${config.DATA_ENV} at the shared data folder "
            f"(its 'sites' subfolder is used)."
        )
        return 0
    files = input_files(source)
    in_bytes = sum(os.path.getsize(f) for f in files)
    rows = count_rows(files)
    print(
        f"source: {source}\n{len(files)} input files, {in_bytes / 1e6:.2f} MB, {rows} rows "
        f"(records); {args.repeat} run(s) per variant, each in its own process; {os.cpu_count()} CPUs"
    )

    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    for i in range(args.repeat):
        for v in VARIANTS:  # interleaved, so drift in machine load hits both
            r = measure(v, source)
            runs[v].append(r)
            print(
                f"  run {i + 1}/{args.repeat} {v:9s} {r['work_s']:7.2f} s  {r['cpu_s']:7.2f} s CPU  "
                f"{r['peak_rss_mib']:6.0f} MiB",
                flush=True,
            )

    summary: dict[str, dict[str, float]] = {}
    for v in VARIANTS:
        work = statistics.median(r["work_s"] for r in runs[v])
        summary[v] = {
            "work_s": work,
            "cpu_s": statistics.median(r["cpu_s"] for r in runs[v]),
            "process_s": statistics.median(r["process_s"] for r in runs[v]),
            "rows_per_s": rows / work,
            "mb_per_s": in_bytes / 1e6 / work,
            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs[v]),
            "output_mb": statistics.median(r["output_bytes"] for r in runs[v]) / 1e6,
        }
    ours, base = summary["fluxcube"], summary["baseline"]
    ratio = {k: ours[k] / base[k] for k in ours}
    table = [["variant", "work s", "CPU s", "process s", "rows/s", "MB/s", "peak RSS MiB", "output MB"]]
    for name, s in (("fluxcube (ours)", ours), ("baseline", base)):
        table.append(
            [
                name,
                f"{s['work_s']:.2f}",
                f"{s['cpu_s']:.2f}",
                f"{s['process_s']:.2f}",
                f"{s['rows_per_s']:,.0f}",
                f"{s['mb_per_s']:.2f}",
                f"{s['peak_rss_mib']:.0f}",
                f"{s['output_mb']:.2f}",
            ]
        )
    keys = ("work_s", "cpu_s", "process_s", "rows_per_s", "mb_per_s", "peak_rss_mib", "output_mb")
    table.append(["ours / baseline"] + [f"{ratio[k]:.2f}x" for k in keys])
    print()
    print(fmt_table(table))
    rerun = statistics.median(r["rerun_s"] for r in runs["fluxcube"])
    refused = runs["fluxcube"][0]["refused"]
    print(f"\nfluxcube rerun on the same inputs (no-op: hashes the inputs, writes nothing): {rerun:.2f} s")
    print(
        f"fluxcube published {len(runs['fluxcube'][0]['stores'])} stores; refused {len(refused)} file(s): "
        + ", ".join(os.path.basename(f) for f in refused)
    )
    print(
        "work s: median wall time over runs, imports excluded (rows/s and MB/s derive from it); CPU s: "
        "user+system time of the same work; process s: the whole child process, imports included (rerun "
        "excluded).\n"
        "Rows and MB are those of the input data files (the site metadata tables, which only fluxcube "
        "reads, are not counted)."
    )

    os.makedirs(args.results, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = os.path.join(args.results, f"bench_fluxnet_recipe-{stamp}.json")
    with open(path, "w") as f:
        json.dump(
            {
                "benchmark": "fluxnet_recipe",
                "time": stamp,
                "source": source,
                "files": files,
                "input_bytes": in_bytes,
                "rows": rows,
                "repeat": args.repeat,
                "host": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "machine": platform.machine(),
                },
                "versions": versions(),
                "summary": summary,
                "ratio_ours_over_baseline": ratio,
                "fluxcube_rerun_s": rerun,
                "refused": refused,
                "runs": runs,
            },
            f,
            indent=1,
        )
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
