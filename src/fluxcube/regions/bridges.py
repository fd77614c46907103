"""Bridge models (EC-ATM paper, section 3.3): per region, a sparse linear model from a few pixels' NEE
to the region's monthly NEE integral, and its stability over many random trials.

For each region r of the ``regions_land_0p5deg`` store and a gridded NEE product (g C m-2 d-1, daily or
monthly, on the 0.5 degree grid or a coarser one whose cells are whole blocks of 0.5 degree cells):

- ``x`` (month, pixel): the product's monthly means at the region's pixels (cells with a part in the
  region and a value every month), g C m-2 d-1;
- ``y`` (month): the product's own regional integral, Pg C month-1 (:mod:`fluxcube.regions.integrate`);
- clusters of the pixels (:mod:`fluxcube.regions.candidates`: DTW + spectral clustering), computed once
  per region;
- ``n_trials`` random trials, each seeded by (seed, region, trial) so that a rerun gives the same result
  whatever the scheduling: a stratified random sample of candidate pixels from the clusters; Lasso on the
  standardised candidates along a path of alphas from ``alpha_max`` (no pixel) down to
  ``alpha_max x alpha_ratio``, stopping at the first alpha whose training R2 reaches ``threshold``;
  k-fold cross-validation at that alpha (contiguous blocks of months, no shuffling; R2 of the pooled
  out-of-fold predictions). Result: contributing pixels, weights (Pg C month-1 per g C m-2 d-1), bias
  (Pg C month-1), alpha, R2 train and CV.
- THE bridge of a region (:func:`select_bridge`): among trials whose training R2 reached the threshold
  (all trials if none did), those within ``cv_tolerance`` of the best CV R2; of these the one with the
  fewest pixels, then the highest CV R2, then the lowest trial number.

Trials run on Dask (:func:`fluxcube.cluster.client`), in batches of ``trials_per_task``. The store
``bridges_<product>`` is published with :class:`fluxcube.publish.Publisher` (provenance: product and
regions versions, parameters); :func:`heatmaps` draws the inclusion frequency of every pixel per region.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time as _time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from rich.progress import Progress

from fluxcube.errors import InputError
from fluxcube.publish import Publisher, Release, iter_files
from fluxcube.recipes.regions import DATASET as REGIONS_DATASET
from fluxcube.recipes.regions import REGIONS, RESOLUTION, grid_coords
from fluxcube.recipes.transforms import inputs_are_synthetic
from fluxcube.regions import candidates
from fluxcube.regions.integrate import covered_fraction, monthly_means, region_weights, regional_integrals

log = logging.getLogger(__name__)

RECIPE = "bridges"
RECIPE_VERSION = "1.0.0"
FLUX_UNITS = "g C m-2 d-1"
WEIGHT_UNITS = "Pg C month-1 (g C m-2 d-1)-1"
MAX_ITER = 2000  # coordinate-descent sweeps per alpha
PATH_SEGMENT = 10  # alphas computed at a time along the path
TOL = 1e-4  # scikit-learn's dual-gap tolerance, relative to the (unit) variance of the target


# ------------------------------------------------------------------------------------ parameters
@dataclass(frozen=True)
class BridgeParams:
    """Parameters of the bridge fitting (stored in the provenance).

    ``n_trials`` random trials (1000 in the paper) seeded by ``seed``; ``n_candidates`` candidate pixels
    per trial (all pixels when the region has fewer); ``n_clusters`` spectral clusters; ``threshold``:
    training R2 to reach; ``folds``: k of the k-fold CV; ``n_alphas`` alphas on a log scale from
    alpha_max down to alpha_max x ``alpha_ratio``; ``series``/``window``/``max_dtw_pixels``: the DTW
    clustering (:mod:`fluxcube.regions.candidates`); ``cv_tolerance``: the selection rule's R2 margin.
    """

    n_trials: int = 1000
    seed: int = 0
    n_candidates: int = 100
    n_clusters: int = 8
    threshold: float = 0.95
    folds: int = 5
    n_alphas: int = 100
    alpha_ratio: float = 1e-4
    series: str = "seasonal"
    window: int | None = None
    max_dtw_pixels: int = 1000
    cv_tolerance: float = 0.01
    trials_per_task: int = 50

    def __post_init__(self) -> None:
        if self.n_trials < 1 or self.n_candidates < 1 or self.folds < 2:
            raise ValueError("n_trials and n_candidates must be >= 1 and folds >= 2")
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold {self.threshold}: expected an R2 between 0 and 1")
        if self.series not in candidates.SERIES:
            raise ValueError(f"series {self.series!r}: expected one of {candidates.SERIES}")

    def as_dict(self) -> dict[str, Any]:
        """The parameters that determine the results (``trials_per_task`` only batches the work)."""
        out = asdict(self)
        out.pop("trials_per_task")
        return out


@dataclass
class TrialFit:
    """One trial's sparse linear model of a region.

    ``pixels``: indices into the region's pixel list (contributing pixels, non-zero weight);
    ``weights``: Pg C month-1 per g C m-2 d-1; ``bias``: Pg C month-1; ``alpha``: Lasso penalty on the
    standardised pixels and target (unitless); ``r2_train``, ``r2_cv`` (1); ``reached``: training R2
    reached the threshold; ``candidates``: the candidate pixels drawn (indices as ``pixels``).
    """

    pixels: np.ndarray
    weights: np.ndarray
    bias: float
    alpha: float
    r2_train: float
    r2_cv: float
    reached: bool
    candidates: np.ndarray = field(default_factory=lambda: np.zeros(0, "int64"))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Monthly regional integral (Pg C month-1) from monthly means ``x`` (month, region pixel)."""
        return x[:, self.pixels] @ self.weights + self.bias


