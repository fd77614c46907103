"""Friction velocity (u*) of the simulated towers, and the night-time flux lost at low turbulence.

u* (m s-1) of every half hour is the wind speed at the tower times a canopy roughness ratio:

``u* = ratio_PFT x W_site x S_day x D(half hour) x e``

- ``W_site``: the site's median wind, ``WIND_MEDIAN`` (3 m s-1) x lognormal(0, 0.2) per site;
- ``S_day``: synoptic variability, a lognormal AR(1) over days (lag-1 correlation ``SYNOPTIC_PHI`` 0.7,
  log standard deviation ``SYNOPTIC_SD`` 0.35), independent of the simulated weather (so that u* and
  air temperature are not correlated, as the moving point test assumes);
- ``D``: diurnal cycle, ``0.6 + 0.6 x SW_IN_POT / (the day's maximum SW_IN_POT)``: 0.6 at night, 1.2 at
  solar noon (convective daytime mixing, stable nights);
- ``e``: half-hourly turbulence, lognormal(0, ``HALFHOUR_SD`` 0.3);
- ``ratio_PFT`` (u* / wind, set by the canopy roughness, :data:`USTAR_PFT`): 0.2 over forests, 0.15
  woody savannas, 0.13 savannas, 0.1 shrubs, grasslands and crops, 0.08 wetlands and snow.

u* is kept within 0.005..2 m s-1 and written with 4 decimals. The night-time median is then about 0.36
m s-1 over forests and 0.18 over grasslands and crops; the day-time median about 1.6 times that.

Every site has a true u* threshold (m s-1; :data:`USTAR_PFT`, default 0.3 for forests, 0.2 woody
savannas, 0.18 savannas, 0.15 shrubs and crops, 0.12 grasslands, 0.1 wetlands and snow). At night
(potential radiation 0), a half hour whose u* is below it measures only ``u* / threshold`` of the
flux (signal and random error): the rest of the respiration is lost to advection and canopy storage,
linearly more as u* goes to 0 (:func:`low_turbulence_factor`). With the defaults 13-51 % of the
night-time half hours are below the threshold (by site; a third typically) and lose on average a quarter
of their flux, 5-12 % of the night-time respiration.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.signal import lfilter

WIND_MEDIAN = 3.0  # m s-1, the median wind speed of a site (before its own lognormal factor)
SITE_WIND_SD = 0.2  # log standard deviation of the site's median wind between sites
SYNOPTIC_PHI = 0.7  # lag-1 (day) correlation of the synoptic wind factor
SYNOPTIC_SD = 0.35  # log standard deviation of the synoptic wind factor
HALFHOUR_SD = 0.3  # log standard deviation of the half-hourly turbulence factor
DIURNAL_NIGHT, DIURNAL_AMPLITUDE = 0.6, 0.6  # D = 0.6 at night, 0.6 + 0.6 at solar noon
USTAR_DECIMALS = 4
USTAR_MIN, USTAR_MAX = 0.005, 2.0  # m s-1: the range of u* written (the lognormal tails cut)

#: PFT -> (u* / wind speed ratio, set by canopy roughness; true u* threshold, m s-1)
USTAR_PFT: dict[str, tuple[float, float]] = {
    "ENF": (0.2, 0.3),
    "EBF": (0.2, 0.3),
    "DNF": (0.2, 0.3),
    "DBF": (0.2, 0.3),
    "MF": (0.2, 0.3),
    "WSA": (0.15, 0.2),
    "SAV": (0.13, 0.18),
    "CSH": (0.1, 0.15),
    "OSH": (0.1, 0.15),
    "CRO": (0.1, 0.15),
    "GRA": (0.1, 0.12),
    "WET": (0.08, 0.1),
    "SNO": (0.08, 0.1),
}
DEFAULT_PFT = "GRA"  # for a class not in the table


def ustar_ratio(classid: str) -> float:
    """u* / wind speed ratio of a PFT (dimensionless)."""
    return USTAR_PFT.get(classid, USTAR_PFT[DEFAULT_PFT])[0]


def ustar_thresholds(sites: pd.DataFrame, ustar_threshold: float | Mapping[str, float] | None) -> pd.Series:
    """True u* threshold (m s-1) per site (index ``sitename``).

    None: by PFT (:data:`USTAR_PFT`); a number: every site (0: no low-turbulence loss); a mapping: the
    named sites' thresholds, the others by PFT.
    """
    names = sites["sitename"]
    by_pft = sites["classid"].map(lambda c: USTAR_PFT.get(c, USTAR_PFT[DEFAULT_PFT])[1]).to_numpy(float)
    if ustar_threshold is None:
        thr = by_pft
    elif isinstance(ustar_threshold, Mapping):
        thr = np.array([float(ustar_threshold.get(s, d)) for s, d in zip(names, by_pft, strict=True)])
    else:
        thr = np.full(len(names), float(ustar_threshold))
    if (thr < 0).any() or not np.isfinite(thr).all():
        raise ValueError(f"u* threshold {ustar_threshold}: expected m s-1 >= 0 (0: no loss)")
    return pd.Series(thr, index=names.to_numpy(), name="ustar_threshold")


def simulate_ustar(sw_pot: np.ndarray, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Half-hourly u* (day, 48) in m s-1, 0.005..2, rounded to 4 decimals, from the potential
    radiation ``sw_pot`` (day, 48; W m-2) and the PFT's u*/wind ``ratio`` (module docstring)."""
    n_days = sw_pot.shape[0]
    site = WIND_MEDIAN * np.exp(rng.normal(0.0, SITE_WIND_SD))
    innovations = rng.normal(0.0, SYNOPTIC_SD * np.sqrt(1.0 - SYNOPTIC_PHI**2), n_days)
    innovations[0] = rng.normal(0.0, SYNOPTIC_SD)  # start from the stationary distribution
    synoptic = np.exp(lfilter([1.0], [1.0, -SYNOPTIC_PHI], innovations))
    peak = sw_pot.max(axis=1, keepdims=True)
    sun = np.divide(sw_pot, peak, out=np.zeros_like(sw_pot), where=peak > 0)
    diurnal = DIURNAL_NIGHT + DIURNAL_AMPLITUDE * sun
    halfhour = np.exp(rng.normal(0.0, HALFHOUR_SD, sw_pot.shape))
    ustar = ratio * site * synoptic[:, None] * diurnal * halfhour
    return np.round(np.clip(ustar, USTAR_MIN, USTAR_MAX), USTAR_DECIMALS)


def low_turbulence_factor(ustar: np.ndarray, night: np.ndarray, threshold: float) -> np.ndarray:
    """Fraction of the flux a tower measures: ``min(u* / threshold, 1)`` at night, 1 by day or when the
    threshold is 0 (no loss)."""
    if threshold <= 0:
        return np.ones(np.shape(ustar))
    return np.where(night, np.minimum(ustar / threshold, 1.0), 1.0)
