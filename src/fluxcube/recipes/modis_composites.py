"""MODIS 8-day composites on a regular lat/lon grid (AppEEARS-like NetCDF) -> ``modis_8day_0p5deg``.

Inputs: one NetCDF file per product and period, as an AppEEARS *area* request in the geographic
projection writes them (NetCDF-4 output) and as the simulated world writes them
(``modis/<PRODUCT>.A<YYYY>.sim.nc``, :mod:`fluxcube.simulate.modis`). The product comes from the file
name's first part (``MOD09A1``, ``MOD15A2H``, ``MOD11A2``, also ``MYD``/``MCD`` twins; AppEEARS names
its files ``<PRODUCT>.<collection>_<res>_aid0001.nc``) or, failing that, from the global attribute
``product``. Every variable is (``time``, ``lat``/``latitude``, ``lon``/``longitude``) in that order,
stored as MODIS stores it: integers with CF ``scale_factor``/``add_offset`` (physical = stored x
scale_factor + add_offset) and ``_FillValue``; ``time`` = first day of each composite (CF units, e.g.
``days since 2000-01-01``) at 00:00 UTC, on 8-day starts (day of year 1, 9, 17, ...).

======================= ========================================== =====================================
store variable          from (layer: scale, fill)                  kept where
======================= ========================================== =====================================
``NDVI`` ``EVI``        MOD09A1 ``sur_refl_b01/b02/b03/b06/b07``   ``sur_refl_qc_500m``: MODLAND bits 0-1
``NDWI`` ``MIR`` (1)    (0.0001, fill -28672), formulas of          00 or 01, band quality 0000 for bands 1,
                        :data:`fluxcube.recipes.modis.GRID_PRODUCTS` 2, 3, 6, 7; ``sur_refl_state_500m``:
                        (computed per source cell, then averaged)   cloud bits 0-1 00 or 11, shadow bit 2 = 0,
                                                                   cirrus bits 8-9 != 11, internal cloud
                                                                   bit 10 = 0; every band 0..1 (EVI also:
                                                                   denominator > 0 and -0.2..1)
``fAPAR`` (1)           MOD15A2H ``Fpar_500m`` (0.01, fill 255)    ``FparLai_QC``: MODLAND bit 0 = 0, dead
                                                                   detector bit 2 = 0, cloud bits 3-4 00 or
                                                                   11, SCF_QC bits 5-7 000 or 001 (main
                                                                   algorithm; 010/011 backup and 100 not
                                                                   produced are out); stored 0..100
``LST_day``             MOD11A2 ``LST_Day_1km``,                   ``QC_Day`` / ``QC_Night``: mandatory QA
``LST_night`` (K)       ``LST_Night_1km`` (0.02 K, fill 0)         bits 0-1 00 (good) or 01 (other quality;
                                                                   10 not produced due to cloud and 11 not
                                                                   produced are out) and LST error bits 6-7
                                                                   00 (<= 1 K) or 01 (<= 2 K)
======================= ========================================== =====================================

Refused with an :class:`~fluxcube.errors.InputError` naming the file and the layer (and then nothing is
published): a file that does not open (truncated), a missing layer, other dimensions, a value layer that
is not packed integers or has another ``scale_factor``/``add_offset``/``_FillValue`` than the product's,
other units (reflectance and fAPAR unitless, LST in K), times not on 00 UTC or not on an 8-day composite
start, an irregular grid, a grid coarser than 0.5 degree whose cells do not nest in the 0.5 degree grid,
a layer that cannot be read while processing. ``MOD13A2`` files are not ingested (NDVI/EVI come from
MOD09A1 reflectances, like NDWI and MIR); the tests use them as an independent check.

Grid: the full global 0.5 degree grid of :mod:`fluxcube.recipes.regions`. A coarser source grid (the
simulated worlds: 2-4 degrees) is refined: each 0.5 degree cell takes the value of the source cell it lies
in; a finer one (AppEEARS at 500 m / 1 km) is averaged conservatively (area-weighted, exact spherical
overlaps) over the valid source cells, where they cover at least :data:`MIN_VALID` of the 0.5 degree
cell. Both are :class:`fluxcube.recipes.era5.Regridder`. Indices are computed per source cell, then
averaged (the mean of pixel indices, as for the MOD09GA tiles).

Store ``modis_8day_0p5deg`` (time, lat, lon), float32, chunks (32, 90, 90) of
:mod:`fluxcube.recipes.gridcube` (32 composites, about 8.5 months, per time chunk); ``time`` = composite
start date. Beam pipeline 1 scans every file (metadata only); pipeline 2 processes one time chunk per
element, streamed by chunk row of the store (90 rows of 0.5 degree): per product, one read of the source
rows of each run of consecutive composites of a file, QA bits tested on whole arrays (masks, lookup
tables), values unpacked in float64 only where the QA passed, regridded, and the chunk row of every
variable written as whole Zarr chunks (memory: 32 composites x 90 x 720 x 7 variables, 58 MB, plus one
product's layers for those rows, whatever the number of files). Validated (per-block counts and sums,
physical ranges) and published with :class:`~fluxcube.publish.Publisher`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np

from fluxcube.catalog import describe
from fluxcube.errors import InputError
from fluxcube.publish import Publisher, Release, iter_files
from fluxcube.recipes import gridcube, modis
from fluxcube.recipes.era5 import Regridder, data_extent, regridder
from fluxcube.recipes.fluxnet_pipeline import RunSummary
from fluxcube.recipes.gfas import source_grid, window
from fluxcube.recipes.regions import LAT_EDGES
from fluxcube.recipes.transforms import inputs_are_synthetic, read_records, report
from fluxcube.storage import Location

DATASET = "modis_8day_0p5deg"
RECIPE_VERSION = "1.0.0"
PERIOD_DAYS = 8
#: fraction of a 0.5 degree cell that valid finer source cells must cover for a value
MIN_VALID = 0.5
FILE_PRODUCT = re.compile(r"^(?P<product>M[OYC]D(?:09A1|15A2H|11A2|13A2))(?:[._]|$)")
NOT_INGESTED = {"13A2": "NDVI/EVI come from MOD09A1 reflectances (MOD13A2 is not ingested)"}
UNITLESS = ("1", "", "none", "reflectance", "unitless", "dimensionless", "Percent", "percent", "%")


@dataclass(frozen=True)
class Layer:
    """A layer of a product file: packed value (``scale`` set) or bit field (``scale`` None)."""

    scale: float | None = None
    fill: int | None = None
    units: tuple[str, ...] = ()
    valid: tuple[int, int] | None = None  # stored values


def _refl() -> Layer:
    return Layer(0.0001, -28672, UNITLESS, (0, 10000))


LAYERS: dict[str, dict[str, Layer]] = {
    "09A1": {
        **{f"sur_refl_b0{b}": _refl() for b in modis.BANDS_USED},
        "sur_refl_qc_500m": Layer(),
        "sur_refl_state_500m": Layer(),
    },
    "15A2H": {"Fpar_500m": Layer(0.01, 255, UNITLESS, (0, 100)), "FparLai_QC": Layer()},
    "11A2": {
        "LST_Day_1km": Layer(0.02, 0, ("K", "Kelvin", "kelvin"), (7500, 65535)),
        "LST_Night_1km": Layer(0.02, 0, ("K", "Kelvin", "kelvin"), (7500, 65535)),
        "QC_Day": Layer(),
        "QC_Night": Layer(),
    },
}
PRODUCES = {"09A1": ("NDVI", "EVI", "NDWI", "MIR"), "15A2H": ("fAPAR",), "11A2": ("LST_day", "LST_night")}


def _from_grid_products(name: str) -> dict[str, str]:
    attrs = {k: v for k, v in modis.GRID_PRODUCTS[name].items()}
    attrs["source"] = "MOD09A1 8-day surface reflectance (QA-masked), " + attrs.pop("formula")
    attrs["cell_methods"] = "time: maximum (8-day composite) area: mean"
    return attrs


VARIABLES: dict[str, dict[str, str]] = {
    **{n: _from_grid_products(n) for n in modis.INDICES},
    "fAPAR": {
        "units": "1",
        "long_name": "fraction of absorbed photosynthetically active radiation (MOD15A2H Fpar_500m)",
        "standard_name": modis.FAPAR_STANDARD_NAME,
        "source": "MOD15A2H Fpar_500m x 0.01, main-algorithm retrievals only",
        "cell_methods": "time: maximum (8-day composite) area: mean",
    },
    "LST_day": {
        "units": "K",
        "long_name": "daytime land surface temperature (MOD11A2 LST_Day_1km, 8-day mean of clear days)",
        "standard_name": "surface_temperature",
        "source": "MOD11A2 LST_Day_1km x 0.02 K",
        "cell_methods": "time: mean (8-day composite of clear-sky observations) area: mean",
    },
    "LST_night": {
        "units": "K",
        "long_name": "night land surface temperature (MOD11A2 LST_Night_1km, 8-day mean of clear nights)",
        "standard_name": "surface_temperature",
        "source": "MOD11A2 LST_Night_1km x 0.02 K",
        "cell_methods": "time: mean (8-day composite of clear-sky observations) area: mean",
    },
}
RANGES = {
    "NDVI": (-1.0, 1.0),
    "EVI": (-0.2, 1.0),
    "NDWI": (-1.0, 1.0),
    "MIR": (0.0, 1.0),
    "fAPAR": (0.0, 1.0),
    "LST_day": (150.0, 360.0),
    "LST_night": (150.0, 360.0),
}
QA_ATTR = (
    "MOD09A1 sur_refl_qc_500m MODLAND 00/01 and band quality 0000 (bands 1,2,3,6,7), sur_refl_state_500m "
    "cloud 00/11, no shadow, cirrus not high, no internal cloud, reflectance 0..1; MOD15A2H FparLai_QC "
    "MODLAND 0, no dead detector, cloud 00/11, SCF_QC 000/001; MOD11A2 QC mandatory 00/01, LST error <= 2 K"
)


def is_composite_file(path: str) -> bool:
    """Whether ``path`` is a NetCDF file named like a MODIS composite product this module knows."""
    name = Path(path).name
    return name.lower().endswith((".nc", ".nc4")) and FILE_PRODUCT.match(name) is not None


def _product_key(path: str, nc: netCDF4.Dataset) -> tuple[str, str]:
    """(full product name, key of :data:`LAYERS` such as ``09A1``) from the file name or attribute."""
    m = FILE_PRODUCT.match(Path(path).name) or FILE_PRODUCT.match(str(getattr(nc, "product", "")))
    if not m:
        raise InputError(path, "product unknown: expected a file name or 'product' attribute MOD09A1, ...")
    product = m["product"]
    return product, product[3:]


def _open(path: str) -> netCDF4.Dataset:
    try:
        return netCDF4.Dataset(path)
    except Exception as err:  # OSError, RuntimeError: truncated, corrupt or not NetCDF
        raise InputError(path, f"cannot open as NetCDF (truncated or corrupt?): {err}") from err


def _axis(nc: netCDF4.Dataset, names: tuple[str, ...]) -> str | None:
    return next((n for n in names if n in nc.variables), None)


def _check_layer(path: str, name: str, var: Any, spec: Layer, dims: tuple[str, str, str]) -> None:
    """Dimensions, type, packing, fill and units of one layer against the product's definition."""
    if tuple(var.dimensions) != dims:
        raise InputError(path, f"dimensions {var.dimensions}, expected {dims}", column=name)
    if var.dtype.kind not in "iu":
        raise InputError(path, f"type {var.dtype}: expected MODIS integers (packed values)", column=name)
    attrs = {a: var.getncattr(a) for a in var.ncattrs()}
    if spec.scale is None:
        if "scale_factor" in attrs or "add_offset" in attrs:
            raise InputError(path, "a QA bit field with scale_factor/add_offset", column=name)
        return
    scale, offset = attrs.get("scale_factor"), attrs.get("add_offset", 0.0)
    if scale is None or not np.isclose(float(scale), spec.scale, rtol=1e-6) or float(offset) != 0.0:
        raise InputError(
            path,
            f"scale_factor {scale} / add_offset {offset}: expected {spec.scale} and 0 "
            "(physical = stored x scale_factor + add_offset)",
            column=name,
        )
    fill = attrs.get("_FillValue")
    if fill is None or int(fill) != spec.fill:
        raise InputError(path, f"_FillValue {fill}, expected {spec.fill}", column=name)
    units = str(attrs.get("units", "")).strip()
    if units not in spec.units:
        raise InputError(path, f"units {units!r}, expected one of {list(spec.units)}", column=name)


