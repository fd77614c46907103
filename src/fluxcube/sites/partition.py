"""Partitioning of NEE into ecosystem respiration (Reco) and gross primary production (GPP).

Fluxes in umol CO2 m-2 s-1, NEE positive upward (source); GPP positive (uptake) and
``GPP = Reco - NEE``. Temperatures in degC, Rg in W m-2, VPD in hPa.

Night-time method (Reichstein et al. 2005, as REddyProc's ``sMRFluxPartition``):

1. short-term temperature sensitivity: Lloyd-Taylor fits of night-time measured NEE against
   temperature in 15-day windows (centres 5 days apart) with > 6 records and a temperature range of at
   least 5 K; each fit is repeated without residuals outside their 5-95 % quantiles; estimates whose
   E0 +- standard error leaves ``e0_bounds`` are discarded; E0 of the year = mean of the 3 estimates
   with the smallest standard error (per calendar year; years without one take the mean of the others);
2. Rref by linear regression through the origin with E0 fixed in 7-day windows, 4 days apart, assigned
   to the mean time of the records used and linearly interpolated;
3. Reco = Lloyd-Taylor(T) at every record, GPP = Reco - NEE_f.

Day-time method (Lasslop et al. 2010):

NEE = -alpha beta Rg / (alpha Rg + beta) + rb exp(E0 (1/(Tref - T0) - 1/(T - T0))),
beta = beta0 exp(-k (VPD - 10 hPa)) above 10 hPa, beta0 otherwise. E0 (and a night Rref used as the
starting value of rb) from night-time data (Rg <= 4 W m-2, sun below the horizon) in 12-day windows
(24 days where too few data; otherwise the previous window's E0); alpha, beta0, k, rb from day-time data
(Rg > 4 W m-2) in 4-day windows every 2 days (8 days where the 4-day fit fails), starting from
alpha 0.1, k 0.05, beta0 = the 3-97 % range of day NEE, rb = night Rref (REddyProc), within bounds
alpha [0, 0.22] umol J-1, beta0 [0, 250) umol m-2 s-1, k >= 0 hPa-1, rb >= 0. A fit is rejected
when alpha or rb end at zero (the data ask for negative values), beta0 reaches 250 or exceeds four
times its starting value (no light saturation in the data); rejected windows are bridged by their
neighbours. Predictions of neighbouring windows are interpolated by time distance (REddyProc).
As REddyProc: with the NEE uncertainty given, a prior on beta0 (SD from the window's relative NEE
uncertainty); windows whose alpha ends at 0.22 are refitted with alpha fixed to the previous valid
window's. Not done: uncertainty-weighted fits (an option), parameter bootstrap, E0 smoothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fluxcube.sites.common import StepError, day_number, interpolate_between, window_groups
from fluxcube.sites.fitting import fit_batch, pad_rows

T_REF = 288.15  # K, reference temperature (15 degC)
T_0 = 227.13  # K, Lloyd-Taylor temperature (-46.02 degC)
KELVIN = 273.15
VPD_0 = 10.0  # hPa, VPD above which light-saturated uptake declines
#: bounds of (alpha umol J-1, beta0 umol m-2 s-1, k hPa-1, rb umol m-2 s-1) (Lasslop et al. 2010, Table A1)
LRC_LOWER = np.array([0.0, 0.0, 0.0, 0.0])
LRC_UPPER = np.array([0.22, 250.0, np.inf, np.inf])


def lloyd_taylor(temp: np.ndarray, rref: np.ndarray | float, e0: np.ndarray | float) -> np.ndarray:
    """Respiration (units of ``rref``) at ``temp`` (degC) with sensitivity ``e0`` (K) (Lloyd & Taylor 1994).

    ``rref`` is the respiration at 15 degC; T0 = -46.02 degC.
    """
    return rref * np.exp(e0 * (1.0 / (T_REF - T_0) - 1.0 / (np.asarray(temp) + KELVIN - T_0)))


def light_response(
    rg: np.ndarray, vpd: np.ndarray, alpha: np.ndarray, beta0: np.ndarray, k: np.ndarray
) -> np.ndarray:
    """GPP (umol m-2 s-1) of the rectangular hyperbola with VPD limitation (Lasslop et al. 2010).

    ``rg`` W m-2, ``vpd`` hPa, ``alpha`` umol J-1 (canopy light use efficiency), ``beta0`` umol m-2 s-1
    (maximum uptake), ``k`` hPa-1.
    """
    beta = beta0 * np.exp(-k * np.clip(vpd - VPD_0, 0.0, None))
    denom = alpha * rg + beta
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, alpha * beta * rg / np.where(denom > 0, denom, 1.0), 0.0)


@dataclass
class NightResult:
    """Night-time partitioning: ``reco`` and ``gpp`` per record (umol m-2 s-1), ``e0`` per record (K),
    ``rref`` per record (umol m-2 s-1), ``windows``: one row per short-term E0 fit, ``notes``.
    """

    reco: np.ndarray
    gpp: np.ndarray
    e0: np.ndarray
    rref: np.ndarray
    windows: pd.DataFrame
    notes: list[str] = field(default_factory=list)


@dataclass
class DayResult:
    """Day-time partitioning: ``reco``, ``gpp`` per record (umol m-2 s-1), ``params`` per window."""

    reco: np.ndarray
    gpp: np.ndarray
    params: pd.DataFrame
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- Lloyd-Taylor fits
def _lt_model(temp: np.ndarray, e0_fixed: np.ndarray | None = None):
    x = 1.0 / (T_REF - T_0) - 1.0 / (temp + KELVIN - T_0)

    def model(p: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xr = x[rows]
        if e0_fixed is None:
            f = np.exp(p[:, 1:2] * xr)
            pred = p[:, 0:1] * f
            return pred, np.stack((f, pred * xr), axis=-1)
        f = np.exp(e0_fixed[rows, None] * xr)
        return p[:, 0:1] * f, f[..., None]

    return model


def fit_lloyd_taylor(
    groups: list[np.ndarray], temp: np.ndarray, resp: np.ndarray, trim_percent: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit Rref (umol m-2 s-1) and E0 (K) for each group of records; return (params (G, 2), stderr, ok).

    With ``trim_percent`` the fit is repeated without residuals outside the
    [trim, 100 - trim] percentiles of the first fit (REddyProc's trimmed E0).
    """
    weight, t, r = pad_rows(groups, temp, resp)
    model = _lt_model(t)
    p0 = np.tile([2.0, 200.0], (len(groups), 1))
    fit = fit_batch(model, p0, r, weight, lower=np.array([-np.inf, 0.0]))
    if trim_percent > 0:
        resid = np.where(weight > 0, r - model(fit.params, np.arange(len(groups)))[0], np.nan)
        with np.errstate(all="ignore"):
            lo = np.nanpercentile(resid, trim_percent, axis=1)
            hi = np.nanpercentile(resid, 100.0 - trim_percent, axis=1)
        keep = (weight > 0) & (resid >= lo[:, None]) & (resid <= hi[:, None])
        fit = fit_batch(model, p0, r, keep.astype(float), lower=np.array([-np.inf, 0.0]))
    return fit.params, fit.stderr, fit.ok


