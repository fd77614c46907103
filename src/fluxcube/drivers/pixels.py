"""All drivers for one set of 0.5 degree cells, streamed over time.

The inputs are (time, lat, lon) stores on the full 0.5 degree grid (``era5_daily_0p5deg``,
``modis_8day_0p5deg``). :class:`CellReader` reads a block of days at a set of cells by reading only
the stored chunks that hold them (one read of a (days, chunk rows, chunk cols) window per chunk
column touched), so a scattered set of tower cells and a dense block of land pixels cost what they
touch. :func:`cell_drivers` computes, for one set of cells: the mean seasonal cycles and their metrics
from all MODIS composites (accumulated block by block), then walks the ERA5 days in blocks, advancing
the soil-water bucket (after its spin-up), and hands each block of daily drivers to a callback. Memory:
one block of days times the cells, plus the (366, cells) seasonal cycles: bounded whatever the grid
or the record length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from fluxcube.drivers import seasonal, water
from fluxcube.drivers.table import MODIS_INDICES
from fluxcube.recipes.regions import LAT, LON, RESOLUTION
from fluxcube.storage import location

ERA5_NEEDS = {"Tair": "degC", "P": "mm d-1", "Rg": "W m-2"}
MODIS_NEEDS = {name: units for name, (units, _) in MODIS_INDICES.items()}
BLOCK_DAYS = 32  # days per block when walking ERA5 (its time chunk)


def cell_index(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column (0-based) of the 0.5 degree cell containing each point (degrees north / east)."""
    row = np.clip(np.floor((np.asarray(lat, dtype="float64") + 90.0) / RESOLUTION), 0, LAT.size - 1)
    lon_ = (np.asarray(lon, dtype="float64") + 180.0) % 360.0
    col = np.floor(lon_ / RESOLUTION) % LON.size
    return row.astype("int64"), col.astype("int64")


def open_store(url: str) -> xr.Dataset:
    """Open a published store at ``url`` without Dask (lazy backend arrays; reads fetch only chunks)."""
    return xr.open_zarr(location(url).zarr_store(read_only=True), consolidated=False, chunks=None)


class CellReader:
    """Reads (days, cells) blocks of (time, lat, lon) variables at fixed cells."""

    def __init__(self, ds: xr.Dataset, rows: np.ndarray, cols: np.ndarray, chunks: tuple[int, int]):
        """``rows``/``cols``: the cells' grid indices; ``chunks``: the store's (lat, lon) chunk shape."""
        self.ds = ds
        self.n = rows.size
        cy, cx = chunks
        tiles: dict[tuple[int, int], list[int]] = {}
        for i, key in enumerate(zip((rows // cy).tolist(), (cols // cx).tolist(), strict=True)):
            tiles.setdefault(key, []).append(i)
        self.tiles = []
        for (ty, tx), members in sorted(tiles.items()):
            idx = np.array(members)
            self.tiles.append(
                (
                    slice(ty * cy, (ty + 1) * cy),
                    slice(tx * cx, (tx + 1) * cx),
                    idx,
                    rows[idx] - ty * cy,
                    cols[idx] - tx * cx,
                )
            )

    def read(self, name: str, start: int, stop: int) -> np.ndarray:
        """Variable ``name`` (store units) on days ``start:stop`` at the cells, float64 (days, cells)."""
        out = np.full((stop - start, self.n), np.nan)
        var = self.ds[name].variable
        for ys, xs, idx, ly, lx in self.tiles:
            block = np.asarray(var[start:stop, ys, xs].values, dtype="float64")
            out[:, idx] = block[:, ly, lx]
        return out


def space_chunks(ds: xr.Dataset, name: str) -> tuple[int, int]:
    """The (lat, lon) chunk shape of a (time, lat, lon) variable as stored."""
    enc = ds[name].encoding
    chunks = enc.get("preferred_chunks") or {}
    if chunks:
        return int(chunks["lat"]), int(chunks["lon"])
    shape = enc.get("chunks") or ds[name].shape
    return int(shape[1]), int(shape[2])


@dataclass
class Sources:
    """The URLs of the input stores' published versions (what a Dask worker opens)."""

    era5: str
    modis: str


def seasonal_cycles(
    modis: xr.Dataset, rows: np.ndarray, cols: np.ndarray, block: int = BLOCK_DAYS
) -> dict[str, np.ndarray]:
    """Daily mean seasonal cycles (366, cells) of every MODIS index at the cells (index units)."""
    reader = CellReader(modis, rows, cols, space_chunks(modis, next(iter(MODIS_NEEDS))))
    dates = modis["time"].values
    acc = {name: seasonal.SlotAccumulator(rows.size) for name in MODIS_NEEDS}
    for t0 in range(0, dates.size, block):
        t1 = min(dates.size, t0 + block)
        for name, a in acc.items():
            a.add(reader.read(name, t0, t1), dates[t0:t1])
    return {name: seasonal.fill_periodic(a.means()) for name, a in acc.items()}


def daily_blocks(
    era5: xr.Dataset,
    rows: np.ndarray,
    cols: np.ndarray,
    block: int = BLOCK_DAYS,
    spinup_years: int = water.SPINUP_YEARS,
) -> Iterator[tuple[int, int, dict[str, np.ndarray]]]:
    """Yield ``(start, stop, {"Tair": degC, "Rg": W m-2, "WAI": 1})`` (days, cells) blocks over the
    whole ERA5 record, the bucket spun up on its first year."""
    reader = CellReader(era5, rows, cols, space_chunks(era5, "Tair"))
    n = era5.sizes["time"]
    bucket = water.Bucket(rows.size)
    first = min(n, 365)
    spin = {v: reader.read(v, 0, first) for v in ("Tair", "Rg", "P")}
    bucket.spin_up(spin["P"], water.priestley_taylor(spin["Tair"], spin["Rg"]), years=spinup_years)
    for t0 in range(0, n, block):
        t1 = min(n, t0 + block)
        if t0 == 0 and t1 <= first:  # the first block lies in the spin-up year: read once
            got = {v: a[:t1] for v, a in spin.items()}
        else:
            got = {v: reader.read(v, t0, t1) for v in ("Tair", "Rg", "P")}
        spin = {}
        w, _ = bucket.run(got["P"], water.priestley_taylor(got["Tair"], got["Rg"]))
        yield t0, t1, {"Tair": got["Tair"], "Rg": got["Rg"], "WAI": bucket.wai(w)}


def cell_drivers(
    sources: Sources,
    rows: np.ndarray,
    cols: np.ndarray,
    emit: Callable[[int, int, dict[str, np.ndarray]], Any],
    block: int = BLOCK_DAYS,
) -> dict[str, np.ndarray]:
    """Compute every driver at the cells: ``emit(start, stop, daily)`` per block of ERA5 days; return
    the daily mean seasonal cycles (366, cells) of the MODIS indices, keyed ``<index>_msc``."""
    msc = seasonal_cycles(open_store(sources.modis), rows, cols)
    for t0, t1, daily in daily_blocks(open_store(sources.era5), rows, cols, block):
        emit(t0, t1, daily)
    return {f"{name}_msc": v for name, v in msc.items()}
