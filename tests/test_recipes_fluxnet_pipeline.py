"""Tests of the FLUXNET recipe end to end (fluxcube.recipes.fluxnet_pipeline, sitecube, publish).

The recipe runs once per module over all the real sample files (about 20 s); every file is then
compared with an independent parse: Python's ``csv`` module and ``float()`` for the CSVs, the
netCDF4 library for the PLUMBER files. Values must be exactly equal, not approximately.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fluxcube import config
from fluxcube.publish import Publisher
from fluxcube.recipes import fluxnet, fluxnet_pipeline
from fluxcube.recipes.fluxnet_pipeline import RunSummary

pytestmark = pytest.mark.needs_data

#: Files the recipe must refuse, and why.
REFUSED_BY_DESIGN = {"FLX_CH-Lae_FLUXDATAKIT_FULLSET_DD_2004_2014_2-3.csv": "no NEE column"}
#: Files that are not time series and are skipped.
SKIPPED = {"FLX_US-Prr_FLUXNET2015_AUXNEE_2010-2014_1-4.csv"}
STORES = [
    "ameriflux_hh",
    "fluxdatakit_dd",
    "fluxnet2015_dd",
    "fluxnet2015_hh",
    "fluxnet2015_mm",
    "fluxnet2015_yy",
    "plumber_hh",
]
MODEL_COLUMNS = {"NEE", "GPP", "ER", "TSOI_10CM", "FSH", "EFLX_LH_TOT", "TSA", "PBOT", "RAIN", "FGR"}


def _sample_files() -> list[str]:
    sites = config.data_dir() / "sites"
    return fluxnet.find_files(str(sites)) if sites.is_dir() else ["<no sample data>"]


SAMPLE_FILES = _sample_files()


# --------------------------------------------------------------------------- the shared run
@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fluxnet-stores")


@pytest.fixture(scope="module")
def summary(sites_dir: Path, target: Path) -> RunSummary:
    return fluxnet_pipeline.run(str(sites_dir), str(target))


@pytest.fixture(scope="module")
def pub(summary: RunSummary, target: Path) -> Publisher:
    return Publisher(str(target))


@pytest.fixture(scope="module")
def stores(pub: Publisher) -> dict[str, xr.Dataset]:
    return {name: pub.open(name) for name in STORES}


@pytest.fixture(scope="module")
def site_values(stores: dict[str, xr.Dataset]):
    """(store, site) -> (time index, {variable: values}), each site loaded once."""

    @cache
    def load(store: str, site: str) -> tuple[pd.DatetimeIndex, dict[str, np.ndarray]]:
        ds = stores[store]
        sub = ds.sel(site=site).load()
        return pd.DatetimeIndex(ds["time"].values), {str(k): v.values for k, v in sub.data_vars.items()}

    return load


# --------------------------------------------------------------------------- independent reference
@cache
def _utc_offsets(metadata: Path) -> dict[str, float]:
    """UTC_OFFSET per site from the BIF table, read with the csv module."""
    out: dict[str, float] = {}
    with open(metadata / "FLX_AA-Flx_BIF_LATEST.csv", newline="", encoding="latin-1") as f:
        for row in csv.DictReader(f, delimiter=";"):
            if row["VARIABLE"] == "UTC_OFFSET":
                out.setdefault(row["SITE_ID"], float(row["DATAVALUE"]))
    return out


_LABELS = {4: "%Y", 6: "%Y%m", 8: "%Y%m%d", 10: "%Y-%m-%d"}


def _number(text: str) -> float:
    if text.strip() == "NA":
        return np.nan
    value = float(text)
    return np.nan if value == -9999 else value


@cache
def reference(path: str) -> tuple[str, str, np.ndarray, dict[str, np.ndarray]]:
    """(store, site, time, {column: values}) of one file, parsed without fluxcube."""
    name = Path(path).name
    sites = Path(path).parents[1]
    if name.endswith(".nc"):
        return _reference_plumber(path, sites)
    with open(path, newline="", encoding="utf-8") as f:  # csv ends rows at \n, \r\n and \r alike
        rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
    header, body = rows[0], rows[1:]
    assert all(len(r) == len(header) for r in body)
    merged = name.startswith("tutorial3_")
    if merged:
        site, store = name[len("tutorial3_") : -4].replace("_", "-"), "fluxnet2015_dd"
    else:
        pattern = r"(FLX|AMF)_([A-Z]{2}-\w{3})_(FLUXNET2015|FLUXDATAKIT|BASE)_(?:[A-Z]+_)?(HH|DD|MM|YY)_"
        m = re.match(pattern, name)
        assert m, name
        site = m[2]
        store = {"FLUXNET2015": "fluxnet2015", "FLUXDATAKIT": "fluxdatakit", "BASE": "ameriflux"}[m[3]]
        store += "_" + m[4].lower()
    if "TIMESTAMP_START" in header:  # half-hourly: local standard time of the period start, to UTC
        offset = dt.timedelta(hours=_utc_offsets(sites / "metadata")[site])
        col = header.index("TIMESTAMP_START")
        times = [dt.datetime.strptime(r[col], "%Y%m%d%H%M") - offset for r in body]
    else:  # daily and longer: the label
        col = header.index("TIMESTAMP")
        times = [dt.datetime.strptime(r[col], _LABELS[len(r[col])]) for r in body]
    columns = {}
    for j, h in enumerate(header):
        if h.startswith("TIMESTAMP") or (merged and (h in MODEL_COLUMNS or h.endswith((".x", ".y")))):
            continue
        columns[h] = np.array([_number(r[j]) for r in body], dtype=np.float64)
    return store, site, np.array(times, dtype="datetime64[ns]"), columns


def _reference_plumber(path: str, sites: Path) -> tuple[str, str, np.ndarray, dict[str, np.ndarray]]:
    import netCDF4

    site = Path(path).name[:6]
    offset = dt.timedelta(hours=_utc_offsets(sites / "metadata")[site])
    with netCDF4.Dataset(path) as nc:
        nc.set_auto_mask(True)
        base = dt.datetime.strptime(nc["time"].units, "seconds since %Y-%m-%d %H:%M:%S")
        times = [base + dt.timedelta(seconds=float(s)) - offset for s in nc["time"][:]]
        columns = {}
        for name, var in nc.variables.items():
            if var.dimensions == ("time", "y", "x"):
                columns[name] = np.ma.filled(var[:, 0, 0], np.nan)
    return "plumber_hh", site, np.array(times, dtype="datetime64[ns]"), columns


@cache
def merged_reference(store: str, site: str) -> dict[str, pd.Series]:
    """All sample files of one site and store, combined (they must agree where they overlap)."""
    out: dict[str, pd.Series] = {}
    for path in SAMPLE_FILES:
        name = Path(path).name
        if name in SKIPPED or name in REFUSED_BY_DESIGN:
            continue
        s, k, times, columns = reference(path)
        if (s, k) != (store, site):
            continue
        for col, values in columns.items():
            new = pd.Series(values.astype(np.float64), index=pd.DatetimeIndex(times))
            if col in out:
                both = out[col].reindex(new.index).notna() & new.notna()
                assert out[col].reindex(new.index)[both].equals(new[both]), (col, "files disagree")
                new = out[col].combine_first(new)
            out[col] = new
    return out


# --------------------------------------------------------------------------- exactness
def test_run_summary(summary: RunSummary) -> None:
    assert sorted(summary.published) == STORES
    assert summary.up_to_date == {}
    assert {Path(r["file"]).name for r in summary.refused} == set(REFUSED_BY_DESIGN)
    assert [Path(s.split(":")[0]).name for s in summary.skipped] == sorted(SKIPPED)
    assert summary.sites["fluxnet2015_dd"] == ["BR-Sa1", "US-ARM", "US-Prr", "US-Syv", "US-Wi7"]
    assert summary.sites["plumber_hh"] == ["DK-Fou", "US-Wi7"]
    assert summary.sites["fluxdatakit_dd"] == ["FR-Pue"]  # CH-Lae refused
    assert summary.ok


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: Path(p).name)
def test_store_reproduces_file_exactly(
    summary: RunSummary, site_values, stores: dict[str, xr.Dataset], path: str
) -> None:
    name = Path(path).name
    if name in REFUSED_BY_DESIGN:
        (record,) = [r for r in summary.refused if r["file"] == path]
        assert REFUSED_BY_DESIGN[name] in record["error"]
        assert f"{path}, line 1, column NEE: " in record["error"]
        assert record["type"] == "InputError"
        return
    if name in SKIPPED:
        assert any(s.startswith(path) for s in summary.skipped)
        return
    store, site, times, columns = reference(path)
    time, values = site_values(store, site)
    idx = time.get_indexer(pd.DatetimeIndex(times))
    assert (idx >= 0).all(), "timestamps off the store's time axis"
    merged = merged_reference(store, site)
    for col, ref in columns.items():
        assert col in values, f"{col} missing from {store}"
        got = values[col]
        if store == "plumber_hh":
            assert got.dtype == ref.dtype == np.float32, col  # kept as stored
        else:
            assert got.dtype == np.float64, col
        # where this file has a value, the store has exactly that value
        have = ~np.isnan(ref)
        assert np.array_equal(got[idx][have], ref[have]), f"{name}: {col} differs"
        # everywhere on this file's times, the store equals the merge of the site's files
        expected = merged[col].reindex(pd.DatetimeIndex(times)).to_numpy()
        assert np.array_equal(got[idx].astype(np.float64), expected, equal_nan=True), col
        # and it holds nothing the site's files do not have
        assert int(np.count_nonzero(~np.isnan(got))) == int(merged[col].notna().sum()), col
    if name.startswith("tutorial3_"):
        assert not MODEL_COLUMNS & set(stores[store].data_vars)
        assert not [v for v in stores[store].data_vars if str(v).endswith((".x", ".y"))]


@pytest.mark.parametrize("store", STORES)
def test_variables_of_other_sites_are_empty(store: str, summary: RunSummary, site_values) -> None:
    """A site's row holds nothing for variables that only other sites' files have."""
    union: set[str] = set()
    for site in summary.sites[store]:
        merged = merged_reference(store, site)
        union |= set(merged)
        _, values = site_values(store, site)
        for name, v in values.items():
            if name not in merged:
                assert np.isnan(v).all(), (site, name)
    assert set(values) == union  # every variable of the store comes from some file


def test_half_hourly_convention_in_store(site_values) -> None:
    """US-Wi7 ERAI: the row 200406262000 (local standard time, UTC-6) is at 2004-06-27 02:00 UTC."""
    time, values = site_values("fluxnet2015_hh", "US-Wi7")
    assert time[0] == pd.Timestamp("2004-06-27 02:00")
    assert values["TA_ERA"][0] == 10.672 and values["TA_ERA"][1] == 10.265


# --------------------------------------------------------------------------- units and attributes
@pytest.mark.parametrize("store", STORES)
def test_every_variable_has_units_and_long_name(stores: dict[str, xr.Dataset], store: str) -> None:
    ds = stores[store]
    assert ds[next(iter(ds.data_vars))].dims == ("site", "time")
    for name, var in ds.data_vars.items():
        assert var.dims == ("site", "time"), name
        assert var.attrs.get("units"), name
        assert var.attrs.get("long_name"), name
        if str(name).lower().endswith("_qc"):
            assert var.attrs["units"] == "1", name


NEE_UNITS = {"HH": "umol m-2 s-1", "DD": "g m-2 d-1", "MM": "g m-2 d-1", "YY": "g m-2 yr-1"}


@pytest.mark.parametrize("store", STORES)
def test_nee_units_per_step(stores: dict[str, xr.Dataset], store: str) -> None:
    step = store.rsplit("_", 1)[1].upper()
    names = [str(n) for n in stores[store].data_vars if str(n).startswith("NEE")]
    if store == "fluxnet2015_hh":
        assert names == []  # ERAI meteorology only
        return
    assert names
    for name in names:
        units = stores[store][name].attrs["units"]
        if name.endswith(("_QC", "_qc", "_N")):
            assert units == "1", name
        elif "_NIGHT" in name or "_DAY" in name:
            assert units == "umol m-2 s-1", name  # means of the night or day half-hours
        else:
            assert units == NEE_UNITS[step], name


@pytest.mark.parametrize(
    ("store", "variable", "units"),
    [
        ("fluxnet2015_dd", "NEE_VUT_REF", "g m-2 d-1"),
        ("fluxnet2015_mm", "NEE_VUT_REF", "g m-2 d-1"),
        ("fluxnet2015_yy", "NEE_VUT_REF", "g m-2 yr-1"),
        ("fluxdatakit_dd", "NEE_VUT_REF", "g m-2 d-1"),
        ("plumber_hh", "NEE", "umol m-2 s-1"),
        ("ameriflux_hh", "NEE_PI", "umol m-2 s-1"),
        ("ameriflux_hh", "FC", "umol m-2 s-1"),
        ("plumber_hh", "NEE_qc", "1"),
        ("plumber_hh", "Tair", "K"),
        ("fluxnet2015_dd", "TA_F", "degC"),
        ("fluxnet2015_yy", "P_F", "mm yr-1"),
    ],
)
def test_known_units(stores: dict[str, xr.Dataset], store: str, variable: str, units: str) -> None:
    assert stores[store][variable].attrs["units"] == units


@pytest.mark.parametrize("store", STORES)
def test_time_coordinate_states_the_convention(stores: dict[str, xr.Dataset], store: str) -> None:
    time = stores[store]["time"]
    comment = time.attrs["comment"]
    if store.endswith("_hh"):
        assert "UTC" in comment and "start" in comment and "utc_offset" in comment
    else:
        assert "first day of the period" in comment and "local standard time" in comment
    assert time.attrs["standard_name"] == "time"
    assert np.all(np.diff(time.values) > np.timedelta64(0))


@pytest.mark.parametrize(
    ("store", "site", "expected"),
    [
        (
            "fluxnet2015_mm",
            "US-Prr",
            {
                "lat": 65.1237,
                "lon": -147.4876,
                "elevation": 210.0,
                "igbp": "ENF",
                "koeppen": "Dfc",
                "utc_offset": -9.0,
            },
        ),
        (
            "fluxnet2015_yy",
            "FR-Pue",
            {"lat": 43.7414, "lon": 3.5958, "elevation": 270.0, "igbp": "EBF", "utc_offset": 1.0},
        ),
        (
            "fluxnet2015_dd",
            "BR-Sa1",
            {"lat": -2.8567, "lon": -54.9589, "elevation": 88.0, "igbp": "EBF", "utc_offset": -4.0},
        ),
        (
            "plumber_hh",
            "DK-Fou",
            {
                "lat": 56.4842,
                "lon": 9.5872,
                "elevation": 51.0,
                "igbp": "CRO",
                "koeppen": "Cfb",
                "utc_offset": 1.0,
            },
        ),
        (
            "ameriflux_hh",
            "US-CRT",
            {
                "lat": 41.6285,
                "lon": -83.3471,
                "elevation": 180.0,
                "igbp": "CRO",
                "koeppen": "Dfa",
                "utc_offset": -5.0,
            },
        ),
    ],
)
def test_site_coordinates_from_the_metadata_tables(
    stores: dict[str, xr.Dataset], store: str, site: str, expected: dict[str, Any]
) -> None:
    """Values as the BIF table states them (Koeppen from siteinfo_fluxnet2015 or fdk_site_info)."""
    at = stores[store].sel(site=site)
    for key, value in expected.items():
        assert at[key].values.item() == value, key
    assert stores[store]["lat"].attrs["units"] == "degrees_north"
    assert stores[store]["lon"].attrs["units"] == "degrees_east"


def test_provenance_and_manifest(
    pub: Publisher, stores: dict[str, xr.Dataset], summary: RunSummary, sites_dir: Path
) -> None:
    ds = stores["fluxdatakit_dd"]
    assert ds.attrs["fluxcube_version_id"] == summary.published["fluxdatakit_dd"]
    assert ds.attrs["synthetic"] == "false"
    manifest = pub.current("fluxdatakit_dd")
    assert manifest is not None and manifest["version"] == summary.published["fluxdatakit_dd"]
    fr_pue = sites_dir / "fluxdatakit/FLX_FR-Pue_FLUXDATAKIT_FULLSET_DD_2000_2014_2-3.csv"
    assert str(fr_pue) in manifest["inputs"]
    refused = manifest["metadata"]["refused"]
    assert [Path(r["file"]).name for r in refused] == list(REFUSED_BY_DESIGN)


# --------------------------------------------------------------------------- idempotency
def test_rerun_publishes_nothing(summary: RunSummary, sites_dir: Path, target: Path, pub: Publisher) -> None:
    before = {name: pub.current(name) for name in STORES}
    again = fluxnet_pipeline.run(str(sites_dir), str(target))
    assert again.published == {}
    assert again.up_to_date == summary.published
    assert again.sites == summary.sites
    for name in STORES:
        assert pub.current(name) == before[name]
        assert [m["version"] for m in pub.versions(name)] == [summary.published[name]]


def _copy(sites_dir: Path, dest: Path, names: list[str]) -> Path:
    for name in names:
        (dest / Path(name).parent).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(sites_dir / name, dest / name)
    return dest


PRR_YY = "fluxnet2015/FLX_US-Prr_FLUXNET2015_FULLSET_YY_2010-2014_1-4.csv"
PUE_YY = "fluxnet2015/FLX_FR-Pue_FLUXNET2015_FULLSET_YY_2007-2014_2-3.csv"
WI7_DD = "fluxnet2015/FLX_US-Wi7_FLUXNET2015_FULLSET_DD_2005-2005_1-4.csv"
SITEINFO = "metadata/siteinfo_fluxnet2015.csv"


SUBSET_MM = "fluxnet2015/FLX_US-Prr_FLUXNET2015_SUBSET_MM_2010-2014_1-4.csv"
FULLSET_MM = "fluxnet2015/FLX_US-Prr_FLUXNET2015_FULLSET_MM_2010-2014_1-4.csv"
PUE_MM = "fluxnet2015/FLX_FR-Pue_FLUXNET2015_FULLSET_MM_2007-2014_2-3.csv"


@pytest.fixture(scope="module")
def mixed(sites_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, RunSummary]:
    """One run over a folder with good and bad inputs (source, target, summary).

    - yearly: US-Prr and FR-Pue, both good; US-Prr's file has an extra column FOO_BAR;
    - daily: US-Wi7, damaged (a non-numeric value on line 25), the store's only input;
    - monthly: FR-Pue good; US-Prr's SUBSET file changed so that it disagrees with its FULLSET file.
    """
    root = tmp_path_factory.mktemp("mixed")
    source = _copy(sites_dir, root / "sites", [PRR_YY, PUE_YY, SUBSET_MM, FULLSET_MM, PUE_MM, SITEINFO])
    prr = source / PRR_YY
    lines = prr.read_text().rstrip("\n").split("\n")
    foo = ["FOO_BAR", "1.25", "-9999", "2.5", "3.75", "5e-3"]
    prr.write_text("\n".join(f"{line},{x}" for line, x in zip(lines, foo, strict=True)) + "\n")
    with open(sites_dir / WI7_DD) as f:
        rows = [next(f).rstrip("\n").split(",") for _ in range(50)]
    rows[24][rows[0].index("SW_IN_F")] = "12.3x"
    (source / WI7_DD).write_text("\n".join(",".join(r) for r in rows) + "\n")
    lines = (source / SUBSET_MM).read_text().split("\n")
    j = lines[0].split(",").index("TA_F")
    cells = lines[5].split(",")  # 2010-05
    cells[j] = repr(float(cells[j]) + 0.5)
    lines[5] = ",".join(cells)
    (source / SUBSET_MM).write_text("\n".join(lines))
    return source, root / "stores", fluxnet_pipeline.run(str(source), str(root / "stores"))


def test_bad_file_does_not_stop_the_good_ones(mixed: tuple[Path, Path, RunSummary]) -> None:
    source, target, summary = mixed
    assert sorted(summary.published) == ["fluxnet2015_mm", "fluxnet2015_yy"]
    assert summary.sites["fluxnet2015_yy"] == ["FR-Pue", "US-Prr"]
    bad = source / WI7_DD
    (record,) = [r for r in summary.refused if r["file"] == str(bad)]
    assert record["step"] == "read" and record["type"] == "InputError"
    assert f"{bad}, line 25, column SW_IN_F: non-numeric value '12.3x'" in record["error"]
    assert Publisher(str(target)).current("fluxnet2015_dd") is None  # its only input was refused


def test_unknown_variable_kept_with_warning_in_store(mixed: tuple[Path, Path, RunSummary]) -> None:
    _, target, summary = mixed
    assert any("FOO_BAR" in w and Path(PRR_YY).name in w for w in summary.warnings)
    ds = Publisher(str(target)).open("fluxnet2015_yy", summary.published["fluxnet2015_yy"])
    foo_bar = ds["FOO_BAR"].sel(site="US-Prr", time=slice("2010", "2014")).values
    assert np.array_equal(foo_bar, [1.25, np.nan, 2.5, 3.75, 5e-3], equal_nan=True)
    assert np.isnan(ds["FOO_BAR"].sel(site="FR-Pue").values).all()
    assert ds["FOO_BAR"].attrs == {"long_name": "FOO_BAR", "units": "unknown"}


def test_disagreeing_files_of_one_site_refused(mixed: tuple[Path, Path, RunSummary]) -> None:
    """SUBSET and FULLSET monthly files of US-Prr must agree; if not, both are refused, FR-Pue stays."""
    source, target, summary = mixed
    assert summary.sites["fluxnet2015_mm"] == ["FR-Pue"]
    subset, fullset = source / SUBSET_MM, source / FULLSET_MM
    records = [r for r in summary.refused if r["file"] in (str(subset), str(fullset))]
    assert sorted(r["file"] for r in records) == sorted([str(subset), str(fullset)])
    for record in records:
        assert record["step"] == "merge" and "files of one site disagree" in record["error"]
        assert f"{subset}, column TA_F: TA_F at 2010-05-01 00:00:00 is " in record["error"]
        assert str(fullset) in record["error"]
        assert "np.float64" not in record["error"]  # numbers as numbers
    assert len(summary.refused) == 3
    manifest = Publisher(str(target)).current("fluxnet2015_mm")
    assert sorted(r["file"] for r in manifest["metadata"]["refused"]) == sorted([str(subset), str(fullset)])


def test_changed_input_gives_new_version_and_keeps_old(mixed: tuple[Path, Path, RunSummary]) -> None:
    """A changed input file republishes its store only; the old version stays readable."""
    source, target, first = mixed
    v1, mm = first.published["fluxnet2015_yy"], first.published["fluxnet2015_mm"]
    path = source / PRR_YY
    lines = path.read_text().split("\n")
    cells = lines[3].split(",")  # 2012
    j = lines[0].split(",").index("TA_F")
    old_value = float(cells[j])
    cells[j] = "-1.5"
    lines[3] = ",".join(cells)
    path.write_text("\n".join(lines))

    second = fluxnet_pipeline.run(str(source), str(target))
    assert list(second.published) == ["fluxnet2015_yy"]
    v2 = second.published["fluxnet2015_yy"]
    assert v2 != v1
    assert second.up_to_date == {"fluxnet2015_mm": mm}
    pub = Publisher(str(target))
    assert [m["version"] for m in pub.versions("fluxnet2015_yy")] == [v1, v2]
    assert [m["version"] for m in pub.versions("fluxnet2015_mm")] == [mm]
    assert pub.current("fluxnet2015_yy")["version"] == v2
    at = {"site": "US-Prr", "time": "2012-01-01"}
    assert pub.open("fluxnet2015_yy").sel(at)["TA_F"].values.item() == -1.5
    assert pub.open("fluxnet2015_yy", v1).sel(at)["TA_F"].values.item() == old_value
    assert pub.open("fluxnet2015_yy", v1).attrs["fluxcube_version_id"] == v1


def test_store_round_trip_dtypes(stores: dict[str, xr.Dataset]) -> None:
    ds = stores["fluxnet2015_dd"]
    assert ds["site"].dtype.kind in "OUT"
    assert ds["time"].dtype == np.dtype("datetime64[ns]")
    assert {str(v.dtype) for v in ds.data_vars.values()} == {"float64"}
    assert {str(v.dtype) for v in stores["plumber_hh"].data_vars.values()} == {"float32"}


def test_feedstock_recipe_file(sites_dir: Path, tmp_path: Path) -> None:
    """recipes/fluxnet/recipe.py (feedstock convention): its pattern lists the inputs, and its PTransform
    writes the stores into unpublished version folders (publication is the runner's job)."""
    import importlib.util

    import apache_beam as beam

    from fluxcube.publish import Publisher
    from fluxcube.recipes import fluxnet

    path = Path(__file__).parents[1] / "recipes" / "fluxnet" / "recipe.py"
    spec = importlib.util.spec_from_file_location("fluxnet_feedstock", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    src = tmp_path / "src"
    src.mkdir()
    name = "FLX_US-Prr_FLUXNET2015_FULLSET_YY_2010-2014_1-4.csv"
    shutil.copy(sites_dir / "fluxnet2015" / name, src / name)
    pattern = module.fluxnet_pipeline.file_pattern(fluxnet.find_files(str(src)))
    assert [url for _, url in pattern.items()] == [str(src / name)]
    target = tmp_path / "store"
    with beam.Pipeline() as p:
        _ = p | module.make_recipe(str(src), str(target))
    pub = Publisher(str(target))
    assert pub.names() == []  # written, not published
    versions = list((target / "datasets" / "fluxnet2015_yy" / "versions").glob("*.zarr"))
    assert len(versions) == 1
