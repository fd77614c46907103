"""One site's half-hourly data -> QC, u* filtering, gap filling, partitioning, uncertainty, daily sums.

:func:`process_site` runs the steps in order; a step that cannot run (no night-time data, no
radiation, too few records for the u* test...) is reported in ``attrs['steps']`` with its reason and
the later steps run with what is available (for example without u* filtering, or without day-time
partitioning). Nothing is invented: values that cannot be filled stay NaN with quality flag 9.

Input: a frame indexed by period start (local standard time, as :func:`read_halfhourly` returns) with
canonical columns: NEE (umol m-2 s-1), Rg (W m-2), Tair (degC), VPD (hPa) or rH (%), Ustar (m s-1),
optionally LE, H (W m-2), Tsoil (degC) and quality flags ``<var>_qc`` (0 good, 1 medium, 2 bad).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from fluxcube.sites import qc
from fluxcube.sites.common import StepError, day_number
from fluxcube.sites.gapfill import QC_MEASURED, mds_gapfill
from fluxcube.sites.met import potential_radiation, vpd_from_rh
from fluxcube.sites.partition import daytime_partition, nighttime_partition
from fluxcube.sites.timestamps import regular_grid
from fluxcube.sites.uncertainty import daily_means, daily_sums, monthly_from_daily, random_uncertainty
from fluxcube.sites.ustar import UstarResult, low_turbulence, ustar_threshold

log = logging.getLogger(__name__)

NIGHT_RG = 10.0  # W m-2: night when Rg is below this and the sun is below the horizon
DESPIKE_NIGHT_RG = 20.0  # W m-2: day/night split for despiking (Papale et al. 2006)
FILLED_VARIABLES = ("NEE", "LE", "H")
CARBON = ("NEE", "GPP", "Reco")  # carbon fluxes: umol CO2 m-2 s-1 half-hourly, g C m-2 d-1 daily
SCENARIOS = {"p05": "U05", "p50": "U50", "p95": "U95"}  # u* bootstrap percentile -> column tag
MET_VARIABLES = ("Rg", "Tair", "VPD", "Tsoil")
UNITS = {
    "NEE": "umol m-2 s-1",
    "GPP": "umol m-2 s-1",
    "Reco": "umol m-2 s-1",
    "LE": "W m-2",
    "H": "W m-2",
    "Rg": "W m-2",
    "Rpot": "W m-2",
    "Tair": "degC",
    "Tsoil": "degC",
    "VPD": "hPa",
    "rH": "%",
    "Ustar": "m s-1",
}


def process_site(
    df: pd.DataFrame,
    lat: float,
    lon: float,
    utc_offset: float,
    *,
    temperature: str = "Tair",
    ustar_column: str = "threshold",
    despike_z: float | None = 4.0,
    ustar_bootstrap: int = 100,
    ustar_seasonal: bool = False,
    ustar_scenarios: bool = True,
    scenario_daytime: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Process one site; return (half-hourly frame with products and flags, daily frame).

    ``lat``/``lon`` degrees, ``utc_offset`` hours east of UTC of the index's clock; ``temperature``
    the variable for respiration (``Tair`` or ``Tsoil``); ``ustar_column`` which u* threshold filters
    (``threshold`` the estimate on all data, or the bootstrap ``p05``/``p50``/``p95``); ``despike_z``
    None to skip despiking; ``ustar_seasonal`` filters each season with its own threshold instead of
    its year's (REddyProc's seasonal map); ``ustar_scenarios`` adds the u* scenarios U05, U50, U95 (the
    5/50/95 % bootstrap thresholds): gap-filled NEE ``NEE_U05_f`` (with ``_fqc``) and its night-time
    partitioning ``GPP_U05_NT``, ``Reco_U05_NT``, with ``scenario_daytime`` also its day-time
    partitioning ``GPP_U05_DT``, ``Reco_U05_DT`` (about 0.1 s CPU per scenario and site-year; only
    where the main day-time partitioning ran), and their daily sums. ``attrs['steps']`` maps each
    step to ``"ok"`` or the reason it failed, ``attrs['ustar']`` holds the annual thresholds,
    ``attrs['ustar_seasonal']`` the seasonal ones and ``attrs['units']`` the units of every column.
    """
    hh = regular_grid(df.sort_index())
    hh.attrs = {}
    steps: dict[str, str] = {}
    info: dict[str, Any] = {"lat": lat, "lon": lon, "utc_offset": utc_offset}
    time = pd.DatetimeIndex(hh.index)

    def run(name: str, fn: Callable[[], object]) -> None:
        try:
            fn()
            steps.setdefault(name, "ok")
        except StepError as err:
            steps[name] = f"failed: {err.message}"
        except Exception as err:  # keep the other steps running, but say what broke
            log.exception("site step %s", name)
            steps[name] = f"failed: unexpected {type(err).__name__}: {err}"

    if "VPD" not in hh and {"Tair", "rH"} <= set(hh.columns):
        hh["VPD"] = vpd_from_rh(hh["Tair"].to_numpy(), hh["rH"].to_numpy())
    hh["Rpot"] = potential_radiation(time, lat, lon, utc_offset)
    rg = hh["Rg"].to_numpy(float) if "Rg" in hh else None
    night = (hh["Rpot"].to_numpy() <= 0) & (np.nan_to_num(rg, nan=0.0) < NIGHT_RG if rg is not None else True)
    hh["night"] = night
    if rg is None:
        steps["radiation"] = "failed: no Rg column; night from potential radiation, MDS without Rg"

    run("qc", lambda: _quality_control(hh, time, despike_z))
    nee_qc = hh["NEE"].to_numpy(float, copy=True) if "NEE" in hh else None  # before u* filtering
    thresholds: dict[str, UstarResult] = {}
    run(
        "ustar",
        lambda: _ustar(hh, time, night, ustar_column, ustar_bootstrap, ustar_seasonal, info, thresholds),
    )
    run("gapfill", lambda: _gapfill(hh))
    run("uncertainty", lambda: _uncertainty(hh))
    run("partition_nighttime", lambda: _nighttime(hh, time, night, temperature, info))
    run("partition_daytime", lambda: _daytime(hh, time, temperature))
    if ustar_scenarios:
        run(
            "ustar_scenarios",
            lambda: _scenarios(
                hh,
                time,
                night,
                nee_qc,
                thresholds.get("result"),
                ustar_seasonal,
                temperature,
                scenario_daytime,
            ),
        )
    daily = pd.DataFrame()

    def aggregate() -> None:
        nonlocal daily
        daily = _daily(hh, time)

    run("daily", aggregate)
    hh.attrs.update(steps=steps, units={c: u for c, u in _units(hh.columns).items()}, **info)
    daily.attrs.update(steps=steps, units=_daily_units(daily.columns), **info)
    return hh, daily


