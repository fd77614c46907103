"""Rpot: the closed-form daily mean against pvlib's solar position integrated minute by minute, and
against the half-hourly potential radiation of site processing averaged over the day."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fluxcube.drivers.radiation import daily_potential_radiation
from fluxcube.sites.met import potential_radiation

CASES = [
    (lat, day)
    for lat in (0.0, 23.0, 45.0, -33.0, 67.0, 78.0, -72.0)
    for day in ("2012-01-15", "2012-03-20", "2012-06-21", "2013-09-05", "2013-12-21")
]


def _pvlib_daily(lat: float, day: str) -> float:
    """Mean over the UTC day of pvlib's extraterrestrial irradiance x cos(zenith) (NREL SPA), 1 min."""
    import pvlib

    t = pd.date_range(day, periods=1440, freq="1min", tz="UTC") + pd.Timedelta(seconds=30)
    pos = pvlib.solarposition.get_solarposition(t, lat, 0.0, method="nrel_numpy")
    dni = pvlib.irradiance.get_extra_radiation(t, solar_constant=1366.1, method="spencer").to_numpy()
    return float(np.mean(dni * np.clip(np.cos(np.deg2rad(pos["zenith"].to_numpy())), 0.0, None)))


@pytest.mark.parametrize("lat,day", CASES)
def test_daily_rpot_against_pvlib(lat: float, day: str) -> None:
    doy = pd.Timestamp(day).day_of_year
    got = daily_potential_radiation(np.array([lat]), np.array([doy]))[0, 0]
    want = _pvlib_daily(lat, day)
    # Spencer declination (up to 0.3 deg off in a given year; fastest change at high latitudes near
    # the equinoxes) and dr = 1 + 0.033 cos(): up to 5 %
    assert abs(got - want) < max(8.0, 0.05 * want), (got, want)
    if want == 0.0:
        assert got == 0.0  # polar night


@pytest.mark.parametrize("lat,day", CASES)
def test_daily_rpot_is_the_mean_of_site_processing_half_hours(lat: float, day: str) -> None:
    doy = pd.Timestamp(day).day_of_year
    got = daily_potential_radiation(np.array([lat]), np.array([doy]))[0, 0]
    halfhours = potential_radiation(pd.date_range(day, periods=48, freq="30min"), lat, 0.0, 0.0)
    assert abs(got - halfhours.mean()) < 0.6  # W m-2: same model, 30-min sampling


def test_shape_and_polar_day() -> None:
    lat = np.array([-89.75, 0.25, 89.75])
    out = daily_potential_radiation(lat, np.arange(1, 367))
    assert out.shape == (366, 3) and np.all(out >= 0)
    # at the pole in midsummer the sun circles at elevation = declination: S0 dr sin(23.44 deg)
    june = out[171, 2]
    assert abs(june - 1366.1 * (1 + 0.033 * np.cos(2 * np.pi * 172 / 365)) * np.sin(np.deg2rad(23.44))) < 3.0
    assert out[171, 0] == 0.0  # south pole in June: night
