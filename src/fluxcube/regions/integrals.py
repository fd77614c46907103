"""Monthly regional integrals of the inversions' fire-adjusted land flux, their ensemble mean and range.

Inputs, both from the catalog under one store root:

- ``inversions_gridded_monthly`` (:mod:`fluxcube.recipes.inversions`): ``land_flux_fire_adjusted``
  (member, time, lat, lon), g C m-2 d-1 per m2 of grid cell, monthly means, positive = source;
- ``regions_land_0p5deg`` (:mod:`fluxcube.recipes.regions`): ``region_fraction`` (region, lat, lon) and
  ``cell_area`` (m2, sphere of radius 6371007.2 m).

For every member, region and month (:func:`fluxcube.regions.integrate.regional_integrals`)::

    integral = sum over cells of flux x region_fraction x cell_area x days in month / 1e15   [Pg C month-1]

with ``covered_fraction`` the share of the region's area where the flux has a value. An integral whose
coverage is below :data:`MIN_COVER` is NaN (missing cells count as zero in the sum, so a poorly
covered region would look like a weak flux). Across members: ``land_flux_integral_mean`` and
``land_flux_integral_range`` = max - min (the EC-ATM loss divides by it) over the members with a
value, and ``member_count``; the range needs at least two members. A member without a single
covered month is refused.

The integrals are computed lazily with Dask on the cluster of :mod:`fluxcube.cluster`, one member at a
time (memory: one chunk of the gridded store per task, whatever the period), with a progress bar.
Store ``inversions_regional_monthly`` (member, region, time) with region names and abbreviations as
coordinates and the versions of both input stores in its provenance; a figure per region under
``<target>/reports/``.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from fluxcube.errors import InputError
from fluxcube.publish import Publisher, Release, iter_files
from fluxcube.recipes import inversions, regions
from fluxcube.recipes.fluxnet_pipeline import RunSummary
from fluxcube.regions.integrate import covered_fraction, region_weights, regional_integrals

if TYPE_CHECKING:
    from rich.progress import Progress

log = logging.getLogger(__name__)

RECIPE = "regional-integrals"
RECIPE_VERSION = "1.0.0"
DATASET = "inversions_regional_monthly"
FLUX = inversions.ADJUSTED
MIN_COVER = 0.95  # least share of a region's area with a flux value for its integral to count
FIGURE = "inversions_regional_monthly.png"


@dataclass
class IntegralsSummary(RunSummary):
    """What :func:`run` did: the stores, warnings, and the figures written."""

    figures: list[str] = field(default_factory=list)


def open_inputs(pub: Publisher) -> tuple[xr.Dataset, xr.Dataset, dict[str, str]]:
    """The gridded inversions and the regions (lazy), checked, and the versions of both stores."""
    versions = {}
    opened = {}
    for name, how in (
        (inversions.GRIDDED_DATASET, "run the inversions recipe on GCB2022-layout files, with GFAS first"),
        (regions.DATASET, "run the regions recipe first"),
    ):
        cur = pub.current(name)
        if cur is None:
            raise InputError(pub.dataset(name).url, f"no published {name} store under {pub.root.url} ({how})")
        versions[name] = cur["version"]
        # whole maps per task (a month chunk of one member, 16 stored chunks read in one go): a few large
        # tasks per member instead of hundreds of small ones
        store = pub.store_location(name, cur["version"]).zarr_store(read_only=True)
        gridded = name == inversions.GRIDDED_DATASET
        opened[name] = xr.open_zarr(
            store,
            consolidated=False,
            zarr_format=3,
            chunks={"member": 1, "lat": -1, "lon": -1} if gridded else {},
            drop_variables=["source_file"] if gridded else None,
        )
    flux_ds, reg = opened[inversions.GRIDDED_DATASET], opened[regions.DATASET]
    where = pub.dataset(inversions.GRIDDED_DATASET).url
    if FLUX not in flux_ds:
        raise InputError(where, f"no variable {FLUX}", column=FLUX)
    units = flux_ds[FLUX].attrs.get("units")
    if units != "g C m-2 d-1":
        raise InputError(where, f"{FLUX} units {units!r}, expected 'g C m-2 d-1'", column=FLUX)
    for name in ("region_fraction", "cell_area"):
        if name not in reg:
            raise InputError(pub.dataset(regions.DATASET).url, f"no variable {name}", column=name)
    for axis in ("lat", "lon"):
        a, b = flux_ds[axis].values, reg[axis].values
        if a.shape != b.shape or not np.allclose(a, b, rtol=0, atol=1e-6):
            raise InputError(
                where,
                f"{axis} differs from {regions.DATASET}'s ({a.size} points {a.min():g}..{a.max():g} against "
                f"{b.size} points {b.min():g}..{b.max():g}): the stores must share the 0.5 degree grid",
                column=axis,
            )
    return flux_ds, reg, versions


def compute_integrals(
    flux: xr.DataArray, weights: xr.DataArray, n_workers: int | None = None, progress: Progress | None = None
) -> tuple[xr.DataArray, xr.DataArray]:
    """Integrals (Pg C month-1) and covered fractions (1), (member, region, time), on the Dask cluster.

    ``flux`` (member, time, lat, lon) in g C m-2 d-1, dask-backed; ``weights`` (region, lat, lon) in m2.
    One computation per member, counted by a progress bar (on ``progress`` when given).
    """
    import dask.array as da

    from fluxcube.cluster import client, track

    results: dict[int, np.ndarray] = {}
    with client(n_workers) as c:
        # the weights are read by a worker once, in the flux's spatial chunks, and shared by every member
        chunks = dict(zip(flux.dims, flux.data.chunks, strict=True))
        weights = c.persist(weights.chunk({a: chunks[a] for a in ("lat", "lon")}))
        integral, cover = regional_integrals(flux, weights), covered_fraction(flux, weights)
        # one submission for all members: separate compute() calls of graphs that share the lazily
        # opened store's keys can lose a shared key (KeyError 'open_dataset-invert-...', dask 2026.8)
        members = range(flux.sizes["member"])
        parts = [da.stack([integral.isel(member=k).data, cover.isel(member=k).data]) for k in members]
        futures = dict(zip(c.compute(parts), members, strict=True))
        for fut in track(futures, "members integrated", progress):
            results[futures[fut]] = np.asarray(fut.result())
    both = np.stack([results[k] for k in range(flux.sizes["member"])], axis=1)  # (2, member, region, time)
    return integral.copy(data=both[0]), cover.copy(data=both[1])


def ensemble(integral: xr.DataArray, cover: xr.DataArray, min_cover: float = MIN_COVER) -> xr.Dataset:
    """Masked member integrals, ensemble mean, range (max - min) and member count, Pg C month-1."""
    kept = integral.where(cover >= min_cover)
    count = kept.count("member")
    with warnings.catch_warnings():  # region-months without any member: NaN, as intended
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = kept.mean("member", skipna=True)
        spread = (kept.max("member", skipna=True) - kept.min("member", skipna=True)).where(count >= 2)
    units = "Pg C month-1"
    sign = "positive = flux to the atmosphere (source)"
    return xr.Dataset(
        {
            "land_flux_integral": kept.assign_attrs(
                units=units,
                long_name="regional integral of the inversion's fire-adjusted land flux over the month",
                comment=f"sum over cells of {FLUX} x region_fraction x cell_area x days in month / 1e15; "
                f"NaN where covered_fraction < {min_cover}; {sign}",
            ),
            "covered_fraction": cover.assign_attrs(
                units="1", long_name="fraction of the region's area where the member's flux has a value"
            ),
            "land_flux_integral_mean": mean.assign_attrs(
                units=units, long_name="ensemble mean of the regional integrals", comment=sign
            ),
            "land_flux_integral_range": spread.assign_attrs(
                units=units,
                long_name="range (max - min) of the regional integrals across members",
                comment="NaN where fewer than two members have a value",
            ),
            "member_count": count.astype("int16").assign_attrs(
                units="1", long_name="number of members with a regional integral"
            ),
        }
    )


def validate(ds: xr.Dataset) -> None:
    """Physical and arithmetic checks on the written store."""
    x = ds["land_flux_integral"].values
    mean, spread = ds["land_flux_integral_mean"].values, ds["land_flux_integral_range"].values
    if np.any(spread < -1e-12):
        raise ValueError("negative range")
    lo, hi = np.nanmin(x, axis=0), np.nanmax(x, axis=0)
    ok = np.isfinite(mean)
    if np.any(mean[ok] < lo[ok] - 1e-9) or np.any(mean[ok] > hi[ok] + 1e-9):
        raise ValueError("ensemble mean outside the members' range")
    cover = ds["covered_fraction"].values
    if np.nanmin(cover) < -1e-9 or np.nanmax(cover) > 1 + 1e-9:
        raise ValueError("covered fraction outside [0, 1]")
    if np.nanmax(np.abs(x)) > 50.0:
        raise ValueError(f"a regional monthly integral of {np.nanmax(np.abs(x)):.1f} Pg C is not plausible")


def check_members(ds: xr.Dataset, where: str) -> list[str]:
    """Refuse members without a single covered month; return warnings for members lacking some months."""
    have = np.isfinite(ds["land_flux_integral"]).any("region")  # (member, time)
    warnings = []
    for m in ds["member"].values:
        months = have.sel(member=m).values
        if not months.any():
            raise InputError(
                where,
                f"member {m} has no month with a fire-adjusted flux covering {MIN_COVER:.0%} of any region",
                column=FLUX,
            )
        if not months.all():
            gaps = [str(t)[:7] for t in ds["time"].values[~months]]
            listed = ", ".join(gaps[:6]) + ("..." if len(gaps) > 6 else "")
            warnings.append(
                f"member {m} lacks {len(gaps)} month(s) ({listed}): "
                "not counted in the ensemble mean and range there"
            )
    return warnings


def run(
    target: str, n_workers: int | None = None, force: bool = False, console: Any = None
) -> IntegralsSummary:
    """Compute and publish ``inversions_regional_monthly`` under ``target``; draw the figure."""
    summary = IntegralsSummary()
    pub = Publisher(target)
    flux_ds, reg, versions = open_inputs(pub)
    manifests = [pub.manifest_location(name, v).url for name, v in sorted(versions.items())]
    release = Release(
        name=DATASET,
        recipe=RECIPE,
        recipe_version=RECIPE_VERSION,
        inputs=iter_files(manifests),
        description="Monthly regional integrals (Pg C month-1) of each inversion's fire-adjusted land flux "
        "over the 18 land regions, ensemble mean and range (max - min)",
        params={"min_cover": MIN_COVER, "area": "cell_area", "input_stores": versions},
        synthetic=any(bool(pub.current(name)["synthetic"]) for name in versions),
    )
    if pub.is_current(release) and not force:
        pub.prepare(release)  # repairs a stale catalog
        summary.up_to_date[DATASET] = release.version
        figure = Path(pub.root.path) / "reports" / FIGURE if pub.root.is_local else None
        summary.figures = [str(figure)] if figure is not None and figure.exists() else draw(pub)
        return summary
    weights = region_weights(reg)  # lazy: the workers read the regions store themselves
    if console is not None:
        from fluxcube.cluster import progress_bar

        with progress_bar(console=console) as bar:
            integral, cover = compute_integrals(flux_ds[FLUX], weights, n_workers, bar)
    else:
        integral, cover = compute_integrals(flux_ds[FLUX], weights, n_workers)
    ds = ensemble(integral, cover)
    ds = ds.assign_coords(
        region_abbrev=reg["region_abbrev"].load(),
        region_name=reg["region_name"].load(),
        region_area=weights.sum(["lat", "lon"])
        .compute()
        .assign_attrs(units="m2", long_name="area of the region (region_fraction x cell_area)"),
    )
    summary.warnings += check_members(ds, pub.dataset(inversions.GRIDDED_DATASET).url)
    attrs = {
        "title": "Inversion ensemble: monthly regional integrals of the fire-adjusted land flux",
        "Conventions": "CF-1.10",
        "sign_convention": "positive = flux to the atmosphere (source)",
        "input_stores": json.dumps(versions, sort_keys=True),
        "regions": "approximate RECCAP2-like land regions of " + regions.DATASET,
        "min_cover": MIN_COVER,
    }
    encoding = {"time": {"units": "days since 1970-01-01", "calendar": "proleptic_gregorian"}}
    if pub.publish_dataset(release, ds, attrs, validate, encoding, force=force):
        summary.published[DATASET] = release.version
    else:
        summary.up_to_date[DATASET] = release.version
    summary.figures = draw(pub)
    return summary


def draw(pub: Publisher) -> list[str]:
    """Per region, the monthly integrals of every member with the range band and the ensemble mean
    (Pg C month-1); PNG under ``<target>/reports/`` (local targets only). Returns the paths."""
    if not pub.root.is_local or pub.current(DATASET) is None:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = pub.open(DATASET).load()
    time = ds["time"].values
    n = ds.sizes["region"]
    cols = 3
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(15, 2.2 * rows), sharex=True, constrained_layout=True)
    for ax, k in zip(axes.ravel(), range(n), strict=False):
        r = ds.isel(region=k)
        lo = r["land_flux_integral"].min("member")
        hi = r["land_flux_integral"].max("member")
        ax.fill_between(time, lo.values, hi.values, color="C0", alpha=0.2, lw=0, label="range")
        for m in ds["member"].values:
            ax.plot(time, r["land_flux_integral"].sel(member=m).values, lw=0.6, color="0.45")
        ax.plot(time, r["land_flux_integral_mean"].values, lw=1.5, color="C3", label="ensemble mean")
        ax.axhline(0, color="k", lw=0.4)
        ax.set_title(f"{r['region_name'].item()} ({r['region_abbrev'].item()})", fontsize=9, loc="left")
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    axes.ravel()[0].legend(fontsize=7, loc="upper left")
    fig.supylabel("Pg C month$^{-1}$ (positive = source)")
    synthetic = " (SYNTHETIC inputs)" if ds.attrs.get("synthetic") == "true" else ""
    fig.suptitle(
        f"Fire-adjusted land flux of {ds.sizes['member']} inversions per region: members (grey), range "
        f"(band), ensemble mean (red){synthetic}",
        fontsize=11,
    )
    out = Path(pub.root.path) / "reports" / FIGURE
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return [str(out)]