# --------------------------------------------------------------------------- steps
def _quality_control(hh: pd.DataFrame, time: pd.DatetimeIndex, despike_z: float | None) -> None:
    for name in (*FILLED_VARIABLES, *MET_VARIABLES, "Ustar"):
        if name not in hh:
            continue
        flags = [qc.plausibility_flag(name, hh[name].to_numpy())]
        if f"{name}_qc" in hh:
            flags.append(np.nan_to_num(hh[f"{name}_qc"].to_numpy(float), nan=qc.FLAG_GOOD))
        hh[f"{name}_flag"] = qc.combine_flags(*flags)
        hh[name] = qc.apply_flag(hh[name].to_numpy(), hh[f"{name}_flag"].to_numpy())
    if "NEE" not in hh:
        raise StepError("qc", "no NEE column")
    if despike_z is not None:
        is_day = (
            np.nan_to_num(hh["Rg"].to_numpy(float), nan=0.0) >= DESPIKE_NIGHT_RG
            if "Rg" in hh
            else (hh["Rpot"].to_numpy() > 0)
        )
        spikes = qc.despike(hh["NEE"].to_numpy(), is_day, day_number(time), z=despike_z)
        hh["NEE_spike"] = spikes
        hh.loc[spikes, "NEE"] = np.nan
        hh.loc[spikes, "NEE_flag"] = qc.FLAG_BAD


