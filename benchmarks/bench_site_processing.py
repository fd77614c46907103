"""Benchmark: one site-year (DE-Tha 1998, 17,520 half-hours) through fluxcube's site steps, side by side
with hesseflux 5.0 on the same input, plus the RMSE between the two implementations' outputs.

Steps timed (wall-clock medians of ``--repeat`` runs, CPU seconds beside them):

- u* threshold: moving point test with 100 bootstrap samples (hesseflux ``ustarfilter(nboot=100)``);
- MDS gap filling of u*-filtered NEE (hesseflux ``gapfill``);
- night-time partitioning, Reichstein et al. 2005 (hesseflux ``nee2gpp(method='reichstein')``);
- day-time partitioning, Lasslop et al. 2010 (hesseflux ``nee2gpp(method='lasslop')``).

hesseflux does not run on numpy 2 / pandas 3, so it runs in its own virtual environment (numpy 1.23.5,
pandas 2.2.3, scipy 1.13.1), created under ``--cache-dir`` when missing, or given by
``--hesseflux-python``. When it cannot be had (no network, no venv module) the script says so and
reports fluxcube's figures alone. Both sides get identical inputs: fluxcube's u* threshold and filter,
the same measured NEE, and the same gap-filled drivers for partitioning.

Usage: ``python benchmarks/bench_site_processing.py [--data PATH] [--repeat 5] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from fluxcube.sites.gapfill import mds_gapfill  # noqa: E402
from fluxcube.sites.met import potential_radiation  # noqa: E402
from fluxcube.sites.partition import daytime_partition, nighttime_partition  # noqa: E402
from fluxcube.sites.references import agreement  # noqa: E402
from fluxcube.sites.timestamps import read_halfhourly  # noqa: E402
from fluxcube.sites.uncertainty import random_uncertainty  # noqa: E402
from fluxcube.sites.ustar import low_turbulence, ustar_threshold  # noqa: E402

DE_THA = (50.9636, 13.5669, 1.0)  # lat, lon, UTC offset (FLUXNET BIF)
HESSEFLUX_PINS = ["hesseflux==5.0", "numpy==1.23.5", "pandas==2.2.3", "scipy==1.13.1"]

HESSEFLUX_RUNNER = r"""
import json, sys, time, warnings
import numpy as np, pandas as pd
warnings.simplefilter("ignore")
import hesseflux as hf
inp = np.load(sys.argv[1]); out = sys.argv[2]; repeat = int(sys.argv[3])
idx = pd.to_datetime(inp["time_ns"])
undef = -9999.0

def frame(**cols):
    df = pd.DataFrame(cols, index=idx)
    return df.fillna(undef), df.isna().astype(int)

def timed(fn):
    wall, cpu, res = [], [], None
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        res = fn()
        wall.append(time.perf_counter() - t); cpu.append(time.process_time() - c)
    return res, {"wall": wall, "cpu": cpu}

times = {}
df, ff = frame(USTAR=inp["ustar"], FC=inp["nee_raw"], TA=inp["tair"])
isday = inp["isday"].astype(bool)
(ustars, _), times["ustar"] = timed(
    lambda: hf.ustarfilter(df, flag=ff, isday=isday.copy(), undef=undef, nboot=100))
df, ff = frame(FC=inp["nee"], SW_IN=inp["rg"], TA=inp["tair"], VPD=inp["vpd"])
ff[["SW_IN", "TA", "VPD"]] = 0 * ff[["SW_IN", "TA", "VPD"]]
(filled, fflag), times["mds"] = timed(lambda: hf.gapfill(df, flag=ff, sw_dev=50., ta_dev=2.5, vpd_dev=5.,
                                                         longgap=60, undef=undef, err=False, verbose=0))
df, ff = frame(FC=inp["nee"], TA=inp["tair_f"], SW_IN=inp["rg_f"], VPD=inp["vpd_f"])
nt, times["nighttime"] = timed(lambda: hf.nee2gpp(df, flag=ff, isday=isday.copy(), undef=undef,
                                                  method="reichstein"))
