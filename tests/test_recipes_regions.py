"""Regions recipe: approximate 18-region land mask and cell areas on the 0.5 degree grid."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fluxcube.errors import InputError
from fluxcube.publish import Publisher
from fluxcube.recipes import regions


@pytest.fixture(scope="module")
def mask(data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    target = str(tmp_path_factory.mktemp("regions") / "store")
    summary = regions.run(str(data_dir / "grids" / "regions"), target)
    return target, summary, Publisher(target).open(regions.DATASET).load()


def test_grid_and_areas() -> None:
    assert regions.LAT[[0, -1]].tolist() == [-89.75, 89.75] and regions.LAT.size == 360
    assert regions.LON[[0, -1]].tolist() == [-179.75, 179.75] and regions.LON.size == 720
    sphere = regions.cell_area_sphere()
    assert sphere.sum() == pytest.approx(4 * np.pi * regions.EARTH_RADIUS**2, rel=1e-12)
    ell = regions.cell_area_wgs84()
    assert ell.sum() == pytest.approx(5.10065621724e14, rel=1e-9)  # WGS84 ellipsoid surface
    # a 0.5 degree cell at the equator: about 55.6 km x 55.3 km
    assert sphere[180, 0] == pytest.approx(3.0906e9, rel=1e-3)
    assert ell[180, 0] < sphere[180, 0] and ell[0, 0] > sphere[0, 0]  # oblate: less near the equator


def test_land_and_region_areas(mask) -> None:
    _, summary, ds = mask
    assert summary.published == {regions.DATASET: summary.published[regions.DATASET]} and not summary.refused
    land = float((ds["land_fraction"] * ds["cell_area"]).sum())
    assert 1.45e14 < land < 1.50e14
    majority = float(ds["cell_area"].where(ds["land_fraction"] >= 0.5).sum())
    assert 1.45e14 < majority < 1.50e14
    areas = regions.region_areas(ds)
    assert len(areas) == 18
    assert areas["Brazil"] == pytest.approx(8.5e12, rel=0.03)
    assert areas["USA"] == pytest.approx(9.5e12, rel=0.06)  # with Alaska
    assert areas["Russia"] == pytest.approx(1.7e13, rel=0.05)
    assert areas["China"] == pytest.approx(9.4e12, rel=0.06)  # with Taiwan
    assert areas["Canada"] == pytest.approx(9.98e12, rel=0.06)
    assert 2e11 < areas["Korea and Japan"] < 8e11
    assert 1.25e14 < sum(areas.values()) < 1.40e14  # no Antarctica, no Greenland
    # majority regions where expected: Manaus, Paris, Moscow, Beijing, Sydney
    for (lat, lon), name in {
        (-3.25, -60.25): "Brazil",
        (48.75, 2.25): "Europe",
        (55.75, 37.75): "Russia",
        (39.75, 116.25): "China",
        (-33.75, 150.75): "Oceania",
        (4.25, -53.25): "Northern South America",  # French Guiana, part of France
    }.items():
        rid = int(ds["region_id"].sel(lat=lat, lon=lon))
        assert rid and str(ds["region_name"].sel(region=rid).values) == name
    assert int(ds["region_id"].sel(lat=-80.25, lon=0.25)) == 0  # Antarctica: land, no region
    assert float(ds["land_fraction"].sel(lat=-80.25, lon=0.25)) == 1.0


def test_store_metadata_and_rerun(mask, data_dir: Path) -> None:
    target, summary, ds = mask
    assert ds.attrs["approximate"] == "true"
    table = json.loads(ds.attrs["iso3_to_region"])
    assert table["BRA"] == 6 and table["GRL"] == 0
    assert ds["cell_area"].attrs["units"] == "m2" and "6371007.2" in ds["cell_area"].attrs["long_name"]
    assert Path(target, "catalog.yaml").read_text().count(regions.DATASET) >= 1
    again = regions.run(str(data_dir / "grids" / "regions"), target)
    assert again.up_to_date == summary.published


def test_bad_shapefile(tmp_path: Path) -> None:
    (tmp_path / "broken.shp").write_bytes(b"not a shapefile")
    with pytest.raises(InputError, match=r"broken\.shp: cannot read as a shapefile"):
        regions.build_isolated(str(tmp_path / "broken.shp"))  # in a fresh process, as run() does
    summary = regions.run(str(tmp_path / "broken.shp"), str(tmp_path / "store"))
    assert summary.refused and "broken.shp" in summary.refused[0]["file"] and not summary.published
    assert Publisher(str(tmp_path / "store")).current(regions.DATASET) is None


# ------------------------------------------------------------------- RECCAP2-layout mask files
def _write_mask(
    path: Path,
    res: float,
    mask: np.ndarray,
    land: np.ndarray | None,
    lon0: float = 0.0,
    descending: bool = False,
) -> Path:
    """A RECCAP2-layout mask file: int8 land_regions (lat, lon), lat ascending (or descending, with the rows
    of ``mask`` and ``land`` flipped), lon from ``lon0``."""
    import netCDF4

    lat = np.arange(-90 + res / 2, 90, res)
    if descending:
        lat, mask, land = lat[::-1], mask[::-1], None if land is None else land[::-1]
    lon = np.arange(lon0 + res / 2, lon0 + 360, res)
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("lat", lat.size)
        nc.createDimension("lon", lon.size)
        nc.createVariable("lat", "f8", ("lat",))[:] = lat
        nc.createVariable("lon", "f8", ("lon",))[:] = lon
        nc.createVariable("land_regions", "i1", ("lat", "lon"))[:] = mask
        if land is not None:
            nc.createVariable("landmask", "i1", ("lat", "lon"))[:] = land
    return path


@pytest.mark.parametrize("grid_deg", [4.0, 2.0])
def test_world_mask_file_gives_the_worlds_regions(tmp_path: Path, grid_deg: float) -> None:
    """The simulated world's RECCAP2-layout mask: every 0.5 degree cell in a world cell gets its region."""
    import netCDF4

    from fluxcube.simulate.world import write_world

    world = tmp_path / "world"
    write_world(world, grid_deg=grid_deg, start_year=2011, end_year=2011, components=["gcb"], regions="boxes")
    target = str(tmp_path / "store")
    summary = regions.run(str(world / "regions"), target)
    assert list(summary.published) == [regions.DATASET] and not summary.refused
    ds = Publisher(target).open(regions.DATASET).load()
    with netCDF4.Dataset(world / "regions" / "RECCAP2_land_region_masks_synthetic.nc") as nc:
        src = np.asarray(nc["land_regions"][:])
        src_lon = np.asarray(nc["lon"][:])
    k = round(grid_deg / 0.5)
    # an independent lookup: the world cell holding each 0.5 degree cell centre
    i = np.floor((ds.lat.values + 90) / grid_deg).astype(int)
    j = np.floor(np.mod(ds.lon.values, 360) / grid_deg).astype(int)
    assert np.allclose(src_lon, np.arange(grid_deg / 2, 360, grid_deg))
    expected = src[i[:, None], j[None, :]]
    np.testing.assert_array_equal(ds["region_id"].values, expected)
    frac = ds["region_fraction"].values
    assert set(np.unique(frac)) <= {0.0, 1.0}
    for r in (6, 7, 11):
        np.testing.assert_array_equal(frac[r - 1] == 1, expected == r)
    areas = regions.region_areas(ds)
    world_area = regions.cell_area_sphere().reshape(ds.lat.size // k, k, ds.lon.size // k, k)
    brazil = float(world_area.sum(axis=(1, 3))[np.roll(src, -src.shape[1] // 2, axis=1) == 6].sum())
    assert areas["Brazil"] == pytest.approx(brazil, rel=1e-6)
    assert ds.attrs["approximate"] == "true" and ds.attrs["source_mask"].endswith("_synthetic.nc")
    assert regions.run(str(world / "regions"), target).up_to_date == summary.published  # idempotent


def test_fine_mask_file_is_averaged(tmp_path: Path) -> None:
    """A 0.25 degree mask: fractions are the share of the four sub-cells; lon -180..180, lat descending."""
    res = 0.25
    lat_n, lon_n = round(180 / res), round(360 / res)
    mask = np.zeros((lat_n, lon_n), dtype="i1")
    land = np.zeros_like(mask)
    big = (slice(round(70 / res), round(110 / res)), slice(round(160 / res), round(220 / res)))
    land[big] = 1
    mask[big] = 9  # Equatorial Africa in a 40 x 60 degree box, lat -20..20, lon -20..40
    mask[round(70 / res), round(160 / res)] = 0  # one sub-cell left land in no region
    land[: round(30 / res)] = 1  # Antarctica-like land in no region
    land[round(30 / res) :, : round(1 / res)] = 1
    mask[round(100 / res) : round(110 / res), round(160 / res) : round(161 / res)] = 7
    _write_mask(tmp_path / "fine.nc", res, mask, land, lon0=-180.0, descending=True)
    ds = regions.read_mask(str(tmp_path / "fine.nc"))
    frac = ds["region_fraction"].sel(region=9)
    assert float(frac.sel(lat=0.25, lon=10.25)) == 1.0
    assert float(frac.sel(lat=-19.75, lon=-19.75)) == 0.75  # one of four sub-cells in no region
    assert float(ds["region_fraction"].sel(region=7, lat=15.25, lon=-19.75)) == 1.0
    assert float(ds["land_fraction"].sel(lat=-70.25, lon=100.25)) == 1.0
    assert int(ds["region_id"].sel(lat=-70.25, lon=100.25)) == 0
    assert int(ds["region_id"].sel(lat=-19.75, lon=-19.75)) == 9
    area = float((ds["region_fraction"].sel(region=9) * ds["cell_area"]).sum())
    exact = regions.EARTH_RADIUS**2 * np.deg2rad(60) * 2 * np.sin(np.deg2rad(20))
    sub = exact / (160 * 240)  # roughly one 0.25 degree sub-cell at 20 S
    assert area == pytest.approx(exact - sub * 1 - exact * 10 * 1 / (40 * 60), rel=2e-3)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("values", r"values \[25\] outside the region numbers 0\.\.18"),
        ("grid", r"0\.75 degrees are not a whole multiple"),
        ("span", r"coordinate 'lat': 40 cells of 4\.0 degrees do not span 180"),
    ],
)
def test_bad_mask_file(tmp_path: Path, change: str, message: str) -> None:
    res = {"values": 4.0, "grid": 0.75, "span": 4.0}[change]
    mask = np.zeros((round(180 / res), round(360 / res)), dtype="i1")
    if change == "values":
        mask[10, 10] = 25
    if change == "span":
        mask = mask[5:]
    path = tmp_path / "RECCAP2_land.nc"
    if change == "span":
        import netCDF4

        with netCDF4.Dataset(path, "w") as nc:
            nc.createDimension("lat", mask.shape[0])
            nc.createDimension("lon", mask.shape[1])
            nc.createVariable("lat", "f8", ("lat",))[:] = np.arange(-70 + 2, 90, 4.0)
            nc.createVariable("lon", "f8", ("lon",))[:] = np.arange(2, 360, 4.0)
            nc.createVariable("land_regions", "i1", ("lat", "lon"))[:] = mask
    else:
        _write_mask(path, res, mask, None)
    with pytest.raises(InputError, match=message) as err:
        regions.read_mask(str(path))
    assert err.value.file == str(path)
    summary = regions.run(str(tmp_path), str(tmp_path / "store"))
    assert summary.refused and summary.refused[0]["file"] == str(path) and not summary.published
    assert Publisher(str(tmp_path / "store")).current(regions.DATASET) is None
