"""GFAS recipe: fire_c checked against the NetCDF files read with netCDF4 and regridded in plain numpy."""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
import pytest

from fluxcube.publish import Publisher
from fluxcube.recipes import gfas
from fluxcube.recipes.regions import EARTH_RADIUS, LAT_EDGES, LON_EDGES, cell_area_sphere
from fluxcube.simulate.world import WorldSummary, write_world

G_C_PER_KG_CO2_PER_S = 86400.0 * 1000.0 * 12.011 / 44.0095  # kg CO2 m-2 s-1 -> g C m-2 d-1


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> WorldSummary:
    tmp = tmp_path_factory.mktemp("world")
    return write_world(
        tmp / "world",
        grid_deg=4,
        start_year=2011,
        end_year=2011,
        components=("truth", "fire"),
        data_dir=tmp / "none",
    )


def reference(path: Path, every: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(days, fire_c on the 0.5 degree grid for every ``every``-th day, its sum over all days) computed
    independently: netCDF4, unit conversion and numpy overlap weights."""
    with netCDF4.Dataset(path) as nc:
        co2 = np.ma.filled(nc["co2fire"][:].astype("float64"), np.nan)
        lat = np.round(np.asarray(nc["latitude"][:], dtype="float64"), 4)  # float32 in the file
        lon = np.round(np.asarray(nc["longitude"][:], dtype="float64"), 4)
        t = nc["time"]
        days = netCDF4.num2date(t[:], t.units, only_use_cftime_datetimes=False)
    days = np.array([np.datetime64(d.strftime("%Y-%m-%d")) for d in days])
    fire = co2 * G_C_PER_KG_CO2_PER_S
    dlat, dlon = abs(lat[1] - lat[0]), abs(lon[1] - lon[0])
    lon = (lon + 180.0) % 360.0 - 180.0
    s = np.sin(np.deg2rad(LAT_EDGES))
    lo, hi = (
        np.sin(np.deg2rad(np.clip(lat - dlat / 2, -90, 90))),
        np.sin(np.deg2rad(np.clip(lat + dlat / 2, -90, 90))),
    )
    wlat = np.clip(np.minimum(s[1:, None], hi) - np.maximum(s[:-1, None], lo), 0, None) / np.diff(s)[:, None]
    wlon = (
        np.clip(
            np.minimum(LON_EDGES[1:, None], lon + dlon / 2)
            - np.maximum(LON_EDGES[:-1, None], lon - dlon / 2),
            0,
            None,
        )
        / np.diff(LON_EDGES)[:, None]
    )
    covered = np.outer(np.isclose(wlat.sum(1), 1), np.isclose(wlon.sum(1), 1))
    out = np.where(covered[None], wlat @ fire[::every] @ wlon.T, np.nan)  # (t, lat, lon)
    return days, out, np.where(covered, wlat @ fire.sum(axis=0) @ wlon.T, np.nan)


def write_gfas(
    path: Path, lat, lon, values, units="kg m**-2 s**-1", name="co2fire", start="2011-03-01"
) -> Path:
    """A small file in the CAMS GFAS NetCDF layout."""
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("longitude", len(lon))
        nc.createDimension("latitude", len(lat))
        nc.createDimension("time", None)
        nc.createVariable("longitude", "f4", ("longitude",))[:] = lon
        nc.createVariable("latitude", "f4", ("latitude",))[:] = lat
        t = nc.createVariable("time", "i4", ("time",))
        t.units = "hours since 1900-01-01 00:00:00.0"
        t0 = (np.datetime64(start) - np.datetime64("1900-01-01")) // np.timedelta64(1, "h")
        t[:] = t0 + 24 * np.arange(values.shape[0])
        v = nc.createVariable(name, "f4", ("time", "latitude", "longitude"))
        v.units = units
        v[:] = values
    return path


def test_world_fire_matches_source_and_truth(world: WorldSummary, tmp_path: Path) -> None:
    src = world.out_dir / "gfas"
    target = str(tmp_path / "store")
    summary = gfas.run(str(src), target)
    assert gfas.DATASET in summary.published and not summary.refused, summary
    ds = Publisher(target).open(gfas.DATASET)
    assert ds["fire_c"].attrs["units"] == "g C m-2 d-1"
    assert ds.attrs["synthetic"] == "true" and "cams_gfas_co2fire_2011.nc" in ds.attrs["source_files"]
    assert ds["fire_c"].encoding["chunks"] == (32, 90, 90)
    days, want, want_sum = reference(src / "cams_gfas_co2fire_2011.nc", every=5)
    assert days.size == 365 and np.array_equal(ds["time"].values.astype("datetime64[D]"), days)
    fire = ds["fire_c"].values  # float32
    got = fire[::5].astype("float64")  # every 5th day compared cell by cell (memory, time)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-9)
    # fire only where the source burns: zero elsewhere, and the same cells
    assert np.array_equal(got > 0, want > 0) and np.all(got[want == 0] == 0) and (got > 0).sum() > 100
    annual = fire.sum(axis=0, dtype="float64")  # g C m-2 yr-1, all days
    np.testing.assert_allclose(annual, want_sum, rtol=1e-5, atol=1e-6)
    assert np.array_equal(annual > 0, want_sum > 0)
    # global annual total (Pg C) against the world's true fire integral
    total = float((annual * cell_area_sphere()).sum()) / 1e15
    truth = float(world.global_annual.set_index("year").loc[2011, "fire"])
    assert total == pytest.approx(truth, rel=0.01)
    again = gfas.run(str(src), target)
    assert again.up_to_date == summary.published and not again.published


def test_fine_grid_is_area_weighted(tmp_path: Path) -> None:
    """A 0.1 degree regional file in the real product's layout (latitude descending, longitude 0..360)."""
    lat = np.round(np.arange(9.95, -10.0, -0.1), 2)
    lon = np.round(np.arange(0.05, 20.0, 0.1), 2)
    rng = np.random.default_rng(1)
    values = rng.gamma(0.5, 1e-8, (3, lat.size, lon.size)) * (rng.random((3, lat.size, lon.size)) < 0.3)
    (tmp_path / "src").mkdir()
    path = write_gfas(tmp_path / "src" / "gfas_fine.nc", lat, lon, values)
    summary = gfas.run(str(tmp_path / "src"), str(tmp_path / "store"))
    assert gfas.DATASET in summary.published, summary
    got = Publisher(str(tmp_path / "store")).open(gfas.DATASET)["fire_c"].values.astype("float64")
    _, want, _ = reference(path)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-9)
    assert np.isfinite(got).sum() == 3 * 40 * 40  # the 20 x 20 degree box, nothing outside
    area = cell_area_sphere()
    src_area = (
        np.array(
            [  # source cell areas (sphere) for the same total, computed the plain way
                np.diff(np.sin(np.deg2rad([la - 0.05, la + 0.05])))[0] for la in lat
            ]
        )[:, None]
        * np.deg2rad(0.1)
        * EARTH_RADIUS**2
    )
    want_total = (values.astype("float32") * G_C_PER_KG_CO2_PER_S * src_area[None]).sum()
    assert np.nansum(got * area[None]) == pytest.approx(want_total, rel=1e-5)


def test_bad_input_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    lat, lon = np.arange(9.75, -10.0, -0.5), np.arange(0.25, 10.0, 0.5)
    values = np.full((2, lat.size, lon.size), 1e-9)
    write_gfas(src / "good.nc", lat, lon, values)
    write_gfas(src / "units.nc", lat, lon, values, units="kg m**-2 d**-1", start="2011-04-01")
    write_gfas(src / "nofire.nc", lat, lon, values, name="cofire", start="2011-05-01")
    data = write_gfas(src / "cut.nc", lat, lon, values, start="2011-06-01").read_bytes()
    (src / "cut.nc").write_bytes(data[: len(data) // 2])
    summary = gfas.run(str(src), str(tmp_path / "store"))
    errors = {Path(r["file"]).name: r["error"] for r in summary.refused}
    assert sorted(errors) == ["cut.nc", "nofire.nc", "units.nc"]
    assert "units 'kg m**-2 d**-1'" in errors["units.nc"]
    assert "no variable 'co2fire'" in errors["nofire.nc"]
    assert "truncated" in errors["cut.nc"]
    assert not summary.published and Publisher(str(tmp_path / "store")).current(gfas.DATASET) is None
