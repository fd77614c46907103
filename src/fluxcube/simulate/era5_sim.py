"""ERA5-like hourly drivers of the simulated world, in the CDS NetCDF layout the ERA5 recipe reads.

One file per month, ``era5/era5_<YYYY>-<MM>_t2m_d2m_tp_ssrd.nc``, laid out like a CDS (grib_to_netcdf)
download: dimensions ``time`` (hourly valid times 00..23 UTC of every day of the month, int32 ``hours
since 1900-01-01 00:00:00.0``, gregorian), ``latitude`` (descending, float32) and ``longitude`` (0..360,
float32), the world grid's cell centres; variables packed as int16 with ``scale_factor``,
``add_offset``, ``_FillValue`` = ``missing_value`` = -32767 (fixed packing per variable, :data:`PACKING`,
where the real files compute one per file). Cells that are not simulated (ocean, Antarctica) are
missing. The files are NetCDF-4 with zlib (the CDS files are NetCDF-3; the missing ocean compresses away).

From the daily weather of each cell (degC, W m-2, mm d-1, hPa) and local solar time
``t = UTC hour + lon / 15``:

- ``t2m`` (K, instantaneous): ``Tair + A cos(2 pi (t - 15) / 24) + 273.15`` with half the diurnal range
  ``A = 1 + 5 k`` K, ``k`` = clear-sky index ``(Rg / Rpot - 0.27) / 0.47`` clipped to 0..1 (1 K when the
  sun does not rise). The mean of the 24 values 00..23 UTC is exactly the day's Tair.
- ``d2m`` (K, instantaneous): constant relative humidity through the day, chosen so that the daily mean
  of ``es(t2m) - es(d2m)`` with the recipe's IFS formula is exactly the day's VPD.
- ``tp`` (m, accumulated over the hour ending at the valid time): the day's precipitation spread over
  its 24 UTC hours with weights ``(1 + 0.6 cos(2 pi (t - 16) / 24)) / 24`` (afternoon peak), which sum to 1.
- ``ssrd`` (J m-2, accumulated over the hour ending at the valid time): the day's ``Rg x 86400 s``
  spread over its 24 UTC hours in proportion to the cosine of the solar zenith angle at mid-hour
  (uniformly when it is never positive).

Accumulations are stamped at the end of their hour, so the 00 UTC values of the 1st of a month close the
last day of the month before (in the previous file). The simulated day is taken as the UTC day. So the
recipe's daily Tair, VPD, P and Rg equal the daily weather up to the int16 packing.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
import pandas as pd

from fluxcube.simulate import ncfiles
from fluxcube.simulate.weather import solar_declination

#: variable -> (packing scale, offset, attributes): fixed int16 packing covering the simulated range.
PACKING: dict[str, tuple[float, float, dict[str, str]]] = {
    "t2m": (0.0025, 273.15, {"units": "K", "long_name": "2 metre temperature"}),
    "d2m": (0.0025, 273.15, {"units": "K", "long_name": "2 metre dewpoint temperature"}),
    "tp": (2e-6, 32766 * 2e-6, {"units": "m", "long_name": "Total precipitation"}),
    "ssrd": (
        80.0,
        32766 * 80.0,
        {
            "units": "J m**-2",
            "long_name": "Surface solar radiation downwards",
            "standard_name": "surface_downwelling_shortwave_flux_in_air",
        },
    ),
}
FILL = -32767
HOURS_SINCE = "hours since 1900-01-01 00:00:00.0"
ERA5_VARS = ("t2m", "d2m", "tp", "ssrd")


def es_ifs(t_kelvin: np.ndarray) -> np.ndarray:
    """Saturation vapour pressure over water (hPa), the IFS Tetens formula the ERA5 recipe uses."""
    return 6.1121 * np.exp(17.502 * (t_kelvin - 273.16) / (t_kelvin - 32.19))


def dew_point(e_hpa: np.ndarray) -> np.ndarray:
    """Dew point (K) of vapour pressure ``e_hpa`` (hPa): the inverse of :func:`es_ifs`."""
    x = np.log(e_hpa / 6.1121) / 17.502
    return (273.16 - 32.19 * x) / (1.0 - x)


def _local_time(lon: np.ndarray) -> np.ndarray:
    """Local solar time (h) at UTC hour starts 0..23 (24, point)."""
    return np.arange(24.0)[:, None] + np.asarray(lon)[None, :] / 15.0


def hourly(
    weather: dict[str, np.ndarray], doy: np.ndarray, lat: np.ndarray, lon: np.ndarray
) -> dict[str, Any]:
    """Hourly fields (hours, point) for days 1..n of ``weather`` arrays (n + 1, point), row 0 the day before.

    ``doy`` (n + 1,) days of year of the rows. Returns ``t2m``, ``d2m`` (K) at 00..23 UTC of days 1..n
    and ``tp`` (m), ``ssrd`` (J m-2) accumulated over the hours ending at those valid times.
    """
    n = weather["tair"].shape[0] - 1
    t_loc = _local_time(lon)  # (24, point)
    # instantaneous fields, days 1..n
    tair = weather["tair"][1:]
    k = np.clip((weather["rg"][1:] / np.maximum(weather["rpot"][1:], 1e-6) - 0.27) / 0.47, 0.0, 1.0)
    amp = np.where(weather["rpot"][1:] > 1.0, 1.0 + 5.0 * k, 1.0)
    t2m = tair[:, None, :] + amp[:, None, :] * np.cos(2 * np.pi * (t_loc[None] - 15.0) / 24.0) + 273.15
    es = es_ifs(t2m)
    ratio = np.clip(weather["vpd"][1:] / es.mean(axis=1), 0.0, 0.98)  # VPD / daily mean es
    d2m = dew_point(es * (1.0 - ratio[:, None, :]))
    # accumulations over the periods starting at 00..23 UTC of days 0..n
    mid = t_loc + 0.5
    w_rain = (1.0 + 0.6 * np.cos(2 * np.pi * (mid - 16.0) / 24.0)) / 24.0  # (24, point), sums to 1
    tp_periods = weather["precip"][:, None, :] / 1000.0 * w_rain[None]  # (n + 1, 24, point), m
    phi = np.deg2rad(lat)[None, None, :]
    delta = solar_declination(doy)[:, None, None]
    omega = np.deg2rad(15.0 * (mid - 12.0))[None]
    cosz = np.maximum(np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.cos(omega), 0.0)
    total = cosz.sum(axis=1, keepdims=True)
    w_sun = np.where(total > 0, cosz / np.where(total > 0, total, 1.0), 1.0 / 24.0)
    ssrd_periods = weather["rg"][:, None, :] * 86400.0 * w_sun  # J m-2 per hour
    # the value valid at day d hour h closes the period starting an hour earlier
    valid = slice(23, 23 + 24 * n)
    pts = weather["tair"].shape[1]
    return {
        "t2m": t2m.reshape(24 * n, pts),
        "d2m": d2m.reshape(24 * n, pts),
        "tp": tp_periods.reshape(24 * (n + 1), pts)[valid],
        "ssrd": ssrd_periods.reshape(24 * (n + 1), pts)[valid],
    }


def month_path(folder: Path, year: int, month: int) -> Path:
    """The monthly file (hourly fields of every day of the month)."""
    return folder / f"era5_{year}-{month:02d}_t2m_d2m_tp_ssrd.nc"


def day_path(folder: Path, day: pd.Timestamp) -> Path:
    """The daily file (``era5_files="daily"``: 24 hourly fields, like a one-day CDS request)."""
    return folder / f"era5_{day:%Y-%m-%d}_t2m_d2m_tp_ssrd.nc"


def file_spans(dates: pd.DatetimeIndex, files: str) -> list[tuple[int, int]]:
    """Day index ranges (first, after last) of a year's ``dates`` in each file: "monthly" or "daily"."""
    if files == "daily":
        return [(d, d + 1) for d in range(len(dates))]
    if files == "monthly":
        starts = [*np.flatnonzero(dates.is_month_start), len(dates)]
        return list(itertools.pairwise(starts))
    raise ValueError(f"era5_files {files!r}: expected 'monthly' or 'daily'")


