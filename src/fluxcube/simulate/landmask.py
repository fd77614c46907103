"""The grid of the simulated world: land mask, plant functional types, regions and cell areas.

- **Grid**: regular latitude/longitude cells of ``grid_deg`` degrees (0.5 for the real thing, coarser for
  tests), centres ascending in latitude and -180..180 in longitude, edges on multiples of ``grid_deg``
  (so a 0.5 degree world is exactly fluxcube's 0.5 degree grid, :mod:`fluxcube.recipes.regions`).
  ``grid_deg`` must divide 1 degree or be a whole number of degrees dividing 180 (0.25, 0.5, 1, 2, 3, 4,
  5, 6, 9, 10, ...), so that world cells nest in (or tile) the 1 degree cells of the inversions.
- **Land**: a cell is land when its centre is land in ``global-land-mask`` (GLOBE 1 km) and lies north
  of 60 S: Antarctica has no ecosystem to simulate and is left out (as the ocean). Land cells count
  whole (no fractional land); cell areas on the sphere of radius 6371007.2 m
  (:data:`fluxcube.recipes.regions.EARTH_RADIUS`).
- **PFT** (IGBP class per land cell), from the weather generator's *climatology* at the cell (annual
  mean temperature ``T``, warmest-day climatological temperature ``Tw``, annual precipitation ``P``
  in mm, all with the location's static offsets) and two smooth seeded fields of location
  (``forest_type`` and ``farmland``, N(0, 1) on a 15 degree node grid), see :func:`classify_pft`:

  ====================================== ===================================================
  climate                                class
  ====================================== ===================================================
  ``Tw < 2``                             SNO (ice cap; simulated as barren)
  ``Tw < 10`` (tundra)                   OSH; WET where ``forest_type > 1``
  ``T < 3`` (boreal)                     ENF (DNF east of 100 E north of 55 N); OSH if P < 300
  ``T < 16`` (temperate)                 P < 250 BSV, < 500 GRA, < 800 CRO if farmland > 0 else
                                         GRA; else CRO if farmland > 0.6, DBF if forest_type
                                         > 0.3, ENF if < -0.6, MF otherwise
  ``T >= 16`` (warm)                     P < 250 BSV, < 600 OSH (GRA if farmland > 0), < 1000
                                         SAV (CRO if farmland > 1), < 1600 WSA, else EBF
                                         (CRO if farmland > 1.2)
  ====================================== ===================================================

  The climate is zonal plus smooth offsets, so the map is mostly latitude bands: evergreen tropical
  forest within about 10 degrees of the equator, savannas and woodlands at 10-20 degrees, deserts
  near 25 degrees, crops, grass and forests in the mid-latitudes, boreal needleleaf forest and tundra.
- **Regions**: the 18 RECCAP2-like land regions of :data:`fluxcube.recipes.regions.REGIONS`. With the
  real sample data present (``grids/regions/naturalearth_lowres``) they come from the regions recipe's
  own logic (Natural Earth 1:110m countries grouped by :data:`~fluxcube.recipes.regions.REGION_OF`,
  rasterised with regionmask at 0.5 degrees, majority region per world cell; land cells with no
  country take the region of the nearest cell within 2 cells); otherwise from the latitude/longitude
  boxes of :data:`REGION_BOXES` (first matching box wins), labelled approximate. 0 = land in no region
  (Greenland, small islands).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fluxcube.recipes.regions import EARTH_RADIUS, OTHER_LAND, REGIONS
from fluxcube.simulate.weather import (
    STATIC_SPACING_DEG,
    NodeWeights,
    precip_climatology,
    static_fields,
    tair_climatology,
)

log = logging.getLogger(__name__)

SOUTHERN_LIMIT = -60.0  # degrees north: Antarctica is not simulated
#: IGBP classes of the PFT map, with the integer codes of the ``pft`` variable (0 = no simulated land).
PFT_CLASSES: tuple[str, ...] = (
    "ENF",
    "EBF",
    "DNF",
    "DBF",
    "MF",
    "CSH",
    "OSH",
    "WSA",
    "SAV",
    "GRA",
    "WET",
    "CRO",
    "SNO",
    "BSV",
)
_RANDOM_STREAM = 90  # random-stream id of the PFT fields (weather uses 1..3)

#: Approximate boxes of the 18 regions (lat_min, lat_max, lon_min, lon_max in degrees), first match wins;
#: region 0 boxes (Greenland) first. Used when the Natural Earth countries are not available.
REGION_BOXES: list[tuple[int, float, float, float, float]] = [
    (OTHER_LAND, 59.0, 84.0, -74.0, -10.0),  # Greenland
    # North and Central America
    (1, 51.0, 72.0, -170.0, -141.0),  # Alaska
    (2, 49.0, 84.0, -141.0, -52.0),  # Canada
    (2, 45.0, 49.0, -83.5, -71.0),  # southern Quebec and Ontario
    (2, 43.0, 45.0, -80.5, -76.0),  # southern Ontario
    (1, 24.5, 49.0, -125.0, -66.0),  # contiguous USA
    (3, 7.0, 32.7, -118.0, -77.2),  # Mexico, Central America
    (3, 10.0, 27.0, -85.0, -60.0),  # Caribbean
    # South America
    (6, -34.0, -27.0, -57.6, -48.0),  # southern Brazil (Rio Grande do Sul)
    (4, 0.5, 13.0, -82.0, -59.8),  # Colombia, Venezuela
    (4, 1.5, 9.0, -61.0, -51.5),  # Guyana, Suriname, French Guiana
    (4, -5.0, 1.5, -81.5, -75.0),  # Ecuador
    (4, -4.2, 0.5, -75.0, -69.5),  # southern Colombia
    (5, -18.5, 0.0, -81.5, -70.0),  # Peru
    (5, -27.5, -10.0, -70.0, -57.5),  # Bolivia, Paraguay
    (5, -56.0, -22.0, -76.0, -53.5),  # Chile, Argentina, Uruguay
    (6, -34.0, 5.5, -74.0, -34.0),  # Brazil
    # Asia east and south (before Russia and China, which take what is left)
    (15, 33.0, 43.0, 124.5, 130.7),  # Korea
    (15, 30.0, 41.5, 129.5, 142.5),  # Japan
    (15, 41.5, 45.6, 139.5, 146.0),  # Hokkaido
    (13, 36.0, 42.0, 26.0, 45.0),  # Turkey
    (13, 38.5, 41.6, 40.0, 50.5),  # Caucasus
    (12, 40.5, 45.0, 46.5, 80.0),  # Kazakhstan
    (12, 45.0, 49.2, 46.5, 83.0),
    (12, 49.2, 51.5, 46.5, 87.3),
    (12, 51.5, 54.5, 61.0, 77.0),  # northern Kazakhstan
    (12, 37.3, 45.6, 52.4, 73.1),  # Turkmenistan, Uzbekistan
    (12, 36.7, 43.3, 67.3, 80.3),  # Tajikistan, Kyrgyzstan
    (12, 31.0, 38.5, 60.5, 71.0),  # Afghanistan
    (12, 41.6, 52.2, 87.7, 120.0),  # Mongolia
    (16, 5.0, 28.0, 68.0, 97.4),  # India, Bangladesh, Sri Lanka
    (16, 23.6, 37.1, 60.9, 78.0),  # Pakistan, Kashmir
    (16, 26.3, 30.5, 80.0, 88.2),  # Nepal
    (17, 8.0, 21.5, 92.0, 110.0),  # mainland Southeast Asia
    (17, 21.5, 28.5, 92.0, 98.5),  # northern Myanmar
    (17, -11.0, 21.0, 95.0, 155.0),  # Malaysia, Indonesia, Philippines, New Guinea
    (14, 18.0, 53.6, 73.5, 135.1),  # China
    # Europe, Africa, Middle East
    (7, 35.0, 72.0, -25.0, 28.0),  # Europe west of 28 E
    (7, 44.0, 56.0, 28.0, 40.0),  # Ukraine, Belarus, Moldova
    (7, 59.8, 70.1, 28.0, 31.5),  # eastern Finland
    (11, 41.0, 82.0, 27.0, 180.0),  # Russia
    (11, 60.0, 72.0, -180.0, -169.0),  # Chukotka east of the dateline
    (8, 15.0, 37.5, -18.0, 35.0),  # Northern Africa
    (8, 10.5, 15.0, -12.0, -5.5),  # southern Mali
    (8, 13.2, 15.0, 0.2, 14.0),  # southern Niger
    (8, 9.5, 15.0, 15.0, 24.0),  # southern Chad
    (8, 10.0, 15.0, 24.0, 36.5),  # southern Sudan
    (13, 12.0, 39.8, 34.2, 63.3),  # Levant, Iraq, Iran, Arabia
    (10, -12.0, -5.8, 11.6, 22.0),  # northern Angola
    (9, -12.0, 15.0, -18.0, 52.0),  # Equatorial Africa
    (10, -35.0, -12.0, 10.0, 51.0),  # Southern Africa, Madagascar
    (18, -48.0, -10.0, 110.0, 180.0),  # Oceania
]


def _check_grid_deg(grid_deg: float) -> None:
    per_degree = 1.0 / grid_deg
    whole = float(grid_deg).is_integer() and 180 % int(grid_deg) == 0
    if not (whole or (abs(per_degree - round(per_degree)) < 1e-9 and round(per_degree) >= 1)):
        raise ValueError(
            f"grid_deg {grid_deg}: must divide 1 degree (0.25, 0.5, 1) or be whole degrees dividing 180"
        )


def cell_edges(grid_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude cell edges (degrees) of the world grid, ascending."""
    n_lat, n_lon = round(180 / grid_deg), round(360 / grid_deg)
    return np.linspace(-90.0, 90.0, n_lat + 1), np.linspace(-180.0, 180.0, n_lon + 1)