def _ustar(
    hh: pd.DataFrame,
    time: pd.DatetimeIndex,
    night: np.ndarray,
    column: str,
    n_boot: int,
    seasonal: bool,
    info: dict[str, Any],
    out: dict[str, UstarResult],
) -> None:
    hh["NEE_ustar_flag"] = np.zeros(len(hh), np.int8)
    missing = [c for c in ("NEE", "Ustar", "Tair") if c not in hh]
    if missing:
        raise StepError("ustar", f"no {', '.join(missing)} column: NEE not u*-filtered")
    res = ustar_threshold(
        time, hh["NEE"].to_numpy(), hh["Ustar"].to_numpy(), hh["Tair"].to_numpy(), night, n_boot=n_boot
    )
    out["result"] = res
    info["ustar"] = res.annual.reset_index().to_dict(orient="list")
    info["ustar_seasonal"] = res.seasonal.to_dict(orient="list")
    info["ustar_notes"] = res.notes  # years without a threshold are not filtered
    threshold = res.per_record(time, column, seasonal)
    hh["ustar_threshold"] = threshold
    low = low_turbulence(hh["Ustar"].to_numpy(), night, np.where(np.isfinite(threshold), threshold, -np.inf))
    hh["NEE_ustar_flag"] = low.astype(np.int8) * qc.FLAG_BAD
    hh.loc[low, "NEE"] = np.nan


def _drivers(hh: pd.DataFrame, name: str) -> dict[str, np.ndarray | None]:
    """Measured Rg (W m-2), Tair (degC), VPD (hPa) as MDS conditions for ``name`` (never itself)."""
    return {k: hh[k].to_numpy(float) if k in hh and k != name else None for k in ("Rg", "Tair", "VPD")}


def _gapfill(hh: pd.DataFrame) -> None:
    if "NEE" not in hh:
        raise StepError("gapfill", "no NEE column")
    for name in (*MET_VARIABLES, *FILLED_VARIABLES):
        if name not in hh:
            continue
        d = _drivers(hh, name)
        res = mds_gapfill(hh[name].to_numpy(float), d["Rg"], d["Tair"], d["VPD"])
        hh[f"{name}_f"] = res.filled
        hh[f"{name}_fqc"] = res.qc
        hh[f"{name}_fsd"] = res.sd
        hh[f"{name}_fmeth"] = res.method
        hh[f"{name}_fwin"] = res.window


def _uncertainty(hh: pd.DataFrame) -> None:
    need = [c for c in ("NEE", "Rg", "Tair", "VPD") if c not in hh]
    if need:
        raise StepError("uncertainty", f"no {', '.join(need)} column")
    sigma = random_uncertainty(*(hh[c].to_numpy(float) for c in ("NEE", "Rg", "Tair", "VPD")))
    hh["NEE_randunc"] = sigma
    if "NEE_fsd" in hh:
        hh["NEE_unc"] = np.where(hh["NEE_fqc"].to_numpy() == QC_MEASURED, sigma, hh["NEE_fsd"].to_numpy())


def _partition_inputs(hh: pd.DataFrame, temperature: str, step: str) -> tuple[np.ndarray, np.ndarray]:
    if "NEE_f" not in hh:
        raise StepError(step, "no gap-filled NEE (gap filling failed)")
    if f"{temperature}_f" not in hh:
        raise StepError(step, f"no gap-filled {temperature}")
    use = (hh["NEE_fqc"].to_numpy() == QC_MEASURED) & (hh[f"{temperature}_fqc"].to_numpy() == QC_MEASURED)
    return use, hh[f"{temperature}_f"].to_numpy()


