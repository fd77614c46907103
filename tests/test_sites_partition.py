"""NEE partitioning: known parameters recovered, batched fits equal scipy, REddyProc references."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import least_squares

from fluxcube.sites.common import StepError
from fluxcube.sites.fitting import fit_batch, pad_rows
from fluxcube.sites.gapfill import mds_gapfill
from fluxcube.sites.met import potential_radiation
from fluxcube.sites.partition import (
    _lrc_model,
    _lt_model,
    daytime_partition,
    fit_lloyd_taylor,
    light_response,
    lloyd_taylor,
    nighttime_partition,
)
from fluxcube.sites.synthetic import synthetic_site
from fluxcube.sites.timestamps import read_halfhourly
from fluxcube.sites.uncertainty import random_uncertainty

CZ_LNZ = (48.6816, 16.9463, 1.0)  # lat, lon, UTC offset of CZ-Lnz (Lanzhot)


@pytest.fixture(scope="module")
def site():
    df = synthetic_site(seed=11)
    rpot = potential_radiation(df.index, df.attrs["lat"], df.attrs["lon"], df.attrs["utc_offset"])
    return df, rpot


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.nanmean((np.asarray(a) - np.asarray(b)) ** 2)))


def test_lloyd_taylor_and_light_response_values() -> None:
    assert lloyd_taylor(15.0, 2.0, 200.0) == pytest.approx(2.0)  # Rref at Tref = 15 degC
    # Q10 between 10 and 20 degC = exp(E0 (1/(283.15 - T0) - 1/(293.15 - T0))): 2 for E0 = 256.3 K
    assert lloyd_taylor(20.0, 1.0, 256.3) / lloyd_taylor(10.0, 1.0, 256.3) == pytest.approx(2.0, rel=1e-3)
    gpp = light_response(np.array([0.0, 1e9, 100.0]), np.array([5.0, 5.0, 20.0]), 0.05, 30.0, 0.1)
    assert gpp[0] == 0.0 and gpp[1] == pytest.approx(30.0, rel=1e-6)
    beta = 30.0 * np.exp(-0.1 * 10.0)
    assert gpp[2] == pytest.approx(0.05 * beta * 100 / (0.05 * 100 + beta))


def test_batched_lloyd_taylor_equals_scipy() -> None:
    rng = np.random.default_rng(0)
    groups, temp, resp = [], [], []
    start = 0
    for i in range(6):
        t = rng.uniform(0, 20, 40 + 10 * i)
        groups.append(np.arange(start, start + t.size))
        start += t.size
        temp.append(t)
        resp.append(lloyd_taylor(t, 1.5 + 0.3 * i, 120 + 30 * i) + rng.normal(0, 0.3, t.size))
    t_all, r_all = np.concatenate(temp), np.concatenate(resp)
    params, _, ok = fit_lloyd_taylor(groups, t_all, r_all)
    assert ok.all()
    for g, p in zip(groups, params, strict=True):
        ref = least_squares(
            lambda q, g=g: lloyd_taylor(t_all[g], q[0], q[1]) - r_all[g], [2.0, 200.0], xtol=1e-12, ftol=1e-12
        )
        np.testing.assert_allclose(p, ref.x, rtol=1e-5)


def test_batched_light_response_equals_scipy(site) -> None:
    df, _ = site
    day = (df["Rg"] > 4).to_numpy()
    groups = [np.flatnonzero(day[48 * d : 48 * (d + 4)]) + 48 * d for d in range(100, 200, 25)]
    cols = [df[c].to_numpy() for c in ("NEE", "Rg", "VPD", "Tair")]
    weight, y, rg, vpd, t = pad_rows(groups, *cols)
    e0 = np.full(len(groups), 150.0)
    lower, upper = np.zeros(4), np.array([0.22, 250.0, np.inf, np.inf])
    p0 = np.tile([0.01, 20.0, 0.0, 2.0], (len(groups), 1))
    fit = fit_batch(_lrc_model(rg, vpd, t, e0), p0, y, weight, lower, upper)
    for i, g in enumerate(groups):

        def resid(q, g=g):
            gpp = light_response(cols[1][g], cols[2][g], q[0], q[1], q[2])
            return lloyd_taylor(cols[3][g], q[3], 150.0) - gpp - cols[0][g]

        ref = least_squares(resid, p0[i], bounds=(lower, upper), xtol=1e-12, ftol=1e-12, gtol=1e-12)
        assert fit.rss[i] == pytest.approx(2 * ref.cost, rel=1e-6)
        # k is not identifiable where VPD stays below 10 hPa: compare the other parameters and the fit
        np.testing.assert_allclose(fit.params[i, [0, 1, 3]], ref.x[[0, 1, 3]], rtol=2e-3)
        np.testing.assert_allclose(resid(fit.params[i]), ref.fun, atol=1e-3)


def test_nighttime_recovers_known_respiration(site) -> None:
    df, rpot = site
    night = (df["Rg"].to_numpy() < 10) & (rpot <= 0)
    res = nighttime_partition(
        df.index, df["NEE"].to_numpy(), np.ones(len(df), bool), df["Tair"].to_numpy(), night
    )
    truth = df["Reco_true"].to_numpy()
    assert res.e0[0] == pytest.approx(150.0, rel=0.15)
    assert _rmse(res.reco, truth) < 0.2  # umol m-2 s-1 (noise 1.0 on half-hourly NEE)
    assert abs(np.mean(res.reco - truth)) < 0.05
    assert _rmse(res.gpp, df["GPP_true"]) < 1.2  # GPP = Reco - NEE carries the NEE noise
    assert (res.windows["valid"]).sum() >= 10


def test_daytime_recovers_known_fluxes(site) -> None:
    df, rpot = site
    res = daytime_partition(
        df.index,
        df["NEE"].to_numpy(),
        np.ones(len(df), bool),
        *(df[c].to_numpy() for c in ("Tair", "VPD", "Rg")),
        rpot,
    )
    assert _rmse(res.gpp, df["GPP_true"]) < 0.5
    assert _rmse(res.reco, df["Reco_true"]) < 0.6
    assert abs(np.mean(res.gpp - df["GPP_true"])) < 0.1
    fitted = res.params[res.params.window_days > 0]
    assert len(fitted) >= 0.9 * len(res.params)
    assert fitted["alpha"].median() == pytest.approx(0.04, rel=0.2)  # umol J-1


def test_steps_fail_with_reasons(site) -> None:
    df, rpot = site
    nee = df["NEE"].to_numpy()
    use = np.ones(len(df), bool)
    with pytest.raises(StepError, match="no measured night-time NEE"):
        nighttime_partition(df.index, nee, use, df["Tair"].to_numpy(), np.zeros(len(df), bool))
    flat = np.full(len(df), 10.0)  # no temperature range: no E0 can be estimated
    with pytest.raises(StepError, match="no valid short-term E0"):
        nighttime_partition(df.index, nee, use, flat, rpot <= 0)
    with pytest.raises(StepError, match="no measured day-time NEE"):
        daytime_partition(
            df.index, nee, use, df["Tair"].to_numpy(), df["VPD"].to_numpy(), np.zeros(len(df)), rpot
        )


@pytest.fixture(scope="module")
def cz_lnz(data_dir: Path):
    """CZ-Lnz 14 days with REddyProc outputs; MDS-filled NEE from REddyProc's own input records."""
    df = read_halfhourly(data_dir / "sites" / "halfhourly" / "openeddy_CZ-Lnz_2023.csv")
    kept = ((df["qc_NEE_forGF_UF"] < 2) & ((df["NEE"] - df["NEE_uStar_f"]).abs() < 1e-4)).to_numpy()
    drivers = [df[c].to_numpy() for c in ("Rg", "Tair", "VPD")]
    nee_f = mds_gapfill(np.where(kept, df["NEE"].to_numpy(), np.nan), *drivers).filled
    rpot = potential_radiation(df.index, *CZ_LNZ)
    return df, kept, nee_f, rpot


