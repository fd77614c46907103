"""(site, time) Zarr v3 stores: one per data product and time step, written site by site.

A store's template (coordinates, site metadata, empty data variables) is written first; each site
then writes only its own chunks (chunks are one site wide), so sites can be written in parallel
and memory holds one site at a time. Variables a site lacks stay at the fill value (NaN).
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
import zarr.api.asynchronous as zarr_async
from zarr.core.sync import sync as zarr_sync

from fluxcube.recipes.fluxnet import SiteTable, value_digest
from fluxcube.storage import Location

FREQ = {"HH": "30min", "HR": "h", "DD": "D", "WW": "7D", "MM": "MS", "YY": "YS"}
TIME_CHUNK = {"HH": 17520, "HR": 8760, "DD": 3660, "WW": 520, "MM": 1200, "YY": 200}
TIME_UNITS = {
    "HH": "minutes since 1970-01-01 00:00:00",
    "HR": "minutes since 1970-01-01 00:00:00",
    "DD": "days since 1970-01-01",
    "WW": "days since 1970-01-01",
    "MM": "days since 1970-01-01",
    "YY": "days since 1970-01-01",
}
TIME_COMMENT = {
    "sub-daily": "start of the averaging period, UTC (local standard time minus the site's utc_offset)",
    "daily+": "first day of the period as labelled in the source file: periods of local standard time "
    "(see utc_offset)",
}
SITE_FIELDS = {  # name -> (dtype, fill, attrs)
    "lat": (
        "float64",
        np.nan,
        {"units": "degrees_north", "standard_name": "latitude", "long_name": "tower latitude"},
    ),
    "lon": (
        "float64",
        np.nan,
        {"units": "degrees_east", "standard_name": "longitude", "long_name": "tower longitude"},
    ),
    "elevation": ("float64", np.nan, {"units": "m", "long_name": "site elevation above sea level"}),
    "utc_offset": ("float64", np.nan, {"units": "h", "long_name": "offset of local standard time from UTC"}),
    "igbp": ("str", "", {"long_name": "IGBP land cover class (plant functional type)"}),
    "koeppen": ("str", "", {"long_name": "Koeppen-Geiger climate class"}),
    "site_name": ("str", "", {"long_name": "site name"}),
}


@dataclass
class Schema:
    """What one store holds: the union over its sites of variables and time range."""

    store: str
    step: str
    variables: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    sites: list[str] = field(default_factory=list)
    tmin: np.datetime64 | None = None
    tmax: np.datetime64 | None = None

    def merge(self, other: Schema) -> Schema:
        out = dataclasses.replace(
            self, variables=dict(self.variables), sites=sorted(set(self.sites) | set(other.sites))
        )
        for name, (dtype, attrs) in other.variables.items():
            if name in out.variables:
                mine = out.variables[name][0]
                out.variables[name] = (str(np.promote_types(mine, dtype)), out.variables[name][1])
            else:
                out.variables[name] = (dtype, attrs)
        mins = [t for t in (self.tmin, other.tmin) if t is not None]
        maxs = [t for t in (self.tmax, other.tmax) if t is not None]
        out.tmin = min(mins) if mins else None
        out.tmax = max(maxs) if maxs else None
        return out

    def time(self) -> pd.DatetimeIndex:
        return pd.date_range(self.tmin, self.tmax, freq=FREQ[self.step])


def schema_of(table: SiteTable) -> Schema:
    """The schema of a single site's table."""
    variables = {k: (str(v.dtype), table.attrs[k]) for k, v in table.columns.items()}
    return Schema(table.store, table.step, variables, [table.site], table.time.min(), table.time.max())


def merge_schemas(schemas: list[Schema]) -> Schema:
    out = schemas[0]
    for s in schemas[1:]:
        out = out.merge(s)
    return out


