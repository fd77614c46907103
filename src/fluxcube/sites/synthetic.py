"""Synthetic half-hourly tower data with known truth, for tests and benchmarks of the site steps.

Drivers: clear-sky-like radiation from the potential radiation times a daily cloudiness factor, air
temperature with seasonal and diurnal cycles, VPD from temperature and a humidity cycle, u* with a
diurnal cycle. Fluxes: Reco by Lloyd-Taylor with a seasonally varying Rref, GPP by the Lasslop (2010)
light response; NEE = Reco - GPP plus Gaussian noise. Optionally night-time NEE is biased low when
u* is below a threshold (the low-turbulence underestimation that u* filtering removes).
Frames carry ``attrs['synthetic'] = True`` and the true parameters in ``attrs['truth']``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fluxcube.sites.met import potential_radiation, vpd_from_rh
from fluxcube.sites.partition import light_response, lloyd_taylor


def synthetic_site(
    year: int = 2001,
    days: int = 365,
    lat: float = 50.96,
    lon: float = 13.57,
    utc_offset: float = 1.0,
    e0: float = 150.0,
    rref: float = 3.0,
    alpha: float = 0.04,
    beta0: float = 25.0,
    k: float = 0.05,
    noise: float = 1.0,
    ustar_threshold: float | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """One site's half-hourly frame (period-start index, local standard time) with known fluxes.

    Columns: NEE, Reco_true, GPP_true (umol m-2 s-1), Rg (W m-2), Tair (degC), VPD (hPa), rH (%),
    Ustar (m s-1). ``rref`` (umol m-2 s-1) is the annual mean of Rref, which varies by +-30 % with the
    season; ``e0`` K, ``alpha`` umol J-1, ``beta0`` umol m-2 s-1, ``k`` hPa-1; ``noise`` standard
    deviation of NEE noise (umol m-2 s-1). With ``ustar_threshold`` (m s-1) night-time NEE below that
    u* is reduced to u*/threshold of its value.
    """
    rng = np.random.default_rng(seed)
    time = pd.date_range(f"{year}-01-01", periods=days * 48, freq="30min", name="time")
    doy = time.day_of_year.to_numpy(float)
    hour = (time.hour + time.minute / 60.0).to_numpy(float) + 0.25
    season = -np.cos(2 * np.pi * (doy - 15) / 365.0)  # -1 in mid-January, +1 in mid-July
    rpot = potential_radiation(time, lat, lon, utc_offset)
    cloud = np.repeat(rng.uniform(0.35, 0.8, days), 48)
    rg = rpot * cloud
    tair = (
        8.0
        + 10.0 * season
        + 4.0 * np.sin(2 * np.pi * (hour - 9.0) / 24.0)
        + np.repeat(rng.normal(0, 2.0, days), 48)
    )
    rh = np.clip(75.0 - 20.0 * np.sin(2 * np.pi * (hour - 9.0) / 24.0) - 5 * season, 20, 100)
    vpd = vpd_from_rh(tair, rh)
    ustar = np.clip(
        0.25 + 0.2 * np.sin(2 * np.pi * (hour - 9.0) / 24.0) + rng.gamma(2.0, 0.06, time.size) - 0.1,
        0.01,
        None,
    )
    rref_t = rref * (1.0 + 0.3 * season)
    reco = lloyd_taylor(tair, rref_t, e0)
    gpp = light_response(rg, vpd, alpha, beta0 * (0.6 + 0.4 * season), k)
    nee = reco - gpp + rng.normal(0.0, noise, time.size)
    if ustar_threshold is not None:
        low = (rpot <= 0) & (ustar < ustar_threshold)
        nee[low] *= ustar[low] / ustar_threshold
    frame = pd.DataFrame(
        {
            "NEE": nee,
            "Reco_true": reco,
            "GPP_true": gpp,
            "Rg": rg,
            "Tair": tair,
            "VPD": vpd,
            "rH": rh,
            "Ustar": ustar,
        },
        index=time,
    )
    frame.attrs.update(
        synthetic=True,
        truth={
            "e0": e0,
            "rref": rref,
            "alpha": alpha,
            "beta0": beta0,
            "k": k,
            "noise": noise,
            "ustar_threshold": ustar_threshold,
        },
        lat=lat,
        lon=lon,
        utc_offset=utc_offset,
    )
    return frame
