"""Regional integrals of the inversions' fire-adjusted flux on a small simulated world (4 degrees,
2011-2012, two time chunks): against the world's source files decoded independently, a slow loop over
the store, and the world's known truth; bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fluxcube.errors import InputError
from fluxcube.publish import Publisher, Release
from fluxcube.recipes import gfas, inversions, regions
from fluxcube.recipes.regions import LAT, LON, REGIONS, cell_area_sphere
from fluxcube.regions import integrals
from fluxcube.regions.integrate import region_weights, regional_integrals
from fluxcube.simulate.inversions_sim import FILE_NAME, TROPICS, member_names, region_sigma
from fluxcube.simulate.world import OneDegree, write_world

G_C_PER_KG_CO2 = 1000.0 * 12.011 / 44.0095
TROPICAL = ("BRA", "NSA", "EQAF", "SEAS")
EXTRATROPICAL = ("USA", "CAN", "EUR", "RUS")
GRID_DEG = 4.0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    """A 4 degree world 2011-2012 (boxes regions), its GFAS and inversion stores, regions and integrals."""
    base = tmp_path_factory.mktemp("integrals")
    out = base / "world"
    summary = write_world(
        out,
        grid_deg=GRID_DEG,
        start_year=2011,
        end_year=2012,
        seed=0,
        regions="boxes",
        components=("fire", "inversions"),
    )
    target = str(base / "store")
    assert gfas.DATASET in gfas.run(str(out / "gfas"), target).published
    assert inversions.GRIDDED_DATASET in inversions.run(str(out / "inversions"), target).published
    assert regions.DATASET in regions.run(str(out / "regions"), target).published  # RECCAP2 layout
    run = integrals.run(target, n_workers=2)
    ds = Publisher(target).open(integrals.DATASET).load()
    return out, summary, target, run, ds


def decode_independently(out: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """From the world's files with netCDF4 and numpy alone: per member, region and month the inversion's
    net flux minus GFAS fire integrated over the 1 degree cells of the region (Pg C month-1); the
    1 degree regions; the months; member names."""
    with netCDF4.Dataset(out / "inversions" / FILE_NAME) as nc:
        flux = np.asarray(nc["land_flux_only_fossil_cement_adjusted"][:], dtype="float64")  # PgC/m2/yr
        area = np.asarray(nc["cell_area"][:], dtype="float64")
        t = nc["time"]
        mids = netCDF4.num2date(t[:], t.units, only_use_cftime_datetimes=False)
        names = ["".join(c.decode() for c in row).strip() for row in nc["ensemble_member_name"][:]]
    months = pd.DatetimeIndex([pd.Timestamp(d.year, d.month, 1) for d in mids])
    fire = []  # per month, g C per 4 degree world cell -> per 1 degree cell on the world grid
    for year in sorted(set(months.year)):
        with netCDF4.Dataset(out / "gfas" / f"cams_gfas_co2fire_{year}.nc") as nc:
            co2 = np.asarray(nc["co2fire"][:], dtype="float64")[:, ::-1, :]  # lat ascending
            days = pd.DatetimeIndex(
                netCDF4.num2date(nc["time"][:], nc["time"].units, only_use_cftime_datetimes=False)
            )
        co2 = np.roll(co2, -co2.shape[2] // 2, axis=2)  # lon -180..180
        g_c_per_m2 = co2 * 86400.0 * G_C_PER_KG_CO2  # g C m-2 d-1
        for m in range(1, 13):
            month_total = g_c_per_m2[days.month == m].sum(axis=0)  # g C m-2 per month
            k = round(GRID_DEG)
            fire.append(np.repeat(np.repeat(month_total, k, axis=0), k, axis=1) * area)  # g C per 1 deg cell
    fire = np.stack(fire)
    days_in_year = np.where(months.is_leap_year, 366.0, 365.0)
    net = (
        flux * area[None, None] * (months.days_in_month.to_numpy() / days_in_year)[None, :, None, None]
    )  # Pg C
    return net - fire[None] / 1e15, area, months.to_numpy(), names


def test_store_layout_units_and_provenance(world) -> None:
    _, _, target, run, ds = world
    assert integrals.DATASET in run.published and not run.refused
    assert dict(ds.sizes) == {"member": 5, "region": 18, "time": 24}
    assert [str(m) for m in ds["member"].values] == member_names(5)
    assert list(ds["region_abbrev"].values[:3]) == ["USA", "CAN", "CAM"]
    assert str(ds["region_name"].sel(region=17).values) == "Southeast Asia"
    for v in ("land_flux_integral", "land_flux_integral_mean", "land_flux_integral_range"):
        assert ds[v].attrs["units"] == "Pg C month-1" and ds[v].attrs["long_name"]
    assert ds["covered_fraction"].attrs["units"] == "1"
    pub = Publisher(target)
    stores = json.loads(ds.attrs["input_stores"])
    assert stores == {
        inversions.GRIDDED_DATASET: pub.current(inversions.GRIDDED_DATASET)["version"],
        regions.DATASET: pub.current(regions.DATASET)["version"],
    }
    assert ds.attrs["synthetic"] == "true"
    sources = json.loads(ds.attrs["source_files"])
    assert any(f"{inversions.GRIDDED_DATASET}/versions/" in u for u in sources)
    assert Path(run.figures[0]).name == integrals.FIGURE and Path(run.figures[0]).stat().st_size > 20_000
    assert integrals.DATASET in (Path(target) / "catalog.yaml").read_text()


def test_integrals_match_the_source_files(world) -> None:
    """Against the inversion and GFAS NetCDF files decoded with netCDF4 and integrated on their own
    grids: checks the unit conversions, the 0.5 degree split, the fire subtraction and the weights."""
    out, summary, _, _, ds = world
    want, _, months, names = decode_independently(out)
    one = OneDegree(summary.grid)
    got = ds["land_flux_integral"]
    assert np.array_equal(ds["time"].values.astype("datetime64[M]"), months.astype("datetime64[M]"))
    for m, name in enumerate(names):
        for r in sorted(REGIONS):
            expected = want[m][:, one.region == r].sum(axis=1)
            np.testing.assert_allclose(got.sel(member=name, region=r).values, expected, rtol=2e-5, atol=2e-7)
    np.testing.assert_allclose(ds["covered_fraction"].values, 1.0, rtol=1e-12)


def test_integrals_match_a_slow_loop_over_the_stores(world) -> None:
    """A plain loop over members, months and regions on the published gridded and regions stores."""
    _, _, target, _, ds = world
    pub = Publisher(target)
    flux = pub.open(inversions.GRIDDED_DATASET)[inversions.ADJUSTED]
    reg = pub.open(regions.DATASET).load()
    frac, area = reg["region_fraction"].values.astype("float64"), reg["cell_area"].values
    for m in (0, 3):
        values = flux.isel(member=m).values.astype("float64")
        for t, stamp in enumerate(pd.DatetimeIndex(ds["time"].values)):
            for k in range(18):
                total = 0.0
                for i in np.flatnonzero(frac[k].any(axis=1)):  # rows with some of the region
                    row = values[t, i] * frac[k, i] * area[i]
                    total += float(np.nansum(row))
                want = total * stamp.days_in_month / 1e15
                assert ds["land_flux_integral"].values[m, k, t] == pytest.approx(want, rel=1e-9, abs=1e-12)
    x = ds["land_flux_integral"].values
    np.testing.assert_allclose(ds["land_flux_integral_mean"].values, x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(
        ds["land_flux_integral_range"].values, x.max(axis=0) - x.min(axis=0), rtol=1e-12
    )
    assert (ds["member_count"].values == 5).all()


def test_ensemble_mean_tracks_the_truth_and_spread_is_tropical(world) -> None:
    """Inversions = truth (NEE + fire) + regional errors; minus GFAS fire, each member's regional integral
    is the true NEE plus its error e = b + a (bias and AR(1) anomaly, each sd s_r Pg C yr-1), less its
    share of the partly removed global error. The ensemble mean of 5 members misses the truth by
    (1/5) sum e: sd at most sqrt(2/5) s_r per year, x days/365 per month."""
    out, summary, target, _, ds = world
    truth = pd.read_csv(out / "truth" / "regional_monthly.csv")
    one = OneDegree(summary.grid)
    sigma = region_sigma(one.region, one.land_area)  # Pg C yr-1 per region number
    days = pd.DatetimeIndex(ds["time"].values).days_in_month.to_numpy()
    z_all = []
    for r in sorted(REGIONS):
        nee = truth[truth["region_id"] == r].sort_values(["year", "month"])["NEE"].to_numpy()
        mean = ds["land_flux_integral_mean"].sel(region=r).values
        sd = np.sqrt(2 / 5) * sigma[r] * days / 365.0
        z = (mean - nee) / sd
        z_all.append(z)
        assert np.abs(z).max() < 4.5, (REGIONS[r][0], z)
    z_all = np.concatenate(z_all)
    assert 0.3 < np.sqrt(np.mean(z_all**2)) < 1.3  # the errors are of the size the simulator draws
    # the fire taken out of each member is the world's true fire of the region (fire is about as large
    # as the inversion errors here, so this is checked on its own)
    pub = Publisher(target)
    gridded = pub.open(inversions.GRIDDED_DATASET).isel(member=2)
    removed = regional_integrals(
        gridded[inversions.LAND_FLUX] - gridded[inversions.ADJUSTED],
        region_weights(pub.open(regions.DATASET)),
    ).compute()
    for r in sorted(REGIONS):
        fire = truth[truth["region_id"] == r].sort_values(["year", "month"])["fire"].to_numpy()
        np.testing.assert_allclose(removed.sel(region=r).values, fire, rtol=1e-4, atol=1e-7)
    # the range per m2 of the region is largest in the tropics
    per_area = (ds["land_flux_integral_range"].mean("time") / ds["region_area"]).to_series()
    by_abbrev = dict(zip(ds["region_abbrev"].values, per_area.values, strict=True))
    assert min(by_abbrev[a] for a in TROPICAL) > max(by_abbrev[a] for a in EXTRATROPICAL)
    assert TROPICS == 23.5


def test_rerun_is_up_to_date(world) -> None:
    _, _, target, run, _ = world
    again = integrals.run(target, n_workers=1)
    assert again.up_to_date == run.published and not again.published


def test_bad_inputs(world, tmp_path: Path) -> None:
    _, _, target, _, _ = world
    # no regions store
    gridded = Path(target) / "datasets" / inversions.GRIDDED_DATASET
    partial = tmp_path / "noregions"
    (partial / "datasets").mkdir(parents=True)
    (partial / "datasets" / inversions.GRIDDED_DATASET).symlink_to(gridded)
    with pytest.raises(InputError, match=r"no published regions_land_0p5deg store .*regions recipe"):
        integrals.run(str(partial))
    assert Publisher(str(partial)).current(integrals.DATASET) is None
    # grids that differ: a regions store on shifted longitudes
    shifted = tmp_path / "shifted"
    (shifted / "datasets").mkdir(parents=True)
    (shifted / "datasets" / inversions.GRIDDED_DATASET).symlink_to(gridded)
    reg = Publisher(target).open(regions.DATASET).load().assign_coords(lon=LON + 0.25)
    release = Release(regions.DATASET, "test", "0", {"x": "0" * 64}, "shifted", synthetic=True)
    Publisher(str(shifted)).publish_dataset(release, reg, {})
    with pytest.raises(InputError, match=r"lon differs from regions_land_0p5deg"):
        integrals.run(str(shifted))
    assert Publisher(str(shifted)).current(integrals.DATASET) is None
    assert LAT.size == 360 and cell_area_sphere().shape == (360, 720)


def test_member_without_months_is_refused() -> None:
    """A member whose flux covers no month of any region is refused, naming it; one lacking a month is
    counted where it has values and warned about."""
    time = pd.date_range("2012-01-01", periods=3, freq="MS")
    integral = xr.DataArray(
        np.arange(2 * 18 * 3, dtype=float).reshape(2, 18, 3),
        dims=("member", "region", "time"),
        coords={"member": ["A", "B"], "region": np.arange(1, 19), "time": time},
    )
    cover = xr.ones_like(integral)
    cover[1, :, 0] = 0.5  # member B misses January
    ds = integrals.ensemble(integral, cover)
    assert integrals.check_members(ds, "store")[0].startswith("member B lacks 1 month(s) (2012-01")
    assert (ds["member_count"].values[:, 0] == 1).all() and np.isnan(
        ds["land_flux_integral_range"].values[:, 0]
    ).all()
    np.testing.assert_allclose(ds["land_flux_integral_mean"].values[:, 0], integral.values[0, :, 0])
    cover[1] = 0.0
    with pytest.raises(InputError, match="store, column land_flux_fire_adjusted: member B has no month"):
        integrals.check_members(integrals.ensemble(integral, cover), "store")


def test_cli_regions_integrals(world, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fluxcube.cli import app

    _, _, target, run, _ = world
    cli = CliRunner()
    result = cli.invoke(app, ["regions", "integrals", "--target", target], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output and run.published[integrals.DATASET] in result.output
    assert f"figure: {run.figures[0]}" in result.output
    empty = cli.invoke(app, ["regions", "integrals", "--target", str(tmp_path)], terminal_width=200)
    assert empty.exit_code == 2 and "no published inversions_gridded_monthly store" in empty.output