# ------------------------------------------------------------------------------------------ fitting
def r2_score(y: np.ndarray, pred: np.ndarray) -> float:
    """Coefficient of determination 1 - SSE/SST (1); NaN when ``y`` is constant."""
    sst = float(((y - y.mean()) ** 2).sum())
    return float("nan") if sst == 0 else 1.0 - float(((y - pred) ** 2).sum()) / sst


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence scikit-learn's convergence warnings (a path point short of full convergence is refitted
    or judged by its R2 anyway)."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _scale(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    sd = x.std(axis=0)
    return (x - mean) / np.where(sd > 0, sd, 1.0), mean, sd


def lasso_to_threshold(
    x: np.ndarray, y: np.ndarray, threshold: float, n_alphas: int = 100, alpha_ratio: float = 1e-4
) -> tuple[float, np.ndarray, float, float, bool]:
    """Lasso with alpha lowered along a path until the training R2 reaches ``threshold``.

    ``x`` (month, pixel) in g C m-2 d-1, ``y`` (month) in Pg C month-1. The pixels are standardised
    (constant ones never enter); the path is ``n_alphas`` alphas on a log scale from alpha_max (the
    smallest alpha with no pixel) to alpha_max x ``alpha_ratio``. Returns (alpha, weights per pixel in
    Pg C month-1 per g C m-2 d-1 (zeros for pixels left out), bias in Pg C month-1, training R2,
    whether the threshold was reached; if not, the last alpha of the path is returned).
    """
    from sklearn.linear_model import lasso_path

    xs, mean, sd = _scale(x)
    usable = sd > 0
    y_sd = float(y.std())
    weights = np.zeros(x.shape[1])
    if not usable.any() or y_sd == 0:
        return float("nan"), weights, float(y.mean()), r2_score(y, np.full_like(y, y.mean())), False
    yc = (y - y.mean()) / y_sd  # unit variance: the solver's tolerance means the same for every region
    xu = xs[:, usable]
    alpha_max = float(np.abs(xu.T @ yc).max()) / len(y)
    alphas = alpha_max * np.logspace(0, math.log10(alpha_ratio), n_alphas)
    coef = np.zeros(xu.shape[1])
    sst = float((yc**2).sum())
    for start in range(0, n_alphas, PATH_SEGMENT):  # segments of the path, warm-started; stop at the hit
        segment = alphas[start : start + PATH_SEGMENT]
        with _quiet():
            _, coefs, _ = lasso_path(xu, yc, alphas=segment, coef_init=coef, max_iter=MAX_ITER, tol=TOL)
        r2 = 1.0 - ((yc[:, None] - xu @ coefs) ** 2).sum(axis=0) / sst
        hit = np.flatnonzero(r2 >= threshold)
        i = int(hit[0]) if hit.size else segment.size - 1
        coef = coefs[:, i]
        if hit.size:
            break
    weights[usable] = coef * y_sd / sd[usable]
    bias = float(y.mean() - weights @ mean)
    return float(segment[i]), weights, bias, float(r2[i]), bool(hit.size)