def scan(path: str) -> dict[str, Any]:
    """Check one composite file's metadata (no data values): layers, packing, units, grid and dates.

    Returns the product, the axis names, the grid (regular, float64) and the composite start dates.
    Bad input: :class:`InputError` naming the file and the layer.
    """
    nc = _open(path)
    try:
        product, key = _product_key(path, nc)
        if key in NOT_INGESTED:
            return {"path": path, "product": product, "key": key, "skip": NOT_INGESTED[key]}
        tname = _axis(nc, ("time",))
        lat_name, lon_name = _axis(nc, ("lat", "latitude")), _axis(nc, ("lon", "longitude"))
        if tname is None or lat_name is None or lon_name is None:
            raise InputError(path, "no time, lat/latitude and lon/longitude coordinates")
        dims = (tname, lat_name, lon_name)
        for name, spec in LAYERS[key].items():
            if name not in nc.variables:
                raise InputError(path, f"{product} layer {name!r} missing", column=name)
            _check_layer(path, name, nc[name], spec, dims)
        t = nc[tname]
        try:
            times = netCDF4.num2date(
                t[:], t.units, getattr(t, "calendar", "standard"), only_use_cftime_datetimes=False
            )
        except Exception as err:
            raise InputError(path, f"cannot decode times: {err}", column=tname) from err
        days = []
        for x in np.atleast_1d(times):
            d = dt.datetime(x.year, x.month, x.day, x.hour, x.minute, x.second)
            if d.time() != dt.time(0) or (d.timetuple().tm_yday - 1) % PERIOD_DAYS:
                raise InputError(
                    path, f"time {d}: expected 00 UTC of an 8-day composite start (day of year 1, 9, ...)"
                )
            days.append(d.date().isoformat())
        if len(set(days)) != len(days):
            raise InputError(path, "a composite date occurs twice", column=tname)
        lat = np.asarray(nc[lat_name][:], dtype="float64")
        lon = np.asarray(nc[lon_name][:], dtype="float64")
    except InputError:
        raise
    except Exception as err:  # HDF5 errors on a damaged file: name the file
        raise InputError(path, f"cannot read the metadata: {type(err).__name__}: {err}") from err
    finally:
        nc.close()
    lat, lon = source_grid(path, product, lat, lon)
    report("read")
    return {
        "path": path,
        "product": product,
        "key": key,
        "time_dim": tname,
        "days": days,
        "lat": [round(float(x), 6) for x in lat],
        "lon": [round(float(x), 6) for x in lon],
    }


