"""Tests of fluxcube.recipes.textfile: strict decoding and parsing of delimited text."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluxcube.errors import InputError
from fluxcube.recipes.textfile import MISSING, decode_text, read_table

FILE = "station.csv"
LINES = ["TIMESTAMP,TA_F,SW_IN_F", "20050101,-13.113,20.553", "20050102,-10.883,58.749", "20050103,-9999,1.5"]


def _joined(lines: list[str], end: str, trailing: bool = True) -> bytes:
    return (end.join(lines) + (end if trailing else "")).encode()


# --------------------------------------------------------------------------- decode_text
@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
@pytest.mark.parametrize("trailing", [True, False], ids=["final-eol", "no-final-eol"])
def test_decode_text_one_kind_of_line_ending(end: str, trailing: bool) -> None:
    text = decode_text(_joined(LINES, end, trailing), FILE)
    assert text == "\n".join(LINES) + ("\n" if trailing else "")


@pytest.mark.parametrize(
    ("raw", "line", "kinds"),
    [
        (b"a,b\n1,2\r\n3,4\n5,6\n", 2, "CRLF, LF"),  # one CRLF in an LF file
        (b"a,b\r\n1,2\r\n3,4\n5,6\r\n", 3, "CRLF, LF"),  # one LF in a CRLF file
        (b"a,b\n1,2\n3,4\r5,6\n", 3, "CR, LF"),  # one CR in an LF file
        (b"a,b\r1,2\r3,4\r5,6\n", 4, "CR, LF"),  # CR-only file with an LF at the end
        (b"a,b\r\n1,2\n", 2, "CRLF, LF"),  # a tie: the kind seen first is the norm
    ],
    ids=["crlf-in-lf", "lf-in-crlf", "cr-in-lf", "lf-in-cr", "tie"],
)
def test_decode_text_refuses_mixed_line_endings(raw: bytes, line: int, kinds: str) -> None:
    with pytest.raises(InputError, match="mixed line endings") as info:
        decode_text(raw, FILE)
    err = info.value
    assert (err.file, err.line, err.column) == (FILE, line, None)
    assert kinds in err.message
    assert str(err).startswith(f"{FILE}, line {line}: ")


@pytest.mark.parametrize(
    ("raw", "line"), [(b"\x00a,b\n", 1), (b"a,b\n1,2\n3,\x004\n", 3), (b"a,b\r\n1\x00", 2)]
)
def test_decode_text_refuses_nul_bytes(raw: bytes, line: int) -> None:
    with pytest.raises(InputError, match="NUL byte") as info:
        decode_text(raw, FILE)
    assert (info.value.file, info.value.line) == (FILE, line)


def test_decode_text_falls_back_to_cp1252() -> None:
    text = "site,name\nFR-Pue,Puéchabon\n"
    assert decode_text(text.encode("cp1252"), FILE) == text


def test_decode_text_refuses_undecodable_bytes() -> None:
    with pytest.raises(InputError, match="undecodable bytes at offset 8") as info:
        decode_text(b"a,b\n1,2\n\xff\n", FILE, encodings=("utf-8",))
    assert info.value.line == 3


# --------------------------------------------------------------------------- read_table
def test_read_table_values_and_first_line() -> None:
    frame, first = read_table("\n".join(LINES) + "\n", FILE, string_columns=("TIMESTAMP",))
    assert first == 2
    assert list(frame.columns) == ["TIMESTAMP", "TA_F", "SW_IN_F"]
    assert frame["TIMESTAMP"].tolist() == ["20050101", "20050102", "20050103"]
    assert frame["TA_F"].dtype == np.float64
    np.testing.assert_array_equal(frame["TA_F"].to_numpy(), [-13.113, -10.883, np.nan])
    np.testing.assert_array_equal(frame["SW_IN_F"].to_numpy(), [20.553, 58.749, 1.5])


@pytest.mark.parametrize(
    ("prefix", "skip_rows", "first"),
    [([], 0, 2), (["# Site: US-CRT,,", "# Version: 2-5,,"], 0, 4), (["# comment"], 1, 4)],
    ids=["plain", "ameriflux-comments", "units-row"],
)
def test_read_table_reports_file_line_of_first_row(prefix: list[str], skip_rows: int, first: int) -> None:
    rows = ["a,b", *(["m,s-1"] if skip_rows else []), "1,2", "3,x"]
    text = "\n".join(prefix + rows) + "\n"
    frame, got = read_table(text.replace("3,x", "3,4"), FILE, skip_rows_after_header=skip_rows)
    assert got == first
    assert frame["a"].tolist() == [1.0, 3.0]
    with pytest.raises(InputError) as info:  # and bad values are reported at their true line
        read_table(text, FILE, skip_rows_after_header=skip_rows)
    assert (info.value.line, info.value.column) == (first + 1, "b")


@pytest.mark.parametrize("marker", [*MISSING, "-9999.00000", "-9.999e3", "-9999.0e0"])
def test_read_table_missing_markers_become_nan(marker: str) -> None:
    frame, _ = read_table(f"a,b\n{marker},1\n2,{marker}\n", FILE)
    assert np.isnan(frame["a"].iloc[0]) and np.isnan(frame["b"].iloc[1])
    assert frame["a"].iloc[1] == 2.0 and frame["b"].iloc[0] == 1.0


@pytest.mark.parametrize("value", ["-9998.9999", "-99990", "9999", "-999.9"])
def test_read_table_keeps_numbers_near_the_fill_value(value: str) -> None:
    frame, _ = read_table(f"a\n{value}\n1\n", FILE)
    assert frame["a"].iloc[0] == float(value)


_FORMATS = {
    "repr": repr,
    "17g": "{:.17g}".format,
    "6g": "{:.6g}".format,
    "e": "{:e}".format,
    "3f": "{:.3f}".format,
    "E20": "{:.20E}".format,
}
_finite = st.floats(allow_nan=False, allow_infinity=False, width=64).filter(lambda x: x != -9999.0)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.lists(_finite, min_size=3, max_size=3), min_size=1, max_size=25),
    fmt=st.sampled_from(sorted(_FORMATS)),
)
def test_read_table_round_trip_equals_python_float(values: list[list[float]], fmt: str) -> None:
    """Random floats written as text read back exactly as Python's float() of that text."""
    texts = [[_FORMATS[fmt](v) for v in row] for row in values]
    texts = [[t if float(t) != -9999.0 else "0" for t in row] for row in texts]  # rounded onto the fill value
    text = "x,y,z\n" + "\n".join(",".join(row) for row in texts) + "\n"
    frame, _ = read_table(text, FILE)
    for j, col in enumerate("xyz"):
        expected = np.array([float(row[j]) for row in texts])
        got = frame[col].to_numpy()
        assert got.dtype == np.float64
        assert np.array_equal(got, expected), (col, got, expected)
        assert [math.copysign(1.0, g) for g in got] == [math.copysign(1.0, e) for e in expected]  # -0.0


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.sampled_from(["1.5", "-2", "NA", "-9999", "", "3e-05", "-9999.0"]), min_size=1, max_size=30)
)
def test_read_table_mixed_missing_and_numbers(cells: list[str]) -> None:
    frame, _ = read_table("t,a\n" + "\n".join(f"{i},{c}" for i, c in enumerate(cells)) + "\n", FILE)
    expected = [np.nan if c in ("NA", "-9999", "", "-9999.0") else float(c) for c in cells]
    assert np.array_equal(frame["a"].to_numpy(), np.array(expected), equal_nan=True)


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ("a,b,c\n1,2,3\n4,5,6\n7,8", 4, "c", "truncated file (last row incomplete): 2 fields, expected 3"),
        ("a,b,c\n1,2,3\n4,5,6\n7,", 4, "c", "truncated file"),
        ("a,b,c\n1,2,3\n4\n7,8,9\n", 3, "b", "truncated row: 1 fields, expected 3"),
        ("a,b,c\n1,2,3\n4,5,6,7\n7,8,9\n", 3, None, "row with extra fields: 4 fields, expected 3"),
        ("a,b,c\n1,2,3\n\n7,8,9\n", 3, "b", "truncated row"),
    ],
    ids=["cut-after-field", "cut-in-field", "short-row", "extra-field", "blank-line"],
)
def test_read_table_refuses_wrong_field_counts(
    text: str, line: int, column: str | None, message: str
) -> None:
    with pytest.raises(InputError) as info:
        read_table(text, FILE)
    err = info.value
    assert (err.file, err.line, err.column) == (FILE, line, column)
    assert message in err.message


