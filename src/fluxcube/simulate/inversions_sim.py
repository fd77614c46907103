"""Inversions and the Global Carbon Budget of the simulated world.

**Inversions** (:func:`write_inversions`): one file in the layout of the GCB2022 gridded inversion
ensemble (``GCP2022_inversions_1x1_version1_2_20230428.nc``): dimensions (ensemble_member, time,
latitude, longitude), 1 degree cells (centres -89.5..89.5 ascending, -179.5..179.5), monthly (time at
mid-month, ``days since 2000-01-01``), variable ``land_flux_only_fossil_cement_adjusted`` in **PgC/m2/yr**
(Pg C per m2 of grid cell per year, the unit of the GCB files; positive = flux to the atmosphere; 0 where
a cell has no simulated land), ``ensemble_member_name`` (char), ``cell_area`` (m2). Each member is

``truth + misplacement + regional error``:

- truth: the true net land flux ``NEE + fire``, averaged over each month and each 1 degree cell (its
  whole area, ocean counting as zero flux), converted with the days of that year (so a month's integral
  is rate x days in month / days in year, as the inversion recipe computes it);
- misplacement: ``alpha (F(shifted) - F)`` with the truth field ``F`` shifted by 1-3 cells in latitude and
  longitude (per member), restricted to land and with its integral over every region removed, so it moves
  flux within regions without changing their totals (``alpha ~ U(0.3, 0.7)``);
- regional error: per region ``r`` a member bias ``N(0, s_r)`` plus monthly AR(1) anomalies (phi 0.6,
  sd ``s_r``), ``s_r = (0.05 + 0.40 t_r) sqrt(A_r / 1e13 m2)`` Pg C yr-1 with ``t_r`` the share of the
  region's land within 23.5 degrees of the equator: the spread is largest in the tropics. 70 % of each
  month's global sum of the regional errors is removed, shared in proportion to ``s_r^2`` (mostly by
  the uncertain tropical regions): the atmosphere's growth rate constrains the global total, so the
  errors are mostly compensating. Spread uniformly over a region's land.

**GCB table** (:func:`write_gcb_table`): ``Global_Carbon_Budget_2022v1.0_synthetic.csv`` with the columns of
the GCB2022 csv (Pg C yr-1, 2 decimals, UTF-8 with BOM): ``residual land sink = land sink + budget
imbalance = -(true global NEE + fire) + N(0, 0.25)`` (sink positive; there is no separate land-use
change in the world); the land sink is that plus N(0, 0.5) (the DGVM spread), the budget imbalance the
rest; fossil, land-use change, ocean and cement terms are smooth plausible series and the atmospheric
growth closes the budget.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fluxcube.recipes.regions import EARTH_RADIUS, OTHER_LAND, REGIONS
from fluxcube.simulate import ncfiles

VARIABLE = "land_flux_only_fossil_cement_adjusted"
UNITS = "PgC/m2/yr"
FILE_NAME = "GCP2022_inversions_1x1_version1_2_synthetic.nc"
GCB_FILE = "Global_Carbon_Budget_2022v1.0_synthetic.csv"
GCB_COLUMNS = [
    "Year",
    "fossil emissions excluding carbonation",
    "land-use change emissions",
    "atmospheric growth",
    "ocean sink",
    "land sink",
    "cement carbonation sink",
    "budget imbalance",
    "emission_total",
    "sink_total",
]
_INVERSION_STREAM = 110
_GCB_STREAM = 140
TROPICS = 23.5
ONE_DEG_LAT = np.arange(-89.5, 90.0, 1.0)
ONE_DEG_LON = np.arange(-179.5, 180.0, 1.0)


def one_degree_area() -> np.ndarray:
    """Cell areas (m2) of the 1 degree grid (lat, lon) on the sphere of fluxcube's grids."""
    edges = np.deg2rad(np.arange(-90.0, 90.5, 1.0))
    band = EARTH_RADIUS**2 * np.deg2rad(1.0) * np.diff(np.sin(edges))
    return np.repeat(band[:, None], ONE_DEG_LON.size, axis=1)


def member_names(n: int) -> list[str]:
    """Names of the simulated inversion systems (``SIM-INV-01``...; no real system's name)."""
    return [f"SIM-INV-{k + 1:02d}" for k in range(n)]


