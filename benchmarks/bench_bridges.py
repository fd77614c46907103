"""Benchmark: bridge fitting for one region, fluxcube (dtaidistance + scikit-learn, trials on a Dask
LocalCluster) side by side with a naive single-process numpy/pandas version of the same computation.

The region is synthetic and the same for both: ``--pixels`` pixels x ``--years`` x 12 monthly NEE means
(g C m-2 d-1) from four seasonal regimes (phase, amplitude, inter-annual anomalies shared within a
regime, pixel noise), random cell areas, and the target = the area integral (Pg C month-1). Both
variants run the same steps with the same parameters:

1. standardised mean seasonal cycles, all-pairs DTW (squared differences, sqrt of the path sum);
2. Gaussian affinity of the distances (median scale), spectral clustering into ``--clusters``;
3. ``--trials`` trials: stratified random sample of ``--candidates`` pixels (proportional allocation),
   Lasso on standardised data with alpha lowered along 100 log-spaced alphas until training R2 >= 0.95,
   5-fold CV (contiguous blocks) at that alpha.

Naive: DTW as a Python double loop per pair, spectral clustering with ``numpy.linalg.eigh`` + a plain
k-means, sampling with ``pandas.DataFrame.groupby(...).sample``, Lasso by cyclic coordinate descent in
numpy. fluxcube: :func:`fluxcube.regions.bridges.fit_regions` on a ``fluxcube.cluster`` client
(``--workers``), dtaidistance's C DTW and scikit-learn. Each variant runs in a child process of its own
(so its peak RSS, with its Dask workers, is its own); reported: wall and CPU seconds, seconds per trial,
the trials' median training/CV R2 and pixel count, peak RSS, and the ratio naive / fluxcube.

``--part scaling`` times the clustering step alone as the region grows (all pairs against the bounded
subsample of ``max_dtw_pixels``), the O(n^2) that the subsample keeps in check.

Usage: ``python benchmarks/bench_bridges.py [--pixels 300] [--trials 40] [--workers 2] [--json out]``
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


# ------------------------------------------------------------------------------------- the region
def synthetic_region(pixels: int, years: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x (month, pixel) g C m-2 d-1, y (month) Pg C month-1, month of year (month,))."""
    rng = np.random.default_rng(seed)
    months = pd.date_range("2001-01-01", periods=12 * years, freq="MS")
    t = np.arange(months.size)
    regime = rng.integers(0, 4, pixels)
    phase = np.array([6.0, 7.5, 9.0, 3.0])[regime] + rng.normal(0, 0.5, pixels)
    amp = np.array([3.0, 1.5, 0.8, 2.0])[regime] * rng.uniform(0.5, 1.5, pixels)
    anomaly = np.cumsum(rng.normal(0, 0.15, (months.size, 4)), axis=0)  # shared within a regime
    x = (
        -amp[None] * np.cos(2 * np.pi * (t[:, None] % 12 - phase[None]) / 12)
        + anomaly[:, regime]
        + rng.normal(0, 0.2, (months.size, pixels))
    )
    area = rng.uniform(1.5e9, 3.1e9, pixels)  # m2, 0.5 degree cells
    y = (x * area[None]).sum(axis=1) * months.days_in_month.to_numpy() / 1e15
    return x, y, months.month.to_numpy()


# ------------------------------------------------------------------------------------------ naive
def naive_dtw(a: np.ndarray, b: np.ndarray) -> float:
    n, m = len(a), len(b)
    d = np.full((n + 1, m + 1), np.inf)
    d[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i, j] = (a[i - 1] - b[j - 1]) ** 2 + min(d[i - 1, j], d[i, j - 1], d[i - 1, j - 1])
    return math.sqrt(d[n, m])


