"""The simulated tower network: real FLUXNET2015 sites when the sample data is present, else generated.

With the real data folder (``FLUXCUBE_DATA``, default ``../shared/data``) the towers are the 166 sites
of ``sites/metadata/siteinfo_fluxnet2015.csv`` (coordinates, IGBP class, years, Koeppen class) with
UTC offsets from the FLUXNET Badm Information File ``sites/metadata/FLX_AA-Flx_BIF_LATEST.csv``
(``round(lon / 15)`` where it has none). Without it a network with the same spread is generated:
the FLUXNET2015 counts per PFT, latitude band and longitude sector (table below, counted once from
the real file) are reproduced, locations drawn uniformly inside each band and sector on land
(``global-land-mask``, 1 km), and record lengths and end years drawn from the FLUXNET2015 ones.
Generated sites are named ``ZZ-001``... (``ZZ`` is no country code).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fluxcube import config

log = logging.getLogger(__name__)

SITEINFO = "sites/metadata/siteinfo_fluxnet2015.csv"
BIF = "sites/metadata/FLX_AA-Flx_BIF_LATEST.csv"
SITEINFO_COLUMNS = [
    "sitename",
    "lon",
    "lat",
    "elv",
    "year_start",
    "year_end",
    "classid",
    "c4",
    "whc",
    "koeppen_code",
    "igbp_land_use",
    "plant_functional_type",
]

# FLUXNET2015 (siteinfo_fluxnet2015.csv, 166 sites): counts per PFT as (latitude band, sector, count)
LAT_BANDS = [
    (-60.0, -23.5),
    (-23.5, 0.0),
    (0.0, 23.5),
    (23.5, 35.0),
    (35.0, 45.0),
    (45.0, 55.0),
    (55.0, 65.0),
    (65.0, 80.0),
]
SECTORS = [(-170.0, -30.0), (-30.0, 60.0), (60.0, 180.0)]  # Americas, Europe-Africa, Asia-Oceania
FLUXNET2015_SPREAD: dict[str, list[tuple[int, int, int]]] = {
    "CRO": [(4, 0, 7), (4, 1, 2), (5, 1, 7), (6, 1, 2)],
    "CSH": [(3, 0, 1), (4, 1, 1)],
    "DBF": [(0, 2, 1), (1, 1, 1), (4, 0, 2), (4, 1, 5), (4, 2, 1), (5, 0, 4), (5, 1, 4), (6, 1, 1)],
    "EBF": [(0, 2, 5), (1, 0, 1), (1, 2, 1), (2, 0, 1), (2, 2, 1), (4, 1, 3)],
    "ENF": [
        (0, 0, 1),
        (1, 2, 1),
        (3, 2, 1),
        (4, 0, 7),
        (4, 1, 3),
        (5, 0, 6),
        (5, 1, 9),
        (6, 0, 6),
        (6, 1, 2),
        (7, 0, 1),
        (7, 1, 1),
    ],
    "GRA": [
        (0, 2, 3),
        (1, 2, 2),
        (3, 0, 2),
        (3, 2, 1),
        (4, 0, 6),
        (4, 2, 4),
        (5, 1, 10),
        (5, 2, 1),
        (7, 1, 1),
    ],
    "MF": [(0, 0, 1), (4, 2, 2), (5, 0, 2), (5, 1, 3)],
    "OSH": [(1, 2, 1), (3, 0, 1), (4, 1, 2), (5, 0, 2), (6, 0, 2), (7, 2, 1)],
    "SAV": [(0, 1, 1), (0, 2, 2), (1, 2, 2), (2, 1, 2)],
    "SNO": [(7, 1, 1)],
    "WET": [(1, 2, 1), (4, 0, 4), (4, 2, 1), (5, 0, 1), (5, 1, 4), (6, 0, 1), (7, 1, 3), (7, 2, 1)],
    "WSA": [(0, 2, 1), (1, 2, 3), (3, 0, 1), (4, 0, 1)],
}
# FLUXNET2015 record lengths (years: sites) and last years (year: sites)
RECORD_LENGTHS = {
    1: 5,
    2: 15,
    3: 26,
    4: 26,
    5: 15,
    6: 3,
    7: 10,
    8: 5,
    9: 2,
    10: 6,
    11: 16,
    12: 2,
    13: 7,
    14: 7,
    15: 6,
    16: 3,
    17: 2,
    18: 2,
    19: 6,
    20: 1,
    22: 1,
}
LAST_YEARS = {
    2002: 2,
    2003: 2,
    2004: 5,
    2005: 19,
    2006: 8,
    2007: 2,
    2008: 8,
    2009: 9,
    2010: 4,
    2011: 4,
    2012: 11,
    2013: 16,
    2014: 76,
}


@dataclass
class TowerNetwork:
    """Tower sites (``SITEINFO_COLUMNS`` + ``utc_offset`` in hours) and where they came from.

    ``network_source`` is ``"fluxnet2015"`` (real coordinates and PFTs) or ``"generated"``; it is also
    in ``sites.attrs``.
    """

    sites: pd.DataFrame
    network_source: str

    def __post_init__(self) -> None:
        self.sites.attrs["network_source"] = self.network_source


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """The real sample data folder: ``data_dir``, else ``$FLUXCUBE_DATA``, else ``../shared/data``."""
    return Path(data_dir).expanduser().resolve() if data_dir is not None else config.data_dir()


def read_utc_offsets(bif_path: Path) -> pd.Series:
    """UTC offset (hours) per site from a FLUXNET BIF file (``;``-separated long format)."""
    bif = pd.read_csv(bif_path, sep=";", usecols=["SITE_ID", "VARIABLE", "DATAVALUE"], encoding="latin-1")
    rows = bif[bif["VARIABLE"] == "UTC_OFFSET"].drop_duplicates("SITE_ID")
    return pd.to_numeric(rows.set_index("SITE_ID")["DATAVALUE"], errors="coerce").dropna()


def read_fluxnet2015_sites(data_dir: Path) -> pd.DataFrame:
    """The FLUXNET2015 site table (``SITEINFO_COLUMNS`` + ``utc_offset``, hours) from ``data_dir``."""
    sites = pd.read_csv(data_dir / SITEINFO)[SITEINFO_COLUMNS]
    offsets = read_utc_offsets(data_dir / BIF) if (data_dir / BIF).exists() else pd.Series(dtype=float)
    utc = sites["sitename"].map(offsets)
    missing = utc.isna()
    if missing.any():
        log.info(
            "no UTC offset in the BIF for %s: using round(lon / 15)", ", ".join(sites["sitename"][missing])
        )
    sites["utc_offset"] = utc.fillna(np.round(sites["lon"] / 15.0)).astype(float)
    return sites


def _allocate(counts: np.ndarray, n: int) -> np.ndarray:
    """Integer counts summing to ``n`` proportional to ``counts`` (largest remainder, deterministic)."""
    exact = counts / counts.sum() * n
    out = np.floor(exact).astype(int)
    order = np.argsort(-(exact - out), kind="stable")
    out[order[: n - out.sum()]] += 1
    return out


def _is_land(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """True where (lat, lon) in degrees is land (global-land-mask, 1 km)."""
    from global_land_mask import globe  # lazy: only the generated network needs it

    return globe.is_land(lat, lon)


def _draw_on_land(rng: np.random.Generator, band: int, sector: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uniform land locations (lat, lon in degrees) in a latitude band and longitude sector."""
    (lat0, lat1), (lon0, lon1) = LAT_BANDS[band], SECTORS[sector]
    lats: list[float] = []
    lons: list[float] = []
    for _ in range(200):
        la, lo = rng.uniform(lat0, lat1, 64), rng.uniform(lon0, lon1, 64)
        land = _is_land(la, lo)
        lats.extend(la[land])
        lons.extend(lo[land])
        if len(lats) >= n:
            return np.round(np.array(lats[:n]), 4), np.round(np.array(lons[:n]), 4)
    raise RuntimeError(f"no land found in band {LAT_BANDS[band]} and sector {SECTORS[sector]}")


