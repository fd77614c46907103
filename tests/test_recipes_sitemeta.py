"""Tests of fluxcube.recipes.sitemeta: site metadata merged from the FLUXNET site tables."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from fluxcube.recipes import sitemeta

BIF = "FLX_AA-Flx_BIF_LATEST.csv"
SITEINFO = "siteinfo_fluxnet2015.csv"
FDK = "fdk_site_info.csv"
SITE_LIST = "fluxnet_site_info_all.csv"


@pytest.fixture(scope="module")
def real(sites_dir: Path) -> sitemeta.SiteMetadata:
    return sitemeta.load_metadata(sitemeta.find_metadata_tables(str(sites_dir)))


@pytest.fixture(scope="module")
def bif(sites_dir: Path) -> dict[str, dict[str, str]]:
    """Independent parse of the BIF table (';'-separated, not UTF-8): first value per site and variable."""
    out: dict[str, dict[str, str]] = {}
    with open(sites_dir / "metadata" / BIF, newline="", encoding="latin-1") as f:  # the fields used are ASCII
        for row in csv.DictReader(f, delimiter=";"):
            out.setdefault(row["SITE_ID"], {}).setdefault(row["VARIABLE"], row["DATAVALUE"])
    return out


# --------------------------------------------------------------------------- the real tables
def test_find_metadata_tables(sites_dir: Path) -> None:
    tables = sitemeta.find_metadata_tables(str(sites_dir))
    assert [Path(t).name for t in tables] == sorted(
        [BIF, FDK, SITE_LIST, "list_tier1_sites_fluxnet2015.csv", SITEINFO]
    )
    assert all("/metadata/" in t for t in tables)


def test_recognised_tables_in_precedence_order(real: sitemeta.SiteMetadata) -> None:
    assert [Path(t).name for t in real.tables] == [BIF, SITEINFO, FDK, SITE_LIST]  # not the tier-1 list


def test_us_prr(real: sitemeta.SiteMetadata) -> None:
    """US-Prr as the official BIF states it: lat 65.1237, lon -147.4876, ENF, UTC-9; Koeppen from siteinfo."""
    m = real.get("US-Prr")
    assert m["lat"] == 65.1237 and m["lon"] == -147.4876 and m["elevation"] == 210.0
    assert m["igbp"] == "ENF" and m["utc_offset"] == -9.0 and m["koeppen"] == "Dfc"
    assert real.utc_offset("US-Prr") == -9.0
    src = real.sources["US-Prr"]
    assert {k: src[k] for k in ("lat", "lon", "elevation", "igbp", "utc_offset")} == dict.fromkeys(
        ("lat", "lon", "elevation", "igbp", "utc_offset"), BIF
    )
    assert src["koeppen"] == SITEINFO


@pytest.mark.parametrize(
    "site", ["US-Prr", "US-Wi7", "FR-Pue", "DK-Fou", "BR-Sa1", "US-Syv", "US-ARM", "US-CRT", "CH-Lae"]
)
def test_sample_sites_match_the_bif(
    real: sitemeta.SiteMetadata, bif: dict[str, dict[str, str]], site: str
) -> None:
    ref = bif[site]
    m = real.get(site)
    assert m["lat"] == float(ref["LOCATION_LAT"])
    assert m["lon"] == float(ref["LOCATION_LONG"])
    assert m["elevation"] == float(ref["LOCATION_ELEV"])
    assert m["igbp"] == ref["IGBP"]
    assert m["utc_offset"] == float(ref["UTC_OFFSET"])


@pytest.mark.parametrize(
    ("site", "koeppen", "table"),
    [("US-Prr", "Dfc", SITEINFO), ("DK-Fou", "Cfb", SITEINFO), ("US-CRT", "Dfa", FDK)],
)
def test_koeppen_from_the_first_table_that_has_it(
    real: sitemeta.SiteMetadata, site: str, koeppen: str, table: str
) -> None:
    assert real.get(site)["koeppen"] == koeppen
    assert real.sources[site]["koeppen"] == table


def test_unknown_site(real: sitemeta.SiteMetadata) -> None:
    assert real.get("XX-Nop") == {}
    assert real.utc_offset("XX-Nop") is None


def test_bif_non_utf8_text_decoded(real: sitemeta.SiteMetadata, sites_dir: Path) -> None:
    raw = (sites_dir / "metadata" / BIF).read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert len(real.values) > 800  # and it was read anyway (Windows-1252)


# --------------------------------------------------------------------------- crafted tables
def _tables(tmp_path: Path, files: dict[str, str | bytes]) -> list[str]:
    folder = tmp_path / "sites" / "metadata"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    (tmp_path / "sites" / "other.csv").write_text("sitename,lat\nXX-Out,1\n")  # outside metadata/: ignored
    return sitemeta.find_metadata_tables(str(tmp_path / "sites"))


BIF_TEXT = (
    "SITE_ID;GROUP_ID;VARIABLE_GROUP;VARIABLE;DATAVALUE\n"
    "AA-One;1;GRP_LOCATION;LOCATION_LAT;10.5\n"
    "AA-One;1;GRP_LOCATION;LOCATION_LONG;-20.25\n"
    "AA-One;2;GRP_IGBP;IGBP;GRA\n"
    "AA-One;2;GRP_IGBP;IGBP_COMMENT;not a class\n"
    "AA-One;3;GRP_UTC_OFFSET;UTC_OFFSET;-3.5\n"
    "AA-One;4;GRP_LOCATION;LOCATION_LAT;99\n"  # a later location: the first one wins
    "AA-One;5;GRP_HEADER;SITE_NAME;Caf\xe9 meadow\n"
)
SITEINFO_TEXT = (
    "sitename,lon,lat,elv,year_start,year_end,classid,c4,whc,koeppen_code,igbp_land_use,plant_functional_type\n"
    "AA-One,1,2,300,2001,2002,ENF,FALSE,1,Cfb,NA,NA\n"
    "AA-Two,5.5,45.25,120,2001,2002,DBF,FALSE,1,Dfb,Deciduous Broadleaf Forests,NA\n"
    "AA-Thr,NA,NA,NA,2001,2002,NA,FALSE,1,NA,NA,NA\n"
)
FDK_TEXT = (
    "sitename,lon,lat,elv,year_start,year_end,canopy_height,reference_height,koeppen_code,igbp_land_use,whc\n"
    "AA-Two,0,0,0,2001,2002,1,2,BSk,GRA,1\n"
    "AA-Thr,7,8,9,2001,2002,1,2,Aw,SAV,1\n"
)
LIST_TEXT = (
    "siteid,fluxnetid,keyid,sitename,countryid,land_unit,status,latitude,longitude,year_began,network1,"
    "network2,network3,koeppen_climate,gtopo30_elevation,igbp_land_use\n"
    "1,AA-Fou,(null),Four,Nowhere,X,Active,-33.5,150.25,2004,N,(null),(null),"
    "Cfa - Warm temperate fully humid with hot summer,(null),Croplands\n"
    "2,AA-One,(null),One,Nowhere,X,Active,0,0,2004,N,(null),(null),(null),5,Croplands\n"
)


@pytest.fixture
def crafted(tmp_path: Path) -> sitemeta.SiteMetadata:
    urls = _tables(
        tmp_path,
        {
            BIF: BIF_TEXT.encode("cp1252"),
            SITEINFO: SITEINFO_TEXT,
            FDK: FDK_TEXT,
            SITE_LIST: LIST_TEXT,
            "notes.csv": "a,b\n1,2\n",
        },
    )
    return sitemeta.load_metadata(urls)


@pytest.mark.parametrize(
    ("site", "expected", "sources"),
    [
        (
            "AA-One",  # BIF first, the rest filled in by siteinfo
            {
                "lat": 10.5,
                "lon": -20.25,
                "igbp": "GRA",
                "utc_offset": -3.5,
                "site_name": "Café meadow",
                "elevation": 300.0,
                "koeppen": "Cfb",
            },
            {
                "lat": BIF,
                "lon": BIF,
                "igbp": BIF,
                "utc_offset": BIF,
                "site_name": BIF,
                "elevation": SITEINFO,
                "koeppen": SITEINFO,
            },
        ),
        (
            "AA-Two",  # siteinfo before FluxDataKit; its long IGBP name falls back to classid
            {"lat": 45.25, "lon": 5.5, "elevation": 120.0, "igbp": "DBF", "koeppen": "Dfb"},
            dict.fromkeys(("lat", "lon", "elevation", "igbp", "koeppen"), SITEINFO),
        ),
        (
            "AA-Thr",  # NA in siteinfo: FluxDataKit's values
            {"lat": 8.0, "lon": 7.0, "elevation": 9.0, "igbp": "SAV", "koeppen": "Aw"},
            dict.fromkeys(("lat", "lon", "elevation", "igbp", "koeppen"), FDK),
        ),
        (
            "AA-Fou",  # only in the long site list; the Koeppen code is the first word, (null) is missing
            {"lat": -33.5, "lon": 150.25, "site_name": "Four", "koeppen": "Cfa"},
            dict.fromkeys(("lat", "lon", "site_name", "koeppen"), SITE_LIST),
        ),
    ],
)
def test_precedence_field_by_field(
    crafted: sitemeta.SiteMetadata, site: str, expected: dict[str, object], sources: dict[str, str]
) -> None:
    assert crafted.get(site) == expected
    assert crafted.sources[site] == sources


def test_crafted_tables_recognised(crafted: sitemeta.SiteMetadata) -> None:
    assert [Path(t).name for t in crafted.tables] == [BIF, SITEINFO, FDK, SITE_LIST]
    assert "XX-Out" not in crafted.values
    assert crafted.utc_offset("AA-One") == -3.5 and crafted.utc_offset("AA-Two") is None


def test_get_returns_a_copy(crafted: sitemeta.SiteMetadata) -> None:
    crafted.get("AA-One")["lat"] = 0.0
    assert crafted.get("AA-One")["lat"] == 10.5


@pytest.mark.parametrize("value", [None, float("nan"), "", "NA", "(null)"])
def test_add_ignores_missing(value: object) -> None:
    meta = sitemeta.SiteMetadata()
    meta.add("AA-One", "koeppen", value, "t.csv")
    meta.add("AA-One", "koeppen", "Cfb", "u.csv")
    assert meta.get("AA-One") == {"koeppen": "Cfb"} and meta.sources["AA-One"] == {"koeppen": "u.csv"}


def test_no_tables() -> None:
    meta = sitemeta.load_metadata(["notes.txt"])
    assert meta.values == {} and meta.tables == []
