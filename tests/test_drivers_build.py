"""The driver stores end to end on small synthetic inputs of the exact input schemas (two land boxes,
2011-2012, a real Dask LocalCluster): every driver checked against values decoded independently from
the input stores and recomputed with simple slow code (scalar bucket loop, numpy interp per pixel)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr

from fluxcube.drivers import build, synthetic, water
from fluxcube.drivers.radiation import daily_potential_radiation
from fluxcube.drivers.table import DRIVERS, MODIS_INDICES
from fluxcube.errors import InputError
from fluxcube.publish import Publisher
from fluxcube.recipes.regions import LAT, LON

SITES = {"DE-Tha": (50.96, 11.2), "BR-Sa1": (-5.5, -58.0), "XX-Out": (-60.3, 150.2)}


def _land() -> np.ndarray:
    la, lo = np.meshgrid(LAT, LON, indexing="ij")
    land = np.zeros(la.shape, bool)
    land[(la > 46) & (la < 52) & (lo > 0) & (lo < 12)] = True  # Europe (one 45 x 45 degree chunk)
    land[(la > -10) & (la < -4) & (lo > -62) & (lo < -55)] = True  # Amazon
    return land


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    root = str(tmp_path_factory.mktemp("drivers") / "store")
    pub = Publisher(root)
    land = _land()
    synthetic.write_regions(pub, land)
    synthetic.write_era5(pub, land, "2011-01-01", "2012-12-31")
    synthetic.write_modis(pub, land, 2011, 2012, cloud_fraction=0.35)
    synthetic.write_targets(pub, SITES, "2010-12-01", "2012-06-30")
    summary = build.run(root, n_workers=2)
    return root, pub, land, summary


def _slow_wai(p: np.ndarray, tair: np.ndarray, rg: np.ndarray) -> np.ndarray:
    """Scalar loop: PT with its formula written out, spin-up on the first 365 days, then the record."""
    s = 4098 * 0.6108 * np.exp(17.27 * tair / (tair + 237.3)) / (tair + 237.3) ** 2
    pet = 1.26 * s / (s + 0.067) * 0.6 * np.clip(rg, 0, None) * 0.0864 / 2.45
    cap, k = 150.0, 0.05
    w = cap
    for _ in range(5):
        for i in range(365):
            f = min(cap, w + p[i])
            w = f - min(pet[i], k * f)
    out = []
    for i in range(p.size):
        f = min(cap, w + p[i])
        w = f - min(pet[i], k * f)
        out.append(w / cap)
    return np.array(out)


def _slow_msc(values: np.ndarray, dates: np.ndarray) -> np.ndarray:
    """Per pixel: pandas mean per 8-day slot, then numpy's periodic interp over valid slots."""
    doy = pd.DatetimeIndex(dates).day_of_year.to_numpy()
    means = pd.Series(values).groupby((doy - 1) // 8).mean().reindex(range(46)).to_numpy()
    centres = np.append(8.0 * np.arange(45) + 4.5, 363.0)
    ok = np.isfinite(means)
    return np.interp(np.arange(1, 367), centres[ok], means[ok], period=365.0)


def test_cube_layout_land_pixels_and_provenance(built) -> None:
    root, pub, land, summary = built
    assert set(summary.published) == {build.CUBE_DATASET, build.SITES_DATASET}
    cube = pub.open(build.CUBE_DATASET)
    assert cube.sizes["pixel"] == int(land.sum())
    assert np.array_equal(land[cube["row"].values, cube["col"].values], np.ones(cube.sizes["pixel"], bool))
    row, col = cube["row"].values.astype(int), cube["col"].values.astype(int)
    tile = (row // 90) * 8 + col // 90  # the input stores' (90, 90) chunks
    assert np.all(np.diff(tile * 259200 + row * 720 + col) > 0)  # tile by tile, row-major inside
    assert np.allclose(cube["lat"].values, LAT[cube["row"].values])
    assert cube["Tair"].dims == ("time", "pixel") and cube["NDVI_msc"].dims == ("dayofyear", "pixel")
    assert cube["NDVI_msc_amp"].dims == ("pixel",)
    for name, d in DRIVERS.items():
        assert cube[name].attrs["units"] == d.units and cube[name].attrs["long_name"]
    inputs = json.loads(cube.attrs["input_stores"])
    for name in ("era5_daily_0p5deg", "modis_8day_0p5deg", "regions_land_0p5deg"):
        assert inputs[name] == pub.current(name)["version"]
    assert cube.attrs["synthetic"] == "true"
    assert pub.current(build.CUBE_DATASET)["synthetic"] is True
    version = pub.current(build.CUBE_DATASET)["version"]
    group = zarr.open_group(pub.store_location(build.CUBE_DATASET, version).path, mode="r")
    assert group["Tair"].chunks == (build.TIME_CHUNK, build.PIXEL_CHUNK)
    assert "drivers_land_0p5deg" in (Path(root) / "catalog.yaml").read_text()


def test_cube_values_against_inputs_and_slow_references(built) -> None:
    _, pub, _, _ = built
    cube = pub.open(build.CUBE_DATASET)
    era5 = pub.open("era5_daily_0p5deg")
    modis = pub.open("modis_8day_0p5deg")
    rng = np.random.default_rng(0)
    picks = rng.choice(cube.sizes["pixel"], 5, replace=False)
    for p in picks:
        px = cube.isel(pixel=int(p)).load()
        cell = dict(lat=float(px["lat"]), lon=float(px["lon"]))
        e = era5.sel(cell).load()
        assert np.array_equal(px["Tair"].values, e["Tair"].values)
        assert np.array_equal(px["Rg"].values, e["Rg"].values)
        wai = _slow_wai(
            e["P"].values.astype(float), e["Tair"].values.astype(float), e["Rg"].values.astype(float)
        )
        assert np.abs(px["WAI"].values - wai).max() < 1e-5
        assert np.allclose(
            px["Rpot"].values,
            daily_potential_radiation(np.array([cell["lat"]]), np.arange(1, 367))[:, 0],
            rtol=1e-6,
        )
        m = modis.sel(cell).load()
        for name in MODIS_INDICES:
            ref = _slow_msc(m[name].values.astype(float), m["time"].values)
            assert np.allclose(px[f"{name}_msc"].values, ref, rtol=1e-5, atol=1e-5), name
            assert px[f"{name}_msc_max"] == pytest.approx(ref.max(), rel=1e-5)
            assert px[f"{name}_msc_amp"] == pytest.approx(ref.max() - ref.min(), rel=1e-4, abs=1e-5)
    assert float(cube["WAI"].min()) >= 0.0 and float(cube["WAI"].max()) <= 1.0


def test_site_store_aligned_with_targets_and_equal_to_the_cube(built) -> None:
    _, pub, _, summary = built
    sites = pub.open(build.SITES_DATASET).load()
    targets = pub.open("sites_processed_dd")
    assert list(sites["site"].values) == list(targets["site"].values)
    assert np.array_equal(sites["time"].values, targets["time"].values)
    assert any("31 of 578 target days are outside the ERA5 record" in w for w in summary.warnings)
    cube = pub.open(build.CUBE_DATASET)
    for site in ("DE-Tha", "BR-Sa1"):
        s = sites.sel(site=site)
        lat, lon = SITES[site]
        row, col = int((lat + 90) // 0.5), int((lon + 180) // 0.5)
        assert (float(s["cell_lat"]), float(s["cell_lon"])) == (LAT[row], LON[col])
        p = int(np.nonzero((cube["row"].values == row) & (cube["col"].values == col))[0][0])
        px = cube.isel(pixel=p).load()
        inside = sites["time"].values >= np.datetime64("2011-01-01")
        ref = px.sel(time=sites["time"].values[inside])
        for name in ("Tair", "Rg", "WAI"):
            assert np.array_equal(s[name].values[inside], ref[name].values, equal_nan=True), name
            assert np.isnan(s[name].values[~inside]).all()
        doy = pd.DatetimeIndex(sites["time"].values).day_of_year.to_numpy()
        assert np.array_equal(s["EVI_msc"].values, px["EVI_msc"].values[doy - 1])
        assert float(s["EVI_msc_amp"]) == float(px["EVI_msc_amp"])
        want_rpot = daily_potential_radiation(np.array([lat]), doy)[:, 0]  # at the tower's own latitude
        assert np.allclose(s["Rpot"].values, want_rpot, rtol=1e-6)
    out = sites.sel(site="XX-Out")  # a tower outside the synthetic data: all NaN, no failure
    assert np.isnan(out["Tair"].values).all()
    m = build.driver_matrix(sites.isel(time=slice(100, 110)))
    assert m.dims == ("site", "time", "driver") and m.sizes["driver"] == len(DRIVERS)
    assert np.array_equal(m.sel(driver="Tair").values, sites["Tair"].values[:, 100:110], equal_nan=True)
    assert np.array_equal(
        m.sel(driver="NDVI_msc_mean").values[:, 3], sites["NDVI_msc_mean"].values, equal_nan=True
    )


def test_rerun_publishes_nothing_new(built) -> None:
    root, pub, _, _ = built
    before = {n: pub.current(n)["version"] for n in (build.CUBE_DATASET, build.SITES_DATASET)}
    again = build.run(root, n_workers=1)
    assert not again.published and again.up_to_date == before


def test_bad_inputs_name_the_store_and_field(tmp_path: Path) -> None:
    pub = Publisher(str(tmp_path / "s"))
    land = _land()
    synthetic.write_regions(pub, land)
    with pytest.raises(InputError, match=r"era5_daily_0p5deg: no published store"):
        build.run(pub.root.url, what=("cube",))
    synthetic.write_era5(pub, land, "2012-01-01", "2012-01-10")
    synthetic.write_modis(pub, land, 2012, 2012)
    era5 = pub.open("era5_daily_0p5deg")
    store = build.input_store(pub, "era5_daily_0p5deg")
    bad = era5.copy()
    bad["Tair"].attrs["units"] = "K"
    with pytest.raises(InputError, match=r"column Tair: units 'K', expected 'degC'") as err:
        build.check_grid_store(bad, store, {"Tair": "degC"})
    assert store.url in str(err.value)
    with pytest.raises(InputError, match="column Rg: variable missing"):
        build.check_grid_store(era5.drop_vars("Rg"), store, {"Rg": "W m-2"})
    with pytest.raises(InputError, match="coordinate 'lat'"):
        build.check_grid_store(era5.isel(lat=slice(0, 10)), store, {})
    with pytest.raises(InputError, match="no daily NEE targets"):
        build.run(pub.root.url, what=("sites",))
    assert pub.current(build.CUBE_DATASET) is None and pub.current(build.SITES_DATASET) is None


def test_validation_refuses_a_store_that_differs_from_what_was_written() -> None:
    ds = xr.Dataset({"Tair": (("time", "pixel"), np.array([[1.0, 2.0]], dtype="float32"))})
    for name in DRIVERS:
        if name != "Tair":
            ds[name] = (("pixel",), np.full(2, 0.5, dtype="float32"))
    ok = [{"checks": [{"time": [0, 1], "pixel": [0, 2], "checks": {"Tair": {"count": 2, "sum": 3.0}}}]}]
    build.validate_cube(ds, ok)
    wrong = [{"checks": [{"time": [0, 1], "pixel": [0, 2], "checks": {"Tair": {"count": 2, "sum": 4.0}}}]}]
    with pytest.raises(ValueError, match="Tair pixels 0:2 days 0:1: store has 2 values"):
        build.validate_cube(ds, wrong)
    with pytest.raises(ValueError, match=r"WAI x: values 1.2..1.2 outside 0.0..1.0"):
        build.check_values("WAI", np.array([1.2]), None, "x")
    assert water.CAPACITY == 150.0  # the stated capacity the docs and the driver table quote


def test_cli_build_and_table(built, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fluxcube.cli import app

    root = built[0]
    runner = CliRunner()
    res = runner.invoke(app, ["drivers", "build", "--target", root], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "drivers_land_0p5deg" in res.output and "up to date" in res.output
    res = runner.invoke(app, ["drivers", "build", "--target", str(tmp_path / "empty")], terminal_width=200)
    assert res.exit_code == 1 and "no published store 'era5_daily_0p5deg'" in res.output
    res = runner.invoke(app, ["drivers", "table"], terminal_width=300)
    assert res.exit_code == 0 and all(f"`{name}`" in res.output for name in DRIVERS)


def test_docs_table_is_the_driver_table() -> None:
    from fluxcube.drivers.table import markdown_table

    doc = (Path(__file__).resolve().parents[1] / "docs" / "drivers.md").read_text()
    assert markdown_table() in doc
