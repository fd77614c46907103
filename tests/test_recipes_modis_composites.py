"""MODIS 8-day composites (lat/lon NetCDF) -> modis_8day_0p5deg, checked against an independent decode.

The reference decodes the simulated world's files with netCDF4 (auto-scaling off), applies scale factors and
QA bit tests coded again here, and refines the 4 degree grid to 0.5 degree by hand; the world's truth fAPAR
and its MOD13A2 NDVI/EVI are independent checks of the physics.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
import pytest

from fluxcube.publish import Publisher
from fluxcube.recipes import modis, modis_composites
from fluxcube.recipes.modis_composites import DATASET
from fluxcube.simulate.world import WorldSummary, write_world

GRID_DEG = 4
FINE = int(GRID_DEG / 0.5)  # 0.5 degree cells per world cell and axis
VARS = ("NDVI", "EVI", "NDWI", "MIR", "fAPAR", "LST_day", "LST_night")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> WorldSummary:
    tmp = tmp_path_factory.mktemp("world")
    return write_world(
        tmp / "world",
        grid_deg=GRID_DEG,
        start_year=2011,
        end_year=2011,
        components=("truth", "modis"),
        data_dir=tmp / "none",
    )


@pytest.fixture(scope="module")
def published(world: WorldSummary, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    target = tmp_path_factory.mktemp("store")
    summary = modis.run(str(world.out_dir / "modis"), str(target))
    assert summary.published.keys() == {DATASET}, summary
    ds = Publisher(str(target)).open(DATASET)
    return {"target": target, "summary": summary, "ds": ds, "values": {v: ds[v].values for v in VARS}}


def raw(path: Path, name: str) -> np.ndarray:
    """Stored integers (time, lat ascending, lon), no scaling or masking."""
    with netCDF4.Dataset(path) as nc:
        var = nc[name]
        var.set_auto_maskandscale(False)
        lat = nc["lat"][:]
        data = var[:]
    return data[:, ::-1] if lat[0] > lat[-1] else data


def refine(a: np.ndarray) -> np.ndarray:
    """(t, 45, 90) world cells -> (t, 360, 720): each 0.5 degree cell takes its world cell's value."""
    return np.repeat(np.repeat(a, FINE, axis=1), FINE, axis=2)


def reference(modis_dir: Path) -> dict[str, np.ndarray]:
    """Every store variable decoded independently from the simulated files (float64, NaN = masked)."""
    f09, f15, f11 = (modis_dir / f"{p}.A2011.sim.nc" for p in ("MOD09A1", "MOD15A2H", "MOD11A2"))
    qc, st = raw(f09, "sur_refl_qc_500m").astype(np.int64), raw(f09, "sur_refl_state_500m").astype(np.int64)
    ok = (qc != 787410671) & ((qc & 3) <= 1)
    for shift in (2, 6, 10, 22, 26):  # band quality of bands 1, 2, 3, 6, 7
        ok &= ((qc >> shift) & 0xF) == 0
    ok &= (st != 65535) & np.isin(st & 3, (0, 3)) & ((st >> 2) & 1 == 0) & ((st >> 10) & 1 == 0)
    ok &= ((st >> 8) & 3) != 3
    rho = {}
    for b in ("01", "02", "03", "06", "07"):
        r = raw(f09, f"sur_refl_b{b}")
        ok &= (r != -28672) & (r >= 0) & (r <= 10000)
        rho[b] = r * 0.0001
    red, nir, blue, swir, mir = rho["01"], rho["02"], rho["03"], rho["06"], rho["07"]
    with np.errstate(divide="ignore", invalid="ignore"):
        den = nir + 6 * red - 7.5 * blue + 1
        evi = 2.5 * (nir - red) / den
        out = {
            "NDVI": np.where(ok, (nir - red) / (nir + red), np.nan),
            "EVI": np.where(ok & (den > 0) & (evi >= -0.2) & (evi <= 1), evi, np.nan),
            "NDWI": np.where(ok, (nir - swir) / (nir + swir), np.nan),
            "MIR": np.where(ok, mir, np.nan),
        }
    fp, fqc = raw(f15, "Fpar_500m").astype(np.int64), raw(f15, "FparLai_QC").astype(np.int64)
    good = (fp <= 100) & (fqc & 1 == 0) & ((fqc >> 2) & 1 == 0) & np.isin((fqc >> 3) & 3, (0, 3))
    out["fAPAR"] = np.where(good & ((fqc >> 5) <= 1), fp * 0.01, np.nan)
    for var, layer, qname in (
        ("LST_day", "LST_Day_1km", "QC_Day"),
        ("LST_night", "LST_Night_1km", "QC_Night"),
    ):
        lst, q = raw(f11, layer).astype(np.int64), raw(f11, qname).astype(np.int64)
        keep = (lst != 0) & (lst >= 7500) & ((q & 3) <= 1) & (((q >> 6) & 3) <= 1)
        out[var] = np.where(keep, lst * 0.02, np.nan)
    return {k: refine(v) for k, v in out.items()}


