"""Strict reading of delimited text files: every problem reported with file, line and column.

Real tower files come with warts: CR-only or CRLF line endings, ``-9999`` or ``NA`` for missing values,
comment lines on top. These are decoded. What cannot be decoded safely is refused: bytes that are not
text, line endings of mixed kinds (rows would be split ambiguously), rows with too few or too many
fields (a truncated or damaged file), non-numeric values in numeric columns.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from fluxcube.errors import InputError

MISSING_VALUE = -9999.0
# "round_trip" parses with Python's own float(): correctly rounded, and "-0" keeps its sign. pandas 3
# deprecates the option (its default is close, but drops the sign of "-0"); keep it while it exists.
_PRECISE = {"float_precision": "round_trip"}
MISSING = ("-9999", "-9999.0", "-9999.00", "-9999.000", "-9999.0000", "NA", "NaN", "nan", "")


def decode_text(raw: bytes, file: str, encodings: tuple[str, ...] = ("utf-8", "cp1252")) -> str:
    """Bytes -> text with ``\\n`` line endings; refuse binary content and mixed line endings.

    ``encodings`` are tried in order (UTF-8, then Windows-1252 as old loggers and Excel write it).
    """
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise InputError(
            file, "binary content (NUL byte): expected a text file", line=raw.count(b"\n", 0, nul) + 1
        )
    text = None
    first_error: UnicodeDecodeError | None = None
    for enc in encodings:
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError as err:
            first_error = first_error or err
    if text is None:
        assert first_error is not None
        line = raw.count(b"\n", 0, first_error.start) + 1
        raise InputError(
            file,
            f"undecodable bytes at offset {first_error.start}: expected {' or '.join(encodings)} text",
            line,
        ) from first_error
    crlf = text.count("\r\n")
    cr = text.count("\r") - crlf
    lf = text.count("\n") - crlf
    kinds = [name for name, n in (("CRLF", crlf), ("CR", cr), ("LF", lf)) if n]
    if len(kinds) > 1:
        line = _first_line_of_minority(text, kinds)
        raise InputError(
            file, f"mixed line endings ({', '.join(kinds)}): expected one kind for the whole file", line
        )
    if crlf:
        text = text.replace("\r\n", "\n")
    elif cr:
        text = text.replace("\r", "\n")
    return text


def _first_line_of_minority(text: str, kinds: list[str]) -> int:
    lines = re.split(r"\r\n|\r|\n", text)
    ends = re.findall(r"\r\n|\r|\n", text)
    majority = max(dict.fromkeys(ends), key=ends.count)  # ties: the first kind seen (not set order)
    for i, e in enumerate(ends):
        if e != majority:
            return i + 1
    return len(lines)


def read_table(
    text: str,
    file: str,
    sep: str = ",",
    comment: str | None = "#",
    string_columns: tuple[str, ...] = (),
    skip_rows_after_header: int = 0,
    skip: Callable[[str], bool] | None = None,
) -> tuple[pd.DataFrame, int]:
    """Parse decoded text into a frame of float64 columns (strings for ``string_columns``).

    Returns the frame and the 1-based file line number of its first data row. Each row must have
    exactly as many fields as the header. Columns for which ``skip(name)`` is true are not read.
    Missing markers (see ``MISSING``) and numbers equal to -9999 become NaN; numbers are
    parsed with correct rounding (``float_precision='round_trip'``), so values equal Python's
    ``float()`` of the text.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    first = 0
    while first < len(lines) and comment and lines[first].startswith(comment):
        first += 1
    if first >= len(lines):
        raise InputError(file, "no header line: expected a header with column names")
    header = [h.strip().strip('"') for h in lines[first].split(sep)]
    if len(set(header)) != len(header):
        dup = next(h for h in header if header.count(h) > 1)
        raise InputError(file, f"duplicated column name {dup!r}", first + 1, dup)
    n = len(header)
    data_start = first + 1 + skip_rows_after_header
    for i in range(data_start, len(lines)):
        k = lines[i].count(sep) + 1
        if k != n:
            what = "truncated row" if k < n else "row with extra fields"
            if i == len(lines) - 1 and k < n:
                what = "truncated file (last row incomplete)"
            raise InputError(
                file,
                f"{what}: {k} fields, expected {n} as in the header",
                i + 1,
                header[k] if k < n else None,
            )  # the first missing column
    if data_start >= len(lines):
        raise InputError(file, "no data rows after the header", first + 1)
    body = "\n".join([lines[first], *lines[data_start:]])
    kept = [h for h in header if not (skip and skip(h))]
    as_float = {c: (str if c in string_columns else np.float64) for c in kept}
    try:
        frame = _parse(
            body, file, sep, as_float, skip
        )  # numbers as float64 from the start: "-0" keeps its sign
    except InputError:
        raise
    except ValueError:  # a cell that is not a number: parse again to find and name it
        frame = _parse(body, file, sep, {c: str for c in string_columns}, skip)
        frame.columns = kept
        for col in frame.columns:
            if col not in string_columns and frame[col].dtype.kind not in "fiub":
                _raise_first_bad(frame[col], file, col, data_start)
        raise InputError(file, "cannot parse the table as numbers", data_start + 1) from None
    frame.columns = kept
    for col in frame.columns:
        if col not in string_columns:
            frame[col] = frame[col].mask(frame[col] == MISSING_VALUE)  # -9999 however written (-9.999e3...)
    return frame, data_start + 1


def _parse(
    body: str, file: str, sep: str, dtypes: dict[str, Any], skip: Callable[[str], bool] | None
) -> pd.DataFrame:
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*float_precision.*")
            return pd.read_csv(
                io.StringIO(body),
                sep=sep,
                dtype=dtypes or None,
                na_values=list(MISSING),
                keep_default_na=False,
                quotechar='"',
                low_memory=False,
                usecols=(lambda c: not skip(c.strip().strip('"'))) if skip else None,
                **_PRECISE,
            )
    except pd.errors.ParserError as err:
        raise InputError(file, f"cannot parse: {err}") from err


def _raise_first_bad(series: pd.Series, file: str, col: str, data_start: int) -> None:
    for pos, value in enumerate(series.tolist()):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        try:
            float(value)
        except (TypeError, ValueError):
            raise InputError(
                file, f"non-numeric value {value!r}: expected a number or -9999", data_start + pos + 1, col
            ) from None
    raise InputError(file, "column could not be read as numbers", data_start + 1, col)
