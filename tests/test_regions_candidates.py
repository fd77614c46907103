"""Candidate pixels: DTW against a plain dynamic-programming reference, spectral clusters of planted
groups, the subsample-and-assign path for large regions, and the stratified allocation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fluxcube.regions import candidates


def dtw_reference(a: np.ndarray, b: np.ndarray, window: int | None = None) -> float:
    """Textbook DTW: D[i, j] = (a_i - b_j)^2 + min(D[i-1, j], D[i, j-1], D[i-1, j-1]); sqrt(D[n, m])."""
    n, m = len(a), len(b)
    w = max(n, m) if window is None else max(window, abs(n - m))
    d = [[math.inf] * (m + 1) for _ in range(n + 1)]
    d[0][0] = 0.0
    for i in range(1, n + 1):
        for j in range(max(1, i - w), min(m, i + w) + 1):
            d[i][j] = (a[i - 1] - b[j - 1]) ** 2 + min(d[i - 1][j], d[i][j - 1], d[i - 1][j - 1])
    return math.sqrt(d[n][m])


@pytest.mark.parametrize("window", [None, 2])
def test_dtw_matches_the_textbook_recursion(window: int | None) -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(7, 12))
    got = candidates.dtw_matrix(x, window)
    for i in range(7):
        for j in range(7):
            assert got[i, j] == pytest.approx(dtw_reference(x[i], x[j], window), rel=1e-12, abs=1e-12)
    # distances to a few reference rows are the same numbers
    to = candidates.dtw_to(x[3:], x[:3], window)
    np.testing.assert_allclose(to, got[3:, :3], rtol=1e-12)


def test_dtw_forgives_a_shift_that_euclid_does_not() -> None:
    t = np.arange(12)
    a = np.sin(2 * np.pi * t / 12)
    b = np.sin(2 * np.pi * (t - 1) / 12)  # one month later
    euclid = float(np.sqrt(((a - b) ** 2).sum()))
    assert candidates.dtw_matrix(np.vstack([a, b]))[0, 1] < 0.5 * euclid


def test_standardise_and_seasonal_cycle() -> None:
    months = np.tile(np.arange(1, 13), 3)  # 3 years
    cycle = np.arange(12.0) ** 2
    years = np.array([0.0, 1.0, 2.0]).repeat(12)
    monthly = np.stack([cycle[months - 1] + years, np.full(36, 5.0)], axis=1)  # (time, pixel)
    seasonal = candidates.seasonal_cycle(monthly, months)
    np.testing.assert_allclose(seasonal[0], cycle + 1.0)  # the mean of years 0, 1, 2
    z = candidates.comparison_series(monthly, months, "seasonal")
    np.testing.assert_allclose(z[0], (cycle - cycle.mean()) / cycle.std())
    np.testing.assert_array_equal(z[1], 0.0)  # a flat cycle
    assert candidates.comparison_series(monthly, months, "monthly").shape == (2, 36)
    with pytest.raises(ValueError, match="series"):
        candidates.comparison_series(monthly, months, "weekly")


def _planted(n_per: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three regimes of seasonal cycles (summer peak, winter peak, double peak) with small noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(12)
    shapes = [np.cos(2 * np.pi * (t - 6) / 12), np.cos(2 * np.pi * t / 12), np.cos(4 * np.pi * t / 12)]
    truth = np.repeat(np.arange(3), n_per)
    rows = np.stack([shapes[g] * rng.uniform(0.5, 3) + rng.normal(0, 0.05, 12) for g in truth])
    order = rng.permutation(truth.size)
    return candidates.standardise(rows[order]), truth[order]


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = {(int(x), int(y)) for x, y in zip(a, b, strict=True)}
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def test_spectral_clusters_recover_planted_regimes() -> None:
    series, truth = _planted(20)
    clusters = candidates.cluster_pixels(series, n_clusters=3, seed=1)
    assert clusters.n_clusters == 3 and clusters.clustered.size == series.shape[0]
    assert _same_partition(clusters.labels, truth)
    for c, m in enumerate(clusters.medoids):
        assert clusters.labels[m] == c


def test_large_regions_cluster_a_subsample_and_assign_the_rest() -> None:
    series, truth = _planted(60)
    clusters = candidates.cluster_pixels(series, n_clusters=3, seed=1, max_pixels=40)
    assert clusters.clustered.size == 40
    assert _same_partition(clusters.labels, truth)  # the 140 assigned pixels join their own regime
    again = candidates.cluster_pixels(series, n_clusters=3, seed=1, max_pixels=40)
    np.testing.assert_array_equal(again.labels, clusters.labels)


def test_identical_series_form_one_cluster() -> None:
    series = np.tile(np.linspace(-1, 1, 12), (5, 1))
    assert candidates.cluster_pixels(series, n_clusters=4).labels.tolist() == [0] * 5


@pytest.mark.parametrize(
    ("sizes", "n"), [([50, 30, 20], 10), ([97, 2, 1], 10), ([5, 5], 20), ([1, 1, 1, 40], 3), ([0, 8, 3], 6)]
)
def test_allocation_is_proportional_and_covers_every_cluster(sizes: list[int], n: int) -> None:
    sizes_a = np.array(sizes)
    take = candidates.allocate(sizes_a, n)
    assert take.sum() == min(n, sizes_a.sum())
    assert (take <= sizes_a).all()
    if n >= (sizes_a > 0).sum():
        assert ((take >= 1) | (sizes_a == 0)).all()
    exact = sizes_a / sizes_a.sum() * n
    if n < sizes_a.sum() and (exact[sizes_a > 0] >= 1).all():  # no stratum lifted to its minimum of one
        assert np.abs(take - exact).max() < 1


def test_stratified_sample_draws_the_allocation_from_each_cluster() -> None:
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    rng = np.random.default_rng(0)
    pick = candidates.stratified_sample(labels, 10, rng)
    assert np.bincount(labels[pick], minlength=3).tolist() == [5, 3, 2]
    assert np.unique(pick).size == 10 and np.all(np.diff(pick) > 0)
    same = candidates.stratified_sample(labels, 10, np.random.default_rng(0))
    np.testing.assert_array_equal(pick, same)
    assert candidates.stratified_sample(labels, 500, rng).size == 100  # all of them
