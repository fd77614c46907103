"""Tests of fluxcube.recipes.fluxnet (and its units table fluxnet_vars): classification, readers, checks.

Bad-input files are crafted from real samples (the first 50 lines of US-Wi7's FULLSET DD file, the
first 50 of its ERAI HH file, a copy of DK-Fou's PLUMBER files), then damaged in one place; every
refusal must name the file, the line and the column.
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fluxcube.errors import InputError
from fluxcube.recipes import fluxnet, fluxnet_vars
from fluxcube.recipes.fluxnet import SiteTable

WI7_DD = "fluxnet2015/FLX_US-Wi7_FLUXNET2015_FULLSET_DD_2005-2005_1-4.csv"
WI7_HH = "fluxnet2015/FLX_US-Wi7_FLUXNET2015_ERAI_HH_1989-2014_1-4.csv"
PUE_YY = "fluxnet2015/FLX_FR-Pue_FLUXNET2015_FULLSET_YY_2007-2014_2-3.csv"
FOU_MET = "plumber/DK-Fou_2005-2005_FLUXNET2015_Met.nc"
FOU_FLUX = "plumber/DK-Fou_2005-2005_FLUXNET2015_Flux.nc"
WI7_OFFSET = -6.0  # BIF: US-Wi7 UTC_OFFSET -6
FOU_OFFSET = 1.0  # BIF: DK-Fou UTC_OFFSET 1


# --------------------------------------------------------------------------- helpers
def _head(path: Path, n: int = 50) -> list[list[str]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[:n]


def _write(tmp_path: Path, name: str, rows: list[list[str]], end: str = "\n") -> Path:
    path = tmp_path / Path(name).name
    path.write_bytes((end.join(",".join(r) for r in rows) + end).encode())
    return path


def _read(path: Path, offset: float | None = WI7_OFFSET) -> SiteTable:
    src = fluxnet.classify(str(path))
    assert src is not None, path
    return fluxnet.read_file(src, offset)


def _col(rows: list[list[str]], name: str) -> int:
    return rows[0].index(name)


def _set(rows: list[list[str]], line: int, column: str, value: str) -> list[list[str]]:
    rows = [list(r) for r in rows]
    rows[line - 1][_col(rows, column)] = value
    return rows


@pytest.fixture(scope="module")
def wi7_dd(sites_dir: Path) -> list[list[str]]:
    """Header and the first 49 days of US-Wi7 2005 (file lines 1-50)."""
    return _head(sites_dir / WI7_DD)


@pytest.fixture(scope="module")
def wi7_hh(sites_dir: Path) -> list[list[str]]:
    return _head(sites_dir / WI7_HH)


# --------------------------------------------------------------------------- classification
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "FLX_US-Prr_FLUXNET2015_SUBSET_DD_2010-2014_1-4.csv",
            ("fluxnet2015", "US-Prr", "DD", "fluxnet2015_dd", True),
        ),
        (
            "FLX_US-Prr_FLUXNET2015_FULLSET_YY_2010-2014_1-4.csv",
            ("fluxnet2015", "US-Prr", "YY", "fluxnet2015_yy", True),
        ),
        (
            "FLX_DE-Tha_FLUXNET2015_FULLSET_HH_1996-2014_1-4.csv",
            ("fluxnet2015", "DE-Tha", "HH", "fluxnet2015_hh", True),
        ),
        (
            "FLX_US-Wi7_FLUXNET2015_ERAI_HH_1989-2014_1-4.csv",  # re-analysis met only: no NEE required
            ("fluxnet2015", "US-Wi7", "HH", "fluxnet2015_hh", False),
        ),
        (
            "FLX_FR-Pue_FLUXDATAKIT_FULLSET_DD_2000_2014_2-3.csv",
            ("fluxdatakit", "FR-Pue", "DD", "fluxdatakit_dd", True),
        ),
        ("tutorial3_BR_Sa1.csv", ("merged", "BR-Sa1", "DD", "fluxnet2015_dd", True)),
        ("AMF_US-CRT_BASE_HH_2-5.csv", ("ameriflux", "US-CRT", "HH", "ameriflux_hh", True)),
        ("DK-Fou_2005-2005_FLUXNET2015_Flux.nc", ("plumber", "DK-Fou", "HH", "plumber_hh", True)),
        ("DK-Fou_2005-2005_FLUXNET2015_Met.nc", ("plumber", "DK-Fou", "HH", "plumber_hh", False)),
    ],
)
def test_classify(name: str, expected: tuple[str, str, str, str, bool]) -> None:
    src = fluxnet.classify(f"s3://bucket/sites/{name}")
    assert src is not None
    assert (src.kind, src.site, src.step, src.store, src.flux_file) == expected
    assert src.url == f"s3://bucket/sites/{name}"


@pytest.mark.parametrize(
    "name",
    ["FLX_US-Prr_FLUXNET2015_AUXNEE_2010-2014_1-4.csv", "FLX_US-Prr_FLUXNET2015_AUXMETEO_2010-2014_1-4.csv"],
)
def test_classify_auxiliary(name: str) -> None:
    src = fluxnet.classify(name)
    assert src is not None and src.kind == "auxiliary" and not src.flux_file


@pytest.mark.parametrize(
    "name",
    [
        "Example_DETha98.txt",
        "AMF_US-CRT_BASE-BADM_2-5.zip",
        "siteinfo_fluxnet2015.csv",
        "monthly_GPP.csv",
        "FLX_US-Prr_FLUXNET2015_FULLSET_DD_2010-2014_1-4.zip",
        "US-Wi7_2005-2005_FLUXNET2015_Flux.nc4",
    ],
)
def test_classify_ignores_other_files(name: str) -> None:
    assert fluxnet.classify(name) is None


def test_find_files_in_samples(sites_dir: Path) -> None:
    found = fluxnet.find_files(str(sites_dir))
    assert found == sorted(found)
    names = {Path(f).name for f in found}
    assert names == {
        "AMF_US-CRT_BASE_HH_2-5.csv",
        "tutorial3_BR_Sa1.csv",
        "tutorial3_US_ARM.csv",
        "tutorial3_US_Syv.csv",
        "FLX_CH-Lae_FLUXDATAKIT_FULLSET_DD_2004_2014_2-3.csv",
        "FLX_FR-Pue_FLUXDATAKIT_FULLSET_DD_2000_2014_2-3.csv",
        "FLX_FR-Pue_FLUXNET2015_FULLSET_MM_2007-2014_2-3.csv",
        "FLX_FR-Pue_FLUXNET2015_FULLSET_YY_2007-2014_2-3.csv",
        "FLX_US-Prr_FLUXNET2015_AUXNEE_2010-2014_1-4.csv",
        "FLX_US-Prr_FLUXNET2015_FULLSET_MM_2010-2014_1-4.csv",
        "FLX_US-Prr_FLUXNET2015_FULLSET_YY_2010-2014_1-4.csv",
        "FLX_US-Prr_FLUXNET2015_SUBSET_DD_2010-2014_1-4.csv",
        "FLX_US-Prr_FLUXNET2015_SUBSET_MM_2010-2014_1-4.csv",
        "FLX_US-Wi7_FLUXNET2015_ERAI_HH_1989-2014_1-4.csv",
        "FLX_US-Wi7_FLUXNET2015_FULLSET_DD_2005-2005_1-4.csv",
        "DK-Fou_2005-2005_FLUXNET2015_Flux.nc",
        "DK-Fou_2005-2005_FLUXNET2015_Met.nc",
        "US-Wi7_2005-2005_FLUXNET2015_Flux.nc",
        "US-Wi7_2005-2005_FLUXNET2015_Met.nc",
    }


# --------------------------------------------------------------------------- units table
@pytest.mark.parametrize(
    ("name", "step", "units"),
    [
        ("NEE_VUT_REF", "HH", "umol m-2 s-1"),
        ("NEE_VUT_REF", "HR", "umol m-2 s-1"),
        ("NEE_VUT_REF", "DD", "g m-2 d-1"),
        ("NEE_VUT_REF", "WW", "g m-2 d-1"),
        ("NEE_VUT_REF", "MM", "g m-2 d-1"),
        ("NEE_VUT_REF", "YY", "g m-2 yr-1"),
        ("NEE_CUT_USTAR50_JOINTUNC", "YY", "g m-2 yr-1"),
        ("GPP_NT_VUT_REF", "MM", "g m-2 d-1"),
        ("RECO_DT_VUT_05", "YY", "g m-2 yr-1"),
        # night/day selections at DD..YY are means of the half-hours (FLUXNET2015 documentation)
        ("NEE_VUT_REF_NIGHT", "DD", "umol m-2 s-1"),
        ("NEE_VUT_REF_DAY_SD", "YY", "umol m-2 s-1"),
        ("NEE_VUT_05_NIGHT", "MM", "umol m-2 s-1"),
        ("NEE_VUT_REF_QC", "HH", "1"),
        ("NEE_VUT_REF_QC", "YY", "1"),
        ("TA_F_MDS_QC", "DD", "1"),
        ("NIGHT_D", "DD", "1"),
        ("RECO_SR_N", "DD", "1"),
        ("P_F", "HH", "mm"),
        ("P_F", "DD", "mm d-1"),
        ("P_F", "YY", "mm yr-1"),
        ("TA_F", "DD", "degC"),
        ("TS_F_MDS_3", "HH", "degC"),
        ("PA_F", "MM", "kPa"),
        ("VPD_F", "DD", "hPa"),
        ("SWC_F_MDS_1", "DD", "%"),
        ("SW_IN_POT", "DD", "W m-2"),
        ("PPFD_IN", "HH", "umol m-2 s-1"),
        ("H_F_MDS", "DD", "W m-2"),
        ("H2O", "HH", "mmol mol-1"),
        ("FC", "HH", "umol m-2 s-1"),
        ("CO2_F_MDS", "DD", "umol mol-1"),
    ],
)
def test_units_table(name: str, step: str, units: str) -> None:
    attrs, _, known = fluxnet_vars.describe(name, step)
    assert known
    assert attrs["units"] == units
    assert attrs["long_name"]


@pytest.mark.parametrize(
    ("name", "base"),
    [
        ("TA_F_MDS", "TA"),
        ("T_SONIC_SIGMA", "T_SONIC"),
        ("P_F", "P"),
        ("PA_F", "PA"),
        ("PPFD_IN", "PPFD_IN"),
        ("SW_IN_POT", "SW_IN_POT"),
        ("SW_IN_F", "SW_IN"),
        ("H_CORR", "H"),
        ("H2O", "H2O"),
        ("FCH4", "FCH4"),
        ("FOO_BAR", None),
        ("TAX", None),
    ],
)
def test_base_of_longest_prefix(name: str, base: str | None) -> None:
    assert fluxnet_vars.base_of(name) == base


def test_unknown_variable_described_as_unknown() -> None:
    attrs, plausible, known = fluxnet_vars.describe("FOO_BAR", "DD")
    assert (attrs, plausible, known) == ({"long_name": "FOO_BAR", "units": "unknown"}, None, False)


# --------------------------------------------------------------------------- good files
def test_read_crafted_daily_file(tmp_path: Path, wi7_dd: list[list[str]]) -> None:
    table = _read(_write(tmp_path, WI7_DD, wi7_dd))
    assert (table.site, table.store, table.step) == ("US-Wi7", "fluxnet2015_dd", "DD")
    np.testing.assert_array_equal(table.time, pd.date_range("2005-01-01", periods=49, freq="D").to_numpy())
    assert set(table.columns) == set(wi7_dd[0]) - {"TIMESTAMP"}
    i = _col(wi7_dd, "TA_F")
    assert table.columns["TA_F"].tolist() == [float(r[i]) for r in wi7_dd[1:]]
    assert np.isnan(table.columns["TA_F_MDS"]).all()  # -9999 throughout
    assert table.attrs["NEE_VUT_REF_QC"]["units"] == "1"
    assert table.warnings == []


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_line_endings_decoded(tmp_path: Path, wi7_dd: list[list[str]], end: str) -> None:
    (tmp_path / "lf").mkdir()
    reference = _read(_write(tmp_path / "lf", WI7_DD, wi7_dd))
    table = _read(_write(tmp_path, WI7_DD, wi7_dd, end=end))
    assert np.array_equal(table.time, reference.time)
    for name, values in reference.columns.items():
        assert np.array_equal(table.columns[name], values, equal_nan=True), name


def test_cr_only_sample_file(sites_dir: Path) -> None:
    """FR-Pue's FULLSET YY file has CR-only line endings (and no final one): decoded, not refused."""
    raw = (sites_dir / PUE_YY).read_bytes()
    assert b"\n" not in raw and raw.count(b"\r") == 8
    table = _read(sites_dir / PUE_YY, None)
    np.testing.assert_array_equal(table.time, pd.date_range("2007", "2014", freq="YS").to_numpy())
    rows = [r.split(",") for r in raw.decode().split("\r")]
    i = rows[0].index("NEE_VUT_REF")
    assert table.columns["NEE_VUT_REF"].tolist() == [float(r[i]) for r in rows[1:]]
    assert table.attrs["NEE_VUT_REF"]["units"] == "g m-2 yr-1"


