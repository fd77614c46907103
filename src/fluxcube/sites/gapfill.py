"""Marginal distribution sampling (MDS) gap filling after Reichstein et al. (2005).

The sequence of look-up tables (LUT) and mean diurnal courses (MDC) is that of the original PV-Wave
code as REddyProc implements it (``sMDSGapFill``), the reference of the FLUXNET pipeline:

1. LUT, window +-7 days, similar Rg, Tair and VPD                       quality 1 (A)
2. LUT, +-14 days, Rg, Tair, VPD                                        2
3. LUT, +-7 days, Rg only                                               1
4. MDC, same day, same time of day +-1 hour                             1
5. MDC, +-1 and +-2 days                                                2
6. LUT, +-21 .. +-70 days (7-day steps), Rg, Tair, VPD                  2 up to +-28 days, then 3
7. LUT, +-14 .. +-70 days, Rg only                                      2 at +-14 days, then 3
8. MDC, +-7 .. +-210 days                                               3

Quality follows from the full window length (REddyProc): LUT 2 x half-width <= 14 days A, <= 56 days
(three drivers) or <= 28 days (Rg only) B, else C; MDC 2 x half-width + 1 <= 1 day A, <= 5 days B,
else C.

"Similar" means ``|x - x_gap| < tolerance``: Rg 50 W m-2 (reduced to the gap's own Rg, but not below
20 W m-2, as in the PV-Wave code), Tair 2.5 degC, VPD 5 hPa. An estimate needs at least two values;
it is their mean, and their standard deviation is reported. Gaps longer than 60 days are not filled:
their values stay NaN with quality :data:`QC_UNFILLED`. Nothing is extrapolated.

Speed: each LUT step compares the Rg of every record still to be filled with its whole window at once
(numpy sliding-window views in cache-sized chunks of records; float32 with a margin, then the exact
float64 test on the selected pairs), then Tair and VPD only for the Rg-similar pairs; each MDC step is
a pair of moving sums over the (day, time of day) layout. A site-year of half-hourly NEE fills in a
few tens of milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

QC_MEASURED = 0
QC_UNFILLED = 9
METHOD_LUT3, METHOD_LUT1, METHOD_MDC = 1, 2, 3

RG_TOLERANCE = 50.0  # W m-2
RG_TOLERANCE_MIN = 20.0  # W m-2
TAIR_TOLERANCE = 2.5  # degC
VPD_TOLERANCE = 5.0  # hPa
MAX_GAP_DAYS = 60
LUT_MAX_DAYS = 70  # widest LUT half-window, days
_RG_MARGIN = 0.01  # W m-2, float32 pre-selection margin (float32 rounding at 1300 W m-2 is 1e-4)
_CHUNK_ELEMENTS = 1 << 17  # records x window elements per vectorised block (about 1 MiB of float64)


@dataclass
class GapFillResult:
    """MDS output for one variable; all arrays have the input's length.

    ``filled``: measured value, else the estimate, else NaN (units of the input).
    ``qc``: 0 measured, 1/2/3 filled with quality A/B/C, 9 not filled.
    ``estimate``: the MDS estimate at every record that was a target (all records with ``fill_all``).
    ``sd``: standard deviation (ddof 1) of the values averaged into ``estimate`` (input units).
    ``n``: number of values averaged. ``method``: 1 LUT(Rg, Tair, VPD), 2 LUT(Rg), 3 MDC, 0 none.
    ``window``: full window length in days (2 x half-width for LUT, 2 x half-width + 1 for MDC).
    """

    filled: np.ndarray
    qc: np.ndarray
    estimate: np.ndarray
    sd: np.ndarray
    n: np.ndarray
    method: np.ndarray
    window: np.ndarray


def mds_gapfill(
    y: np.ndarray,
    rg: np.ndarray | None = None,
    tair: np.ndarray | None = None,
    vpd: np.ndarray | None = None,
    *,
    records_per_day: int = 48,
    fill_all: bool = False,
    tolerances: tuple[float, float, float] = (RG_TOLERANCE, TAIR_TOLERANCE, VPD_TOLERANCE),
    rg_tolerance_min: float = RG_TOLERANCE_MIN,
    max_gap_days: float = MAX_GAP_DAYS,
) -> GapFillResult:
    """Gap-fill ``y`` by MDS (see the module docstring).

    ``y`` is any half-hourly (or hourly, ``records_per_day=24``) series on a complete, regular time grid
    with NaN for missing values, e.g. NEE in umol m-2 s-1; ``rg`` global radiation (W m-2), ``tair``
    air temperature (degC), ``vpd`` vapour pressure deficit (hPa) on the same grid (gaps allowed).
    Without all three drivers the LUT uses Rg alone, without Rg only the MDC runs (as REddyProc).
    ``fill_all`` also estimates measured records (their ``estimate`` and ``sd`` feed the random
    uncertainty), leaving ``filled`` unchanged there.
    """
    y = np.asarray(y, dtype=np.float64)
    n = y.size
    valid = np.isfinite(y)
    out = GapFillResult(
        filled=y.copy(),
        qc=np.where(valid, QC_MEASURED, QC_UNFILLED).astype(np.int8),
        estimate=np.full(n, np.nan),
        sd=np.full(n, np.nan),
        n=np.zeros(n, dtype=np.int32),
        method=np.zeros(n, dtype=np.int8),
        window=np.zeros(n, dtype=np.int16),
    )
    if not valid.any():
        return out
    long_gap = _in_long_gap(valid, int(max_gap_days * records_per_day))
    todo = (np.ones(n, bool) if fill_all else ~valid) & ~long_gap
    drivers = [None if d is None else np.asarray(d, dtype=np.float64) for d in (rg, tair, vpd)]
    have = [d is not None and np.isfinite(d).any() for d in drivers]
    n_met = 3 if all(have) else (1 if have[0] else 0)
    ctx = _Context(y, valid, records_per_day, drivers, tolerances, rg_tolerance_min)

    def lut(days: int, n_drivers: int) -> None:
        if todo.any():
            _store(out, todo, *ctx.lut(np.flatnonzero(todo), days, n_drivers), days, n_drivers)

    def mdc(days: int) -> None:
        if todo.any():
            _store(out, todo, *ctx.mdc(np.flatnonzero(todo), days), days, 0)

    if n_met == 3:
        lut(7, 3)
        lut(14, 3)
    if n_met >= 1:
        lut(7, 1)
    for days in (0, 1, 2):
        mdc(days)
    if n_met == 3:
        for days in range(21, 71, 7):
            lut(days, 3)
    if n_met >= 1:
        for days in range(14, 71, 7):
            lut(days, 1)
    for days in range(7, 211, 7):
        mdc(days)
    gap = ~valid & (out.qc != QC_UNFILLED)
    out.filled[gap] = out.estimate[gap]
    return out


def _quality(days: int, n_drivers: int) -> tuple[int, int, int]:
    """(quality flag, method code, full window length in days) of one MDS step."""
    if n_drivers == 0:
        win = 2 * days + 1
        return (1 if win <= 1 else 2 if win <= 5 else 3), METHOD_MDC, win
    win = 2 * days
    limit_b = 56 if n_drivers == 3 else 28
    return (
        (1 if win <= 14 else 2 if win <= limit_b else 3),
        (METHOD_LUT3 if n_drivers == 3 else METHOD_LUT1),
        win,
    )


def _store(
    out: GapFillResult,
    todo: np.ndarray,
    idx: np.ndarray,
    mean: np.ndarray,
    sd: np.ndarray,
    count: np.ndarray,
    days: int,
    n_drivers: int,
) -> None:
    ok = count >= 2
    if not ok.any():
        return
    i = idx[ok]
    qc, method, win = _quality(days, n_drivers)
    out.estimate[i] = mean[ok]
    out.sd[i] = sd[ok]
    out.n[i] = count[ok]
    out.method[i] = method
    out.window[i] = win
    gap = out.qc[i] == QC_UNFILLED
    out.qc[i[gap]] = qc
    todo[i] = False


def _in_long_gap(valid: np.ndarray, max_len: int) -> np.ndarray:
    """Records inside runs of missing values longer than ``max_len`` records."""
    missing = np.concatenate(([False], ~valid, [False]))
    edges = np.flatnonzero(np.diff(missing.astype(np.int8)))
    starts, ends = edges[::2], edges[1::2]
    mask = np.zeros(valid.size, bool)
    for s, e in zip(starts, ends, strict=True):
        if e - s > max_len:
            mask[s:e] = True
    return mask


class _Context:
    """Arrays shared by the steps of one gap filling run."""

    def __init__(
        self,
        y: np.ndarray,
        valid: np.ndarray,
        rpd: int,
        drivers: list[np.ndarray | None],
        tolerances: tuple[float, float, float],
        rg_min: float,
    ):
        self.y0 = np.where(valid, y, 0.0)
        self.valid = valid
        self.rpd = rpd
        self.drivers = drivers
        self.tolerances = tolerances
        self.rg_min = rg_min
        self._mdc_base: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._lut_cache: dict[int, tuple] = {}
        self._rg_pad32: dict[int, np.ndarray] = {}
        self._rg32 = np.zeros(0, np.float32)
        self._pad = LUT_MAX_DAYS * rpd

    # ------------------------------------------------------------------ look-up table
    def lut(self, idx: np.ndarray, days: int, n_drivers: int) -> tuple[np.ndarray, ...]:
        """Mean, sd and count of valid values in +-``days`` with drivers within tolerance.

        The first driver (Rg) is compared over whole windows (a sliding-window view, in chunks of
        records); the other drivers only for the pairs that matched it.
        """
        half = days * self.rpd
        width = 2 * half + 1
        rg_pad, rg, rg_tol, others = self._lut_arrays(n_drivers)
        off = self._pad - half
        # float32 pre-selection with a margin far above float32 rounding of W m-2 values, then the
        # exact float64 test on the selected pairs (same result as comparing everything in float64)
        view32 = sliding_window_view(self._rg_pad32[n_drivers][off : rg_pad.size - off], width)
        rg32, tol32 = self._rg32, (rg_tol + _RG_MARGIN).astype(np.float32)
        rg_cand = rg_pad[self._pad : rg_pad.size - self._pad]
        total = np.zeros(idx.size)
        total2 = np.zeros(idx.size)
        count = np.zeros(idx.size, np.int64)
        step = max(1, min(idx.size, _CHUNK_ELEMENTS // width))
        diff = np.empty((step, width), np.float32)
        for a in range(0, idx.size, step):
            rows = idx[a : a + step]
            k = rows.size
            _gather(view32, rows, rows[-1] - rows[0] + 1 == k, diff[:k])
            np.subtract(diff[:k], rg32[rows, None], out=diff[:k])
            np.abs(diff[:k], out=diff[:k])
            similar = diff[:k] < tol32[rows, None]
            per_row = np.count_nonzero(similar, axis=1)
            flat = np.flatnonzero(similar)  # row-major: row r holds flat r * width .. r * width + width - 1
            r_idx = np.repeat(np.arange(k), per_row)
            target = rows[r_idx]
            j = flat + np.repeat(rows - half - np.arange(k) * width, per_row)  # record of each candidate
            keep = np.abs(rg_cand[j] - rg[target]) < rg_tol[target]
            for cand, d, t in others:
                keep &= np.abs(cand[j] - d[target]) < t
            r_idx, vals = r_idx[keep], self.y0[j[keep]]
            count[a : a + k] = np.bincount(r_idx, minlength=k)
            total[a : a + k] = np.bincount(r_idx, weights=vals, minlength=k)
            total2[a : a + k] = np.bincount(r_idx, weights=vals * vals, minlength=k)
        return (idx, *_mean_sd(total, total2, count), count)

    def _lut_arrays(self, n_drivers: int) -> tuple:
        """Per driver set (cached): Rg of valid candidates padded with NaN by the widest window, Rg,
        the Rg tolerance of each record, and (candidate values, values, tolerance) of other drivers."""
        if n_drivers not in self._lut_cache:
            drivers = [d for d in self.drivers[:n_drivers] if d is not None]
            candidate = self.valid.copy()
            for d in drivers:
                candidate &= np.isfinite(d)
            rg = drivers[0]
            pad = np.full(self._pad, np.nan)
            rg_pad = np.concatenate((pad, np.where(candidate, rg, np.nan), pad))
            rg_tol = np.maximum(np.minimum(self.tolerances[0], np.nan_to_num(rg, nan=np.inf)), self.rg_min)
            others = [
                (np.where(candidate, d, np.nan), d, t)
                for d, t in zip(drivers[1:], self.tolerances[1:n_drivers], strict=True)
            ]
            self._lut_cache[n_drivers] = (rg_pad, rg, rg_tol, others)
            self._rg_pad32[n_drivers] = rg_pad.astype(np.float32)
            self._rg32 = rg.astype(np.float32)
        return self._lut_cache[n_drivers]

    # ------------------------------------------------------------------ mean diurnal course
    def mdc(self, idx: np.ndarray, days: int) -> tuple[np.ndarray, ...]:
        """Mean, sd and count of valid values at the same time of day +-1 hour within +-``days``."""
        if self._mdc_base is None:
            h = max(1, self.rpd // 24)  # records in one hour
            self._mdc_base = tuple(
                _moving_sum(a, h) for a in (self.y0, self.y0 * self.y0, self.valid.astype(np.float64))
            )
        total, total2, count = (self._across_days(a, days)[idx] for a in self._mdc_base)
        count = np.rint(count).astype(np.int64)
        return (idx, *_mean_sd(total, total2, count), count)

    def _across_days(self, a: np.ndarray, days: int) -> np.ndarray:
        """Sum of ``a[i + k * rpd]`` for k in -days..days (out-of-range terms are zero)."""
        if days == 0:
            return a
        n = a.size
        ndays = -(-n // self.rpd)
        grid = np.zeros((ndays + 2 * days + 1, self.rpd))
        grid[days + 1 : days + 1 + ndays].reshape(-1)[:n] = a
        c = np.cumsum(grid, axis=0)
        s = c[2 * days + 1 :] - c[:ndays]
        return s.reshape(-1)[:n]


def _gather(view: np.ndarray, rows: np.ndarray, contiguous: bool, out: np.ndarray) -> None:
    """Copy the window rows ``rows`` of a sliding-window view into ``out``."""
    if contiguous:
        out[...] = view[rows[0] : rows[-1] + 1]
    else:
        out[...] = view[rows]


def _moving_sum(a: np.ndarray, h: int) -> np.ndarray:
    """Sum of ``a[i-h .. i+h]`` (out-of-range terms are zero)."""
    c = np.concatenate(([0.0], np.cumsum(np.concatenate((np.zeros(h), a, np.zeros(h))))))
    w = 2 * h + 1
    return c[w:] - c[:-w]


def _mean_sd(total: np.ndarray, total2: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
        var = (total2 - total * mean) / (count - 1)
    return mean, np.sqrt(np.clip(var, 0.0, None))
