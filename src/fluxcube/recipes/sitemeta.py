"""Site metadata (coordinates, elevation, IGBP class, Koeppen climate, UTC offset) from the tables
that come with FLUXNET data.

Recognised tables (by their header, wherever they lie under the metadata folder):

1. the official FLUXNET BIF table (``FLX_AA-Flx_BIF_*.csv``, ``;``-separated long format);
2. site-info tables with ``sitename, lon, lat, elv, ..., koeppen_code, igbp_land_use`` columns
   (``siteinfo_fluxnet2015.csv``, FluxDataKit's ``fdk_site_info.csv``, the simulator's table), an
   optional ``utc_offset`` column; where ``igbp_land_use`` is missing, ``classid`` is used;
3. the long FLUXNET site list (``fluxnet_site_info_all.csv``: ``fluxnetid, latitude, longitude``...).

Earlier tables win field by field; every value records the table it came from.
"""

from __future__ import annotations

import io
import logging
import math
import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from fluxcube.recipes.textfile import decode_text
from fluxcube.storage import location

log = logging.getLogger(__name__)

FIELDS = ("lat", "lon", "elevation", "igbp", "koeppen", "utc_offset", "site_name")
_IGBP = {
    "CRO",
    "CSH",
    "CVM",
    "DBF",
    "DNF",
    "EBF",
    "ENF",
    "GRA",
    "MF",
    "OSH",
    "SAV",
    "SNO",
    "URB",
    "WAT",
    "WET",
    "WSA",
    "BSV",
}


@dataclass
class SiteMetadata:
    """Merged metadata: site id -> field -> value, and field -> source table."""

    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    sources: dict[str, dict[str, str]] = field(default_factory=dict)
    tables: list[str] = field(default_factory=list)

    def add(self, site: str, key: str, value: Any, table: str) -> None:
        if value is None or (isinstance(value, float) and math.isnan(value)) or value in ("", "NA", "(null)"):
            return
        have = self.values.setdefault(site, {})
        if key not in have:
            have[key] = value
            self.sources.setdefault(site, {})[key] = os.path.basename(table)

    def get(self, site: str) -> dict[str, Any]:
        return dict(self.values.get(site, {}))

    def utc_offset(self, site: str) -> float | None:
        v = self.values.get(site, {}).get("utc_offset")
        return None if v is None else float(v)


def _read(url: str) -> str:
    loc = location(url)
    with loc.fs.open(loc.path, "rb") as f:
        return decode_text(f.read(), url, encodings=("utf-8", "cp1252", "mac_roman"))


def _num(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def _load_bif(meta: SiteMetadata, url: str, frame: pd.DataFrame) -> None:
    keys = {
        "LOCATION_LAT": "lat",
        "LOCATION_LONG": "lon",
        "LOCATION_ELEV": "elevation",
        "IGBP": "igbp",
        "UTC_OFFSET": "utc_offset",
        "SITE_NAME": "site_name",
    }
    sub = frame[frame["VARIABLE"].isin(keys)]
    for site, var, value in sub[["SITE_ID", "VARIABLE", "DATAVALUE"]].itertuples(index=False):
        key = keys[var]
        meta.add(site, key, value if key in ("igbp", "site_name") else _num(value), url)


def _load_siteinfo(meta: SiteMetadata, url: str, frame: pd.DataFrame) -> None:
    for row in frame.to_dict("records"):
        site = row["sitename"]
        meta.add(site, "lat", _num(row.get("lat")), url)
        meta.add(site, "lon", _num(row.get("lon")), url)
        meta.add(site, "elevation", _num(row.get("elv")), url)
        igbp = row.get("igbp_land_use")
        if not isinstance(igbp, str) or igbp not in _IGBP:
            igbp = row.get("classid")
        if isinstance(igbp, str) and igbp in _IGBP:
            meta.add(site, "igbp", igbp, url)
        if isinstance(row.get("koeppen_code"), str):
            meta.add(site, "koeppen", row["koeppen_code"], url)
        if "utc_offset" in row:
            meta.add(site, "utc_offset", _num(row.get("utc_offset")), url)


def _load_site_list(meta: SiteMetadata, url: str, frame: pd.DataFrame) -> None:
    for row in frame.to_dict("records"):
        site = row["fluxnetid"]
        meta.add(site, "lat", _num(row.get("latitude")), url)
        meta.add(site, "lon", _num(row.get("longitude")), url)
        meta.add(site, "elevation", _num(row.get("gtopo30_elevation")), url)
        meta.add(site, "site_name", row.get("sitename"), url)
        k = row.get("koeppen_climate")
        if isinstance(k, str) and k != "(null)":
            meta.add(site, "koeppen", k.split(" ")[0], url)


def load_metadata(urls: list[str]) -> SiteMetadata:
    """Merge every recognised metadata table among ``urls`` (others are ignored)."""
    tables: list[tuple[int, str, pd.DataFrame]] = []
    for url in urls:
        if not url.lower().endswith(".csv"):
            continue
        text = _read(url)
        head = text.split("\n", 1)[0]
        if head.startswith("SITE_ID;") and "DATAVALUE" in head:
            tables.append((0, url, pd.read_csv(io.StringIO(text), sep=";", dtype=str, keep_default_na=False)))
        elif head.startswith("sitename,") and "lat" in head.split(","):
            rank = 1 if "fdk" not in os.path.basename(url) else 2
            tables.append((rank, url, pd.read_csv(io.StringIO(text))))
        elif "fluxnetid" in head.split(",") and "latitude" in head.split(","):
            tables.append((3, url, pd.read_csv(io.StringIO(text))))
    meta = SiteMetadata()
    loaders = {0: _load_bif, 1: _load_siteinfo, 2: _load_siteinfo, 3: _load_site_list}
    for rank, url, frame in sorted(tables, key=lambda t: (t[0], t[1])):
        loaders[rank](meta, url, frame)
        meta.tables.append(url)
    return meta


def find_metadata_tables(source: str) -> list[str]:
    """CSV tables in any ``metadata`` folder under ``source``."""
    loc = location(source)
    prefix = "" if loc.is_local else loc.url.split("://")[0] + "://"
    return sorted(
        prefix + p for p in loc.fs.find(loc.path) if "/metadata/" in p and p.lower().endswith(".csv")
    )
