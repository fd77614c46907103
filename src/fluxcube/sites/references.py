"""Published FLUXNET2015 / ONEFlux products as independent references for site processing.

ONEFlux (the FLUXNET2015 pipeline) gap-fills NEE by MDS and partitions it with the night-time
(Reichstein et al. 2005) and day-time (Lasslop et al. 2010) methods, with variable u* thresholds
(VUT). Its products for a site-year come in two forms here:

- PLUMBER2 netCDF pairs (``<SITE>_<y0>-<y1>_FLUXNET2015_<Flux|Met>.nc``), half-hourly, read through
  :func:`fluxcube.recipes.fluxnet.read_plumber_file`: ``NEE`` = NEE_VUT_REF with ``NEE_qc`` (0 measured
  and kept by ONEFlux's QC and u* filter, 1-3 MDS quality), ``GPP`` = GPP_NT_VUT_REF, ``Resp`` =
  RECO_NT_VUT_REF, ``GPP_DT`` = GPP_DT_VUT_REF; drivers TA_F_MDS (K), SW_IN_F_MDS, VPD_F_MDS, USTAR;
- FLUXNET2015 FULLSET daily CSV (``FLX_<SITE>_FLUXNET2015_FULLSET_DD_...``): NEE_VUT_REF,
  GPP_NT_VUT_REF, RECO_NT_VUT_REF, GPP_DT_VUT_REF, RECO_DT_VUT_REF in g C m-2 d-1.

:func:`plumber_site` turns a pair into the input of :func:`~fluxcube.sites.process_site` (the records
ONEFlux measured and kept, nothing it filled) and the reference products; :func:`compare` lines up
fluxcube's products with the references (RMSE, bias, Pearson r, n). Units: half-hourly fluxes
umol CO2 m-2 s-1, daily g C m-2 d-1, NEE positive = source.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fluxcube.errors import InputError
from fluxcube.recipes.fluxnet import classify, read_csv_file, read_plumber_file
from fluxcube.sites.gapfill import QC_MEASURED
from fluxcube.sites.uncertainty import daily_sums

KELVIN = 273.15
#: reference product -> (PLUMBER variable, fluxcube half-hourly column)
PLUMBER_PRODUCTS = {
    "NEE": ("NEE", "NEE_f"),
    "GPP_NT": ("GPP", "GPP_NT"),
    "Reco_NT": ("Resp", "Reco_NT"),
    "GPP_DT": ("GPP_DT", "GPP_DT"),
}
#: fluxcube daily column -> FLUXNET2015 FULLSET daily column
FLUXNET_DAILY = {
    "NEE": "NEE_VUT_REF",
    "GPP_NT": "GPP_NT_VUT_REF",
    "Reco_NT": "RECO_NT_VUT_REF",
    "GPP_DT": "GPP_DT_VUT_REF",
    "Reco_DT": "RECO_DT_VUT_REF",
}


@dataclass
class ReferenceSite:
    """One site-year of ONEFlux output. ``inputs``: canonical columns for
    :func:`~fluxcube.sites.process_site` (NEE umol m-2 s-1 where ONEFlux measured and kept it, else
    NaN; Rg W m-2; Tair degC; VPD hPa; Ustar m s-1 where measured); ``halfhourly``: the reference
    products (columns of :data:`PLUMBER_PRODUCTS`, umol m-2 s-1) and ``NEE_qc``; both indexed by
    period start in local standard time. ``lat``/``lon`` degrees from the file.
    """

    site: str
    inputs: pd.DataFrame
    halfhourly: pd.DataFrame
    lat: float
    lon: float


def plumber_site(flux_file: str, met_file: str) -> ReferenceSite:
    """Read a PLUMBER2 Flux/Met pair (module docstring); :class:`InputError` names file and variable."""
    tables = []
    for path in (flux_file, met_file):
        src = classify(path)
        if src is None or src.kind != "plumber":
            raise InputError(
                path, "not a PLUMBER2 file name: expected <SITE>_<y0>-<y1>_FLUXNET2015_<Flux|Met>.nc"
            )
        tables.append(read_plumber_file(src, 0.0))  # offset 0: keep the files' local standard time
    flux, met = tables
    if flux.site != met.site or not np.array_equal(flux.time, met.time):
        raise InputError(met_file, f"does not match {os.path.basename(flux_file)}: other site or time axis")
    need = {
        flux_file: ("NEE", "NEE_qc", "GPP", "Resp", "GPP_DT", "Ustar"),
        met_file: ("Tair", "SWdown", "VPD"),
    }
    for path, names in need.items():
        cols = flux.columns if path == flux_file else met.columns
        for name in names:
            if name not in cols:
                raise InputError(path, f"no {name} variable: needed for the ONEFlux comparison", column=name)
    f = {k: np.asarray(v, np.float64) for k, v in flux.columns.items()}
    m = {k: np.asarray(v, np.float64) for k, v in met.columns.items()}
    time = pd.DatetimeIndex(flux.time, name="time")
    measured = f["NEE_qc"] == QC_MEASURED
    ustar_ok = f.get("Ustar_qc", np.zeros_like(f["Ustar"])) == 0  # PLUMBER: 0 measured, 5 regression-filled
    inputs = pd.DataFrame(
        {
            "NEE": np.where(measured, f["NEE"], np.nan),
            "Rg": m["SWdown"],
            "Tair": m["Tair"] - KELVIN,
            "VPD": m["VPD"],
            "Ustar": np.where(ustar_ok, f["Ustar"], np.nan),
        },
        index=time,
    )
    products = {name: f[var] for name, (var, _) in PLUMBER_PRODUCTS.items()}
    reference = pd.DataFrame({**products, "NEE_qc": f["NEE_qc"]}, index=time)
    lat, lon = flux.site_attrs.get("latitude"), flux.site_attrs.get("longitude")
    if lat is None or lon is None:
        raise InputError(flux_file, "no latitude/longitude variables", column="latitude")
    return ReferenceSite(flux.site, inputs, reference, float(lat), float(lon))


def fluxnet_daily(path: str) -> pd.DataFrame:
    """The ONEFlux daily products of a FLUXNET2015 FULLSET DD file (g C m-2 d-1), indexed by day,
    with fluxcube's column names (:data:`FLUXNET_DAILY`)."""
    src = classify(path)
    if src is None or src.step != "DD":
        raise InputError(path, "not a FLUXNET2015 daily file name: expected FLX_<SITE>_..._DD_...csv")
    table = read_csv_file(src, None)
    missing = [c for c in FLUXNET_DAILY.values() if c not in table.columns]
    if missing:
        raise InputError(
            path, f"no {', '.join(missing)} column: a FULLSET file carries them", column=missing[0]
        )
    out = pd.DataFrame({ours: table.columns[theirs] for ours, theirs in FLUXNET_DAILY.items()})
    out.index = pd.DatetimeIndex(table.time, name="date")
    return out


