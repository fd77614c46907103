"""The "true" ecosystem fluxes of the simulated world: a light-use-efficiency process model.

All fluxes are daily, g C m-2 d-1; NEE positive = source to the atmosphere. For each point with
plant functional type (IGBP) ``p`` and the weather of :mod:`fluxcube.simulate.weather`:

- Phenology (growing-season index, Jolly et al. 2005): ``GSI = ramp(Tair; phen_t_lo, phen_t_hi) *
  ramp(daylength; 10 h, 11 h) * ramp(WAI; phen_wai_lo, phen_wai_hi)`` (the water ramp only for
  water-driven PFTs), averaged over the trailing 35 days (canopy development lags the weather);
  ``fAPAR = fapar_max * (evergreen + (1 - evergreen) * GSI)``.
- ``GPP = lue * fAPAR * PAR * f(T) * f(VPD) * f(WAI)`` with ``PAR = 0.48 * Rg`` (MJ m-2 d-1),
  ``f(T) = 1 / (1 + exp(-(T - t_cold) / 2)) * exp(-(max(T - t_opt, 0) / 10)^2)``,
  ``f(VPD) = exp(-k_vpd * max(VPD - vpd0, 0))``, ``f(WAI) = ramp(WAI; 0.05, wai_crit)``.
- ``Reco = R_ref * q10^((T - 15) / 10) * g(WAI) + k_gpp * GPP_14``, ``g(WAI) = 0.35 + 0.65 *
  ramp(WAI; 0, 0.6 wai_crit)``, ``GPP_14`` the trailing 14-day mean GPP (recent assimilates).
- ``NEE = Reco - GPP``.

``R_ref`` (g C m-2 d-1 at 15 degC, moist soil) is not a PFT constant: it is diagnosed per location
so that the ecosystem is a modest sink in its own climate, ``mean(NEE) = -s * mean(GPP)`` over the
reference years 1996-2000 (no drought), with ``s = sink_fraction(PFT) * m * sink_scale`` and ``m`` in
0.2..1.8 a smooth random function of location (disturbance history, regrowth). A PFT-constant ``R_ref``
makes warm sites of a PFT strong sources and cold ones strong sinks, which no flux network shows; the
equilibrium diagnosis keeps sites plausible and leaves the weather (and the drought) to make the
departures. Because the reference years are fixed, the truth does not depend on the requested period.

``sink_scale`` (dimensionless, default :data:`DEFAULT_SINK_SCALE` = 0.17) is shared by the towers and the
gridded world, so a tower and the grid cell around it have the same truth (same place and PFT). The PFT
sink fractions of :data:`PFT_PARAMS` were set to match FLUXNET sites; integrated over the land they would
take up 15-17 Pg C per year, five times the real residual land sink. Scaled by 0.17 the global NEE is
about -3.2 Pg C per year (2001-2017), and with fire a net land sink of about 2.2 Pg C per year. Towers
that sit in stronger sinks than their surroundings are an option of the towers
(:func:`fluxcube.simulate.towers.write_towers`, ``representativeness``), off by default.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from fluxcube.simulate.weather import (
    DEFAULT_DROUGHT,
    SECONDS_PER_DAY,
    DroughtSpec,
    Weather,
    generate_weather,
)

log = logging.getLogger(__name__)

PAR_FRACTION = 0.48  # PAR / global radiation (energy)
T_REF = 15.0  # degC, reference temperature of R_ref
REFERENCE_YEARS = (1996, 2000)  # climate in which R_ref is diagnosed (inclusive)
GSI_WINDOW = 35  # days
#: multiplies every PFT sink fraction, for the towers and the grid alike (see the module docstring)
DEFAULT_SINK_SCALE = 0.17
RECENT_GPP_WINDOW = 14  # days


@dataclass(frozen=True)
class PFTParams:
    """Process-model parameters of one plant functional type (units after each name).

    - ``lue`` g C MJ-1: light-use efficiency (GPP per MJ of absorbed PAR) without stress
    - ``fapar_max`` 1: fAPAR of the full canopy
    - ``evergreen`` 1: share of ``fapar_max`` kept outside the growing season
    - ``phen_t_lo``, ``phen_t_hi`` degC: daily Tair at which the temperature GSI is 0 and 1
    - ``phen_wai_lo``, ``phen_wai_hi`` 1: WAI at which the water GSI is 0 and 1 (``hi = 0``: none)
    - ``t_cold`` degC: Tair at which the cold limitation of LUE is one half
    - ``t_opt`` degC: above it LUE declines (Gaussian, 10 K e-folding)
    - ``vpd0`` hPa: VPD above which stomata close; ``k_vpd`` hPa-1: rate of the LUE decline
    - ``wai_crit`` 1: WAI below which LUE falls (linearly, to 0 at WAI 0.05); 0: no water stress
    - ``q10`` 1: respiration increase per 10 K
    - ``k_gpp`` 1: fraction of the 14-day mean GPP respired (growth and recent-substrate respiration)
    - ``sink_fraction`` 1: long-term ``-NEE / GPP`` in the location's own climate (before modulation)
    """

    lue: float
    fapar_max: float
    evergreen: float
    phen_t_lo: float
    phen_t_hi: float
    phen_wai_lo: float
    phen_wai_hi: float
    t_cold: float
    t_opt: float
    vpd0: float
    k_vpd: float
    wai_crit: float
    q10: float
    k_gpp: float
    sink_fraction: float


P = PFTParams
PFT_PARAMS: dict[str, PFTParams] = {
    # lue fmax  everg tlo  thi  wlo   whi   tcold topt vpd0 kvpd  wcrit q10  kgpp  sink
    "ENF": P(0.90, 0.85, 0.55, 5.0, 13.0, 0.00, 0.00, 0.0, 30.0, 10.0, 0.03, 0.20, 1.5, 0.30, 0.16),
    "EBF": P(0.99, 0.92, 0.92, 8.0, 16.0, 0.00, 0.00, 5.0, 31.0, 10.0, 0.03, 0.20, 1.3, 0.35, 0.05),
    "DNF": P(1.00, 0.80, 0.10, 3.0, 12.0, 0.00, 0.00, -1.0, 24.0, 8.0, 0.04, 0.20, 1.5, 0.30, 0.14),
    "DBF": P(1.08, 0.90, 0.10, 6.0, 14.0, 0.00, 0.00, 3.0, 27.0, 9.0, 0.04, 0.20, 1.6, 0.30, 0.18),
    "MF": P(0.94, 0.88, 0.45, 4.0, 12.0, 0.00, 0.00, 1.0, 27.0, 9.0, 0.04, 0.20, 1.5, 0.30, 0.17),
    "OSH": P(0.85, 0.45, 0.35, 5.0, 13.0, 0.05, 0.30, 2.0, 30.0, 12.0, 0.03, 0.35, 1.4, 0.30, 0.05),
    "CSH": P(2.00, 0.65, 0.50, 5.0, 13.0, 0.05, 0.30, 3.0, 30.0, 12.0, 0.03, 0.35, 1.4, 0.30, 0.10),
    "WSA": P(0.90, 0.70, 0.45, 8.0, 15.0, 0.05, 0.35, 5.0, 32.0, 12.0, 0.03, 0.35, 1.4, 0.30, 0.10),
    "SAV": P(0.93, 0.62, 0.25, 8.0, 15.0, 0.08, 0.40, 6.0, 33.0, 12.0, 0.03, 0.35, 1.4, 0.30, 0.08),
    "GRA": P(1.10, 0.75, 0.15, 4.0, 12.0, 0.08, 0.40, 2.0, 30.0, 10.0, 0.04, 0.40, 1.5, 0.30, 0.06),
    "WET": P(0.75, 0.75, 0.20, 5.0, 13.0, 0.00, 0.00, 1.0, 28.0, 10.0, 0.03, 0.00, 1.4, 0.25, 0.12),
    "CRO": P(1.75, 0.85, 0.05, 9.0, 17.0, 0.08, 0.35, 5.0, 30.0, 10.0, 0.04, 0.40, 1.5, 0.25, 0.12),
    # fallbacks: barren / snow and ice (nearly nothing grows), used for SNO, WAT, URB-like classes
    "BSV": P(0.30, 0.15, 0.30, 2.0, 10.0, 0.05, 0.30, 2.0, 30.0, 12.0, 0.04, 0.35, 1.4, 0.30, 0.02),
}
del P
PFT_ALIASES = {"SNO": "BSV", "WAT": "BSV", "URB": "GRA", "CVM": "CRO", "BAR": "BSV"}
DEFAULT_PFT = "GRA"
FOREST_PFTS = ("ENF", "EBF", "DNF", "DBF", "MF")


def resolve_pft(pft: str) -> str:
    """The key of ``PFT_PARAMS`` used for IGBP class ``pft`` (aliases, then ``GRA`` with a warning)."""
    key = PFT_ALIASES.get(pft, pft)
    if key not in PFT_PARAMS:
        log.warning("unknown PFT %r: using %s parameters", pft, DEFAULT_PFT)
        return DEFAULT_PFT
    return key


def parameter_arrays(pfts: Sequence[str]) -> dict[str, np.ndarray]:
    """Per-point parameter arrays (point,) for IGBP classes ``pfts``; units as in :class:`PFTParams`."""
    known = {p: PFT_PARAMS[resolve_pft(p)] for p in dict.fromkeys(pfts)}  # one warning per unknown class
    table = [known[p] for p in pfts]
    return {f.name: np.array([getattr(t, f.name) for t in table], dtype=float) for f in fields(PFTParams)}


def _ramp(x: np.ndarray, lo: np.ndarray | float, hi: np.ndarray | float) -> np.ndarray:
    """0 at ``lo``, 1 at ``hi``, linear in between, clipped (units of ``x``; ``hi <= lo`` gives 1)."""
    span = np.asarray(hi, dtype=float) - lo
    safe = np.where(span > 0, span, 1.0)
    return np.where(span > 0, np.clip((x - lo) / safe, 0.0, 1.0), 1.0)


def trailing_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Mean over the trailing ``window`` time steps (axis 0; shorter at the start), units of ``x``."""
    c = np.cumsum(np.concatenate([np.zeros((1, *x.shape[1:])), x]), axis=0)
    n = np.minimum(np.arange(1, x.shape[0] + 1), window)
    idx = np.arange(1, x.shape[0] + 1)
    return (c[idx] - c[idx - n]) / n.reshape(-1, *([1] * (x.ndim - 1)))