def test_unknown_variable_kept_with_warning(tmp_path: Path, wi7_dd: list[list[str]]) -> None:
    extra = ["FOO_BAR"] + [("-9999" if k == 3 else repr(k * 0.1)) for k in range(1, len(wi7_dd))]
    rows = [[*r, x] for r, x in zip(wi7_dd, extra, strict=True)]
    path = _write(tmp_path, WI7_DD, rows)
    table = _read(path)
    expected = [np.nan if k == 3 else k * 0.1 for k in range(1, 50)]
    assert np.array_equal(table.columns["FOO_BAR"], expected, equal_nan=True)
    assert table.attrs["FOO_BAR"] == {"long_name": "FOO_BAR", "units": "unknown"}
    assert len(table.warnings) == 1
    assert "FOO_BAR" in table.warnings[0] and path.name in table.warnings[0]


def test_half_hourly_time_is_utc_period_start(tmp_path: Path, wi7_hh: list[list[str]]) -> None:
    """ERAI HH: 2004-06-26 20:00 local standard time at UTC-6 is 2004-06-27 02:00 UTC."""
    table = _read(_write(tmp_path, WI7_HH, wi7_hh), WI7_OFFSET)
    assert table.step == "HH" and table.store == "fluxnet2015_hh"
    assert table.time[0] == np.datetime64("2004-06-27T02:00")
    assert np.all(np.diff(table.time) == np.timedelta64(30, "m"))
    assert "TIMESTAMP_END" not in table.columns and "TIMESTAMP_START" not in table.columns
    assert table.columns["TA_ERA"][0] == 10.672


