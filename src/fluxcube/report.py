"""Figures that come with published products (PNG files for people to look at)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def site_report(target: str, out_dir: Path) -> list[Path]:
    """Daily NEE time series and mean seasonal cycles of every site in ``fluxnet2015_dd``.

    NEE in g C m-2 d-1, positive = source. Returns the paths of the figures written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fluxcube.publish import Publisher

    pub = Publisher(target)
    if "fluxnet2015_dd" not in pub.names():
        return []
    ds = pub.open("fluxnet2015_dd")
    if "NEE_VUT_REF" not in ds:
        return []
    nee = ds["NEE_VUT_REF"].load()
    out_dir.mkdir(parents=True, exist_ok=True)
    sites = [str(s) for s in nee["site"].values]
    fig, axes = plt.subplots(len(sites) + 1, 1, figsize=(11, 1.7 * len(sites) + 3), constrained_layout=True)
    for ax, site in zip(axes[:-1], sites, strict=True):
        series = nee.sel(site=site)
        label = f"{site} ({ds['igbp'].sel(site=site).item()}, {float(ds['lat'].sel(site=site)):.1f} N)"
        ax.plot(series["time"].values, series.values, lw=0.4, color="0.6")
        ax.plot(
            series["time"].values,
            series.rolling(time=30, center=True, min_periods=10).mean().values,
            lw=1.2,
            color="C0",
        )
        ax.axhline(0, color="k", lw=0.5)
        ax.set_ylabel("g C m$^{-2}$ d$^{-1}$", fontsize=8)
        ax.set_title(f"{label}: daily NEE (grey) and 30-day mean", fontsize=9, loc="left")
        cycle = series.groupby("time.month").mean()
        axes[-1].plot(cycle["month"].values, cycle.values, marker="o", label=label)
    axes[-1].axhline(0, color="k", lw=0.5)
    axes[-1].set_xticks(np.arange(1, 13))
    axes[-1].set_xlabel("month")
    axes[-1].set_ylabel("g C m$^{-2}$ d$^{-1}$", fontsize=8)
    axes[-1].set_title("Mean seasonal cycle of NEE (NEE_VUT_REF; positive = source)", fontsize=9, loc="left")
    axes[-1].legend(fontsize=7, ncol=2)
    path = out_dir / "fluxnet2015_dd_nee.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