def region_sigma(region: np.ndarray, land_area: np.ndarray) -> dict[int, float]:
    """Error scale ``s_r`` (Pg C yr-1) per region number from its land area and tropical share."""
    lat = np.repeat(ONE_DEG_LAT[:, None], ONE_DEG_LON.size, axis=1)
    out = {}
    for r in [OTHER_LAND, *sorted(REGIONS)]:
        a = land_area[region == r]
        if a.sum() <= 0:
            continue
        tropical = land_area[(region == r) & (np.abs(lat) < TROPICS)].sum() / a.sum()
        out[r] = (0.05 + 0.40 * tropical) * np.sqrt(a.sum() / 1e13)
    return out


class _Regions:
    """Region bookkeeping of the 1 degree land cells shared by the members."""

    def __init__(self, region: np.ndarray, land_area: np.ndarray):
        self.area = one_degree_area()
        land = land_area > 0
        self.sigma = region_sigma(region, land_area)
        self.ids = sorted(self.sigma)
        index = np.full(region.shape, -1)
        for k, r in enumerate(self.ids):
            index[(region == r) & land] = k
        self.cells = np.flatnonzero(index.ravel() >= 0)
        self.k_cell = index.ravel()[self.cells]
        self.a_cell = self.area.ravel()[self.cells]
        self.l_cell = land_area.ravel()[self.cells]
        self.region_area = np.bincount(self.k_cell, weights=self.l_cell, minlength=len(self.ids))


def member_flux(
    truth: np.ndarray, months: pd.DatetimeIndex, regions: _Regions, member: int, seed: int
) -> np.ndarray:
    """One member's flux (month, 180, 360), g C m-2 d-1 per cell area, from the truth (same units)."""
    rng = np.random.default_rng([seed, _INVERSION_STREAM, member])
    shift = rng.integers(1, 4, size=2) * rng.choice([-1, 1], size=2)
    alpha = rng.uniform(0.3, 0.7)
    s = np.array([regions.sigma[r] for r in regions.ids])
    bias = rng.normal(0.0, s)
    e = rng.normal(0.0, 1.0, (len(months), len(s)))
    anomaly = np.zeros_like(e)
    for t in range(len(months)):
        anomaly[t] = 0.6 * (anomaly[t - 1] if t else 0.0) + np.sqrt(1 - 0.36) * e[t]
    err = bias[None, :] + s[None, :] * anomaly  # Pg C yr-1 per month and region
    err -= 0.5 * err.sum(axis=1, keepdims=True) * s[None, :] / s.sum()
    cells, k_cell, a_cell, l_cell = regions.cells, regions.k_cell, regions.a_cell, regions.l_cell
    flat = truth.reshape(len(months), -1)
    # misplacement: the shifted truth minus the truth, on land, without its regional totals
    moved = np.roll(truth, tuple(shift), axis=(1, 2)).reshape(len(months), -1)
    d = moved[:, cells] - flat[:, cells]
    totals = np.stack([np.bincount(k_cell, weights=row * a_cell, minlength=len(s)) for row in d])
    d -= totals[:, k_cell] * (l_cell / regions.region_area[k_cell] / a_cell)[None, :]
    # regional errors: Pg C yr-1 -> g C d-1, per m2 of the region's land, then per m2 of cell
    days_in_year = np.where(months.is_leap_year, 366.0, 365.0)
    density = err[:, k_cell] * 1e15 / days_in_year[:, None] / regions.region_area[k_cell] * (l_cell / a_cell)
    out = flat.copy()
    out[:, cells] += alpha * d + density
    return out.reshape(truth.shape)


def simulate_members(
    truth: np.ndarray,
    months: pd.DatetimeIndex,
    region: np.ndarray,
    land_area: np.ndarray,
    n_members: int,
    seed: int,
) -> np.ndarray:
    """Member fluxes (member, month, lat, lon) in g C m-2 d-1 per cell area from the truth (same units).

    ``truth`` (month, 180, 360) is the true monthly mean net flux per 1 degree cell area, ``region``
    (180, 360) the region of each cell, ``land_area`` (180, 360) m2 of simulated land in it.
    """
    regions = _Regions(region, land_area)
    return np.stack([member_flux(truth, months, regions, m, seed) for m in range(n_members)])