@pytest.mark.parametrize(
    ("offset", "first"), [(0.0, "2004-06-26T20:00"), (5.5, "2004-06-26T14:30"), (-9.0, "2004-06-27T05:00")]
)
def test_half_hourly_offsets(tmp_path: Path, wi7_hh: list[list[str]], offset: float, first: str) -> None:
    assert _read(_write(tmp_path, WI7_HH, wi7_hh), offset).time[0] == np.datetime64(first)


def test_daily_time_is_the_label(tmp_path: Path, wi7_dd: list[list[str]]) -> None:
    """Daily and longer steps keep the file's label (local standard days), whatever the offset."""
    path = _write(tmp_path, WI7_DD, wi7_dd)
    assert np.array_equal(_read(path, -6.0).time, _read(path, None).time)


@pytest.mark.parametrize("offset", [None, 5.75])
def test_half_hourly_needs_usable_utc_offset(
    tmp_path: Path, wi7_hh: list[list[str]], offset: float | None
) -> None:
    path = _write(tmp_path, WI7_HH, wi7_hh)
    with pytest.raises(InputError, match="UTC offset") as info:
        _read(path, offset)
    assert info.value.file == str(path)


def test_merged_file_drops_model_columns(sites_dir: Path) -> None:
    table = _read(sites_dir / "daily-merged/tutorial3_BR_Sa1.csv", None)
    assert table.site == "BR-Sa1" and table.store == "fluxnet2015_dd"
    assert not set(table.columns) & set(fluxnet.MODEL_COLUMNS)
    assert not [c for c in table.columns if c.endswith((".x", ".y"))]
    assert {"TA_F", "NEE_VUT_REF", "GPP_NT_VUT_REF"} <= set(table.columns)
    assert table.time[0] == np.datetime64("2002-01-01")


