"""Inversion recipe: zonal land fluxes per member and global totals, checked with netCDF4 directly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fluxcube.publish import Publisher
from fluxcube.recipes import inversions

MEMBERS = ["CAMSv20r1", "CT2019B", "CTE2020", "s99oc_v2020"]


@pytest.fixture(scope="module")
def inv_dir(data_dir: Path) -> Path:
    return data_dir / "grids" / "inversions"


@pytest.fixture(scope="module")
def store(inv_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    target = str(tmp_path_factory.mktemp("inversions") / "store")
    summary = inversions.run(str(inv_dir), target)
    return target, summary, Publisher(target).open(inversions.DATASET).load()


def test_members_and_global_totals(store, inv_dir: Path) -> None:
    import netCDF4

    _, summary, ds = store
    assert inversions.DATASET in summary.published and not summary.refused
    assert [str(m) for m in ds["member"].values] == MEMBERS
    for member, spacing in [("CT2019B", 1.0), ("s99oc_v2020", 2.0), ("CTE2020", 1.0)]:
        with netCDF4.Dataset(next(inv_dir.rglob(f"{member}/fluxes_za_ts_monthly.nc"))) as nc:
            lnd = np.asarray(nc["SFCO2_LND"][:], dtype="float64")  # (time, lat), Pg C/yr/deg
            lat = np.asarray(nc["lat"][:])
            t = netCDF4.num2date(nc["time"][:], nc["time"].units, getattr(nc["time"], "calendar", "standard"))
        k = next(i for i, d in enumerate(t) if (d.year, d.month) == (2012, 7))
        want_global = lnd[k].sum() * spacing  # README: sum over latitude x latitude spacing
        got = ds.sel(member=member, time="2012-07-01")
        assert float(got["land_flux_global"]) == pytest.approx(want_global, rel=1e-5)
        days = 31 / 366  # July 2012 in a leap year
        assert float(got["land_flux_global_month"]) == pytest.approx(want_global * days, rel=1e-5)
        n = lat.size
        assert np.allclose(got["land_flux_zonal"].values[:n], lnd[k], rtol=1e-6, equal_nan=True)
        assert np.allclose(got["lat"].values[:n], lat)
    assert ds["land_flux_global"].attrs["units"] == "Pg C yr-1"
    assert ds["land_flux_global_month"].attrs["units"] == "Pg C month-1"


def test_2010_2015_land_is_a_sink_of_a_few_pg(store) -> None:
    _, _, ds = store
    mean = ds["land_flux_global"].sel(time=slice("2010-01-01", "2015-12-01")).mean("time")
    for m in MEMBERS:
        assert -4.0 < float(mean.sel(member=m)) < -1.0, m  # positive = source: a sink of 1-4 Pg C/yr
    annual = ds["land_flux_global_month"].sel(time=slice("2010-01-01", "2015-12-01")).sum("time") / 6
    assert np.allclose(annual, mean, atol=0.15)


def test_cams_pole_bands_and_widths(store) -> None:
    _, _, ds = store
    cams = ds.sel(member="CAMSv20r1")
    w = cams["lat_width"].values
    n = int(np.isfinite(w).sum())
    assert n == 96 and np.nansum(w) == pytest.approx(180.0)
    assert w[0] == pytest.approx(w[1] / 2) and w[n - 1] == pytest.approx(w[1] / 2)  # points at the poles


def test_bad_inputs_and_rerun(store, inv_dir: Path, tmp_path: Path) -> None:
    target, summary, _ = store
    again = inversions.run(str(inv_dir), target)
    assert again.up_to_date == summary.published
    bad = tmp_path / "bad"
    (bad / "TRUNC").mkdir(parents=True)
    data = next(inv_dir.rglob("CTE2020/fluxes_za_ts_monthly.nc")).read_bytes()
    (bad / "TRUNC" / "fluxes_za_ts_monthly.nc").write_bytes(data[: len(data) // 3])
    (bad / "UNITS").mkdir()
    import xarray as xr

    with xr.open_dataset(next(inv_dir.rglob("s99oc_v2020/fluxes_za_ts_monthly.nc"))) as ds:
        ds = ds.load()
    ds["SFCO2_LND"].attrs["units"] = "mol m-2 s-1"
    ds.to_netcdf(bad / "UNITS" / "fluxes_za_ts_monthly.nc")
    (bad / "NOLAND").mkdir()
    ds.drop_vars("SFCO2_LND").to_netcdf(bad / "NOLAND" / "fluxes_za_ts_monthly.nc")
    out = inversions.run(str(bad), str(tmp_path / "store"))
    errors = {Path(r["file"]).parent.name: r["error"] for r in out.refused}
    assert "cannot open as NetCDF" in errors["TRUNC"]
    assert "units 'mol m-2 s-1'" in errors["UNITS"]
    assert "no variable SFCO2_LND" in errors["NOLAND"]
    assert not out.published and Publisher(str(tmp_path / "store")).current(inversions.DATASET) is None
    shutil.rmtree(bad)


# ------------------------------------------------------------------ the gridded 0.5 degree store (simulated)
G_C_PER_KG_CO2 = 1000.0 * 12.011 / 44.0095  # kg CO2 -> g C


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory):
    """A 4 degree simulated world for 2011 (GCB2022-layout inversions, GFAS files), its GFAS store and
    the inversion stores published from it."""
    from fluxcube.recipes import gfas
    from fluxcube.simulate.world import write_world

    base = tmp_path_factory.mktemp("sim")
    out = base / "world"
    write_world(
        out,
        grid_deg=4.0,
        start_year=2011,
        end_year=2011,
        seed=0,
        regions="boxes",
        components=("fire", "inversions"),
        n_inversions=3,
    )
    target = str(base / "store")
    assert gfas.DATASET in gfas.run(str(out / "gfas"), target).published
    summary = inversions.run(str(out / "inversions"), target)
    return out, target, summary, Publisher(target).open(inversions.GRIDDED_DATASET)


def _nc_inversions(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    import netCDF4

    with netCDF4.Dataset(path) as nc:
        flux = np.asarray(nc["land_flux_only_fossil_cement_adjusted"][:], dtype="float64")  # PgC/m2/yr
        area = np.asarray(nc["cell_area"][:], dtype="float64")
        lat = np.asarray(nc["latitude"][:], dtype="float64")
        names = ["".join(c.decode() for c in row).strip() for row in nc["ensemble_member_name"][:]]
    return flux, area, lat, names


def _nc_fire_month(path: Path, month: int) -> np.ndarray:
    """GFAS monthly mean fire (g C m-2 d-1) on the file's grid, lat ascending, lon -180..180, by hand."""
    import netCDF4

    with netCDF4.Dataset(path) as nc:
        co2 = np.asarray(nc["co2fire"][:], dtype="float64")[:, ::-1, :]
        t = netCDF4.num2date(nc["time"][:], nc["time"].units, only_use_cftime_datetimes=False)
    keep = np.array([d.month == month for d in t])
    daily = co2[keep] * 86400.0 * G_C_PER_KG_CO2
    return np.roll(daily.mean(axis=0), -co2.shape[2] // 2, axis=1)


def test_gridded_values_against_netcdf4_and_by_hand(sim) -> None:
    out, _, summary, ds = sim
    assert inversions.GRIDDED_DATASET in summary.published and inversions.DATASET in summary.published
    assert not summary.warnings, summary.warnings
    flux, _, lat1, names = _nc_inversions(
        out / "inversions" / "GCP2022_inversions_1x1_version1_2_synthetic.nc"
    )
    assert [str(m) for m in ds["member"].values] == names
    assert ds.sizes == {"member": 3, "time": 12, "lat": 360, "lon": 720}
    assert ds["land_flux"].attrs["units"] == ds["land_flux_fire_adjusted"].attrs["units"] == "g C m-2 d-1"
    assert str(ds["time"].values[6])[:10] == "2011-07-01"
    # by hand: 1 PgC/m2/yr in 2011 (365 days) = 1e15 / 365 g C m-2 d-1; the 1 degree cell (i, j) with
    # centre (lat1[i], -179.5 + j) holds the 0.5 degree cells 2i, 2i+1 x 2j, 2j+1
    rng = np.random.default_rng(0)
    land = np.argwhere(np.abs(flux[0, 6]) > 0)
    for i, j in land[rng.choice(len(land), 25, replace=False)]:
        for m in range(3):
            want = flux[m, 6, i, j] * 1e15 / 365.0
            got = ds["land_flux"].isel(
                member=m, time=6, lat=slice(2 * i, 2 * i + 2), lon=slice(2 * j, 2 * j + 2)
            )
            assert float(ds["lat"][2 * i]) == lat1[i] - 0.25
            np.testing.assert_allclose(got.values, want, rtol=1e-6)
    # fire-adjusted = land flux - the month's mean GFAS fire of the cell, decoded independently
    fire = _nc_fire_month(out / "gfas" / "cams_gfas_co2fire_2011.nc", 7)  # 4 degree world cells
    fire05 = np.repeat(np.repeat(fire, 8, axis=0), 8, axis=1)
    land05 = ds["land_flux"].isel(member=1, time=6).values.astype("float64")
    got = ds["land_flux_fire_adjusted"].isel(member=1, time=6).values
    np.testing.assert_allclose(got, land05 - fire05, rtol=1e-5, atol=1e-6)
    assert fire05.max() > 0.5  # g C m-2 d-1: some cells burn, so the subtraction is seen
    assert (
        json.loads(ds.attrs["input_stores"])["gfas_fire_daily_0p5deg"]
        == ds.attrs["source_files"].split("gfas_fire_daily_0p5deg/versions/")[1][:16]
    )
    assert ds.attrs["synthetic"] == "true"


def test_gridded_area_integrals_are_conserved(sim) -> None:
    from fluxcube.recipes.regions import cell_area_sphere

    out, _, _, ds = sim
    flux, area, _, _ = _nc_inversions(out / "inversions" / "GCP2022_inversions_1x1_version1_2_synthetic.nc")
    src = (flux * area[None, None]).sum(axis=(2, 3)) * 1e15 / 365.0  # g C d-1 per member-month
    grid = (ds["land_flux"].values.astype("float64") * cell_area_sphere()[None, None]).sum(axis=(2, 3))
    np.testing.assert_allclose(grid, src, rtol=1e-6)
    assert ds.attrs["source_cell_area_max_relative_difference"] < 1e-12  # the file's areas are the sphere's
    assert 0 < ds.attrs["area_integral_max_relative_difference"] < 1e-6  # float32 rounding only


def test_gridded_store_needs_a_gfas_store(sim, tmp_path: Path) -> None:
    """Without a GFAS store in the catalog only the zonal store is published, and a warning says why."""
    out, _, _, _ = sim
    target = str(tmp_path / "store")
    run = inversions.run(str(out / "inversions"), target)
    assert inversions.DATASET in run.published and inversions.GRIDDED_DATASET not in run.published
    assert any("no published gfas_fire_daily_0p5deg store" in w for w in run.warnings)
    assert Publisher(target).current(inversions.GRIDDED_DATASET) is None


@pytest.mark.slow
def test_gridded_partial_gfas_and_other_cell_areas(sim, tmp_path: Path) -> None:
    """Days missing from the GFAS store make their months NaN with a warning; cell areas that differ from
    the sphere's show up as the measured integral difference."""
    import xarray as xr

    from fluxcube.recipes import gfas

    out, _, _, full = sim
    src = tmp_path / "src"
    (src / "gfas").mkdir(parents=True)
    (src / "inv").mkdir()
    with xr.open_dataset(out / "gfas" / "cams_gfas_co2fire_2011.nc") as g:
        days = g["time"].values
        g.sel(time=(days < np.datetime64("2011-03-10")) | (days > np.datetime64("2011-03-20"))).to_netcdf(
            src / "gfas" / "gfas_2011.nc"
        )
    name = "GCP2022_inversions_1x1_version1_2_synthetic.nc"
    with xr.open_dataset(out / "inversions" / name) as inv:
        inv = inv.load()
    inv["cell_area"] = inv["cell_area"] * 1.003
    inv.to_netcdf(src / "inv" / name)
    for d in ("gfas", "inv"):
        (src / d / "SYNTHETIC.json").write_text('{"synthetic": true}')
    target = str(tmp_path / "store")
    assert gfas.DATASET in gfas.run(str(src / "gfas"), target).published
    second = inversions.run(str(src / "inv"), target)
    assert inversions.GRIDDED_DATASET in second.published
    assert any("does not fully cover 1 month(s) (2011-03)" in w for w in second.warnings)
    ds = Publisher(target).open(inversions.GRIDDED_DATASET)
    assert json.loads(ds.attrs["fire_adjustment_missing_months"]) == ["2011-03"]
    assert ds["gfas_days"].values.tolist()[1:4] == [28, 20, 30]
    assert np.isnan(ds["land_flux_fire_adjusted"].isel(time=2).values).all()
    np.testing.assert_array_equal(ds["land_flux"].values, full["land_flux"].values)  # density unchanged
    np.testing.assert_array_equal(
        ds["land_flux_fire_adjusted"].isel(time=3).values, full["land_flux_fire_adjusted"].isel(time=3).values
    )
    assert ds.attrs["source_cell_area_max_relative_difference"] == pytest.approx(0.003, rel=1e-6)
    assert 0.001 < ds.attrs["area_integral_max_relative_difference"] <= 0.003 / 1.003 + 1e-9


def test_gridded_validation_catches_changed_or_missing_chunks(sim, tmp_path: Path) -> None:
    """Validation compares every chunk object's size and CRC-32 with those taken at write time (no
    decoding) and decodes one member-block per variable: a changed or deleted chunk is caught."""
    import shutil

    import xarray as xr
    import zarr

    from fluxcube.recipes.gridcube import count_sum
    from fluxcube.storage import location

    _, target, _, ds = sim
    pub = Publisher(target)
    src = pub.store_location(inversions.GRIDDED_DATASET, pub.current(inversions.GRIDDED_DATASET)["version"])
    copy = tmp_path / "copy.zarr"
    shutil.copytree(src.path, copy)
    loc = location(str(copy))
    group = zarr.open_group(loc.zarr_store(), mode="r", zarr_format=3)
    names = inversions.GRIDDED_ATTRS
    members = {
        str(name): {
            "member": k,
            **{v: count_sum(np.asarray(ds[v].isel(member=k, time=slice(0, 12)).values)) for v in names},
            "chunks": {v: inversions.chunk_checksums(group[v], k, 0) for v in names},
        }
        for k, name in enumerate(ds["member"].values)
    }
    checks = [{"block": [0, 12], "members": members}]
    opened = xr.open_zarr(loc.zarr_store(read_only=True), consolidated=False, zarr_format=3, chunks=None)
    inversions.validate_gridded(opened, checks, loc)
    stored = sorted(f for f in (copy / "land_flux").rglob("*") if f.is_file() and f.name != "zarr.json")
    raw = bytearray(stored[-1].read_bytes())
    raw[-1] ^= 0xFF
    stored[-1].write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="chunk object"):
        inversions.validate_gridded(opened, checks, loc)
    stored[-1].write_bytes(bytes(raw[:-1]) + bytes([raw[-1] ^ 0xFF]))  # back as it was
    inversions.validate_gridded(opened, checks, loc)
    stored[0].unlink()
    with pytest.raises(ValueError, match="chunk object"):
        inversions.validate_gridded(opened, checks, loc)