def agreement(value: np.ndarray, reference: np.ndarray, mask: np.ndarray | None = None) -> dict[str, float]:
    """RMSE, bias (value - reference, units of the inputs), Pearson r, n and the reference mean over the
    records where both are finite (and ``mask`` is true)."""
    a, b = np.asarray(value, float), np.asarray(reference, float)
    ok = np.isfinite(a) & np.isfinite(b) & (True if mask is None else np.asarray(mask, bool))
    d = a[ok] - b[ok]
    if ok.sum() < 3:
        return {"rmse": np.nan, "bias": np.nan, "r": np.nan, "n": int(ok.sum()), "ref_mean": np.nan}
    return {
        "rmse": float(np.sqrt(np.mean(d**2))),
        "bias": float(np.mean(d)),
        "r": float(np.corrcoef(a[ok], b[ok])[0, 1]),
        "n": int(ok.sum()),
        "ref_mean": float(b[ok].mean()),
    }


def compare(
    hh: pd.DataFrame, daily: pd.DataFrame, ref: ReferenceSite, ref_daily: pd.DataFrame | None = None
) -> pd.DataFrame:
    """fluxcube minus ONEFlux, per product, half-hourly (umol m-2 s-1) and daily (g C m-2 d-1).

    Rows (``product``, ``step``, ``reference``): NEE half-hourly only where ONEFlux gap-filled it
    (``NEE_qc`` > 0; measured records are identical inputs), partitioned fluxes at every record.
    Daily references are the daily sums of the half-hourly PLUMBER values and, when given, the
    FULLSET DD file. Columns ``rmse``, ``bias``, ``r``, ``n``, ``ref_mean``.
    """
    rows = []
    rh = ref.halfhourly.reindex(hh.index)
    gaps = rh["NEE_qc"].to_numpy() > QC_MEASURED
    ref_dd = pd.DataFrame(
        {name: daily_sums(rh.index, rh[name].to_numpy())["value"] for name in PLUMBER_PRODUCTS}
    )
    daily_refs = [(n, f"PLUMBER {var} daily sum", ref_dd[n]) for n, (var, _) in PLUMBER_PRODUCTS.items()]
    if ref_daily is not None:
        daily_refs += [(name, f"FULLSET {col}", ref_daily[name]) for name, col in FLUXNET_DAILY.items()]
    for name, (var, ours) in PLUMBER_PRODUCTS.items():
        if ours in hh:
            mask = gaps if name == "NEE" else None
            rows.append((name, "HH", f"PLUMBER {var}", agreement(hh[ours], rh[name], mask)))
    for name, label, ref in daily_refs:
        if name in daily:
            rows.append((name, "DD", label, agreement(daily[name], ref.reindex(daily.index))))
    return pd.DataFrame([{"product": p, "step": s, "reference": r, **st} for p, s, r, st in rows])
