"""Candidate pixels for the bridge models: DTW distances, spectral clustering, stratified sampling.

Paper (EC-ATM, section 3.3): the pixels of a region are grouped by the similarity of their NEE series
(dynamic time warping distance, then spectral clustering), and each random trial draws its candidate
pixels from every cluster (stratified random sampling), so that the candidates keep the variety of the
region.

Choices made here (docs/bridges.md):

- **Series compared**: each pixel's *standardised mean seasonal cycle* (12 monthly values, mean 0 and
  standard deviation 1; a flat cycle becomes all zeros) by default, so clusters group pixels by the
  shape and timing of their seasonal cycle, not by its amplitude; ``series="monthly"`` compares the
  standardised full monthly series instead (DTW with a Sakoe-Chiba band: shifts of at most
  ``window`` months).
- **DTW**: dtaidistance's C implementation (``dtw.distance_matrix_fast``): the square root of the
  smallest sum of squared differences along a warping path (steps (1,0), (0,1), (1,1)).
- **Affinity**: a Gaussian kernel of the DTW distances, exp(-d^2 / (2 s^2)) with s the median of the
  non-zero distances; scikit-learn's ``SpectralClustering(affinity="precomputed",
  assign_labels="cluster_qr")`` (deterministic: no k-means restarts).
- **Bounded cost**: all pairs cost O(n^2 T^2). A region with more than ``max_pixels`` pixels is
  clustered on a seeded random subsample of ``max_pixels`` pixels; each other pixel joins the cluster of
  its nearest medoid (DTW to the ``n_clusters`` medoids only: O(n k T^2)). Memory: one
  ``max_pixels`` x ``max_pixels`` float64 matrix (8 MB for 1000).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

SERIES = ("seasonal", "monthly")


@dataclass
class Clusters:
    """The clusters of one region's pixels.

    ``labels`` (pixel,): cluster number 0..k-1 of every pixel; ``medoids`` (k,): pixel index of each
    cluster's medoid; ``clustered`` (m,): the pixels whose all-pairs distances were computed (all of
    them unless the region had more than ``max_pixels``).
    """

    labels: np.ndarray
    medoids: np.ndarray
    clustered: np.ndarray

    @property
    def n_clusters(self) -> int:
        return int(self.medoids.size)


def standardise(series: np.ndarray) -> np.ndarray:
    """Rows of ``series`` (pixel, time; any units) scaled to mean 0 and standard deviation 1 (unitless).

    A constant row becomes zeros.
    """
    x = np.asarray(series, dtype="float64")
    mean = x.mean(axis=1, keepdims=True)
    sd = x.std(axis=1, keepdims=True)
    return np.where(sd > 0, (x - mean) / np.where(sd > 0, sd, 1.0), 0.0)


def seasonal_cycle(monthly: np.ndarray, month_of_year: np.ndarray) -> np.ndarray:
    """Mean seasonal cycle (pixel, 12) of monthly values (time, pixel), same units (e.g. g C m-2 d-1).

    ``month_of_year`` (time,): 1..12. A calendar month absent from the record is filled with the mean
    of the pixel's cycle.
    """
    x = np.asarray(monthly, dtype="float64")
    out = np.full((x.shape[1], 12), np.nan)
    for m in range(12):
        rows = np.asarray(month_of_year) == m + 1
        if rows.any():
            out[:, m] = x[rows].mean(axis=0)
    fill = np.nanmean(out, axis=1, keepdims=True)
    return np.where(np.isnan(out), fill, out)


def comparison_series(monthly: np.ndarray, month_of_year: np.ndarray, series: str = "seasonal") -> np.ndarray:
    """The standardised series (pixel, T; unitless) that DTW compares, from monthly values (time, pixel)."""
    if series not in SERIES:
        raise ValueError(f"series {series!r}: expected one of {SERIES}")
    raw = seasonal_cycle(monthly, month_of_year) if series == "seasonal" else np.asarray(monthly).T
    return standardise(raw)


def _band(window: int | None) -> int | None:
    """dtaidistance's ``window`` allows shifts strictly smaller than it: ours allows up to ``window``."""
    return None if window is None else window + 1


def dtw_matrix(series: np.ndarray, window: int | None = None) -> np.ndarray:
    """All-pairs DTW distances (n, n) between the rows of ``series`` (n, T), in the series' units.

    dtaidistance's C code, one thread (parallelism comes from Dask, one region or trial per task);
    ``window``: Sakoe-Chiba band, the largest shift |i - j| in time steps (None: unconstrained).
    """
    from dtaidistance import dtw

    x = np.ascontiguousarray(series, dtype="float64")
    if x.shape[0] < 2:
        return np.zeros((x.shape[0], x.shape[0]))
    d = dtw.distance_matrix_fast(x, window=_band(window), parallel=False)
    return np.asarray(d, dtype="float64")


