"""Benchmark: regional monthly integrals of a gridded inversion ensemble, fluxcube against plain numpy.

Inputs (written once per size, synthetic): an ``inversions_gridded_monthly``-like store (5 members x
N months x 360 x 720 float32, ``land_flux_fire_adjusted`` in g C m-2 d-1, chunks 1 x 12 x 90 x 90 as the
recipe writes them) and a ``regions_land_0p5deg``-like store (18 latitude-band regions, sphere cell
areas), both published with :class:`fluxcube.publish.Publisher`. Each variant runs in a fresh process:

- ``fluxcube``: :func:`fluxcube.regions.integrals.run` (Dask LocalCluster, one member at a time, ensemble
  statistics, validation, publication, catalog, figure);
- ``baseline``: ``xr.open_zarr(...).values`` of the whole flux array, then ``numpy.einsum`` with the
  region weights and the days of each month: the shortest correct numpy code, everything in memory.

Reported per size: median wall time of ``--repeat`` runs, CPU time, peak RSS (MiB) and the ratio
fluxcube / baseline; sizes 12 and 48 months show how memory grows with the inputs.

    PYTHONPATH=src python benchmarks/bench_regional_integrals.py [--months 12 48] [--repeat 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N_MEMBERS = 5


def make_inputs(target: str, months: int) -> None:
    """Publish the synthetic gridded inversion and regions stores under ``target``."""
    import dask.array as da
    import pandas as pd
    import xarray as xr

    from fluxcube.publish import Publisher, Release
    from fluxcube.recipes import inversions, regions

    pub = Publisher(target)

    def release(name: str) -> Release:
        fake = hashlib.sha256(f"{name}-{months}".encode()).hexdigest()
        return Release(
            name, "benchmark", "0", {f"synthetic:{name}": fake}, f"benchmark {name}", synthetic=True
        )

    band = np.clip(((regions.LAT + 90.0) / 180.0 * 18).astype(int), 0, 17)  # 18 latitude bands
    frac = np.zeros((18, regions.LAT.size, regions.LON.size))
    frac[band, np.arange(regions.LAT.size), :] = 1.0
    land = np.ones((regions.LAT.size, regions.LON.size))
    pub.publish_dataset(
        release(regions.DATASET), regions._dataset(frac, land, (band + 1)[:, None] * land), {}
    )
    time_ = pd.date_range("2001-01-01", periods=months, freq="MS")
    shape = (N_MEMBERS, months, regions.LAT.size, regions.LON.size)
    chunks = (1, inversions.MONTH_CHUNK, 90, 90)
    flux = da.random.default_rng(0).normal(0.0, 1.0, shape, chunks=chunks).astype("float32")
    ds = xr.Dataset(
        {
            inversions.ADJUSTED: (
                ("member", "time", "lat", "lon"),
                flux,
                inversions.GRIDDED_ATTRS[inversions.ADJUSTED],
            )
        },
        coords={
            "member": [f"M{k}" for k in range(N_MEMBERS)],
            "time": time_,
            **regions.grid_coords(),
        },
    )
    pub.publish_dataset(
        release(inversions.GRIDDED_DATASET), ds, {}, encoding={inversions.ADJUSTED: {"chunks": chunks}}
    )


def run_variant(variant: str, target: str) -> dict[str, float]:
    """Run one variant in this process; return wall and CPU seconds and peak RSS (MiB)."""
    cpu0, t0 = time.process_time(), time.perf_counter()
    if variant == "fluxcube":
        from fluxcube.regions import integrals

        summary = integrals.run(target, n_workers=2, force=True)
        assert summary.published, summary
    else:
        import xarray as xr

        from fluxcube.publish import Publisher

        pub = Publisher(target)
        flux = pub.open("inversions_gridded_monthly")["land_flux_fire_adjusted"]
        reg = pub.open("regions_land_0p5deg").load()
        weights = reg["region_fraction"].values.astype("float64") * reg["cell_area"].values
        values = np.nan_to_num(flux.values.astype("float64"))  # (member, time, lat, lon), all in memory
        days = flux["time"].dt.days_in_month.values.astype("float64")
        out = np.einsum("mtij,rij->mrt", values, weights) * days / 1e15
        assert np.isfinite(out).all() and isinstance(flux, xr.DataArray)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, children.ru_maxrss) / 1024.0
    return {"wall_s": wall, "cpu_s": cpu + children.ru_utime + children.ru_stime, "peak_rss_mib": rss}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--months", type=int, nargs="+", default=[12, 48])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--child", nargs=2, metavar=("VARIANT", "TARGET"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(run_variant(*args.child)))
        return
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-integrals-") as tmp:
        for months in args.months:
            target = str(Path(tmp) / f"m{months}")
            t0 = time.perf_counter()
            make_inputs(target, months)
            print(f"{months} months: inputs written in {time.perf_counter() - t0:.1f} s", flush=True)
            row: dict[str, object] = {"months": months, "input_mb": N_MEMBERS * months * 360 * 720 * 4 / 1e6}
            for variant in ("fluxcube", "baseline"):
                runs = []
                for _ in range(args.repeat):
                    out = subprocess.run(
                        [sys.executable, __file__, "--child", variant, target],
                        check=True,
                        capture_output=True,
                        text=True,
                    )
                    runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
                row[variant] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            f, b = row["fluxcube"], row["baseline"]
            ratio = f"{f['wall_s'] / b['wall_s']:.2f}x time, {f['peak_rss_mib'] / b['peak_rss_mib']:.2f}x RSS"
            print(
                f"{months:>3} months ({row['input_mb']:.0f} MB float32): fluxcube {f['wall_s']:.1f} s wall, "
                f"{f['cpu_s']:.1f} s CPU, {f['peak_rss_mib']:.0f} MiB | baseline {b['wall_s']:.1f} s, "
                f"{b['cpu_s']:.1f} s CPU, {b['peak_rss_mib']:.0f} MiB | ratio {ratio}",
                flush=True,
            )
            results.append(row)
    out_dir = Path(__file__).parent / "results"
    out_dir.mkdir(exist_ok=True)
    path = out_dir / f"regional_integrals_{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps({"host": platform.node(), "results": results}, indent=1))
    print(f"results: {path}")


if __name__ == "__main__":
    main()
