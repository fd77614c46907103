"""Mean seasonal cycles (MSC) of 8-day composites, gap-filled and made daily, and their seasonal metrics.

A composite starting on day of year ``doy`` falls in slot ``k = (doy - 1) // 8`` (0..45: the MODIS
8-day calendar restarts on 1 January; the last slot, from day 361, is 5 or 6 days long). Per pixel:

1. slot means: the mean of all valid (finite) values in each slot over all years (clouds are NaN and
   skipped); accumulated block by block (:class:`SlotAccumulator`), so memory does not grow with years;
2. daily MSC on days 1..366: periodic linear interpolation between the slot centres (day 8k + 4.5;
   363.0 for the last slot) with period 365 days; slots without any valid value (always cloudy) are
   skipped, i.e. filled from their valid neighbours across the year boundary. Fewer than
   :data:`MIN_SLOTS` valid slots: the pixel's MSC is missing (NaN);
3. metrics of the daily MSC: min, max, amplitude (max - min) and mean over days 1..366.

Units are those of the input index (1 for NDVI, EVI, NDWI, MIR, fAPAR; K for LST).
"""

from __future__ import annotations

import numpy as np

N_SLOTS = 46
PERIOD = 365.0  # days
MIN_SLOTS = 4
DAYS = np.arange(1, 367, dtype="float64")  # day of year of the daily MSC
SLOT_CENTRES = np.append(8.0 * np.arange(N_SLOTS - 1) + 4.5, 363.0)  # day of year


def slots(dates: np.ndarray) -> np.ndarray:
    """8-day slot (0..45) of each composite start date (datetime64)."""
    d = np.asarray(dates, dtype="datetime64[D]")
    doy = (d - d.astype("datetime64[Y]")).astype(int) + 1
    return np.minimum((doy - 1) // 8, N_SLOTS - 1)


class SlotAccumulator:
    """Sums and counts of valid values per (slot, pixel), fed block by block."""

    def __init__(self, n_pixels: int):
        self.sum = np.zeros((N_SLOTS, n_pixels), dtype="float64")
        self.count = np.zeros((N_SLOTS, n_pixels), dtype="int64")

    def add(self, values: np.ndarray, dates: np.ndarray) -> None:
        """Add (time, pixel) composites (index units) starting on ``dates`` (datetime64)."""
        v = np.asarray(values, dtype="float64")
        ok = np.isfinite(v)
        np.add.at(self.sum, slots(dates), np.where(ok, v, 0.0))
        np.add.at(self.count, slots(dates), ok)

    def means(self) -> np.ndarray:
        """(slot, pixel) mean over all years; NaN where a slot never had a valid value."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.sum / np.maximum(self.count, 1), np.nan)


def fill_periodic(
    means: np.ndarray, centres: np.ndarray = SLOT_CENTRES, days: np.ndarray = DAYS, period: float = PERIOD
) -> np.ndarray:
    """(day, pixel) periodic linear interpolation of (slot, pixel) ``means`` at ``centres`` (day of year)
    onto ``days``, skipping missing slots; NaN for pixels with fewer than :data:`MIN_SLOTS` valid slots.

    Vectorised over pixels: the slots are repeated over three periods, and for each day the last valid
    slot at or before it and the first valid slot after it are found with running maxima / minima.
    """
    m = np.asarray(means, dtype="float64")
    n = m.shape[0]
    xp = np.concatenate([centres - period, centres, centres + period])
    v3 = np.concatenate([m, m, m])
    ok3 = np.isfinite(v3)
    idx = np.arange(3 * n)[:, None]
    last = np.maximum.accumulate(np.where(ok3, idx, -1), axis=0)
    nxt = np.minimum.accumulate(np.where(ok3, idx, 3 * n)[::-1], axis=0)[::-1]
    i = np.searchsorted(xp, days, side="right") - 1  # the last centre <= day (in the middle period)
    left = np.clip(last[i], 0, 3 * n - 1)
    right = np.clip(nxt[i + 1], 0, 3 * n - 1)
    xl, xr = xp[left], xp[right]
    yl = np.take_along_axis(v3, left, axis=0)
    yr = np.take_along_axis(v3, right, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(xr > xl, (days[:, None] - xl) / (xr - xl), 0.0)
        out = yl + w * (yr - yl)
    out[:, np.isfinite(m).sum(axis=0) < MIN_SLOTS] = np.nan
    return out


def metrics(msc: np.ndarray) -> dict[str, np.ndarray]:
    """Seasonal metrics of a (day, pixel) daily MSC: min, max, amp (max - min), mean; units of the MSC."""
    ok = np.isfinite(msc).any(axis=0)
    safe = np.where(ok[None, :], msc, 0.0)
    lo, hi = safe.min(axis=0), safe.max(axis=0)
    out = {"min": lo, "max": hi, "amp": hi - lo, "mean": safe.mean(axis=0)}
    return {k: np.where(ok, v, np.nan) for k, v in out.items()}