def test_plumber_reader_keeps_float32(sites_dir: Path) -> None:
    table = _read(sites_dir / FOU_MET, FOU_OFFSET)
    assert table.columns["Tair"].dtype == np.float32
    assert table.attrs["Tair"]["units"] == "K"
    assert table.attrs["Tair_qc"]["units"] == "1"
    assert table.time[0] == np.datetime64("2004-12-31T23:00")  # 2005-01-01 00:00 local, UTC+1
    assert table.time.size == 17520


# --------------------------------------------------------------------------- bad files
def test_sample_without_nee_refused(sites_dir: Path) -> None:
    """CH-Lae's FluxDataKit file has no NEE column at all: refused, naming the header line."""
    path = sites_dir / "fluxdatakit/FLX_CH-Lae_FLUXDATAKIT_FULLSET_DD_2004_2014_2-3.csv"
    with pytest.raises(InputError, match="no NEE column") as info:
        _read(path, 1.0)
    assert (info.value.file, info.value.line, info.value.column) == (str(path), 1, "NEE")


Damage = Callable[[list[list[str]]], list[list[str]]]


def _drop_nee(rows: list[list[str]]) -> list[list[str]]:
    keep = [j for j, c in enumerate(rows[0]) if not c.startswith("NEE")]
    return [[r[j] for j in keep] for r in rows]