def lasso_fixed(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Lasso at one ``alpha`` on standardised pixels: (weights per pixel, bias), units as above."""
    from sklearn.linear_model import Lasso

    xs, mean, sd = _scale(x)
    usable = sd > 0
    weights = np.zeros(x.shape[1])
    y_sd = float(y.std())
    if usable.any() and np.isfinite(alpha) and y_sd > 0:
        with _quiet():
            model = Lasso(alpha=alpha, max_iter=MAX_ITER, tol=TOL).fit(xs[:, usable], (y - y.mean()) / y_sd)
        weights[usable] = model.coef_ * y_sd / sd[usable]
    return weights, float(y.mean() - weights @ mean)


def cv_r2(x: np.ndarray, y: np.ndarray, alpha: float, folds: int) -> float:
    """k-fold cross-validated R2 (1) of Lasso at ``alpha``: contiguous blocks of months, no shuffling;
    the R2 of the pooled out-of-fold predictions. Standardisation is refitted on each training part."""
    from sklearn.model_selection import KFold

    k = min(folds, len(y))
    if k < 2:
        return float("nan")
    pred = np.empty_like(y)
    for train, test in KFold(n_splits=k).split(x):
        w, b = lasso_fixed(x[train], y[train], alpha)
        pred[test] = x[test] @ w + b
    return r2_score(y, pred)


def fit_candidates(x: np.ndarray, y: np.ndarray, cand: np.ndarray, params: BridgeParams) -> TrialFit:
    """One trial on the candidate pixels ``cand`` (indices into the columns of ``x``)."""
    alpha, w, bias, r2, reached = lasso_to_threshold(
        x[:, cand], y, params.threshold, params.n_alphas, params.alpha_ratio
    )
    keep = np.flatnonzero(w)
    r2cv = cv_r2(x[:, cand], y, alpha, params.folds) if keep.size else float("nan")
    return TrialFit(cand[keep], w[keep], bias, alpha, r2, r2cv, reached, cand)


def run_trials(
    x: np.ndarray, y: np.ndarray, labels: np.ndarray, region: int, trials: Sequence[int], params: BridgeParams
) -> list[tuple[int, TrialFit]]:
    """Trials ``trials`` of one region (one Dask task): each draws its candidates with the generator
    seeded by (seed, region, trial), so results do not depend on how trials are batched or scheduled."""
    out = []
    for t in trials:
        rng = np.random.default_rng([params.seed, region, t])
        cand = candidates.stratified_sample(labels, params.n_candidates, rng)
        out.append((t, fit_candidates(x, y, cand, params)))
    return out


def cluster_region(x: np.ndarray, month_of_year: np.ndarray, region: int, params: BridgeParams) -> np.ndarray:
    """Cluster labels (pixel,) of one region's pixels (one Dask task), seeded by (seed, region)."""
    series = candidates.comparison_series(x, month_of_year, params.series)
    seed = int(np.random.SeedSequence([params.seed, region]).generate_state(1)[0])
    return candidates.cluster_pixels(
        series, params.n_clusters, seed, params.max_dtw_pixels, params.window
    ).labels


def select_bridge(fits: Sequence[TrialFit], cv_tolerance: float = 0.01) -> int:
    """Index of THE bridge among ``fits`` (module docstring): reached threshold, CV R2 within
    ``cv_tolerance`` of the best, fewest pixels, highest CV R2, lowest index."""
    pool = [i for i, f in enumerate(fits) if f.reached and f.pixels.size] or [
        i for i, f in enumerate(fits) if f.pixels.size
    ]
    if not pool:
        return -1
    cv = np.array([fits[i].r2_cv if np.isfinite(fits[i].r2_cv) else -np.inf for i in pool])
    near = [i for i, c in zip(pool, cv, strict=True) if c >= cv.max() - cv_tolerance]
    return min(near, key=lambda i: (fits[i].pixels.size, -fits[i].r2_cv, i))


# ------------------------------------------------------------------------------------------- inputs
@dataclass
class Product:
    """A gridded NEE product opened lazily: ``flux`` (time, lat, lon) in g C m-2 d-1, daily or monthly."""

    name: str
    flux: xr.DataArray
    inputs: dict[str, str]
    synthetic: bool
    description: str
    version: str | None = None


def open_truth(world_dir: str | Path, variable: str = "NEE") -> Product:
    """The simulated world's daily truth (``truth/truth_<YYYY>.nc``) as a product, read lazily by year."""
    folder = Path(world_dir) / "truth"
    files = sorted(folder.glob("truth_[0-9][0-9][0-9][0-9].nc"))
    if not files:
        raise InputError(str(folder), "no truth_<YYYY>.nc files: expected the simulated world's truth folder")
    try:
        flux = xr.open_mfdataset([str(f) for f in files], combine="by_coords", chunks={})
    except (OSError, ValueError) as err:
        raise InputError(str(folder), f"cannot open the truth files as one dataset: {err}") from err
    if variable not in flux:
        raise InputError(str(files[0]), f"no variable {variable!r}", column=variable)
    return Product(
        name="truth",
        flux=flux[variable],
        inputs=iter_files([str(f) for f in files]),
        synthetic=inputs_are_synthetic([str(f) for f in files]),
        description=f"simulated world truth {variable} ({folder})",
    )


def open_store(root: str, name: str, variable: str = "NEE") -> Product:
    """A published store ``name`` under ``root`` as a product (its published version)."""
    pub = Publisher(root)
    manifest = pub.current(name)
    if manifest is None:
        raise InputError(f"{root}/{name}", "no published store of that name in the catalog")
    ds = pub.open(name, manifest["version"])
    url = pub.store_location(name, manifest["version"]).url
    record = pub.manifest_location(name, manifest["version"]).url  # its sha256 identifies the version
    if variable not in ds:
        raise InputError(url, f"no variable {variable!r}; has {sorted(ds.data_vars)}", column=variable)
    return Product(
        name=name,
        flux=ds[variable],
        inputs=iter_files([record]),
        synthetic=bool(manifest.get("synthetic", False)),
        description=f"store {name} version {manifest['version']}, variable {variable}",
        version=manifest["version"],
    )


def open_product(spec: str, root: str, variable: str = "NEE") -> Product:
    """``truth:<world folder>`` or ``store:<name>`` (or a bare store name) under ``root``."""
    kind, _, rest = spec.partition(":")
    if kind == "truth" and rest:
        return open_truth(rest, variable)
    return open_store(root, rest if kind == "store" and rest else spec, variable)


def check_flux(flux: xr.DataArray, source: str) -> xr.DataArray:
    """The product as (time, lat, lon), latitude ascending, longitude -180..180; InputError otherwise."""
    name = str(flux.name)
    if set(flux.dims) != {"time", "lat", "lon"}:
        raise InputError(source, f"dimensions {flux.dims}: expected (time, lat, lon)", column=name)
    units = " ".join(str(flux.attrs.get("units", "")).split())
    if units != FLUX_UNITS:
        raise InputError(source, f"units {units!r}: expected {FLUX_UNITS!r}", column=name)
    flux = flux.transpose("time", "lat", "lon").sortby("lat")
    lon = flux["lon"].values
    if lon.min() < -180 or lon.max() > 180 or np.any(np.diff(lon) <= 0):
        raise InputError(source, "longitudes must be ascending within -180..180", column="lon")
    if flux.sizes["time"] < 3:
        raise InputError(
            source, f"{flux.sizes['time']} time steps: expected at least 3 months", column="time"
        )
    return flux


def to_monthly(flux: xr.DataArray) -> xr.DataArray:
    """Monthly means (g C m-2 d-1) stamped on the first day of the month; monthly input is kept."""
    t = pd.DatetimeIndex(flux["time"].values)
    if len(t) > 1 and (np.diff(t.values) >= np.timedelta64(27, "D")).all():
        out = flux.assign_coords(time=t.to_period("M").to_timestamp())
        out.attrs = dict(flux.attrs)
        return out
    return monthly_means(flux)


def weights_on_grid(regions: xr.Dataset, lat: np.ndarray, lon: np.ndarray, source: str) -> xr.DataArray:
    """Area (m2) of each product cell inside each region, (region, lat, lon), from the 0.5 degree store.

    A coarser product grid must consist of whole blocks of 0.5 degree cells (e.g. 1, 2 or 4 degrees with
    edges on multiples of the cell size): the block's weights are summed, which is exact.
    """
    fine = region_weights(regions)
    step = float(np.diff(lat).mean()) if lat.size > 1 else RESOLUTION
    k = round(step / RESOLUTION)
    if k < 1 or abs(k * RESOLUTION - step) > 1e-6 or np.ptp(np.diff(lat)) > 1e-6:
        raise InputError(
            source, f"grid step {step} deg: expected a multiple of {RESOLUTION} deg", column="lat"
        )
    coarse = fine.coarsen(lat=k, lon=k, boundary="trim").sum() if k > 1 else fine
    coarse = coarse.assign_coords(
        lat=fine["lat"].coarsen(lat=k, boundary="trim").mean().values if k > 1 else fine["lat"].values,
        lon=fine["lon"].coarsen(lon=k, boundary="trim").mean().values if k > 1 else fine["lon"].values,
    )
    try:
        out = coarse.sel(lat=lat, lon=lon, method="nearest", tolerance=1e-6)
    except KeyError as err:
        raise InputError(
            source, f"cell centres are not those of {k}x{k} blocks of the 0.5 degree grid", column="lat"
        ) from err
    out = out.assign_coords(lat=lat, lon=lon)
    out.attrs = {"units": "m2", "long_name": "area of the product cell inside the region"}
    return out


@dataclass
class Inputs:
    """Everything the trials need, in memory: monthly means at every regional pixel and the integrals.

    ``values`` (month, pixel) g C m-2 d-1 of the pixels ``lat_index``/``lon_index`` on the product grid
    (cells with a part in any region); ``integrals`` (region, month) Pg C month-1; ``coverage``
    (region,): mean fraction of the region's area with a product value; ``weights`` (region, lat, lon)
    m2.
    """

    time: pd.DatetimeIndex
    lat: np.ndarray
    lon: np.ndarray
    lat_index: np.ndarray
    lon_index: np.ndarray
    values: np.ndarray
    integrals: np.ndarray
    coverage: np.ndarray
    weights: xr.DataArray

    def region(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Pixels of region position ``k``: (indices into ``values``' columns, (month, pixel) values)."""
        w = self.weights.values[k][self.lat_index, self.lon_index]
        sel = np.flatnonzero((w > 0) & np.isfinite(self.values).all(axis=0))
        return sel, self.values[:, sel]


def load_inputs(
    flux: xr.DataArray,
    regions: xr.Dataset,
    source: str,
    months_per_block: int = 12,
    progress: Callable[[int, int], None] | None = None,
) -> Inputs:
    """Monthly means at the regional pixels and monthly regional integrals of ``flux`` (g C m-2 d-1).

    Streams the product ``months_per_block`` months at a time (memory: one block of the product plus
    the monthly pixel table, months x regional pixels x 8 bytes); ``progress(done, total)`` after each.
    """
    flux = check_flux(flux, source)
    weights = weights_on_grid(regions, flux["lat"].values, flux["lon"].values, source)
    monthly = to_monthly(flux.astype("float64"))  # float64 sums: float32 means lose 1e-7 relative
    any_region = weights.values.sum(axis=0) > 0
    ii, jj = np.nonzero(any_region)
    n_time = monthly.sizes["time"]
    values = np.empty((n_time, ii.size))
    integrals = np.empty((weights.sizes["region"], n_time))
    covered = np.empty((weights.sizes["region"], n_time))
    blocks = range(0, n_time, months_per_block)
    for n, t0 in enumerate(blocks):
        block = monthly.isel(time=slice(t0, t0 + months_per_block)).compute()
        values[t0 : t0 + block.sizes["time"]] = block.values[:, ii, jj]
        integrals[:, t0 : t0 + block.sizes["time"]] = regional_integrals(block, weights).values
        covered[:, t0 : t0 + block.sizes["time"]] = covered_fraction(block, weights).values
        if progress is not None:
            progress(n + 1, len(blocks))
    return Inputs(
        pd.DatetimeIndex(monthly["time"].values),
        flux["lat"].values,
        flux["lon"].values,
        ii,
        jj,
        values,
        integrals,
        covered.mean(axis=1),
        weights,
    )


# ---------------------------------------------------------------------------------------- the trials
@dataclass
class RegionResult:
    """All trials of one region: ``pixels`` (indices into :class:`Inputs` columns), ``labels`` (cluster
    of each pixel), ``fits`` ordered by trial number, ``best`` (index of THE bridge, -1: none)."""

    region: int
    pixels: np.ndarray
    labels: np.ndarray
    fits: list[TrialFit]
    best: int


def fit_regions(
    inputs: Inputs,
    params: BridgeParams,
    region_numbers: Iterable[int] | None = None,
    client: Any = None,
    progress: Progress | None = None,
) -> dict[int, RegionResult]:
    """Cluster and run every trial of every region (Dask ``client``: tasks on its cluster; None: here).

    With a client, a progress bar (on ``progress``, else a new one) counts finished tasks: one
    clustering per region and one per batch of trials.
    """
    from fluxcube.cluster import track

    numbers = [int(r) for r in inputs.weights["region"].values]
    wanted = numbers if region_numbers is None else [int(r) for r in region_numbers]
    moy = inputs.time.month.to_numpy()
    batches = [
        range(i, min(i + params.trials_per_task, params.n_trials))
        for i in range(0, params.n_trials, params.trials_per_task)
    ]
    todo: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for r in wanted:
        if r not in numbers:
            raise ValueError(f"region {r} is not in the regions store ({numbers})")
        sel, x = inputs.region(numbers.index(r))
        y = inputs.integrals[numbers.index(r)]
        if sel.size == 0 or not np.any(y - y.mean()):
            log.warning("region %s: no pixel with a value in every month, or a constant integral: skipped", r)
            continue
        todo[r] = (sel, x, y)
    results: dict[int, RegionResult] = {}
    if client is None:
        for r, (sel, x, y) in todo.items():
            labels = cluster_region(x, moy, r, params)
            fits = []
            for b in batches:
                fits += [f for _, f in run_trials(x, y, labels, r, b, params)]
            results[r] = RegionResult(r, sel, labels, fits, select_bridge(fits, params.cv_tolerance))
        return results
    futures = {}
    label_futures = {}
    for r, (_, x, y) in todo.items():
        xf, yf = client.scatter([x, y])
        label_futures[r] = client.submit(cluster_region, xf, moy, r, params, pure=False)
        futures[label_futures[r]] = (r, None)
        for b in batches:
            futures[client.submit(run_trials, xf, yf, label_futures[r], r, b, params, pure=False)] = (r, b)
    by_region: dict[int, dict[int, TrialFit]] = {r: {} for r in todo}
    labels_of: dict[int, np.ndarray] = {}
    for fut in track(list(futures), "clusterings + trial batches", progress):
        r, b = futures[fut]
        if b is None:
            labels_of[r] = fut.result()
        else:
            by_region[r].update(dict(fut.result()))
        fut.release()
    for r, (sel, _, _) in todo.items():
        fits = [by_region[r][t] for t in range(params.n_trials)]
        results[r] = RegionResult(r, sel, labels_of[r], fits, select_bridge(fits, params.cv_tolerance))
    return results


# ------------------------------------------------------------------------------------------ the store
def _var(dims: tuple[str, ...], data: np.ndarray, units: str | None, long_name: str, **extra: Any) -> Any:
    attrs = {"long_name": long_name, **extra}
    if units is not None:
        attrs["units"] = units
    return (dims, data, attrs)


def to_dataset(inputs: Inputs, results: dict[int, RegionResult], params: BridgeParams) -> xr.Dataset:
    """The bridges store: every trial, THE bridge per region, inclusion counts, targets and fits."""
    regs = sorted(results)
    n_r, n_t = len(regs), params.n_trials
    slots = max([1, *(f.pixels.size for res in results.values() for f in res.fits)])
    nlat, nlon = inputs.lat.size, inputs.lon.size
    tri_lat = np.full((n_r, n_t, slots), -1, "int32")
    tri_lon = np.full((n_r, n_t, slots), -1, "int32")
    tri_w = np.full((n_r, n_t, slots), np.nan)
    scalars = {k: np.full((n_r, n_t), np.nan) for k in ("bias", "alpha", "r2_train", "r2_cv")}
    n_pix = np.zeros((n_r, n_t), "int32")
    n_cand = np.zeros((n_r, n_t), "int32")
    reached = np.zeros((n_r, n_t), "int8")
    inclusion = np.zeros((n_r, nlat, nlon), "int32")
    candidate = np.zeros((n_r, nlat, nlon), "int32")
    cluster = np.full((n_r, nlat, nlon), -1, "int16")
    best = np.full(n_r, -1, "int32")
    target = np.full((n_r, inputs.time.size), np.nan)
    fitted = np.full((n_r, inputs.time.size), np.nan)
    numbers = [int(r) for r in inputs.weights["region"].values]
    for k, r in enumerate(regs):
        res = results[r]
        li, lj = inputs.lat_index[res.pixels], inputs.lon_index[res.pixels]
        cluster[k, li, lj] = res.labels
        target[k] = inputs.integrals[numbers.index(r)]
        for t, f in enumerate(res.fits):
            m = f.pixels.size
            tri_lat[k, t, :m], tri_lon[k, t, :m] = li[f.pixels], lj[f.pixels]
            tri_w[k, t, :m] = f.weights
            n_pix[k, t], n_cand[k, t], reached[k, t] = m, f.candidates.size, f.reached
            for name in scalars:
                scalars[name][k, t] = getattr(f, name)
            np.add.at(inclusion[k], (li[f.pixels], lj[f.pixels]), 1)
            np.add.at(candidate[k], (li[f.candidates], lj[f.candidates]), 1)
        best[k] = res.best
        if res.best >= 0:
            f = res.fits[res.best]
            x = inputs.values[:, res.pixels]
            fitted[k] = f.predict(x)
    pick = np.clip(best, 0, None)
    rows = np.arange(n_r)
    bridge = {
        "bridge_lat_index": tri_lat[rows, pick],
        "bridge_lon_index": tri_lon[rows, pick],
        "bridge_weight": tri_w[rows, pick],
    }
    none = best < 0
    bridge["bridge_lat_index"][none] = -1
    bridge["bridge_lon_index"][none] = -1
    bridge["bridge_weight"][none] = np.nan
    sel_scalar = {k: np.where(none, np.nan, v[rows, pick]) for k, v in scalars.items()}
    abbrev = [REGIONS[r][0] for r in regs]
    names = [REGIONS[r][1] for r in regs]
    idx_note = "index into lat/lon of this store (-1: unused slot)"
    data = {
        "trial_lat_index": _var(
            ("region", "trial", "slot"),
            tri_lat,
            None,
            "latitude index of a contributing pixel",
            comment=idx_note,
        ),
        "trial_lon_index": _var(
            ("region", "trial", "slot"),
            tri_lon,
            None,
            "longitude index of a contributing pixel",
            comment=idx_note,
        ),
        "trial_weight": _var(
            ("region", "trial", "slot"), tri_w, WEIGHT_UNITS, "weight of a contributing pixel's monthly NEE"
        ),
        "trial_bias": _var(("region", "trial"), scalars["bias"], "Pg C month-1", "bias of the trial's model"),
        "trial_alpha": _var(
            ("region", "trial"), scalars["alpha"], "1", "Lasso penalty (standardised pixels and target)"
        ),
        "trial_r2_train": _var(("region", "trial"), scalars["r2_train"], "1", "training R2"),
        "trial_r2_cv": _var(("region", "trial"), scalars["r2_cv"], "1", "k-fold cross-validated R2"),
        "trial_n_pixels": _var(("region", "trial"), n_pix, "1", "number of contributing pixels"),
        "trial_n_candidates": _var(("region", "trial"), n_cand, "1", "number of candidate pixels drawn"),
        "trial_reached": _var(
            ("region", "trial"),
            reached,
            None,
            "training R2 reached the threshold",
            flag_values=np.array([0, 1], "int8"),
            flag_meanings="no yes",
        ),
        "bridge_trial": _var(("region",), best, None, "trial chosen as THE bridge (-1: none)"),
        "bridge_lat_index": _var(
            ("region", "slot"),
            bridge["bridge_lat_index"],
            None,
            "latitude index of a contributing pixel of the bridge",
            comment=idx_note,
        ),
        "bridge_lon_index": _var(
            ("region", "slot"),
            bridge["bridge_lon_index"],
            None,
            "longitude index of a contributing pixel of the bridge",
            comment=idx_note,
        ),
        "bridge_weight": _var(
            ("region", "slot"),
            bridge["bridge_weight"],
            WEIGHT_UNITS,
            "weight of a contributing pixel of the bridge",
        ),
        "bridge_bias": _var(("region",), sel_scalar["bias"], "Pg C month-1", "bias of the bridge"),
        "bridge_alpha": _var(
            ("region",), sel_scalar["alpha"], "1", "Lasso penalty of the bridge (standardised)"
        ),
        "bridge_r2_train": _var(("region",), sel_scalar["r2_train"], "1", "training R2 of the bridge"),
        "bridge_r2_cv": _var(("region",), sel_scalar["r2_cv"], "1", "cross-validated R2 of the bridge"),
        "inclusion_count": _var(
            ("region", "lat", "lon"), inclusion, "1", "number of trials in which the pixel contributes"
        ),
        "candidate_count": _var(
            ("region", "lat", "lon"), candidate, "1", "number of trials in which the pixel was a candidate"
        ),
        "cluster": _var(
            ("region", "lat", "lon"),
            cluster,
            None,
            "DTW + spectral cluster of the pixel (-1: not a pixel of the region)",
        ),
        "target": _var(
            ("region", "time"),
            target,
            "Pg C month-1",
            "regional integral of the product's monthly NEE (the fitted target)",
        ),
        "bridge_fit": _var(
            ("region", "time"), fitted, "Pg C month-1", "the bridge applied to the product's monthly NEE"
        ),
        "covered_fraction": _var(
            ("region",),
            inputs.coverage[[numbers.index(r) for r in regs]],
            "1",
            "mean fraction of the region's area with a product value",
        ),
    }
    coords = {
        "region": ("region", np.array(regs, "int8"), {"long_name": "region number"}),
        "region_abbrev": ("region", np.array(abbrev, dtype=object), {"long_name": "region abbreviation"}),
        "region_name": ("region", np.array(names, dtype=object), {"long_name": "region name"}),
        "trial": ("trial", np.arange(n_t, dtype="int32"), {"long_name": "random trial number"}),
        "slot": ("slot", np.arange(slots, dtype="int32"), {"long_name": "contributing pixel slot"}),
        "time": ("time", inputs.time.values, {"long_name": "first day of the month"}),
        **{  # the grid's CF attributes, less the comment on the 0.5 degree cell size
            axis: (axis, getattr(inputs, axis), {k: v for k, v in attrs.items() if k != "comment"})
            for axis, (_, _, attrs) in grid_coords().items()
        },
    }
    return xr.Dataset(data, coords=coords)


def bridge_of(ds: xr.Dataset, region: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """THE bridge of ``region`` from a bridges store: (lat index, lon index, weight, bias)."""
    one = ds.sel(region=region)
    li = np.asarray(one["bridge_lat_index"].values)
    used = li >= 0
    return (
        li[used],
        np.asarray(one["bridge_lon_index"].values)[used],
        np.asarray(one["bridge_weight"].values)[used],
        float(one["bridge_bias"]),
    )


def apply_bridge(ds: xr.Dataset, region: int, monthly: xr.DataArray) -> xr.DataArray:
    """Regional integral (Pg C month-1) predicted by THE bridge of ``region`` from monthly means
    ``monthly`` (time, lat, lon) in g C m-2 d-1 on the store's grid: weights . NEE(pixels) + bias."""
    li, lj, w, b = bridge_of(ds, region)
    at = monthly.isel(lat=xr.DataArray(li, dims="pixel"), lon=xr.DataArray(lj, dims="pixel"))
    out = (at * xr.DataArray(w, dims="pixel")).sum("pixel") + b
    out.attrs = {"units": "Pg C month-1", "long_name": f"bridge estimate of region {region}'s NEE integral"}
    return out


def validate(ds: xr.Dataset) -> None:
    """Checks on the written store: the stored fit is the bridge applied, counts add up, units present."""
    for name, var in ds.data_vars.items():
        if "long_name" not in var.attrs:
            raise ValueError(f"variable {name} has no long_name")
    total = int(ds["inclusion_count"].sum())
    if total != int(ds["trial_n_pixels"].sum()):
        raise ValueError(f"inclusion counts add up to {total}, not the trials' number of pixels")
    for r in ds["region"].values:
        li, _, w, _ = bridge_of(ds, int(r))
        if li.size == 0:
            continue
        if not np.isfinite(w).all():
            raise ValueError(f"region {r}: non-finite bridge weights")
        k = int(np.flatnonzero(ds["region"].values == r)[0])
        fit = ds["bridge_fit"].values[k]
        r2 = r2_score(ds["target"].values[k], fit)
        if not math.isclose(r2, float(ds["bridge_r2_train"].values[k]), abs_tol=1e-6):
            raise ValueError(f"region {r}: stored bridge_fit gives R2 {r2}, not bridge_r2_train")


# ------------------------------------------------------------------------------------------- figures
def _dateline_shift(used: np.ndarray) -> int:
    """Columns to roll so that the widest run of unused longitudes (cyclic) falls at the map's edges."""
    n = used.size
    best, best_start, run = 0, 0, 0
    for i in range(2 * n):  # twice round: runs that wrap
        if not used[i % n]:
            run += 1
            if run > best and run <= n:
                best, best_start = run, (i - run + 1) % n
        else:
            run = 0
    return 0 if best == 0 else (best_start + best) % n


def heatmaps(ds: xr.Dataset, out_dir: str | Path, prefix: str = "bridges") -> list[Path]:
    """One PNG per region: log10(1 + number of trials including each pixel) over the region's pixels
    (grey: region pixels never chosen), THE bridge's pixels marked x. Returns the files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lat, lon = ds["lat"].values, ds["lon"].values
    step = float(np.diff(lat).mean()) if lat.size > 1 else RESOLUTION
    n_trials = ds.sizes["trial"]
    files = []
    for k, r in enumerate(ds["region"].values):
        count = ds["inclusion_count"].values[k].astype("float64")
        member = ds["cluster"].values[k] >= 0
        if not member.any():
            continue
        # a region across the date line (Russia, Oceania): start the map after its widest empty gap
        shift = _dateline_shift(member.any(axis=0))
        count, member = np.roll(count, -shift, axis=1), np.roll(member, -shift, axis=1)
        lon_k = np.roll(np.where(np.arange(lon.size) < shift, lon + 360.0, lon), -shift)
        rows, cols = np.nonzero(member)
        box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
        fig, ax = plt.subplots(figsize=(7, 5), dpi=100)
        extent = (
            lon_k[box[1]][0] - step / 2,
            lon_k[box[1]][-1] + step / 2,
            lat[box[0]][0] - step / 2,
            lat[box[0]][-1] + step / 2,
        )
        ax.imshow(
            np.where(member[box], 0.0, np.nan),
            origin="lower",
            extent=extent,
            cmap="Greys",
            vmin=-1,
            vmax=3,
            aspect="auto",
        )
        shown = np.where(member & (count > 0), np.log10(1 + count), np.nan)[box]
        im = ax.imshow(
            shown,
            origin="lower",
            extent=extent,
            cmap="magma_r",
            aspect="auto",
            vmin=0,
            vmax=math.log10(1 + n_trials),
        )
        li, lj, _, _ = bridge_of(ds, int(r))
        x_mark = np.where(lj < shift, lon[lj] + 360.0, lon[lj])
        ax.plot(x_mark, lat[li], "x", color="cyan", ms=7, mew=2, label="the bridge's pixels")
        fig.colorbar(im, ax=ax, label=f"log10(1 + inclusions) in {n_trials} trials")
        name = str(ds["region_name"].values[k])
        ax.set(
            xlabel="longitude (degrees east; above 180: west of the date line)",
            ylabel="latitude (degrees north)",
            title=f"{name}: contributing pixels over {n_trials} trials",
        )
        ax.legend(loc="lower left", fontsize=8)
        path = out / f"{prefix}_{ds['region_abbrev'].values[k]}.png"
        fig.savefig(path)
        plt.close(fig)
        files.append(path)
    return files


# ------------------------------------------------------------------------------------------ pipeline
@dataclass
class BridgeSummary:
    """What :func:`run` did: store name, version, whether published, figures, seconds per stage."""

    name: str
    version: str
    published: bool
    figures: list[Path]
    seconds: dict[str, float]
    dataset: xr.Dataset | None = None


def run(
    product: str,
    target: str,
    params: BridgeParams | None = None,
    variable: str = "NEE",
    regions_root: str | None = None,
    region_numbers: Sequence[int] | None = None,
    name: str | None = None,
    figures_dir: str | Path | None = None,
    n_workers: int | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> BridgeSummary:
    """Fit and publish the bridges of ``product`` (:func:`open_product`) under ``target``.

    Regions from the ``regions_land_0p5deg`` store under ``regions_root`` (default ``target``); trials
    on a Dask cluster of ``n_workers`` (:func:`fluxcube.cluster.client`); store ``name`` (default
    ``bridges_<product>``); heat maps into ``figures_dir`` (default none). ``progress``: a rich
    Progress to draw the bars on (reading the product, clusterings and trial batches; default: a bar of
    its own for the trials).
    """
    from fluxcube.cluster import client as dask_client

    params = params or BridgeParams()
    seconds: dict[str, float] = {}
    t0 = _time.perf_counter()
    prod = open_product(product, target, variable)
    reg_pub = Publisher(regions_root or target)
    reg_manifest = reg_pub.current(REGIONS_DATASET)
    if reg_manifest is None:
        raise InputError(
            f"{reg_pub.root.url}/{REGIONS_DATASET}",
            "no published regions store: run the regions recipe first (fluxcube recipes run regions)",
        )
    regions = reg_pub.open(REGIONS_DATASET).load()
    name = name or f"bridges_{prod.name}"
    wanted = sorted(REGIONS) if region_numbers is None else sorted(int(r) for r in region_numbers)
    release = Release(
        name=name,
        recipe=RECIPE,
        recipe_version=RECIPE_VERSION,
        inputs={
            **prod.inputs,
            **iter_files([reg_pub.manifest_location(REGIONS_DATASET, reg_manifest["version"]).url]),
        },
        description=f"Lasso bridge models (regional monthly NEE integral from a few pixels) fitted to "
        f"{prod.description}, {params.n_trials} random trials per region",
        params={
            **params.as_dict(),
            "product": prod.name,
            "product_version": prod.version,
            "variable": variable,
            "regions_version": reg_manifest["version"],
            "regions": wanted,
        },
        synthetic=prod.synthetic or bool(reg_manifest.get("synthetic", False)),
    )
    pub = Publisher(target)
    seconds["open"] = _time.perf_counter() - t0
    if pub.is_current(release) and not force:
        pub.prepare(release)
        ds = pub.open(name)
        figures = heatmaps(ds, figures_dir, name) if figures_dir else []
        return BridgeSummary(name, release.version, False, figures, seconds, ds)
    with dask_client(n_workers) as client:
        t0 = _time.perf_counter()
        reading = progress.add_task("months of the product read", total=None) if progress else None
        inputs = load_inputs(
            prod.flux,
            regions,
            prod.description,
            progress=(lambda d, n: progress.update(reading, completed=d, total=n)) if progress else None,
        )
        seconds["read"] = _time.perf_counter() - t0
        t0 = _time.perf_counter()
        results = fit_regions(inputs, params, wanted, client, progress)
        seconds["fit"] = _time.perf_counter() - t0
    if not results:
        raise InputError(prod.description, "no region has a pixel with a value in every month")
    ds = to_dataset(inputs, results, params)
    t0 = _time.perf_counter()
    attrs = {
        "title": f"fluxcube bridge models for {prod.name}",
        "Conventions": "CF-1.10",
        "selection_rule": "reached training R2 threshold; CV R2 within cv_tolerance of the best; fewest "
        "pixels; highest CV R2; lowest trial",
        "product": prod.description,
        "bridge_parameters": json.dumps(params.as_dict(), sort_keys=True),
    }
    pub.publish_dataset(release, ds, attrs, validate=validate, force=force)
    seconds["publish"] = _time.perf_counter() - t0
    figures = heatmaps(ds, figures_dir, name) if figures_dir else []
    return BridgeSummary(name, release.version, True, figures, seconds, ds)