dt, times["daytime"] = timed(
    lambda: hf.nee2gpp(df, flag=ff, isday=isday.copy(), undef=undef, method="lasslop"))
clean = lambda a: np.where(np.asarray(a, float) == undef, np.nan, np.asarray(a, float))
np.savez(out, nee_f=clean(filled["FC"]), nee_fqc=np.asarray(fflag["FC"]), gpp_nt=clean(nt["GPP"]),
         reco_nt=clean(nt["RECO"]), gpp_dt=clean(dt["GPP"]), reco_dt=clean(dt["RECO"]),
         ustar=np.atleast_1d(np.asarray(ustars, float)).ravel())
with open(out + ".json", "w") as f:
    json.dump({"times": times, "versions": {"hesseflux": getattr(hf, "__version__", "?"),
               "numpy": np.__version__, "pandas": pd.__version__}}, f)
"""


def _timed(fn: Callable[[], Any], repeat: int) -> tuple[Any, dict[str, list[float]]]:
    wall, cpu, res = [], [], None
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        res = fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return res, {"wall": wall, "cpu": cpu}


def run_fluxcube(path: Path, repeat: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Time fluxcube's steps on DE-Tha 1998; return (timings, arrays shared with hesseflux)."""
    df = read_halfhourly(path)
    time_idx = df.index
    nee_raw, rg, tair, vpd, ustar = (df[c].to_numpy() for c in ("NEE", "Rg", "Tair", "VPD", "Ustar"))
    rpot = potential_radiation(time_idx, *DE_THA)
    night = (np.nan_to_num(rg) < 10) & (rpot <= 0)
    times: dict[str, Any] = {}
    us, times["ustar"] = _timed(
        lambda: ustar_threshold(time_idx, nee_raw, ustar, tair, night, n_boot=100), repeat
    )
    threshold = float(us.annual.threshold.iloc[0])
    nee = np.where(low_turbulence(ustar, night, threshold), np.nan, nee_raw)
    gf, times["mds"] = _timed(lambda: mds_gapfill(nee, rg, tair, vpd), repeat)
    met = {
        k: mds_gapfill(v, *(None if k == n else d for n, d in (("rg", rg), ("tair", tair), ("vpd", vpd))))
        for k, v in (("rg", rg), ("tair", tair), ("vpd", vpd))
    }
    use = np.isfinite(nee) & (met["tair"].qc == 0)
    unc = np.where(np.isfinite(nee), random_uncertainty(nee, rg, tair, vpd), gf.sd)  # for the beta0 prior
    nt, times["nighttime"] = _timed(
        lambda: nighttime_partition(time_idx, gf.filled, use, met["tair"].filled, night), repeat
    )
    dt, times["daytime"] = _timed(
        lambda: daytime_partition(
            time_idx, gf.filled, use, met["tair"].filled, met["vpd"].filled, met["rg"].filled, rpot, sigma=unc
        ),
        repeat,
    )
    arrays = {
        "time_ns": time_idx.asi8,
        "nee_raw": nee_raw,
        "nee": nee,
        "rg": rg,
        "tair": tair,
        "vpd": vpd,
        "ustar": ustar,
        "isday": (~night).astype(float),
        "tair_f": met["tair"].filled,
        "rg_f": met["rg"].filled,
        "vpd_f": met["vpd"].filled,
        "ours_nee_f": gf.filled,
        "ours_nee_fqc": gf.qc.astype(float),
        "ours_gpp_nt": nt.gpp,
        "ours_reco_nt": nt.reco,
        "ours_gpp_dt": dt.gpp,
        "ours_reco_dt": dt.reco,
    }
    info = {"times": times, "ustar_threshold": threshold, "e0_nighttime": float(nt.e0[0])}
    return info, arrays


