"""Figures that come with published products (PNG files for people to look at)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

MAX_PANELS = 6


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
    shown = sites[:: max(1, -(-len(sites) // MAX_PANELS))][:MAX_PANELS]
    fig, axes = plt.subplots(len(shown) + 1, 1, figsize=(11, 1.7 * len(shown) + 3), constrained_layout=True)
    for ax, site in zip(axes[:-1], shown, strict=True):
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
    igbp = ds["igbp"].load()
    for pft in sorted(set(igbp.values.tolist())):
        members = nee.where(igbp == pft, drop=True)
        cycle = members.groupby("time.month").mean(dim=["time", "site"])
        axes[-1].plot(
            cycle["month"].values, cycle.values, marker="o", label=f"{pft or '?'} ({members.sizes['site']})"
        )
    axes[-1].axhline(0, color="k", lw=0.5)
    axes[-1].set_xticks(np.arange(1, 13))
    axes[-1].set_xlabel("month")
    axes[-1].set_ylabel("g C m$^{-2}$ d$^{-1}$", fontsize=8)
    axes[-1].set_title(
        f"Mean seasonal cycle of NEE by IGBP class (sites); {len(shown)} of {len(sites)} sites shown above; "
        "positive = source",
        fontsize=9,
        loc="left",
    )
    axes[-1].legend(fontsize=7, ncol=4)
    path = out_dir / "fluxnet2015_dd_nee.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
