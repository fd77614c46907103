"""Simulated eddy-covariance towers, written as FLUXNET2015 FULLSET files.

For every site of the network (:mod:`fluxcube.simulate.network`) the true fluxes and weather of the
simulated world (:mod:`fluxcube.simulate.truth`) are "measured" and written under
``OUT/sites/fluxnet2015/FLX_<SITE>_FLUXNET2015_FULLSET_DD_<y0>-<y1>_1-4.csv`` with the columns of the
real FULLSET DD files that fluxcube uses (fill value -9999; daily QC = fraction of measured, good
half hours, 0..1). The observation model, all fluxes in g C m-2 d-1 (NEE positive = source):

- Night-time respiration bias (low night turbulence, the paper's tropical-tower problem), at sites
  with bias fraction ``b`` (default 0.3 at EBF sites within 23.5 deg of the equator, or a dict by
  site, or 0): ``NEE_biased = NEE_true - b * Reco_true * n``, ``n = 1 - daylength / 24`` the night
  share of the day (respiration taken as constant through the day). The night-time partitioning
  inherits it, ``RECO_NT = (1 - b) Reco``; the day-time partitioning does not, ``RECO_DT = Reco``;
  both ``GPP_* = RECO_* - NEE_VUT_REF`` (each RECO with 6 % and 10 % lognormal method noise).
- Random error (Laplace distributed, Richardson et al. 2006), heteroscedastic: standard deviation
  ``sigma = (0.2 + 0.1 |NEE_biased|) * (0.6 + 0.8 (1 - QC))``, written as ``NEE_VUT_REF_RANDUNC``
  where QC >= 0.25. ``QC = k / 48``, ``k ~ Binomial(48, 0.9 (1 - n) + 0.45 n)``.
- Gaps (-9999 in every flux column): 3 % of days at random, plus outages of 14-60 days (on average
  0.3 per site-year) during which the meteorology is the gap-filled ("ERA") weather, QC 0.
- Meteorology: ``TA_F`` + N(0, 0.3 K), ``SW_IN_F`` x lognormal 3 % (at most ``SW_IN_POT``),
  ``VPD_F`` x lognormal 5 %, ``P_F`` as is; QC 1, or 0 in outages.
- Friction velocity ``USTAR`` (m s-1; :mod:`fluxcube.simulate.turbulence`): half-hourly wind x canopy
  roughness ratio by PFT, with synoptic and diurnal variability; the DD files have its daily mean and
  ``USTAR_QC`` (1, or 0 with ``USTAR`` missing on days without flux data). Low turbulence (u* below the
  site's true threshold, by PFT 0.1-0.3 m s-1 or ``ustar_threshold``) damps the measured night-time NEE
  of the half-hourly files by ``u* / threshold``: the raw measurement a u* filter has to clean. The DD
  files are the product after u* filtering and gap filling, as FLUXNET2015's, so they do not carry it.

- Representativeness (off by default): ``representativeness = k`` puts every tower in a stand whose
  sink fraction is ``k`` times that of the grid cell around it (``sink_scale * k`` instead of
  ``sink_scale``, :func:`fluxcube.simulate.truth.diagnose_r_ref`): towers in actively growing,
  undisturbed stands. The stand's own fluxes are the towers' truth (``towers_truth.csv``); the gridded
  world (:func:`fluxcube.simulate.world.write_world`, same ``sink_scale``) keeps the cell's. With the
  default ``k = 1`` a tower and its grid cell share the truth (same place and PFT), and the night-time
  bias above is the only systematic error of the towers.

``noise=False`` writes perfect towers (no random error, gaps or method noise); the bias stays.
With ``halfhourly=True`` the same observations are also disaggregated to half hours
(:func:`halfhourly_frame`), so the daily mean of the half-hourly NEE equals the daily file's (once the
low-turbulence loss of its measured night-time half hours is added back).
The truth (``OUT/truth/towers_truth.csv``, the true daily fluxes; ``OUT/truth/towers_sites.csv``, each
site's true u* threshold and night-time bias fraction), the site table (``OUT/sites/metadata/
siteinfo_simulated.csv``) and every parameter (``OUT/SYNTHETIC.json``) are written beside.
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from fluxcube.errors import InputError
from fluxcube.simulate.network import SITEINFO_COLUMNS, TowerNetwork, load_network
from fluxcube.simulate.truth import DEFAULT_SINK_SCALE, Fluxes, simulate_truth
from fluxcube.simulate.turbulence import (
    USTAR_DECIMALS,
    low_turbulence_factor,
    simulate_ustar,
    ustar_ratio,
    ustar_thresholds,
)
from fluxcube.simulate.weather import (
    DEFAULT_DROUGHT,
    SOLAR_CONSTANT,
    DroughtSpec,
    Weather,
    day_length,
    earth_sun_distance_factor,
    saturation_vapour_pressure,
    solar_declination,
)

log = logging.getLogger(__name__)

FILL = -9999
TROPICS_DEG = 23.5
GC_PER_UMOL_DAY = 12.011e-6 * 86400.0  # g C m-2 d-1 per umol CO2 m-2 s-1
FLUX_COLUMNS = [
    "NEE_VUT_REF",
    "NEE_VUT_REF_QC",
    "NEE_VUT_REF_RANDUNC",
    "RECO_NT_VUT_REF",
    "GPP_NT_VUT_REF",
    "RECO_DT_VUT_REF",
    "GPP_DT_VUT_REF",
]
MET_COLUMNS = ["TA_F", "TA_F_QC", "SW_IN_POT", "SW_IN_F", "SW_IN_F_QC", "VPD_F", "VPD_F_QC", "P_F", "P_F_QC"]
DECIMALS = {
    "TA_F": 3,
    "SW_IN_POT": 3,
    "SW_IN_F": 3,
    "VPD_F": 3,
    "P_F": 3,
    "USTAR": USTAR_DECIMALS,
    "NEE_VUT_REF_QC": 6,
}
FLUX_DECIMALS = 5
TRUTH_DECIMALS = {"NEE": 6, "GPP": 6, "Reco": 6}


def dd_filename(site: str, y0: int, y1: int) -> str:
    """The FLUXNET2015 FULLSET daily file name of ``site`` for years ``y0..y1``."""
    return f"FLX_{site}_FLUXNET2015_FULLSET_DD_{y0}-{y1}_1-4.csv"


def hh_filename(site: str, y0: int, y1: int) -> str:
    """The FLUXNET2015 FULLSET half-hourly file name of ``site`` for years ``y0..y1``."""
    return f"FLX_{site}_FLUXNET2015_FULLSET_HH_{y0}-{y1}_1-4.csv"


def bias_fractions(sites: pd.DataFrame, tropical_night_bias: float | Mapping[str, float]) -> pd.Series:
    """Night-time respiration bias fraction (0..1) per site (index ``sitename``).

    A number applies to EBF sites within 23.5 degrees of the equator; a mapping gives the fraction of
    each named site (others 0).
    """
    names = sites["sitename"]
    if isinstance(tropical_night_bias, Mapping):
        b = names.map(lambda s: float(tropical_night_bias.get(s, 0.0)))
    else:
        tropical_ebf = (sites["classid"] == "EBF") & (sites["lat"].abs() <= TROPICS_DEG)
        b = np.where(tropical_ebf, float(tropical_night_bias), 0.0)
    return pd.Series(np.asarray(b, dtype=float), index=names.to_numpy(), name="bias_fraction")


def gridded_night_bias(world_dir: str | Path, fraction: float = 0.3) -> pd.DataFrame:
    """The towers' night-time bias carried over to the whole tropical evergreen forest of a world.

    What a model that learned the biased tropical EBF towers perfectly would add to the world's NEE:
    per year, the sum over the world's EBF cells within 23.5 degrees of the equator of ``fraction x Reco x
    (1 - daylength / 24) x cell area`` (the towers' observation model, :func:`observe_daily`), read from
    ``world_dir``'s ``truth/truth_<YYYY>.nc`` (Reco, g C m-2 d-1) and ``truth/world_static.nc`` (PFT,
    cell area). Returns columns ``year``, ``night_bias`` (Pg C yr-1, negative: a stronger sink) and
    ``NEE`` (the world's true global NEE, Pg C yr-1, from ``truth/global_annual.csv``).
    """
    import netCDF4

    truth_dir = Path(world_dir) / "truth"
    for name in ("world_static.nc", "global_annual.csv"):
        if not (truth_dir / name).is_file():
            raise InputError(str(truth_dir / name), "missing: expected a world written by write_world")
    with netCDF4.Dataset(truth_dir / "world_static.nc") as st:
        lat = np.asarray(st["lat"][:], dtype=float)
        meanings = st["pft"].getncattr("flag_meanings").split()
        rows = np.flatnonzero(np.abs(lat) <= TROPICS_DEG)
        ebf = np.asarray(st["pft"][rows, :]) == meanings.index("EBF")
        area = np.asarray(st["cell_area"][rows, :], dtype=float)
    glob = pd.read_csv(truth_dir / "global_annual.csv")
    out = []
    for year in glob["year"]:
        total = 0.0
        if not (truth_dir / f"truth_{year}.nc").is_file():
            raise InputError(
                str(truth_dir / f"truth_{year}.nc"), "missing: the world's daily truth (component truth)"
            )
        with netCDF4.Dataset(truth_dir / f"truth_{year}.nc") as nc:
            n_days = nc.dimensions["time"].size
            for d0 in range(0, n_days, 32):  # a month of tropical rows at a time
                d1 = min(d0 + 32, n_days)
                reco = np.ma.filled(nc["Reco"][d0:d1, rows[0] : rows[-1] + 1, :].astype(float), np.nan)
                doy = np.arange(d0 + 1, d1 + 1)[:, None]
                night = 1.0 - day_length(lat[rows][None, :], doy) / 24.0  # (day, row)
                flux = fraction * reco * night[:, :, None]  # g C m-2 d-1
                total += float(np.nansum(np.where(ebf[None], flux, 0.0) * area[None]))
        out.append({"year": int(year), "night_bias": -total / 1e15})
    return pd.DataFrame(out).merge(glob[["year", "NEE"]], on="year")


@dataclass
class SiteDays:
    """Truth and weather of one site for its days (arrays (day,)); units as in the module docstring."""

    dates: pd.DatetimeIndex
    lat: float
    lon: float
    utc_offset: float
    nee: np.ndarray
    gpp: np.ndarray
    reco: np.ndarray
    tair: np.ndarray
    rpot: np.ndarray
    rg: np.ndarray
    vpd: np.ndarray
    precip: np.ndarray
    daylength: np.ndarray

    @classmethod
    def from_simulation(cls, weather: Weather, fluxes: Fluxes, i: int, site: Any) -> SiteDays:
        """Column ``i`` of a simulation, for the years of ``site`` (a row of the network table)."""
        keep = (weather.dates.year >= site.year_start) & (weather.dates.year <= site.year_end)
        w, f = weather, fluxes
        arrays = (f.nee, f.gpp, f.reco, w.tair, w.rpot, w.rg, w.vpd, w.precip, w.daylength)
        return cls(w.dates[keep], site.lat, site.lon, site.utc_offset, *(a[keep, i] for a in arrays))

    def truth_frame(self, site: str) -> pd.DataFrame:
        """The true daily fluxes (g C m-2 d-1): columns site, date, NEE, GPP, Reco."""
        dates = self.dates.strftime("%Y-%m-%d")
        return pd.DataFrame(
            {"site": site, "date": dates, "NEE": self.nee, "GPP": self.gpp, "Reco": self.reco}
        )


def _outage_mask(rng: np.random.Generator, n: int) -> np.ndarray:
    """Days (n,) inside multi-week outages: Poisson(0.3 per year) outages of 14-60 days."""
    mask = np.zeros(n, dtype=bool)
    for _ in range(rng.poisson(0.3 * n / 365.25)):
        start, length = rng.integers(0, n), rng.integers(14, 61)
        mask[start : start + length] = True
    return mask


def observe_daily(
    days: SiteDays,
    bias: float,
    rng: np.random.Generator,
    noise: bool = True,
    ustar: np.ndarray | None = None,
) -> pd.DataFrame:
    """The FLUXNET2015 DD columns (``TIMESTAMP`` + met + flux, NaN for gaps) of one site.

    Fluxes in g C m-2 d-1, TA_F degC, SW W m-2, VPD hPa, P mm d-1, QC fractions 0..1 (see module).
    With the half-hourly ``ustar`` (day, 48; m s-1) also ``USTAR`` (the daily mean, m s-1) and
    ``USTAR_QC`` (fraction of half hours with u*: 1, or 0 on days without flux data) after ``P_F_QC``.
    """
    n = len(days.dates)
    night = 1.0 - days.daylength / 24.0
    nee = days.nee - bias * days.reco * night
    if noise:
        outage = _outage_mask(rng, n)
        gap = outage | (rng.random(n) < 0.03)
        qc = rng.binomial(48, 0.9 * (1.0 - night) + 0.45 * night) / 48.0
        sigma = (0.2 + 0.1 * np.abs(nee)) * (0.6 + 0.8 * (1.0 - qc))
        nee = nee + rng.laplace(0.0, sigma / np.sqrt(2.0))
        reco_nt = (1.0 - bias) * days.reco * np.exp(rng.normal(0.0, 0.06, n))
        reco_dt = days.reco * np.exp(rng.normal(0.0, 0.10, n))
        tair = np.where(outage, days.tair, days.tair + rng.normal(0.0, 0.3, n))
        rg = np.where(outage, days.rg, np.minimum(days.rg * np.exp(rng.normal(0.0, 0.03, n)), days.rpot))
        vpd = np.where(outage, days.vpd, days.vpd * np.exp(rng.normal(0.0, 0.05, n)))
    else:
        outage = gap = np.zeros(n, dtype=bool)
        qc, sigma = np.ones(n), np.zeros(n)
        reco_nt, reco_dt = (1.0 - bias) * days.reco, days.reco
        tair, rg, vpd = days.tair, days.rg, days.vpd
    met_qc = np.where(outage, 0.0, 1.0)
    frame = pd.DataFrame(
        {
            "TIMESTAMP": (days.dates.year * 10000 + days.dates.month * 100 + days.dates.day).to_numpy(),
            "TA_F": tair,
            "TA_F_QC": met_qc,
            "SW_IN_POT": days.rpot,
            "SW_IN_F": rg,
            "SW_IN_F_QC": met_qc,
            "VPD_F": vpd,
            "VPD_F_QC": met_qc,
            "P_F": days.precip,
            "P_F_QC": met_qc,
            "NEE_VUT_REF": nee,
            "NEE_VUT_REF_QC": qc,
            "NEE_VUT_REF_RANDUNC": np.where(qc >= 0.25, sigma, np.nan) if noise else np.nan,
            "RECO_NT_VUT_REF": reco_nt,
            "GPP_NT_VUT_REF": reco_nt - nee,
            "RECO_DT_VUT_REF": reco_dt,
            "GPP_DT_VUT_REF": reco_dt - nee,
        }
    )
    frame.loc[gap, FLUX_COLUMNS] = np.nan
    if ustar is not None:  # u* is measured by the same system as the flux: missing with it
        at = frame.columns.get_loc("P_F_QC") + 1
        frame.insert(at, "USTAR", np.where(gap, np.nan, ustar.mean(axis=1)))
        frame.insert(at + 1, "USTAR_QC", np.where(gap, 0.0, 1.0))
    return frame


# ---------------------------------------------------------------------------------------------
# half-hourly disaggregation
# ---------------------------------------------------------------------------------------------


def _halfhour_sun(days: SiteDays) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Half-hour starts (local standard time) and potential radiation (day, 48) in W m-2 at midpoints."""
    starts = pd.DatetimeIndex(
        (days.dates.to_numpy()[:, None] + np.arange(48) * np.timedelta64(30, "m")).ravel()
    )
    return starts, halfhour_potential_radiation(days)


def halfhour_potential_radiation(days: SiteDays) -> np.ndarray:
    """Potential radiation (day, 48) in W m-2 at the half hours' midpoints (local standard time)."""
    doy = days.dates.day_of_year.to_numpy()[:, None]
    b = 2 * np.pi * (doy - 81) / 364.0
    equation_of_time = 0.1645 * np.sin(2 * b) - 0.1255 * np.cos(b) - 0.025 * np.sin(b)  # h, FAO-56 eq. 32
    solar_time = (np.arange(48) + 0.5) / 2.0 + (days.lon - 15.0 * days.utc_offset) / 15.0 + equation_of_time
    omega = np.deg2rad(15.0 * (solar_time - 12.0))
    phi, delta = np.deg2rad(days.lat), solar_declination(doy)
    cos_zenith = np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.cos(omega)
    return SOLAR_CONSTANT * earth_sun_distance_factor(doy) * np.maximum(cos_zenith, 0.0)


def _shape(weights: np.ndarray) -> np.ndarray:
    """Weights (day, 48) scaled to a daily mean of 1 (all zero where a day's weights are)."""
    mean = weights.mean(axis=1, keepdims=True)
    return np.divide(weights, mean, out=np.zeros_like(weights), where=mean > 0)


def _timestamps(t: pd.DatetimeIndex) -> np.ndarray:
    """YYYYMMDDHHMM integers of ``t``."""
    year = t.year.to_numpy().astype(np.int64)
    return ((year * 100 + t.month) * 100 + t.day) * 10000 + t.hour * 100 + t.minute


def halfhourly_frame(
    days: SiteDays,
    daily: pd.DataFrame,
    bias: float,
    rng: np.random.Generator,
    noise: bool = True,
    ustar: np.ndarray | None = None,
    ustar_threshold: float = 0.0,
) -> pd.DataFrame:
    """The FLUXNET2015 HH columns of one site, disaggregated from its daily observations ``daily``.

    Local standard time; NEE, GPP, RECO in umol CO2 m-2 s-1, TA_F degC, SW W m-2, VPD hPa, P mm per
    half hour, USTAR m s-1; QC 0 measured, 1 gap-filled (flux) or 2 (met from the gridded weather).
    GPP follows potential radiation, RECO is constant through the day, the night bias sits in the
    night half hours, the temperature has a cosine cycle peaking at 15 h solar time, and zero-mean
    half-hourly Laplace noise (sigma = 1 + 0.2 |NEE| g C m-2 d-1) is added unless ``noise`` is false;
    each day's mean NEE equals ``daily``'s. With ``ustar`` (day, 48; m s-1) the ``USTAR`` column is
    written (missing on days without flux data) and the measured (QC 0) night-time NEE below
    ``ustar_threshold`` (m s-1; 0: none) is damped by ``u* / ustar_threshold``
    (:func:`fluxcube.simulate.turbulence.low_turbulence_factor`): the raw, not u*-filtered
    measurement, so that day's mean is ``daily``'s less the flux lost at low turbulence.
    """
    starts, sw_pot = _halfhour_sun(days)
    light = _shape(sw_pot)
    col = {k: daily[k].to_numpy()[:, None] for k in daily.columns}
    reco_true = days.reco[:, None]
    is_night = sw_pot <= 0
    night_share = (1.0 - days.daylength / 24.0)[:, None]
    n_night = np.maximum(is_night.mean(axis=1, keepdims=True), 1.0 / 48)
    nee_true = reco_true - days.gpp[:, None] * light
    nee_biased = nee_true - np.where(is_night, bias * reco_true * night_share / n_night, 0.0)
    # the daily error of the DD file, spread evenly, plus zero-mean half-hourly noise
    daily_error = col["NEE_VUT_REF"] - nee_biased.mean(axis=1, keepdims=True)
    eta = (
        rng.laplace(0.0, (1.0 + 0.2 * np.abs(nee_biased)) / np.sqrt(2.0)) if noise else np.zeros(light.shape)
    )
    nee = nee_biased + daily_error + eta - eta.mean(axis=1, keepdims=True)
    measured = rng.random(nee.shape).argsort(axis=1) < np.round(np.nan_to_num(col["NEE_VUT_REF_QC"]) * 48)
    if ustar is not None:  # measured at low turbulence: only u*/threshold of the night flux
        nee = np.where(measured, nee * low_turbulence_factor(ustar, is_night, ustar_threshold), nee)
    solar_hour = (np.arange(48) + 0.5) / 2.0 + (days.lon - 15.0 * days.utc_offset) / 15.0
    tair = col["TA_F"] + (2.0 + 0.015 * col["SW_IN_F"]) * np.cos(2 * np.pi * (solar_hour - 15.0) / 24.0)
    ea = np.maximum(saturation_vapour_pressure(col["TA_F"]) - col["VPD_F"], 0.0)
    vpd = _shape(np.maximum(saturation_vapour_pressure(tair) - ea, 0.0)) * col["VPD_F"]
    met_qc = np.where(col["TA_F_QC"] > 0, 0, 2) * np.ones((1, 48))
    end = starts + pd.Timedelta(minutes=30)
    frame = pd.DataFrame(
        {
            "TIMESTAMP_START": _timestamps(starts),
            "TIMESTAMP_END": _timestamps(end),
            "TA_F": tair.ravel(),
            "TA_F_QC": met_qc.ravel(),
            "SW_IN_POT": sw_pot.ravel(),
            "SW_IN_F": (light * col["SW_IN_F"]).ravel(),
            "SW_IN_F_QC": met_qc.ravel(),
            "VPD_F": vpd.ravel(),
            "VPD_F_QC": met_qc.ravel(),
            "P_F": np.repeat(daily["P_F"].to_numpy() / 48.0, 48),
            "P_F_QC": met_qc.ravel(),
            "NEE_VUT_REF": (nee / GC_PER_UMOL_DAY).ravel(),
            "NEE_VUT_REF_QC": np.where(measured, 0, 1).ravel(),
            "NEE_VUT_REF_RANDUNC": np.where(
                measured, (1.0 + 0.2 * np.abs(nee)) / GC_PER_UMOL_DAY, np.nan
            ).ravel(),
        }
    )
    for method in ("NT", "DT"):
        reco = np.broadcast_to(col[f"RECO_{method}_VUT_REF"], nee.shape)
        frame[f"RECO_{method}_VUT_REF"] = (reco / GC_PER_UMOL_DAY).ravel()
        frame[f"GPP_{method}_VUT_REF"] = ((reco - nee) / GC_PER_UMOL_DAY).ravel()
    gap = np.repeat(daily["NEE_VUT_REF"].isna().to_numpy(), 48)
    frame.loc[gap, FLUX_COLUMNS] = np.nan
    if ustar is not None:
        frame.insert(frame.columns.get_loc("P_F_QC") + 1, "USTAR", np.where(gap, np.nan, ustar.ravel()))
    flags = [c for c in frame.columns if c.endswith("_QC")]
    frame[flags] = frame[flags].astype("Int64")  # half-hourly QC are integer flags
    return frame


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------


def _write_csv(frame: pd.DataFrame, path: Path, decimals: Mapping[str, int] = DECIMALS) -> Path:
    """Write ``frame`` FLUXNET style: rounded values, -9999 for missing, unquoted, LF line ends.

    Decimals per column from ``decimals``, else ``FLUX_DECIMALS``. Arrow's CSV writer formats numbers
    about ten times faster than pandas (shortest round-trip form, so 1.0 is written ``1``).
    """
    rounded = frame.copy()
    for name in rounded.columns:
        if rounded[name].dtype.kind == "f":
            rounded[name] = rounded[name].round(decimals.get(name, FLUX_DECIMALS))
    numeric = [c for c in rounded.columns if pd.api.types.is_numeric_dtype(rounded[c])]
    rounded[numeric] = rounded[numeric].fillna(FILL)
    table = pa.Table.from_pandas(rounded, preserve_index=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.write((",".join(rounded.columns) + "\n").encode())
        pacsv.write_csv(table, f, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    return path


def _site_rng(seed: int, site: str, stream: int) -> np.random.Generator:
    """Random stream of one site (independent of which other sites are simulated)."""
    return np.random.default_rng([seed, stream, zlib.crc32(site.encode())])


def _write_siteinfo(network: TowerNetwork, capacity: np.ndarray, path: Path) -> Path:
    """siteinfo_simulated.csv: FLUXNET2015 siteinfo columns + ``utc_offset``; whc = bucket capacity (mm)."""
    table = network.sites[[*SITEINFO_COLUMNS, "utc_offset"]].copy()
    table["whc"] = np.round(capacity, 3)
    table["c4"] = np.where(table["c4"].astype(bool), "TRUE", "FALSE")
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False, na_rep="NA", lineterminator="\n")
    return path


def _write_sites_truth(table: pd.DataFrame, biases: pd.Series, thresholds: pd.Series, path: Path) -> Path:
    """towers_sites.csv: per site its PFT, true u* threshold (m s-1; 0: no loss), u*/wind ratio and
    night-time respiration bias fraction: the observation model's known parameters."""
    frame = pd.DataFrame(
        {
            "site": table["sitename"].to_numpy(),
            "classid": table["classid"].to_numpy(),
            "ustar_threshold": thresholds.to_numpy(),
            "ustar_ratio": [ustar_ratio(c) for c in table["classid"]],
            "night_bias_fraction": biases.to_numpy(),
        }
    )
    return _write_csv(frame, path)


def _write_metadata(path: Path, arguments: dict[str, Any], network: TowerNetwork, biases: pd.Series) -> Path:
    """SYNTHETIC.json: the synthetic flag, generator, every argument, the biased sites, the network source."""
    meta = {
        "synthetic": True,
        "generator": "fluxcube.simulate",
        **arguments,
        "n_sites": len(network.sites),
        "biased_sites": {str(k): float(v) for k, v in biases.items() if v != 0},
        "network_source": network.network_source,
        "units": {"NEE": "g C m-2 d-1 (DD), umol m-2 s-1 (HH); positive = source", "truth": "g C m-2 d-1"},
    }
    path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return path


def write_towers(
    out_dir: str | Path,
    start_year: int = 2001,
    end_year: int = 2017,
    sites: int | Sequence[str] | None = None,
    seed: int = 0,
    data_dir: str | Path | None = None,
    tropical_night_bias: float | Mapping[str, float] = 0.3,
    noise: bool = True,
    halfhourly: bool = False,
    site_years: bool = True,
    drought: DroughtSpec | None = DEFAULT_DROUGHT,
    sink_scale: float = DEFAULT_SINK_SCALE,
    representativeness: float = 1.0,
    ustar_threshold: float | Mapping[str, float] | None = None,
) -> list[Path]:
    """Simulate the tower network and write it in FLUXNET2015 formats under ``out_dir``.

    Years ``start_year..end_year`` (inclusive); ``sites``, ``data_dir``, ``site_years``: see
    :func:`fluxcube.simulate.network.load_network`; ``tropical_night_bias``: see
    :func:`bias_fractions` (fraction, 0..1); ``sink_scale`` (dimensionless): the truth's, as the
    gridded world's; ``representativeness`` (dimensionless, > 0): the towers' stands take up that many
    times their grid cell's sink fraction (1: none); ``ustar_threshold``: the towers' true u*
    thresholds (m s-1), see :func:`fluxcube.simulate.turbulence.ustar_thresholds` (None: by PFT; 0: no
    low-turbulence loss); ``noise``, ``halfhourly``, units: see the module docstring. Returns the
    written files: site files (DD, then HH), the site table, the truth (daily fluxes, then the
    per-site observation parameters) and ``SYNTHETIC.json``. The same arguments give byte-identical
    files.
    """
    if not representativeness > 0:
        raise ValueError(f"representativeness {representativeness}: expected a factor > 0 (1: none)")
    out = Path(out_dir)
    network = load_network(data_dir, sites, start_year, end_year, seed, site_years)
    table = network.sites
    if table.empty:
        raise ValueError(f"no tower has data in {start_year}-{end_year}; try site_years=False")
    first, last = int(table["year_start"].min()), int(table["year_end"].max())
    weather, fluxes = simulate_truth(
        table["lat"],
        table["lon"],
        table["classid"],
        f"{first}-01-01",
        f"{last}-12-31",
        seed,
        drought,
        sink_scale=sink_scale * representativeness,
    )
    biases = bias_fractions(table, tropical_night_bias)
    thresholds = ustar_thresholds(table, ustar_threshold)
    folder = out / "sites" / "fluxnet2015"
    site_files: list[Path] = []
    hh_files: list[Path] = []
    truth_frames = []
    for i, site in enumerate(table.itertuples()):
        days = SiteDays.from_simulation(weather, fluxes, i, site)
        bias = biases[site.sitename]
        ustar = simulate_ustar(
            halfhour_potential_radiation(days), ustar_ratio(site.classid), _site_rng(seed, site.sitename, 3)
        )
        daily = observe_daily(days, bias, _site_rng(seed, site.sitename, 1), noise, ustar)
        years = (site.sitename, site.year_start, site.year_end)
        site_files.append(_write_csv(daily, folder / dd_filename(*years)))
        if halfhourly:
            rng = _site_rng(seed, site.sitename, 2)
            threshold = float(thresholds[site.sitename])
            hh = halfhourly_frame(days, daily.drop(columns="TIMESTAMP"), bias, rng, noise, ustar, threshold)
            hh_files.append(_write_csv(hh, folder / hh_filename(*years)))
        truth_frames.append(days.truth_frame(site.sitename))
    truth_path = _write_csv(
        pd.concat(truth_frames, ignore_index=True), out / "truth" / "towers_truth.csv", TRUTH_DECIMALS
    )
    sites_truth = _write_sites_truth(table, biases, thresholds, out / "truth" / "towers_sites.csv")
    siteinfo = _write_siteinfo(network, weather.capacity, out / "sites/metadata/siteinfo_simulated.csv")
    arguments = {
        "seed": seed,
        "start_year": start_year,
        "end_year": end_year,
        "sites": sites if sites is None or isinstance(sites, int) else list(sites),
        "site_years": site_years,
        "tropical_night_bias": dict(tropical_night_bias)
        if isinstance(tropical_night_bias, Mapping)
        else tropical_night_bias,
        "noise": noise,
        "halfhourly": halfhourly,
        "drought": asdict(drought) if drought is not None else None,
        "sink_scale": sink_scale,
        "representativeness": representativeness,
        "ustar_threshold": dict(ustar_threshold) if isinstance(ustar_threshold, Mapping) else ustar_threshold,
    }
    meta_path = _write_metadata(out / "SYNTHETIC.json", arguments, network, biases)
    log.info("wrote %d simulated towers (%s network) to %s", len(table), network.network_source, out)
    return [*site_files, *hh_files, siteinfo, truth_path, sites_truth, meta_path]
