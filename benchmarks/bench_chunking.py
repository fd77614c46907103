"""Benchmark: chunk shapes of a daily 0.5 degree store for map reads and pixel time-series reads, and
incremental append (one new month) against a full rewrite of a 12-month ERA5 store.

Part ``chunks``: a synthetic ERA5-like year (365 days x 360 x 720 float32, 378 MB; a seasonal and
latitudinal temperature field plus weather noise quantised to 0.01 K, zstd level 0 as xarray writes
it) is written with each chunking below. Measured, each as the median of ``--repeat`` reads of
random days / pixels, opening the array afresh every time (the OS page cache is warm: this measures
decoding and request counts, not a cold disk):

- map: one day, the whole globe (360 x 720 values);
- series: one pixel, all 365 days;
- series 17 y: one pixel over 17 years (6205 days) from a 17-year store holding only the 90 x 90
  cell block around that pixel (the other chunks are never written, so it stays small); for a
  chunking whose chunks span the globe that store would be 6.4 GB, so that figure is the 1-year one
  times 17 (reads scale with the number of chunks touched), marked "extrapolated".

Each read is timed through zarr directly and through xarray (``open_zarr(...).isel(...).values``).

Part ``append``: 13 monthly ERA5-like CDS NetCDF files (hourly t2m on a global 2 degree grid,
49 MB each) are ingested by the ERA5 recipe: 12 months published, then month 13 added by
``fluxcube.recipes.append.append`` (hard links locally for the untouched chunks), against
``era5.run`` on all 13 files into a fresh target (the full rewrite). Each in a fresh process.

    PYTHONPATH=src python benchmarks/bench_chunking.py [--part chunks|append|all] [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHUNKINGS = {
    "time 32 x 90 x 90 (ERA5/MODIS stores)": (32, 90, 90),
    "map 1 x 360 x 720": (1, 360, 720),
    "series 365 x 15 x 15": (365, 15, 15),
}
NT, NY, NX = 365, 360, 720


def synthetic_year(nt: int = NT, seed: int = 0) -> np.ndarray:
    """(nt, 360, 720) float32 degC: seasonal cycle x latitude, plus quantised noise."""
    rng = np.random.default_rng(seed)
    lat = np.linspace(-89.75, 89.75, NY)[None, :, None]
    lon = np.linspace(-179.75, 179.75, NX)[None, None, :]
    out = np.empty((nt, NY, NX), dtype="float32")
    for t0 in range(0, nt, 32):
        t = np.arange(t0, min(nt, t0 + 32))[:, None, None]
        season = np.cos(2 * np.pi * (t - 200) / 365.25) * np.sign(lat) * (np.abs(lat) / 90) * 15
        field = 28 - 0.5 * np.abs(lat) + season + 2 * np.sin(np.deg2rad(lon) * 3)
        noise = rng.normal(0, 2, (t.size, NY, NX))
        out[t0 : t0 + t.size] = np.round(field + noise, 2)
    return out


def write_store(path: Path, data: np.ndarray, chunks: tuple[int, int, int], t0: int = 0) -> float:
    """Write ``data`` as variable Tair of a Zarr v3 store (xarray defaults: zstd); return seconds."""
    import pandas as pd
    import xarray as xr

    time_ = pd.date_range("2001-01-01", periods=data.shape[0], freq="D") + pd.Timedelta(days=t0)
    ds = xr.Dataset(
        {"Tair": (("time", "lat", "lon"), data, {"units": "degC"})},
        coords={
            "time": time_,
            "lat": np.linspace(-89.75, 89.75, NY),
            "lon": np.linspace(-179.75, 179.75, NX),
        },
    )
    start = time.perf_counter()
    ds.to_zarr(path, mode="w", zarr_format=3, consolidated=False, encoding={"Tair": {"chunks": chunks}})
    return time.perf_counter() - start


def write_block_store(path: Path, years: int, chunks: tuple[int, int, int]) -> None:
    """A ``years``-long store of the global grid holding data only in the cell block 180:270, 360:450."""
    import dask.array as da
    import pandas as pd
    import xarray as xr

    nt = years * 365
    ds = xr.Dataset(
        {"Tair": (("time", "lat", "lon"), da.full((nt, NY, NX), np.nan, dtype="float32", chunks=chunks))},
        coords={
            "time": pd.date_range("2001-01-01", periods=nt, freq="D"),
            "lat": np.linspace(-89.75, 89.75, NY),
            "lon": np.linspace(-179.75, 179.75, NX),
        },
    )
    ds.to_zarr(
        path,
        mode="w",
        compute=False,
        zarr_format=3,
        consolidated=False,
        encoding={"Tair": {"chunks": chunks}},
    )
    block = synthetic_year()[:, 180:270, 360:450]
    for y in range(years):
        part = xr.Dataset({"Tair": (("time", "lat", "lon"), block)})
        part.to_zarr(
            path,
            region={"time": slice(365 * y, 365 * (y + 1)), "lat": slice(180, 270), "lon": slice(360, 450)},
            mode="r+",
            zarr_format=3,
            consolidated=False,
        )


def time_reads(path: Path, repeat: int, pixels: np.ndarray, days: np.ndarray) -> dict[str, float]:
    import xarray as xr
    import zarr

    out: dict[str, list[float]] = {k: [] for k in ("map_zarr", "map_xarray", "series_zarr", "series_xarray")}
    for k in range(repeat):
        d, (i, j) = int(days[k]), pixels[k]
        t = time.perf_counter()
        m = zarr.open_array(str(path / "Tair"), mode="r")[d]
        out["map_zarr"].append(time.perf_counter() - t)
        t = time.perf_counter()
        m2 = xr.open_zarr(path, consolidated=False)["Tair"].isel(time=d).values
        out["map_xarray"].append(time.perf_counter() - t)
        assert np.array_equal(m, m2, equal_nan=True)
        t = time.perf_counter()
        s = zarr.open_array(str(path / "Tair"), mode="r")[:, i, j]
        out["series_zarr"].append(time.perf_counter() - t)
        t = time.perf_counter()
        s2 = xr.open_zarr(path, consolidated=False)["Tair"].isel(lat=i, lon=j).values
        out["series_xarray"].append(time.perf_counter() - t)
        assert np.array_equal(s, s2, equal_nan=True)
    return {k: float(np.median(v)) for k, v in out.items()}


def chunk_part(root: Path, repeat: int) -> list[dict]:
    data = synthetic_year()
    rng = np.random.default_rng(1)
    days = rng.integers(0, NT, repeat)
    pixels = np.stack([rng.integers(0, NY, repeat), rng.integers(0, NX, repeat)], axis=1)
    block_pixels = np.stack([rng.integers(180, 270, repeat), rng.integers(360, 450, repeat)], axis=1)
    results = []
    for label, chunks in CHUNKINGS.items():
        path = root / f"year-{'x'.join(map(str, chunks))}.zarr"
        write_s = write_store(path, data, chunks)
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        r = {"chunking": label, "chunks": chunks, "write_s": write_s, "stored_mb": size / 1e6}
        r.update(time_reads(path, repeat, pixels, days))
        n_chunks = int(np.prod([-(-n // c) for n, c in zip((NT, NY, NX), chunks, strict=True)]))
        r["chunk_kb"] = int(np.prod(chunks)) * 4 / 1e3
        r["chunks_per_map"] = int(np.prod([-(-n // c) for n, c in zip((NY, NX), chunks[1:], strict=True)]))
        r["chunks_per_series_17y"] = -(-6205 // chunks[0])
        r["n_chunks"] = n_chunks
        if chunks[1:] == (NY, NX):
            r["series17_zarr"] = r["series_zarr"] * 17
            r["series17_xarray"] = r["series_xarray"] * 17
            r["series17"] = "extrapolated (17 x the 1-year read)"
        else:
            block = root / f"17y-{'x'.join(map(str, chunks))}.zarr"
            write_block_store(block, 17, chunks)
            t = time_reads(block, repeat, block_pixels, days)
            r["series17_zarr"], r["series17_xarray"] = t["series_zarr"], t["series_xarray"]
            r["series17"] = "measured"
        results.append(r)
        print(
            f"{label:38s} chunk {r['chunk_kb']:7.0f} kB  stored {r['stored_mb']:5.0f} MB  "
            f"write {write_s:5.1f} s | "
            f"map {r['map_zarr'] * 1e3:7.1f} ms zarr {r['map_xarray'] * 1e3:7.1f} ms xarray | "
            f"series 1 y {r['series_zarr'] * 1e3:7.1f} / {r['series_xarray'] * 1e3:7.1f} ms | "
            f"17 y {r['series17_zarr'] * 1e3:8.1f} / {r['series17_xarray'] * 1e3:8.1f} ms ({r['series17']})",
            flush=True,
        )
    return results


# ----------------------------------------------------------------------------------- append part
def month_file(path: Path, month: int) -> None:
    """Hourly t2m (K) of month ``month`` (1..13, from 2021-01) on a global 2 degree grid (CDS layout)."""
    import pandas as pd
    import xarray as xr

    start = pd.Timestamp("2021-01-01") + pd.DateOffset(months=month - 1)
    stop = start + pd.DateOffset(months=1)
    time_ = pd.date_range(start, stop, freq="h", inclusive="left")
    lat = np.arange(90.0, -90.5, -2.0)
    lon = np.arange(0.0, 360.0, 2.0)
    hours = ((time_ - pd.Timestamp("2021-01-01")) / pd.Timedelta(hours=1)).to_numpy()[:, None, None]
    t2m = (
        288
        - 0.4 * np.abs(lat)[None, :, None]
        + 8 * np.sin(2 * np.pi * hours / 24 + np.deg2rad(lon)[None, None, :])
        + 10 * np.cos(2 * np.pi * (hours / 24 - 200) / 365.25) * np.sign(lat)[None, :, None]
    ).astype("f4")
    xr.Dataset(
        {"t2m": (("time", "latitude", "longitude"), t2m, {"units": "K"})},
        coords={"time": time_, "latitude": lat, "longitude": lon},
    ).to_netcdf(path)


def append_case(kind: str, source: str, target: str) -> dict:
    import resource

    from fluxcube.recipes import append as app
    from fluxcube.recipes import era5

    t = time.perf_counter()
    summary = app.append(source, target) if kind == "append" else era5.run(source, target)
    wall = time.perf_counter() - t
    assert summary.published, summary
    return {"wall_s": wall, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def append_part(root: Path) -> dict:
    src12, src13, new = root / "m12", root / "m13", root / "new"
    for d in (src12, src13, new):
        d.mkdir()
        (d / "SYNTHETIC.json").write_text("{}")
    for m in range(1, 14):
        month_file(src13 / f"era5_{m:02d}.nc", m)
        if m <= 12:
            (src12 / f"era5_{m:02d}.nc").hardlink_to(src13 / f"era5_{m:02d}.nc")
    # the new month and the previous one (its file completes nothing for t2m, but shows the seam path)
    (new / "era5_13.nc").hardlink_to(src13 / "era5_13.nc")

    def child(kind: str, source: Path, target: Path) -> dict:
        proc = subprocess.run(
            [sys.executable, __file__, "--append-case", kind, str(source), str(target)],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(proc.stdout.strip().splitlines()[-1])

    published = root / "store"
    first = child("run", src12, published)
    appended = child("append", new, published)
    full = child("run", src13, root / "full")
    from fluxcube.publish import Publisher

    pub = Publisher(str(published))
    manifest = pub.current("era5_daily_0p5deg")
    a = pub.open("era5_daily_0p5deg").load()
    b = Publisher(str(root / "full")).open("era5_daily_0p5deg").load()
    same = all(np.array_equal(a[v].values, b[v].values, equal_nan=True) for v in a.data_vars)
    store = Path(pub.store_location("era5_daily_0p5deg", manifest["version"]).path)
    out = {
        "publish_12_months_s": first["wall_s"],
        "append_1_month_s": appended["wall_s"],
        "full_rewrite_13_months_s": full["wall_s"],
        "append_peak_rss_mib": appended["peak_rss_mib"],
        "full_peak_rss_mib": full["peak_rss_mib"],
        "objects": manifest["metadata"]["append"]["objects"],
        "store_objects": sum(1 for f in store.rglob("*") if f.is_file()),
        "days": int(a.sizes["time"]),
        "identical_to_full_rewrite": bool(same),
        "input_mb_per_month": (src13 / "era5_13.nc").stat().st_size / 1e6,
    }
    print(
        f"12-month store: first publication {out['publish_12_months_s']:.1f} s; append of month 13 "
        f"{out['append_1_month_s']:.1f} s ({out['objects']}); full rewrite of 13 months "
        f"{out['full_rewrite_13_months_s']:.1f} s; identical: {same}; peak RSS append "
        f"{out['append_peak_rss_mib']:.0f} MiB, full {out['full_peak_rss_mib']:.0f} MiB",
        flush=True,
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=("chunks", "append", "all"), default="all")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--append-case", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument(
        "--out", default=None, help="JSON results (default benchmarks/results/bench_chunking-<time>.json)"
    )
    args = ap.parse_args()
    if args.append_case:
        print(json.dumps(append_case(*args.append_case)))
        return
    import xarray as xr
    import zarr

    results: dict = {
        "host": platform.node(),
        "python": platform.python_version(),
        "zarr": zarr.__version__,
        "xarray": xr.__version__,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with tempfile.TemporaryDirectory(prefix="bench-chunking-") as tmp:
        if args.part in ("chunks", "all"):
            (Path(tmp) / "chunks").mkdir()
            results["chunks"] = chunk_part(Path(tmp) / "chunks", args.repeat)
        if args.part in ("append", "all"):
            (Path(tmp) / "append").mkdir()
            results["append"] = append_part(Path(tmp) / "append")
    out = (
        Path(args.out)
        if args.out
        else Path(__file__).parent
        / "results"
        / (f"bench_chunking-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json")
    )
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