def test_store_layout_and_cf_attributes(published: dict[str, Any], world: WorldSummary) -> None:
    ds = published["ds"]
    assert set(ds.data_vars) == set(VARS)
    assert ds.sizes == {"time": 46, "lat": 360, "lon": 720}
    assert ds.lat.values[0] == -89.75 and ds.lat.values[-1] == 89.75
    assert ds.lon.values[0] == -179.75 and ds.lon.values[-1] == 179.75
    with netCDF4.Dataset(world.out_dir / "modis" / "MOD09A1.A2011.sim.nc") as nc:
        t = nc["time"]
        starts = netCDF4.num2date(t[:], t.units, only_use_cftime_datetimes=False)
    assert [str(x)[:10] for x in ds.time.values.astype("datetime64[D]")] == [
        d.strftime("%Y-%m-%d") for d in starts
    ]
    for v in VARS:
        assert ds[v].dtype == np.float32
        assert ds[v].data.chunksize == (32, 90, 90)
        assert ds[v].attrs["units"] == ("K" if v.startswith("LST") else "1") and ds[v].attrs["long_name"]
    assert ds.attrs["synthetic"] in (True, "true")
    assert "MOD09A1.A2011.sim.nc" in ds.attrs["source_files"]
    assert any("MOD13A2" in s for s in published["summary"].skipped)


def test_values_match_independent_decode(published: dict[str, Any], world: WorldSummary) -> None:
    ref = reference(world.out_dir / "modis")
    for v in VARS:
        got, want = published["values"][v], ref[v]
        assert np.array_equal(np.isnan(got), np.isnan(want)), v
        np.testing.assert_allclose(got[np.isfinite(got)], want[np.isfinite(want)], rtol=2e-6, atol=1e-6)
        assert np.isfinite(got).sum() > 100_000, v
    # QA did something: cloudy MOD09A1 composites (state cloud bits 01) and cloud gaps in LST are NaN
    st = refine(raw(world.out_dir / "modis" / "MOD09A1.A2011.sim.nc", "sur_refl_state_500m"))
    cloudy = (st & 3) == 1
    assert cloudy.sum() > 10_000 and np.isnan(published["values"]["NDVI"][cloudy]).all()
    q = refine(raw(world.out_dir / "modis" / "MOD11A2.A2011.sim.nc", "QC_Day"))
    assert ((q & 3) == 2).sum() > 1000 and np.isnan(published["values"]["LST_day"][(q & 3) == 2]).all()


def test_physical_ranges(published: dict[str, Any]) -> None:
    bounds = {"NDVI": (-1, 1), "EVI": (-0.2, 1), "NDWI": (-1, 1), "MIR": (0, 1), "fAPAR": (0, 1)}
    bounds |= {"LST_day": (200, 340), "LST_night": (200, 320)}
    for v, (lo, hi) in bounds.items():
        a = published["values"][v]
        assert lo <= np.nanmin(a) and np.nanmax(a) <= hi, (v, np.nanmin(a), np.nanmax(a))
    # vegetated cells are greener than bare ones: NDVI grows with fAPAR
    ndvi, fapar = published["values"]["NDVI"], published["values"]["fAPAR"]
    both = np.isfinite(ndvi) & np.isfinite(fapar)
    assert np.corrcoef(ndvi[both], fapar[both])[0, 1] > 0.8


def test_fapar_matches_world_truth_within_noise(published: dict[str, Any], world: WorldSummary) -> None:
    with netCDF4.Dataset(world.out_dir / "truth" / "truth_2011.nc") as nc:
        truth = np.ma.filled(nc["fAPAR"][:].astype("float64"), np.nan)  # (day, lat ascending, lon)
    with netCDF4.Dataset(world.out_dir / "modis" / "MOD15A2H.A2011.sim.nc") as nc:
        bounds = nc["time_bnds"][:] - nc["time_bnds"][0, 0]
    got = published["values"]["fAPAR"][:, ::FINE, ::FINE]  # one 0.5 degree cell per world cell
    res = []
    for k, (s, e) in enumerate(bounds):
        with warnings.catch_warnings():  # ocean cells: all NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            period_mean = np.nanmean(truth[s:e], axis=0)
        r = got[k] - period_mean
        res.append(r[np.isfinite(r)])
    res = np.concatenate(res)
    # the simulator adds N(0, 0.03) to the best clear day's fAPAR and stores it to 0.01
    assert res.size > 20_000
    assert abs(res.mean()) < 0.015
    assert 0.025 < res.std() < 0.04
    assert np.abs(res).max() < 0.2