def naive_kmeans(z: np.ndarray, k: int, rng: np.random.Generator, iters: int = 100) -> np.ndarray:
    centres = z[rng.choice(len(z), k, replace=False)]
    labels = np.zeros(len(z), dtype=int)
    for _ in range(iters):
        labels = ((z[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        new = np.array([z[labels == c].mean(0) if (labels == c).any() else centres[c] for c in range(k)])
        if np.allclose(new, centres):
            break
        centres = new
    return labels


def naive_clusters(x: np.ndarray, moy: np.ndarray, k: int, seed: int) -> np.ndarray:
    frame = pd.DataFrame(x).assign(month=moy)
    cycle = frame.groupby("month").mean().T.to_numpy()  # (pixel, 12)
    sd = cycle.std(1, keepdims=True)
    z = np.where(sd > 0, (cycle - cycle.mean(1, keepdims=True)) / np.where(sd > 0, sd, 1), 0)
    n = len(z)
    dist = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            dist[i, j] = dist[j, i] = naive_dtw(z[i], z[j])
    scale = np.median(dist[np.triu_indices(n, 1)])
    aff = np.exp(-(dist**2) / (2 * scale**2))
    deg = aff.sum(1)
    lap = aff / np.sqrt(deg[:, None] * deg[None])
    _, vecs = np.linalg.eigh(lap)
    emb = vecs[:, -k:]
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return naive_kmeans(emb, k, np.random.default_rng(seed))


def naive_lasso(xs: np.ndarray, ys: np.ndarray, alpha: float, w: np.ndarray, tol: float = 1e-6) -> np.ndarray:
    """Cyclic coordinate descent for 1/(2n)|y - Xw|^2 + alpha |w|_1 on standardised data."""
    n = len(ys)
    w = w.copy()
    r = ys - xs @ w
    norm = (xs**2).sum(0) / n
    for _ in range(2000):
        biggest = 0.0
        for j in range(xs.shape[1]):
            old = w[j]
            rho = xs[:, j] @ r / n + norm[j] * old
            w[j] = np.sign(rho) * max(abs(rho) - alpha, 0.0) / norm[j]
            if w[j] != old:
                r -= xs[:, j] * (w[j] - old)
                biggest = max(biggest, abs(w[j] - old))
        if biggest < tol:
            break
    return w


def naive_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, int, float]:
    def scale(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m, s = a.mean(0), a.std(0)
        return (a - m) / np.where(s > 0, s, 1), m, s

    xs, _, _ = scale(x)
    ys = (y - y.mean()) / y.std()
    amax = np.abs(xs.T @ ys).max() / len(y)
    w = np.zeros(x.shape[1])
    r2 = 0.0
    alpha = amax
    for alpha in amax * np.logspace(0, -4, 100):
        w = naive_lasso(xs, ys, alpha, w)
        r2 = 1 - ((ys - xs @ w) ** 2).sum() / (ys**2).sum()
        if r2 >= 0.95:
            break
    pred = np.empty_like(y)
    for test in np.array_split(np.arange(len(y)), 5):
        train = np.setdiff1d(np.arange(len(y)), test)
        xtr, m, s = scale(x[train])
        ytr_m, ytr_s = y[train].mean(), y[train].std()
        wt = naive_lasso(xtr, (y[train] - ytr_m) / ytr_s, alpha, np.zeros(x.shape[1]))
        pred[test] = ((x[test] - m) / np.where(s > 0, s, 1)) @ wt * ytr_s + ytr_m
    cv = 1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    return float(r2), float(cv), int((w != 0).sum()), float(alpha)


def run_naive(x: np.ndarray, y: np.ndarray, moy: np.ndarray, a: argparse.Namespace) -> dict[str, Any]:
    t0 = t = time.perf_counter()
    labels = naive_clusters(x, moy, a.clusters, a.seed)
    t_cluster = time.perf_counter() - t
    sizes = pd.Series(labels).value_counts().sort_index()
    share = np.maximum(1, np.round(sizes / sizes.sum() * a.candidates)).astype(int)
    frame = pd.DataFrame({"pixel": np.arange(len(labels)), "cluster": labels})
    fits = []
    for trial in range(a.trials):
        cand = np.sort(
            frame.groupby("cluster", group_keys=False)
            .apply(lambda g, tr=trial: g.sample(min(len(g), share[g.name]), random_state=tr))["pixel"]
            .to_numpy()
        )
        fits.append(naive_fit(x[:, cand], y))
    return {"cluster_s": t_cluster, "fit_s": time.perf_counter() - t0, "startup_s": 0.0, "fits": fits}


# --------------------------------------------------------------------------------------- fluxcube
def run_fluxcube(x: np.ndarray, y: np.ndarray, moy: np.ndarray, a: argparse.Namespace) -> dict[str, Any]:
    import xarray as xr

    from fluxcube.cluster import client
    from fluxcube.regions import bridges

    n = x.shape[1]
    weights = xr.DataArray(np.ones((1, 1, n)), dims=("region", "lat", "lon"), coords={"region": [1]})
    time_axis = pd.DatetimeIndex(pd.date_range("2001-01-01", periods=len(y), freq="MS"))
    inputs = bridges.Inputs(
        time_axis, np.zeros(1), np.arange(n, dtype=float), np.zeros(n, int), np.arange(n), x, y[None],
        np.ones(1), weights,
    )  # fmt: skip
    params = bridges.BridgeParams(
        n_trials=a.trials, n_candidates=a.candidates, n_clusters=a.clusters, seed=a.seed,
        trials_per_task=max(1, a.trials // (4 * a.workers)),
    )  # fmt: skip
    bridges.cluster_region(x[:, :20], moy, 1, params)  # warm: scikit-learn and dtaidistance imports
    t = time.perf_counter()
    labels = bridges.cluster_region(x, moy, 1, params)  # the clustering step alone, in this process
    t_cluster = time.perf_counter() - t
    assert labels.size == n
    t = time.perf_counter()
    with client(a.workers) as c:
        c.run(lambda: __import__("sklearn.linear_model") and __import__("dtaidistance.dtw"))  # warm imports
        startup = time.perf_counter() - t
        t = time.perf_counter()
        res = bridges.fit_regions(inputs, params, [1], c, progress=None)[1]  # clustering + trials
        fit_s = time.perf_counter() - t
    return {
        "cluster_s": t_cluster,
        "fit_s": fit_s,
        "startup_s": startup,
        "fits": [(f.r2_train, f.r2_cv, int(f.pixels.size), f.alpha) for f in res.fits],
    }


def child(a: argparse.Namespace) -> None:
    x, y, moy = synthetic_region(a.pixels, a.years, a.seed)
    t, c = time.perf_counter(), time.process_time()
    out = (run_naive if a.child == "naive" else run_fluxcube)(x, y, moy, a)
    out["wall_s"] = time.perf_counter() - t
    out["cpu_s"] = time.process_time() - c  # this process only (not the Dask workers)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    out["peak_rss_mib"] = own
    out["peak_rss_children_mib"] = kids
    Path(a.out).write_text(json.dumps(out))


def scaling(a: argparse.Namespace) -> None:
    from fluxcube.regions import candidates

    candidates.cluster_pixels(np.random.default_rng(0).normal(size=(20, 12)), 2)  # warm the imports
    for n in (500, 1000, 2000, 4000, 8000, 16000):
        x, _, moy = synthetic_region(n, a.years, a.seed)
        series = candidates.comparison_series(x, moy)
        row = []
        for cap in (n, 1000):
            if cap == n and n > 4000:
                row.append("   (skipped)")
                continue
            t = time.perf_counter()
            candidates.cluster_pixels(series, a.clusters, a.seed, max_pixels=cap)
            row.append(f"{time.perf_counter() - t:9.2f} s")
        print(f"{n:6d} pixels: all pairs {row[0]}, subsample of 1000 {row[1]}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pixels", type=int, default=300)
    p.add_argument("--years", type=int, default=17)
    p.add_argument("--trials", type=int, default=40)
    p.add_argument("--candidates", type=int, default=60)
    p.add_argument("--clusters", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--part", choices=("compare", "scaling"), default="compare")
    p.add_argument("--variants", default="fluxcube,naive", help="which to run (naive is slow above ~500 px)")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--child", choices=("naive", "fluxcube"), help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        child(a)
        return
    if a.part == "scaling":
        scaling(a)
        return
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in a.variants.split(","):
            out = Path(tmp) / f"{variant}.json"
            args = [sys.executable, __file__, "--child", variant, "--out", str(out)]
            for k in ("pixels", "years", "trials", "candidates", "clusters", "seed", "workers"):
                args += [f"--{k}", str(getattr(a, k))]
            t = time.perf_counter()
            subprocess.run(args, check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
            results[variant] = json.loads(out.read_text())
            results[variant]["process_s"] = time.perf_counter() - t
    print(
        f"\nregion: {a.pixels} pixels x {a.years * 12} months, {a.trials} trials, {a.candidates} "
        f"candidates, {a.clusters} clusters; fluxcube on {a.workers} Dask workers; host "
        f"{platform.node()}, {os.cpu_count()} cores"
    )
    head = ("variant", "fit s", "cluster s", "s/trial", "R2 train", "R2 CV", "pixels", "RSS MiB", "+workers")
    print("{:10s} {:>8s} {:>9s} {:>8s} {:>8s} {:>6s} {:>6s} {:>8s} {:>8s}".format(*head))
    for v, r in results.items():
        f = np.array([row[:3] for row in r["fits"]], dtype=float)
        per_trial = (r["fit_s"] - r["cluster_s"]) / a.trials
        print(
            f"{v:10s} {r['fit_s']:8.2f} {r['cluster_s']:9.2f} {per_trial:8.3f} {np.median(f[:, 0]):8.3f} "
            f"{np.median(f[:, 1]):6.3f} {np.median(f[:, 2]):6.0f} {r['peak_rss_mib']:8.0f} "
            f"{r['peak_rss_children_mib']:8.0f}"
        )
    if len(results) < 2:
        return
    ratio = results["naive"]["fit_s"] / results["fluxcube"]["fit_s"]
    print(
        f"ratio naive / fluxcube (fitting the region: clustering + all trials): {ratio:.1f}x; fluxcube's "
        f"cluster start-up {results['fluxcube']['startup_s']:.1f} s not included"
    )
    if a.json:
        Path(a.json).write_text(json.dumps({"args": vars(a), "results": results, "ratio": ratio}, indent=1))


if __name__ == "__main__":
    main()