def _swap(a: int, b: int) -> Damage:
    def damage(rows: list[list[str]]) -> list[list[str]]:
        rows = [list(r) for r in rows]
        rows[a - 1], rows[b - 1] = rows[b - 1], rows[a - 1]
        return rows

    return damage


def _kelvin(rows: list[list[str]]) -> list[list[str]]:
    j = _col(rows, "TA_F")
    return [
        r if k == 0 or r[j] == "-9999" else [*r[:j], repr(float(r[j]) + 273.15), *r[j + 1 :]]
        for k, r in enumerate(rows)
    ]


def _rename(old: str, new: str) -> Damage:
    return lambda rows: [[new if (k == 0 and c == old) else c for c in r] for k, r in enumerate(rows)]


BAD_DAILY = [
    # id, damage, line, column, message
    ("missing-nee", _drop_nee, 1, "NEE", "no NEE column"),
    ("non-numeric", lambda r: _set(r, 25, "SW_IN_F", "12.3x"), 25, "SW_IN_F", "non-numeric value '12.3x'"),
    ("comma-decimal", lambda r: _set(r, 33, "VPD_F", "1;5"), 33, "VPD_F", "non-numeric value '1;5'"),
    (
        "duplicated-timestamp",
        lambda r: _set(r, 20, "TIMESTAMP", r[18][0]),
        20,
        "TIMESTAMP",
        "duplicated timestamp 2005-01-18",
    ),
    ("timestamp-backwards", _swap(10, 11), 11, "TIMESTAMP", "goes back in time"),
    ("malformed-timestamp", lambda r: _set(r, 7, "TIMESTAMP", "20050106x"), 7, "TIMESTAMP", "does not match"),
    ("impossible-date", lambda r: _set(r, 31, "TIMESTAMP", "20050230"), 31, "TIMESTAMP", "does not match"),
    ("no-timestamp-column", _rename("TIMESTAMP", "DATE"), 1, None, "no TIMESTAMP"),
    ("ta-in-kelvin", _kelvin, 2, "TA_F", "contradict"),
]


@pytest.mark.parametrize(
    ("damage", "line", "column", "message"), [c[1:] for c in BAD_DAILY], ids=[c[0] for c in BAD_DAILY]
)
def test_bad_daily_file_refused(
    tmp_path: Path, wi7_dd: list[list[str]], damage: Damage, line: int, column: str | None, message: str
) -> None:
    path = _write(tmp_path, WI7_DD, damage(wi7_dd))
    with pytest.raises(InputError) as info:
        _read(path)
    err = info.value
    assert (err.file, err.line, err.column) == (str(path), line, column)
    assert message in err.message
    where = f"{path}, line {line}" + (f", column {column}" if column else "")
    assert str(err).startswith(where + ": ")


def test_kelvin_message_is_helpful(tmp_path: Path, wi7_dd: list[list[str]]) -> None:
    with pytest.raises(InputError) as info:
        _read(_write(tmp_path, WI7_DD, _kelvin(wi7_dd)))
    assert "degC" in info.value.message and "other units" in info.value.message


@pytest.mark.parametrize("cut", [0.3, 0.5, 0.93])
def test_truncated_last_line(tmp_path: Path, wi7_dd: list[list[str]], cut: float) -> None:
    """A download cut short: the last row stops in the middle, without its line end."""
    text = "\n".join(",".join(r) for r in wi7_dd)
    last = ",".join(wi7_dd[-1])
    keep = len(text) - len(last) + int(len(last) * cut)
    path = tmp_path / Path(WI7_DD).name
    path.write_text(text[:keep])
    fields = text[len(text) - len(last) : keep].count(",") + 1
    with pytest.raises(InputError, match="truncated file") as info:
        _read(path)
    err = info.value
    assert (err.file, err.line, err.column) == (str(path), 50, wi7_dd[0][fields])
    assert f"{fields} fields, expected {len(wi7_dd[0])}" in err.message


