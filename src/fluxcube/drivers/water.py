"""The water-availability index WAI from a daily soil-water bucket.

One bucket per pixel, of capacity :data:`CAPACITY` = 150 mm (plant-available water), daily::

    W'   = min(C, W(t-1) + P(t))              precipitation in; what exceeds C runs off
    ET   = min(PET(t), k W')                   evapotranspiration: demand, or supply k W' (k = 0.05 d-1)
    W(t) = W' - ET                             (never negative: k <= 1)
    WAI  = W(t) / C                            (1)

PET (mm d-1) is Priestley-Taylor (1972): PET = alpha s / (s + gamma) Rn / lambda with alpha = 1.26,
s the slope of the saturation vapour pressure curve at Tair (FAO-56 eq. 13, kPa K-1), gamma = 0.067
kPa K-1 (psychrometric constant at sea level), lambda = 2.45 MJ kg-1 and net radiation approximated
from global radiation as Rn = 0.6 Rg (no separate long-wave budget; daily means). Snow is not
modelled: precipitation below 0 degC enters the bucket at once. A day with a missing P, Tair or Rg
leaves the bucket unchanged and its WAI missing.

Spin-up: the bucket starts full and runs :data:`SPINUP_YEARS` times through the first year of the
record (or the whole record when shorter); the state at the end is the initial state of the run.
Time goes in blocks (:class:`Bucket` carries the state), so memory does not grow with the record.
"""

from __future__ import annotations

import numpy as np

CAPACITY = 150.0  # mm
SUPPLY_RATE = 0.05  # d-1
SPINUP_YEARS = 5
PT_ALPHA = 1.26
GAMMA = 0.067  # kPa K-1
LAMBDA = 2.45  # MJ kg-1
RN_FRACTION = 0.6  # net / global radiation, daily means
MJ_PER_DAY = 0.0864  # MJ m-2 d-1 per W m-2


def svp_slope(tair: np.ndarray) -> np.ndarray:
    """Slope of the saturation vapour pressure curve (kPa K-1) at ``tair`` (degC), FAO-56 eq. 13."""
    t = np.asarray(tair, dtype="float64")
    return 4098.0 * 0.6108 * np.exp(17.27 * t / (t + 237.3)) / (t + 237.3) ** 2


def priestley_taylor(tair: np.ndarray, rg: np.ndarray) -> np.ndarray:
    """Potential evapotranspiration (mm d-1) from daily mean Tair (degC) and global radiation Rg (W m-2)."""
    s = svp_slope(tair)
    rn = RN_FRACTION * np.clip(np.asarray(rg, dtype="float64"), 0.0, None) * MJ_PER_DAY  # MJ m-2 d-1
    return PT_ALPHA * s / (s + GAMMA) * rn / LAMBDA  # kg m-2 d-1 = mm d-1


class Bucket:
    """The soil-water state (mm) of a set of pixels, advanced day by day."""

    def __init__(self, n: int, capacity: float = CAPACITY, supply_rate: float = SUPPLY_RATE):
        """``n`` pixels, ``capacity`` in mm, ``supply_rate`` in d-1; the bucket starts full."""
        if not 0.0 < supply_rate <= 1.0:
            raise ValueError(f"supply_rate {supply_rate} d-1 must lie in (0, 1]")
        self.capacity = float(capacity)
        self.supply_rate = float(supply_rate)
        self.water = np.full(n, self.capacity, dtype="float64")

    def run(self, precip: np.ndarray, pet: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Advance through (time, pixel) daily P and PET (mm d-1); return soil water W (mm) and ET
        (mm d-1) per day, NaN on days with missing input (the state is then kept)."""
        p = np.asarray(precip, dtype="float64")
        e = np.asarray(pet, dtype="float64")
        water = np.full(p.shape, np.nan)
        et = np.full(p.shape, np.nan)
        w = self.water
        for t in range(p.shape[0]):
            ok = np.isfinite(p[t]) & np.isfinite(e[t])
            filled = np.minimum(self.capacity, w + np.where(ok, np.clip(p[t], 0.0, None), 0.0))
            out = np.minimum(np.where(ok, np.clip(e[t], 0.0, None), 0.0), self.supply_rate * filled)
            w = np.where(ok, filled - out, w)
            water[t] = np.where(ok, w, np.nan)
            et[t] = np.where(ok, out, np.nan)
        self.water = w
        return water, et

    def spin_up(self, precip: np.ndarray, pet: np.ndarray, years: int = SPINUP_YEARS) -> None:
        """Run ``years`` times through (time, pixel) P and PET (mm d-1), e.g. the first year."""
        for _ in range(years):
            self.run(precip, pet)

    def wai(self, water: np.ndarray) -> np.ndarray:
        """Water availability index (1) of soil water ``water`` (mm)."""
        return np.asarray(water) / self.capacity
