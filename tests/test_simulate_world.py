"""The simulated world's gridded twin: physics of the truth, the derived products, determinism, and the
recipes (ERA5, GCB, inversions) ingesting the simulated files unchanged.

Two small worlds: 4 degrees for 2011-2012 (the 2012 European drought inside) with every component, and
10 degrees for 2012 with daily ERA5 files, written twice (in process and on a two-worker Dask cluster) to
check that the bytes repeat.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from distributed import get_task_stream

from fluxcube import cluster
from fluxcube.errors import InputError
from fluxcube.publish import Publisher
from fluxcube.simulate import gridded, towers, truth
from fluxcube.simulate.fire import FIRE_PFTS, KG_CO2_PER_G_C
from fluxcube.simulate.inversions_sim import FILE_NAME, GCB_FILE, member_names
from fluxcube.simulate.landmask import PFT_CLASSES, WorldGrid
from fluxcube.simulate.weather import generate_weather
from fluxcube.simulate.world import COMPONENTS, write_world

TROPICAL = ("BRA", "NSA", "EQAF", "SEAS")
EXTRATROPICAL = ("USA", "CAN", "EUR", "RUS")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("world4") / "world"
    summary = write_world(out, grid_deg=4.0, start_year=2011, end_year=2012, seed=0, regions="boxes")
    return out, summary


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("world10")
    kwargs = dict(
        grid_deg=10.0,
        start_year=2012,
        end_year=2012,
        seed=3,
        regions="boxes",
        era5_files="daily",
        n_inversions=3,
        max_band_cells=200,  # bands of 3 rows: several tasks per step
    )
    first = write_world(base / "a", **kwargs)  # in this process
    with cluster.client(2) as c, get_task_stream(c) as tasks:  # the same on two Dask workers
        second = write_world(base / "b", client=c, **kwargs)
    ran = [t["key"] if isinstance(t["key"], str) else t["key"][0] for t in tasks.data]
    return base, first, second, ran


def _static(out: Path) -> xr.Dataset:
    return xr.open_dataset(out / "truth" / "world_static.nc").load()


# ------------------------------------------------------------------------------------ the truth
def test_truth_files_mass_balance_units_and_land(world) -> None:
    out, summary = world
    static = _static(out)
    land = static["land_mask"].values == 1
    assert land.sum() == summary.grid.cells.size > 500
    assert not land[static["lat"].values < -60].any()  # Antarctica is not simulated
    with xr.open_dataset(out / "truth" / "truth_2012.nc") as ds:
        assert ds.sizes["time"] == 366 and str(ds["time"].values[59])[:10] == "2012-02-29"
        for name in ("NEE", "GPP", "Reco", "fire"):
            assert ds[name].attrs["units"] == "g C m-2 d-1"
        nee, gpp, reco = (ds[v].values.astype("float64") for v in ("NEE", "GPP", "Reco"))
        assert ds.attrs["synthetic"] == "true" and ds.attrs["generator_seed"] == 0
        params = json.loads(ds.attrs["generator_parameters"])
        assert params["grid_deg"] == 4.0 and params["sink_scale"] == gridded.DEFAULT_SINK_SCALE
    assert np.isfinite(nee[:, land]).all() and np.isnan(nee[:, ~land]).all()
    assert np.allclose(nee[:, land], reco[:, land] - gpp[:, land], atol=2e-5)  # float32 rounding
    assert (gpp[:, land] >= 0).all() and (reco[:, land] > 0).all()
    assert 0 < np.nanmax(gpp) < 25  # g C m-2 d-1
    codes = static["pft"].values[land]
    assert set(np.unique(codes)) <= set(range(1, len(PFT_CLASSES) + 1))
    assert {"EBF", "ENF", "SAV", "GRA", "CRO", "BSV"} <= {PFT_CLASSES[c - 1] for c in np.unique(codes)}


def test_integrals_match_the_files(world) -> None:
    out, summary = world
    static = _static(out)
    area = static["cell_area"].values
    glob = pd.read_csv(out / "truth" / "global_annual.csv").set_index("year")
    regional = pd.read_csv(out / "truth" / "regional_monthly.csv")
    for year in (2011, 2012):
        with xr.open_dataset(out / "truth" / f"truth_{year}.nc") as ds:
            for name in ("NEE", "GPP", "fire"):
                total = float(np.nansum(ds[name].values.astype("float64").sum(axis=0) * area)) / 1e15
                assert total == pytest.approx(glob.loc[year, name], rel=1e-5, abs=1e-6), (year, name)
        yr = regional[regional["year"] == year]
        assert yr["NEE"].sum() == pytest.approx(glob.loc[year, "NEE"], rel=1e-7)  # csv: 9 digits
        g = glob.loc[year]
        assert g["net_land_flux"] == pytest.approx(g["NEE"] + g["fire"])
        assert glob.loc[year, "residual_land_sink"] == pytest.approx(-glob.loc[year, "net_land_flux"])
    assert set(regional["region"]) == {"OTHER", *summary.regional_monthly["region"]}
    assert len(regional) == 24 * 19


def test_global_sink_of_realistic_size(world) -> None:
    _, summary = world
    g = summary.global_annual.set_index("year")
    assert -3.5 < g["NEE"].mean() < -1.5  # Pg C yr-1, positive = source
    assert ((g["NEE"] > -5.0) & (g["NEE"] < -1.0)).all()
    assert ((g["fire"] > 0.4) & (g["fire"] < 2.0)).all()
    assert (g["net_land_flux"] < 0).all()  # fire does not undo the sink
    assert ((g["GPP"] > 100) & (g["GPP"] < 180)).all()


def test_seasonal_cycle_is_opposite_in_the_two_hemispheres(world) -> None:
    out, _ = world
    area = _static(out)["cell_area"].values
    with xr.open_dataset(out / "truth" / "truth_2012.nc") as ds:
        nee = ds["NEE"].values.astype("float64")
        lat = ds["lat"].values
        month = ds["time"].dt.month.values
    jja, djf = np.isin(month, (6, 7, 8)), np.isin(month, (12, 1, 2))

    def mean(days: np.ndarray, rows: np.ndarray) -> float:
        x = nee[days][:, rows]
        a = np.broadcast_to(area[rows], x.shape)
        ok = np.isfinite(x)
        return float((x[ok] * a[ok]).sum() / a[ok].sum())

    north, south = lat > 30, lat < -30
    assert mean(jja, north) < -0.5 < 0 < mean(djf, north)  # northern summer uptake, winter release
    assert mean(djf, south) < mean(jja, south)  # southern summer is December-February


def test_drought_turns_europe_from_sink_to_source(world) -> None:
    _, summary = world
    r = summary.regional_monthly
    eur = r[r["region"] == "EUR"].groupby("year")["NEE"].sum()
    assert eur[2011] < 0 < eur[2012]  # Pg C yr-1: a sink, then a source in the drought year
    summer = r[(r["region"] == "EUR") & r["month"].isin([6, 7, 8])].groupby("year")["NEE"].sum()
    assert summer[2012] - summer[2011] > 0.3


@pytest.mark.parametrize("sink_scale", [truth.DEFAULT_SINK_SCALE, 1.0])
def test_grid_truth_is_the_towers_truth(sink_scale: float) -> None:
    """The same sink scale (the default for both) gives a cell exactly the truth of a tower at its centre."""
    lat, lon, pfts = np.array([51.1, -2.6, 45.0]), np.array([10.5, -60.2, -90.0]), ["DBF", "EBF", "CRO"]
    r_ref, sink = truth.diagnose_r_ref(lat, lon, pfts, seed=0, sink_scale=sink_scale)
    by = gridded.simulate_band(lat, lon, pfts, r_ref, sink, 2012, 0, truth.DEFAULT_DROUGHT, 0)
    weather, fluxes = truth.simulate_truth(
        lat, lon, pfts, "2012-01-01", "2012-12-31", seed=0, sink_scale=sink_scale
    )
    assert np.array_equal(by.nee, fluxes.nee) and np.array_equal(by.gpp, fluxes.gpp)
    assert np.array_equal(by.weather["tair"][1:], weather.tair)
    assert np.array_equal(fluxes.r_ref, r_ref)
    scaled, _ = truth.diagnose_r_ref(lat, lon, pfts, seed=0, sink_scale=0.5 * sink_scale)
    assert (scaled > r_ref).all()  # a smaller sink fraction respires more


def test_night_bias_carried_to_the_tropical_forest(world) -> None:
    """The towers' night-time bias over the world's tropical EBF, from the files, against the process model
    run again in memory for those cells (float64, the model's own day length)."""
    out, summary = world
    table = towers.gridded_night_bias(out, 0.3).set_index("year")
    grid = summary.grid
    lat, lon = grid.cell_lat(), grid.cell_lon()
    cells = np.flatnonzero((grid.pft == "EBF") & (np.abs(lat) <= 23.5))
    assert cells.size >= 5
    r_ref, sink = truth.diagnose_r_ref(lat[cells], lon[cells], ["EBF"] * cells.size, 0)
    by = gridded.simulate_band(lat[cells], lon[cells], ["EBF"] * cells.size, r_ref, sink, 2012, 0, None, 0)
    night = 1.0 - by.weather["daylength"][1:] / 24.0
    want = -(0.3 * by.reco * night * grid.cell_area()[cells]).sum() / 1e15  # Pg C yr-1
    assert table.loc[2012, "night_bias"] == pytest.approx(want, rel=1e-4)
    assert table.loc[2012, "NEE"] == pytest.approx(summary.global_annual.set_index("year").loc[2012, "NEE"])
    assert (table["night_bias"] < -0.5).all()  # a sizeable fraction of the global sink (Pg C yr-1)
    with pytest.raises(InputError, match=r"world_static\.nc"):
        towers.gridded_night_bias(out / "absent")


# ------------------------------------------------------------------------------------------- fire
def test_fire_only_where_and_when_burned(world) -> None:
    out, summary = world
    static = _static(out)
    pft = np.array(["none", *PFT_CLASSES])[static["pft"].values]
    with xr.open_dataset(out / "truth" / "truth_2012.nc") as ds:
        fire = ds["fire"].values
    burned = np.nan_to_num(fire) > 0
    assert burned.any()
    assert set(np.unique(np.broadcast_to(pft, fire.shape)[burned])) <= set(FIRE_PFTS)
    # GFAS layout: latitude descending, longitude 0..360, kg CO2 m-2 s-1, zero where nothing burns
    with xr.open_dataset(out / "gfas" / "cams_gfas_co2fire_2012.nc") as g:
        assert g["co2fire"].attrs["units"] == "kg m**-2 s**-1"
        assert g["latitude"].values[0] > g["latitude"].values[-1] and g["longitude"].values.min() > 0
        co2 = g["co2fire"].sortby("latitude").roll(longitude=45, roll_coords=True).values
    assert np.allclose(co2, np.nan_to_num(fire) * KG_CO2_PER_G_C / 86400.0, rtol=1e-6, atol=1e-15)
    # the fire model: only dry, rainless, warm days of fire-prone cells
    grid = summary.grid
    cells = np.flatnonzero(np.isin(grid.pft, ["SAV", "WSA", "GRA", "EBF"]))[:60]
    lat, lon, pfts = grid.cell_lat()[cells], grid.cell_lon()[cells], list(grid.pft[cells])
    r_ref, sink = truth.diagnose_r_ref(lat, lon, pfts, 0)
    by = gridded.simulate_band(lat, lon, pfts, r_ref, sink, 2012, 0, None, 7)
    w = {k: v[1:] for k, v in by.weather.items()}
    on = by.fire > 0
    assert on.any() and not on[:, np.array(pfts) == "EBF"].any()
    assert (w["wai"][on] < 0.3).all() and (w["precip"][on] < 0.5).all() and (w["tair"][on] > 5).all()


# ------------------------------------------------------------------------------- remote sensing
def test_modis_composites_qc_and_gaps(world) -> None:
    out, _ = world
    with xr.open_dataset(out / "modis" / "MOD13A2.A2012.sim.nc", mask_and_scale=False) as m13:
        assert m13.sizes["time"] == 23 and m13["NDVI"].attrs["scale_factor"] == 0.0001
        rel = m13["pixel_reliability"].values
        modland = m13["VI_Quality"].values & 0b11
        ndvi = m13["NDVI"].values
    land = rel >= 0
    assert ((rel == 3) == (land & (modland == 0b10))).all()  # cloudy composites flagged both ways
    assert 0.01 < (rel[land] == 3).mean() < 0.5 and (rel[land] == 0).mean() > 0.4
    assert (ndvi[~land] == -3000).all() and (ndvi[land] >= -2000).all() and (ndvi[land] <= 10000).all()
    with xr.open_dataset(out / "modis" / "MOD11A2.A2012.sim.nc", mask_and_scale=False) as m11:
        assert m11.sizes["time"] == 46
        lst, qc = m11["LST_Day_1km"].values, m11["QC_Day"].values
    assert ((qc & 0b11) == 0b10).any()  # cloud gaps
    assert (lst[(qc & 0b11) >= 0b10] == 0).all() and (lst[(qc & 0b11) < 0b10] >= 7500).all()
    with (
        xr.open_dataset(out / "modis" / "MOD15A2H.A2012.sim.nc") as m15,
        xr.open_dataset(out / "truth" / "truth_2012.nc") as t,
    ):
        fpar = m15["Fpar_500m"].values[:, ::-1, :]  # to latitude ascending
        good = (m15["FparLai_QC"].values[:, ::-1, :] == 0) & np.isfinite(fpar)
        fapar = t["fAPAR"].values
        starts = (m15["time"].values - np.datetime64("2012-01-01")).astype("timedelta64[D]").astype(int)
    period_max = np.stack([fapar[s : s + 8].max(axis=0) for s in starts])
    assert good.mean() > 0.1
    assert np.corrcoef(fpar[good], period_max[good])[0, 1] > 0.95
    with xr.open_dataset(out / "modis" / "MOD09A1.A2012.sim.nc") as m09:
        for band in ("sur_refl_b02", "sur_refl_b06", "sur_refl_b07"):
            assert m09[band].attrs["modis_sds"] == band
            assert float(m09[band].min()) >= -0.01 and float(m09[band].max()) <= 1.6


# ------------------------------------------------------------------------------------ inversions
def test_inversions_spread_largest_in_the_tropics(world) -> None:
    out, summary = world
    ds = xr.open_dataset(out / "inversions" / FILE_NAME).load()
    flux = ds["land_flux_only_fossil_cement_adjusted"]
    assert flux.attrs["units"] == "PgC/m2/yr" and flux.sizes["ensemble_member"] == 5
    assert flux.dims == ("ensemble_member", "time", "latitude", "longitude")
    per_cell = (flux * ds["cell_area"]).groupby("time.year").mean().values  # Pg C yr-1 per cell
    # region of each 1 degree cell, from the world's mask
    region = summary.regional_monthly.drop_duplicates("region_id").set_index("region")["region_id"]
    from fluxcube.simulate.world import OneDegree

    one = OneDegree(summary.grid)

    def spread(name: str) -> float:
        cells = one.region == region[name]
        totals = per_cell[:, :, cells].sum(axis=2)  # member, year
        return float(totals.std(axis=0).mean() * 1e15 / one.land_area[cells].sum())  # g C m-2 yr-1

    tropical = [spread(r) for r in TROPICAL]
    extratropical = [spread(r) for r in EXTRATROPICAL]
    assert min(tropical) > max(extratropical)
    # the ensemble sees the truth with errors, the global total constrained
    glob = per_cell.sum(axis=(2, 3))  # member, year
    truth_net = summary.global_annual["net_land_flux"].to_numpy()
    assert np.abs(glob.mean(axis=0) - truth_net).max() < 0.5
    assert (np.abs(glob - truth_net) < 1.2).all()
    # misplacement: members differ from each other within regions, not only in their totals
    assert float(np.abs(flux[0] - flux[1]).max()) > 0


def test_inversions_recipe_ingests_the_ensemble(world, tmp_path: Path) -> None:
    from fluxcube.recipes import inversions

    out, summary = world
    summary_run = inversions.run(str(out / "inversions"), str(tmp_path / "store"))
    assert inversions.DATASET in summary_run.published and not summary_run.refused
    ds = Publisher(str(tmp_path / "store")).open(inversions.DATASET).load()
    assert [str(m) for m in ds["member"].values] == member_names(5)
    assert ds.attrs["synthetic"] in (True, "true", "True")
    with netCDF4.Dataset(out / "inversions" / FILE_NAME) as nc:  # expected, decoded independently
        f = np.asarray(nc["land_flux_only_fossil_cement_adjusted"][:], dtype="float64")
        area = np.asarray(nc["cell_area"][:])
    want = (f * area).sum(axis=(2, 3))  # member, month: Pg C yr-1
    assert np.allclose(ds["land_flux_global"].values, want, rtol=1e-6)
    annual = ds["land_flux_global_month"].groupby("time.year").sum().values  # member, year: Pg C
    assert np.abs(annual.mean(axis=0) - summary.global_annual["net_land_flux"].to_numpy()).max() < 0.5
    assert np.allclose(ds["lat_width"].sum("zlat"), 180.0)


# ------------------------------------------------------------------------------------------ GCB
def test_gcb_recipe_ingests_the_table(world, tmp_path: Path) -> None:
    from fluxcube.recipes import gcb

    out, summary = world
    table = pd.read_csv(out / "gcb" / GCB_FILE, encoding="utf-8-sig")
    assert list(table.columns[:8]) == [
        "Year",
        "fossil emissions excluding carbonation",
        "land-use change emissions",
        "atmospheric growth",
        "ocean sink",
        "land sink",
        "cement carbonation sink",
        "budget imbalance",
    ]
    run = gcb.run(str(out / "gcb"), str(tmp_path / "store"))
    assert gcb.DATASET in run.published and not run.refused
    ds = Publisher(str(tmp_path / "store")).open(gcb.DATASET).load()
    assert ds["edition"].values.tolist() == [2022] and ds["year"].values.tolist() == [2011, 2012]
    rls = ds["residual_land_sink"].sel(edition=2022).values
    assert np.allclose(rls, table["land sink"] + table["budget imbalance"], atol=1e-9)
    truth_sink = summary.global_annual["residual_land_sink"].to_numpy()
    assert np.abs(rls - truth_sink).max() < 1.0  # true sink + N(0, 0.25) noise, rounded to 0.01
    emissions = table["fossil emissions excluding carbonation"] + table["land-use change emissions"]
    sinks = table["ocean sink"] + table["land sink"] + table["cement carbonation sink"]
    budget = emissions - (table["atmospheric growth"] + sinks)
    assert np.allclose(budget, table["budget imbalance"], atol=0.03)


# ----------------------------------------------------------------------------------------- ERA5
def test_era5_recipe_ingests_the_drivers(small, tmp_path: Path) -> None:
    from fluxcube.recipes import era5

    base, first, *_ = small
    source = tmp_path / "era5"
    source.mkdir()
    for name in ("era5_2012-07-14", "era5_2012-07-15", "era5_2012-07-16"):
        shutil.copy(base / "a" / "era5" / f"{name}_t2m_d2m_tp_ssrd.nc", source)
    shutil.copy(base / "a" / "era5" / "SYNTHETIC.json", source)
    run = era5.run(str(source), str(tmp_path / "store"))
    assert era5.DATASET in run.published and not run.refused
    assert any("2012-07-16" in w for w in run.warnings)  # tp/ssrd of the last day lack its 24:00 value
    ds = Publisher(str(tmp_path / "store")).open(era5.DATASET).load()
    assert ds.attrs["synthetic"] in (True, "true", "True")
    grid = first.grid
    lat, lon = grid.cell_lat(), grid.cell_lon()
    w = generate_weather(lat, lon, "2012-07-14", "2012-07-16", seed=3)
    got = ds.sel(lat=xr.DataArray(lat + 0.25), lon=xr.DataArray(lon + 0.25))  # a 0.5 deg cell inside
    days = [str(t)[:10] for t in ds["time"].values]
    assert days == ["2012-07-14", "2012-07-15", "2012-07-16"]
    assert np.abs(got["Tair"].values - w.tair).max() < 2e-3  # degC; int16 packing 0.0025 K
    assert np.abs(got["VPD"].values - w.vpd).max() < 2e-2  # hPa
    assert (got["Tmin"].values < got["Tair"].values).all() and (got["Tmax"].values > got["Tair"].values).all()
    assert np.abs(got["P"].values[:2] - w.precip[:2]).max() < 0.05  # mm d-1
    assert np.abs(got["Rg"].values[:2] - w.rg[:2]).max() < 0.05  # W m-2
    assert np.isnan(got["P"].values[2]).all()
    ocean = ds["Tair"].sel(lat=-60.25, lon=-150.25)  # the South Pacific: not simulated
    assert np.isnan(ocean.values).all()


def test_era5_layout(world) -> None:
    out, _ = world
    path = out / "era5" / "era5_2012-02_t2m_d2m_tp_ssrd.nc"
    with netCDF4.Dataset(path) as nc:
        assert nc["time"].units == "hours since 1900-01-01 00:00:00.0" and nc["time"].size == 29 * 24
        assert nc["t2m"].dtype == np.int16 and nc["t2m"].units == "K" and nc["tp"].units == "m"
        assert nc["ssrd"].units == "J m**-2" and nc["t2m"]._FillValue == -32767
        assert nc["latitude"][0] > nc["latitude"][-1] and nc["longitude"][0] >= 0
        assert nc.getncattr("synthetic") == "true"
    assert (out / "era5" / "era5_2013-01-01T00_tp_ssrd.nc").exists()  # closes 31 December 2012


# ------------------------------------------------------------------------- files and determinism
def test_same_seed_same_bytes_and_synthetic_everywhere(small) -> None:
    """Written twice, in this process and on two Dask workers: the same bytes in every file."""
    base, first, second, ran = small
    assert sum(k.startswith("_write_year") for k in ran) == 1  # the year was a task on the cluster
    assert sum(k.startswith("diagnose_r_ref") for k in ran) >= 2  # and R_ref a task per band
    assert set(second.task_peak_rss_mib) == {"year_2012"} and second.task_peak_rss_mib["year_2012"] > 50
    assert first.global_annual.equals(second.global_annual)
    a_files = sorted(p.relative_to(base / "a") for p in (base / "a").rglob("*") if p.is_file())
    b_files = sorted(p.relative_to(base / "b") for p in (base / "b").rglob("*") if p.is_file())
    assert a_files == b_files and len(a_files) > 370  # 366 daily ERA5 files among them
    for rel in a_files:
        assert (base / "a" / rel).read_bytes() == (base / "b" / rel).read_bytes(), rel
    assert {p.relative_to(base / "a") for p in first.files} == set(a_files)
    meta = json.loads((base / "a" / "SYNTHETIC.json").read_text())
    assert meta["synthetic"] is True and meta["seed"] == 3 and meta["components"] == list(COMPONENTS)
    for folder in ("truth", "era5", "modis", "gfas", "inversions", "gcb", "regions"):
        assert json.loads((base / "a" / folder / "SYNTHETIC.json").read_text())["synthetic"] is True
    for rel in a_files:
        if rel.suffix == ".nc":
            with netCDF4.Dataset(base / "a" / rel) as nc:
                assert nc.getncattr("synthetic") == "true" and nc.getncattr("generator_seed") == 3
                assert json.loads(nc.getncattr("generator_parameters"))["grid_deg"] == 10.0


def test_region_mask_in_reccap2_layout(world) -> None:
    out, summary = world
    with xr.open_dataset(out / "regions" / "RECCAP2_land_region_masks_synthetic.nc") as ds:
        assert ds["land_regions"].dtype == np.int8 and ds["lon"].values.min() > 0
        assert ds.attrs["approximate"] == "true" and ds.attrs["region_source"] == "boxes"
        assert ds["land_regions"].attrs["region_name"].startswith("1.USA, 2.Canada")
        regions = ds["land_regions"].roll(lon=45, roll_coords=True).values
    assert np.array_equal(regions, summary.grid.region)
    areas = summary.grid.region_areas()
    assert all(areas[r] > 0 for r in range(1, 19))


def test_naturalearth_regions_when_the_data_is_there(data_dir: Path) -> None:
    grid = WorldGrid.build(10.0, 0, data_dir, regions="naturalearth")
    boxes = WorldGrid.build(10.0, 0, data_dir, regions="boxes")
    assert grid.region_source == "naturalearth"
    agree = (grid.region == boxes.region)[grid.land].mean()
    assert agree > 0.75  # the boxes approximate the countries


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="grid_deg"):
        WorldGrid.build(0.7)
    with pytest.raises(ValueError, match="components"):
        write_world("/nonexistent", grid_deg=10.0, components=("truth", "weather"))
    with pytest.raises(ValueError, match="era5_files"):
        write_world("/nonexistent", grid_deg=10.0, era5_files="hourly")