def generate_sites(n: int | None = None, seed: int = 0) -> pd.DataFrame:
    """A generated site table (``SITEINFO_COLUMNS`` + ``utc_offset``) with FLUXNET2015's spread.

    ``n`` sites (default: as many as FLUXNET2015, 166) spread over PFTs, latitude bands and sectors
    like ``FLUXNET2015_SPREAD``; coordinates in degrees, ``utc_offset`` = ``round(lon / 15)`` hours.
    """
    cells = [(pft, b, s, c) for pft, rows in FLUXNET2015_SPREAD.items() for b, s, c in rows]
    counts = np.array([c for *_, c in cells], dtype=float)
    alloc = _allocate(counts, int(counts.sum()) if n is None else n)
    rng = np.random.default_rng([seed, 2015])
    frames = []
    for (pft, band, sector, _), k in zip(cells, alloc, strict=True):
        if k:
            lat, lon = _draw_on_land(rng, band, sector, k)
            frames.append(pd.DataFrame({"lat": lat, "lon": lon, "classid": pft}))
    sites = pd.concat(frames, ignore_index=True)
    total = len(sites)
    lengths = rng.choice(list(RECORD_LENGTHS), total, p=_probabilities(RECORD_LENGTHS))
    last = rng.choice(list(LAST_YEARS), total, p=_probabilities(LAST_YEARS))
    sites = sites.assign(
        sitename=[f"ZZ-{i + 1:03d}" for i in range(total)],
        elv=np.nan,
        year_start=last - lengths + 1,
        year_end=last,
        c4=False,
        whc=np.nan,
        koeppen_code=pd.NA,
        igbp_land_use=pd.NA,
        plant_functional_type=pd.NA,
        utc_offset=np.round(sites["lon"] / 15.0),
    )
    return sites[[*SITEINFO_COLUMNS, "utc_offset"]]