# --------------------------------------------------------------------------- night-time method
def nighttime_partition(
    time: pd.DatetimeIndex,
    nee_f: np.ndarray,
    use: np.ndarray,
    temp_f: np.ndarray,
    night: np.ndarray,
    *,
    e0_bounds: tuple[float, float] = (30.0, 450.0),
    min_temp_range: float = 5.0,
    e0: float | None = None,
) -> NightResult:
    """Night-time partitioning (module docstring).

    ``time`` period starts of a regular grid; ``nee_f`` gap-filled NEE; ``use`` true where NEE is a
    measured (not gap-filled, u*-filtered) value; ``temp_f`` gap-filled temperature (degC, air or
    soil); ``night`` true for night records; ``e0`` (K) prescribes the temperature sensitivity instead
    of estimating it (for records too short for step 1). Raises :class:`StepError` when no night-time
    data or no valid E0 exists.
    """
    n = nee_f.size
    day = day_number(time)
    sel = use & night & np.isfinite(nee_f) & np.isfinite(temp_f)
    if not sel.any():
        raise StepError("night-time partitioning", "no measured night-time NEE with temperature")
    n_days = int(day[-1]) + 1
    if e0 is not None:
        e0_rec = np.full(n, float(e0))
        rref = _rref(day, sel, nee_f, temp_f, e0_rec, n_days)
        reco = lloyd_taylor(temp_f, rref, e0_rec)
        return NightResult(reco, reco - nee_f, e0_rec, rref, pd.DataFrame(), [f"E0 prescribed: {e0} K"])
    first = np.arange(0, max(n_days - 7, 1), 5)  # 15-day windows [c-7, c+7], c = 7, 12, ...
    groups = window_groups(day, sel, first, 15)
    ok_data = np.array([g.size > 6 and np.ptp(temp_f[g]) >= min_temp_range for g in groups], bool)
    fit_groups = [g for g, ok in zip(groups, ok_data, strict=True) if ok]
    windows = pd.DataFrame(
        {"start": time[0].normalize() + pd.to_timedelta(first, unit="D"), "n": [g.size for g in groups]}
    )
    windows["e0"] = np.nan
    windows["e0_se"] = np.nan
    if fit_groups:
        params, stderr, ok = fit_lloyd_taylor(fit_groups, temp_f, nee_f, trim_percent=5.0)
        e0, se = np.where(ok, params[:, 1], np.nan), np.where(ok, stderr[:, 1], np.nan)
        windows.loc[ok_data, "e0"] = e0
        windows.loc[ok_data, "e0_se"] = se
    valid = (windows.e0 - windows.e0_se > e0_bounds[0]) & (windows.e0 + windows.e0_se < e0_bounds[1])
    windows["valid"] = valid
    if not valid.any():
        raise StepError(
            "night-time partitioning",
            f"no valid short-term E0 in {len(groups)} windows ({int(ok_data.sum())} with > 6 night "
            f"records and a temperature range >= {min_temp_range} K)",
        )
    e0_rec, notes = _e0_per_year(time, windows)
    rref = _rref(day, sel, nee_f, temp_f, e0_rec, n_days)
    reco = lloyd_taylor(temp_f, rref, e0_rec)
    return NightResult(reco, reco - nee_f, e0_rec, rref, windows, notes)