def classify_pft(
    t_mean: np.ndarray,
    t_warm: np.ndarray,
    precip: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    forest_type: np.ndarray,
    farmland: np.ndarray,
) -> np.ndarray:
    """IGBP class per cell from climatology (degC, degC, mm yr-1) and two N(0, 1) fields (module table)."""
    out = np.full(t_mean.shape, "GRA", dtype=object)
    warm = t_mean >= 16.0
    temperate = (t_mean >= 3.0) & ~warm
    boreal = t_mean < 3.0
    # warm climates
    out[warm & (precip >= 1600)] = "EBF"
    out[warm & (precip >= 1600) & (farmland > 1.2)] = "CRO"
    out[warm & (precip < 1600)] = "WSA"
    out[warm & (precip < 1000)] = "SAV"
    out[warm & (precip < 1000) & (farmland > 1.0)] = "CRO"
    out[warm & (precip < 600)] = np.where(farmland[warm & (precip < 600)] > 0, "GRA", "OSH")
    out[warm & (precip < 250)] = "BSV"
    # temperate climates
    wet_t = temperate & (precip >= 800)
    out[wet_t] = "MF"
    out[wet_t & (forest_type > 0.3)] = "DBF"
    out[wet_t & (forest_type < -0.6)] = "ENF"
    out[wet_t & (farmland > 0.6)] = "CRO"
    mid_t = temperate & (precip < 800)
    out[mid_t] = np.where(farmland[mid_t] > 0, "CRO", "GRA")
    out[temperate & (precip < 500)] = "GRA"
    out[temperate & (precip < 500) & (t_mean > 12)] = "CSH"
    out[temperate & (precip < 250)] = "BSV"
    # boreal and polar climates
    out[boreal] = "ENF"
    out[boreal & (lon > 100) & (lat > 55)] = "DNF"
    out[boreal & (precip < 300)] = "OSH"
    tundra = t_warm < 10.0
    out[tundra] = np.where(forest_type[tundra] > 1.0, "WET", "OSH")
    out[t_warm < 2.0] = "SNO"
    return out


