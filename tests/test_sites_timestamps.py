"""Half-hourly readers: period-start index, units rows, line endings and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fluxcube.errors import InputError
from fluxcube.sites.met import potential_radiation
from fluxcube.sites.timestamps import read_halfhourly, regular_grid


def test_reddyproc_text_cr_only_end_of_period(sites_dir: Path) -> None:
    path = sites_dir / "halfhourly" / "Example_DETha98.txt"
    assert b"\r" in path.read_bytes()[:200] and b"\n" not in path.read_bytes()[:200]  # CR-only file
    df = read_halfhourly(path)
    assert len(df) == 17520
    assert df.index[0] == pd.Timestamp("1998-01-01 00:00")  # Hour 0.5 = end of the first period
    assert df.index[-1] == pd.Timestamp("1998-12-31 23:30")  # DoY 366 Hour 0 = end of the last
    assert (np.diff(df.index.asi8) == 30 * 60 * 10**9).all()
    assert list(df.columns) == ["NEE", "LE", "H", "Rg", "Tair", "Tsoil", "rH", "VPD", "Ustar"]
    assert df.attrs["units"]["NEE"] == "umolm-2s-1" and df.attrs["units"]["VPD"] == "hPa"
    assert df["NEE"].isna().sum() == 6257  # -9999 -> NaN
    assert df.loc["1998-01-01 00:00", "NEE"] == pytest.approx(-1.21)


def test_index_is_period_start_by_solar_geometry(sites_dir: Path) -> None:
    """Measured Rg must line up with the potential radiation at the period middles (lag 0)."""
    df = read_halfhourly(sites_dir / "halfhourly" / "Example_DETha98.txt")
    rpot = potential_radiation(df.index, 50.9636, 13.5669, 1.0)
    rg = df["Rg"].to_numpy()
    ok = np.isfinite(rg)

    def corr(lag: int) -> float:
        a, b = np.roll(rpot, lag)[ok], rg[ok]
        return float(np.corrcoef(a, b)[0, 1])

    best = max(range(-2, 3), key=corr)
    assert best == 0


def test_degeb_datetime_is_end_of_period(sites_dir: Path) -> None:
    df = read_halfhourly(sites_dir / "halfhourly" / "DEGebExample_2004-2006.csv")
    assert df.attrs["layout"] == "datetime"
    assert df.index[0] == pd.Timestamp("2004-01-01 00:00")
    assert df.index[-1] == pd.Timestamp("2006-12-31 23:30")
    assert len(df) == 3 * 365 * 48 + 48  # 2004 is a leap year
    assert {"NEE", "Ustar", "Tair", "rH", "Rg"} <= set(df.columns)


def test_openeddy_units_row_and_aliases(sites_dir: Path) -> None:
    df = read_halfhourly(sites_dir / "halfhourly" / "openeddy_CZ-Lnz_2023.csv")
    assert df.attrs["layout"] == "openeddy"
    assert len(df) == 672 and df.index[0] == pd.Timestamp("2023-07-23 00:00")
    assert "Rg" in df and "GR" not in df and "Ustar" in df and "rH" in df
    assert df.attrs["units"]["Rg"] == "W*m-2"
    assert df["NEE"].isna().sum() == 5
    raw = read_halfhourly(sites_dir / "halfhourly" / "openeddy_CZ-Lnz_2023.csv", canonical=False)
    assert "GR" in raw


def test_fluxnet_timestamp_start(sites_dir: Path) -> None:
    df = read_halfhourly(sites_dir / "ameriflux" / "AMF_US-CRT_BASE_HH_2-5.csv")
    assert df.attrs["layout"] == "fluxnet"
    assert df.index[0] == pd.Timestamp("2011-01-01 00:00") and len(df) == 96


def _write(tmp_path: Path, name: str, text: str, newline: str = "\n") -> Path:
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode())
    return path


REDDY = "Year\tDoY\tHour\tNEE\n-\t-\t-\tumolm-2s-1\n"


def test_reddyproc_text_synthetic_cr(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.txt", REDDY + "2001\t1\t0.5\t1.5\n2001\t1\t1\t-9999\n", newline="\r")
    df = read_halfhourly(path)
    assert list(df.index) == [pd.Timestamp("2001-01-01 00:00"), pd.Timestamp("2001-01-01 00:30")]
    assert df["NEE"].iloc[0] == 1.5 and np.isnan(df["NEE"].iloc[1])


@pytest.mark.parametrize(
    ("body", "line", "column", "words"),
    [
        ("2001\t1\t0.7\t1\n", 3, "Hour", "half-hour grid"),
        ("2001\t1\t0.5\t1\n2001\t1\t0.5\t2\n", 4, "Hour", "duplicated"),
        ("2001\t1\t1\t1\n2001\t1\t0.5\t2\n", 4, "Hour", "goes back in time"),
        ("2001\t1\t0.5\tx\n", 3, "NEE", "non-numeric"),
        ("2001\t1\t0.5\n", 3, "NEE", "truncated"),
        ("2001\t400\t0.5\t1\n", 3, "DoY", "expected a number"),
    ],
)
def test_reddyproc_errors_name_line_and_column(
    tmp_path: Path, body: str, line: int, column: str, words: str
) -> None:
    path = _write(tmp_path, "bad.txt", REDDY + body)
    with pytest.raises(InputError) as info:
        read_halfhourly(path)
    err = info.value
    assert err.file == str(path) and err.line == line and err.column == column
    assert words in str(err)


def test_fluxnet_errors(tmp_path: Path) -> None:
    head = "TIMESTAMP_START,TIMESTAMP_END,FC\n"
    path = _write(tmp_path, "f.csv", head + "200101010000,200101010030,1\n200101010030,200101010130,2\n")
    with pytest.raises(InputError, match="not 30 minutes") as info:
        read_halfhourly(path)
    assert info.value.line == 3 and info.value.column == "TIMESTAMP_END"
    path = _write(tmp_path, "g.csv", head + "2001010100,200101010030,1\n")
    with pytest.raises(InputError, match="does not match") as info:
        read_halfhourly(path)
    assert info.value.line == 2 and info.value.column == "TIMESTAMP_START"
    path = _write(tmp_path, "h.csv", "A,B\n1,2\n")
    with pytest.raises(InputError, match="no time columns"):
        read_halfhourly(path)


def test_mixed_line_endings_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.txt"
    path.write_bytes((REDDY + "2001\t1\t0.5\t1\n").replace("\n", "\r", 2).encode())
    with pytest.raises(InputError, match="mixed line endings"):
        read_halfhourly(path)


def test_regular_grid_pads_whole_days() -> None:
    idx = pd.DatetimeIndex(["2001-01-01 10:00", "2001-01-01 11:30", "2001-01-02 03:00"], name="time")
    df = pd.DataFrame({"NEE": [1.0, 2.0, 3.0]}, index=idx)
    out = regular_grid(df)
    assert len(out) == 96 and out.index[0] == pd.Timestamp("2001-01-01 00:00")
    assert out["NEE"].count() == 3 and out.loc["2001-01-01 11:30", "NEE"] == 2.0
