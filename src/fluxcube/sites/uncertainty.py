"""Random uncertainty of half-hourly NEE and daily / monthly aggregates with their uncertainty.

Random uncertainty (Hollinger & Richardson 2005, as ONEFlux's NEE_RANDUNC "method 1"): for each
measured record, the standard deviation of the measured NEE under similar meteorological conditions
(Rg within 50 W m-2 (20 at low light), Tair 2.5 degC, VPD 5 hPa) within +-7 days, when at least 5 such
values exist; otherwise ("method 2") the mean of that uncertainty at the same time of day +-1 hour
within +-2 (then up to +-210) days. Gap-filled records carry the standard deviation of the values the
MDS averaged (REddyProc's NEE_fsd).

Units and conversions:

- half-hourly NEE, GPP, Reco: umol CO2 m-2 s-1;
- one half-hour of a flux F (umol CO2 m-2 s-1) carries F * 1800 s * 12.011e-6 g C umol-1 of carbon
  (:data:`GC_PER_UMOL_HALFHOUR` = 0.0216198 g C m-2 per (umol m-2 s-1) per half-hour);
- daily sums in g C m-2 d-1 are the sum of the 48 half-hourly amounts (equal to the daily mean flux
  times 86400 s * 12.011e-6 = 1.0377504);
- daily uncertainty assumes independent half-hourly errors: sigma_day = 0.0216198 * sqrt(sum sigma_i^2);
- monthly values are means of daily values (g C m-2 d-1), sigma_month = sqrt(sum sigma_day^2) / n_days.
A day is aggregated only when all its records have a (measured or gap-filled) value; otherwise NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fluxcube.sites.gapfill import METHOD_LUT3, mds_gapfill

SECONDS_PER_HALFHOUR = 1800.0  # s
GRAMS_C_PER_UMOL = 12.011e-6  # g C per umol C (molar mass of carbon 12.011 g mol-1)
GC_PER_UMOL_HALFHOUR = SECONDS_PER_HALFHOUR * GRAMS_C_PER_UMOL  # g C m-2 per (umol m-2 s-1) per half-hour
MIN_SIMILAR = 5


def random_uncertainty(
    nee: np.ndarray, rg: np.ndarray, tair: np.ndarray, vpd: np.ndarray, records_per_day: int = 48
) -> np.ndarray:
    """Random uncertainty (umol m-2 s-1) of each measured NEE record (NaN where NEE is missing).

    ``nee`` measured (u*-filtered) NEE with NaN gaps, ``rg`` W m-2, ``tair`` degC, ``vpd`` hPa.
    """
    nee = np.asarray(nee, dtype=float)
    measured = np.isfinite(nee)
    similar = mds_gapfill(nee, rg, tair, vpd, records_per_day=records_per_day, fill_all=True)
    method1 = measured & (similar.method == METHOD_LUT3) & (similar.window <= 14) & (similar.n >= MIN_SIMILAR)
    sigma = np.where(method1, similar.sd, np.nan)
    if method1.any() and not method1[measured].all():
        diurnal = mds_gapfill(sigma, records_per_day=records_per_day)
        sigma = np.where(measured & ~method1, diurnal.filled, sigma)
    return np.where(measured, sigma, np.nan)


def daily_sums(
    time: pd.DatetimeIndex,
    flux: np.ndarray,
    sigma: np.ndarray | None = None,
    filled: np.ndarray | None = None,
) -> pd.DataFrame:
    """Daily carbon sums (g C m-2 d-1) of a half-hourly flux (umol m-2 s-1) on a complete grid.

    Columns: ``value``; ``sigma`` (g C m-2 d-1) when half-hourly ``sigma`` (umol m-2 s-1) is given;
    ``frac_filled`` (0..1) when the boolean ``filled`` marks gap-filled records. Days (of the index's
    clock, local standard time for site files) with any missing record are NaN.
    """
    frame = pd.DataFrame({"value": np.asarray(flux, float) * GC_PER_UMOL_HALFHOUR}, index=time)
    if sigma is not None:
        frame["var"] = (np.asarray(sigma, float) * GC_PER_UMOL_HALFHOUR) ** 2
    if filled is not None:
        frame["frac_filled"] = np.asarray(filled, float)
    day = pd.DatetimeIndex(time).normalize()
    grouped = frame.groupby(day)
    out = grouped.sum(min_count=1)
    complete = grouped["value"].count() == grouped["value"].size()
    out.loc[~complete, "value"] = np.nan
    if sigma is not None:
        out["sigma"] = np.sqrt(out.pop("var")).where(complete & (grouped["var"].count() == grouped.size()))
    if filled is not None:
        out["frac_filled"] = grouped["frac_filled"].mean()
    out.index.name = "date"
    return out


def daily_means(time: pd.DatetimeIndex, values: np.ndarray) -> pd.Series:
    """Daily means (units of ``values``) over complete days (NaN when a record is missing)."""
    s = pd.Series(np.asarray(values, float), index=time)
    grouped = s.groupby(pd.DatetimeIndex(time).normalize())
    out = grouped.mean().where(grouped.count() == grouped.size())
    out.index.name = "date"
    return out


def monthly_from_daily(daily: pd.DataFrame) -> pd.DataFrame:
    """Monthly means of daily ``value`` (g C m-2 d-1) with ``sigma`` = sqrt(sum sigma_d^2) / n_days and
    mean ``frac_filled``; ``n_days`` counts the complete days used. Index: first day of the month.
    """
    month = pd.DatetimeIndex(daily.index).to_period("M").to_timestamp()
    grouped = daily.groupby(month)
    out = pd.DataFrame({"value": grouped["value"].mean(), "n_days": grouped["value"].count()})
    if "sigma" in daily:
        out["sigma"] = np.sqrt((daily["sigma"] ** 2).groupby(month).sum(min_count=1)) / out["n_days"]
    if "frac_filled" in daily:
        out["frac_filled"] = grouped["frac_filled"].mean()
    out.index.name = "month"
    return out