def span_path(folder: Path, dates: pd.DatetimeIndex, span: tuple[int, int], files: str) -> Path:
    day = dates[span[0]]
    return day_path(folder, day) if files == "daily" else month_path(folder, day.year, day.month)


def closing_path(folder: Path, year: int) -> Path:
    """The file with the 00 UTC accumulations of 1 January ``year`` (closing 31 December before)."""
    return folder / f"era5_{year}-01-01T00_tp_ssrd.nc"


def open_file(
    path: Path,
    times: pd.DatetimeIndex,
    lat: np.ndarray,
    lon: np.ndarray,
    names: tuple[str, ...],
    attrs: dict[str, Any],
    band_rows: int,
) -> netCDF4.Dataset:
    """A CDS-layout file for valid ``times`` on the world grid (``lat`` ascending, ``lon`` -180..180).

    HDF5 chunks: (24 hours, ``band_rows`` latitudes, all longitudes), so each band's slab fills whole chunks.
    """
    ds = ncfiles.create(
        path,
        {
            "Conventions": "CF-1.6",
            "history": "synthetic: written by fluxcube.simulate.era5_sim in the CDS (grib_to_netcdf) layout",
            **attrs,
        },
        {"longitude": lon.size, "latitude": lat.size, "time": None},
    )
    era_lon = np.roll(np.mod(lon, 360.0), -(lon.size // 2))
    ncfiles.coordinate(ds, "longitude", era_lon, {"units": "degrees_east", "long_name": "longitude"}, "f4")
    ncfiles.coordinate(ds, "latitude", lat[::-1], {"units": "degrees_north", "long_name": "latitude"}, "f4")
    hours = ((times - pd.Timestamp("1900-01-01")) // pd.Timedelta(hours=1)).to_numpy().astype("int32")
    ncfiles.variable(
        ds,
        "time",
        "i4",
        ("time",),
        {"units": HOURS_SINCE, "long_name": "time", "calendar": "gregorian"},
        compress=False,
        chunks=(max(1, len(times)),),
        data=hours,
    )
    for name in names:
        scale, offset, var_attrs = PACKING[name]
        ncfiles.variable(
            ds,
            name,
            "i2",
            ("time", "latitude", "longitude"),
            {"scale_factor": scale, "add_offset": offset, "missing_value": np.int16(FILL), **var_attrs},
            fill=np.int16(FILL),
            chunks=(min(24, len(times)), band_rows, lon.size),
        )
    return ds


def write_points(
    ds: netCDF4.Dataset,
    name: str,
    values: np.ndarray,
    cells: np.ndarray,
    i0: int,
    i1: int,
    n_lat: int,
    n_lon: int,
) -> None:
    """Write ``values`` (hours, point) of the points at flat band positions ``cells`` (rows ``i0..i1`` of the
    world grid, lat ascending, lon -180..180) into ``ds[name]``; every other cell of the band is missing."""
    scale, offset, _ = PACKING[name]
    slab = np.full((values.shape[0], (i1 - i0) * n_lon), FILL, dtype="i2")
    slab[:, cells] = ncfiles.pack(values, scale, offset, "i2", FILL)
    slab = slab.reshape(values.shape[0], i1 - i0, n_lon)[:, ::-1, :]
    ds[name][:, n_lat - i1 : n_lat - i0, :] = np.roll(slab, -(n_lon // 2), axis=2)
