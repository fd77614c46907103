"""Small meteorological helpers: potential (top-of-atmosphere) radiation and VPD from humidity."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fluxcube import solar

SOLAR_CONSTANT = 1366.1  # W m-2, the value REddyProc's fCalcPotRadiation uses


def potential_radiation(
    start: pd.DatetimeIndex,
    lat: float,
    lon: float,
    utc_offset: float,
    step: pd.Timedelta = pd.Timedelta(minutes=30),
) -> np.ndarray:
    """Extraterrestrial radiation on a horizontal plane (W m-2) at the middle of each period.

    ``start`` is the period start in local standard time, ``utc_offset`` hours east of UTC, ``lat``
    and ``lon`` degrees north and east. Solar declination and the equation of time follow Spencer
    (1971); the orbit factor is 1 + 0.033 cos(2 pi doy / 365). Zero when the sun is below the horizon.
    """
    mid = pd.DatetimeIndex(start) + step / 2 - pd.Timedelta(hours=float(utc_offset))
    doy = mid.day_of_year.to_numpy(dtype=float)
    hour = (mid.hour + mid.minute / 60.0 + mid.second / 3600.0).to_numpy(dtype=float)
    g = 2.0 * np.pi * (doy - 1.0 + (hour - 12.0) / 24.0) / 365.0
    decl = solar.declination(g)
    eot_min = solar.equation_of_time(g)
    solar_hour = hour + lon / 15.0 + eot_min / 60.0
    hour_angle = np.deg2rad(15.0 * (solar_hour - 12.0))
    phi = np.deg2rad(lat)
    sin_elev = np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.cos(hour_angle)
    orbit = 1.0 + 0.033 * np.cos(2.0 * np.pi * doy / 365.0)
    return SOLAR_CONSTANT * orbit * np.clip(sin_elev, 0.0, None)


def saturation_vapour_pressure(tair: np.ndarray) -> np.ndarray:
    """Saturation vapour pressure (hPa) over water at ``tair`` (degC), Magnus form (Sonntag 1990)."""
    return 6.1078 * np.exp(17.08085 * tair / (234.175 + tair))


def vpd_from_rh(tair: np.ndarray, rh: np.ndarray) -> np.ndarray:
    """Vapour pressure deficit (hPa) from air temperature (degC) and relative humidity (%)."""
    rh = np.clip(np.asarray(rh, dtype=float), 0.0, 100.0)
    return saturation_vapour_pressure(np.asarray(tair, dtype=float)) * (1.0 - rh / 100.0)
