"""Quality control of half-hourly data: plausibility ranges, despiking and flag propagation.

Flags follow the FLUXNET convention: 0 good, 1 medium, 2 bad (removed before gap filling).

Despiking after Papale et al. (2006): in blocks of 13 days, separately for day and night records with
a value, the double difference d_i = (x_i - x_{i-1}) - (x_{i+1} - x_i) of consecutive values is
compared with its median Md and median absolute deviation MAD; a value is a spike when
d_i < Md - z MAD / 0.6745 or d_i > Md + z MAD / 0.6745, with z = 4 (5.5 and 7 are the more
conservative options of the paper).
"""

from __future__ import annotations

import numpy as np

FLAG_GOOD, FLAG_MEDIUM, FLAG_BAD = 0, 1, 2

#: Plausible ranges (inclusive) in the canonical units: NEE umol m-2 s-1, LE and H W m-2, Rg W m-2,
#: Tair and Tsoil degC, rH %, VPD hPa, Ustar m s-1 (close to REddyProc's fCheckOutsideRange limits).
PLAUSIBLE: dict[str, tuple[float, float]] = {
    "NEE": (-50.0, 100.0),
    "LE": (-200.0, 1000.0),
    "H": (-200.0, 1000.0),
    "Rg": (-10.0, 1300.0),
    "Tair": (-50.0, 60.0),
    "Tsoil": (-50.0, 60.0),
    "rH": (0.0, 110.0),
    "VPD": (0.0, 100.0),
    "Ustar": (0.0, 10.0),
}
MAD_NORMAL = 0.6745  # MAD of a standard normal distribution


def plausibility_flag(name: str, values: np.ndarray) -> np.ndarray:
    """Flag 2 where ``values`` lie outside :data:`PLAUSIBLE` for ``name`` (0 elsewhere, also for NaN)."""
    values = np.asarray(values, dtype=float)
    lo, hi = PLAUSIBLE.get(name, (-np.inf, np.inf))
    with np.errstate(invalid="ignore"):
        bad = (values < lo) | (values > hi)
    return np.where(bad, FLAG_BAD, FLAG_GOOD).astype(np.int8)


def despike(
    values: np.ndarray,
    is_day: np.ndarray,
    day: np.ndarray,
    z: float = 4.0,
    block_days: int = 13,
) -> np.ndarray:
    """True where ``values`` (e.g. NEE in umol m-2 s-1) is a spike (Papale et al. 2006, module docstring).

    ``is_day`` separates day and night records; ``day`` is each record's day number (see
    :func:`fluxcube.sites.common.day_number`). Missing values are skipped: the double differences use
    the neighbouring values of the same (day or night) subset within the block.
    """
    values = np.asarray(values, dtype=float)
    spikes = np.zeros(values.size, bool)
    block = np.asarray(day) // block_days
    valid = np.isfinite(values)
    for part in (np.asarray(is_day, bool), ~np.asarray(is_day, bool)):
        sel = np.flatnonzero(valid & part)
        if sel.size < 3:
            continue
        x, b = values[sel], block[sel]
        d = np.full(sel.size, np.nan)
        inner = (b[1:-1] == b[:-2]) & (b[1:-1] == b[2:])  # neighbours in the same block
        d[1:-1] = np.where(inner, 2 * x[1:-1] - x[:-2] - x[2:], np.nan)
        for blk in np.unique(b):
            in_blk = (b == blk) & np.isfinite(d)
            if in_blk.sum() < 3:
                continue
            db = d[in_blk]
            md = np.median(db)
            mad = np.median(np.abs(db - md))
            limit = z * mad / MAD_NORMAL
            spikes[sel[in_blk]] = (db < md - limit) | (db > md + limit)
    return spikes


def combine_flags(*flags: np.ndarray) -> np.ndarray:
    """Element-wise worst (largest) of several 0/1/2 flags; NaN counts as bad (2)."""
    stacked = np.vstack([np.nan_to_num(np.asarray(f, dtype=float), nan=FLAG_BAD) for f in flags])
    return stacked.max(axis=0).astype(np.int8)


def apply_flag(values: np.ndarray, flag: np.ndarray, max_flag: int = FLAG_MEDIUM) -> np.ndarray:
    """Copy of ``values`` with NaN where ``flag`` exceeds ``max_flag`` (units of ``values``)."""
    out = np.array(values, dtype=float, copy=True)
    out[np.asarray(flag) > max_flag] = np.nan
    return out