def hesseflux_python(cache_dir: Path, given: str | None) -> tuple[str | None, str]:
    """Path of a Python with hesseflux 5.0, creating a venv under ``cache_dir`` if needed."""
    if given:
        return given, "given"
    venv = cache_dir / "venv-hesseflux"
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import hesseflux, numpy; assert numpy.__version__ == '1.23.5'"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return str(python), f"cached {venv}"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *HESSEFLUX_PINS],
            check=True,
            capture_output=True,
            timeout=900,
        )
    except (subprocess.SubprocessError, OSError) as err:
        detail = getattr(err, "stderr", b"") or b""
        return None, f"could not create {venv}: {err} {detail.decode(errors='replace')[-300:]}"
    return str(python), f"created {venv}"


def run_hesseflux(python: str, arrays: dict[str, np.ndarray], repeat: int) -> tuple[dict, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        inp, out, script = Path(tmp, "in.npz"), Path(tmp, "out.npz"), Path(tmp, "run_hesseflux.py")
        np.savez(inp, **{k: v for k, v in arrays.items() if not k.startswith("ours_")})
        script.write_text(HESSEFLUX_RUNNER)
        proc = subprocess.run(
            [python, str(script), str(inp), str(out), str(repeat)], capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise RuntimeError(f"hesseflux run failed:\n{proc.stderr[-2000:]}")
        with open(str(out) + ".json") as f:
            info = json.load(f)
        with np.load(out) as data:
            res = {k: data[k] for k in data.files}
    return info, res


_stats = agreement  # RMSE, bias, r, n of fluxcube minus the other side


def compare(arrays: dict[str, np.ndarray], hf: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """fluxcube minus hesseflux, and day-time minus night-time method within each, umol m-2 s-1."""
    gaps = np.isnan(arrays["nee"])
    return {
        "NEE_f (gaps)": _stats(arrays["ours_nee_f"], hf["nee_f"], gaps),
        "Reco NT": _stats(arrays["ours_reco_nt"], hf["reco_nt"]),
        "GPP NT": _stats(arrays["ours_gpp_nt"], hf["gpp_nt"]),
        "Reco DT": _stats(arrays["ours_reco_dt"], hf["reco_dt"]),
        "GPP DT": _stats(arrays["ours_gpp_dt"], hf["gpp_dt"]),
        "fluxcube Reco DT - NT": _stats(arrays["ours_reco_dt"], arrays["ours_reco_nt"]),
        "hesseflux Reco DT - NT": _stats(hf["reco_dt"], hf["reco_nt"]),
        "fluxcube GPP DT - NT": _stats(arrays["ours_gpp_dt"], arrays["ours_gpp_nt"]),
        "hesseflux GPP DT - NT": _stats(hf["gpp_dt"], hf["gpp_nt"]),
    }


def reference_tables(sites: Path) -> list[tuple[str, str, dict[str, float]]]:
    """The comparisons with independent references quoted in docs/site-processing.md."""
    from fluxcube.sites.pipeline import process_site

    rows: list[tuple[str, str, dict[str, float]]] = []
    cz = read_halfhourly(sites / "halfhourly" / "openeddy_CZ-Lnz_2023.csv")
    kept = ((cz["qc_NEE_forGF_UF"] < 2) & ((cz["NEE"] - cz["NEE_uStar_f"]).abs() < 1e-4)).to_numpy()
    y = np.where(kept, cz["NEE"].to_numpy(), np.nan)
    gf = mds_gapfill(y, *(cz[c].to_numpy() for c in ("Rg", "Tair", "VPD")))
    gap = np.isnan(y)
    ref = cz["NEE_uStar_f"].to_numpy()
    rows.append(("CZ-Lnz", "NEE_f vs NEE_uStar_f (gaps)", _stats(gf.filled, ref, gap)))
    rpot = potential_radiation(cz.index, 48.6816, 16.9463, 1.0)
    night = (cz["Rg"].to_numpy() < 10) & (rpot <= 0)
    tsoil = cz["Tsoil"].to_numpy()
    nt = nighttime_partition(cz.index, gf.filled, kept, tsoil, night, e0=254.0)
    rows.append(("CZ-Lnz", "Reco NT vs Reco_uStar", _stats(nt.reco, cz["Reco_uStar"].to_numpy())))
    rows.append(("CZ-Lnz", "GPP NT vs GPP_uStar_f", _stats(nt.gpp, cz["GPP_uStar_f"].to_numpy())))
    drivers = [cz[c].to_numpy() for c in ("Rg", "Tair", "VPD")]
    unc = np.where(kept, random_uncertainty(y, *drivers), gf.sd)  # NEE uncertainty for the beta0 prior
    dt = daytime_partition(
        cz.index, gf.filled, kept, tsoil, cz["VPD"].to_numpy(), cz["Rg"].to_numpy(), rpot, e0=254.0, sigma=unc
    )
    rows.append(("CZ-Lnz", "Reco DT vs Reco_DT_uStar", _stats(dt.reco, cz["Reco_DT_uStar"].to_numpy())))
    rows.append(("CZ-Lnz", "GPP DT vs GPP_DT_uStar", _stats(dt.gpp, cz["GPP_DT_uStar"].to_numpy())))
    rows += oneflux_tables(sites)
    tha = read_halfhourly(sites / "halfhourly" / "Example_DETha98.txt")
    nee = tha["NEE"].to_numpy()
    hide = np.isfinite(nee) & (np.random.default_rng(0).random(nee.size) < 0.10)
    gf = mds_gapfill(np.where(hide, np.nan, nee), *(tha[c].to_numpy() for c in ("Rg", "Tair", "VPD")))
    rows.append(("DE-Tha", "NEE_f vs hidden 10 % of measured NEE", _stats(gf.filled, nee, hide)))
    hh, daily = process_site(tha, *DE_THA)
    rows.append(("DE-Tha", "mean GPP NT (REddyProc U50: 5.155)", {"value": float(hh["GPP_NT"].mean())}))
    threshold = float(hh.attrs["ustar"]["threshold"][0])
    rows.append(("DE-Tha", "u* threshold (REddyProc 0.416)", {"value": threshold}))
    year = daily[["NEE", "GPP_NT", "Reco_NT", "GPP_DT", "Reco_DT"]].sum()
    rows.append(("DE-Tha", "annual sums g C m-2", {k: float(v) for k, v in year.items()}))
    return rows


def oneflux_tables(sites: Path) -> list[tuple[str, str, dict[str, float]]]:
    """fluxcube minus ONEFlux (PLUMBER2 half-hourly, FULLSET daily) for US-Wi7 and DK-Fou 2005."""
    from fluxcube.sites.pipeline import process_site
    from fluxcube.sites.references import compare, fluxnet_daily, plumber_site

    rows: list[tuple[str, str, dict[str, float]]] = []
    for site, utc_offset in (("DK-Fou", 1.0), ("US-Wi7", -6.0)):
        ref = plumber_site(
            *(str(sites / "plumber" / f"{site}_2005-2005_FLUXNET2015_{p}.nc") for p in ("Flux", "Met"))
        )
        dd = sites / "fluxnet2015" / f"FLX_{site}_FLUXNET2015_FULLSET_DD_2005-2005_1-4.csv"
        hh, daily = process_site(ref.inputs, ref.lat, ref.lon, utc_offset, despike_z=None)
        table = compare(hh, daily, ref, fluxnet_daily(str(dd)) if dd.exists() else None)
        for r in table.itertuples():
            stats = {k: getattr(r, k) for k in ("rmse", "bias", "r", "n", "ref_mean")}
            rows.append((site, f"{r.product} {r.step} vs {r.reference}", stats))
    return rows


def peak_rss_mib() -> tuple[float, float]:
    """Peak resident set size (MiB) of this process and of its finished children (hesseflux)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, children


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default_data = Path(os.environ.get("FLUXCUBE_DATA", ROOT.parent / "shared" / "data"))
    ap.add_argument(
        "--data", type=Path, default=default_data / "sites" / "halfhourly" / "Example_DETha98.txt"
    )
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--hesseflux-python", default=None, help="python of an environment with hesseflux 5.0")
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fluxcube"
    ap.add_argument("--cache-dir", type=Path, default=cache, help="where the hesseflux venv is created")
    ap.add_argument("--no-hesseflux", action="store_true", help="time fluxcube only")
    ap.add_argument("--json", type=Path, default=None, help="write all figures to this file")
    ap.add_argument("--references", action="store_true", help="also print the reference comparisons")
    args = ap.parse_args(argv)
    if not args.data.exists():
        print(f"input not found: {args.data} (set FLUXCUBE_DATA or --data)")
        return 2
    ours, arrays = run_fluxcube(args.data, args.repeat)
    report: dict[str, Any] = {"input": str(args.data), "rows": int(arrays["nee"].size), "fluxcube": ours}
    hf_info = None
    if args.no_hesseflux:
        print("hesseflux: not run (--no-hesseflux)")
    else:
        python, how = hesseflux_python(args.cache_dir, args.hesseflux_python)
        if python is None:
            print(f"hesseflux unavailable: {how}")
            report["hesseflux"] = {"unavailable": how}
        else:
            print(f"hesseflux: {how} ({python})")
            hf_info, hf_out = run_hesseflux(python, arrays, max(1, min(args.repeat, 3)))
            report["hesseflux"] = {
                **hf_info,
                "python": python,
                "how": how,
                "ustar_threshold": hf_out["ustar"].tolist(),
            }
            report["difference_fluxcube_minus_hesseflux"] = compare(arrays, hf_out)
    print(
        f"DE-Tha 1998, {report['rows']} half-hours; u* threshold {ours['ustar_threshold']:.3f} m s-1, "
        f"night-time E0 {ours['e0_nighttime']:.1f} K"
    )
    print(
        f"{'step':<12}{'fluxcube wall s':>17}{'cpu s':>9}{'hesseflux wall s':>18}{'cpu s':>9}"
        f"{'ratio wall':>12}{'ratio cpu':>11}"
    )
    ratios, ratios_cpu = {}, {}
    combined = ("mds", "nighttime", "daytime")  # the brief's criterion: >= 10x hesseflux per site-year
    rows = [(step, (step,)) for step in ("ustar", *combined)] + [("MDS+NT+DT", combined)]
    for label, steps in rows:
        ow, oc = (sum(statistics.median(ours["times"][s][k]) for s in steps) for k in ("wall", "cpu"))
        line = f"{label:<12}{ow:>17.4f}{oc:>9.4f}"
        if hf_info:
            hw, hc = (sum(statistics.median(hf_info["times"][s][k]) for s in steps) for k in ("wall", "cpu"))
            key = "+".join(steps)
            ratios[key], ratios_cpu[key] = hw / ow, hc / oc
            line += f"{hw:>18.3f}{hc:>9.3f}{hw / ow:>11.1f}x{hc / oc:>10.1f}x"
        print(line)
    report["ratios_cpu"] = ratios_cpu
    report["ratios_wall"] = ratios
    if "difference_fluxcube_minus_hesseflux" in report:
        print("fluxcube - hesseflux (umol m-2 s-1):")
        for k, v in report["difference_fluxcube_minus_hesseflux"].items():
            print(f"  {k:<24} RMSE {v['rmse']:.3f}  bias {v['bias']:+.3f}  r {v['r']:.4f}  n {v['n']}")
    if args.references:
        report["references"] = reference_tables(args.data.parents[1])
        print("references (fluxcube - reference, umol m-2 s-1 unless stated):")
        for site, what, st in report["references"]:
            print(f"  {site:<7} {what:<40} " + "  ".join(f"{k} {v:.3f}" for k, v in st.items()))
    own, children = peak_rss_mib()
    report["peak_rss_mib"] = {"fluxcube": own, "hesseflux": children}
    print(
        f"peak RSS: fluxcube process {own:.0f} MiB"
        + (f", hesseflux process {children:.0f} MiB" if hf_info else "")
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
