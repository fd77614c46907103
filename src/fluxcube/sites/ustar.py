"""Friction velocity (u*) threshold by the moving point test, and low-turbulence filtering.

Moving point test (Reichstein et al. 2005, Papale et al. 2006), per calendar year:

- night-time records (``night``) with NEE, u* and air temperature;
- per season (``seasons="reddyproc"``, the default, as REddyProc's ``usCreateSeasonFactorMonth``:
  Dec-Jan-Feb across the year boundary (December joins the next January and February; the first
  January-February of the record is a season of its own), Mar-May, Jun-Aug, Sep-Nov, each season
  belonging to the year of the middle of its records; ``seasons="calendar"``: December with the
  January and February of the same year): 6 air-temperature classes of
  equal size; in each, 20 u* classes of equal size; the class threshold is the mean u* of the first u*
  class whose mean NEE reaches 99 % of the mean NEE of all higher u* classes; temperature classes where
  |r(T, u*)| >= 0.4 give none; the season's threshold is the median over temperature classes;
- the year's threshold is the maximum over its seasons (REddyProc's annual threshold); per season, the
  season's own threshold (REddyProc's ``usGetSeasonalSeasonUStarMap``; seasons without one take their
  year's);
- uncertainty: the whole estimate is repeated on bootstrap samples of the night records (drawn with
  replacement within each season), giving the 5, 50 and 95 percentiles per year and per season: the
  u* scenarios U05, U50, U95 of REddyProc / ONEFlux.

u* in m s-1, NEE in umol m-2 s-1 (positive = release), temperature in degC.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fluxcube.sites.common import StepError

SEASONS = {12: 0, 1: 0, 2: 0, 3: 1, 4: 1, 5: 1, 6: 2, 7: 2, 8: 2, 9: 3, 10: 3, 11: 3}
SEASON_NAMES = ("DJF", "MAM", "JJA", "SON")
SEASON_SCHEMES = ("reddyproc", "calendar")
PERCENTILES = {"p05": 5.0, "p50": 50.0, "p95": 95.0}


def season_of(time: pd.DatetimeIndex, scheme: str = "reddyproc") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Season of each record: (key, season index 0..3 = DJF, MAM, JJA, SON, year of the season).

    ``key`` (int) is unique per season: 10 x (year the season ends in) + index. With ``reddyproc``
    December belongs to the next year's DJF; the season's year is the year of the middle of its
    records (REddyProc's ``usGetYearOfSeason``), so a record's lone last December stays in its year.
    With ``calendar`` December belongs to the DJF of its own calendar year.
    """
    if scheme not in SEASON_SCHEMES:
        raise ValueError(f"u* season scheme {scheme!r}: expected one of {SEASON_SCHEMES}")
    t = pd.DatetimeIndex(time)
    month = t.month.to_numpy()
    index = np.array([SEASONS[m] for m in range(1, 13)])[month - 1]
    end_year = t.year.to_numpy() + ((month == 12) if scheme == "reddyproc" else 0)
    key = end_year * 10 + index
    ns = t.as_unit("ns").asi8
    uniq, inverse = np.unique(key, return_inverse=True)
    first = np.full(uniq.size, np.iinfo(np.int64).max)
    last = np.full(uniq.size, np.iinfo(np.int64).min)
    np.minimum.at(first, inverse, ns)
    np.maximum.at(last, inverse, ns)
    middle = pd.DatetimeIndex(first + (last - first) // 2).year.to_numpy()
    return key, index, middle[inverse]


@dataclass
class UstarResult:
    """Thresholds (m s-1). ``annual``: one row per year with ``threshold`` (the estimate on all data),
    ``p05``, ``p50``, ``p95`` (bootstrap) and ``n_night``; ``seasonal``: one row per season with
    ``key``, ``year`` (the season's year), ``season``, ``threshold``, ``p05``, ``p50``, ``p95`` and ``n``;
    ``scheme``: the season scheme; ``notes``: years or seasons without a threshold.
    """

    annual: pd.DataFrame
    seasonal: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    scheme: str = "reddyproc"

    def per_record(
        self, time: pd.DatetimeIndex, column: str = "threshold", seasonal: bool = False
    ) -> np.ndarray:
        """The threshold (``threshold``, ``p05``, ``p50`` or ``p95``, m s-1) of each record: that of the
        year of its season, or with ``seasonal`` that of its season (its year's where the season has none).
        """
        key, _, year = season_of(time, self.scheme)
        out = self.annual[column].reindex(year).to_numpy(dtype=float)
        if seasonal:
            own = self.seasonal.set_index("key")[column].reindex(key).to_numpy(dtype=float)
            out = np.where(np.isfinite(own), own, out)
        return out


def ustar_threshold(
    time: pd.DatetimeIndex,
    nee: np.ndarray,
    ustar: np.ndarray,
    tair: np.ndarray,
    night: np.ndarray,
    *,
    n_temp: int = 6,
    n_ustar: int = 20,
    plateau: float = 0.99,
    max_corr: float = 0.4,
    n_boot: int = 100,
    min_per_temp_class: int = 100,
    forward: int | None = None,
    consecutive: int = 1,
    seasons: str = "reddyproc",
    seed: int = 0,
) -> UstarResult:
    """u* thresholds by the moving point test (module docstring).

    ``time`` period starts; ``nee`` umol m-2 s-1; ``ustar`` m s-1; ``tair`` degC; ``night`` boolean.
    ``forward`` compares each u* class with the mean of the next ``forward`` classes instead of all
    higher ones, and ``consecutive`` requires that many classes in a row to reach the plateau
    (REddyProc's variant: ``n_temp=7, plateau=0.95, forward=10, consecutive=2, max_corr=0.5``);
    ``seasons`` the season scheme (:func:`season_of`).

    Raises :class:`StepError` when no year has enough night-time data for a threshold (at least
    ``min_per_temp_class`` records in each of the ``n_temp`` temperature classes of one season).
    """
    t = pd.DatetimeIndex(time)
    ok = night & np.isfinite(nee) & np.isfinite(ustar) & np.isfinite(tair)
    if not ok.any():
        raise StepError("u* threshold", "no night-time records with NEE, u* and air temperature")
    rng = np.random.default_rng(seed)
    key, _, season_year = season_of(t, seasons)
    annual_rows, season_rows, notes = [], [], []
    for year in np.unique(season_year):
        per_season = []
        for k in np.unique(key[season_year == year]):
            idx = np.flatnonzero(ok & (key == k))
            name = SEASON_NAMES[k % 10]
            thr = np.full(n_boot + 1, np.nan)
            if idx.size < n_temp * min_per_temp_class:
                notes.append(f"{year} {name}: {idx.size} night records, too few for u*")
            else:
                draws = np.vstack((np.arange(idx.size), rng.integers(0, idx.size, (n_boot, idx.size))))
                thr = _season_threshold(
                    idx[draws], nee, ustar, tair, n_temp, n_ustar, plateau, max_corr, forward, consecutive
                )
            per_season.append(thr)
            season_rows.append((int(k), int(year), name, thr[0], *_percentiles(thr[1:]), idx.size))
        stack = np.vstack(per_season)
        annual = np.where(np.isnan(stack), -np.inf, stack).max(axis=0)
        annual[~np.isfinite(annual)] = np.nan
        if not np.isfinite(annual[0]):
            notes.append(f"{year}: no season gave a u* threshold")
        n_night = int((ok & (season_year == year)).sum())
        annual_rows.append((int(year), annual[0], *_percentiles(annual[1:]), n_night))
    annual_df = pd.DataFrame(annual_rows, columns=["year", "threshold", *PERCENTILES, "n_night"])
    annual_df = annual_df.set_index("year")
    if not np.isfinite(annual_df.threshold).any():
        raise StepError(
            "u* threshold", "too few night-time records for the moving point test: " + "; ".join(notes)
        )
    seasonal = pd.DataFrame(season_rows, columns=["key", "year", "season", "threshold", *PERCENTILES, "n"])
    return UstarResult(annual_df, seasonal, notes, seasons)


def _percentiles(boot: np.ndarray) -> np.ndarray:
    """5, 50 and 95 percentiles of the finite bootstrap thresholds (NaN when there are none)."""
    boot = boot[np.isfinite(boot)]
    return np.percentile(boot, list(PERCENTILES.values())) if boot.size else np.full(len(PERCENTILES), np.nan)


def _season_threshold(
    rows: np.ndarray,
    nee: np.ndarray,
    ustar: np.ndarray,
    tair: np.ndarray,
    n_temp: int,
    n_ustar: int,
    plateau: float,
    max_corr: float,
    forward: int | None = None,
    consecutive: int = 1,
) -> np.ndarray:
    """Season threshold for each sample row of record indices ``rows`` (S, n) -> (S,)."""
    order = np.argsort(tair[rows], axis=1, kind="stable")
    rows = np.take_along_axis(rows, order, axis=1)
    n = rows.shape[1]
    edges = (np.arange(n_temp + 1) * n) // n_temp
    per_class = []
    for c in range(n_temp):
        sub = rows[:, edges[c] : edges[c + 1]]
        corr = _row_corr(tair[sub], ustar[sub])
        sub = np.take_along_axis(sub, np.argsort(ustar[sub], axis=1, kind="stable"), axis=1)
        u, f = ustar[sub], nee[sub]
        m = sub.shape[1]
        starts = (np.arange(n_ustar) * m) // n_ustar
        size = np.diff(np.append(starts, m))
        f_mean = np.add.reduceat(f, starts, axis=1) / size
        u_mean = np.add.reduceat(u, starts, axis=1) / size
        reached = f_mean[:, :-1] >= plateau * _mean_of_higher(f_mean, forward)[:, :-1]
        for shift in range(1, consecutive):
            reached[:, :-shift] &= reached[:, shift:]
            reached[:, -shift:] = False
        first = np.argmax(reached, axis=1)
        thr = np.take_along_axis(u_mean, first[:, None], axis=1)[:, 0]
        thr[~reached.any(axis=1) | (np.abs(corr) >= max_corr)] = np.nan
        per_class.append(thr)
    classes = np.column_stack(per_class)
    out = np.full(classes.shape[0], np.nan)
    some = np.isfinite(classes).any(axis=1)
    out[some] = np.nanmedian(classes[some], axis=1)
    return out


def _mean_of_higher(f_mean: np.ndarray, forward: int | None) -> np.ndarray:
    """Mean of classes i+1 .. i+forward (all higher classes when None) for each class i."""
    n = f_mean.shape[1]
    c = np.concatenate((np.zeros((f_mean.shape[0], 1)), np.cumsum(f_mean, axis=1)), axis=1)
    lo = np.arange(1, n + 1)
    hi = np.full(n, n) if forward is None else np.minimum(lo + forward, n)
    count = np.maximum(hi - lo, 1)
    return (c[:, hi] - c[:, lo]) / count


def _row_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    with np.errstate(all="ignore"):
        return (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))


def low_turbulence(ustar: np.ndarray, night: np.ndarray, threshold: np.ndarray | float) -> np.ndarray:
    """True for night-time records whose u* is below ``threshold`` (m s-1) or missing: their NEE is not
    representative (advection, storage) and is removed before gap filling and partitioning.
    """
    with np.errstate(invalid="ignore"):
        below = ~(np.asarray(ustar) >= threshold)
    return np.asarray(night, bool) & below