@dataclass
class Plan:
    """Composite dates of the store, where each product's composite is (date -> [file, index])."""

    dates: list[str]
    where: dict[str, dict[str, list[Any]]]  # product key -> date -> [path, index]
    infos: dict[str, dict[str, Any]]  # path -> scan result
    window: tuple[int, int, int, int]
    notes: list[str]

    def blocks(self) -> list[tuple[int, int]]:
        n = len(self.dates)
        return [(s, min(n, s + gridcube.TIME_CHUNK)) for s in range(0, n, gridcube.TIME_CHUNK)]

    def used(self) -> list[str]:
        return sorted({p for by_date in self.where.values() for p, _ in by_date.values()})


def plan(infos: list[dict[str, Any]]) -> Plan:
    """Dates (union over products), date -> file per product (first file by path wins) and window."""
    where: dict[str, dict[str, list[Any]]] = defaultdict(dict)
    notes: list[str] = []
    for info in sorted(infos, key=lambda i: i["path"]):
        if "skip" in info:
            notes.append(f"{info['path']}: {info['skip']}")
            continue
        by_date = where[info["key"]]
        dup = [d for d in info["days"] if d in by_date]
        if dup:
            notes.append(f"{info['path']}: {len(dup)} {info['product']} composites already in another file")
        for k, d in enumerate(info["days"]):
            by_date.setdefault(d, [info["path"], k])
    for key, names in PRODUCES.items():
        if key not in where:
            notes.append(f"no MOD{key} files: {', '.join(names)} all missing")
    dates = sorted({d for by_date in where.values() for d in by_date})
    used = {p for by_date in where.values() for p, _ in by_date.values()}
    scanned = [i for i in infos if i["path"] in used]
    win = window(scanned) if scanned else (0, 0, 0, 0)
    return Plan(dates, dict(where), {i["path"]: i for i in scanned}, win, notes)