def _nighttime(
    hh: pd.DataFrame, time: pd.DatetimeIndex, night: np.ndarray, temperature: str, info: dict[str, Any]
) -> None:
    use, temp = _partition_inputs(hh, temperature, "night-time partitioning")
    res = nighttime_partition(time, hh["NEE_f"].to_numpy(), use, temp, night)
    hh["Reco_NT"], hh["GPP_NT"], hh["E0_NT"], hh["Rref_NT"] = res.reco, res.gpp, res.e0, res.rref
    info["partition_nighttime_notes"] = res.notes


def _daytime(hh: pd.DataFrame, time: pd.DatetimeIndex, temperature: str) -> None:
    use, temp = _partition_inputs(hh, temperature, "day-time partitioning")
    for c in ("Rg_f", "VPD_f"):
        if c not in hh:
            raise StepError("day-time partitioning", f"no {c[:-2]}: the light response needs it")
    res = daytime_partition(
        time,
        hh["NEE_f"].to_numpy(),
        use,
        temp,
        hh["VPD_f"].to_numpy(),
        hh["Rg_f"].to_numpy(),
        hh["Rpot"].to_numpy(),
        sigma=hh["NEE_unc"].to_numpy() if "NEE_unc" in hh else None,  # for REddyProc's beta0 prior
    )
    hh["Reco_DT"], hh["GPP_DT"] = res.reco, res.gpp


def _scenarios(
    hh: pd.DataFrame,
    time: pd.DatetimeIndex,
    night: np.ndarray,
    nee_qc: np.ndarray | None,
    res: UstarResult | None,
    seasonal: bool,
    temperature: str,
    daytime: bool = True,
) -> None:
    """u* scenarios: NEE filtered with the 5/50/95 % bootstrap thresholds, MDS-filled (umol m-2 s-1),
    and partitioned by the night-time and (``daytime``) the day-time method. The day-time fit's beta0
    prior uses the scenario's own uncertainty: the random uncertainty where measured, the scenario's
    MDS SD where filled (as ``NEE_unc`` for the main products). A scenario whose day-time fit fails
    keeps its night-time products; the step then reports the failure."""
    if res is None or nee_qc is None:
        raise StepError("u* scenarios", "no u* thresholds (u* step failed)")
    d = _drivers(hh, "NEE")
    ustar = hh["Ustar"].to_numpy(float)
    temp_ok = f"{temperature}_f" in hh
    failed: list[str] = []
    for column, tag in SCENARIOS.items():
        threshold = res.per_record(time, column, seasonal)
        if not np.isfinite(threshold).any():
            raise StepError("u* scenarios", f"no {column} threshold (too few bootstrap estimates)")
        low = low_turbulence(ustar, night, np.where(np.isfinite(threshold), threshold, -np.inf))
        gf = mds_gapfill(np.where(low, np.nan, nee_qc), d["Rg"], d["Tair"], d["VPD"])
        hh[f"ustar_threshold_{tag}"] = threshold
        hh[f"NEE_{tag}_f"], hh[f"NEE_{tag}_fqc"] = gf.filled, gf.qc
        if temp_ok:
            use = (gf.qc == QC_MEASURED) & (hh[f"{temperature}_fqc"].to_numpy() == QC_MEASURED)
            temp = hh[f"{temperature}_f"].to_numpy()
            nt = nighttime_partition(time, gf.filled, use, temp, night)
            hh[f"Reco_{tag}_NT"], hh[f"GPP_{tag}_NT"] = nt.reco, nt.gpp
            if daytime and "Reco_DT" in hh:  # only where the main day-time partitioning could run
                sigma = None
                if "NEE_randunc" in hh:
                    sigma = np.where(gf.qc == QC_MEASURED, hh["NEE_randunc"].to_numpy(), gf.sd)
                try:
                    dt = daytime_partition(
                        time,
                        gf.filled,
                        use,
                        temp,
                        hh["VPD_f"].to_numpy(),
                        hh["Rg_f"].to_numpy(),
                        hh["Rpot"].to_numpy(),
                        sigma=sigma,
                    )
                except StepError as err:
                    failed.append(f"{tag} day-time: {err.message}")
                    continue
                hh[f"Reco_{tag}_DT"], hh[f"GPP_{tag}_DT"] = dt.reco, dt.gpp
    if failed:
        raise StepError("u* scenarios", "; ".join(failed))