def write_template(
    loc: Location, schema: Schema, site_meta: dict[str, dict[str, Any]], attrs: dict[str, Any]
) -> None:
    """Write coordinates, site metadata and empty (all-NaN, not stored) data variables."""
    time = schema.time()
    nsite, ntime = len(schema.sites), time.size
    chunk = min(TIME_CHUNK[schema.step], ntime)
    coords: dict[str, Any] = {"site": ("site", np.array(schema.sites, dtype=object)), "time": ("time", time)}
    for name, (dtype, fill, a) in SITE_FIELDS.items():
        vals = [site_meta.get(s, {}).get(name, fill) for s in schema.sites]
        coords[name] = ("site", np.array(vals, dtype=object if dtype == "str" else dtype), a)
    ds = xr.Dataset(coords=coords, attrs=attrs)
    sub_daily = schema.step in ("HH", "HR")
    ds["time"].attrs.update(
        {
            "long_name": "time",
            "standard_name": "time",
            "comment": TIME_COMMENT["sub-daily" if sub_daily else "daily+"],
        }
    )
    ds["site"].attrs.update({"long_name": "FLUXNET site id", "cf_role": "timeseries_id"})
    encoding: dict[str, dict[str, Any]] = {
        "time": {"units": TIME_UNITS[schema.step], "calendar": "proleptic_gregorian", "dtype": "int64"}
    }
    store = loc.zarr_store()
    ds.to_zarr(store, mode="w", zarr_format=3, consolidated=False, encoding=encoding)
    # The data variables: hundreds of empty arrays, created concurrently with zarr's async API (xarray
    # creates them one by one, 7x slower). Attributes as xarray writes them: "coordinates" ties the
    # site metadata to each variable; NaN is the fill value, and no chunk is stored until written.
    site_coords = " ".join(sorted(SITE_FIELDS))

    async def create() -> None:
        group = await zarr_async.open_group(store=store, mode="r+")
        await asyncio.gather(
            *(
                group.create_array(
                    name,
                    shape=(nsite, ntime),
                    chunks=(1, chunk),
                    dtype=dtype,
                    fill_value=np.nan,
                    dimension_names=("site", "time"),
                    attributes={**vattrs, "coordinates": site_coords},
                )
                for name, (dtype, vattrs) in sorted(schema.variables.items())
            )
        )

    zarr_sync(create())


def write_site(loc: Location, schema: Schema, table: SiteTable) -> dict[str, Any]:
    """Write one site's values into its chunks of the store; return its checks."""
    time = schema.time()
    i = schema.sites.index(table.site)
    idx = time.get_indexer(pd.DatetimeIndex(table.time))
    if (idx < 0).any():
        raise ValueError(f"{table.site}: timestamps off the store's {schema.step} time grid")
    chunk = min(TIME_CHUNK[schema.step], time.size)
    j0 = (idx.min() // chunk) * chunk
    j1 = min(time.size, (idx.max() // chunk + 1) * chunk)
    store = loc.zarr_store()

    async def write() -> None:  # every variable's block concurrently (xarray writes them one by one)
        group = await zarr_async.open_group(store=store, mode="r+")
        names = list(table.columns)
        arrays = await asyncio.gather(*(group.getitem(name) for name in names))
        blocks = []
        for name in names:
            block = np.full((1, j1 - j0), np.nan, dtype=schema.variables[name][0])
            block[0, idx - j0] = table.columns[name]
            blocks.append(block)
        await asyncio.gather(
            *(
                a.setitem((slice(i, i + 1), slice(int(j0), int(j1))), b)
                for a, b in zip(arrays, blocks, strict=True)
            )
        )

    zarr_sync(write())
    return {
        "store": table.store,
        "site": table.site,
        "files": table.files,
        "checks": table.checks(),
        "warnings": table.warnings,
    }


def validate_store(ds: xr.Dataset, checks: list[dict[str, Any]]) -> None:
    """Every site's values of each variable must be exactly those read from its files."""
    sites = [str(s) for s in ds["site"].values]
    expected_sites = sorted(c["site"] for c in checks)
    if sorted(sites) != expected_sites:
        raise ValueError(f"sites in store {sorted(sites)} != written {expected_sites}")
    row = {s: i for i, s in enumerate(sites)}
    names = {name for c in checks for name in c["checks"]}
    for name in sorted(names):
        values = np.asarray(ds[name].values)  # (site, time): one read per variable
        for c in checks:
            if name not in c["checks"]:
                continue
            got = value_digest(values[row[c["site"]]])
            if got != list(c["checks"][name]):
                raise ValueError(
                    f"{c['site']}/{name}: store gives back {got[0]} values (sha256 {got[1][:12]}), "
                    f"the files had {c['checks'][name][0]} (sha256 {c['checks'][name][1][:12]})"
                )