def _read(nc: netCDF4.Dataset, path: str, key: str, times: slice, rows: slice) -> dict[str, np.ndarray]:
    """The stored integers (time, lat, lon) of every layer of ``key`` for composites ``times`` and source
    rows ``rows`` (no scaling). The HDF5 chunk cache is off: each read is a slab of whole file chunks
    along time, read once per block and band, so caching would only hold memory (up to the whole
    decompressed file while it is open)."""
    out = {}
    for name in LAYERS[key]:
        try:
            var = nc[name]
            var.set_auto_maskandscale(False)
            var.set_var_chunk_cache(size=0, nelems=1)
            out[name] = np.asarray(var[times, rows, :])
        except Exception as err:  # HDF errors on truncated chunks
            what = f"cannot read composites {times.start}:{times.stop}: {err}"
            raise InputError(path, what, column=name) from err
    return out


def _in_range(raw: np.ndarray, spec: Layer) -> np.ndarray:
    """Where a stored value is not fill and lies within the layer's valid range (stored units)."""
    lo, hi = spec.valid or (np.iinfo(raw.dtype).min, np.iinfo(raw.dtype).max)
    ok = (raw >= lo) & (raw <= hi)
    if spec.fill is not None and lo <= spec.fill <= hi:
        ok &= raw != spec.fill
    return ok