def fapar(weather: Weather, prm: dict[str, np.ndarray]) -> np.ndarray:
    """fAPAR (time, point), 0..1, from the growing-season-index phenology in the module docstring."""
    gsi = (
        _ramp(weather.tair, prm["phen_t_lo"], prm["phen_t_hi"])
        * _ramp(weather.daylength, 10.0, 11.0)
        * _ramp(weather.wai, prm["phen_wai_lo"], prm["phen_wai_hi"])
    )
    gsi = trailing_mean(gsi, GSI_WINDOW)
    return prm["fapar_max"] * (prm["evergreen"] + (1.0 - prm["evergreen"]) * gsi)


def gross_primary_production(weather: Weather, prm: dict[str, np.ndarray], fpar: np.ndarray) -> np.ndarray:
    """GPP (time, point), g C m-2 d-1, from weather, parameters and fAPAR (module docstring)."""
    par = PAR_FRACTION * weather.rg * SECONDS_PER_DAY / 1e6  # MJ m-2 d-1
    t = weather.tair
    f_t = (
        1.0
        / (1.0 + np.exp(-(t - prm["t_cold"]) / 2.0))
        * np.exp(-((np.maximum(t - prm["t_opt"], 0) / 10) ** 2))
    )
    f_vpd = np.exp(-prm["k_vpd"] * np.maximum(weather.vpd - prm["vpd0"], 0.0))
    f_w = _ramp(weather.wai, 0.05, np.where(prm["wai_crit"] > 0.05, prm["wai_crit"], 0.0))
    return prm["lue"] * fpar * par * f_t * f_vpd * f_w