def write_inversions(
    path: Path,
    truth: np.ndarray,
    months: pd.DatetimeIndex,
    region: np.ndarray,
    land_area: np.ndarray,
    n_members: int,
    seed: int,
    attrs: Mapping[str, Any],
) -> Path:
    """Write the ensemble file (one member at a time: memory holds one member's months)."""
    regions = _Regions(region, land_area)
    days_in_year = np.where(months.is_leap_year, 366.0, 365.0)
    names = member_names(n_members)
    width = max(len(n) for n in names)
    ds = ncfiles.create(
        path,
        {
            "title": "Synthetic twin of the GCB2022 gridded atmospheric inversion ensemble",
            "Conventions": "CF-1.10",
            "sign_convention": "positive = flux to the atmosphere (source)",
            "comment": "each member = true monthly NEE + fire on 1 degree cells + misplaced sub-regional "
            "patterns + correlated regional errors (fluxcube.simulate.inversions_sim)",
            **attrs,
        },
        {
            "ensemble_member": n_members,
            "time": len(months),
            "latitude": 180,
            "longitude": 360,
            "nchar": width,
        },
    )
    with ds:
        ncfiles.variable(
            ds,
            "ensemble_member",
            "i4",
            ("ensemble_member",),
            {"long_name": "ensemble member"},
            compress=False,
            data=np.arange(n_members, dtype="i4"),
        )
        chars = np.array([list(n.ljust(width)) for n in names], dtype="S1")
        ncfiles.variable(
            ds,
            "ensemble_member_name",
            "S1",
            ("ensemble_member", "nchar"),
            {"long_name": "inversion system"},
            compress=False,
            data=chars,
        )
        mid = months + pd.to_timedelta(months.days_in_month / 2.0, unit="D")
        ncfiles.variable(
            ds,
            "time",
            "f8",
            ("time",),
            {
                "units": "days since 2000-01-01 00:00:00",
                "calendar": "standard",
                "standard_name": "time",
                "long_name": "middle of the month",
            },
            compress=False,
            data=((mid - pd.Timestamp("2000-01-01")) / pd.Timedelta(days=1)).to_numpy(),
        )
        ncfiles.coordinate(ds, "latitude", ONE_DEG_LAT, ncfiles.LAT_ATTRS)
        ncfiles.coordinate(ds, "longitude", ONE_DEG_LON, ncfiles.LON_ATTRS)
        ncfiles.variable(
            ds,
            "cell_area",
            "f8",
            ("latitude", "longitude"),
            {"units": "m2", "long_name": f"cell area on a sphere of radius {EARTH_RADIUS} m"},
            data=one_degree_area(),
        )
        var = ncfiles.variable(
            ds,
            VARIABLE,
            "f4",
            ("ensemble_member", "time", "latitude", "longitude"),
            {
                "units": UNITS,
                "long_name": "land-atmosphere CO2 flux, fossil and cement emissions removed",
                "comment": "per m2 of grid cell; positive = source; includes fire",
            },
            fill=np.float32(np.nan),
            chunks=(1, 12, 180, 360),
        )
        for m in range(n_members):
            flux = member_flux(truth, months, regions, m, seed)
            var[m] = (flux * days_in_year[:, None, None] / 1e15).astype("float32")
    return path


def write_gcb_table(
    path: Path, years: list[int], net_flux: np.ndarray, seed: int
) -> tuple[Path, pd.DataFrame]:
    """The GCB2022-like global budget csv; ``net_flux`` (year,) true global NEE + fire, Pg C yr-1."""
    rng = np.random.default_rng([seed, _GCB_STREAM])
    n = len(years)
    k = np.arange(n) + (years[0] - 2001)
    residual = -np.asarray(net_flux) + rng.normal(0.0, 0.25, n)
    land = residual + rng.normal(0.0, 0.5, n)
    table = pd.DataFrame({"Year": years})
    table["fossil emissions excluding carbonation"] = 6.9 + 0.17 * k
    table["land-use change emissions"] = 1.3 - 0.01 * k
    table["ocean sink"] = 2.0 + 0.05 * k
    table["land sink"] = land
    table["cement carbonation sink"] = 0.1 + 0.005 * k
    table["budget imbalance"] = residual - land
    emissions = table["fossil emissions excluding carbonation"] + table["land-use change emissions"]
    sinks = table["ocean sink"] + land + table["cement carbonation sink"]
    table["atmospheric growth"] = emissions - sinks - table["budget imbalance"]
    table["emission_total"] = emissions
    table["sink_total"] = table["atmospheric growth"] + sinks
    table = table[GCB_COLUMNS]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8-sig") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(GCB_COLUMNS)
        for row in table.itertuples(index=False):
            writer.writerow([row[0], *(f"{v:.2f}" for v in row[1:])])
    return path, table.assign(residual_land_sink_exact=residual)