def test_ndvi_evi_agree_with_mod13a2_on_clear_composites(
    published: dict[str, Any], world: WorldSummary
) -> None:
    f13 = world.out_dir / "modis" / "MOD13A2.A2011.sim.nc"
    rel = raw(f13, "pixel_reliability")
    with netCDF4.Dataset(f13) as nc:
        t13 = list(nc["time"][:])
    with netCDF4.Dataset(world.out_dir / "modis" / "MOD09A1.A2011.sim.nc") as nc:
        t09 = list(nc["time"][:])
    idx = [t09.index(t) for t in t13]  # 16-day starts are every other 8-day start
    for name in ("NDVI", "EVI"):
        theirs = raw(f13, name) * 0.0001
        ours = published["values"][name][idx][:, ::FINE, ::FINE]
        ok = (rel == 0) & np.isfinite(ours)
        assert ok.sum() > 10_000
        d = ours[ok] - theirs[ok]
        assert np.corrcoef(ours[ok], theirs[ok])[0, 1] > 0.93, name
        assert np.median(np.abs(d)) < 0.04 and abs(d.mean()) < 0.03, name


def test_rerun_is_up_to_date_and_in_catalog(published: dict[str, Any], world: WorldSummary) -> None:
    summary = modis.run(str(world.out_dir / "modis"), str(published["target"]))
    assert summary.up_to_date.keys() == {DATASET} and not summary.published
    catalog = (published["target"] / "catalog.yaml").read_text()
    assert DATASET in catalog


# ------------------------------------------------------------------------------------ finer source grid
def write_fpar(
    path: Path, lat: np.ndarray, lon: np.ndarray, fpar: np.ndarray, qc: np.ndarray, **attrs
) -> None:
    """A MOD15A2H file in the AppEEARS NetCDF layout: one composite (2011-01-09)."""
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", None)
        nc.createDimension("lat", lat.size)
        nc.createDimension("lon", lon.size)
        t = nc.createVariable("time", "f8", ("time",))
        t.units, t.calendar = "days since 2000-01-01 00:00:00", "julian"
        t[:] = [(np.datetime64("2011-01-09") - np.datetime64("2000-01-01")).astype(int)]
        nc.createVariable("lat", "f8", ("lat",))[:] = lat
        nc.createVariable("lon", "f8", ("lon",))[:] = lon
        v = nc.createVariable("Fpar_500m", "u1", ("time", "lat", "lon"), fill_value=np.uint8(255))
        v.set_auto_maskandscale(False)
        v.scale_factor, v.add_offset, v.units = attrs.get("scale", 0.01), 0.0, attrs.get("units", "Percent")
        v[:] = fpar[None]
        q = nc.createVariable("FparLai_QC", "u1", ("time", "lat", "lon"))
        q[:] = qc[None]


def test_finer_grid_is_area_weighted_over_valid_cells(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    lat = np.arange(44.875, 40.0, -0.25)  # 0.25 degree, descending, 40..45 N
    lon = np.arange(10.125, 15.0, 0.25)
    fpar = rng.integers(0, 101, (lat.size, lon.size)).astype(np.uint8)
    qc = np.zeros_like(fpar)
    qc[rng.random(qc.shape) < 0.3] = 1 | 0b01 << 3 | 0b011 << 5  # cloudy, backup algorithm
    fpar[0, :4] = 255  # fill
    src = tmp_path / "src"
    src.mkdir()
    write_fpar(src / "MOD15A2H.061_500m_aid0001.nc", lat, lon, fpar, qc)
    summary = modis.run(str(src), str(tmp_path / "store"))
    assert summary.published.keys() == {DATASET}, summary
    got = Publisher(str(tmp_path / "store")).open(DATASET)["fAPAR"].isel(time=0).values
    # reference: each 0.5 degree cell holds 2 x 2 source cells, weighted by sin(lat) differences
    value = np.where((fpar <= 100) & (qc == 0), fpar * 0.01, np.nan)
    want = np.full((360, 720), np.nan)
    for a in range(0, lat.size, 2):
        for b in range(0, lon.size, 2):
            vals, w = [], []
            for da in (0, 1):
                c = np.deg2rad(lat[a + da])
                for db in (0, 1):
                    vals.append(value[a + da, b + db])
                    w.append(np.sin(c + np.deg2rad(0.125)) - np.sin(c - np.deg2rad(0.125)))
            vals, w = np.array(vals), np.array(w)
            ok = np.isfinite(vals)
            i = int(np.floor((lat[a] + 90) / 0.5))
            j = int(np.floor((lon[b] + 180) / 0.5))
            if w[ok].sum() >= 0.5 * w.sum() - 1e-12:
                want[i, j] = (vals[ok] * w[ok]).sum() / w[ok].sum()
    assert np.isfinite(want).sum() > 50 and np.isnan(want).sum() > 0
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7, equal_nan=True)


