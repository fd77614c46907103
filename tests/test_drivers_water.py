"""The soil-water bucket and Priestley-Taylor PET against analytic cases, FAO-56 tables and a slow loop."""

from __future__ import annotations

import numpy as np
import pytest

from fluxcube.drivers import water


def test_svp_slope_against_fao56_table() -> None:
    # FAO-56 annex 2, table 2.4: slope of the saturation vapour pressure curve (kPa / degC)
    table = {1.0: 0.047, 10.0: 0.082, 20.0: 0.145, 30.0: 0.243}
    got = water.svp_slope(np.array(list(table)))
    assert np.allclose(got, list(table.values()), atol=6e-4)


def test_priestley_taylor_by_hand() -> None:
    # 20 degC, Rg 250 W m-2: Rn = 150 W m-2 = 12.96 MJ m-2 d-1; s = 0.1447, gamma = 0.067
    s = 4098 * 0.6108 * np.exp(17.27 * 20 / 257.3) / 257.3**2
    want = 1.26 * s / (s + 0.067) * 12.96 / 2.45
    assert water.priestley_taylor(np.array([20.0]), np.array([250.0]))[0] == pytest.approx(want, rel=1e-12)
    assert 4.0 < want < 5.0  # mm d-1: a plausible summer day
    assert water.priestley_taylor(np.array([5.0]), np.array([-3.0]))[0] == 0.0  # no negative Rg


def test_drydown_when_supply_limited_is_exponential() -> None:
    b = water.Bucket(1)
    days = 60
    w, et = b.run(np.zeros((days, 1)), np.full((days, 1), 1e3))
    t = np.arange(1, days + 1)
    assert np.allclose(w[:, 0], water.CAPACITY * (1 - water.SUPPLY_RATE) ** t, rtol=1e-12)
    assert np.allclose(et[:, 0], water.SUPPLY_RATE * water.CAPACITY * (1 - water.SUPPLY_RATE) ** (t - 1))


def test_drydown_when_demand_limited_is_linear_and_rain_refills_to_capacity() -> None:
    b = water.Bucket(2)
    pet = np.full((10, 2), 2.0)  # 2 mm d-1 < k W as long as W >= 40 mm
    w, _ = b.run(np.zeros((10, 2)), pet)
    assert np.allclose(w[:, 0], water.CAPACITY - 2.0 * np.arange(1, 11))
    w, _ = b.run(np.array([[500.0, 5.0]]), np.array([[0.0, 0.0]]))
    assert w[0, 0] == water.CAPACITY  # the excess ran off
    assert w[0, 1] == pytest.approx(water.CAPACITY - 20.0 + 5.0)


def test_missing_day_keeps_state_and_wai_is_the_fraction() -> None:
    b = water.Bucket(1, capacity=100.0, supply_rate=0.1)
    p = np.array([[0.0], [np.nan], [0.0]])
    w, et = b.run(p, np.full((3, 1), 50.0))
    assert np.isnan(w[1, 0]) and np.isnan(et[1, 0])
    assert w[0, 0] == pytest.approx(90.0) and w[2, 0] == pytest.approx(81.0)
    assert b.wai(w)[2, 0] == pytest.approx(0.81)


def _slow_bucket(p: np.ndarray, pet: np.ndarray, w0: float, cap: float, k: float) -> np.ndarray:
    out, w = [], w0
    for pi, ei in zip(p, pet, strict=True):
        if not (np.isfinite(pi) and np.isfinite(ei)):
            out.append(float("nan"))
            continue
        filled = min(cap, w + max(pi, 0.0))
        w = filled - min(max(ei, 0.0), k * filled)
        out.append(w)
    return np.array(out)


def test_vectorised_bucket_matches_a_scalar_loop() -> None:
    rng = np.random.default_rng(4)
    p = np.where(rng.random((400, 7)) < 0.3, rng.exponential(8.0, (400, 7)), 0.0)
    pet = rng.uniform(0, 7, (400, 7))
    p[rng.random(p.shape) < 0.02] = np.nan
    b = water.Bucket(7)
    w, _ = b.run(p, pet)
    for j in range(7):
        ref = _slow_bucket(p[:, j], pet[:, j], water.CAPACITY, water.CAPACITY, water.SUPPLY_RATE)
        assert np.allclose(w[:, j], ref, equal_nan=True, atol=1e-9)


def test_mass_balance_and_spin_up_reaches_a_periodic_state() -> None:
    rng = np.random.default_rng(1)
    p = np.where(rng.random((365, 3)) < 0.25, rng.exponential(10.0, (365, 3)), 0.0)
    pet = 3 + 2 * np.sin(np.linspace(0, 2 * np.pi, 365))[:, None] * np.ones(3)
    b = water.Bucket(3)
    w0 = b.water.copy()
    w, et = b.run(p, pet)
    # what came in = what left as ET + runoff + storage change; runoff >= 0
    runoff = p.sum(0) - et.sum(0) - (w[-1] - w0)
    assert np.all(runoff >= -1e-9)
    b.spin_up(p, pet, years=30)
    start = b.water.copy()
    b.run(p, pet)
    assert np.allclose(b.water, start, atol=1e-6)  # a year later: the same state
    with pytest.raises(ValueError):
        water.Bucket(1, supply_rate=1.5)