def basal_respiration_factor(weather: Weather, prm: dict[str, np.ndarray]) -> np.ndarray:
    """Temperature x moisture factor of the basal respiration (time, point), dimensionless."""
    g_w = 0.35 + 0.65 * _ramp(weather.wai, 0.0, 0.6 * prm["wai_crit"])
    return prm["q10"] ** ((weather.tair - T_REF) / 10.0) * g_w


@dataclass
class Fluxes:
    """True daily fluxes (time, point), g C m-2 d-1, NEE positive = source; fAPAR dimensionless.

    ``r_ref`` (point,) g C m-2 d-1 at 15 degC; ``sink_fraction`` (point,) dimensionless.
    """

    dates: pd.DatetimeIndex
    gpp: np.ndarray
    reco: np.ndarray
    nee: np.ndarray
    fapar: np.ndarray
    r_ref: np.ndarray
    sink_fraction: np.ndarray

    def select(self, start: str | pd.Timestamp, end: str | pd.Timestamp) -> Fluxes:
        """The fluxes for dates ``start..end`` (inclusive)."""
        keep = (self.dates >= pd.Timestamp(start)) & (self.dates <= pd.Timestamp(end))
        return Fluxes(
            self.dates[keep],
            self.gpp[keep],
            self.reco[keep],
            self.nee[keep],
            self.fapar[keep],
            self.r_ref,
            self.sink_fraction,
        )