def test_truncated_middle_row(tmp_path: Path, wi7_dd: list[list[str]]) -> None:
    rows = [list(r) for r in wi7_dd]
    rows[14] = rows[14][:60]
    with pytest.raises(InputError, match="truncated row") as info:
        _read(_write(tmp_path, WI7_DD, rows))
    assert (info.value.line, info.value.column) == (15, wi7_dd[0][60])


@pytest.mark.parametrize(("line", "end"), [(30, "\r\n"), (2, "\r"), (49, "\r\n")])
def test_mixed_line_endings(tmp_path: Path, wi7_dd: list[list[str]], line: int, end: str) -> None:
    lines = [",".join(r) for r in wi7_dd]
    text = "".join(s + (end if k == line else "\n") for k, s in enumerate(lines, start=1))
    path = tmp_path / Path(WI7_DD).name
    path.write_bytes(text.encode())
    with pytest.raises(InputError, match="mixed line endings") as info:
        _read(path)
    err = info.value
    assert (err.file, err.line, err.column) == (str(path), line, None)
    assert "expected one kind" in err.message


@pytest.mark.parametrize("line", [1, 40, 50])
def test_nul_bytes(tmp_path: Path, wi7_dd: list[list[str]], line: int) -> None:
    lines = [",".join(r) for r in wi7_dd]
    lines[line - 1] = lines[line - 1][:20] + "\x00\x00" + lines[line - 1][20:]
    path = tmp_path / Path(WI7_DD).name
    path.write_bytes(("\n".join(lines) + "\n").encode())
    with pytest.raises(InputError, match="NUL byte") as info:
        _read(path)
    assert (info.value.file, info.value.line, info.value.column) == (str(path), line, None)


def _plus(stamp: str, minutes: int) -> str:
    return (dt.datetime.strptime(stamp, "%Y%m%d%H%M") + dt.timedelta(minutes=minutes)).strftime("%Y%m%d%H%M")


BAD_HALF_HOURLY = [
    (
        "period-of-an-hour",
        lambda r: _set(r, 10, "TIMESTAMP_END", _plus(r[9][0], 60)),
        10,
        "TIMESTAMP_END",
        "period of 3600 s, expected 1800 s for step HH",
    ),
    (
        "off-grid",
        lambda r: _set(
            _set(r, 12, "TIMESTAMP_START", r[11][0][:-2] + "10"), 12, "TIMESTAMP_END", r[11][1][:-2] + "40"
        ),
        12,
        "TIMESTAMP_START",
        "not on the HH grid",
    ),
    (
        "duplicated",
        lambda r: _set(_set(r, 5, "TIMESTAMP_START", r[3][0]), 5, "TIMESTAMP_END", r[3][1]),
        5,
        "TIMESTAMP_START",
        "duplicated timestamp",
    ),
    (
        "bad-end-stamp",
        lambda r: _set(r, 44, "TIMESTAMP_END", "2004-06-27 12:00"),
        44,
        "TIMESTAMP_END",
        "does not match",
    ),
]


@pytest.mark.parametrize(
    ("damage", "line", "column", "message"),
    [c[1:] for c in BAD_HALF_HOURLY],
    ids=[c[0] for c in BAD_HALF_HOURLY],
)
def test_bad_half_hourly_file_refused(
    tmp_path: Path, wi7_hh: list[list[str]], damage: Damage, line: int, column: str, message: str
) -> None:
    path = _write(tmp_path, WI7_HH, damage(wi7_hh))
    with pytest.raises(InputError) as info:
        _read(path)
    err = info.value
    assert (err.file, err.line, err.column) == (str(path), line, column)
    assert message in err.message


# --------------------------------------------------------------------------- PLUMBER netCDF
def _plumber_copy(sites_dir: Path, tmp_path: Path, name: str, edit: Callable[..., None]) -> Path:
    import netCDF4

    path = tmp_path / Path(name).name
    shutil.copyfile(sites_dir / name, path)
    path.chmod(0o644)
    with netCDF4.Dataset(path, "a") as nc:
        edit(nc)
    return path


def _set_units(var: str, units: str) -> Callable[..., None]:
    return lambda nc: nc[var].setncattr("units", units)


