"""Daily mean potential radiation Rpot (W m-2) from solar geometry.

Rpot is the daily mean of the extraterrestrial radiation on a horizontal surface, the integral over
the day of the half-hourly potential radiation that site processing uses
(:func:`fluxcube.sites.met.potential_radiation`), in closed form (Duffie and Beckman; FAO-56 eq. 21)::

    Rpot = S0 / pi * dr * (ws sin(phi) sin(d) + cos(phi) cos(d) sin(ws))
    ws   = arccos(clip(-tan(phi) tan(d), -1, 1))      sunset hour angle (0: polar night, pi: polar day)

with the same constants as site processing: S0 = 1366.1 W m-2 (:data:`fluxcube.sites.met.SOLAR_CONSTANT`),
the orbit factor dr = 1 + 0.033 cos(2 pi doy / 365) and the declination d of Spencer (1971)
(:func:`fluxcube.solar.declination`) at 12:00 UTC of the day. It depends on latitude and day of year
only; the tests check it against pvlib's solar position integrated minute by minute.
"""

from __future__ import annotations

import numpy as np

from fluxcube import solar
from fluxcube.sites.met import SOLAR_CONSTANT


def daily_potential_radiation(lat: np.ndarray, doy: np.ndarray) -> np.ndarray:
    """Daily mean top-of-atmosphere radiation on a horizontal surface (W m-2), shape (doy, lat).

    ``lat``: latitudes (degrees north), any length; ``doy``: days of year (1..366).
    """
    phi = np.deg2rad(np.asarray(lat, dtype="float64"))[None, :]
    day = np.asarray(doy, dtype="float64")[:, None]
    decl = solar.declination(2.0 * np.pi * (day - 1.0) / 365.0)
    orbit = 1.0 + 0.033 * np.cos(2.0 * np.pi * day / 365.0)
    ws = np.arccos(np.clip(-np.tan(phi) * np.tan(decl), -1.0, 1.0))
    daily = ws * np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.sin(ws)
    return SOLAR_CONSTANT / np.pi * orbit * np.clip(daily, 0.0, None)
