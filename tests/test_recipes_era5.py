"""ERA5 recipe: GRIB and CDS NetCDF (old and new layouts) -> daily 0.5 degree Zarr.

Expected values are decoded independently of the recipe (ecCodes message iteration for GRIB,
netCDF4.Dataset for NetCDF) and regridded here by explicit per-cell weights.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from fluxcube.publish import Publisher
from fluxcube.recipes import era5

UK_GRIB = "era5-2mt-2019-03-uk.grib"
TP_NC = "ERA5_2022-08-31_tp.nc"
D2M_NC = "ERA5_2020-01-01_d2m.nc"


@pytest.fixture(scope="session")
def era5_dir(data_dir: Path) -> Path:
    return data_dir / "grids" / "era5"


def cell_weights(points: np.ndarray, lo: float, hi: float, spacing: float, spherical: bool) -> np.ndarray:
    """Overlap of the source cells (points +- spacing/2) with [lo, hi]: in sin(lat) or in degrees."""
    a = np.maximum(points - spacing / 2, lo)
    b = np.minimum(points + spacing / 2, hi)
    if spherical:
        return np.clip(np.sin(np.deg2rad(b)) - np.sin(np.deg2rad(a)), 0, None) * (b > a)
    return np.clip(b - a, 0, None)


def expected_cell(
    fields: np.ndarray, lat: np.ndarray, lon: np.ndarray, clat: float, clon: float
) -> np.ndarray:
    """Conservative 0.5 degree cell mean of hourly fields (time, lat, lon) on a 0.25 degree grid."""
    wy = cell_weights(lat, clat - 0.25, clat + 0.25, 0.25, spherical=True)
    wx = cell_weights(lon, clon - 0.25, clon + 0.25, 0.25, spherical=False)
    w = np.outer(wy, wx)
    return (fields * w).sum(axis=(1, 2)) / w.sum()


def grib_day(path: Path, date: int) -> np.ndarray:
    """Every 2t message of ``date`` (YYYYMMDD), decoded with ecCodes directly: (24, lat, lon)."""
    import eccodes

    fields = []
    with open(path, "rb") as fh:
        while (g := eccodes.codes_grib_new_from_file(fh)) is not None:
            try:
                if eccodes.codes_get(g, "dataDate") == date:
                    nj, ni = eccodes.codes_get(g, "Nj"), eccodes.codes_get(g, "Ni")
                    fields.append(
                        (eccodes.codes_get(g, "dataTime"), eccodes.codes_get_values(g).reshape(nj, ni))
                    )
            finally:
                eccodes.codes_release(g)
    return np.array([f for _, f in sorted(fields, key=lambda x: x[0])])


@pytest.fixture(scope="module")
def uk_store(era5_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, era5.RunSummary]:
    target = str(tmp_path_factory.mktemp("era5-uk") / "store")
    summary = era5.run(str(era5_dir / UK_GRIB), target)
    return target, summary


def test_grib_daily_tair_matches_eccodes_decode(uk_store, era5_dir: Path) -> None:
    target, summary = uk_store
    assert summary.published == {era5.DATASET: summary.published[era5.DATASET]}
    ds = Publisher(target).open(era5.DATASET)
    assert ds.sizes["time"] == 31 and ds.sizes["lat"] == 360 and ds.sizes["lon"] == 720
    assert str(ds["time"].values[0])[:10] == "2019-03-01"
    lat, lon = np.linspace(58, 50, 33), np.linspace(-10, 2, 49)  # the file's grid (GDS)
    fields = grib_day(era5_dir / UK_GRIB, 20190301)
    assert fields.shape == (24, 33, 49)
    for clat, clon in [(55.25, -3.75), (50.25, -9.75), (57.75, 1.75), (51.75, -0.25)]:
        hourly = expected_cell(fields, lat, lon, clat, clon)
        cell = ds.sel(time="2019-03-01", lat=clat, lon=clon)
        assert float(cell["Tair"]) == pytest.approx(hourly.mean() - 273.15, abs=1e-4)
        assert float(cell["Tmin"]) == pytest.approx(hourly.min() - 273.15, abs=1e-4)
        assert float(cell["Tmax"]) == pytest.approx(hourly.max() - 273.15, abs=1e-4)
        # plain cos(lat)-weighted 3x3 stencil (1/4, 1/2, 1/4) agrees to a few mK
        w = np.outer(
            np.array([0.5, 1, 0.5]) * np.cos(np.deg2rad(clat + np.array([0.25, 0, -0.25]))), [0.5, 1, 0.5]
        )
        i = round((58 - (clat + 0.25)) / 0.25)
        j = round((clon - 0.25 + 10) / 0.25)
        approx = (fields[:, i : i + 3, j : j + 3] * w).sum(axis=(1, 2)) / w.sum()
        assert float(cell["Tair"]) == pytest.approx(approx.mean() - 273.15, abs=5e-3)
    assert ds["Tair"].attrs["units"] == "degC"
    sources = json.loads(ds.attrs["source_files"])
    assert ds.attrs["recipe"] == "era5" and [Path(k).name for k in sources] == [UK_GRIB]
    assert all(len(v) == 64 for v in sources.values())


def test_grib_partial_coverage_and_ranges(uk_store) -> None:
    target, _ = uk_store
    ds = Publisher(target).open(era5.DATASET)
    day = ds["Tair"].sel(time="2019-03-15").values
    ok = np.isfinite(day)
    assert ok.sum() == 16 * 24  # only cells fully inside 50..58 N, 10 W..2 E
    rows, cols = np.flatnonzero(ok.any(axis=1)), np.flatnonzero(ok.any(axis=0))
    assert ds["lat"].values[rows[[0, -1]]].tolist() == [50.25, 57.75]
    assert ds["lon"].values[cols[[0, -1]]].tolist() == [-9.75, 1.75]
    t = ds[["Tmin", "Tair", "Tmax"]].load()
    assert float(t["Tair"].min()) > -15 and float(t["Tair"].max()) < 20  # March in the UK
    assert bool((t["Tmin"] <= t["Tair"] + 1e-5).where(np.isfinite(t["Tair"]), True).all())
    assert ds["Tair"].encoding["chunks"] == (era5.TIME_CHUNK, era5.SPACE_CHUNK, era5.SPACE_CHUNK)


def test_idempotent_rerun_and_catalog(uk_store, era5_dir: Path) -> None:
    target, summary = uk_store
    again = era5.run(str(era5_dir / UK_GRIB), target)
    assert again.up_to_date == summary.published and not again.published
    catalog = (Path(target) / "catalog.yaml").read_text()
    assert era5.DATASET in catalog and "degC" in catalog


def _new_layout(src: Path, dst: Path, shift_days: int, rename: dict[str, str] | None = None) -> None:
    """The CDS 2024+ layout: ``valid_time`` dimension, ``number`` and ``expver`` coordinates."""
    with xr.open_dataset(src) as ds:
        ds = ds.load()
    ds = ds.rename({"time": "valid_time", **(rename or {})})
    ds["valid_time"] = ds["valid_time"] + np.timedelta64(shift_days, "D")
    ds = ds.assign_coords(number=0, expver=("valid_time", np.array(["0001"] * ds.sizes["valid_time"])))
    for v in ds.data_vars:
        ds[v].attrs["GRIB_stepType"] = "accum" if v == "tp" else "instant"
    ds.to_netcdf(dst, engine="netcdf4")


def test_netcdf_old_and_new_layout_tp_daily_sum(era5_dir: Path, tmp_path: Path) -> None:
    """P for 2022-08-31 = accumulations ending 01..23 UTC (old-layout file) + 24:00 (new-layout file)."""
    import netCDF4

    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(era5_dir / TP_NC, src / TP_NC)
    _new_layout(era5_dir / TP_NC, src / "ERA5_2022-09-01_tp_new.nc", 1)
    summary = era5.run(str(src), str(tmp_path / "store"))
    assert era5.DATASET in summary.published, summary
    assert any("2022-09-01: 23 of 24" in w for w in summary.warnings)
    ds = Publisher(str(tmp_path / "store")).open(era5.DATASET)
    assert [str(t)[:10] for t in ds["time"].values] == ["2022-08-31"]
    assert list(ds.data_vars) == ["P"] and ds["P"].attrs["units"] == "mm d-1"
    with netCDF4.Dataset(era5_dir / TP_NC) as nc:
        tp = np.asarray(nc["tp"][:], dtype="float64")  # m, (24, lat, lon); hour 0 closes Aug 30
        lat, lon = np.asarray(nc["latitude"][:]), np.asarray(nc["longitude"][:])
        assert nc["tp"].units == "m"
    day = np.concatenate([tp[1:], tp[:1]])  # the new-layout file's 00 UTC is the same data, shifted
    for clat, clon in [(50.25, 5.25), (54.75, 0.25), (45.25, 9.75)]:
        want = expected_cell(day, lat, lon, clat, clon).sum() * 1000.0
        got = float(ds["P"].sel(time="2022-08-31", lat=clat, lon=clon))
        assert got == pytest.approx(want, rel=1e-5, abs=1e-5)
    p = ds["P"].values
    assert np.isfinite(p).sum() == 20 * 20 and np.nanmin(p) >= 0 and np.nanmax(p) < 300


def test_vpd_from_new_layout_t2m_d2m(era5_dir: Path, tmp_path: Path) -> None:
    import netCDF4

    with netCDF4.Dataset(era5_dir / D2M_NC) as nc:
        d2m = np.asarray(nc["d2m"][:], dtype="float64")
        lat, lon = np.asarray(nc["latitude"][:]), np.asarray(nc["longitude"][:])
    with xr.open_dataset(era5_dir / D2M_NC) as ds:
        ds = ds.load()
    ds["t2m"] = ds["d2m"] + 4.0
    ds["t2m"].attrs = {"units": "K", "long_name": "2 metre temperature"}
    ds.to_netcdf(tmp_path / "both.nc")
    _new_layout(tmp_path / "both.nc", tmp_path / "ERA5_new.nc", 0)
    (tmp_path / "both.nc").unlink()
    summary = era5.run(str(tmp_path / "ERA5_new.nc"), str(tmp_path / "store"))
    out = Publisher(str(tmp_path / "store")).open(era5.DATASET)
    assert set(out.data_vars) == {"Tair", "Tmin", "Tmax", "VPD"}, summary
    clat, clon = 50.25, 5.25
    td = expected_cell(d2m, lat, lon, clat, clon)
    t = expected_cell(d2m + 4.0, lat, lon, clat, clon)

    def es(k: np.ndarray) -> np.ndarray:
        return 6.1121 * np.exp(17.502 * (k - 273.16) / (k - 32.19))

    got = out.sel(time="2020-01-01", lat=clat, lon=clon)
    assert float(got["VPD"]) == pytest.approx((es(t) - es(td)).mean(), rel=1e-5)
    assert 0 < float(got["VPD"]) < 15 and out["VPD"].attrs["units"] == "hPa"


@pytest.mark.parametrize(
    ("name", "units", "value", "expected"),
    [("ssrd", "J m**-2", 1.08e6, 300.0), ("msdwswrf", "W m**-2", 250.0, 250.0)],
)
def test_radiation_units(tmp_path: Path, name: str, units: str, value: float, expected: float) -> None:
    """ssrd J m-2 per hour -> Rg = daily sum / 86400 s; msdwswrf W m-2 -> mean; 0..360 longitudes."""
    time = np.arange("2021-06-01T00", "2021-06-03T00", dtype="datetime64[h]").astype("datetime64[ns]")
    lat = np.arange(10.0, 7.75, -0.25)
    lon = np.arange(358.0, 360.0, 0.25)  # west of Greenwich, in 0..360
    data = np.full((time.size, lat.size, lon.size), value)
    ds = xr.Dataset(
        {name: (("time", "latitude", "longitude"), data, {"units": units})},
        coords={"time": time, "latitude": lat, "longitude": lon},
    )
    ds.to_netcdf(tmp_path / "rad.nc")
    era5.run(str(tmp_path / "rad.nc"), str(tmp_path / "store"))
    out = Publisher(str(tmp_path / "store")).open(era5.DATASET)
    assert [str(t)[:10] for t in out["time"].values] == ["2021-06-01"]  # 06-02 lacks 03 00 UTC
    rg = out["Rg"].sel(time="2021-06-01").values
    ok = np.isfinite(rg)
    assert ok.sum() == 4 * 3  # lat 8..10 (4 cells) x lon -2..-0.125 covered fully by -1.875.. (3 cells)
    assert np.allclose(rg[ok], expected, rtol=1e-6)
    assert out["lon"].values[ok.any(axis=0)].tolist() == [-1.75, -1.25, -0.75]
    assert out["Rg"].attrs["units"] == "W m-2"


def _bad_inputs(era5_dir: Path, folder: Path) -> dict[str, str]:
    """Bad files and the words their refusal must contain."""
    folder.mkdir()
    grib = (era5_dir / UK_GRIB).read_bytes()
    (folder / "truncated.grib").write_bytes(grib[: len(grib) - 30_000])
    nc = (era5_dir / TP_NC).read_bytes()
    (folder / "truncated.nc").write_bytes(nc[: len(nc) // 2])
    with xr.open_dataset(era5_dir / D2M_NC) as ds:
        ds = ds.load()
    t = ds.rename({"d2m": "t2m"})
    t["t2m"] = t["t2m"] - 273.15
    t["t2m"].attrs["units"] = "degC"
    t.to_netcdf(folder / "units.nc")
    lat = np.concatenate([np.arange(55.0, 50.0, -0.25), np.arange(50.0, 29.5, -1.0)])  # 20 + 21 points
    irregular = t.assign_coords(latitude=lat)
    irregular["t2m"] = irregular["t2m"] + 273.15
    irregular["t2m"].attrs["units"] = "K"
    irregular.to_netcdf(folder / "grid.nc")
    shutil.copy(era5_dir / "ERA5_2022-08-31_e.nc", folder / "missing.nc")
    return {
        "truncated.grib": "truncated",
        "truncated.nc": "cannot open as NetCDF",
        "units.nc": "units 'degC'",
        "grid.nc": "not regularly spaced",
        "missing.nc": "no variable this recipe ingests",
    }


def test_bad_inputs_refused_nothing_published(era5_dir: Path, tmp_path: Path) -> None:
    bad = _bad_inputs(era5_dir, tmp_path / "bad")
    target = str(tmp_path / "store")
    summary = era5.run(str(tmp_path / "bad"), target)
    refused = {Path(r["file"]).name: r for r in summary.refused}
    assert set(refused) == set(bad)
    for name, words in bad.items():
        assert refused[name]["type"] == "InputError"
        assert words in refused[name]["error"] and name in refused[name]["error"]
    assert not summary.published
    assert Publisher(target).current(era5.DATASET) is None
    assert not (Path(target) / "catalog.yaml").exists()


def test_scan_refuses_single_point_and_wrong_accumulation(era5_dir: Path, tmp_path: Path) -> None:
    from fluxcube.errors import InputError

    with pytest.raises(InputError, match="single point is not a grid"):
        era5.scan(str(era5_dir / "era5_testfile_1day.nc"))
    with pytest.raises(InputError, match="no variable this recipe ingests"):
        era5.scan(str(era5_dir / "regular_ll_sfc.grib"))
    ds = xr.Dataset(
        {
            "tp": (
                ("time", "latitude", "longitude"),
                np.zeros((2, 3, 3)),
                {"units": "mm", "GRIB_stepType": "accum"},
            )
        },
        coords={
            "time": np.array(["2020-01-01T00", "2020-01-01T01"], "datetime64[ns]"),
            "latitude": [1.0, 0.5, 0.0],
            "longitude": [0.0, 0.5, 1.0],
        },
    )
    ds.to_netcdf(tmp_path / "mm.nc")
    with pytest.raises(InputError, match="units 'mm'"):
        era5.scan(str(tmp_path / "mm.nc"))


def test_regridder_conserves_and_wraps_longitude() -> None:
    """A global 0.25 degree grid in 0..360: area-weighted global means are preserved."""
    lat = np.arange(90.0, -90.25, -0.25)
    lon = np.arange(0.0, 360.0, 0.25)
    rng = np.random.default_rng(1)
    f = rng.normal(280, 10, (1, lat.size, lon.size))
    r = era5.Regridder(lat, lon)
    out = r(f)[0]
    assert out.shape == (360, 720) and np.isfinite(out).all()
    src_w = np.clip(
        np.sin(np.deg2rad(np.minimum(lat + 0.125, 90))) - np.sin(np.deg2rad(np.maximum(lat - 0.125, -90))),
        0,
        None,
    )
    dst_w = np.diff(np.sin(np.deg2rad(np.linspace(-90, 90, 361))))
    src_mean = (f[0] * src_w[:, None]).sum() / (src_w.sum() * lon.size)
    dst_mean = (out.astype("float64") * dst_w[:, None]).sum() / (dst_w.sum() * 720)
    assert dst_mean == pytest.approx(src_mean, rel=1e-6)
    # cell (lat 0.25, lon -179.75) = (0..0.5 N, 180..180.5 E): source points 180.0, 180.25, 180.5
    j = np.searchsorted(lon, [180.0, 180.25, 180.5])
    i = np.searchsorted(-lat, [-0.5, -0.25, 0.0])
    w = np.outer(cell_weights(lat[i], 0.0, 0.5, 0.25, True), cell_weights(lon[j], 180.0, 180.5, 0.25, False))
    want = (f[0][np.ix_(i, j)] * w).sum() / w.sum()
    assert out[180, 0] == pytest.approx(want, rel=1e-6)  # lat 0.25, lon -179.75


def test_regridder_block_mean_for_cell_centred_grid() -> None:
    """Points at 0.125 offsets (cell centres): a 0.5 degree cell is the weighted mean of a 2x2 block."""
    lat = np.arange(10.125, 12.0, 0.25)
    lon = np.arange(20.125, 22.0, 0.25)
    f = np.arange(lat.size * lon.size, dtype="float64").reshape(1, lat.size, lon.size)
    r = era5.Regridder(lat, lon)
    out = r(f)[0]
    wy = np.diff(np.sin(np.deg2rad([10.0, 10.25, 10.5])))
    want = (f[0, :2, :2] * wy[:, None]).sum() / (2 * wy.sum())
    assert out[0, 0] == pytest.approx(want, rel=1e-6)  # float32 output
    assert (r.i0, r.j0) == (200, 400)


@pytest.mark.parametrize(
    ("deg", "lat0", "lat1", "lon0", "lon1"),
    [
        (0.1, 0.0, -20.0, 14.0, 34.0),  # GFAS: latitude descending, longitude 0..360
        (0.1, 40.0, 60.0, 350.0, 370.0),  # ascending, across the meridian 0
    ],
)
def test_regridder_band_fast_path_equals_matrix_products(deg, lat0, lat1, lon0, lon1) -> None:
    """A finer grid nesting in the 0.5 degree cells is regridded as weighted sums of gathered rows and
    columns (a block mean by area): within float32 rounding of the sparse matrix products, NaN cells
    and partial validity (``min_valid``) included."""
    step = deg if lat1 > lat0 else -deg
    offset = deg / 2 if deg == 0.1 else 0.0
    lat = np.round(np.arange(lat0 + (offset if step > 0 else -offset), lat1, step), 6)
    lat = lat[np.abs(lat) <= 90]
    lon = np.round(np.arange(lon0 + offset, lon1 - 1e-9, deg) % 360.0, 6)
    r = era5.Regridder(lat, lon)
    assert r.use_band, (r.band_lat is None, r.band_lon is None)
    assert not era5.Regridder(np.arange(40.0, 30.0, -0.25), np.arange(350.0, 370.0, 0.25) % 360).use_band
    rng = np.random.default_rng(5)
    f = rng.gamma(0.5, 1e-8, (3, lat.size, lon.size))
    f[rng.random(f.shape) < 0.05] = np.nan
    f[1] = rng.normal(280, 10, f.shape[1:])  # a day without NaN (the no-mask branch)
    for min_valid in (1.0, 0.5):
        fast = r(f, min_valid=min_valid)
        r.use_band = False
        try:
            slow = r(f, min_valid=min_valid)
        finally:
            r.use_band = True
        np.testing.assert_array_equal(np.isnan(fast), np.isnan(slow))
        np.testing.assert_allclose(fast, slow, rtol=2e-7, atol=0)
        assert np.isfinite(fast).sum() > 0


@pytest.mark.parametrize("deg", [1.0, 2.0, 4.0])
def test_daily_products_before_a_gather_regridding_are_the_same(deg: float) -> None:
    """A coarser nesting grid regrids by copying values, so process_block takes the daily products on the
    source grid and copies them: the same float32 values as regridding every hour first."""
    lat = np.arange(90 - deg / 2, -90, -deg)
    lon = np.arange(deg / 2, 360, deg)
    r = era5.Regridder(lat, lon)
    assert r.take_lat is not None and r.take_lon is not None
    rng = np.random.default_rng(3)
    shape = (24, lat.size, lon.size)
    hourly = {
        "t2m": rng.normal(285, 12, shape),
        "d2m": rng.normal(278, 10, shape),
        "tp": rng.exponential(2e-4, shape),
        "ssrd": rng.uniform(0, 3e6, shape),
    }
    hourly["t2m"][5, 3, 4] = np.nan  # a missing hour: NaN that day in both orders
    products = ["Tair", "Tmin", "Tmax", "VPD", "P", "Rg"]
    slow = era5.daily_products({k: r(v) for k, v in hourly.items()}, products, "ssrd")
    src = {k: v.astype("float32") for k, v in hourly.items()}
    fast = {p: r(v[None])[0] for p, v in era5.daily_products(src, products, "ssrd").items()}
    for p in products:
        np.testing.assert_array_equal(fast[p], slow[p])
    k = round(deg / 0.5)
    assert np.isnan(fast["Tair"]).sum() == k * k  # the one source cell with a missing hour
