"""Bridge models: an exact linear case the Lasso must find, a noisy case, held-out months, the alpha rule
against scikit-learn directly, reproducibility and batching independence, the selection rule, the
weights on a coarser grid, bad input, and a small simulated world end to end on a Dask cluster."""

from __future__ import annotations

import json
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from fluxcube.errors import InputError
from fluxcube.publish import Publisher, Release
from fluxcube.recipes import regions as regions_recipe
from fluxcube.regions import bridges

TRUE = [3, 17, 29]
COEF = np.array([0.02, -0.01, 0.035])  # Pg C month-1 per g C m-2 d-1
BIAS = 0.3  # Pg C month-1


def _linear_case(months: int = 60, pixels: int = 40, noise: float = 0.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(1.0, 2.0, (months, pixels))  # g C m-2 d-1
    y = x[:, TRUE] @ COEF + BIAS
    return x, y + rng.normal(0, noise * y.std(), months)


def test_exact_linear_combination_is_found() -> None:
    x, y = _linear_case()
    alpha, w, b, r2, reached = bridges.lasso_to_threshold(x, y, threshold=0.9999)
    assert reached and r2 >= 0.9999
    assert np.flatnonzero(w).tolist() == TRUE
    np.testing.assert_allclose(w[TRUE], COEF, rtol=0.03)
    assert b == pytest.approx(BIAS, abs=0.01)
    assert bridges.cv_r2(x, y, alpha, 5) > 0.999


def test_alpha_is_the_largest_on_the_path_reaching_the_threshold() -> None:
    """Checked with scikit-learn's Lasso on standardised data, independently of the module's path."""
    from sklearn.linear_model import Lasso

    x, y = _linear_case(noise=0.1)
    alpha, w, b, r2, reached = bridges.lasso_to_threshold(x, y, threshold=0.95, n_alphas=100)
    xs = (x - x.mean(0)) / x.std(0)
    ys = (y - y.mean()) / y.std()

    def r2_at(a: float) -> float:
        pred = Lasso(alpha=a, max_iter=100000, tol=1e-10).fit(xs, ys).predict(xs)
        return 1 - ((ys - pred) ** 2).sum() / (ys**2).sum()

    step = 10 ** (4 / 99)  # the grid: 100 alphas over 4 decades
    assert reached and r2 >= 0.95
    assert r2_at(alpha) == pytest.approx(r2, abs=1e-4)
    assert r2_at(alpha * step) < 0.95
    np.testing.assert_allclose(
        x @ w + b, y.mean() + y.std() * xs @ Lasso(alpha=alpha, tol=1e-10).fit(xs, ys).coef_, rtol=1e-3
    )


def test_noisy_case_keeps_the_true_pixels_and_few_others() -> None:
    x, y = _linear_case(noise=0.15, seed=2)
    fit = bridges.fit_candidates(x, y, np.arange(x.shape[1]), bridges.BridgeParams(n_trials=1))
    assert fit.reached and fit.r2_train >= 0.95
    assert set(TRUE) <= set(fit.pixels.tolist()) and fit.pixels.size <= 8
    assert 0.85 < fit.r2_cv < fit.r2_train + 0.02


def test_bridge_reproduces_the_integral_on_held_out_months() -> None:
    x, y = _linear_case(months=72)
    params = bridges.BridgeParams(n_trials=1, threshold=0.9999)
    fit = bridges.fit_candidates(x[:60], y[:60], np.arange(x.shape[1]), params)
    pred = fit.predict(x[60:])  # 12 months never seen
    assert bridges.r2_score(y[60:], pred) > 0.999
    assert np.abs(pred - y[60:]).max() < 0.02 * np.ptp(y)


def test_trials_are_reproducible_and_independent_of_batching() -> None:
    x, y = _linear_case(noise=0.1)
    labels = np.arange(x.shape[1]) % 4
    params = bridges.BridgeParams(n_trials=8, n_candidates=12, seed=7)
    one = bridges.run_trials(x, y, labels, 5, range(8), params)
    split = bridges.run_trials(x, y, labels, 5, range(4), params) + bridges.run_trials(
        x, y, labels, 5, range(4, 8), params
    )
    for (t1, f1), (t2, f2) in zip(one, split, strict=True):
        assert t1 == t2
        np.testing.assert_array_equal(f1.candidates, f2.candidates)
        np.testing.assert_array_equal(f1.pixels, f2.pixels)
        np.testing.assert_array_equal(f1.weights, f2.weights)
    # stratified: 3 candidates from each of the 4 clusters; trials differ from each other
    for _, f in one:
        assert np.bincount(labels[f.candidates], minlength=4).tolist() == [3, 3, 3, 3]
    assert len({tuple(f.candidates) for _, f in one}) > 1
    other = bridges.run_trials(x, y, labels, 5, range(8), bridges.BridgeParams(n_candidates=12, seed=8))
    assert [tuple(f.candidates) for _, f in other] != [tuple(f.candidates) for _, f in one]


def _fit(n: int, r2cv: float, reached: bool = True) -> bridges.TrialFit:
    return bridges.TrialFit(np.arange(n), np.ones(n), 0.0, 0.1, 0.96, r2cv, reached)


def test_selection_rule() -> None:
    fits = [_fit(6, 0.93), _fit(9, 0.95), _fit(4, 0.945), _fit(4, 0.946), _fit(2, 0.99, reached=False)]
    # not reached: out; best CV 0.95, within 0.01: trials 1, 2, 3; fewest pixels: 2 and 3; higher CV: 3
    assert bridges.select_bridge(fits, 0.01) == 3
    assert bridges.select_bridge(fits, 0.0) == 1
    assert bridges.select_bridge([_fit(3, 0.5, False), _fit(2, 0.6, False)]) == 1  # none reached
    assert bridges.select_bridge([_fit(0, np.nan)]) == -1


# --------------------------------------------------------------------------------------- the grid
def _fine_regions() -> xr.Dataset:
    """Three made-up regions on the real 0.5 degree grid."""
    lat, lon = regions_recipe.LAT, regions_recipe.LON
    frac = np.zeros((3, lat.size, lon.size), "float32")
    frac[0, 200:230, 100:140] = 1.0
    frac[1, 200:230, 140:141] = 0.5
    frac[2, 10:20, 700:720] = 0.25
    return xr.Dataset(
        {
            "region_fraction": (("region", "lat", "lon"), frac),
            "cell_area": (("lat", "lon"), regions_recipe.cell_area_sphere()),
        },
        coords={"region": [1, 2, 3], "lat": lat, "lon": lon},
    )


def test_weights_on_a_coarser_grid_are_block_sums() -> None:
    fine = _fine_regions()
    lat4 = np.arange(-88.0, 90.0, 4.0)
    lon4 = np.arange(-178.0, 180.0, 4.0)
    w = bridges.weights_on_grid(fine, lat4, lon4, "test")
    assert w.shape == (3, 45, 90) and w.attrs["units"] == "m2"
    area = fine["region_fraction"].values * fine["cell_area"].values
    np.testing.assert_allclose(w.values.sum(axis=(1, 2)), area.sum(axis=(1, 2)), rtol=1e-12)
    # one block by hand: 4 deg cell (lat index 25, lon index 12) = fine rows 200..207, cols 96..103
    np.testing.assert_allclose(w.values[0, 25, 12], area[0, 200:208, 96:104].sum(), rtol=1e-12)
    same = bridges.weights_on_grid(fine, regions_recipe.LAT, regions_recipe.LON, "test")
    np.testing.assert_allclose(same.values, area)
    with pytest.raises(InputError, match=r"multiple of 0\.5"):
        bridges.weights_on_grid(fine, np.arange(-89.625, 90, 0.75), np.arange(-179.625, 180, 0.75), "f.nc")
    with pytest.raises(InputError, match="blocks"):
        bridges.weights_on_grid(fine, lat4 + 1.0, lon4, "f.nc")


def _flux(units: str = bridges.FLUX_UNITS, months: int = 6) -> xr.DataArray:
    lat = np.arange(-88.0, 90.0, 4.0)
    lon = np.arange(-178.0, 180.0, 4.0)
    return xr.DataArray(
        np.ones((months, lat.size, lon.size)),
        dims=("time", "lat", "lon"),
        coords={"time": pd.date_range("2010-01-01", periods=months, freq="MS"), "lat": lat, "lon": lon},
        name="NEE",
        attrs={"units": units},
    )


def test_bad_products_are_refused_with_the_reason(tmp_path: Path) -> None:
    fine = _fine_regions()
    with pytest.raises(InputError, match="units 'kg m-2 s-1'"):
        bridges.load_inputs(_flux("kg m-2 s-1"), fine, "p.zarr")
    with pytest.raises(InputError, match="at least 3 months"):
        bridges.load_inputs(_flux(months=2), fine, "p.zarr")
    with pytest.raises(InputError, match=r"dimensions"):
        bridges.load_inputs(_flux().isel(lon=0), fine, "p.zarr")
    with pytest.raises(InputError, match=r"truth_<YYYY>\.nc"):
        bridges.open_truth(tmp_path)
    with pytest.raises(InputError, match="no published store"):
        bridges.open_product("store:nothing_here", str(tmp_path))
    (tmp_path / "truth").mkdir()
    _flux().to_dataset(name="GPP").to_netcdf(tmp_path / "truth" / "truth_2010.nc")
    with pytest.raises(InputError, match=r"truth_2010\.nc, column NEE: no variable 'NEE'"):
        bridges.open_truth(tmp_path)


def test_constant_flux_gives_the_region_area_times_days() -> None:
    """1 g C m-2 d-1 everywhere: the target is area x days / 1e15 and the pixels are the region's cells."""
    fine = _fine_regions()
    inputs = bridges.load_inputs(_flux(), fine, "p.zarr", months_per_block=4)
    area = (fine["region_fraction"].values * fine["cell_area"].values).sum(axis=(1, 2))
    days = pd.date_range("2010-01-01", periods=6, freq="MS").days_in_month.to_numpy()
    np.testing.assert_allclose(inputs.integrals, area[:, None] * days[None] / 1e15, rtol=1e-12)
    sel, x = inputs.region(0)  # fine rows 200..229 -> 4 deg rows 25..28, fine cols 100..139 -> cols 12..17
    assert sel.size == 4 * 6 and np.all(x == 1.0)
    assert inputs.region(1)[0].size == 4  # fine col 140 -> 4 deg col 17
    np.testing.assert_allclose(inputs.coverage, 1.0)


# ------------------------------------------------------------------------------- the simulated world
@pytest.fixture(scope="module")
def world(data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """A 4 degree world (truth only) for 2011-2012 and the regions store from Natural Earth."""
    from fluxcube.simulate.world import write_world

    base = tmp_path_factory.mktemp("bridges")
    write_world(
        base / "world",
        grid_deg=4.0,
        start_year=2011,
        end_year=2012,
        seed=0,
        regions="boxes",
        components=("truth",),
    )
    target = str(base / "store")
    regions_recipe.run(str(data_dir / "grids" / "regions"), target)
    return base, target


def _reference_integrals(world_dir: Path, store: str, regions: list[int]) -> np.ndarray:
    """Monthly regional integrals (Pg C month-1) from the truth files with netCDF4 and numpy loops."""
    reg = Publisher(store).open(regions_recipe.DATASET).load()
    fine = reg["region_fraction"].values.astype("float64") * reg["cell_area"].values
    out = []
    for year in (2011, 2012):
        with netCDF4.Dataset(world_dir / "truth" / f"truth_{year}.nc") as nc:
            nee = np.asarray(nc["NEE"][:].filled(np.nan), dtype="float64")
        month = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D").month.to_numpy()
        for m in range(1, 13):
            mean = np.nan_to_num(nee[month == m].mean(axis=0))
            days = int((month == m).sum())
            row = []
            for r in regions:
                w = fine[r - 1].reshape(45, 8, 90, 8).sum(axis=(1, 3))  # 0.5 -> 4 degree blocks
                row.append((mean * w).sum() * days / 1e15)
            out.append(row)
    return np.array(out).T  # (region, month)


@pytest.mark.slow
def test_world_end_to_end(world) -> None:
    base, target = world
    params = bridges.BridgeParams(n_trials=12, n_candidates=40, trials_per_task=4, seed=3)
    chosen = [2, 11]  # Canada and Russia: the most 4 degree pixels
    summary = bridges.run(
        f"truth:{base / 'world'}",
        target,
        params,
        region_numbers=chosen,
        figures_dir=base / "figs",
        n_workers=2,
    )
    assert summary.published and summary.name == "bridges_truth"
    ds = Publisher(target).open("bridges_truth").load()
    assert ds["region"].values.tolist() == chosen and ds.sizes["trial"] == 12
    # provenance and catalog
    assert ds.attrs["synthetic"] == "true"
    prov = json.loads(ds.attrs["params"])
    reg_version = Publisher(target).current(regions_recipe.DATASET)["version"]
    assert prov["n_trials"] == 12 and prov["seed"] == 3 and prov["regions_version"] == reg_version
    sources = json.loads(ds.attrs["source_files"])
    assert {Path(k).name for k in sources} >= {"truth_2011.nc", "truth_2012.nc", f"{reg_version}.json"}
    cat = yaml.safe_load((Path(target) / "catalog.yaml").read_text())
    assert cat["entries"]["bridges_truth"]["metadata"]["version"] == summary.version
    for name in ("bridge_weight", "trial_weight", "target", "bridge_bias"):
        assert ds[name].attrs["units"] and ds[name].attrs["long_name"]
    # the target is the truth's own regional integral, computed independently
    np.testing.assert_allclose(
        ds["target"].values, _reference_integrals(base / "world", target, chosen), rtol=1e-9
    )
    # the bridge applied to the product's monthly means reproduces the stored fit, R2 >= 0.95
    monthly = xr.open_mfdataset(sorted((base / "world" / "truth").glob("truth_*.nc")))["NEE"]
    monthly = monthly.astype("float64").resample(time="MS").mean().load()
    for k, r in enumerate(chosen):
        est = bridges.apply_bridge(ds, r, monthly)
        assert est.attrs["units"] == "Pg C month-1"
        np.testing.assert_allclose(est.values, ds["bridge_fit"].values[k], rtol=1e-9, atol=1e-12)
        assert bridges.r2_score(ds["target"].values[k], est.values) >= 0.95
        best = int(ds["bridge_trial"].values[k])
        assert ds["trial_reached"].values[k, best] == 1
        assert 1 <= int(ds["trial_n_pixels"].values[k, best]) <= 40
        # inclusion counts are the trials' pixels, candidates are drawn per trial
        assert int(ds["inclusion_count"].values[k].sum()) == int(ds["trial_n_pixels"].values[k].sum())
        assert int(ds["candidate_count"].values[k].sum()) == 12 * 40
        assert (ds["inclusion_count"].values[k] <= ds["candidate_count"].values[k]).all()
    assert sorted(p.name for p in summary.figures) == ["bridges_truth_CAN.png", "bridges_truth_RUS.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in summary.figures)
    # the same trials in this process (no Dask) give the same numbers: seeding is per (region, trial)
    prod = bridges.open_truth(base / "world")
    regions = Publisher(target).open(regions_recipe.DATASET).load()
    inputs = bridges.load_inputs(prod.flux, regions, "truth")
    here = bridges.fit_regions(inputs, bridges.BridgeParams(n_trials=3, n_candidates=40, seed=3), [11])
    for t, fit in enumerate(here[11].fits):
        n = fit.pixels.size
        np.testing.assert_allclose(ds["trial_weight"].values[1, t, :n], fit.weights, rtol=1e-12)
        assert np.isnan(ds["trial_weight"].values[1, t, n:]).all()
    # a rerun (from the command line) finds its version and does nothing
    from typer.testing import CliRunner

    from fluxcube.cli import app

    args = ["regions", "bridges", "--product", f"truth:{base / 'world'}", "--target", target]
    args += ["--trials", "12", "--candidates", "40", "--seed", "3", "--region", "2", "--region", "11"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output and summary.version in result.output
    assert "CAN" in result.output and "RUS" in result.output


@pytest.mark.slow
def test_monthly_store_product_gives_the_same_inputs(world) -> None:
    """A published monthly store as the product: same pixels and integrals as the daily truth."""
    base, target = world
    truth = bridges.open_truth(base / "world")
    monthly = truth.flux.resample(time="MS").mean().astype("float32").load().to_dataset(name="NEE")
    monthly["NEE"].attrs = {"units": "g C m-2 d-1", "long_name": "monthly mean NEE"}
    release = Release("nee_monthly_test", "test", "1", truth.inputs, "monthly truth", synthetic=True)
    Publisher(target).publish_dataset(release, monthly, {})
    product = bridges.open_product("store:nee_monthly_test", target)
    assert product.synthetic and product.version == release.version
    regions = Publisher(target).open(regions_recipe.DATASET).load()
    a = bridges.load_inputs(truth.flux, regions, "truth")
    b = bridges.load_inputs(product.flux, regions, "store")
    np.testing.assert_array_equal(a.lat_index, b.lat_index)
    scale = np.abs(a.integrals).max()  # the store holds float32 monthly means: 1e-7 of the largest
    np.testing.assert_allclose(a.integrals, b.integrals, rtol=1e-6, atol=1e-6 * scale)
    np.testing.assert_allclose(a.values, b.values, rtol=1e-6, atol=1e-6 * np.nanmax(np.abs(a.values)))