def ecosystem_fluxes(weather: Weather, pfts: Sequence[str], r_ref: np.ndarray, sink: np.ndarray) -> Fluxes:
    """GPP, Reco and NEE (g C m-2 d-1) for ``weather`` and ``pfts`` given ``r_ref`` (g C m-2 d-1).

    ``sink`` (dimensionless) is only carried along for the record.
    """
    prm = parameter_arrays(pfts)
    fpar = fapar(weather, prm)
    gpp = gross_primary_production(weather, prm, fpar)
    reco = r_ref * basal_respiration_factor(weather, prm) + prm["k_gpp"] * trailing_mean(
        gpp, RECENT_GPP_WINDOW
    )
    return Fluxes(weather.dates, gpp, reco, reco - gpp, fpar, r_ref, sink)


def sink_fractions(pfts: Sequence[str], weather: Weather) -> np.ndarray:
    """Long-term ``-NEE/GPP`` per point: PFT value times a smooth location factor in 0.2..1.8."""
    base = parameter_arrays(pfts)["sink_fraction"]
    return base * np.clip(1.0 + 0.5 * weather.static["sink"], 0.2, 1.8)


def diagnose_r_ref(
    lat: np.ndarray,
    lon: np.ndarray,
    pfts: Sequence[str],
    seed: int,
    sink_scale: float = DEFAULT_SINK_SCALE,
) -> tuple[np.ndarray, np.ndarray]:
    """``R_ref`` (g C m-2 d-1 at 15 degC) and sink fraction (1) per point from the reference climate.

    The sink fraction is :func:`sink_fractions` times ``sink_scale`` (module docstring). Raises
    ``ValueError`` when the scaled fraction leaves no basal respiration (``R_ref <= 0``) at some point.
    """
    y0, y1 = REFERENCE_YEARS
    weather = generate_weather(lat, lon, f"{y0 - 1}-01-01", f"{y1}-12-31", seed=seed, drought=None)
    prm = parameter_arrays(pfts)
    fpar = fapar(weather, prm)
    ref = weather.dates.year >= y0
    gpp = gross_primary_production(weather, prm, fpar)[ref].mean(axis=0)
    factor = basal_respiration_factor(weather, prm)[ref].mean(axis=0)
    sink = sink_fractions(pfts, weather) * sink_scale
    if sink_scale < 0 or np.any(1.0 - prm["k_gpp"] - sink <= 0):
        raise ValueError(
            f"sink_scale {sink_scale}: expected 0 <= sink_scale and sink fraction x sink_scale < 1 - k_gpp "
            f"at every point (largest scaled sink fraction {float(sink.max()):.3f})"
        )
    r_ref = (1.0 - prm["k_gpp"] - sink) * gpp / np.maximum(factor, 1e-9)
    return r_ref, sink


def simulate_truth(
    lat: np.ndarray,
    lon: np.ndarray,
    pfts: Sequence[str],
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    seed: int = 0,
    drought: DroughtSpec | None = DEFAULT_DROUGHT,
    sink_scale: float = DEFAULT_SINK_SCALE,
) -> tuple[Weather, Fluxes]:
    """Weather (see its units) and true fluxes (g C m-2 d-1) at points for dates ``start..end``.

    ``lat``, ``lon`` in degrees, ``pfts`` IGBP classes; a spin-up year before ``start`` is simulated
    and dropped so phenology and respiration memory do not depend on the start date. ``sink_scale``
    (dimensionless) multiplies the sink fractions (:func:`diagnose_r_ref`).
    """
    lat = np.atleast_1d(np.asarray(lat, dtype=float))
    lon = np.atleast_1d(np.asarray(lon, dtype=float))
    pfts = list(pfts)
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    r_ref, sink = diagnose_r_ref(lat, lon, pfts, seed, sink_scale)
    weather = generate_weather(lat, lon, start - pd.DateOffset(years=1), end, seed=seed, drought=drought)
    fluxes = ecosystem_fluxes(weather, pfts, r_ref, sink)
    return weather.select(start, end), fluxes.select(start, end)


# ---------------------------------------------------------------------------------------------
# comparison with the real monthly fluxes of FLUXNET2015 (CARDAMOM-FluxVal)
# ---------------------------------------------------------------------------------------------


