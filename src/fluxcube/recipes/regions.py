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


def validate(ds: xr.Dataset) -> None:
    """Physical checks on the written mask: areas, fractions, region sizes."""
    total = float(ds["cell_area"].sum())
    if abs(total / (4 * np.pi * EARTH_RADIUS**2) - 1) > 1e-9:
        raise ValueError(f"cell areas sum to {total:.6e} m2, not the sphere's surface")
    frac = ds["region_fraction"].values
    if np.nanmin(frac) < -1e-6 or np.nanmax(frac.sum(axis=0)) > 1 + 1e-6:
        raise ValueError("region fractions outside [0, 1] or overlapping regions")
    land = float((ds["land_fraction"] * ds["cell_area"]).sum())
    if not 1.40e14 < land < 1.55e14:
        raise ValueError(f"land area {land:.3e} m2 outside the plausible 1.40e14..1.55e14")
    for name, area in region_areas(ds).items():
        if area <= 1e11:
            raise ValueError(f"region {name} has an implausible area {area:.3e} m2")


def run(source: str, target: str, runner: str = "DirectRunner", force: bool = False) -> RunSummary:
    """Build the approximate 18-region land mask from Natural Earth polygons under ``source``."""
    summary = RunSummary()
    shp = find_shapefile(source)
    files = _companions(shp)
    pattern = FilePattern(lambda file: file, ConcatDim("file", keys=[shp]))
    release = Release(
        name=DATASET,
        recipe=RECIPE,
        recipe_version=RECIPE_VERSION,
        inputs=iter_files(files),
        description="Approximate 18-region RECCAP2-like land mask on the 0.5 degree grid, with cell areas "
        "(from Natural Earth 1:110m countries)",
        params={"grid": "0.5deg", "radius_m": EARTH_RADIUS, "fraction": "regionmask frac_approx"},
        synthetic=Path(shp).parent.joinpath("SYNTHETIC.json").exists(),
    )
    pub = Publisher(target)
    store = pub.prepare(release, force=force)
    if store is None:
        summary.up_to_date[DATASET] = release.version
        pub.write_catalog()
        return summary
    run_dir = pub.root.child("_runs", f"{RECIPE}-{uuid.uuid4().hex[:12]}").url

    def build(item: tuple[Any, str]) -> dict[str, Any]:
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
        pub.commit(
            release, validate=validate, catalog_metadata=lambda ds: {**describe(ds), "approximate": True}
        )
        summary.published[DATASET] = release.version
    else:
        pub.write_catalog()
    return summary


def write_store(store: Location, ds: xr.Dataset, release: Release, shp: str) -> None:
    """Write the mask as a Zarr v3 store with provenance (one chunk per variable: 2 MB at most)."""
    ds = ds.copy()
    ds.attrs = {
        **release.provenance(),
        "title": "fluxcube approximate RECCAP2-like land regions, 0.5 degree",
        "approximate": "true",
        "Conventions": "CF-1.10",
        "comment": "Groups of Natural Earth 1:110m countries approximating the 18 RECCAP2/GCP land "
        "regions; NOT the official RECCAP2 mask. Greenland and Antarctica are land in no region.",
        "iso3_to_region": json.dumps({k: REGION_OF[k] for k in sorted(REGION_OF)}),
        "part_overrides": json.dumps({f"{k[0]} lon {k[1]}..{k[2]}": v for k, v in PART_OVERRIDES.items()}),
        "cell_area_sphere_radius_m": EARTH_RADIUS,
        "source_polygons": Path(shp).name,
    }
    enc = {name: {"chunks": ds[name].shape} for name in ds.data_vars}
    ds.to_zarr(store.zarr_store(), mode="w", zarr_format=3, consolidated=False, encoding=enc)