def climatology(lat: np.ndarray, lon: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Annual climatology at points: ``t_mean``, ``t_warm`` (degC), ``precip`` (mm yr-1).

    The weather generator's own climatology (:func:`~fluxcube.simulate.weather.tair_climatology`,
    :func:`~fluxcube.simulate.weather.precip_climatology`) with the location's static offsets, as
    :func:`~fluxcube.simulate.weather.generate_weather` applies them (no anomalies, no drought).
    """
    static = static_fields(lat, lon, seed)
    doy = np.arange(1, 366, dtype=float)[:, None]
    amp = np.clip(1.0 + 0.15 * static["amplitude"], 0.6, 1.4)
    t = tair_climatology(lat[None, :], doy, amp[None, :]) + 1.5 * static["tair_offset"][None, :]
    p = precip_climatology(lat[None, :], doy) * np.exp(0.2 * static["precip_factor"])[None, :]
    return {"t_mean": t.mean(axis=0), "t_warm": t.max(axis=0), "precip": p.sum(axis=0)}


def pft_fields(lat: np.ndarray, lon: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """The smooth N(0, 1) fields ``forest_type`` and ``farmland`` at points (15 degree nodes)."""
    nw = NodeWeights.build(lat, lon, STATIC_SPACING_DEG)
    rng = np.random.default_rng([seed, _RANDOM_STREAM])
    nodes = rng.standard_normal((2, nw.n_nodes))
    return {"forest_type": nw.interpolate(nodes[0]), "farmland": nw.interpolate(nodes[1])}


def pft_map(lat: np.ndarray, lon: np.ndarray, seed: int = 0) -> np.ndarray:
    """IGBP class (object array) at points ``lat``, ``lon`` (degrees): :func:`classify_pft` of the climate."""
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    clim = climatology(lat, lon, seed)
    fields = pft_fields(lat, lon, seed)
    return classify_pft(clim["t_mean"], clim["t_warm"], clim["precip"], lat, lon, **fields)


def box_regions(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Region number (int8; 0 = none) of points from :data:`REGION_BOXES` (first match wins)."""
    out = np.full(np.shape(lat), -1, dtype=np.int16)
    for region, la0, la1, lo0, lo1 in REGION_BOXES:
        hit = (out < 0) & (lat >= la0) & (lat < la1) & (lon >= lo0) & (lon < lo1)
        out[hit] = region
    return np.where(out < 0, OTHER_LAND, out).astype(np.int8)


