"""Does the FLUXNET recipe's memory stay flat as inputs grow? Time and peak RSS for 1x, 10x, 30x sites.

Copies one real FLUXNET2015 daily file (US-Syv 2001-2015 merged with model output, 5,476 rows, 112
variables) N times under new site ids (XA-001, ...), runs the recipe on each set in a fresh process and
reports wall time, sites per second and the process's peak RSS. Memory must not grow with N: the recipe
passes file lists and schemas between steps and holds one site's data at a time.

    python benchmarks/bench_fluxnet_scaling.py [--scales 1 10 30]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from fluxcube import config

SAMPLE = "daily-merged/tutorial3_US_Syv.csv"
CHILD = """
import json, resource, sys, time
from fluxcube.recipes import fluxnet_pipeline
t0 = time.perf_counter()
s = fluxnet_pipeline.run(sys.argv[1], sys.argv[2])
dt = time.perf_counter() - t0
print(json.dumps({"seconds": dt, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "published": list(s.published), "refused": len(s.refused)}))
"""


def make_inputs(folder: Path, n: int, sample: Path) -> None:
    """``n`` copies of the sample under new site ids, named as daily-merged files."""
    folder.mkdir(parents=True)
    for k in range(n):
        shutil.copy(sample, folder / f"tutorial3_XA_{k:03d}.csv")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 30])
    args = parser.parse_args()
    sample = config.data_dir() / "sites" / SAMPLE
    if not sample.exists():
        print(f"SAMPLE DATA MISSING: {sample} not found; set {config.DATA_ENV}. Nothing measured.")
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.scales:
            src, dst = Path(tmp) / f"in{n}", Path(tmp) / f"out{n}"
            make_inputs(src, n, sample)
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(src), str(dst)], capture_output=True, text=True, check=True
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append((n, result["seconds"], n / result["seconds"], result["peak_rss_mib"]))
            print(
                f"{n:>4} sites  {result['seconds']:7.2f} s  {n / result['seconds']:6.2f} sites/s  "
                f"peak RSS {result['peak_rss_mib']:7.1f} MiB",
                flush=True,
            )
    base = rows[0]
    for n, sec, _rate, rss in rows[1:]:
        print(f"{n}x / {base[0]}x: time {sec / base[1]:.2f}x, peak RSS {rss / base[3]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
