"""Inversion recipe: zonal land fluxes per member and global totals, checked with netCDF4 directly."""

from __future__ import annotations

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