def _duplicate_time(nc) -> None:
    nc["time"][5] = nc["time"][4]


BAD_PLUMBER = [
    (
        "tair-in-degc",
        FOU_MET,
        _set_units("Tair", "degC"),
        "Tair",
        "units 'degC' contradict the variable: expected K",
    ),
    (
        "vpd-in-kpa",
        FOU_MET,
        _set_units("VPD", "kPa"),
        "VPD",
        "units 'kPa' contradict the variable: expected hPa",
    ),
    ("nee-in-gc", FOU_FLUX, _set_units("NEE", "gC/m2/d"), "NEE", "expected umol m-2 s-1"),
    ("no-nee", FOU_FLUX, lambda nc: nc.renameVariable("NEE", "NEP"), "NEE", "no NEE variable"),
    ("duplicated-time", FOU_MET, _duplicate_time, "time[5]", "duplicated or goes back in time"),
    ("time-units", FOU_MET, _set_units("time", "days since 2005-01-01"), "time", "expected 'seconds since"),
]


@pytest.mark.parametrize(
    ("name", "edit", "column", "message"), [c[1:] for c in BAD_PLUMBER], ids=[c[0] for c in BAD_PLUMBER]
)
def test_bad_plumber_file_refused(
    sites_dir: Path, tmp_path: Path, name: str, edit: Callable[..., None], column: str, message: str
) -> None:
    path = _plumber_copy(sites_dir, tmp_path, name, edit)
    with pytest.raises(InputError) as info:
        _read(path, FOU_OFFSET)
    err = info.value
    assert (err.file, err.line, err.column) == (str(path), None, column)
    assert message in err.message


def test_plumber_not_netcdf(tmp_path: Path) -> None:
    path = tmp_path / "DK-Fou_2005-2005_FLUXNET2015_Met.nc"
    path.write_bytes(b"TIMESTAMP,TA\n200501010000,1.0\n")
    with pytest.raises(InputError, match="cannot read as netCDF") as info:
        _read(path, FOU_OFFSET)
    assert info.value.file == str(path)


# --------------------------------------------------------------------------- merging
def _table(file: str, days: list[str], **columns: list[float]) -> SiteTable:
    time = pd.DatetimeIndex(days).to_numpy(dtype="datetime64[ns]")
    cols = {k: np.array(v, dtype=np.float64) for k, v in columns.items()}
    attrs = {k: {"long_name": k, "units": "1"} for k in columns}
    return SiteTable("US-Prr", "fluxnet2015_mm", "MM", time, cols, attrs, [file], [f"w-{file}"])


def test_merge_tables_fills_gaps_where_files_agree() -> None:
    a = _table("SUBSET", ["2010-01-01", "2010-02-01"], TA_F=[1.0, np.nan], P_F=[0.5, 0.25])
    b = _table("FULLSET", ["2010-02-01", "2010-03-01"], TA_F=[2.0, 3.0], NEE_VUT_REF=[0.1, 0.2])
    m = fluxnet.merge_tables([a, b])
    expected = pd.DatetimeIndex(["2010-01-01", "2010-02-01", "2010-03-01"]).to_numpy()
    np.testing.assert_array_equal(m.time, expected)
    assert np.array_equal(m.columns["TA_F"], [1.0, 2.0, 3.0])
    assert np.array_equal(m.columns["P_F"], [0.5, 0.25, np.nan], equal_nan=True)
    assert np.array_equal(m.columns["NEE_VUT_REF"], [np.nan, 0.1, 0.2], equal_nan=True)
    assert m.files == ["SUBSET", "FULLSET"] and m.warnings == ["w-SUBSET", "w-FULLSET"]


def test_merge_tables_refuses_disagreement() -> None:
    a = _table("SUBSET", ["2010-01-01", "2010-02-01"], TA_F=[1.0, 2.0])
    b = _table("FULLSET", ["2010-01-01", "2010-02-01"], TA_F=[1.0, 2.5])
    with pytest.raises(InputError, match="files of one site disagree") as info:
        fluxnet.merge_tables([a, b])
    err = info.value
    assert (err.file, err.column) == ("FULLSET", "TA_F")
    assert "2010-02-01" in err.message and "SUBSET" in err.message


def test_merge_single_table_is_identity() -> None:
    a = _table("SUBSET", ["2010-01-01"], TA_F=[1.0])
    assert fluxnet.merge_tables([a]) is a