def naturalearth_regions(
    shp: Path, world_lat: np.ndarray, world_lon: np.ndarray, land: np.ndarray
) -> np.ndarray:
    """Region number (lat, lon) of the world grid from the regions recipe's Natural Earth mask.

    The recipe's own functions rasterise the countries at 0.5 degrees (in a spawned process, see
    :func:`fluxcube.recipes.regions.build_isolated`); each world cell takes the region with the largest
    summed fraction over the 0.5 degree cells it covers (a finer world cell: the 0.5 degree cell that
    contains it); land cells with no country take the nearest region within 2 cells, else 0.
    """
    from fluxcube.recipes.regions import LAT, LON, build_isolated

    ds, _ = build_isolated(str(shp))
    frac = ds["region_fraction"].values.astype("float64")  # (18, 360, 720), lat ascending
    numbers = ds["region"].values.astype(int)
    n_lat, n_lon = world_lat.size, world_lon.size
    if n_lat <= LAT.size:  # world cells of 0.5 degrees or coarser: sum the 0.5 degree fractions
        k = LAT.size // n_lat
        block = frac.reshape(frac.shape[0], n_lat, k, n_lon, k).sum(axis=(2, 4))
    else:  # finer: the containing 0.5 degree cell
        i = np.searchsorted(LAT + 0.25, world_lat)
        j = np.searchsorted(LON + 0.25, world_lon)
        block = frac[:, i][:, :, j]
    best = block.argmax(axis=0)
    region = np.where(block.max(axis=0) > 0, numbers[best], OTHER_LAND).astype(np.int8)
    missing = land & (region == OTHER_LAND)
    filled = region.copy()
    for _ in range(2):  # nearest region within 2 cells (coastlines differ between the two masks)
        if not missing.any():
            break
        grown = filled.copy()
        for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            shifted = np.roll(np.roll(filled, di, axis=0), dj, axis=1)
            take = (grown == OTHER_LAND) & (shifted != OTHER_LAND)
            grown[take] = shifted[take]
        filled = np.where(missing, grown, filled)
        missing = land & (filled == OTHER_LAND)
    # Greenland stays in no region whatever its neighbours
    greenland = (box_regions(*np.meshgrid(world_lat, world_lon, indexing="ij")) == OTHER_LAND) & (
        np.meshgrid(world_lat, world_lon, indexing="ij")[0] > 59
    )
    return np.where(land & ~greenland, filled, np.where(land, region, OTHER_LAND)).astype(np.int8)