def _e0_per_year(time: pd.DatetimeIndex, windows: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    centre_year = (windows.start + pd.Timedelta(days=7)).dt.year.to_numpy()
    good = windows[windows.valid.to_numpy()]
    good_year = centre_year[windows.valid.to_numpy()]
    per_year: dict[int, float] = {}
    for year in np.unique(good_year):
        best = good[good_year == year].nsmallest(3, "e0_se")
        per_year[int(year)] = float(best.e0.mean())
    fallback = float(np.mean(list(per_year.values())))
    years = time.year.to_numpy()
    notes = [
        f"year {y}: no valid short-term E0, using the mean of other years ({fallback:.1f} K)"
        for y in np.unique(years)
        if int(y) not in per_year
    ]
    e0 = np.array([per_year.get(int(y), fallback) for y in years])
    return e0, notes


def _rref(
    day: np.ndarray, sel: np.ndarray, nee: np.ndarray, temp: np.ndarray, e0: np.ndarray, n_days: int
) -> np.ndarray:
    """Rref in 7-day windows every 4 days (least squares through the origin), interpolated."""
    idx = np.flatnonzero(sel)
    f = lloyd_taylor(temp[idx], 1.0, e0[idx])
    c_fr = np.concatenate(([0.0], np.cumsum(f * nee[idx])))
    c_ff = np.concatenate(([0.0], np.cumsum(f * f)))
    c_i = np.concatenate(([0.0], np.cumsum(idx.astype(np.float64))))
    centres = np.arange(3, max(n_days, 4), 4)
    lo = np.searchsorted(day[idx], centres - 3, side="left")
    hi = np.searchsorted(day[idx], centres + 4, side="left")
    count = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        rref = (c_fr[hi] - c_fr[lo]) / (c_ff[hi] - c_ff[lo])
        anchor = np.rint((c_i[hi] - c_i[lo]) / count)
    good = (count > 2) & np.isfinite(rref) & (rref >= 0)
    if not good.any():
        raise StepError("night-time partitioning", "no window with more than 2 night records for Rref")
    anchor, rref = anchor[good].astype(np.int64), rref[good]
    anchor, first = np.unique(anchor, return_index=True)
    return np.interp(np.arange(sel.size), anchor, rref[first])


# --------------------------------------------------------------------------- day-time method
def _lrc_model(rg: np.ndarray, vpd: np.ndarray, temp: np.ndarray, e0: np.ndarray):
    f = np.exp(e0[:, None] * (1.0 / (T_REF - T_0) - 1.0 / (temp + KELVIN - T_0)))
    dv = np.clip(vpd - VPD_0, 0.0, None)

    def model(p: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        alpha, beta0, k, rb = (p[:, i : i + 1] for i in range(4))
        rg_, dv_, f_ = rg[rows], dv[rows], f[rows]
        ek = np.exp(-k * dv_)
        beta = beta0 * ek
        denom = alpha * rg_ + beta
        denom = np.where(np.abs(denom) > 1e-12, denom, 1e-12)
        gpp = alpha * beta * rg_ / denom
        d_alpha = beta * beta * rg_ / denom**2
        d_beta = (alpha * rg_) ** 2 / denom**2
        jac = np.stack((-d_alpha, -d_beta * ek, d_beta * dv_ * beta, f_), axis=-1)
        return rb * f_ - gpp, jac

    return model


def daytime_partition(
    time: pd.DatetimeIndex,
    nee: np.ndarray,
    use: np.ndarray,
    temp_f: np.ndarray,
    vpd_f: np.ndarray,
    rg_f: np.ndarray,
    rpot: np.ndarray,
    *,
    sigma: np.ndarray | None = None,
    min_records: int = 10,
    e0: float | None = None,
    weighted: bool = False,
    beta_prior: bool = True,
    alpha_fallback: bool = True,
) -> DayResult:
    """Day-time partitioning (module docstring).

    ``nee`` NEE (only records with ``use`` true, i.e. measured and u*-filtered, are fitted); ``temp_f``
    (degC), ``vpd_f`` (hPa) and ``rg_f`` (W m-2) gap-filled drivers; ``rpot`` potential radiation
    (W m-2) to tell day from night; ``sigma`` optional NEE uncertainty (umol m-2 s-1); ``e0`` (K)
    prescribes the temperature sensitivity instead of estimating it from night-time data.
    REddyProc's refinements: ``beta_prior`` (used when ``sigma`` is given) adds its prior on beta0
    (centred on the starting value, SD = 20 x the window's median relative NEE uncertainty x beta0 /
    sqrt(n), weighted against the data as in REddyProc's uncertainty-weighted cost);
    ``alpha_fallback`` refits windows whose alpha ends at its upper bound (0.22 umol J-1) with alpha
    fixed to that of the nearest earlier window with a valid fit (0.22 if none), as REddyProc's
    ``optimLRCBounds``; ``weighted`` weights the fit by 1/sigma^2 (REddyProc does; off by default because
    it lowered the agreement with REddyProc's and ONEFlux's outputs on CZ-Lnz, DK-Fou and US-Wi7).
    Raises :class:`StepError` when there is no night-time or day-time data to fit.
    """
    n = nee.size
    day = day_number(time)
    n_days = int(day[-1]) + 1
    ok = use & np.isfinite(nee) & np.isfinite(temp_f) & np.isfinite(rg_f)
    night = ok & (rg_f <= 4.0) & (rpot <= 0.0)
    daysel = ok & (rg_f > 4.0) & (rpot > 0.0) & np.isfinite(vpd_f)
    if not night.any():
        raise StepError("day-time partitioning", "no measured night-time NEE to estimate E0")
    if not daysel.any():
        raise StepError("day-time partitioning", "no measured day-time NEE with radiation")
    starts = np.arange(0, max(n_days - 2, 1), 2)  # 4-day windows [s, s+4), centre s+2
    if e0 is not None:
        e0_win = np.full(starts.size, float(e0))
        rref_night = np.full(
            starts.size,
            max(float(np.mean(nee[night]) / np.mean(lloyd_taylor(temp_f[night], 1.0, float(e0)))), 0.1),
        )
        e0 = e0_win
    else:
        e0, rref_night = _night_sensitivity(day, night, temp_f, nee, starts)
    if not np.isfinite(e0).any():
        raise StepError("day-time partitioning", "no night-time window gave a temperature sensitivity")
    e0, rref_night = _fill_forward_back(e0), _fill_forward_back(rref_night)
    sig = None if sigma is None else np.maximum(np.asarray(sigma, float), 1e-3)
    weight_all = np.ones(n) if sig is None or not weighted else 1.0 / sig**2
    extra = {"sigma": sig if beta_prior else None, "weighted": weighted and sig is not None}
    params = np.full((starts.size, 4), np.nan)
    width = np.zeros(starts.size, np.int64)
    anchor = np.full(starts.size, -1, np.int64)
    todo = np.ones(starts.size, bool)
    for first_offset, n_win in ((0, 4), (-2, 8)):
        groups = window_groups(day, daysel, starts[todo] + first_offset, n_win)
        p, good = _fit_lrc(
            groups, nee, rg_f, vpd_f, temp_f, weight_all, e0[todo], rref_night[todo], min_records, **extra
        )
        if alpha_fallback:
            _refit_alpha_at_bound(
                p,
                good,
                groups,
                np.flatnonzero(todo),
                params,
                width > 0,
                nee,
                rg_f,
                vpd_f,
                temp_f,
                weight_all,
                e0[todo],
                rref_night[todo],
                min_records,
                extra,
            )
        where = np.flatnonzero(todo)[good]
        params[where] = p[good]
        width[where] = n_win
        anchor[where] = [int(np.rint(g.mean())) for g, ok_ in zip(groups, good, strict=True) if ok_]
        todo[where] = False
    fitted = width > 0
    if not fitted.any():
        raise StepError("day-time partitioning", "no window gave a valid light-response fit")
    table = pd.DataFrame(
        {
            "start": time[0].normalize() + pd.to_timedelta(starts, unit="D"),
            "window_days": width,
            "alpha": params[:, 0],
            "beta0": params[:, 1],
            "k": params[:, 2],
            "rb": params[:, 3],
            "e0": e0,
        }
    )
    reco, gpp = _interpolated_fluxes(anchor[fitted], params[fitted], e0[fitted], temp_f, vpd_f, rg_f)
    notes = [] if todo.sum() == 0 else [f"{int(todo.sum())} of {starts.size} windows without a fit"]
    return DayResult(reco, gpp, table, notes)


def _night_sensitivity(
    day: np.ndarray, night: np.ndarray, temp: np.ndarray, nee: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """E0 (K) and Rref (umol m-2 s-1) per window from 12-day (else 24-day) night windows; NaN if none."""
    e0 = np.full(starts.size, np.nan)
    rref = np.full(starts.size, np.nan)
    todo = np.ones(starts.size, bool)
    for n_win in (12, 24):
        groups = window_groups(day, night, starts[todo] + 2 - n_win // 2, n_win)
        enough = np.array([g.size >= 6 and np.ptp(temp[g]) >= 1.0 for g in groups], bool)
        if not enough.any():
            continue
        p, _, ok = fit_lloyd_taylor([g for g, e in zip(groups, enough, strict=True) if e], temp, nee)
        good = ok & (p[:, 1] >= 50.0) & (p[:, 1] <= 400.0) & (p[:, 0] > 0)
        where = np.flatnonzero(todo)[np.flatnonzero(enough)[good]]
        e0[where], rref[where] = p[good, 1], p[good, 0]
        todo[where] = False
    return e0, rref


def _fill_forward_back(a: np.ndarray) -> np.ndarray:
    s = pd.Series(a)
    return s.ffill().bfill().to_numpy()


def _with_beta_prior(model):
    """``model`` plus one pseudo-observation per problem: beta0 itself (the prior's location is the
    extra ``y`` column, ``sd_weight`` its weight)."""

    def wrapped(p: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pred, jac = model(p, rows)
        extra = np.zeros((rows.size, 1, p.shape[1]))
        extra[:, 0, 1] = 1.0
        return np.concatenate((pred, p[:, 1:2]), axis=1), np.concatenate((jac, extra), axis=1)

    return wrapped


def _fit_lrc(
    groups: list[np.ndarray],
    nee: np.ndarray,
    rg: np.ndarray,
    vpd: np.ndarray,
    temp: np.ndarray,
    weight_all: np.ndarray,
    e0: np.ndarray,
    rref: np.ndarray,
    min_records: int,
    sigma: np.ndarray | None = None,
    weighted: bool = False,
    alpha: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Light-response parameters (alpha, beta0, k, rb) per group and whether each fit is valid.

    ``sigma`` (umol m-2 s-1) adds REddyProc's beta0 prior; ``alpha`` (umol J-1, NaN = free) fixes alpha.
    """
    if not groups:
        return np.zeros((0, 4)), np.zeros(0, bool)
    weight, y, r, v, t, w = pad_rows(groups, nee, rg, vpd, temp, weight_all)
    weight *= w
    beta_start = np.array(
        [abs(np.percentile(nee[g], 97) - np.percentile(nee[g], 3)) if g.size else 1.0 for g in groups]
    )
    beta_start = np.clip(beta_start, 1.0, 200.0)
    n_groups = len(groups)
    p0 = np.column_stack(
        (np.full(n_groups, 0.1), beta_start, np.full(n_groups, 0.05), np.clip(rref, 0.1, None))
    )
    model = _lrc_model(r, v, t, e0)
    if sigma is not None:
        counts = np.array([max(g.size, 1) for g in groups])
        with np.errstate(all="ignore"):
            rel = np.array([np.median(sigma[g] / np.abs(nee[g])) if g.size else np.nan for g in groups])
            sd_prior = 20.0 * rel * beta_start / np.sqrt(counts)
            # unweighted fits: scale so that the prior keeps REddyProc's weight relative to the data
            scale = (
                1.0 if weighted else np.array([np.median(sigma[g]) ** 2 if g.size else 1.0 for g in groups])
            )
            w_prior = np.where(np.isfinite(sd_prior) & (sd_prior > 0), scale / sd_prior**2, 0.0)
        model = _with_beta_prior(model)
        y = np.column_stack((y, beta_start))
        weight = np.column_stack((weight, w_prior))
    fixed = None
    if alpha is not None:
        fixed = np.zeros((n_groups, 4), bool)
        fixed[:, 0] = np.isfinite(alpha)
        p0[fixed[:, 0], 0] = alpha[fixed[:, 0]]
    fit = fit_batch(model, p0, y, weight, LRC_LOWER, LRC_UPPER, rtol=1e-7, fixed=fixed)
    p = fit.params
    counts = np.array([g.size for g in groups])
    good = (
        fit.ok
        & (counts >= min_records)
        & np.isfinite(e0)
        & (p[:, 0] > 1e-6)  # alpha: a fit that wants alpha < 0 is rejected (Lasslop et al. 2010)
        & (p[:, 1] < 0.99 * LRC_UPPER[1])
        & (p[:, 1] <= 4.0 * beta_start)  # beta0 < 250, REddyProc's 4x
        & (p[:, 3] > 1e-6)  # rb: rejected when the fit wants negative respiration
    )
    return p, good


def _refit_alpha_at_bound(
    p: np.ndarray,
    good: np.ndarray,
    groups: list[np.ndarray],
    slots: np.ndarray,
    params: np.ndarray,
    have: np.ndarray,
    *data: object,
) -> None:
    """REddyProc's alpha fallback, in place: windows of this pass whose alpha ended at its upper bound
    are refitted with alpha fixed to the nearest earlier valid window's alpha (this pass or before,
    below the bound; 0.22 umol J-1 when there is none). ``slots`` are the windows' positions in
    ``params``; ``have`` marks positions with a valid fit from earlier passes."""
    at_bound = good & (p[:, 0] >= 0.999 * LRC_UPPER[0])
    if not at_bound.any():
        return
    known = params[:, 0].copy()
    known[~have] = np.nan
    mine = good & ~at_bound
    known[slots[mine]] = p[mine, 0]
    known[known >= 0.999 * LRC_UPPER[0]] = np.nan
    last = pd.Series(known).ffill().shift(1).to_numpy()  # nearest earlier valid alpha
    alpha = np.full(len(groups), np.nan)
    alpha[at_bound] = np.nan_to_num(last[slots[at_bound]], nan=LRC_UPPER[0])
    sub = [g for g, a in zip(groups, at_bound, strict=True) if a]
    nee, rg, vpd, temp, weight_all, e0, rref, min_records, extra = data
    p2, good2 = _fit_lrc(
        sub,
        nee,
        rg,
        vpd,
        temp,
        weight_all,
        e0[at_bound],
        rref[at_bound],
        min_records,
        alpha=alpha[at_bound],
        **extra,
    )
    p[at_bound], good[at_bound] = p2, good2


def _interpolated_fluxes(
    anchor: np.ndarray,
    params: np.ndarray,
    e0: np.ndarray,
    temp: np.ndarray,
    vpd: np.ndarray,
    rg: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(anchor, kind="stable")
    anchor, params, e0 = anchor[order], params[order], e0[order]
    anchor, first = np.unique(anchor, return_index=True)
    params, e0 = params[first], e0[first]
    before, after, w = interpolate_between(anchor, temp.size)

    def predict(i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        reco = lloyd_taylor(temp, params[i, 3], e0[i])
        gpp = light_response(rg, vpd, params[i, 0], params[i, 1], params[i, 2])
        return reco, gpp

    (rb_, gb), (ra, ga) = predict(before), predict(after)
    return (1 - w) * rb_ + w * ra, (1 - w) * gb + w * ga