def _unsigned(a: np.ndarray) -> np.ndarray:
    """A bit field as unsigned integers of the same width (a view: the bits are unchanged)."""
    return a.view(a.dtype.str.replace("i", "u")) if a.dtype.kind == "i" else a


def _scatter(shape: tuple[int, ...], idx: np.ndarray, values: np.ndarray, dtype: str) -> np.ndarray:
    """An array of ``shape`` holding ``values`` at the flat positions ``idx`` and NaN elsewhere."""
    out = np.full(shape, np.nan, dtype=dtype)
    out.reshape(-1)[idx] = values
    return out


def decode(key: str, raw: dict[str, np.ndarray], dtype: str = "float64") -> dict[str, np.ndarray]:
    """Physical store variables (``dtype``, NaN where QA fails) on the source grid from stored layers
    (any shape, e.g. (time, lat, lon)): indices unitless, fAPAR unitless, LST in K (see the module
    docstring for the QA).

    The QA bits are tested on whole arrays with single masks or lookup tables; values are unpacked
    (stored x scale_factor, float64) and the indices computed only where the QA passed, then stored as
    ``dtype`` (float32 gives the float64 result rounded once, as the store holds it)."""
    spec = LAYERS[key]
    if key == "09A1":
        ok = modis.qc_500m_ok(raw["sur_refl_qc_500m"])
        ok &= modis.state_ok(raw["sur_refl_state_500m"])
        for b in modis.BANDS_USED:
            ok &= _in_range(raw[f"sur_refl_b0{b}"], spec[f"sur_refl_b0{b}"])
        idx = np.flatnonzero(ok)
        rho = {}
        for b in modis.BANDS_USED:
            name = f"sur_refl_b0{b}"
            rho[b] = raw[name].reshape(-1)[idx].astype("float64") * float(spec[name].scale)
        values, evi_ok = modis.reflectance_indices(rho)
        values["EVI"] = np.where(evi_ok, values["EVI"], np.nan)
        return {k: _scatter(ok.shape, idx, v, dtype) for k, v in values.items()}
    if key == "15A2H":
        fpar = raw["Fpar_500m"]
        ok = _in_range(fpar, spec["Fpar_500m"]) & modis.fpar_qc_ok(raw["FparLai_QC"])
        idx = np.flatnonzero(ok)
        scale = float(spec["Fpar_500m"].scale)
        return {"fAPAR": _scatter(ok.shape, idx, fpar.reshape(-1)[idx].astype("float64") * scale, dtype)}
    out = {}
    for var, layer, qc_name in (
        ("LST_day", "LST_Day_1km", "QC_Day"),
        ("LST_night", "LST_Night_1km", "QC_Night"),
    ):
        lst = raw[layer]
        # mandatory QA (bits 0-1) 00/01 <=> bit 1 clear; LST error (bits 6-7) 00/01 <=> bit 7 clear
        qc = _unsigned(raw[qc_name])
        ok = _in_range(lst, spec[layer]) & ((qc & np.array(0b10000010, qc.dtype)) == 0)
        idx = np.flatnonzero(ok)
        scale = float(spec[layer].scale)
        out[var] = _scatter(ok.shape, idx, lst.reshape(-1)[idx].astype("float64") * scale, dtype)
    return out


