"""Fire in the simulated world: daily carbon emissions where (and only where) a cell burns.

Only fire-prone classes burn (savannas, woody savannas, grassland, shrublands: :data:`FIRE_PFTS`, each with
the share of its production that becomes fine fuel). For a land cell and day, all in g C m-2:

- fuel = ``FUEL_SHARE`` x fire-prone share x sum of GPP over the trailing ``FUEL_WINDOW`` days (fine
  fuel grows in the wet season; it is not depleted by fires, a simplification);
- dryness = ramp(WAI; 0.30 -> 0.05) when the day is rainless (< 0.5 mm) and warmer than 5 degC, else 0:
  fires only happen in the dry season;
- the cell burns on a day with probability ``P_IGNITION x dryness`` (seeded uniform draws), and then a
  fraction ``U(0.02, 0.25)`` of it burns with combustion completeness ``COMBUSTION`` = 0.8:
  ``fire = burned fraction x 0.8 x fuel`` (g C m-2 d-1), emitted as CO2 on that day.

Everywhere else the fire flux is exactly zero. The emissions are carbon leaving the land in addition
to NEE: the net land-atmosphere flux the atmosphere sees (inversions) is ``NEE + fire``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Fire-prone IGBP classes -> share of their GPP-derived fuel that is fine, burnable fuel.
FIRE_PFTS: dict[str, float] = {"SAV": 1.0, "WSA": 0.8, "GRA": 0.9, "OSH": 0.6, "CSH": 0.8}
FUEL_WINDOW = 180  # days of GPP that make the fuel
FUEL_SHARE = 0.3  # of that GPP
P_IGNITION = 0.02  # per dry day
COMBUSTION = 0.8  # combustion completeness
BURN_FRACTION = (0.02, 0.25)  # of the cell, when it burns
WAI_DRY = (0.30, 0.05)  # dryness ramps from 0 at WAI 0.30 to 1 at WAI 0.05
#: g C -> kg CO2
KG_CO2_PER_G_C = 44.0095 / 12.011 / 1000.0


def trailing_sum(x: np.ndarray, window: int) -> np.ndarray:
    """Sum over the ``window`` days before each day (axis 0, excluding the day; shorter at the start)."""
    c = np.cumsum(np.concatenate([np.zeros((1, *x.shape[1:])), x]), axis=0)
    idx = np.arange(x.shape[0])
    return c[idx] - c[np.maximum(idx - window, 0)]


def dryness(wai: np.ndarray, precip: np.ndarray, tair: np.ndarray) -> np.ndarray:
    """Fire weather 0..1 (time, point): WAI ramp on rainless (< 0.5 mm d-1) days warmer than 5 degC."""
    hi, lo = WAI_DRY
    ramp = np.clip((hi - wai) / (hi - lo), 0.0, 1.0)
    return ramp * (precip < 0.5) * (tair > 5.0)


def fire_emissions(
    pfts: Sequence[str],
    gpp: np.ndarray,
    wai: np.ndarray,
    precip: np.ndarray,
    tair: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Daily fire carbon emissions (time, point), g C m-2 d-1, from GPP (g C m-2 d-1) and weather.

    ``wai`` 0..1, ``precip`` mm d-1, ``tair`` degC, all (time, point); the draws come from ``rng``
    (two arrays of the same shape, always drawn, so the stream does not depend on the values).
    """
    share = np.array([FIRE_PFTS.get(p, 0.0) for p in pfts], dtype=float)
    fuel = FUEL_SHARE * share[None, :] * trailing_sum(gpp, FUEL_WINDOW)
    u = rng.random(gpp.shape)
    burned = rng.uniform(*BURN_FRACTION, size=gpp.shape)
    burns = (u < P_IGNITION * dryness(wai, precip, tair)) & (share[None, :] > 0)
    return np.where(burns, burned * COMBUSTION * fuel, 0.0)