def _daily(hh: pd.DataFrame, time: pd.DatetimeIndex) -> pd.DataFrame:
    if "NEE_f" not in hh:
        raise StepError("daily", "no gap-filled NEE")
    nee = daily_sums(
        time,
        hh["NEE_f"].to_numpy(),
        hh["NEE_unc"].to_numpy() if "NEE_unc" in hh else None,
        hh["NEE_fqc"].to_numpy() != QC_MEASURED,
    )
    out = nee.rename(columns={"value": "NEE", "sigma": "NEE_unc", "frac_filled": "NEE_frac_filled"})
    scenario = [f"{v}_{tag}" for tag in SCENARIOS.values() for v in ("NEE", "GPP", "Reco")]
    for c in ("GPP_NT", "Reco_NT", "GPP_DT", "Reco_DT", *scenario):
        for col in (c, f"{c}_f", f"{c}_NT", f"{c}_DT"):
            if col in hh:
                out[col.removesuffix("_f")] = daily_sums(time, hh[col].to_numpy())["value"]
    for c in ("LE_f", "H_f", "Rg_f", "Tair_f", "VPD_f", "Tsoil_f"):
        if c in hh:
            out[c[:-2]] = daily_means(time, hh[c].to_numpy())
    return out


def monthly_products(daily: pd.DataFrame) -> pd.DataFrame:
    """Monthly means of the daily products (index: first day of the month, local calendar).

    Carbon fluxes (NEE, GPP, Reco, scenarios) in g C m-2 d-1 as the mean over the month's complete days;
    ``NEE_unc`` = sqrt(sum sigma_d^2) / n_days (g C m-2 d-1, independent daily errors);
    ``NEE_frac_filled`` the mean gap-filled fraction (0..1); ``NEE_n_days`` the number of complete
    days (a month with fewer days than the calendar has is a mean over the days present);
    meteorology (Rg W m-2, Tair degC, VPD hPa, LE and H W m-2) monthly means of daily means.
    ``attrs['units']`` gives every column's unit.
    """
    if "NEE" not in daily:
        raise StepError("monthly", "no daily NEE")
    parts = {"value": daily["NEE"]}
    if "NEE_unc" in daily:
        parts["sigma"] = daily["NEE_unc"]
    if "NEE_frac_filled" in daily:
        parts["frac_filled"] = daily["NEE_frac_filled"]
    nee = monthly_from_daily(pd.DataFrame(parts))
    out = nee.rename(
        columns={"value": "NEE", "sigma": "NEE_unc", "frac_filled": "NEE_frac_filled", "n_days": "NEE_n_days"}
    )
    for c in daily.columns:
        if c in out or c in parts or c.endswith(("_unc", "frac_filled")):
            continue
        if c.split("_")[0] in CARBON or c in UNITS:
            out[c] = monthly_from_daily(pd.DataFrame({"value": daily[c]}))["value"]
    out.attrs = {"units": {**_daily_units(out.columns), "NEE_n_days": "1"}}
    return out


def _units(columns: pd.Index) -> dict[str, str]:
    out = {}
    for c in columns:
        base = str(c).split("_")[0]
        if str(c).endswith(("_fqc", "_flag", "_fmeth")) or c in ("night", "NEE_spike"):
            out[c] = "1"
        elif str(c).endswith("_fwin"):
            out[c] = "d"
        elif str(c).startswith("E0"):
            out[c] = "K"
        elif str(c).startswith("ustar_threshold"):
            out[c] = "m s-1"
        elif base in UNITS:
            out[c] = UNITS[base]
    return out


def _daily_units(columns: pd.Index) -> dict[str, str]:
    """Daily units: carbon fluxes (NEE, GPP, Reco and their uncertainty, scenarios) g C m-2 d-1."""
    return {
        c: "1"
        if c.endswith("frac_filled")
        else ("g m-2 d-1" if c.split("_")[0] in CARBON else UNITS.get(c, ""))
        for c in columns
    }