def test_openeddy_nighttime_against_reddyproc(cz_lnz) -> None:
    """REddyProc's night-time partitioning (Reco_uStar, GPP_uStar_f, soil temperature). Fourteen days
    carry no temperature sensitivity of their own (the fitted E0 is 0 K), so E0 is prescribed: 254 K,
    the value that makes REddyProc's Reco_uStar / f(Tsoil) piecewise linear (its Rref interpolation)."""
    df, kept, nee_f, rpot = cz_lnz
    night = (df["Rg"].to_numpy() < 10) & (rpot <= 0)
    res = nighttime_partition(df.index, nee_f, kept, df["Tsoil"].to_numpy(), night, e0=254.0)
    reco_err = res.reco - df["Reco_uStar"].to_numpy()
    gpp_err = res.gpp - df["GPP_uStar_f"].to_numpy()
    # measured: Reco RMSE 0.34, bias -0.23; GPP RMSE 0.72, bias -0.14 (mean Reco 5.4, GPP 10.0)
    assert np.sqrt(np.mean(reco_err**2)) < 0.6 and abs(reco_err.mean()) < 0.4
    assert np.sqrt(np.mean(gpp_err**2)) < 1.2 and abs(gpp_err.mean()) < 0.4


def test_openeddy_daytime_against_reddyproc(cz_lnz) -> None:
    """REddyProc's day-time partitioning (Reco_DT_uStar, GPP_DT_uStar), E0 prescribed as above, with
    REddyProc's beta0 prior (NEE uncertainty: random uncertainty of measured records, MDS SD of filled
    ones). The prior brings fluxcube closer to REddyProc than the fit without it."""
    df, kept, nee_f, rpot = cz_lnz
    drivers = [df[c].to_numpy() for c in ("Rg", "Tair", "VPD")]
    measured = np.where(kept, df["NEE"].to_numpy(), np.nan)
    sigma = np.where(kept, random_uncertainty(measured, *drivers), mds_gapfill(measured, *drivers).sd)
    args = (df.index, nee_f, kept, df["Tsoil"].to_numpy(), df["VPD"].to_numpy(), df["Rg"].to_numpy(), rpot)
    res = daytime_partition(*args, e0=254.0, sigma=sigma)
    plain = daytime_partition(*args, e0=254.0)
    reco_err = res.reco - df["Reco_DT_uStar"].to_numpy()
    gpp_err = res.gpp - df["GPP_DT_uStar"].to_numpy()
    # measured: Reco RMSE 0.94, bias -0.43 (mean 6.2); GPP RMSE 1.13, bias -0.15 (mean 10.3)
    assert np.sqrt(np.mean(reco_err**2)) < 1.4 and abs(reco_err.mean()) < 0.65
    assert np.sqrt(np.mean(gpp_err**2)) < 1.7 and abs(gpp_err.mean()) < 0.3
    assert np.corrcoef(res.gpp, df["GPP_DT_uStar"])[0, 1] > 0.97
    # without the prior: Reco RMSE 1.08, bias -0.59
    plain_err = plain.reco - df["Reco_DT_uStar"].to_numpy()
    assert np.sqrt(np.mean(reco_err**2)) < np.sqrt(np.mean(plain_err**2)) - 0.05