@pytest.mark.parametrize("bad", ["12.3x", "abc", "1.2.3", "--1", "0x10", "1;2", "TRUE1"])
def test_read_table_refuses_non_numeric_values(bad: str) -> None:
    text = "TIMESTAMP,TA_F,SW_IN_F\n20050101,1.0,2.0\n20050102,3.0,4.0\n20050103,5.0," + bad + "\n"
    with pytest.raises(InputError, match="non-numeric value") as info:
        read_table(text, FILE, string_columns=("TIMESTAMP",))
    err = info.value
    assert (err.file, err.line, err.column) == (FILE, 4, "SW_IN_F")
    assert repr(bad) in err.message and "expected a number or -9999" in err.message
    assert str(err) == f"{FILE}, line 4, column SW_IN_F: {err.message}"


def test_read_table_refuses_duplicated_column_names() -> None:
    with pytest.raises(InputError, match="duplicated column name 'b'") as info:
        read_table("# note\na,b,b\n1,2,3\n", FILE)
    assert (info.value.line, info.value.column) == (2, "b")


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("", "no header line", None),
        ("# only a comment\n", "no header line", None),
        ("a,b\n", "no data rows", 1),
    ],
)
def test_read_table_refuses_empty_tables(text: str, message: str, line: int | None) -> None:
    with pytest.raises(InputError, match=message) as info:
        read_table(text, FILE)
    assert info.value.line == line


def test_read_table_skip_and_quoted_header() -> None:
    text = '"TIMESTAMP","NEE","year.x","TA_F"\n2002-01-01,5e-07,2002,25.299\n2002-01-02,oops,2002,24.1\n'
    frame, _ = read_table(text, FILE, string_columns=("TIMESTAMP",), skip=lambda c: c in ("NEE", "year.x"))
    assert list(frame.columns) == ["TIMESTAMP", "TA_F"]  # skipped columns are neither read nor checked
    assert frame["TA_F"].tolist() == [25.299, 24.1]


def test_read_table_other_separator() -> None:
    frame, first = read_table("a\tb\n1\t2\n", FILE, sep="\t")
    assert first == 2 and frame["b"].tolist() == [2.0]