def dtw_to(series: np.ndarray, refs: np.ndarray, window: int | None = None) -> np.ndarray:
    """DTW distances (n, k) from each row of ``series`` (n, T) to each row of ``refs`` (k, T)."""
    from dtaidistance import dtw

    k, n = refs.shape[0], series.shape[0]
    both = np.ascontiguousarray(np.vstack([refs, series]), dtype="float64")
    block = ((0, k), (k, k + n))  # compact: only the block's k x n values, never an (n + k)^2 matrix
    d = dtw.distance_matrix_fast(both, window=_band(window), block=block, compact=True, parallel=False)
    return np.asarray(d, dtype="float64").reshape(k, n).T


def spectral_labels(distances: np.ndarray, n_clusters: int, seed: int) -> np.ndarray:
    """Spectral clustering (labels 0..k-1) of a symmetric distance matrix (n, n), Gaussian affinity.

    ``n_clusters`` is lowered to the number of distinct series when there are fewer.
    """
    from sklearn.cluster import SpectralClustering

    n = distances.shape[0]
    positive = distances[np.triu_indices(n, 1)]
    positive = positive[positive > 0]
    k = min(n_clusters, n, 1 + positive.size)
    if k <= 1:
        return np.zeros(n, dtype="int32")
    scale = float(np.median(positive))
    affinity = np.exp(-(distances**2) / (2 * scale**2))
    model = SpectralClustering(
        n_clusters=k, affinity="precomputed", assign_labels="cluster_qr", random_state=seed
    )
    with warnings.catch_warnings():  # small regions: scipy's dense eigensolver instead of ARPACK, fine
        warnings.filterwarnings("ignore", "k >= N", RuntimeWarning)
        labels = model.fit_predict(affinity)
    _, dense = np.unique(labels, return_inverse=True)  # numbers 0..k'-1 without gaps
    return dense.astype("int32")


def medoids(distances: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Index of each cluster's medoid (the member with the smallest sum of distances to its cluster)."""
    out = []
    for c in range(int(labels.max()) + 1):
        members = np.flatnonzero(labels == c)
        out.append(members[np.argmin(distances[np.ix_(members, members)].sum(axis=1))])
    return np.asarray(out, dtype="int64")


def cluster_pixels(
    series: np.ndarray,
    n_clusters: int = 8,
    seed: int = 0,
    max_pixels: int = 1000,
    window: int | None = None,
) -> Clusters:
    """Cluster the pixels (rows of ``series``, standardised, unitless) by DTW + spectral clustering.

    Above ``max_pixels`` pixels, the all-pairs step runs on a subsample drawn with ``seed`` and the other
    pixels join their nearest medoid's cluster (module docstring). Deterministic for a given ``seed``.
    """
    n = series.shape[0]
    if n == 0:
        return Clusters(np.zeros(0, "int32"), np.zeros(0, "int64"), np.zeros(0, "int64"))
    rng = np.random.default_rng([seed, 0xC1])
    sub = np.arange(n) if n <= max_pixels else np.sort(rng.choice(n, max_pixels, replace=False))
    d = dtw_matrix(series[sub], window)
    sub_labels = spectral_labels(d, n_clusters, seed)
    centre = sub[medoids(d, sub_labels)]
    labels = np.empty(n, dtype="int32")
    labels[sub] = sub_labels
    rest = np.setdiff1d(np.arange(n), sub)
    if rest.size:
        labels[rest] = np.argmin(dtw_to(series[rest], series[centre], window), axis=1)
    return Clusters(labels, centre, sub)


def allocate(sizes: np.ndarray, n_total: int) -> np.ndarray:
    """Stratified allocation: how many of ``n_total`` samples each stratum of ``sizes`` gets.

    Proportional to size (largest remainders), at least one per non-empty stratum, never more than its
    size; all of them when ``n_total`` covers every pixel.
    """
    sizes = np.asarray(sizes, dtype="int64")
    if n_total >= sizes.sum():
        return sizes.copy()
    share = sizes / sizes.sum() * n_total
    take = np.minimum(np.maximum(np.floor(share).astype("int64"), (sizes > 0).astype("int64")), sizes)
    order = np.argsort(-(share - np.floor(share)), kind="stable")
    i = 0
    while take.sum() < n_total:
        c = order[i % order.size]
        if take[c] < sizes[c]:
            take[c] += 1
        i += 1
    while take.sum() > n_total:  # the minimum of one per stratum overshot: trim the largest
        c = int(np.argmax(take - (sizes > 0)))
        take[c] -= 1
    return take


def stratified_sample(labels: np.ndarray, n_total: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted pixel indices: a random sample without replacement from every cluster (:func:`allocate`)."""
    k = int(labels.max()) + 1 if labels.size else 0
    sizes = np.bincount(labels, minlength=k)
    take = allocate(sizes, n_total)
    picked = [
        rng.choice(np.flatnonzero(labels == c), take[c], replace=False) for c in range(k) if take[c] > 0
    ]
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype="int64")
