"""The 0.5 degree grid, its cell areas, and the approximate 18-region RECCAP2-like land mask.

The grid (shared by every gridded recipe): cell centres -89.75..89.75 (lat) and -179.75..179.75
(lon), cells 0.5 degrees wide, latitude ascending. Cell areas in m2 are given twice:

- ``cell_area``: on a sphere of radius :data:`EARTH_RADIUS` = 6371007.2 m (the authalic radius of
  WGS84: the sphere with the ellipsoid's surface area), A = R^2 dlon (sin lat2 - sin lat1);
- ``cell_area_wgs84``: on the WGS84 ellipsoid (exact zone formula with the authalic-latitude
  function q), which puts slightly less area near the equator and more near the poles.

Both sum to the same global total, 5.10066e14 m2 (they differ by 6e-9 relative).

The regions: the 18 RECCAP2 / GCP land regions are groups of countries. The real mask is not
public in small form, so this module builds an **approximate** one from the Natural Earth 1:110m
country polygons (public domain), with the ISO3 -> region table :data:`REGION_OF` below. Fractions
of each 0.5 degree cell covered by each region come from regionmask's ``mask_3D_frac_approx``
(rasterised on a 10x finer grid and averaged). Greenland, Antarctica and the French Southern Lands
belong to no region (``OTHER_LAND``); they count as land in ``land_fraction``.

A mask file in the RECCAP2 layout (NetCDF, int8 ``land_regions`` (lat, lon) with region numbers 0..18 and
optionally a 0/1 ``landmask``, on any regular global grid whose cells are a whole multiple or fraction of
0.5 degrees, latitude either way, longitude -180..180 or 0..360) is used instead of the polygons when the
source holds one: the simulated world writes one (``regions/RECCAP2_land_region_masks_synthetic.nc``) and a
user with the official land mask can point the recipe at it. Coarser cells are repeated onto the 0.5
degree grid (fractions 0 or 1), finer cells averaged (fractions = share of the sub-cells).
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
import xarray as xr
from pangeo_forge_recipes.patterns import ConcatDim, FilePattern

from fluxcube.catalog import describe
from fluxcube.errors import InputError
from fluxcube.publish import Publisher, Release, iter_files
from fluxcube.recipes.fluxnet_pipeline import RunSummary
from fluxcube.recipes.transforms import REFUSED, MapOrRefuse, WriteRecords, pipeline_options, read_records
from fluxcube.storage import Location, location

log = logging.getLogger(__name__)

RECIPE = "regions"
RECIPE_VERSION = "1.0.0"
DATASET = "regions_land_0p5deg"

#: Sphere radius for ``cell_area`` (m): the authalic radius of the WGS84 ellipsoid.
EARTH_RADIUS = 6371007.2
WGS84_A = 6378137.0  # semi-major axis (m)
WGS84_F = 1 / 298.257223563  # flattening

RESOLUTION = 0.5  # degrees
LAT = np.arange(-89.75, 90.0, RESOLUTION)  # 360 cell centres, ascending
LON = np.arange(-179.75, 180.0, RESOLUTION)  # 720 cell centres
LAT_EDGES = np.linspace(-90.0, 90.0, LAT.size + 1)
LON_EDGES = np.linspace(-180.0, 180.0, LON.size + 1)

#: The 18 land regions: number -> (abbreviation, name).
REGIONS: dict[int, tuple[str, str]] = {
    1: ("USA", "USA"),
    2: ("CAN", "Canada"),
    3: ("CAM", "Central America"),
    4: ("NSA", "Northern South America"),
    5: ("SWSA", "Southwest South America"),
    6: ("BRA", "Brazil"),
    7: ("EUR", "Europe"),
    8: ("NAF", "Northern Africa"),
    9: ("EQAF", "Equatorial Africa"),
    10: ("SAF", "Southern Africa"),
    11: ("RUS", "Russia"),
    12: ("CAS", "Central Asia"),
    13: ("MDE", "Mideast"),
    14: ("CHN", "China"),
    15: ("KORJPN", "Korea and Japan"),
    16: ("SAS", "South Asia"),
    17: ("SEAS", "Southeast Asia"),
    18: ("OCE", "Oceania"),
}
OTHER_LAND = 0  # land in no region (Greenland, Antarctica, French Southern Lands)

_GROUPS: dict[int, str] = {
    1: "USA",
    2: "CAN",
    3: "MEX GTM BLZ SLV HND NIC CRI PAN CUB JAM HTI DOM PRI BHS TTO",
    4: "COL VEN GUY SUR ECU GUF",
    5: "PER BOL CHL ARG PRY URY FLK",
    6: "BRA",
    7: "ALB AUT BEL BGR BIH BLR CHE CZE DEU DNK ESP EST FIN FRA GBR GRC HRV HUN IRL ISL ITA LTU LUX LVA "
    "MDA MKD MNE NLD NOR POL PRT ROU SRB SVK SVN SWE UKR XKX",
    8: "DZA EGY LBY MAR TUN ESH MRT MLI NER TCD SDN",
    9: "SEN GMB GNB GIN SLE LBR CIV GHA TGO BEN BFA NGA CMR CAF GNQ GAB COG COD SSD ETH ERI DJI SOM SOL "
    "KEN UGA RWA BDI TZA",
    10: "AGO ZMB MWI MOZ ZWE BWA NAM ZAF LSO SWZ MDG",
    11: "RUS",
    12: "KAZ UZB TKM KGZ TJK MNG AFG",
    13: "TUR SYR IRQ IRN SAU YEM OMN ARE QAT KWT JOR ISR PSE LBN CYP CYN ARM AZE GEO",
    14: "CHN TWN",
    15: "KOR PRK JPN",
    16: "IND PAK BGD NPL BTN LKA",
    17: "MMR THA LAO KHM VNM MYS BRN IDN PHL TLS PNG",
    18: "AUS NZL FJI NCL SLB VUT",
    OTHER_LAND: "GRL ATA ATF",
}
#: ISO 3166 alpha-3 code -> region number (approximate grouping; 0 = land in no region).
REGION_OF: dict[str, int] = {iso: r for r, codes in _GROUPS.items() for iso in codes.split()}

#: Natural Earth lowres rows whose ``iso_a3`` is -99: name -> code used above.
NAME_TO_ISO3 = {
    "France": "FRA",
    "Norway": "NOR",
    "Kosovo": "XKX",
    "Somaliland": "SOL",
    "N. Cyprus": "CYN",
}
#: Parts of multi-part countries that lie in another region: (ISO3, lon_min, lon_max) -> region.
PART_OVERRIDES: dict[tuple[str, float, float], int] = {
    ("FRA", -60.0, -50.0): 4,  # French Guiana belongs to Northern South America, not Europe
}


# --------------------------------------------------------------------------------------- the grid
def cell_area_sphere(radius: float = EARTH_RADIUS) -> np.ndarray:
    """Cell areas (m2) of the 0.5 degree grid on a sphere, shape (lat, lon)."""
    band = radius**2 * np.deg2rad(RESOLUTION) * np.diff(np.sin(np.deg2rad(LAT_EDGES)))
    return np.repeat(band[:, None], LON.size, axis=1)


def cell_area_wgs84() -> np.ndarray:
    """Cell areas (m2) of the 0.5 degree grid on the WGS84 ellipsoid, shape (lat, lon)."""
    e2 = WGS84_F * (2 - WGS84_F)
    e = np.sqrt(e2)
    b = WGS84_A * (1 - WGS84_F)
    s = np.sin(np.deg2rad(LAT_EDGES))
    q = s / (1 - e2 * s**2) + np.log((1 + e * s) / (1 - e * s)) / (2 * e)
    band = 0.5 * b**2 * np.deg2rad(RESOLUTION) * np.diff(q)
    return np.repeat(band[:, None], LON.size, axis=1)


def grid_coords() -> dict[str, tuple[str, np.ndarray, dict[str, str]]]:
    """CF coordinate variables ``lat`` and ``lon`` of the 0.5 degree grid."""
    return {
        "lat": (
            "lat",
            LAT.copy(),
            {
                "units": "degrees_north",
                "standard_name": "latitude",
                "long_name": "latitude of cell centre",
                "comment": "0.5 degree cells; each spans centre +- 0.25 degrees",
            },
        ),
        "lon": (
            "lon",
            LON.copy(),
            {
                "units": "degrees_east",
                "standard_name": "longitude",
                "long_name": "longitude of cell centre",
                "comment": "0.5 degree cells; each spans centre +- 0.25 degrees; -180..180",
            },
        ),
    }


# ---------------------------------------------------------------------------------------- the mask
@dataclass
class Countries:
    """Country polygons with their region numbers, as read from one shapefile."""

    file: str
    frame: Any  # geopandas.GeoDataFrame with columns iso3, region, geometry
    warnings: list[str]


def read_countries(shp: str) -> Countries:
    """Read Natural Earth country polygons and attach region numbers; :class:`InputError` if unusable."""
    import pyogrio

    try:
        gdf = pyogrio.read_dataframe(shp)
    except Exception as err:
        raise InputError(shp, f"cannot read as a shapefile: {err}") from err
    missing = [c for c in ("iso_a3", "name") if c not in gdf.columns]
    if missing:
        raise InputError(
            shp, f"missing attribute column(s) {missing}; expected Natural Earth 'iso_a3', 'name'"
        )
    if gdf.crs is not None and gdf.crs.to_epsg() != 4326:
        raise InputError(shp, f"coordinates are in {gdf.crs}, expected geographic WGS84 (EPSG:4326)")
    if len(gdf) < 50:
        raise InputError(shp, f"only {len(gdf)} polygons: expected the ~177 Natural Earth countries")
    iso = [
        NAME_TO_ISO3.get(n, i) if i in ("-99", None) else i
        for i, n in zip(gdf["iso_a3"], gdf["name"], strict=True)
    ]
    warnings = []
    regions = []
    for code, name in zip(iso, gdf["name"], strict=True):
        if code not in REGION_OF:
            warnings.append(f"{shp}: country {name!r} ({code}) is in no region table entry: other land")
        regions.append(REGION_OF.get(code, OTHER_LAND))
    gdf = gdf.assign(iso3=iso, region=regions)[["iso3", "name", "region", "geometry"]]
    gdf = gdf.explode(index_parts=False).reset_index(drop=True)  # one row per polygon part
    for (code, lo, hi), region in PART_OVERRIDES.items():
        cx = gdf.geometry.representative_point().x
        gdf.loc[(gdf["iso3"] == code) & (cx > lo) & (cx < hi), "region"] = region
    return Countries(shp, gdf, warnings)


def rasterize(countries: Countries) -> xr.Dataset:
    """Region fractions, majority region and land fraction on the 0.5 degree grid."""
    import regionmask

    frame = countries.frame.dissolve(by="region").reset_index()
    numbers = [*sorted(REGIONS), 99]  # 99: other land (regionmask needs distinct numbers)
    frame["number"] = [99 if r == OTHER_LAND else int(r) for r in frame["region"]]
    frame["abbrev"] = [REGIONS.get(int(r), ("OTH", ""))[0] for r in frame["region"]]
    frame["label"] = [REGIONS.get(int(r), ("", "other land"))[1] for r in frame["region"]]
    reg = regionmask.from_geopandas(
        frame, numbers="number", names="label", abbrevs="abbrev", name="fluxcube approximate RECCAP2 land"
    )
    frac = reg.mask_3D_frac_approx(LON, LAT, drop=False)  # (region, lat, lon)
    frac = frac.reindex(region=numbers, fill_value=0.0)
    values = np.nan_to_num(frac.values.astype("float64"))
    land = np.clip(values.sum(axis=0), 0.0, 1.0)
    regional = values[:-1]  # the 18 regions
    best = regional.argmax(axis=0) + 1
    share = regional.max(axis=0)
    majority = np.where((land >= 0.5) & (share > 0), best, 0).astype("int8")
    return _dataset(regional, land, majority)


def _dataset(regional: np.ndarray, land: np.ndarray, majority: np.ndarray) -> xr.Dataset:
    nums = np.array(sorted(REGIONS), dtype="int8")
    coords: dict[str, Any] = dict(grid_coords())
    coords["region"] = ("region", nums, {"long_name": "region number"})
    coords["region_abbrev"] = (
        "region",
        np.array([REGIONS[int(n)][0] for n in nums], dtype=object),
        {"long_name": "region abbreviation"},
    )
    coords["region_name"] = (
        "region",
        np.array([REGIONS[int(n)][1] for n in nums], dtype=object),
        {"long_name": "region name"},
    )
    meanings = " ".join(["none", *[REGIONS[int(n)][1].replace(" ", "_") for n in nums]])
    data = {
        "region_fraction": (
            ("region", "lat", "lon"),
            regional.astype("float32"),
            {
                "units": "1",
                "long_name": "fraction of the cell inside the region (approximate)",
                "comment": "regionmask mask_3D_frac_approx: 10x10 sub-cell rasterisation",
            },
        ),
        "land_fraction": (
            ("lat", "lon"),
            land.astype("float32"),
            {
                "units": "1",
                "standard_name": "land_area_fraction",
                "long_name": "fraction of the cell covered by Natural Earth 1:110m land polygons",
            },
        ),
        "region_id": (
            ("lat", "lon"),
            majority,
            {
                "long_name": "land region of the cell (majority share; 0 = none)",
                "flag_values": np.arange(0, len(REGIONS) + 1, dtype="int8"),
                "flag_meanings": meanings,
                "comment": "cells with land_fraction >= 0.5 get the region with the largest share",
            },
        ),
        "cell_area": (
            ("lat", "lon"),
            cell_area_sphere(),
            {
                "units": "m2",
                "standard_name": "cell_area",
                "long_name": f"cell area on a sphere of radius {EARTH_RADIUS} m",
            },
        ),
        "cell_area_wgs84": (
            ("lat", "lon"),
            cell_area_wgs84(),
            {"units": "m2", "standard_name": "cell_area", "long_name": "cell area on the WGS84 ellipsoid"},
        ),
    }
    return xr.Dataset(data, coords=coords)


def region_areas(ds: xr.Dataset, area: str = "cell_area") -> dict[str, float]:
    """Land area (m2) of each region: sum over cells of region fraction times cell area."""
    a = ds[area].values
    return {
        str(name): float((ds["region_fraction"].values[k] * a).sum())
        for k, name in enumerate(ds["region_name"].values)
    }


def _read_and_rasterize(shp: str) -> tuple[dict[str, Any] | None, list[str], tuple[str, ...] | None]:
    """Child-process side of :func:`build_isolated`: returns plain data only (an error as strings), so
    that unpickling the result never imports GDAL or PROJ into the parent."""
    import pyogrio  # noqa: F401  GDAL and PROJ first, before anything can load ecCodes
    import pyproj  # noqa: F401
    import rasterio.features  # noqa: F401

    try:
        countries = read_countries(shp)
        return rasterize(countries).to_dict(data="array"), countries.warnings, None
    except InputError as err:
        return None, [], (err.file, err.message)


def build_isolated(shp: str) -> tuple[xr.Dataset, list[str]]:
    """:func:`read_countries` + :func:`rasterize` in a fresh (spawned) process.

    Why: ecCodes' wheels (eccodeslib/eckitlib, loaded as soon as xarray lists its engines, since
    cfgrib registers one) bring their own PROJ and SQLite; once they are loaded, pyproj fails with
    "no database context" and pyogrio's GDAL may crash (double free) in the same process. A fresh
    process loads GDAL and PROJ first. :class:`InputError` from the child is raised here as is.
    """
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        data, warnings, error = pool.submit(_read_and_rasterize, shp).result()
    if error is not None:
        raise InputError(*error)
    assert data is not None
    return xr.Dataset.from_dict(data), warnings


# ------------------------------------------------------------------------------- RECCAP2 mask files
MASK_VARIABLE = "land_regions"
LANDMASK_VARIABLE = "landmask"


def find_mask_file(source: str) -> str | None:
    """The RECCAP2-layout land mask file under ``source`` (a ``.nc`` file or a folder), or None.

    A folder counts when one of its NetCDF files has a :data:`MASK_VARIABLE` variable (the official
    RECCAP2 *ocean* masks, with other variable names, do not); a ``.nc`` file given directly must have it.
    """
    import netCDF4

    path = Path(source)
    if path.is_file() and path.suffix != ".nc":
        return None
    files = [path] if path.is_file() else sorted(path.rglob("*.nc")) if path.is_dir() else []
    for f in files:
        try:
            with netCDF4.Dataset(f) as nc:
                if MASK_VARIABLE in nc.variables:
                    return str(f)
        except OSError as err:
            if path.is_file():
                raise InputError(str(f), f"cannot read as NetCDF: {err}") from err
    if path.is_file() and path.suffix == ".nc":
        raise InputError(source, f"no variable {MASK_VARIABLE!r}: expected a RECCAP2-layout land region mask")
    return None


def _axis(path: str, name: str, values: np.ndarray, extent: float) -> float:
    """Cell size (degrees) of a regular global axis; :class:`InputError` otherwise."""
    if values.ndim != 1 or values.size < 2:
        raise InputError(path, f"coordinate {name!r}: expected a 1-D axis, got shape {values.shape}")
    step = np.diff(values)
    res = float(np.abs(step).mean())
    if not (np.all(step > 0) or np.all(step < 0)) or np.abs(np.abs(step) - res).max() > 1e-6 * res:
        raise InputError(path, f"coordinate {name!r}: expected a regular monotonic axis")
    if abs(values.size * res - extent) > 1e-6 * extent:
        raise InputError(
            path, f"coordinate {name!r}: {values.size} cells of {res} degrees do not span {extent}"
        )
    return res


def read_mask(path: str) -> xr.Dataset:
    """A RECCAP2-layout land mask file as the regions dataset on the 0.5 degree grid (see the module doc)."""
    import netCDF4

    try:
        with netCDF4.Dataset(path) as nc:
            var = nc[MASK_VARIABLE]
            if tuple(var.dimensions) != ("lat", "lon"):
                raise InputError(
                    path, f"{MASK_VARIABLE}: dimensions {var.dimensions}, expected ('lat', 'lon')"
                )
            lat = np.asarray(nc["lat"][:], dtype="float64")
            lon = np.asarray(nc["lon"][:], dtype="float64")
            mask = np.ma.filled(var[:], 0)
            land = np.ma.filled(nc[LANDMASK_VARIABLE][:], 0) if LANDMASK_VARIABLE in nc.variables else None
    except (OSError, KeyError, IndexError) as err:
        raise InputError(path, f"cannot read the mask ({err})") from err
    res = _axis(path, "lat", lat, 180.0)
    if abs(_axis(path, "lon", lon, 360.0) - res) > 1e-9:
        raise InputError(path, "lat and lon cell sizes differ: expected square cells")
    values = np.unique(mask)
    if not np.all(np.isin(values, np.arange(0, len(REGIONS) + 1))):
        bad = [v for v in values.tolist() if v not in range(len(REGIONS) + 1)]
        raise InputError(
            path, f"{MASK_VARIABLE}: values {bad[:5]} outside the region numbers 0..{len(REGIONS)}"
        )
    mask = mask.astype("int16")
    land = (mask > 0) if land is None else (land > 0)
    if lat[0] > lat[-1]:
        mask, land = mask[::-1], land[::-1]
    order = np.argsort(np.mod(lon + 180.0, 360.0))  # -180..180
    mask, land = mask[:, order], land[:, order]
    ratio = res / RESOLUTION
    if ratio >= 1:
        k = round(ratio)
        if abs(k - ratio) > 1e-6:
            raise InputError(path, f"cells of {res} degrees are not a whole multiple of {RESOLUTION}")
        regional = np.stack([np.kron(mask == r, np.ones((k, k))) for r in sorted(REGIONS)])
        land_frac = np.kron(land, np.ones((k, k)))
    else:
        k = round(1 / ratio)
        if abs(k - 1 / ratio) > 1e-6:
            raise InputError(path, f"cells of {res} degrees do not divide {RESOLUTION}")

        def block_mean(a: np.ndarray) -> np.ndarray:
            return a.reshape(LAT.size, k, LON.size, k).mean(axis=(1, 3))

        regional = np.stack([block_mean(mask == r) for r in sorted(REGIONS)])
        land_frac = block_mean(land.astype("float64"))
    best = regional.argmax(axis=0) + 1
    majority = np.where((land_frac >= 0.5) & (regional.max(axis=0) > 0), best, 0).astype("int8")
    ds = _dataset(regional, land_frac, majority)
    ds["land_fraction"].attrs["long_name"] = f"fraction of the cell that is land in {Path(path).name}"
    ds["region_fraction"].attrs["comment"] = (
        f"{res} degree mask cells {'repeated' if ratio >= 1 else 'averaged'}"
    )
    return ds


# -------------------------------------------------------------------------------------- the recipe
def find_shapefile(source: str) -> str:
    """The Natural Earth lowres shapefile under ``source`` (a folder or the ``.shp`` itself)."""
    if source.endswith(".shp"):
        return source
    found = sorted(Path(source).rglob("naturalearth_lowres.shp")) or sorted(Path(source).rglob("*.shp"))
    if not found:
        raise InputError(source, "no shapefile (naturalearth_lowres.shp) found")
    return str(found[0])


def _companions(shp: str) -> list[str]:
    stem = shp[: -len(".shp")]
    return [
        f"{stem}{ext}" for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg") if Path(f"{stem}{ext}").exists()
    ]


#: Plausible land area (m2): with Antarctica (polygons), without it (mask files, e.g. the simulated world).
LAND_AREA_RANGE = (1.40e14, 1.55e14)
MASK_LAND_AREA_RANGE = (1.20e14, 1.55e14)


def validate(ds: xr.Dataset, land_range: tuple[float, float] = LAND_AREA_RANGE) -> None:
    """Physical checks on the written mask: areas (m2), fractions, region sizes."""
    total = float(ds["cell_area"].sum())
    if abs(total / (4 * np.pi * EARTH_RADIUS**2) - 1) > 1e-9:
        raise ValueError(f"cell areas sum to {total:.6e} m2, not the sphere's surface")
    frac = ds["region_fraction"].values
    if np.nanmin(frac) < -1e-6 or np.nanmax(frac.sum(axis=0)) > 1 + 1e-6:
        raise ValueError("region fractions outside [0, 1] or overlapping regions")
    land = float((ds["land_fraction"] * ds["cell_area"]).sum())
    if not land_range[0] < land < land_range[1]:
        raise ValueError(
            f"land area {land:.3e} m2 outside the plausible {land_range[0]:.2e}..{land_range[1]:.2e}"
        )
    for name, area in region_areas(ds).items():
        if area <= 1e11:
            raise ValueError(f"region {name} has an implausible area {area:.3e} m2")


def run(source: str, target: str, runner: str = "DirectRunner", force: bool = False) -> RunSummary:
    """Build the 18-region land mask from a RECCAP2-layout mask file under ``source`` when there is one,
    else from the Natural Earth polygons under ``source``."""
    summary = RunSummary()
    mask_file = find_mask_file(source)
    if mask_file is not None:
        files, origin = [mask_file], mask_file
        description = (
            f"18-region land mask on the 0.5 degree grid, with cell areas (from {Path(mask_file).name})"
        )
        params: dict[str, Any] = {"grid": "0.5deg", "radius_m": EARTH_RADIUS, "fraction": "mask cells"}
    else:
        origin = find_shapefile(source)
        files = _companions(origin)
        description = (
            "Approximate 18-region RECCAP2-like land mask on the 0.5 degree grid, with cell areas "
            "(from Natural Earth 1:110m countries)"
        )
        params = {"grid": "0.5deg", "radius_m": EARTH_RADIUS, "fraction": "regionmask frac_approx"}
    pattern = FilePattern(lambda file: file, ConcatDim("file", keys=[origin]))
    release = Release(
        name=DATASET,
        recipe=RECIPE,
        recipe_version=RECIPE_VERSION,
        inputs=iter_files(files),
        description=description,
        params=params,
        synthetic=Path(origin).parent.joinpath("SYNTHETIC.json").exists(),
    )
    pub = Publisher(target)
    store = pub.prepare(release, force=force)
    if store is None:
        summary.up_to_date[DATASET] = release.version
        pub.write_catalog()
        return summary
    run_dir = pub.root.child("_runs", f"{RECIPE}-{uuid.uuid4().hex[:12]}").url

    def build(item: tuple[Any, str]) -> dict[str, Any]:
        if mask_file is not None:
            ds, warnings = read_mask(item[1]), []
        else:
            ds, warnings = build_isolated(item[1])
        write_store(store, ds, release, item[1])
        return {"warnings": warnings, "areas": region_areas(ds)}

    with beam.Pipeline(options=pipeline_options(runner)) as p:
        out = (
            p
            | "files" >> beam.Create(list(pattern.items()))
            | "rasterize"
            >> beam.ParDo(MapOrRefuse(build, "rasterize", lambda e: e[1])).with_outputs(REFUSED, main="ok")
        )
        _ = out.ok | "checks" >> WriteRecords(run_dir, "checks")
        _ = out[REFUSED] | "refusals" >> WriteRecords(run_dir, "refused")
    checks = read_records(run_dir, "checks")
    summary.refused = read_records(run_dir, "refused")
    location(run_dir).remove()
    if checks:
        summary.warnings += checks[0]["warnings"]
        land_range = LAND_AREA_RANGE if mask_file is None else MASK_LAND_AREA_RANGE
        pub.commit(
            release,
            validate=lambda ds: validate(ds, land_range),
            catalog_metadata=lambda ds: {**describe(ds), "approximate": ds.attrs["approximate"] == "true"},
        )
        summary.published[DATASET] = release.version
    else:
        pub.write_catalog()
    return summary


def write_store(store: Location, ds: xr.Dataset, release: Release, origin: str) -> None:
    """Write the mask as a Zarr v3 store with provenance (one chunk per variable: 2 MB at most).

    ``origin``: the Natural Earth shapefile or the RECCAP2-layout mask file it was built from."""
    ds = ds.copy()
    common = {
        **release.provenance(),
        "Conventions": "CF-1.10",
        "cell_area_sphere_radius_m": EARTH_RADIUS,
    }
    if origin.endswith(".shp"):
        ds.attrs = {
            **common,
            "title": "fluxcube approximate RECCAP2-like land regions, 0.5 degree",
            "approximate": "true",
            "comment": "Groups of Natural Earth 1:110m countries approximating the 18 RECCAP2/GCP land "
            "regions; NOT the official RECCAP2 mask. Greenland and Antarctica are land in no region.",
            "iso3_to_region": json.dumps({k: REGION_OF[k] for k in sorted(REGION_OF)}),
            "part_overrides": json.dumps(
                {f"{k[0]} lon {k[1]}..{k[2]}": v for k, v in PART_OVERRIDES.items()}
            ),
            "source_polygons": Path(origin).name,
        }
    else:
        import netCDF4

        with netCDF4.Dataset(origin) as nc:
            approximate = str(getattr(nc, "approximate", "false")).lower()
        ds.attrs = {
            **common,
            "title": "fluxcube 18 land regions, 0.5 degree, from a RECCAP2-layout mask file",
            "approximate": "true" if approximate == "true" else "false",
            "comment": f"Regions of {Path(origin).name} ({MASK_VARIABLE}) on the 0.5 degree grid.",
            "source_mask": Path(origin).name,
        }
    enc = {name: {"chunks": ds[name].shape} for name in ds.data_vars}
    ds.to_zarr(store.zarr_store(), mode="w", zarr_format=3, consolidated=False, encoding=enc)
