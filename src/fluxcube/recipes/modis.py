"""The MODIS recipe: HDF-EOS2 sinusoidal tiles -> 0.5 degree indices; ORNL/GEE site extracts -> site stores.

Two kinds of input, four stores.

**(a) MOD09GA / MYD09GA tiles** (HDF-EOS2, HDF4 underneath, read with pyhdf): daily 500 m surface
reflectance bands 1-7 with their QA, on the MODIS sinusoidal grid (sphere R = 6371007.181 m; tiles
of 1111950.5197665 m, 2400 x 2400 pixels of 463.3127 m; tile hHHvVV has its upper-left corner at
x = (HH - 18) T, y = (9 - VV) T). Each 500 m pixel's centre gets its latitude and longitude from the
inverse sinusoidal projection (lat = y / R, lon = x / (R cos lat)); pixels whose centre lies more
than half a pixel beyond +-180 degrees are outside the projection's domain and are ignored, those
within half a pixel are wrapped to the other side of the dateline. Per pixel (first observation
layer ``*_1`` only; the compact "additional observation" layers are not used):

======== =============================================== ====================================
product  definition (surface reflectance rho_b, band b)  units
======== =============================================== ====================================
NDVI     (rho2 - rho1) / (rho2 + rho1)                   1
EVI      2.5 (rho2 - rho1) / (rho2 + 6 rho1 - 7.5 rho3 + 1)  1 (MOD13 formula, G=2.5, L=1)
NDWI     (rho2 - rho6) / (rho2 + rho6): NIR band 2 (841-876 nm) and SWIR **band 6** (1628-1652 nm),
         i.e. Gao-type NDWI / LSWI as in Xiao et al. (2004)          1
MIR      rho7: band 7 (2105-2155 nm) reflectance         1
======== =============================================== ====================================

Reflectance = stored integer / 10000 (the files' ``scale_factor`` attribute is 10000 and is a
divisor in MODIS land products; anything else is refused), fill -28672.

**QA masking** (MOD09GA collection 6 user guide, tables 13 and 14). A 500 m pixel is valid only if

- ``QC_500m_1`` (uint32, fill 787410671): bits 0-1 MODLAND QA is 00 (ideal quality) or 01 (less than
  ideal); bits 2-5, 6-9, 10-13, 22-25, 26-29 (band quality of bands 1, 2, 3, 6, 7) are all 0000
  (highest quality; 1000 dead detector, 1001 solar zenith >= 86 deg, 1011 missing input, 1111 not
  processed because of clouds or deep ocean, ... are all out);
- ``state_1km_1`` (uint16 at 1 km, fill 65535; the 500 m pixel (i, j) uses 1 km pixel (i//2, j//2)):
  bits 0-1 cloud state is 00 (clear) or 11 (not set, assumed clear); bit 2 cloud shadow is 0;
  bit 10 internal cloud algorithm flag is 0; bits 8-9 cirrus is not 11 (high);
- bands 1, 2, 3, 6 and 7 are not fill and lie in 0..1.

EVI additionally needs a positive denominator and a value within MOD13's valid range -0.2..1
(bright snow, ice and cloud remnants give a negative denominator): a cell's EVI averages only those
pixels, so EVI can be NaN where NDVI is not.

Land/water (bits 3-5), aerosol (6-7), snow/ice (12, 15) and adjacency (13) flags are not used: water
and snow pixels stay (the drivers stage applies the land mask). NDVI, NDWI and MIR use the same mask.

**Reprojection to 0.5 degrees**: each valid pixel falls in the 0.5 degree cell containing its centre;
a cell's value is the plain mean of its valid pixels' indices (sinusoidal pixels have equal area, so
this is the area-weighted mean). Pixels of several tiles on the same date accumulate in the same sums,
so cells on tile edges are complete. Per cell also ``valid_fraction`` = valid pixels / pixels of the
ingested tiles whose centre falls in the cell, and ``tile_coverage`` = those pixels' area (463.3 m
squared each) / cell area on the sphere of radius R: about 1 where the ingested tiles cover the cell.
Dates: the file name's ``AYYYYDDD`` (for MOD09GA the observation day; a composite product's start
day), checked against the file's ``RANGEBEGINNINGDATE`` when present.

Store ``modis_mod09ga_0p5deg`` (time, lat, lon) on the full global 0.5 degree grid, float32, chunks
(32, 90, 90) like ERA5 (chunks without data are not stored). Beam pipeline 1 scans the tiles (file
name, SDS names, shapes, types, attributes, grid metadata against the name) and refuses bad ones;
pipeline 2 processes one 32-day block per element (one time chunk each). If any tile is refused,
the store is not published (a missing tile would be a silent hole).

**(b) Site extracts** -> tower-pixel stores with dimensions (site, time), on composite start dates:

- ORNL DAAC MODIS subset ASCII (MODISTools ``<site>___<product>.asc``): one row per band and date,
  ``nrows, ncols, xll, yll, cellsize,`` (optional), ID, product, ``AYYYYDDD``,
  ``Lat..Lon..Samp..Line..``, processing date, then the window's values row by row. The tower pixel is
  the window's centre; window statistics use all its pixels.

  * MOD13Q1 250 m 16-day -> ``modis_mod13q1_sites``: ``EVI`` (and ``NDVI`` when present) =
    value x 0.0001, fill -3000, valid -2000..10000; kept only where ``pixel_reliability`` is 0 (good)
    or 1 (marginal) (2 snow/ice, 3 cloudy, -1 fill are out); ``EVI_window_mean`` and
    ``EVI_window_valid_fraction`` over the window.
  * MCD12Q1 500 m yearly -> ``modis_mcd12q1_sites``: ``land_cover_igbp`` (Land_Cover_Type_1,
    IGBP classes 0..16, 254 unclassified; fill 255 -> -1) at the centre pixel and
    ``land_cover_igbp_window_majority``.

- MCD15A3H 4-day fPAR site extract CSV (Google Earth Engine, ``<site>_MCD15A3H_*.csv``, columns
  ``id,longitude,latitude,date,Fpar,FparLai_QC,product``) -> ``modis_mcd15a3h_sites``: ``fPAR`` =
  Fpar x 0.01 (valid 0..100; 248..255 are fill/class codes), kept where ``FparLai_QC`` bit 0
  (MODLAND) is 0, bit 2 (dead detector) is 0, bits 3-4 (cloud state) are 00 or 11 and bits 5-7
  (SCF_QC) are 000 (main RT method) or 001 (main method with saturation); the raw QC is stored too.

Every store is validated (what the workers wrote comes back; physical ranges: indices -1..1, EVI
-0.2..1, reflectance and fPAR 0..1) and published atomically with :class:`Publisher`.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import json
import logging
import re
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
import xarray as xr
from pangeo_forge_recipes.patterns import ConcatDim, FilePattern

from fluxcube.catalog import describe
from fluxcube.errors import InputError
from fluxcube.publish import Publisher, Release, iter_files
from fluxcube.recipes import gridcube
from fluxcube.recipes.era5 import data_extent
from fluxcube.recipes.fluxnet_pipeline import RunSummary
from fluxcube.recipes.regions import LAT, LAT_EDGES, LON
from fluxcube.recipes.transforms import (
    REFUSED,
    MapOrRefuse,
    WriteRecords,
    inputs_are_synthetic,
    pipeline_options,
    read_records,
)
from fluxcube.storage import Location

log = logging.getLogger(__name__)

RECIPE = "modis"
RECIPE_VERSION = "1.0.0"
GRID_DATASET = "modis_mod09ga_0p5deg"
EVI_DATASET = "modis_mod13q1_sites"
LANDCOVER_DATASET = "modis_mcd12q1_sites"
FPAR_DATASET = "modis_mcd15a3h_sites"

TIME_CHUNK, SPACE_CHUNK = gridcube.TIME_CHUNK, gridcube.SPACE_CHUNK  # days (as ERA5); 0.5 degree cells

# ----------------------------------------------------------------------------- sinusoidal grid
SIN_RADIUS = 6371007.181  # m, the MODIS sinusoidal sphere
TILE_SIZE = 1111950.5197665  # m, width and height of one tile
TILE_PIXELS_500M = 2400
N_TILES_H, N_TILES_V = 36, 18

TILE_NAME = re.compile(
    r"^(?P<product>M[OY]D09GA)\.A(?P<year>\d{4})(?P<doy>\d{3})\.h(?P<h>\d{2})v(?P<v>\d{2})"
    r"\.(?P<collection>\d{3})\.(?P<production>\d{13})\.hdf$"
)

BANDS_USED = (1, 2, 3, 6, 7)
REFL_FILL = -28672
REFL_SCALE = 10000.0
QC_FILL = 787410671
STATE_FILL = 65535
#: SDS the recipe reads: name -> (shape at 500 m or 1 km, pyhdf type code name).
REQUIRED_SDS: dict[str, tuple[int, str]] = {
    **{f"sur_refl_b0{b}_1": (TILE_PIXELS_500M, "INT16") for b in BANDS_USED},
    "QC_500m_1": (TILE_PIXELS_500M, "UINT32"),
    "state_1km_1": (TILE_PIXELS_500M // 2, "UINT16"),
}
#: Bit offset of each used band's 4-bit quality field in QC_500m.
QC_BAND_SHIFT = {b: 2 + 4 * (b - 1) for b in range(1, 8)}

GRID_PRODUCTS: dict[str, dict[str, str]] = {
    "NDVI": {
        "units": "1",
        "long_name": "normalized difference vegetation index",
        "standard_name": "normalized_difference_vegetation_index",
        "formula": "(rho2 - rho1) / (rho2 + rho1), MODIS bands 1 (620-670 nm) and 2 (841-876 nm)",
    },
    "EVI": {
        "units": "1",
        "long_name": "enhanced vegetation index",
        "formula": "2.5 (rho2 - rho1) / (rho2 + 6 rho1 - 7.5 rho3 + 1), band 3 = 459-479 nm",
    },
    "NDWI": {
        "units": "1",
        "long_name": "normalized difference water index (NIR band 2, SWIR band 6)",
        "formula": "(rho2 - rho6) / (rho2 + rho6), band 6 = 1628-1652 nm (Gao-type NDWI / LSWI)",
    },
    "MIR": {
        "units": "1",
        "long_name": "middle infrared surface reflectance, MODIS band 7 (2105-2155 nm)",
        "standard_name": "surface_bidirectional_reflectance",
        "formula": "rho7",
    },
    "valid_fraction": {
        "units": "1",
        "long_name": "fraction of the cell's 500 m pixels (of the ingested tiles) that passed QA",
    },
    "tile_coverage": {
        "units": "1",
        "long_name": "area of the ingested tiles' 500 m pixels centred in the cell / cell area",
        "comment": "sphere of radius 6371007.181 m; about 1 where tiles cover the cell (binning by pixel "
        "centres makes it deviate by up to about 2 %)",
    },
}
INDICES = ("NDVI", "EVI", "NDWI", "MIR")
GRID_RANGES = {
    "NDVI": (-1.0, 1.0),
    "EVI": (-0.2, 1.0),
    "NDWI": (-1.0, 1.0),
    "MIR": (0.0, 1.0),
    "valid_fraction": (0.0, 1.0),
    "tile_coverage": (0.0, 1.05),
}
SITE_RANGES = {
    "EVI": (-0.2, 1.0),
    "NDVI": (-0.2, 1.0),
    "EVI_window_mean": (-0.2, 1.0),
    "EVI_window_valid_fraction": (0.0, 1.0),
    "fPAR": (0.0, 1.0),
    "land_cover_igbp": (-1, 254),
    "land_cover_igbp_window_majority": (-1, 254),
}


# ------------------------------------------------------------------------------ tile geometry
def tile_corner(h: int, v: int) -> tuple[float, float]:
    """Upper-left corner (x, y) in sinusoidal metres of tile hHHvVV."""
    return (h - 18) * TILE_SIZE, (9 - v) * TILE_SIZE


def pixel_centres(
    h: int, v: int, n: int = TILE_PIXELS_500M, rows: slice = slice(None)
) -> tuple[np.ndarray, np.ndarray]:
    """Latitude (rows,) and longitude (rows, n) in degrees of the pixel centres of tile hHHvVV.

    Longitudes are the raw inverse projection (may lie beyond +-180 outside the domain).
    """
    x0, y0 = tile_corner(h, v)
    size = TILE_SIZE / n
    x = x0 + (np.arange(n) + 0.5) * size
    y = y0 - (np.arange(n)[rows] + 0.5) * size
    lat = y / SIN_RADIUS
    lon = x[None, :] / (SIN_RADIUS * np.cos(lat)[:, None])
    return np.rad2deg(lat), np.rad2deg(lon)


def tile_cells(h: int, v: int, n: int = TILE_PIXELS_500M, rows: slice = slice(None)) -> np.ndarray:
    """0.5 degree cell index (lat_index * 720 + lon_index, int32) of each pixel (of ``rows``) of tile
    hHHvVV; -1 outside the domain.

    A pixel is outside the sinusoidal domain when its centre lies more than half a pixel (in
    longitude at its latitude) beyond +-180 degrees; centres within that margin are wrapped. Tiles
    that cannot reach +-180 degrees (:func:`tile_window`) skip those tests (same cells).
    """
    lat, lon = pixel_centres(h, v, n, rows)
    i = np.clip(np.floor((lat + 90.0) / 0.5).astype(np.int64), 0, LAT.size - 1)
    if tile_window(h, v)[2:] != (0, LON.size):  # inside the domain, no wrapping
        j = np.floor((lon + 180.0) / 0.5).astype(np.int32)
        j += (i * LON.size).astype(np.int32)[:, None]
        return j
    half = np.rad2deg(TILE_SIZE / n / 2 / (SIN_RADIUS * np.cos(np.deg2rad(lat))))[:, None]
    inside = np.abs(lon) <= 180.0 + half
    lon = np.where(lon >= 180.0, lon - 360.0, np.where(lon < -180.0, lon + 360.0, lon))
    j = np.clip(np.floor((lon + 180.0) / 0.5).astype(np.int64), 0, LON.size - 1)
    cells = (i[:, None] * LON.size + j).astype(np.int32)
    cells[~inside] = -1
    return cells


def cell_area_sinusoidal_sphere() -> np.ndarray:
    """Areas (m2) of the 0.5 degree cells (360, 720) on the sphere of radius :data:`SIN_RADIUS`."""
    band = np.diff(np.sin(np.deg2rad(LAT_EDGES))) * np.deg2rad(0.5) * SIN_RADIUS**2
    return np.repeat(band[:, None], LON.size, axis=1)


def tile_window(h: int, v: int) -> tuple[int, int, int, int]:
    """Rows i0:i1 and columns j0:j1 of the 0.5 degree grid that tile hHHvVV can touch."""
    x0, y0 = tile_corner(h, v)
    lats = np.array([y0, y0 - TILE_SIZE]) / SIN_RADIUS
    i0 = int(np.floor((np.rad2deg(lats.min()) + 90.0) / 0.5))
    i1 = int(np.ceil((np.rad2deg(lats.max()) + 90.0) / 0.5))
    coslat = np.cos(lats)
    lon = np.rad2deg(np.array([x0, x0 + TILE_SIZE])[:, None] / (SIN_RADIUS * coslat[None, :]))
    if lon.min() <= -180.0 or lon.max() >= 180.0:  # reaches the domain's edge: may wrap
        return max(i0, 0), min(i1, LAT.size), 0, LON.size
    j0 = int(np.floor((lon.min() + 180.0) / 0.5))
    j1 = int(np.ceil((lon.max() + 180.0) / 0.5))
    return max(i0, 0), min(i1, LAT.size), max(j0, 0), min(j1, LON.size)


# -------------------------------------------------------------------------------- tile scanning
@dataclass
class TileInfo:
    """What a scan found in one MOD09GA file."""

    path: str
    product: str
    date: str  # ISO date from AYYYYDDD
    h: int
    v: int
    collection: str
    production: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TileInfo:
        return cls(**d)


def parse_tile_name(path: str) -> dict[str, Any]:
    """Product, date, h, v, collection and production time from a MOD09GA file name."""
    name = Path(path).name
    m = TILE_NAME.match(name)
    if not m:
        raise InputError(
            path,
            "file name does not match MOD09GA.AYYYYDDD.hHHvVV.CCC.YYYYDDDHHMMSS.hdf (product, "
            "acquisition date, tile, collection, production time)",
        )
    year, doy, h, v = int(m["year"]), int(m["doy"]), int(m["h"]), int(m["v"])
    if not 1 <= doy <= (366 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 365):
        raise InputError(path, f"day of year {doy} does not exist in {year}")
    if not (0 <= h < N_TILES_H and 0 <= v < N_TILES_V):
        raise InputError(path, f"tile h{h:02d}v{v:02d} outside the sinusoidal grid (h 0..35, v 0..17)")
    date = dt.date(year, 1, 1) + dt.timedelta(days=doy - 1)
    return {
        "product": m["product"],
        "date": date.isoformat(),
        "h": h,
        "v": v,
        "collection": m["collection"],
        "production": m["production"],
    }


def _open_sd(path: str) -> Any:
    from pyhdf.SD import SD, SDC

    try:
        return SD(path, SDC.READ)
    except Exception as err:  # pyhdf raises HDF4Error for truncated, corrupt or non-HDF4 files
        raise InputError(path, f"cannot open as HDF4 (truncated or not an HDF-EOS2 file): {err}") from err


def _struct_corner(path: str, struct: str, grid: str) -> tuple[float, float]:
    """UpperLeftPointMtrs of ``grid`` in the HDF-EOS StructMetadata text."""
    m = re.search(r'GridName="' + re.escape(grid) + r'"(.*?)END_GROUP=GRID_', struct, re.S)
    if not m:
        raise InputError(path, f"StructMetadata.0 has no grid {grid!r}")
    body = m.group(1)
    ul = re.search(r"UpperLeftPointMtrs=\(([-\d.eE+]+),([-\d.eE+]+)\)", body)
    proj = re.search(r"Projection=(\w+)", body)
    if not ul or not proj:
        raise InputError(path, f"StructMetadata.0 grid {grid!r} lacks UpperLeftPointMtrs or Projection")
    if proj.group(1) != "GCTP_SNSOID":
        raise InputError(path, f"grid {grid!r} projection is {proj.group(1)}, expected GCTP_SNSOID")
    return float(ul.group(1)), float(ul.group(2))


def scan_tile(path: str) -> TileInfo:
    """Check one MOD09GA file without decoding its data. Bad input: :class:`InputError`.

    Checks: the file name; that it opens as HDF4; every SDS the recipe reads is present with its
    shape, type, fill value and reflectance scale; the grid metadata's upper-left corner is the
    named tile's (sinusoidal, within 1 m); the acquisition date matches RANGEBEGINNINGDATE.
    """
    from pyhdf.SD import SDC

    meta = parse_tile_name(path)
    sd = _open_sd(path)
    try:
        types = {getattr(SDC, t): t for t in ("INT16", "UINT16", "UINT32", "INT8", "UINT8", "INT32")}
        present = sd.datasets()
        missing = [n for n in REQUIRED_SDS if n not in present]
        if missing:
            raise InputError(
                path, f"missing SDS {missing} (a MOD09GA tile has sur_refl_b01_1.., QC_500m_1, state_1km_1)"
            )
        for name, (n, tname) in REQUIRED_SDS.items():
            _dims, shape, dtype, _nattr = present[name][:4]
            if tuple(shape) != (n, n):
                raise InputError(path, f"SDS {name} has shape {tuple(shape)}, expected ({n}, {n})")
            if types.get(dtype) != tname:
                raise InputError(path, f"SDS {name} has HDF type {types.get(dtype, dtype)}, expected {tname}")
            attrs = sd.select(name).attributes()
            if name.startswith("sur_refl"):
                if attrs.get("_FillValue") != REFL_FILL:
                    raise InputError(
                        path, f"SDS {name} _FillValue {attrs.get('_FillValue')}, expected {REFL_FILL}"
                    )
                if (
                    float(attrs.get("scale_factor", 0)) != REFL_SCALE
                    or float(attrs.get("add_offset", 0)) != 0
                ):
                    raise InputError(
                        path,
                        f"SDS {name} scale_factor {attrs.get('scale_factor')} / add_offset "
                        f"{attrs.get('add_offset')}: expected 10000 (divisor) and 0",
                    )
        gattrs = sd.attributes()
        struct = gattrs.get("StructMetadata.0")
        if not struct:
            raise InputError(path, "no StructMetadata.0: not an HDF-EOS2 grid file")
        x, y = _struct_corner(path, struct, "MODIS_Grid_500m_2D")
        h = round(x / TILE_SIZE + 18)
        v = round(9 - y / TILE_SIZE)
        if abs(x - tile_corner(h, v)[0]) > 1 or abs(y - tile_corner(h, v)[1]) > 1:
            raise InputError(path, f"grid corner ({x}, {y}) m is not on the sinusoidal tile grid")
        if (h, v) != (meta["h"], meta["v"]):
            raise InputError(
                path,
                f"file name says tile h{meta['h']:02d}v{meta['v']:02d} but its grid metadata is tile "
                f"h{h:02d}v{v:02d} (upper-left corner {x:.1f}, {y:.1f} m)",
            )
        notes = []
        core = gattrs.get("CoreMetadata.0", "")
        begin = re.search(r'RANGEBEGINNINGDATE.*?VALUE\s*=\s*"([\d-]+)"', core, re.S)
        if begin and begin.group(1) != meta["date"]:
            raise InputError(
                path, f"file name date {meta['date']} differs from RANGEBEGINNINGDATE {begin.group(1)}"
            )
        if not begin:
            notes.append(f"{path}: no RANGEBEGINNINGDATE in CoreMetadata.0; date from the file name only")
        return TileInfo(path=path, notes=notes, **meta)
    except InputError:
        raise
    except Exception as err:  # pyhdf's HDF4Error on a damaged file: name the file
        raise InputError(path, f"cannot read the HDF4 metadata: {type(err).__name__}: {err}") from err
    finally:
        sd.end()


# ----------------------------------------------------------------------------- tile processing
def read_tile(path: str) -> dict[str, np.ndarray]:
    """The raw SDS arrays the recipe uses (integers as stored). Bad input: :class:`InputError`."""
    sd = _open_sd(path)
    try:
        out = {}
        for name in REQUIRED_SDS:
            try:
                out[name] = sd.select(name).get()
            except Exception as err:
                raise InputError(path, f"cannot read SDS {name}: {err}") from err
        return out
    finally:
        sd.end()


#: QC_500m bits that must be 0: MODLAND QA bit 1 (00 and 01 pass) and the 4-bit quality of each used band.
QC_BAD_BITS = 0b10 | functools.reduce(lambda a, b: a | b, (0b1111 << QC_BAND_SHIFT[b] for b in BANDS_USED))


def qc_500m_ok(qc: np.ndarray) -> np.ndarray:
    """True where a 500 m reflectance QC word (uint32; MOD09GA ``QC_500m_1``, MOD09A1
    ``sur_refl_qc_500m``) passes: not fill, MODLAND QA 00 or 01, band quality 0000 for bands 1, 2, 3,
    6, 7 (see the module docstring). One mask test (:data:`QC_BAD_BITS`) for all the fields."""
    qc = np.asarray(qc)
    if qc.dtype != np.uint32:
        qc = qc.astype(np.uint32)
    ok = (qc & np.uint32(QC_BAD_BITS)) == 0
    if QC_FILL & QC_BAD_BITS == 0:  # the fill word would pass the bit tests (it does not: 0x2EEEEEEF)
        ok &= qc != QC_FILL
    return ok


def _state_ok_bits(st: np.ndarray) -> np.ndarray:
    cloud = st & 0b11
    return (
        (st != STATE_FILL)
        & ((cloud == 0) | (cloud == 3))
        & (((st >> 2) & 1) == 0)  # cloud shadow
        & (((st >> 10) & 1) == 0)  # internal cloud algorithm flag
        & (((st >> 8) & 0b11) != 3)  # high cirrus
    )


#: :func:`state_ok` of every uint16 state word (64 KiB): the test is one lookup per pixel.
STATE_OK = _state_ok_bits(np.arange(1 << 16, dtype=np.uint16))
STATE_OK.setflags(write=False)


def state_ok(state: np.ndarray) -> np.ndarray:
    """True where a MODIS reflectance state word (uint16; MOD09GA ``state_1km_1``, MOD09A1
    ``sur_refl_state_500m``, same bits) passes: not fill, cloud state 00 (clear) or 11 (assumed clear),
    no cloud shadow (bit 2), no internal cloud flag (bit 10), cirrus not high (bits 8-9 != 11)."""
    st = np.asarray(state)
    if st.dtype != np.uint16:
        st = st.astype(np.uint16)
    return STATE_OK[st]


def pixel_mask(qc: np.ndarray, state: np.ndarray) -> np.ndarray:
    """QA part of the validity mask (500 m, bool) from QC_500m_1 (500 m) and state_1km_1 (1 km).

    See the module docstring for the bits used.
    """
    st_ok = state_ok(state)
    ok = qc_500m_ok(qc).reshape(st_ok.shape[0], 2, st_ok.shape[1], 2)
    ok &= st_ok[:, None, :, None]  # each 1 km state word covers 2 x 2 pixels of 500 m
    return ok.reshape(np.shape(qc))


def pixel_products(raw: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """The valid pixels (flat indices into the (strip of the) tile), their NDVI, EVI, NDWI and MIR
    (float64, unitless), and which of them have a valid EVI.

    Valid: QA passed, bands 1, 2, 3, 6, 7 not fill and within 0..1 (NDVI, NDWI, MIR and
    ``valid_fraction`` use it). Valid EVI: also an EVI denominator > 0 and EVI within -0.2..1 (bright
    snow, ice and cloud remnants give a negative denominator). Indices are computed for valid pixels
    only.
    """
    valid = pixel_mask(raw["QC_500m_1"], raw["state_1km_1"])  # rows of QC_500m_1 = 2 x rows of state
    for b in BANDS_USED:
        stored = raw[f"sur_refl_b0{b}_1"]
        if stored.dtype == np.int16:  # 0..10000 as int16 <=> as uint16 (negatives, fill included, >= 32768)
            valid &= stored.view(np.uint16) <= np.uint16(REFL_SCALE)
        else:
            valid &= (stored != REFL_FILL) & (stored >= 0) & (stored <= REFL_SCALE)
    idx = np.flatnonzero(valid)
    rho = {}
    for b in BANDS_USED:
        stored = raw[f"sur_refl_b0{b}_1"].ravel()
        rho[b] = (stored if idx.size == stored.size else stored[idx]).astype(np.float64)
        rho[b] /= REFL_SCALE
    out, evi_ok = reflectance_indices(rho)
    keep = np.isfinite(out["NDVI"]) & np.isfinite(out["NDWI"])  # 0 / 0 when both bands are 0
    if keep.all():
        return idx, out, evi_ok
    return idx[keep], {k: v[keep] for k, v in out.items()}, evi_ok[keep]


def reflectance_indices(rho: dict[int, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """NDVI, EVI, NDWI and MIR (unitless, the formulas of :data:`GRID_PRODUCTS`) from surface
    reflectances ``rho`` (band number 1, 2, 3, 6, 7 -> reflectance, unitless 0..1, any shape), and
    where EVI is valid (denominator > 0 and EVI within -0.2..1). NDVI and NDWI are NaN (0 / 0) where
    both of their bands are 0."""
    # in place where possible (fewer temporaries), with the same operations in the same order as the
    # formulas: the results are the same to the bit
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = rho[2] - rho[1]
        ndvi = rho[2] + rho[1]
        np.divide(diff, ndvi, out=ndvi)
        evi_den = rho[1] * 6.0
        evi_den += rho[2]
        tmp = rho[3] * 7.5
        evi_den -= tmp
        evi_den += 1.0
        evi = np.multiply(diff, 2.5, out=diff)
        evi /= evi_den
        ndwi = rho[2] - rho[6]
        np.add(rho[2], rho[6], out=tmp)
        ndwi /= tmp
        del tmp
        evi_ok = evi_den > 0
        evi_ok &= evi >= -0.2
        evi_ok &= evi <= 1.0
    return {"NDVI": ndvi, "EVI": evi, "NDWI": ndwi, "MIR": rho[7]}, evi_ok


STRIP_ROWS = 240  # 500 m rows per processing strip (even: whole 1 km state rows); bounds the memory


def aggregate_tile(info: TileInfo, raw: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Per 0.5 degree cell (flat, 360*720): sums of each index over its valid pixels, and the counts of
    valid pixels (``n_valid``, ``n_valid_EVI``) and of all pixels (``n_pixels``).

    ``raw``: the tile's SDS (:func:`read_tile`), read here when not given. The tile is processed in
    strips of :data:`STRIP_ROWS` rows, so the float64 working arrays stay at about 50 MB whatever the
    number of valid pixels; pixel positions are computed per strip (only for strips with valid pixels,
    or once per tile for the pixel counts), not cached. Sums are taken over runs of consecutive valid
    pixels in the same cell (``np.add.reduceat``: along a row the cell changes every ~100 pixels),
    then added per cell.
    """
    if raw is None:
        raw = read_tile(info.path)
    n = LAT.size * LON.size
    names = ("NDVI", "NDWI", "MIR", "EVI", "n_valid", "n_valid_EVI")
    out = {k: np.zeros(n) for k in names}
    pixels = _PIXELS.get((info.h, info.v))
    counts = np.zeros(n, dtype=np.int64) if pixels is None else None
    for r0 in range(0, TILE_PIXELS_500M, STRIP_ROWS):
        r1 = r0 + STRIP_ROWS
        strip = {k: (a[r0 // 2 : r1 // 2] if k == "state_1km_1" else a[r0:r1]) for k, a in raw.items()}
        idx, values, evi_ok = pixel_products(strip)
        if idx.size == 0 and counts is None:
            continue
        cells = tile_cells(info.h, info.v, rows=slice(r0, r1)).ravel()
        if counts is not None:
            _add_counts(counts, cells)
        if idx.size == 0:
            continue
        c = cells[idx]
        if c.min() < 0:  # tiles across the dateline: pixels outside the domain
            inside = c >= 0
            if not inside.any():
                continue
            c, evi_ok = c[inside], evi_ok[inside]
            values = {k: v[inside] for k, v in values.items()}
        starts = np.flatnonzero(np.diff(c)) + 1
        starts = np.concatenate(([0], starts))
        seg_cells = c[starts]
        lo, hi = int(seg_cells.min()), int(seg_cells.max()) + 1
        seg = seg_cells - lo
        seg_n = np.diff(np.append(starts, c.size))
        evi = np.where(evi_ok, values["EVI"], 0.0)
        part = {p: np.add.reduceat(values[p], starts) for p in ("NDVI", "NDWI", "MIR")}
        part["EVI"] = np.add.reduceat(evi, starts)
        part["n_valid"] = seg_n
        part["n_valid_EVI"] = np.add.reduceat(evi_ok.astype(np.int64), starts)
        for k in names:
            out[k][lo:hi] += np.bincount(seg, weights=part[k], minlength=hi - lo)
    if pixels is None:
        pixels = _remember_pixels(info.h, info.v, counts)
    out["n_pixels"] = pixels.astype(np.float64)
    out["decoded_bytes"] = np.array(sum(a.nbytes for a in raw.values()))
    return out


def _add_counts(counts: np.ndarray, cells: np.ndarray) -> None:
    """Add the number of pixel centres per cell (cells >= 0) to ``counts``, over the cells' range."""
    inside = cells[cells >= 0] if cells.min() < 0 else cells
    if inside.size:
        lo, hi = int(inside.min()), int(inside.max()) + 1
        counts[lo:hi] += np.bincount(inside - lo, minlength=hi - lo)


#: pixel centres per cell of the tiles met in this process (2 MB each, at most 64 tiles)
_PIXELS: dict[tuple[int, int], np.ndarray] = {}


def _remember_pixels(h: int, v: int, counts: np.ndarray) -> np.ndarray:
    if len(_PIXELS) >= 64:
        _PIXELS.pop(next(iter(_PIXELS)))
    counts.setflags(write=False)
    _PIXELS[(h, v)] = counts
    return counts


@dataclass
class GridPlan:
    """The store's dates, the tiles of each date and the data window."""

    dates: list[str]
    tiles: dict[str, list[dict[str, Any]]]  # date -> tile infos (dicts)
    window: tuple[int, int, int, int]
    notes: list[str]

    def blocks(self) -> list[tuple[int, int]]:
        n = len(self.dates)
        return [(s, min(n, s + TIME_CHUNK)) for s in range(0, n, TIME_CHUNK)]


def plan_grid(infos: list[TileInfo]) -> GridPlan:
    """Dates, tiles per date (the latest production of a duplicated tile) and the chunk-aligned window."""
    notes: list[str] = []
    chosen: dict[tuple[str, int, int], TileInfo] = {}
    for info in sorted(infos, key=lambda i: (i.production, i.path)):
        key = (info.date, info.h, info.v)
        if key in chosen:
            notes.append(
                f"{chosen[key].path}: tile h{info.h:02d}v{info.v:02d} {info.date} also in {info.path} "
                "(later production): the later one is used"
            )
        chosen[key] = info
    tiles: dict[str, list[dict[str, Any]]] = defaultdict(list)
    i0, i1, j0, j1 = LAT.size, 0, LON.size, 0
    for (date, _, _), info in sorted(chosen.items()):
        tiles[date].append(info.to_dict())
        a, b, c, d = tile_window(info.h, info.v)
        i0, i1, j0, j1 = min(i0, a), max(i1, b), min(j0, c), max(j1, d)
    s = SPACE_CHUNK
    window = (
        (0, 0, 0, 0)
        if i1 <= i0
        else ((i0 // s) * s, min(LAT.size, -(-i1 // s) * s), (j0 // s) * s, min(LON.size, -(-j1 // s) * s))
    )
    return GridPlan(sorted(tiles), dict(tiles), window, notes)


def process_block(start: int, stop: int, plan_: GridPlan, store: Location) -> dict[str, Any]:
    """Aggregate the tiles of dates ``start:stop`` and write that time chunk; return count and sum per
    variable."""
    i0, i1, j0, j1 = plan_.window
    dates = plan_.dates[start:stop]
    shape = (len(dates), i1 - i0, j1 - j0)
    out = {p: np.full(shape, np.nan, dtype="float32") for p in GRID_PRODUCTS}
    decoded = 0
    tiles = [(k, TileInfo.from_dict(d)) for k, date in enumerate(dates) for d in plan_.tiles[date]]
    acc: dict[str, np.ndarray] = {}
    # one tile in memory at a time (reading the next one in a thread while aggregating overlaps the
    # two on an idle machine, but holds a second tile, 83.5 MB, and was slower on a loaded one)
    for n, (k, info) in enumerate(tiles):
        part = aggregate_tile(info)
        decoded += int(part.pop("decoded_bytes"))
        for name, arr in part.items():
            acc[name] = acc[name] + arr if name in acc else arr
        if n + 1 == len(tiles) or tiles[n + 1][0] != k:  # the date is complete
            _finish_date(acc, out, k, (i0, i1, j0, j1))
            acc = {}
    checks = gridcube.write_block(store, out, slice(start, stop), slice(i0, i1), slice(j0, j1))
    return {"block": [start, stop], "checks": checks, "decoded_bytes": decoded}


def _finish_date(
    acc: dict[str, np.ndarray], out: dict[str, np.ndarray], k: int, window: tuple[int, int, int, int]
) -> None:
    """Means, valid fraction and tile coverage of one date from the summed tile aggregates."""
    i0, i1, j0, j1 = window
    area = cell_area_sinusoidal_sphere()[i0:i1, j0:j1]
    pixel_area = (TILE_SIZE / TILE_PIXELS_500M) ** 2
    grid = {name: arr.reshape(LAT.size, LON.size)[i0:i1, j0:j1] for name, arr in acc.items()}
    nv, npx = grid["n_valid"], grid["n_pixels"]
    with np.errstate(divide="ignore", invalid="ignore"):
        for p in INDICES:
            count = grid["n_valid_EVI"] if p == "EVI" else nv
            out[p][k] = np.where(count > 0, grid[p] / count, np.nan)
        out["valid_fraction"][k] = np.where(npx > 0, nv / npx, np.nan)
        out["tile_coverage"][k] = np.where(npx > 0, npx * pixel_area / area, np.nan)


def write_grid_template(store: Location, plan_: GridPlan, attrs: dict[str, Any]) -> None:
    """Coordinates, attributes and empty float32 variables of the gridded store."""
    time_attrs = {
        "standard_name": "time",
        "long_name": "acquisition (composite start) date",
        "comment": "UTC day",
    }
    gridcube.write_template(store, plan_.dates, GRID_PRODUCTS, attrs, time_attrs)


def validate_grid(
    ds: xr.Dataset,
    checks: list[dict[str, Any]],
    window: tuple[int, int, int, int],
    ranges: dict[str, tuple[float, float]] = GRID_RANGES,
) -> None:
    """Each block's count and sum come back from the store; every value lies in its physical range
    (``ranges``: variable -> (min, max) in the variable's units).

    Read one variable, block and chunk row (of the data window) at a time, so that memory does not
    depend on the window; the finite values are gathered once and their sum, minimum and maximum taken
    from them."""
    i0, i1, j0, j1 = window
    lo_hi: dict[str, tuple[Any, Any]] = {}
    for c in checks:
        s0, s1 = c["block"]
        for p, want in c["checks"].items():
            n, total = 0, 0.0
            for r0 in range(i0, i1, SPACE_CHUNK):
                rows = slice(r0, min(i1, r0 + SPACE_CHUNK))
                v = np.asarray(ds[p].isel(time=slice(s0, s1), lat=rows, lon=slice(j0, j1)).values)
                values = v[np.isfinite(v)]
                del v
                if values.size:
                    n += values.size
                    total += float(values.sum(dtype="float64"))
                    lo, hi = values.min(), values.max()  # in the store's type: float32(-0.2) is -0.2
                    old = lo_hi.get(p, (lo, hi))
                    lo_hi[p] = (min(lo, old[0]), max(hi, old[1]))
            if n != want["count"] or not np.isclose(total, want["sum"], rtol=1e-6, atol=1e-3):
                raise ValueError(
                    f"{p} dates {s0}:{s1}: store has {n} values summing to {total}, wrote {want}"
                )
    for p, (lo, hi) in lo_hi.items():
        if lo < ranges[p][0] or hi > ranges[p][1]:
            raise ValueError(f"{p}: values {lo:.4g}..{hi:.4g} outside {ranges[p][0]}..{ranges[p][1]}")


# ------------------------------------------------------------------------------- site extracts
ORNL_LOCATION = re.compile(r"^Lat(?P<lat>-?[\d.]+)Lon(?P<lon>-?[\d.]+)Samp(?P<samp>\d+)Line(?P<line>\d+)$")


@dataclass(frozen=True)
class OrnlBand:
    """How to decode one ORNL subset band."""

    product: str
    band: str
    var: str
    kind: str  # "value" (scaled continuous), "reliability" or "class"
    scale: float = 1.0
    fill: int = 0
    valid: tuple[int, int] = (0, 0)


ORNL_BANDS: dict[tuple[str, str], OrnlBand] = {
    ("MOD13Q1", "250m_16_days_EVI"): OrnlBand(
        "MOD13Q1", "250m_16_days_EVI", "EVI", "value", 1e-4, -3000, (-2000, 10000)
    ),
    ("MOD13Q1", "250m_16_days_NDVI"): OrnlBand(
        "MOD13Q1", "250m_16_days_NDVI", "NDVI", "value", 1e-4, -3000, (-2000, 10000)
    ),
    ("MOD13Q1", "250m_16_days_pixel_reliability"): OrnlBand(
        "MOD13Q1", "250m_16_days_pixel_reliability", "pixel_reliability", "reliability", 1.0, -1, (0, 3)
    ),
    ("MCD12Q1", "Land_Cover_Type_1"): OrnlBand(
        "MCD12Q1", "Land_Cover_Type_1", "land_cover_igbp", "class", 1.0, 255, (0, 254)
    ),
}
ORNL_DATASETS = {"MOD13Q1": EVI_DATASET, "MCD12Q1": LANDCOVER_DATASET}
COMPOSITE_DAYS = {"MOD09GA": 1, "MYD09GA": 1, "MOD13Q1": 16, "MCD12Q1": 365, "MCD15A3H": 4}
IGBP = (
    "water evergreen_needleleaf_forest evergreen_broadleaf_forest deciduous_needleleaf_forest "
    "deciduous_broadleaf_forest mixed_forests closed_shrublands open_shrublands woody_savannas savannas "
    "grasslands permanent_wetlands croplands urban_and_built_up cropland_natural_vegetation_mosaic "
    "snow_and_ice barren_or_sparsely_vegetated"
)


def _adate(path: str, line: int, text: str) -> str:
    m = re.fullmatch(r"A(\d{4})(\d{3})", text)
    if not m:
        raise InputError(path, f"date field {text!r}: expected AYYYYDDD", line=line)
    year, doy = int(m.group(1)), int(m.group(2))
    day = dt.date(year, 1, 1) + dt.timedelta(days=doy - 1)
    if day.year != year or doy < 1:
        raise InputError(path, f"date field {text!r}: day {doy} does not exist in {year}", line=line)
    return day.isoformat()


def read_ornl_subset(path: str) -> dict[str, Any]:
    """Parse an ORNL DAAC MODIS subset ASCII file (both layouts). Bad input: :class:`InputError`.

    Returns ``{"site", "product", "lat", "lon", "samples", "lines", "rows": [{band, date, values}]}``
    with raw integer values (row by row over the window); unknown bands are listed in ``notes``.
    """
    name = Path(path).name
    site = name.split("_", 1)[0]
    if not site or "_" not in name:
        raise InputError(path, "file name must be <site>_<product>.asc (MODISTools convention)")
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    meta: dict[str, Any] = {}
    with open(path, newline="") as f:
        for lineno, fields in enumerate(csv.reader(f), start=1):
            if not fields or not "".join(fields).strip():
                continue
            k = next((i for i, x in enumerate(fields) if re.match(r"^M[OYC]D\w+\.A\d{7}\.", x)), None)
            if k is None or len(fields) < k + 5:
                raise InputError(path, "no MODIS ID field (PRODUCT.AYYYYDDD.hHHvVV...)", line=lineno)
            ident, product, adate, loc, _proc = fields[k : k + 5]
            values_text = fields[k + 5 :]
            m = ORNL_LOCATION.match(loc)
            if not m:
                raise InputError(path, f"location field {loc!r}: expected LatYYLonXXSampNLineM", line=lineno)
            samples, lines = int(m["samp"]), int(m["line"])
            if k == 5:
                nrows, ncols = int(float(fields[0])), int(float(fields[1]))
                if (nrows, ncols) != (lines, samples):
                    raise InputError(
                        path, f"{nrows}x{ncols} window but location says {lines}x{samples}", line=lineno
                    )
            elif k != 0:
                raise InputError(path, f"unexpected {k} leading fields (expected 0 or 5)", line=lineno)
            if len(values_text) != samples * lines:
                raise InputError(
                    path,
                    f"{len(values_text)} values, expected {samples} x {lines} = {samples * lines}",
                    line=lineno,
                )
            try:
                values = [int(float(x)) for x in values_text]
            except ValueError as err:
                raise InputError(path, f"non-numeric value: {err}", line=lineno) from err
            band = ident.rsplit(".", 1)[-1]
            if ident.split(".", 1)[0] != product:
                raise InputError(path, f"ID {ident!r} does not belong to product {product}", line=lineno)
            this = {
                "product": product,
                "lat": float(m["lat"]),
                "lon": float(m["lon"]),
                "samples": samples,
                "lines": lines,
            }
            if not meta:
                meta = this
            elif this["product"] != meta["product"] or (this["samples"], this["lines"]) != (
                meta["samples"],
                meta["lines"],
            ):
                raise InputError(path, f"row mixes product/window {this} with {meta}", line=lineno)
            if (product, band) not in ORNL_BANDS:
                notes.append(f"{path} line {lineno}: band {band} of {product} not ingested")
                continue
            spec = ORNL_BANDS[(product, band)]
            bad = [x for x in values if x != spec.fill and not spec.valid[0] <= x <= spec.valid[1]]
            if bad:
                raise InputError(
                    path, f"{band} values {bad[:3]} outside {spec.valid} (fill {spec.fill})", line=lineno
                )
            rows.append({"band": band, "date": _adate(path, lineno, adate), "values": values})
    if not rows:
        raise InputError(
            path, "no ingestible rows (MOD13Q1 EVI/NDVI/pixel_reliability, MCD12Q1 Land_Cover_Type_1)"
        )
    if samples % 2 == 0 or lines % 2 == 0:
        raise InputError(path, f"window {samples}x{lines} has no centre pixel")
    seen: set[tuple[str, str]] = set()
    for r in rows:
        key = (r["band"], r["date"])
        if key in seen:
            raise InputError(path, f"band {key[0]} date {key[1]} appears twice")
        seen.add(key)
    return {"site": site, "file": path, **meta, "rows": rows, "notes": notes}


FAPAR_STANDARD_NAME = "fraction_of_surface_downwelling_photosynthetic_radiative_flux_absorbed_by_vegetation"
FPAR_COLUMNS = ["id", "longitude", "latitude", "date", "Fpar", "FparLai_QC", "product"]


def read_gee_fpar(path: str) -> dict[str, Any]:
    """Parse an MCD15A3H site extract CSV. Bad input: :class:`InputError`."""
    name = Path(path).name
    m = re.match(r"^(?P<site>[A-Za-z]{2}-[A-Za-z0-9]{3})_MCD15A3H", name)
    if not m:
        raise InputError(path, "file name must start with <site id CC-XXX>_MCD15A3H")
    dates, fpar, qc = [], [], []
    lat = lon = None
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header != FPAR_COLUMNS:
            raise InputError(path, f"header {header}, expected {FPAR_COLUMNS}", line=1)
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(FPAR_COLUMNS):
                raise InputError(path, f"{len(row)} fields, expected {len(FPAR_COLUMNS)}", line=lineno)
            rec = dict(zip(FPAR_COLUMNS, row, strict=True))
            if not re.fullmatch(r"MODIS/0(06|61)/MCD15A3H", rec["product"]):
                raise InputError(
                    path,
                    f"product {rec['product']!r}, expected MODIS/006/MCD15A3H",
                    line=lineno,
                    column="product",
                )
            try:
                day = dt.date.fromisoformat(rec["date"]).isoformat()
                value, flag = int(rec["Fpar"]), int(rec["FparLai_QC"])
                la, lo = float(rec["latitude"]), float(rec["longitude"])
            except ValueError as err:
                raise InputError(path, f"bad value: {err}", line=lineno) from err
            if not (0 <= value <= 255 and 0 <= flag <= 255):
                raise InputError(path, f"Fpar {value} / QC {flag} outside 0..255 (uint8)", line=lineno)
            if lat is None:
                lat, lon = la, lo
            elif abs(la - lat) > 1e-6 or abs(lo - lon) > 1e-6:
                raise InputError(
                    path, f"location {la}, {lo} differs from the first row's {lat}, {lon}", line=lineno
                )
            dates.append(day)
            fpar.append(value)
            qc.append(flag)
    if not dates:
        raise InputError(path, "no data rows")
    if len(set(dates)) != len(dates):
        raise InputError(path, "duplicate dates")
    return {
        "site": m["site"],
        "file": path,
        "lat": lat,
        "lon": lon,
        "dates": dates,
        "Fpar": fpar,
        "FparLai_QC": qc,
    }


def _fpar_qc_ok_bits(qc: np.ndarray) -> np.ndarray:
    qc = np.asarray(qc, dtype=np.int64)
    cloud = (qc >> 3) & 0b11
    scf = (qc >> 5) & 0b111
    return ((qc & 1) == 0) & (((qc >> 2) & 1) == 0) & ((cloud == 0) | (cloud == 3)) & (scf <= 1)


#: :func:`fpar_qc_ok` of every uint8 FparLai_QC value: one lookup per pixel for uint8 layers.
FPAR_QC_OK = _fpar_qc_ok_bits(np.arange(256))
FPAR_QC_OK.setflags(write=False)


def fpar_qc_ok(qc: np.ndarray) -> np.ndarray:
    """True where an MCD15A3H FparLai_QC value passes (see the module docstring)."""
    qc = np.asarray(qc)
    if qc.dtype == np.uint8:
        return FPAR_QC_OK[qc]
    return _fpar_qc_ok_bits(qc)


def _site_coords(parsed: list[dict[str, Any]], dates: list[str]) -> dict[str, Any]:
    return {
        "site": ("site", np.array([p["site"] for p in parsed], dtype=object), {"long_name": "site id"}),
        "lat": (
            "site",
            np.array([p["lat"] for p in parsed]),
            {"units": "degrees_north", "standard_name": "latitude"},
        ),
        "lon": (
            "site",
            np.array([p["lon"] for p in parsed]),
            {"units": "degrees_east", "standard_name": "longitude"},
        ),
        "time": (
            "time",
            np.array(dates, dtype="datetime64[D]").astype("datetime64[ns]"),
            {"standard_name": "time", "long_name": "composite start date", "comment": "UTC day"},
        ),
    }


def _check_unique_sites(parsed: list[dict[str, Any]]) -> None:
    seen: dict[str, str] = {}
    for p in parsed:
        if p["site"] in seen:
            raise InputError(p["file"], f"site {p['site']} also in {seen[p['site']]}")
        seen[p["site"]] = p["file"]


def build_evi_sites(parsed: list[dict[str, Any]]) -> xr.Dataset:
    """(site, time) MOD13Q1 store from parsed ORNL subsets."""
    _check_unique_sites(parsed)
    dates = sorted({r["date"] for p in parsed for r in p["rows"]})
    ti = {d: i for i, d in enumerate(dates)}
    ns, nt = len(parsed), len(dates)
    bands = sorted({ORNL_BANDS[("MOD13Q1", r["band"])].var for p in parsed for r in p["rows"]})
    out = {v: np.full((ns, nt), np.nan, dtype="float32") for v in bands if v != "pixel_reliability"}
    rel = np.full((ns, nt), -1, dtype="int8")
    wmean = np.full((ns, nt), np.nan, dtype="float32")
    wfrac = np.full((ns, nt), np.nan, dtype="float32")
    for s, p in enumerate(parsed):
        centre = (p["lines"] // 2) * p["samples"] + p["samples"] // 2
        by = {(r["band"], r["date"]): np.array(r["values"]) for r in p["rows"]}
        for (band, date), values in by.items():
            if band == "250m_16_days_pixel_reliability":
                rel[s, ti[date]] = values[centre]
        for (band, date), values in by.items():
            spec = ORNL_BANDS[("MOD13Q1", band)]
            if spec.kind != "value":
                continue
            r = by.get(("250m_16_days_pixel_reliability", date))
            good = values != spec.fill
            if r is not None:
                good &= (r == 0) | (r == 1)
            scaled = values * spec.scale
            if good[centre]:
                out[spec.var][s, ti[date]] = scaled[centre]
            if spec.var == "EVI":
                wfrac[s, ti[date]] = good.mean()
                if good.any():
                    wmean[s, ti[date]] = scaled[good].mean()
    attrs_of = {
        "EVI": {
            "units": "1",
            "long_name": "enhanced vegetation index at the tower pixel (MOD13Q1 250 m)",
            "scale_factor_applied": 1e-4,
            "qc": "pixel_reliability 0 (good) or 1 (marginal)",
        },
        "NDVI": {
            "units": "1",
            "long_name": "NDVI at the tower pixel (MOD13Q1 250 m)",
            "standard_name": "normalized_difference_vegetation_index",
            "scale_factor_applied": 1e-4,
            "qc": "pixel_reliability 0 (good) or 1 (marginal)",
        },
    }
    data: dict[str, Any] = {v: (("site", "time"), a, attrs_of[v]) for v, a in out.items()}
    data["pixel_reliability"] = (
        ("site", "time"),
        rel,
        {
            "units": "1",
            "long_name": "MOD13Q1 pixel reliability at the tower pixel",
            "flag_values": np.array([-1, 0, 1, 2, 3], dtype="int8"),
            "flag_meanings": "fill good_data marginal_data snow_or_ice cloudy",
        },
    )
    if "EVI" in out:
        data["EVI_window_mean"] = (
            ("site", "time"),
            wmean,
            {"units": "1", "long_name": "mean EVI over the subset window's valid pixels"},
        )
        data["EVI_window_valid_fraction"] = (
            ("site", "time"),
            wfrac,
            {"units": "1", "long_name": "fraction of the subset window's pixels with valid EVI"},
        )
    ds = xr.Dataset(data, coords=_site_coords(parsed, dates))
    ds["window"] = (
        "site",
        np.array([f"{p['lines']}x{p['samples']} pixels of 250 m" for p in parsed], dtype=object),
    )
    return ds


def build_landcover_sites(parsed: list[dict[str, Any]]) -> xr.Dataset:
    """(site, time) MCD12Q1 store: IGBP class at the tower pixel and the window's majority class."""
    _check_unique_sites(parsed)
    dates = sorted({r["date"] for p in parsed for r in p["rows"]})
    ti = {d: i for i, d in enumerate(dates)}
    centre_cls = np.full((len(parsed), len(dates)), -1, dtype="int16")
    major = np.full((len(parsed), len(dates)), -1, dtype="int16")
    for s, p in enumerate(parsed):
        centre = (p["lines"] // 2) * p["samples"] + p["samples"] // 2
        for r in p["rows"]:
            v = np.array(r["values"])
            centre_cls[s, ti[r["date"]]] = -1 if v[centre] == 255 else v[centre]
            ok = v[v != 255]
            if ok.size:
                major[s, ti[r["date"]]] = np.bincount(ok).argmax()
    flags = {
        "flag_values": np.array([*range(17), 254], dtype="int16"),
        "flag_meanings": IGBP + " unclassified",
        "_comment": "fill (255 in MCD12Q1) is -1",
    }
    data = {
        "land_cover_igbp": (
            ("site", "time"),
            centre_cls,
            {
                "units": "1",
                "long_name": "IGBP land cover class at the tower pixel (MCD12Q1 Land_Cover_Type_1)",
                **flags,
            },
        ),
        "land_cover_igbp_window_majority": (
            ("site", "time"),
            major,
            {"units": "1", "long_name": "most frequent IGBP class in the subset window", **flags},
        ),
    }
    return xr.Dataset(data, coords=_site_coords(parsed, dates))


def build_fpar_sites(parsed: list[dict[str, Any]]) -> xr.Dataset:
    """(site, time) MCD15A3H store: fPAR (QC-filtered, scaled) and the raw QC."""
    _check_unique_sites(parsed)
    dates = sorted({d for p in parsed for d in p["dates"]})
    ti = {d: i for i, d in enumerate(dates)}
    fpar = np.full((len(parsed), len(dates)), np.nan, dtype="float32")
    qc = np.full((len(parsed), len(dates)), -1, dtype="int16")
    for s, p in enumerate(parsed):
        idx = np.array([ti[d] for d in p["dates"]])
        raw, flags = np.array(p["Fpar"]), np.array(p["FparLai_QC"])
        good = (raw <= 100) & fpar_qc_ok(flags)
        fpar[s, idx] = np.where(good, raw * 0.01, np.nan)
        qc[s, idx] = flags
    data = {
        "fPAR": (
            ("site", "time"),
            fpar,
            {
                "units": "1",
                "standard_name": FAPAR_STANDARD_NAME,
                "long_name": "fraction of absorbed PAR at the tower pixel (MCD15A3H 500 m, 4-day)",
                "scale_factor_applied": 0.01,
                "qc": "FparLai_QC: MODLAND bit 0 = 0, dead detector bit 2 = 0, cloud state bits 3-4 in "
                "(00, 11), SCF_QC bits 5-7 in (000, 001); Fpar 248..255 (fill and class codes) removed",
            },
        ),
        "FparLai_QC": (
            ("site", "time"),
            qc,
            {"units": "1", "long_name": "MCD15A3H FparLai_QC bit field", "comment": "-1: no record"},
        ),
    }
    return xr.Dataset(data, coords=_site_coords(parsed, dates))


def validate_sites(expected: xr.Dataset) -> Any:
    """A validator: the store equals what was built (values, NaN pattern) and lies in physical ranges."""

    def check(ds: xr.Dataset) -> None:
        for name, var in expected.data_vars.items():
            got = np.asarray(ds[name].values)
            want = np.asarray(var.values)
            if got.shape != want.shape or not np.array_equal(got, want, equal_nan=want.dtype.kind == "f"):
                raise ValueError(f"{name}: the store differs from what was built")
            if name in SITE_RANGES and np.isfinite(want.astype(float)).any():
                lo, hi = SITE_RANGES[name]
                vals = want.astype(float)
                vals = vals[np.isfinite(vals)]
                if vals.min() < lo or vals.max() > hi:
                    raise ValueError(f"{name}: values {vals.min():.4g}..{vals.max():.4g} outside {lo}..{hi}")
        if list(ds["site"].values) != list(expected["site"].values):
            raise ValueError("site coordinate differs")

    return check


# ------------------------------------------------------------------------------------ the recipe
def find_inputs(source: str) -> dict[str, list[str]]:
    """Input files under ``source`` by kind: ``tiles`` (.hdf), ``ornl`` (.asc), ``fpar`` (MCD15A3H .csv),
    ``composites`` (lat/lon NetCDF composites, :mod:`fluxcube.recipes.modis_composites`)."""
    from fluxcube.recipes.modis_composites import is_composite_file

    p = Path(source)
    if p.is_file():
        files = [p]
    elif p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file())
    else:
        raise InputError(source, "no such file or folder")
    out: dict[str, list[str]] = {"tiles": [], "ornl": [], "fpar": [], "composites": [], "other": []}
    for f in files:
        name = f.name
        if name.lower().endswith(".hdf"):
            out["tiles"].append(str(f))
        elif name.lower().endswith(".asc"):
            out["ornl"].append(str(f))
        elif name.lower().endswith(".csv") and "MCD15A3H" in name:
            out["fpar"].append(str(f))
        elif is_composite_file(str(f)):
            out["composites"].append(str(f))
        elif name != "SYNTHETIC.json":
            out["other"].append(str(f))
    return out


def file_pattern(files: list[str]) -> FilePattern:
    """pangeo-forge ``FilePattern`` over the input files (one key per file)."""
    return FilePattern(lambda file: file, ConcatDim("file", keys=list(files)))


def _map_files(
    files: list[str], fn: Any, step: str, runner: str, run_dir: str, kind: str
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """One Beam pipeline: ``fn(path)`` per file; results and refusals (as records)."""
    with beam.Pipeline(options=pipeline_options(runner)) as p:
        out = (
            p
            | "files" >> beam.Create(list(file_pattern(files).items()))
            | step
            >> beam.ParDo(MapOrRefuse(lambda item: fn(item[1]), step, lambda e: e[1])).with_outputs(
                REFUSED, main="ok"
            )
        )
        _ = out.ok | "results" >> WriteRecords(run_dir, kind)
        _ = out[REFUSED] | "refusals" >> WriteRecords(run_dir, f"{kind}-refused")
    return read_records(run_dir, kind), sorted(
        read_records(run_dir, f"{kind}-refused"), key=lambda r: r["file"]
    )


def _base_attrs(release: Release, title: str) -> dict[str, Any]:
    return {
        **release.provenance(),
        "title": title,
        "Conventions": "CF-1.10",
        "institution": "derived by fluxcube from NASA LP DAAC / ORNL DAAC MODIS products",
        "license": "MODIS data: NASA EOSDIS, no restrictions on reuse; cite the product DOIs",
    }


def run_grid(
    files: list[str], pub: Publisher, summary: RunSummary, runner: str, run_dir: Location, force: bool
) -> None:
    """Tiles -> ``modis_mod09ga_0p5deg`` (nothing published if any tile is refused)."""
    results, refused = _map_files(
        files, lambda f: scan_tile(f).to_dict(), "scan", runner, run_dir.url, "tiles"
    )
    summary.refused += refused
    if refused:
        summary.warnings.append(
            f"{GRID_DATASET}: {len(refused)} of {len(files)} tiles refused: nothing published"
        )
        return
    infos = sorted((TileInfo.from_dict(d) for d in results), key=lambda i: i.path)
    summary.skipped += [n for i in infos for n in i.notes]
    plan_ = plan_grid(infos)
    summary.warnings += plan_.notes
    used = sorted(d["path"] for ts in plan_.tiles.values() for d in ts)
    products = sorted({i.product for i in infos})
    release = Release(
        name=GRID_DATASET,
        recipe=RECIPE,
        recipe_version=RECIPE_VERSION,
        inputs=iter_files(used),
        description="MODIS surface reflectance indices (NDVI, EVI, NDWI, MIR) from "
        + "/".join(products)
        + " 500 m tiles, QA-masked, averaged to the 0.5 degree grid, with valid-pixel fractions",
        params={
            "grid": "0.5deg",
            "chunks": [TIME_CHUNK, SPACE_CHUNK, SPACE_CHUNK],
            "ndwi_swir_band": 6,
            "mir_band": 7,
        },
        synthetic=inputs_are_synthetic(used),
    )
    store = pub.prepare(release, force=force)
    if store is None:
        summary.up_to_date[GRID_DATASET] = release.version
        return
    attrs = {
        **_base_attrs(release, "MODIS vegetation and water indices, 0.5 degree"),
        "products": json.dumps(products),
        "composite_period_days": int(max(COMPOSITE_DAYS.get(p, 1) for p in products)),
        "qa_mask": "QC_500m_1 MODLAND 00/01 and band quality 0000 for bands 1,2,3,6,7; state_1km_1 cloud "
        "00/11, no cloud shadow, no internal cloud flag, cirrus not high; reflectance 0..1; EVI -0.2..1",
        "reprojection": "pixel centres (inverse sinusoidal, R = 6371007.181 m) binned into 0.5 degree cells; "
        "plain mean of valid pixels (equal-area pixels)",
        "tiles": json.dumps(sorted({f"h{i.h:02d}v{i.v:02d}" for i in infos})),
    }
    write_grid_template(store, plan_, attrs)

    def work(block: tuple[int, int]) -> dict[str, Any]:
        return process_block(block[0], block[1], plan_, store)

    gridcube.process_blocks_on_beam(
        plan_.blocks(), work, run_dir.url, runner, refused_kind="process-refused", label="dates"
    )
    checks = read_records(run_dir.url, "checks")
    failed = read_records(run_dir.url, "process-refused")
    if failed or len(checks) != len(plan_.blocks()):
        summary.refused += failed
        summary.warnings.append(f"{GRID_DATASET}: some blocks failed: nothing published")
        return
    pub.commit(
        release,
        validate=lambda ds: validate_grid(ds, checks, plan_.window),
        catalog_metadata=lambda ds: {
            **describe(ds),
            "decoded_bytes": sum(c["decoded_bytes"] for c in checks),
            "data_extent": data_extent(plan_.window),
        },
        update_catalog=False,
    )
    summary.published[GRID_DATASET] = release.version


def _publish_sites(
    pub: Publisher,
    summary: RunSummary,
    name: str,
    files: list[str],
    ds: xr.Dataset,
    description: str,
    title: str,
    product: str,
    force: bool,
) -> None:
    release = Release(
        name=name,
        recipe=RECIPE,
        recipe_version=RECIPE_VERSION,
        inputs=iter_files(files),
        description=description,
        params={"dims": ["site", "time"], "pixel": "window centre"},
        synthetic=inputs_are_synthetic(files),
    )
    store = pub.prepare(release, force=force)
    if store is None:
        summary.up_to_date[name] = release.version
        return
    out = ds.copy()
    out.attrs = {
        **_base_attrs(release, title),
        "product": product,
        "composite_period_days": COMPOSITE_DAYS[product],
        "time_convention": "composite start date (AYYYYDDD / date column)",
    }
    enc: dict[str, Any] = {v: {"chunks": out[v].shape} for v in out.data_vars}
    enc["time"] = {"units": "days since 1970-01-01", "calendar": "proleptic_gregorian", "dtype": "int32"}
    out.to_zarr(store.zarr_store(), mode="w", zarr_format=3, consolidated=False, encoding=enc)
    pub.commit(release, validate=validate_sites(ds), update_catalog=False)
    summary.published[name] = release.version


def run(source: str, target: str, runner: str = "DirectRunner", force: bool = False) -> RunSummary:
    """Ingest the MODIS files under ``source`` into up to four stores published under ``target``.

    A store whose inputs include a refused file is not published (the refusal says which file and why).
    """
    pub = Publisher(target)
    summary = RunSummary()
    inputs = find_inputs(source)
    summary.skipped += [f"{f}: not a MODIS input this recipe reads" for f in inputs["other"]]
    if not (inputs["tiles"] or inputs["ornl"] or inputs["fpar"] or inputs["composites"]):
        summary.warnings.append(
            f"{source}: no MODIS tiles (.hdf), composites (.nc), ORNL subsets (.asc) or MCD15A3H CSV"
        )
        return summary
    run_dir = pub.root.child("_runs", f"{RECIPE}-{uuid.uuid4().hex[:12]}")
    try:
        if inputs["tiles"]:
            run_grid(inputs["tiles"], pub, summary, runner, run_dir, force)
        if inputs["composites"]:
            from fluxcube.recipes.modis_composites import run_composites

            run_composites(inputs["composites"], pub, summary, runner, run_dir, force)
        if inputs["ornl"]:
            parsed, refused = _map_files(
                inputs["ornl"], read_ornl_subset, "parse", runner, run_dir.url, "ornl"
            )
            summary.refused += refused
            for product, name in ORNL_DATASETS.items():
                group = sorted((p for p in parsed if p["product"] == product), key=lambda p: p["site"])
                bad = [r for r in refused if product in Path(r["file"]).name]
                if bad or (refused and not group):
                    summary.warnings.append(f"{name}: input refused: nothing published")
                    continue
                if not group:
                    continue
                summary.skipped += [n for p in group for n in p["notes"]]
                try:
                    ds = build_evi_sites(group) if product == "MOD13Q1" else build_landcover_sites(group)
                except InputError as err:
                    summary.refused.append(
                        {"file": err.file, "step": "build", "error": str(err), "type": "InputError"}
                    )
                    continue
                what = (
                    "EVI/NDVI (MOD13Q1 250 m 16-day)" if product == "MOD13Q1" else "IGBP land cover (MCD12Q1)"
                )
                _publish_sites(
                    pub,
                    summary,
                    name,
                    [p["file"] for p in group],
                    ds,
                    f"MODIS {what} at tower pixels from ORNL DAAC subsets",
                    f"MODIS {product} at sites",
                    product,
                    force,
                )
        if inputs["fpar"]:
            parsed, refused = _map_files(inputs["fpar"], read_gee_fpar, "parse", runner, run_dir.url, "fpar")
            summary.refused += refused
            if refused:
                summary.warnings.append(f"{FPAR_DATASET}: input refused: nothing published")
            elif parsed:
                group = sorted(parsed, key=lambda p: p["site"])
                try:
                    ds = build_fpar_sites(group)
                except InputError as err:
                    summary.refused.append(
                        {"file": err.file, "step": "build", "error": str(err), "type": "InputError"}
                    )
                else:
                    _publish_sites(
                        pub,
                        summary,
                        FPAR_DATASET,
                        [p["file"] for p in group],
                        ds,
                        "MODIS fPAR (MCD15A3H 500 m 4-day) at tower pixels, QC-filtered",
                        "MODIS MCD15A3H fPAR at sites",
                        "MCD15A3H",
                        force,
                    )
        if summary.published or summary.up_to_date:
            pub.write_catalog()
        return summary
    finally:
        run_dir.remove()


# ------------------------------------------------------------------------- synthetic tile writer
def write_tile(
    path: str,
    h: int,
    v: int,
    date: str,
    reflectance: dict[int, np.ndarray],
    qc: np.ndarray,
    state: np.ndarray,
    synthetic: bool = True,
    omit: tuple[str, ...] = (),
) -> None:
    """Write a MOD09GA-like HDF4 tile (the SDS and metadata this recipe reads) with pyhdf.

    ``reflectance``: band (1..7) -> int16 (2400, 2400) stored values (reflectance x 10000, fill
    -28672); ``qc``: uint32 (2400, 2400); ``state``: uint16 (1200, 1200). For tests, benchmarks and
    the simulated world; the file carries ``synthetic = "true"``. ``omit``: SDS names to leave out
    (to make broken files for tests).
    """
    from pyhdf.SD import SD, SDC

    x0, y0 = tile_corner(h, v)
    grid = (
        'GROUP=GridStructure\n\tGROUP=GRID_1\n\t\tGridName="MODIS_Grid_500m_2D"\n\t\tXDim=2400\n\t\t'
        f"YDim=2400\n\t\tUpperLeftPointMtrs=({x0:.6f},{y0:.6f})\n\t\t"
        f"LowerRightMtrs=({x0 + TILE_SIZE:.6f},{y0 - TILE_SIZE:.6f})\n\t\tProjection=GCTP_SNSOID\n\t\t"
        "ProjParams=(6371007.181000,0,0,0,0,0,0,0,0,0,0,0,0)\n\t\tSphereCode=-1\n\tEND_GROUP=GRID_1\n"
        "END_GROUP=GridStructure\nEND\n"
    )
    sd = SD(path, SDC.WRITE | SDC.CREATE | SDC.TRUNC)
    try:
        setattr(sd, "StructMetadata.0", grid)
        setattr(
            sd,
            "CoreMetadata.0",
            f'OBJECT = RANGEBEGINNINGDATE\n NUM_VAL = 1\n VALUE = "{date}"\n'
            "END_OBJECT = RANGEBEGINNINGDATE\n",
        )
        sd.synthetic = "true" if synthetic else "false"

        def put(name: str, arr: np.ndarray, code: int, attrs: dict[str, Any], dims: str) -> None:
            if name in omit:
                return
            sds = sd.create(name, code, arr.shape)
            for k, d in enumerate(("YDim", "XDim")):
                sds.dim(k).setname(f"{d}:{dims}")
            for key, val in attrs.items():
                if key == "_FillValue":
                    sds.setfillvalue(val.item() if isinstance(val, np.generic) else val)
                else:
                    setattr(sds, key, val)
            sds.setcompress(SDC.COMP_DEFLATE, 1)
            sds[:] = arr
            sds.endaccess()

        for b in range(1, 8):
            arr = reflectance.get(b, np.full((2400, 2400), REFL_FILL, np.int16)).astype(np.int16)
            put(
                f"sur_refl_b0{b}_1",
                arr,
                SDC.INT16,
                {
                    "_FillValue": np.int16(REFL_FILL),
                    "scale_factor": 10000.0,
                    "add_offset": 0.0,
                    "units": "reflectance",
                },
                "MODIS_Grid_500m_2D",
            )
        put(
            "QC_500m_1",
            qc.astype(np.uint32),
            SDC.UINT32,
            {"_FillValue": np.uint32(QC_FILL)},
            "MODIS_Grid_500m_2D",
        )
        put(
            "state_1km_1",
            state.astype(np.uint16),
            SDC.UINT16,
            {"_FillValue": np.uint16(STATE_FILL)},
            "MODIS_Grid_1km_2D",
        )
    finally:
        sd.end()