def _source_rows(lat: list[float], r0: int, r1: int) -> tuple[int, int]:
    """Rows s0:s1 of a source grid (latitudes of cell centres, either order) holding every source cell
    that overlaps rows r0:r1 of the 0.5 degree grid (at least two rows, for the grid spacing)."""
    lat_ = np.asarray(lat)
    half = abs(lat_[1] - lat_[0]) / 2
    lo, hi = LAT_EDGES[r0], LAT_EDGES[r1]
    rows = np.flatnonzero((lat_ + half > lo + 1e-9) & (lat_ - half < hi - 1e-9))
    if rows.size == 0:
        return 0, 0
    s0, s1 = int(rows[0]), int(rows[-1]) + 1
    if s1 - s0 < 2:
        s0, s1 = (s0, s1 + 1) if s1 < lat_.size else (s0 - 1, s1)
    return s0, s1


def _as_slice(idx: np.ndarray) -> slice | np.ndarray:
    """``idx`` as a slice when it is a contiguous ascending range (a view instead of a copy)."""
    if idx.size and idx[-1] - idx[0] == idx.size - 1 and np.all(np.diff(idx) == 1):
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return idx


def _regrid_into(
    r: Regridder, fields: np.ndarray, out: np.ndarray, times: slice, r0: int, r1: int, j0: int
) -> None:
    """Regrid ``fields`` (time, source rows, lon) with ``r`` into ``out`` (time, rows r0:r1 of the 0.5
    degree grid, columns from j0). A nesting (coarser or equal) source grid is a gather done in the
    fields' own type (float32: the same values as gathering float64 and rounding); a finer one is
    :class:`Regridder`'s conservative average (float64 fields)."""
    a0, a1 = max(r0, r.i0), min(r1, r.i1)
    if a1 <= a0:
        return
    rows = slice(a0 - r.i0, a1 - r.i0)
    if r.take_lat is not None and r.take_lon is not None:
        # longitudes first: on the source rows, fewer than the output rows where the source is coarser
        sub = fields[:, :, _as_slice(r.take_lon)][:, _as_slice(r.take_lat[rows])]
        covered = r.covered[rows]
        if not covered.all():
            sub = np.where(covered[None], sub, np.nan)
    else:
        sub = r(fields, min_valid=MIN_VALID)[:, rows]
    out[times, a0 - r0 : a1 - r0, r.j0 - j0 : r.j1 - j0] = sub


def _runs(plan_: Plan, key: str, dates: list[str]) -> list[tuple[str, slice, slice]]:
    """The composites of product ``key`` among ``dates`` as runs (path, positions in ``dates``, indices in
    the file), consecutive in both, so that each run is one read."""
    by_date = plan_.where.get(key, {})
    runs: list[tuple[str, slice, slice]] = []
    for k, date in enumerate(dates):
        if date not in by_date:
            continue
        path, index = by_date[date]
        if runs:
            p, ks, ix = runs[-1]
            if p == path and ks.stop == k and ix.stop == index:
                runs[-1] = (p, slice(ks.start, k + 1), slice(ix.start, index + 1))
                continue
        runs.append((path, slice(k, k + 1), slice(index, index + 1)))
    return runs