def _seasonal_cycle(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Mean seasonal cycle (site x 12 months, units of ``column``); southern sites shifted 6 months."""
    month = np.where(frame["lat"] < 0, (frame["month"] + 5) % 12 + 1, frame["month"])
    return frame.assign(m=month).pivot_table(index="site", columns="m", values=column, aggfunc="mean")


def _cycle_stats(obs: pd.DataFrame, sim: pd.DataFrame) -> dict[str, float]:
    """Correlation and bias (sim - obs, obs units) of PFT-mean cycles, median per-site correlation."""
    mo, ms = obs.mean(axis=0), sim.mean(axis=0)
    site_r = [
        o.corr(s) for (_, o), (_, s) in zip(obs.iterrows(), sim.iterrows(), strict=True) if o.count() >= 10
    ]
    return {
        "r": float(mo.corr(ms)),
        "bias": float((ms - mo).mean()),
        "obs_mean": float(mo.mean()),
        "sim_mean": float(ms.mean()),
        "site_r_median": float(np.nanmedian(site_r)) if site_r else np.nan,
    }


def compare_with_cardamom(
    data_dir: str | Path, seed: int = 0, sink_scale: float = DEFAULT_SINK_SCALE
) -> pd.DataFrame:
    """Seasonal-cycle agreement of simulated and real monthly GPP and NEE per PFT.

    Reads ``sites/monthly-cardamom/validation_<SITE>.csv`` (monthly GPP, NEE in g C m-2 d-1) for
    the sites listed in ``sites/metadata/siteinfo_fluxnet2015.csv`` (coordinates, IGBP class),
    simulates the truth there for 2001-2014 and keeps the simulated months the record has. Per PFT:
    ``n_sites``; for ``gpp`` and ``nee``: Pearson ``r`` and mean ``bias`` (sim - obs, g C m-2 d-1)
    of the PFT-mean seasonal cycle (southern sites shifted by six months), the obs and sim means,
    and the median per-site ``r`` (sites with 10+ months of cycle). Row ``ALL``: every site.
    ``sink_scale``: the truth's (dimensionless, :func:`diagnose_r_ref`); towers with a representativeness
    factor ``k`` are compared with ``sink_scale * k``.
    """
    data_dir = Path(data_dir)
    info = pd.read_csv(data_dir / "sites/metadata/siteinfo_fluxnet2015.csv").set_index("sitename")
    records = []
    for path in sorted((data_dir / "sites/monthly-cardamom").glob("validation_*.csv")):
        site = path.stem.removeprefix("validation_")
        if site in info.index:
            rec = pd.read_csv(path, usecols=["Date", "GPP", "NEE"]).assign(site=site)
            records.append(rec)
    obs = pd.concat(records, ignore_index=True)
    obs = obs.assign(year=obs["Date"] // 100, month=obs["Date"] % 100)
    sites = info.loc[obs["site"].unique()]
    y0, y1 = int(obs["year"].min()), int(obs["year"].max())
    _, fl = simulate_truth(
        sites["lat"],
        sites["lon"],
        sites["classid"],
        f"{y0}-01-01",
        f"{y1}-12-31",
        seed,
        sink_scale=sink_scale,
    )
    monthly = []
    for name, values in (("GPP", fl.gpp), ("NEE", fl.nee)):
        m = pd.DataFrame(values, index=fl.dates, columns=sites.index).resample("MS").mean().stack()
        monthly.append(m.rename(name))
    sim = pd.concat(monthly, axis=1).rename_axis(["time", "site"]).reset_index()
    sim = sim.assign(year=sim["time"].dt.year, month=sim["time"].dt.month)
    both = obs.merge(sim, on=["site", "year", "month"], suffixes=("_obs", "_sim")).dropna()
    both = both.assign(
        lat=sites.loc[both["site"], "lat"].to_numpy(), pft=sites.loc[both["site"], "classid"].to_numpy()
    )
    rows = []
    groups = [*both.groupby("pft"), ("ALL", both)]
    for pft, grp in groups:
        row: dict[str, float | str | int] = {"pft": pft, "n_sites": grp["site"].nunique()}
        for var in ("GPP", "NEE"):
            stats = _cycle_stats(_seasonal_cycle(grp, f"{var}_obs"), _seasonal_cycle(grp, f"{var}_sim"))
            row.update({f"{var.lower()}_{k}": v for k, v in stats.items()})
        rows.append(row)
    return pd.DataFrame(rows).set_index("pft")