def test_fit_batch_bounds_and_fixed_parameters() -> None:
    """Parameters at a bound are held there (active set) and ``fixed`` parameters stay at their start:
    both give scipy's bounded / reduced least-squares optimum, in few iterations."""
    rng = np.random.default_rng(3)
    t = rng.uniform(0, 20, 60)
    falling = 3.0 - 0.05 * t + rng.normal(0, 0.1, t.size)  # respiration falling with temperature: E0 -> 0
    rising = lloyd_taylor(t, 2.0, 150.0) + rng.normal(0, 0.1, t.size)
    y = np.vstack((falling, rising))
    weight = np.ones_like(y)
    temp = np.vstack((t, t))
    lower = np.array([-np.inf, 0.0])
    p0 = np.array([[2.0, 200.0], [2.0, 100.0]])
    fit = fit_batch(_lt_model(temp), p0, y, weight, lower=lower, max_iter=30)
    for i in range(2):
        ref = least_squares(
            lambda q, i=i: lloyd_taylor(t, q[0], q[1]) - y[i],
            p0[i],
            bounds=(lower, np.inf),
            xtol=1e-12,
            ftol=1e-12,
        )
        np.testing.assert_allclose(fit.params[i], ref.x, rtol=1e-4, atol=1e-6)
    assert fit.params[0, 1] < 1e-3  # E0 on its bound
    fixed = np.array([[False, True], [False, True]])
    held = fit_batch(_lt_model(temp), p0, y, weight, lower=lower, fixed=fixed)
    np.testing.assert_array_equal(held.params[:, 1], p0[:, 1])
    for i in range(2):
        ref = least_squares(
            lambda q, i=i: lloyd_taylor(t, q[0], p0[i, 1]) - y[i], [2.0], xtol=1e-12, ftol=1e-12
        )
        assert held.params[i, 0] == pytest.approx(ref.x[0], rel=1e-6)


def test_alpha_fallback_fixes_alpha_to_an_earlier_window() -> None:
    """From day 181 the synthetic light response is steeper than alpha's bound (0.3 umol J-1): without
    the fallback those windows end at 0.22; with it (REddyProc's optimLRCBounds) each is refitted with
    alpha fixed to the nearest earlier valid window's alpha, so every alpha is one fitted below the bound
    in an earlier window."""
    early, steep = synthetic_site(seed=11, alpha=0.04), synthetic_site(seed=11, alpha=0.3, beta0=15.0)
    late = early.index.day_of_year > 180
    df = early.copy()
    df.loc[late, "NEE"] = steep.loc[late, "NEE"]
    rpot = potential_radiation(df.index, df.attrs["lat"], df.attrs["lon"], df.attrs["utc_offset"])
    args = (
        df.index,
        df["NEE"].to_numpy(),
        np.ones(len(df), bool),
        *(df[c].to_numpy() for c in ("Tair", "VPD", "Rg")),
    )
    plain = daytime_partition(*args, rpot, alpha_fallback=False).params
    plain = plain[plain.window_days > 0]
    assert (plain.loc[plain.start.dt.day_of_year > 185, "alpha"] >= 0.2199).sum() > 50
    res = daytime_partition(*args, rpot).params
    fitted = res[res.window_days > 0].reset_index(drop=True)
    assert (fitted["alpha"] < 0.2199).all()
    assert fitted.loc[fitted.start.dt.day_of_year < 170, "alpha"].median() == pytest.approx(0.04, rel=0.2)
    own = plain.set_index("start")["alpha"]
    for row in fitted[fitted.start.dt.day_of_year > 185].itertuples():
        # its own free fit below the bound, or an earlier window's
        allowed = own[(own.index <= row.start) & (own < 0.2199)].to_numpy()
        assert np.isclose(allowed, row.alpha, rtol=1e-9).any(), row