#: blocks whose stored layers take at most this (bytes, counted as 4 per value) are read whole
WHOLE_BLOCK_BYTES = 64 * 2**20


def process_block(start: int, stop: int, plan_: Plan, store: Location) -> dict[str, Any]:
    """Decode, QA-mask and regrid composites ``start:stop``; write the time chunk; return per-variable
    count and sum.

    Streamed by chunk row of the store (90 rows of the 0.5 degree grid, a quarter of the globe): for each
    product, one read per run of consecutive composites of a file (only the source rows overlapping
    the chunk row), decoded and regridded for the whole run at once, then the chunk row of every
    variable is written (whole Zarr chunks). Memory: one chunk row of the outputs (32 composites x 90 x
    720 x 7 variables, 58 MB) and one product's layers for those source rows, whatever the number of
    files or composites."""
    import zarr

    i0, i1, j0, j1 = plan_.window
    dates = plan_.dates[start:stop]
    runs = {key: _runs(plan_, key, dates) for key in PRODUCES}
    group = zarr.open_group(store.zarr_store(), mode="r+", zarr_format=3)
    arrays = {v: group[v] for v in VARIABLES}
    checks = {v: {"count": 0, "sum": 0.0} for v in VARIABLES}
    open_files: dict[str, netCDF4.Dataset] = {}
    decoded = 0
    # a small block (coarse source grids) is read and decoded once for all chunk rows; a large one per
    # chunk row (its source rows only), so that memory does not grow with the source grid
    size = sum(
        (ix.stop - ix.start) * len(plan_.infos[p]["lat"]) * len(plan_.infos[p]["lon"]) * 4 * len(LAYERS[key])
        for key, key_runs in runs.items()
        for p, _, ix in key_runs
    )
    whole = size <= WHOLE_BLOCK_BYTES
    decoded_runs: dict[tuple[str, int], dict[str, np.ndarray]] = {}
    counted: set[tuple[str, int]] = set()

    def fields(key: str, path: str, ix: slice, rows: slice, dtype: str) -> dict[str, np.ndarray]:
        nonlocal decoded
        if whole and (path, ix.start) in decoded_runs:
            return {v: f[:, rows] for v, f in decoded_runs[(path, ix.start)].items()}
        if path not in open_files:
            open_files[path] = _open(path)
        raw = _read(open_files[path], path, key, ix, slice(None) if whole else rows)
        info = plan_.infos[path]
        if (path, ix.start) not in counted:  # once per composite (a source row may serve two chunk rows)
            counted.add((path, ix.start))
            n = (ix.stop - ix.start) * len(info["lat"]) * len(info["lon"])
            decoded += sum(n * a.dtype.itemsize for a in raw.values())
        out = decode(key, raw, dtype)
        if not whole:
            return out
        decoded_runs[(path, ix.start)] = out
        return {v: f[:, rows] for v, f in out.items()}

    try:
        for r0 in range(i0, i1, gridcube.SPACE_CHUNK):
            r1 = min(i1, r0 + gridcube.SPACE_CHUNK)
            out = {v: np.full((len(dates), r1 - r0, j1 - j0), np.nan, dtype="float32") for v in VARIABLES}
            for key, key_runs in runs.items():
                for path, ks, ix in key_runs:
                    info = plan_.infos[path]
                    s0, s1 = _source_rows(info["lat"], r0, r1)
                    if s1 <= s0:
                        continue
                    try:
                        r = regridder(info["lat"][s0:s1], info["lon"])
                    except ValueError:  # these source rows cover no whole cell of the chunk row
                        continue
                    gather = r.take_lat is not None and r.take_lon is not None
                    decoded_fields = fields(key, path, ix, slice(s0, s1), "float32" if gather else "float64")
                    for var, field_ in decoded_fields.items():
                        _regrid_into(r, field_, out[var], ks, r0, r1, j0)
                    del decoded_fields
            for v, a in out.items():
                arrays[v][start:stop, r0:r1, j0:j1] = a
                finite = np.isfinite(a)
                checks[v]["count"] += int(np.count_nonzero(finite))
                checks[v]["sum"] += float(np.sum(a, where=finite, dtype="float64"))
            del out
    finally:
        for nc in open_files.values():
            nc.close()
    report("write")
    return {"block": [start, stop], "checks": checks, "decoded_bytes": decoded}