# ---------------------------------------------------------------------------------------- bad input
def copy_nc(
    src: Path, dst: Path, drop: str = "", attrs: dict[str, dict[str, Any]] | None = None, shift: float = 0
):
    """Copy a NetCDF file with netCDF4, leaving out variable ``drop``, overriding attributes and shifting
    the longitudes by ``shift`` degrees."""
    attrs = attrs or {}
    with netCDF4.Dataset(src) as a, netCDF4.Dataset(dst, "w") as b:
        for d, dim in a.dimensions.items():
            b.createDimension(d, len(dim))
        b.setncatts({k: a.getncattr(k) for k in a.ncattrs()})
        for name, var in a.variables.items():
            if name == drop:
                continue
            var.set_auto_maskandscale(False)
            fill = var.getncattr("_FillValue") if "_FillValue" in var.ncattrs() else None
            out = b.createVariable(name, var.dtype, var.dimensions, fill_value=fill)
            out.set_auto_maskandscale(False)
            out.setncatts(
                {k: var.getncattr(k) for k in var.ncattrs() if k != "_FillValue"} | attrs.get(name, {})
            )
            out[:] = var[:] + (shift if name == "lon" else 0)


@pytest.mark.parametrize(
    "case, product, companion, expect",
    [
        ("missing", "MOD15A2H", "MOD11A2", "FparLai_QC"),
        ("scale", "MOD11A2", "MOD15A2H", "scale_factor"),
        ("units", "MOD11A2", "MOD15A2H", "units"),
        ("truncated", "MOD09A1", "MOD15A2H", "cannot open"),
        ("grid", "MOD15A2H", "MOD11A2", "nest"),
    ],
)
def test_bad_input_refused_nothing_published(
    world: WorldSummary, tmp_path: Path, case: str, product: str, companion: str, expect: str
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    good = world.out_dir / "modis" / f"{product}.A2011.sim.nc"
    bad = src / good.name
    shutil.copy(world.out_dir / "modis" / f"{companion}.A2011.sim.nc", src)
    if case == "missing":
        copy_nc(good, bad, drop="FparLai_QC")
    elif case == "scale":
        copy_nc(good, bad, attrs={"LST_Day_1km": {"scale_factor": 0.01}})
    elif case == "units":
        copy_nc(good, bad, attrs={"LST_Night_1km": {"units": "degC"}})
    elif case == "truncated":
        data = good.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    else:  # 4 degree cells shifted by 1 degree: their edges are not on 0.5 degree edges
        copy_nc(good, bad, shift=0.25)
    target = tmp_path / "store"
    summary = modis.run(str(src), str(target))
    assert not summary.published and not summary.up_to_date
    assert [r["file"] for r in summary.refused] == [str(bad)], summary.refused
    assert expect in summary.refused[0]["error"] and bad.name in summary.refused[0]["error"]
    assert Publisher(str(target)).current(DATASET) is None


def test_scan_names_file_and_layer(world: WorldSummary, tmp_path: Path) -> None:
    bad = tmp_path / "MOD15A2H.A2011.sim.nc"
    copy_nc(world.out_dir / "modis" / bad.name, bad, attrs={"Fpar_500m": {"scale_factor": 0.1}})
    with pytest.raises(modis_composites.InputError) as err:
        modis_composites.scan(str(bad))
    assert err.value.file == str(bad) and err.value.column == "Fpar_500m"


def test_streamed_by_chunk_row_gives_the_same_store(
    published: dict[str, Any], world: WorldSummary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks too large to read whole (finer or larger sources) are read per chunk row of the store:
    the same values, and the same decoded bytes (source rows shared by two chunk rows counted once)."""
    monkeypatch.setattr(modis_composites, "WHOLE_BLOCK_BYTES", 0)
    summary = modis.run(str(world.out_dir / "modis"), str(tmp_path / "store"), force=True)
    assert summary.published.keys() == {DATASET}, summary
    pub = Publisher(str(tmp_path / "store"))
    ds = pub.open(DATASET)
    for v in VARS:
        assert np.array_equal(ds[v].values, published["values"][v], equal_nan=True), v
    decoded = Publisher(str(published["target"])).current(DATASET)["metadata"]["decoded_bytes"]
    assert pub.current(DATASET)["metadata"]["decoded_bytes"] == decoded
