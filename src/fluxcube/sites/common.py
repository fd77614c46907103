"""Pieces shared by the site-processing steps: the step error, day numbering and day windows."""

from __future__ import annotations

import numpy as np
import pandas as pd


class StepError(ValueError):
    """A processing step cannot run on this input; the message says which step and why."""

    def __init__(self, step: str, message: str):
        self.step = step
        self.message = message
        super().__init__(f"{step}: {message}")


def day_number(time: pd.DatetimeIndex) -> np.ndarray:
    """Whole days since the first day of ``time`` (int64), from the period start times."""
    t = pd.DatetimeIndex(time)
    first = t[0].normalize()
    return ((t - first) // pd.Timedelta(days=1)).to_numpy().astype(np.int64)


def window_groups(
    day: np.ndarray, select: np.ndarray, first_days: np.ndarray, n_days: int
) -> list[np.ndarray]:
    """Record indices with ``select`` true and ``day`` in [first, first + n_days) for each first day.

    ``day`` is the day number of each record (non-decreasing); windows may overlap or reach past the
    ends of the series (they are then truncated).
    """
    idx = np.flatnonzero(select)
    d = day[idx]
    lo = np.searchsorted(d, first_days, side="left")
    hi = np.searchsorted(d, first_days + n_days, side="left")
    return [idx[a:b] for a, b in zip(lo, hi, strict=True)]


def interpolate_between(anchors: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For records 0..n-1: index of the anchor before and after, and the weight of the one after.

    ``anchors`` are increasing record indices of window estimates; records between two anchors get
    linearly distance-weighted weights, records before the first or after the last anchor take that
    anchor alone (REddyProc's association of light-response parameters to records).
    """
    rec = np.arange(n)
    pos = np.searchsorted(anchors, rec, side="left")  # first anchor >= record
    last = anchors.size - 1
    after = np.minimum(pos, last)
    exact = (pos <= last) & (anchors[after] == rec)
    before = np.where(exact | (pos == 0), after, np.where(pos > last, last, pos - 1))
    span = (anchors[after] - anchors[before]).astype(np.float64)
    w_after = np.full(n, 0.5)
    inner = span > 0
    w_after[inner] = (rec[inner] - anchors[before[inner]]) / span[inner]
    return before, after, w_after