def run_composites(
    files: list[str], pub: Publisher, summary: RunSummary, runner: str, run_dir: Location, force: bool
) -> None:
    """Composite files -> ``modis_8day_0p5deg`` (nothing published if any file is refused)."""
    run_dir = run_dir.child("composites")  # apart from the tile recipe's records in the same run
    results, refused = modis._map_files(files, scan, "scan", runner, run_dir.url, "composites")
    summary.refused += refused
    if refused:
        summary.warnings.append(f"{DATASET}: {len(refused)} of {len(files)} files refused: nothing published")
        return
    plan_ = plan(results)
    summary.skipped += [n for n in plan_.notes if n.endswith("not ingested)")]
    summary.warnings += [n for n in plan_.notes if not n.endswith("not ingested)")]
    if not plan_.dates:
        return
    used = plan_.used()
    products = sorted({plan_.infos[p]["product"] for p in used})
    release = Release(
        name=DATASET,
        recipe=modis.RECIPE,
        recipe_version=RECIPE_VERSION,
        inputs=iter_files(used),
        description="MODIS 8-day composites (" + ", ".join(products) + ") QA-masked on the 0.5 degree grid: "
        "NDVI, EVI, NDWI, MIR from MOD09A1 reflectances, fAPAR (MOD15A2H), LST day/night (MOD11A2)",
        params={
            "grid": "0.5deg",
            "chunks": [gridcube.TIME_CHUNK, gridcube.SPACE_CHUNK, gridcube.SPACE_CHUNK],
            "min_valid": MIN_VALID,
            "ndwi_swir_band": 6,
            "mir_band": 7,
        },
        synthetic=inputs_are_synthetic(used),
    )
    store = pub.prepare(release, force=force)
    if store is None:
        summary.up_to_date[DATASET] = release.version
        return
    attrs = {
        **modis._base_attrs(release, "MODIS 8-day vegetation indices, fAPAR and LST, 0.5 degree"),
        "products": json.dumps(products),
        "composite_period_days": PERIOD_DAYS,
        "qa_mask": QA_ATTR,
        "regridding": "coarser source grids refined (each 0.5 degree cell takes its source cell's value); "
        f"finer ones averaged conservatively over valid cells covering >= {MIN_VALID} of the cell",
        "notes": json.dumps(plan_.notes),
    }
    time_attrs = {
        "standard_name": "time",
        "long_name": "first day of the 8-day composite",
        "comment": "UTC day",
    }
    gridcube.write_template(store, plan_.dates, VARIABLES, attrs, time_attrs)
    blocks = plan_.blocks()
    report("write", 0, total=len(blocks))

    def work(block: tuple[int, int]) -> dict[str, Any]:
        return process_block(block[0], block[1], plan_, store)

    gridcube.process_blocks_on_beam(
        blocks, work, run_dir.url, runner, refused_kind="composites-process-refused", label="composites"
    )
    checks = read_records(run_dir.url, "checks")
    failed = read_records(run_dir.url, "composites-process-refused")
    if failed or len(checks) != len(blocks):
        summary.refused += failed
        summary.warnings.append(f"{DATASET}: some blocks failed: nothing published")
        return
    pub.commit(
        release,
        validate=lambda ds: modis.validate_grid(ds, checks, plan_.window, RANGES),
        catalog_metadata=lambda ds: {
            **describe(ds),
            "decoded_bytes": sum(c["decoded_bytes"] for c in checks),
            "data_extent": data_extent(plan_.window),
        },
        update_catalog=False,
    )
    report("publish")
    summary.published[DATASET] = release.version
