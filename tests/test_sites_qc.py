"""QC: plausibility ranges, despiking (Papale et al. 2006) and flag propagation."""

from __future__ import annotations

import numpy as np

from fluxcube.sites.common import day_number
from fluxcube.sites.qc import FLAG_BAD, apply_flag, combine_flags, despike, plausibility_flag
from fluxcube.sites.synthetic import synthetic_site


def test_plausibility_flag() -> None:
    flags = plausibility_flag("NEE", np.array([-60.0, 0.0, 99.0, 120.0, np.nan]))
    np.testing.assert_array_equal(flags, [2, 0, 0, 2, 0])
    assert (plausibility_flag("unknown", np.array([1e9])) == 0).all()


def _spiky(z_seed: int = 0):
    site = synthetic_site(days=120, noise=0.8, seed=z_seed)
    nee = site["NEE"].to_numpy().copy()
    rng = np.random.default_rng(z_seed)
    where = rng.choice(nee.size, 60, replace=False)
    nee[where] += rng.choice([-1, 1], 60) * rng.uniform(15, 25, 60)
    nee[rng.random(nee.size) < 0.2] = np.nan  # gaps: differences use the neighbouring values
    where = where[np.isfinite(nee[where])]
    is_day = site["Rg"].to_numpy() >= 20
    return site, nee, where, is_day


def test_despike_finds_injected_spikes() -> None:
    site, nee, where, is_day = _spiky()
    spikes = despike(nee, is_day, day_number(site.index), z=4.0)
    found = spikes[where].mean()
    # the double difference of a spike's neighbours contains the spike too (Papale's criterion flags
    # them as well): count as false only flags away from the spikes and their valid neighbours
    valid = np.flatnonzero(np.isfinite(nee))
    pos = np.searchsorted(valid, where)
    near = np.zeros(nee.size, bool)
    near[valid[np.clip(np.r_[pos - 1, pos, pos + 1], 0, valid.size - 1)]] = True
    false = (spikes & ~near).sum() / valid.size
    assert found > 0.9
    assert false < 0.005
    assert not spikes[np.isnan(nee)].any()


def test_despike_z_is_conservative_when_larger() -> None:
    site, nee, _, is_day = _spiky(1)
    day = day_number(site.index)
    n4, n55, n7 = (despike(nee, is_day, day, z=z).sum() for z in (4.0, 5.5, 7.0))
    assert n4 >= n55 >= n7 > 0


def test_flag_propagation() -> None:
    a = np.array([0, 1, 0, np.nan])
    b = np.array([0, 0, 2, 0])
    flags = combine_flags(a, b)
    np.testing.assert_array_equal(flags, [0, 1, 2, FLAG_BAD])
    values = apply_flag(np.array([1.0, 2.0, 3.0, 4.0]), flags)
    np.testing.assert_array_equal(np.isnan(values), [False, False, True, True])
    strict = apply_flag(np.array([1.0, 2.0, 3.0, 4.0]), flags, max_flag=0)
    assert np.isnan(strict).sum() == 3
