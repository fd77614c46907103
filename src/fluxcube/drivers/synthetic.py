"""Synthetic input stores of the driver stage's exact input schemas (for tests and benchmarks).

Each store is written on the full 0.5 degree grid with :mod:`fluxcube.recipes.gridcube` (chunks
(32, 90, 90); chunks away from ``cells`` are never stored) and published with ``synthetic: true``:

- ``regions_land_0p5deg``: region_id, land_fraction (1 on the given cells, else 0), cell_area (sphere);
- ``era5_daily_0p5deg``: Tair (degC) = 12 - 0.4 |lat| + 12 sin(2 pi (doy - 105) / 365) sign(lat) + noise,
  P (mm d-1) = rain on about 30 % of days (exponential, mean 6 mm), Rg (W m-2) = (0.45..0.75) Rpot;
- ``modis_8day_0p5deg``: the seven indices on 8-day composite start dates, a seasonal sine per index
  plus noise, NaN where "cloudy" (``cloud_fraction`` of the composites at random);
- ``sites_processed_dd``: (site, time) NEE targets with site lat/lon.

Seeded: the same arguments give the same stores.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from fluxcube.drivers.radiation import daily_potential_radiation
from fluxcube.drivers.table import MODIS_INDICES
from fluxcube.publish import Publisher, Release
from fluxcube.recipes import gridcube
from fluxcube.recipes.regions import LAT, LON, cell_area_sphere, grid_coords

#: Seasonal sine per MODIS index: (mean, amplitude) in the index's units.
MODIS_SEASONS = {
    "EVI": (0.35, 0.2),
    "fAPAR": (0.45, 0.3),
    "LST_day": (290.0, 12.0),
    "LST_night": (278.0, 9.0),
    "MIR": (0.12, -0.04),
    "NDVI": (0.55, 0.25),
    "NDWI": (0.15, 0.12),
}


def _release(name: str, seed: int, params: dict[str, Any]) -> Release:
    key = json.dumps({"name": name, "seed": seed, **params}, sort_keys=True, default=str)
    return Release(
        name=name,
        recipe="synthetic-drivers-inputs",
        recipe_version="1",
        inputs={f"synthetic:{name}": hashlib.sha256(key.encode()).hexdigest()},  # the generator's key
        description=f"synthetic {name} for the drivers stage",
        params={"seed": seed, **params},
        synthetic=True,
    )


def land_cells(kind: str = "global") -> np.ndarray:
    """(lat, lon) boolean land: ``"global"`` from global-land-mask north of 60 S (as the simulated world)."""
    from global_land_mask import globe

    if kind != "global":
        raise ValueError(f"land {kind!r}: expected 'global'")
    la, lo = np.meshgrid(LAT, LON, indexing="ij")
    return globe.is_land(la, lo) & (la > -60.0)


def write_regions(pub: Publisher, land: np.ndarray, seed: int = 0) -> str:
    """Publish a regions store with land on ``land`` (lat, lon) cells; return its version."""
    from fluxcube.simulate.landmask import box_regions

    la, lo = np.meshgrid(LAT, LON, indexing="ij")
    rid = np.where(land, np.maximum(box_regions(la, lo), 1), 0).astype("int8")
    ds = xr.Dataset(
        {
            "region_id": (("lat", "lon"), rid, {"long_name": "land region of the cell (0 = none)"}),
            "land_fraction": (
                ("lat", "lon"),
                land.astype("float32"),
                {"units": "1", "long_name": "land fraction"},
            ),
            "cell_area": (("lat", "lon"), cell_area_sphere(), {"units": "m2", "long_name": "cell area"}),
        },
        coords=grid_coords(),
    )
    rel = _release("regions_land_0p5deg", seed, {"cells": int(land.sum())})
    pub.publish_dataset(rel, ds, {"title": "synthetic land mask"})
    return rel.version


def _tiles(land: np.ndarray) -> list[tuple[slice, slice]]:
    """The (lat, lon) chunks of the grid stores that hold at least one ``land`` cell."""
    c = gridcube.SPACE_CHUNK
    has = land.reshape(land.shape[0] // c, c, land.shape[1] // c, c).any(axis=(1, 3))
    return [
        (slice(i * c, (i + 1) * c), slice(j * c, (j + 1) * c)) for i, j in zip(*np.nonzero(has), strict=True)
    ]


def _publish_grid(
    pub: Publisher,
    rel: Release,
    dates: np.ndarray,
    products: dict[str, dict[str, str]],
    block_fn: Any,
    land: np.ndarray,
) -> str:
    tiles = _tiles(land)

    def write(store: Any, provenance: dict[str, Any]) -> None:
        gridcube.write_template(
            store,
            list(dates),
            products,
            {**provenance, "title": rel.description},
            {"long_name": "time", "standard_name": "time"},
        )
        for t0 in range(0, dates.size, gridcube.TIME_CHUNK):
            t1 = min(dates.size, t0 + gridcube.TIME_CHUNK)
            for ys, xs in tiles:
                gridcube.write_block(store, block_fn(t0, t1, ys, xs), slice(t0, t1), ys, xs)

    pub.publish(rel, write)
    return rel.version


def write_era5(pub: Publisher, land: np.ndarray, start: str, end: str, seed: int = 0) -> str:
    """Publish a daily Tair (degC), P (mm d-1), Rg (W m-2) store, values on the chunks holding ``land``."""
    from fluxcube.recipes.era5 import PRODUCTS

    dates = pd.date_range(start, end, freq="D").to_numpy().astype("datetime64[D]")
    rng_seed = seed

    def block(t0: int, t1: int, ys: slice, xs: slice) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([rng_seed, t0, ys.start, xs.start])
        lat = LAT[ys][None, :, None]
        doy = pd.DatetimeIndex(dates[t0:t1]).day_of_year.to_numpy()[:, None, None]
        shape = (t1 - t0, lat.shape[1], LON[xs].size)
        tair = 12 - 0.4 * np.abs(lat) + 12 * np.sin(2 * np.pi * (doy - 105) / 365) * np.sign(lat)
        tair = tair + rng.normal(0, 2.5, shape)
        rain = rng.random(shape) < 0.3
        precip = np.where(rain, rng.exponential(6.0, shape), 0.0)
        rpot = daily_potential_radiation(LAT[ys], doy[:, 0, 0])[:, :, None]
        rg = rpot * rng.uniform(0.45, 0.75, shape)
        return {k: v.astype("float32") for k, v in (("Tair", tair), ("P", precip), ("Rg", rg))}

    products = {k: PRODUCTS[k] for k in ("Tair", "P", "Rg")}
    rel = _release("era5_daily_0p5deg", seed, {"start": start, "end": end, "cells": int(land.sum())})
    return _publish_grid(pub, rel, dates, products, block, land)


def write_modis(
    pub: Publisher,
    land: np.ndarray,
    start_year: int,
    end_year: int,
    cloud_fraction: float = 0.3,
    seed: int = 0,
) -> str:
    """Publish an 8-day composite store of the seven MODIS indices (NaN where cloudy)."""
    dates = np.array(
        [
            np.datetime64(f"{y}-01-01") + np.timedelta64(8 * k, "D")
            for y in range(start_year, end_year + 1)
            for k in range(46)
        ],
        dtype="datetime64[D]",
    )

    def block(t0: int, t1: int, ys: slice, xs: slice) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([seed, 1, t0, ys.start, xs.start])
        lat = LAT[ys][None, :, None]
        doy = pd.DatetimeIndex(dates[t0:t1]).day_of_year.to_numpy()[:, None, None]
        shape = (t1 - t0, lat.shape[1], LON[xs].size)
        season = np.sin(2 * np.pi * (doy - 110) / 365) * np.sign(lat)
        cloudy = rng.random(shape) < cloud_fraction
        out = {}
        for name, (mean, amp) in MODIS_SEASONS.items():
            noise = rng.normal(0, 0.03 * abs(amp), shape)
            out[name] = np.where(cloudy, np.nan, mean + amp * season + noise).astype("float32")
        return out

    products = {k: {"units": u, "long_name": n} for k, (u, n) in MODIS_INDICES.items()}
    rel = _release("modis_8day_0p5deg", seed, {"years": [start_year, end_year], "cloud": cloud_fraction})
    return _publish_grid(pub, rel, dates, products, block, land)


def write_targets(
    pub: Publisher, sites: dict[str, tuple[float, float]], start: str, end: str, seed: int = 0
) -> str:
    """Publish a ``sites_processed_dd``-like (site, time) store of daily NEE (g C m-2 d-1)."""
    time = pd.date_range(start, end, freq="D").to_numpy()
    names = sorted(sites)
    rng = np.random.default_rng(seed)
    ds = xr.Dataset(
        {
            "NEE": (
                ("site", "time"),
                rng.normal(-1, 2, (len(names), time.size)),
                {"units": "g m-2 d-1", "long_name": "net ecosystem exchange of CO2 as carbon"},
            )
        },
        coords={
            "site": ("site", np.array(names, dtype=object), {"long_name": "FLUXNET site id"}),
            "time": ("time", time, {"long_name": "time", "comment": "local days"}),
            "lat": ("site", np.array([sites[s][0] for s in names]), {"units": "degrees_north"}),
            "lon": ("site", np.array([sites[s][1] for s in names]), {"units": "degrees_east"}),
        },
    )
    rel = _release("sites_processed_dd", seed, {"sites": sites, "start": start, "end": end})
    pub.publish_dataset(rel, ds, {"title": "synthetic daily NEE targets"})
    return rel.version
