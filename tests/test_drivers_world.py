"""End to end on a simulated world: the world's native ERA5 and MODIS files through the ERA5 and MODIS
recipes, then the driver stage on the published stores (slow: a year of daily ERA5 files)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fluxcube.drivers import build, synthetic
from fluxcube.drivers.seasonal import SLOT_CENTRES
from fluxcube.publish import Publisher
from fluxcube.recipes import era5, modis
from fluxcube.recipes.regions import LAT, LON

GRID_DEG = 4.0


@pytest.mark.slow
def test_world_to_driver_stores(tmp_path) -> None:
    from fluxcube.simulate.world import write_world

    world = write_world(
        tmp_path / "world",
        grid_deg=GRID_DEG,
        start_year=2012,
        end_year=2012,
        components=("era5", "modis"),
        era5_files="daily",
        regions="boxes",
        data_dir=tmp_path / "none",
    )
    target = str(tmp_path / "store")
    assert era5.run(str(world.out_dir / "era5"), target).published
    assert modis.run(str(world.out_dir / "modis"), target).published
    pub = Publisher(target)
    k = round(GRID_DEG / 0.5)
    land = np.repeat(np.repeat(world.grid.land, k, axis=0), k, axis=1)
    assert land.shape == (LAT.size, LON.size)
    synthetic.write_regions(pub, land)
    synthetic.write_targets(
        pub, {"DE-Tha": (50.96, 13.57), "US-Ha1": (42.54, -72.17)}, "2012-01-01", "2012-12-31"
    )
    summary = build.run(target, n_workers=2)
    assert set(summary.published) == {build.CUBE_DATASET, build.SITES_DATASET}
    cube = pub.open(build.CUBE_DATASET)
    assert cube.attrs["synthetic"] == "true" and cube.sizes["pixel"] == int(land.sum())
    e5 = pub.open(era5.DATASET)
    md = pub.open("modis_8day_0p5deg")
    rng = np.random.default_rng(1)
    for p in rng.choice(cube.sizes["pixel"], 4, replace=False):
        px = cube.isel(pixel=int(p)).load()
        cell = {"lat": float(px["lat"]), "lon": float(px["lon"])}
        assert np.array_equal(px["Tair"].values, e5["Tair"].sel(cell).values, equal_nan=True)
        ndvi = md["NDVI"].sel(cell).values.astype(float)
        doy = pd.DatetimeIndex(md["time"].values).day_of_year.to_numpy()
        means = pd.Series(ndvi).groupby((doy - 1) // 8).mean().reindex(range(46)).to_numpy()
        ok = np.isfinite(means)
        if ok.sum() >= 4:
            want = np.interp(np.arange(1, 367), SLOT_CENTRES[ok], means[ok], period=365.0)
            assert np.allclose(px["NDVI_msc"].values, want, atol=1e-5)
    wai = cube["WAI"].values
    assert np.nanmin(wai) >= 0 and np.nanmax(wai) <= 1 and np.isfinite(wai).mean() > 0.99
    sites = pub.open(build.SITES_DATASET)
    assert np.isfinite(sites["Tair"].values).all() and np.isfinite(sites["NDVI_msc"].values).all()