def _probabilities(histogram: dict[int, int]) -> np.ndarray:
    """Normalised probabilities of a histogram's values (dimensionless)."""
    p = np.array(list(histogram.values()), dtype=float)
    return p / p.sum()


def _select(sites: pd.DataFrame, which: int | Sequence[str] | None, seed: int) -> pd.DataFrame:
    """All sites, ``which`` (int) of them drawn at random, or the named ones (sorted by name)."""
    if which is None:
        return sites
    if isinstance(which, int):
        if which >= len(sites):
            return sites
        rng = np.random.default_rng([seed, 166])
        return sites.iloc[np.sort(rng.choice(len(sites), which, replace=False))]
    unknown = sorted(set(which) - set(sites["sitename"]))
    if unknown:
        raise ValueError(f"sites not in the network: {', '.join(unknown)}")
    return sites[sites["sitename"].isin(list(which))]


def load_network(
    data_dir: str | Path | None = None,
    sites: int | Sequence[str] | None = None,
    start_year: int = 2001,
    end_year: int = 2017,
    seed: int = 0,
    site_years: bool = True,
) -> TowerNetwork:
    """The tower network for ``start_year..end_year`` (inclusive).

    Real FLUXNET2015 sites when ``data_dir`` (or ``$FLUXCUBE_DATA``, ``../shared/data``) holds the
    site table, else a generated network (logged as a warning). ``sites``: all (``None``), a seeded
    random subset of that many (``int``; a generated network is generated with that many), or the
    named ones. ``site_years``: keep each site's own record years (clipped to the period; sites
    without overlap are dropped), else every site covers the whole period.
    """
    root = resolve_data_dir(data_dir)
    if (root / SITEINFO).exists():
        table, source = _select(read_fluxnet2015_sites(root), sites, seed), "fluxnet2015"
    else:
        log.warning("real sample data not found at %s (set FLUXCUBE_DATA): generating a tower network", root)
        n = sites if isinstance(sites, int) else None
        table, source = _select(generate_sites(n, seed), None if n else sites, seed), "generated"
    table = table.copy()
    if site_years:
        table["year_start"] = table["year_start"].clip(lower=start_year)
        table["year_end"] = table["year_end"].clip(upper=end_year)
        dropped = table["year_start"] > table["year_end"]
        if dropped.any():
            log.info(
                "no years in %d-%d at %s: dropped",
                start_year,
                end_year,
                ", ".join(table["sitename"][dropped]),
            )
        table = table[~dropped]
    else:
        table["year_start"], table["year_end"] = start_year, end_year
    table = table.astype({"year_start": int, "year_end": int}).reset_index(drop=True)
    return TowerNetwork(table, source)
