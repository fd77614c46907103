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