@dataclass
class WorldGrid:
    """The simulated world's grid, land cells and their classes (see the module docstring).

    ``lat``, ``lon``: cell centres (degrees; lat ascending, lon -180..180); ``land`` (lat, lon) bool;
    ``area`` (lat,) m2 of a cell in each row; ``cells`` flat indices (row-major) of the land cells;
    ``pft`` (land cell,) IGBP classes; ``region`` (lat, lon) int8 region numbers (0 = none);
    ``region_source`` ``"naturalearth"`` or ``"boxes"``.
    """

    grid_deg: float
    lat: np.ndarray
    lon: np.ndarray
    land: np.ndarray
    area: np.ndarray
    cells: np.ndarray
    pft: np.ndarray
    region: np.ndarray
    region_source: str

    @classmethod
    def build(
        cls, grid_deg: float = 0.5, seed: int = 0, data_dir: str | Path | None = None, regions: str = "auto"
    ) -> WorldGrid:
        """Land mask, PFT map and regions for ``grid_deg``; ``regions``: "auto", "naturalearth" or "boxes".

        "auto" uses the Natural Earth countries when ``data_dir`` (default: ``$FLUXCUBE_DATA`` or
        ``../shared/data``) has them, else the boxes.
        """
        from global_land_mask import globe

        from fluxcube.simulate.network import resolve_data_dir

        _check_grid_deg(grid_deg)
        lat_e, lon_e = cell_edges(grid_deg)
        lat = (lat_e[:-1] + lat_e[1:]) / 2
        lon = (lon_e[:-1] + lon_e[1:]) / 2
        la, lo = np.meshgrid(lat, lon, indexing="ij")
        land = globe.is_land(la, lo) & (la > SOUTHERN_LIMIT)
        area = EARTH_RADIUS**2 * np.deg2rad(grid_deg) * np.diff(np.sin(np.deg2rad(lat_e)))
        cells = np.flatnonzero(land.ravel())
        pft = pft_map(la.ravel()[cells], lo.ravel()[cells], seed)
        shp = resolve_data_dir(data_dir) / "grids/regions/naturalearth_lowres/naturalearth_lowres.shp"
        if regions not in ("auto", "naturalearth", "boxes"):
            raise ValueError(f"regions {regions!r}: expected 'auto', 'naturalearth' or 'boxes'")
        use_ne = regions == "naturalearth" or (regions == "auto" and shp.exists())
        region = None
        if use_ne:
            try:
                region = naturalearth_regions(shp, lat, lon, land)
            except Exception as err:  # a spawned process cannot start (no __main__ guard), GDAL errors...
                if regions == "naturalearth":
                    raise
                log.warning("Natural Earth regions failed (%s): regions from approximate boxes", err)
                use_ne = False
        if region is None:
            if regions == "auto" and not shp.exists():
                log.warning("no Natural Earth countries at %s: regions from approximate boxes", shp)
            region = np.where(land, box_regions(la, lo), OTHER_LAND).astype(np.int8)
        return cls(grid_deg, lat, lon, land, area, cells, pft, region, "naturalearth" if use_ne else "boxes")

    @property
    def shape(self) -> tuple[int, int]:
        return self.lat.size, self.lon.size

    def cell_lat(self) -> np.ndarray:
        """Latitude (degrees) of each land cell."""
        return self.lat[self.cells // self.lon.size]

    def cell_lon(self) -> np.ndarray:
        """Longitude (degrees) of each land cell."""
        return self.lon[self.cells % self.lon.size]

    def cell_area(self) -> np.ndarray:
        """Area (m2) of each land cell."""
        return self.area[self.cells // self.lon.size]

    def cell_region(self) -> np.ndarray:
        """Region number of each land cell."""
        return self.region.ravel()[self.cells]

    def pft_codes(self) -> np.ndarray:
        """``pft`` as int8 codes (lat, lon): 1 + index in :data:`PFT_CLASSES`, 0 = not simulated."""
        out = np.zeros(self.land.size, dtype=np.int8)
        lookup = {p: i + 1 for i, p in enumerate(PFT_CLASSES)}
        out[self.cells] = [lookup[p] for p in self.pft]
        return out.reshape(self.shape)

    def band_cells(self, i0: int, i1: int) -> np.ndarray:
        """Positions (into the land-cell arrays) of the land cells in rows ``i0..i1-1``."""
        n = self.lon.size
        return np.flatnonzero((self.cells >= i0 * n) & (self.cells < i1 * n))

    def region_areas(self) -> dict[int, float]:
        """Land area (m2) of each region number (0 = land in no region)."""
        a = self.cell_area()
        r = self.cell_region()
        return {k: float(a[r == k].sum()) for k in [OTHER_LAND, *sorted(REGIONS)]}
