"""MODIS-like remote sensing of the simulated world: composites with QC layers and cloud gaps.

Four products per year, ``modis/<PRODUCT>.A<YYYY>.sim.nc``, on the world grid (regular latitude/longitude
cells, latitude descending and longitude -180..180 as in the MODIS climate-modelling grids; not the
sinusoidal tiles), dimensions (time, lat, lon), ``time`` = first day of each composite period (``days
since 2000-01-01``) with ``time_bnds`` [first day, day after the last). Periods start on days of year 1, 9,
17, ... (8-day) or 1, 17, 33, ... (16-day) and never cross the year's end (the last one is shorter), as in
MOD11A2. Values are stored as MODIS stores them (integers with CF ``scale_factor``/``add_offset``, i.e.
physical = stored x scale_factor + add_offset, the NetCDF convention of AppEEARS outputs; ``_FillValue``
and ``valid_range`` as in the MODIS products); cells that are not simulated (ocean, Antarctica) are fill.

=========== ====== ============================================================================
product     period variables (MODIS SDS names)
=========== ====== ============================================================================
MOD13A2     16 d   ``NDVI``, ``EVI`` (int16, 0.0001, fill -3000), ``red_reflectance``,
                   ``NIR_reflectance``, ``blue_reflectance``, ``MIR_reflectance`` (band 7, 2130 nm;
                   int16, 0.0001, fill -1000), ``VI_Quality`` (uint16 bits), ``pixel_reliability``
                   (int8: 0 good, 1 marginal, 2 snow/ice, 3 cloudy, -1 fill),
                   ``composite_day_of_the_year`` (int16)
MOD09A1     8 d    ``sur_refl_b01`` (red), ``sur_refl_b02`` (NIR), ``sur_refl_b03`` (blue),
                   ``sur_refl_b06`` (SWIR 1640 nm), ``sur_refl_b07`` (SWIR/MIR 2130 nm) (int16, 0.0001,
                   fill -28672), ``sur_refl_qc_500m`` (uint32), ``sur_refl_state_500m`` (uint16 bits),
                   ``sur_refl_day_of_year`` (uint16)
MOD15A2H    8 d    ``Fpar_500m`` (uint8, 0.01, fill 255), ``Lai_500m`` (uint8, 0.1, fill 255),
                   ``FparLai_QC`` (uint8 bits)
MOD11A2     8 d    ``LST_Day_1km``, ``LST_Night_1km`` (uint16, 0.02 K, fill 0), ``QC_Day``,
                   ``QC_Night`` (uint8 bits)
=========== ====== ============================================================================

The observation model (per cell and day; seeded draws): cloudiness from the weather, ``c = (0.74 -
Rg/Rpot) / 0.5`` clipped to 0..1, a day is clear with probability ``clip(1 - 1.2 c, 0.03, 0.95)`` and
has a daytime observation if also ``Rpot > 30 W m-2``; nights are clear independently with the same
probability; a day is snowy when Tair < -1 degC. The true canopy is the truth's fAPAR with vegetation
cover ``v = fAPAR / 0.95``: reflectances are linear mixtures of soil (red 0.20, NIR 0.25, blue 0.10,
b06 0.33, b07 0.28) and canopy (red 0.03, NIR 0.45, blue 0.02, b06 0.20 + 0.10 (1 - WAI), b07 0.08 +
0.08 (1 - WAI)), or snow (0.75, 0.70, 0.85, 0.12, 0.08); each with 3 % multiplicative and 0.003 additive
noise. NDVI and EVI follow from the noisy reflectances.

- VI and reflectance composites keep the clear day with the highest noisy fAPAR (maximum value
  composite); a period without a clear day is **cloud contaminated**: the values are 70 % cloud
  (red 0.45, NIR 0.48, blue 0.50, b06 0.35, b07 0.25) and 30 % surface, flagged cloudy
  (``pixel_reliability`` 3, VI_Quality MODLAND = 10, state cloud bits = 01).
- Fpar is the largest noisy (+- 0.03) clear-day fAPAR; without a clear day the backup algorithm value
  (0.85 x the period's mean fAPAR, + noise) is flagged (FparLai_QC: MODLAND 1, cloud state 01, SCF_QC
  011). LAI = -ln(1 - Fpar / 0.96) / 0.5, at most 10.
- LST is the mean over the clear days (nights) of the period of ``Tair + A + 0.015 Rg (1.2 - fAPAR)``
  (day) and ``Tair - A - 1.5`` (night) in K, + N(0, 0.5 K), ``A`` the diurnal half-range of
  :mod:`fluxcube.simulate.era5_sim`; a period without a clear day (night) is a **gap**: LST fill 0 and QC
  ``10`` (not produced due to cloud); one clear day gives QC ``01`` (other quality) with LST error <= 2 K.

QC bit values written (MODIS layouts): VI_Quality bits 0-1 MODLAND, 2-5 usefulness, 10 mixed clouds,
11-13 land/water (001 land), 14 snow/ice; sur_refl_state_500m bits 0-1 cloud state, 3-5 land/water,
12 snow/ice, 15 internal snow mask; sur_refl_qc_500m bits 0-1 MODLAND (0 ideal, 1 less than ideal,
fill 787410671); FparLai_QC bit 0 MODLAND, bits 3-4 cloud state, 5-7 SCF_QC; QC_Day/QC_Night bits 0-1
mandatory QA, 2-3 data quality, 6-7 LST error (3 = not produced, other reasons, where not simulated).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
import pandas as pd

from fluxcube.simulate import ncfiles

_MODIS_STREAM = 120
EPOCH = pd.Timestamp("2000-01-01")
LAND = 1 << 11  # VI_Quality land/water = 001


@dataclass(frozen=True)
class Var:
    """A stored MODIS variable: type, fill, CF scale and offset, valid range and attributes."""

    dtype: str
    fill: int
    scale: float = 1.0
    offset: float = 0.0
    valid: tuple[int, int] | None = None
    attrs: dict[str, str] = field(default_factory=dict)


def _refl(dtype: str, fill: int, valid: tuple[int, int], name: str, sds: str) -> Var:
    return Var(dtype, fill, 0.0001, 0.0, valid, {"long_name": name, "units": "1", "modis_sds": sds})


MOD13 = {
    "NDVI": Var(
        "i2",
        -3000,
        0.0001,
        0.0,
        (-2000, 10000),
        {"long_name": "16 days NDVI", "units": "NDVI", "modis_sds": "1 km 16 days NDVI"},
    ),
    "EVI": Var(
        "i2",
        -3000,
        0.0001,
        0.0,
        (-2000, 10000),
        {"long_name": "16 days EVI", "units": "EVI", "modis_sds": "1 km 16 days EVI"},
    ),
    "red_reflectance": _refl(
        "i2", -1000, (0, 10000), "surface reflectance band 1 (red)", "1 km 16 days red reflectance"
    ),
    "NIR_reflectance": _refl(
        "i2", -1000, (0, 10000), "surface reflectance band 2 (NIR)", "1 km 16 days NIR reflectance"
    ),
    "blue_reflectance": _refl(
        "i2", -1000, (0, 10000), "surface reflectance band 3 (blue)", "1 km 16 days blue reflectance"
    ),
    "MIR_reflectance": _refl(
        "i2", -1000, (0, 10000), "surface reflectance band 7 (MIR, 2130 nm)", "1 km 16 days MIR reflectance"
    ),
    "VI_Quality": Var(
        "u2",
        65535,
        attrs={"long_name": "VI quality indicators (bit field)", "modis_sds": "1 km 16 days VI Quality"},
    ),
    "pixel_reliability": Var(
        "i1",
        -1,
        valid=(0, 3),
        attrs={
            "long_name": "quality reliability of VI pixel",
            "modis_sds": "1 km 16 days pixel reliability",
            "flag_values": "0 1 2 3",
            "flag_meanings": "good marginal snow_ice cloudy",
        },
    ),
    "composite_day_of_the_year": Var(
        "i2",
        -1,
        valid=(1, 366),
        attrs={
            "long_name": "day of year of the composited observation",
            "modis_sds": "1 km 16 days composite day of the year",
        },
    ),
}
MOD09 = {
    "sur_refl_b01": _refl(
        "i2", -28672, (-100, 16000), "surface reflectance band 1 (620-670 nm)", "sur_refl_b01"
    ),
    "sur_refl_b02": _refl(
        "i2", -28672, (-100, 16000), "surface reflectance band 2 (841-876 nm, NIR)", "sur_refl_b02"
    ),
    "sur_refl_b03": _refl(
        "i2", -28672, (-100, 16000), "surface reflectance band 3 (459-479 nm)", "sur_refl_b03"
    ),
    "sur_refl_b06": _refl(
        "i2", -28672, (-100, 16000), "surface reflectance band 6 (1628-1652 nm, SWIR)", "sur_refl_b06"
    ),
    "sur_refl_b07": _refl(
        "i2", -28672, (-100, 16000), "surface reflectance band 7 (2105-2155 nm, MIR)", "sur_refl_b07"
    ),
    "sur_refl_qc_500m": Var(
        "u4",
        787410671,
        attrs={"long_name": "500 m reflectance band quality (bits)", "modis_sds": "sur_refl_qc_500m"},
    ),
    "sur_refl_state_500m": Var(
        "u2", 65535, attrs={"long_name": "500 m state flags (bits)", "modis_sds": "sur_refl_state_500m"}
    ),
    "sur_refl_day_of_year": Var(
        "u2",
        65535,
        valid=(1, 366),
        attrs={"long_name": "day of year of the pixel", "modis_sds": "sur_refl_day_of_year"},
    ),
}
MOD15 = {
    "Fpar_500m": Var(
        "u1",
        255,
        0.01,
        0.0,
        (0, 100),
        {
            "long_name": "fraction of photosynthetically active radiation absorbed",
            "units": "1",
            "modis_sds": "Fpar_500m",
        },
    ),
    "Lai_500m": Var(
        "u1",
        255,
        0.1,
        0.0,
        (0, 100),
        {"long_name": "leaf area index", "units": "m2 m-2", "modis_sds": "Lai_500m"},
    ),
    "FparLai_QC": Var("u1", 255, attrs={"long_name": "FPAR/LAI quality (bits)", "modis_sds": "FparLai_QC"}),
}
MOD11 = {
    "LST_Day_1km": Var(
        "u2",
        0,
        0.02,
        0.0,
        (7500, 65535),
        {"long_name": "daytime land surface temperature", "units": "K", "modis_sds": "LST_Day_1km"},
    ),
    "LST_Night_1km": Var(
        "u2",
        0,
        0.02,
        0.0,
        (7500, 65535),
        {"long_name": "night land surface temperature", "units": "K", "modis_sds": "LST_Night_1km"},
    ),
    "QC_Day": Var("u1", 255, attrs={"long_name": "daytime LST quality (bits)", "modis_sds": "QC_Day"}),
    "QC_Night": Var("u1", 255, attrs={"long_name": "night LST quality (bits)", "modis_sds": "QC_Night"}),
}
#: product -> (composite period in days, variables, description)
PRODUCTS: dict[str, tuple[int, dict[str, Var], str]] = {
    "MOD13A2": (16, MOD13, "MODIS/Terra Vegetation Indices 16-Day (synthetic twin)"),
    "MOD09A1": (8, MOD09, "MODIS/Terra Surface Reflectance 8-Day (synthetic twin)"),
    "MOD15A2H": (8, MOD15, "MODIS/Terra LAI/FPAR 8-Day (synthetic twin)"),
    "MOD11A2": (8, MOD11, "MODIS/Terra Land Surface Temperature 8-Day (synthetic twin)"),
}
#: value a not-simulated cell gets where it is not the fill value (QC layers: "not produced")
NOT_PRODUCED = {"QC_Day": 3, "QC_Night": 3, "sur_refl_qc_500m": 787410671}

SOIL = {"red": 0.20, "nir": 0.25, "blue": 0.10, "b06": 0.33, "b07": 0.28}
SNOW = {"red": 0.75, "nir": 0.70, "blue": 0.85, "b06": 0.12, "b07": 0.08}
CLOUD = {"red": 0.45, "nir": 0.48, "blue": 0.50, "b06": 0.35, "b07": 0.25}


def periods(dates: pd.DatetimeIndex, length: int) -> list[tuple[int, int]]:
    """Composite periods (first index, index after the last) within one year's ``dates``."""
    n = len(dates)
    return [(s, min(n, s + length)) for s in range(0, n, length)]


def path_of(folder: Path, product: str, year: int) -> Path:
    return folder / f"{product}.A{year}.sim.nc"


def diurnal_half_range(rg: np.ndarray, rpot: np.ndarray) -> np.ndarray:
    """Half the diurnal temperature range (K) of :mod:`fluxcube.simulate.era5_sim`."""
    k = np.clip((rg / np.maximum(rpot, 1e-6) - 0.27) / 0.47, 0.0, 1.0)
    return np.where(rpot > 1.0, 1.0 + 5.0 * k, 1.0)


def _reflectances(v: np.ndarray, wai: np.ndarray) -> dict[str, np.ndarray]:
    canopy = {
        "red": 0.03,
        "nir": 0.45,
        "blue": 0.02,
        "b06": 0.20 + 0.10 * (1 - wai),
        "b07": 0.08 + 0.08 * (1 - wai),
    }
    return {k: SOIL[k] * (1 - v) + canopy[k] * v for k in SOIL}


def observe(
    dates: pd.DatetimeIndex, weather: dict[str, np.ndarray], fapar: np.ndarray, rng: np.random.Generator
) -> dict[str, dict[str, np.ndarray]]:
    """Composited physical values and QC (composite, point) of every product for one band-year.

    ``weather`` arrays (1 + days, point) with row 0 the day before (as in
    :class:`~fluxcube.simulate.gridded.BandYear`); ``fapar`` (days, point). Returns
    ``{product: {variable: values}}`` with reflectances, NDVI, EVI, Fpar, LAI in physical units (LST in
    K, NaN = gap) and the integer QC/day layers as final values.
    """
    w = {k: v[1:] for k, v in weather.items()}
    shape = fapar.shape
    cloud = np.where(
        w["rpot"] > 1.0, np.clip((0.74 - w["rg"] / np.maximum(w["rpot"], 1e-6)) / 0.5, 0, 1), 1.0
    )
    p_clear = np.clip(1.0 - 1.2 * cloud, 0.03, 0.95)
    clear_day = (rng.random(shape) < p_clear) & (w["rpot"] > 30.0)
    clear_night = rng.random(shape) < p_clear
    snow = w["tair"] < -1.0
    score_noise = rng.normal(0.0, 0.01, shape)
    fpar_noise = rng.normal(0.0, 0.03, shape)
    refl_noise = {k: rng.normal(0.0, 1.0, (2, *shape)) for k in SOIL}
    lst_noise = rng.normal(0.0, 0.5, (2, *shape))
    amp = diurnal_half_range(w["rg"], w["rpot"])
    lst_day = w["tair"] + amp + 0.015 * w["rg"] * (1.2 - fapar) + 273.15
    lst_night = w["tair"] - amp - 1.5 + 273.15
    doy = dates.day_of_year.to_numpy()
    cols = np.arange(shape[1])

    out: dict[str, dict[str, list[np.ndarray]]] = {p: {} for p in PRODUCTS}

    def add(product: str, name: str, values: np.ndarray) -> None:
        out[product].setdefault(name, []).append(values)

    for product, (length, _, _) in PRODUCTS.items():
        for s, e in periods(dates, length):
            sl = slice(s, e)
            valid = clear_day[sl]
            n_clear = valid.sum(axis=0)
            if product == "MOD11A2":
                nights = clear_night[sl]
                for name, qc, vals, ok, noise in (
                    ("LST_Day_1km", "QC_Day", lst_day[sl], valid, lst_noise[0, sl]),
                    ("LST_Night_1km", "QC_Night", lst_night[sl], nights, lst_noise[1, sl]),
                ):
                    n = ok.sum(axis=0)
                    mean = np.where(ok, vals + noise, 0.0).sum(axis=0) / np.maximum(n, 1)
                    add(product, name, np.where(n > 0, mean, np.nan))
                    add(
                        product, qc, np.where(n >= 2, 0, np.where(n == 1, 0b01 | 0b01 << 2 | 0b01 << 6, 0b10))
                    )
                continue
            score = np.where(valid, fapar[sl] + score_noise[sl], -np.inf)
            if product == "MOD15A2H":
                best = score.argmax(axis=0)
                fp = fapar[sl][best, cols] + fpar_noise[sl][best, cols]
                backup = 0.85 * fapar[sl].mean(axis=0) + fpar_noise[sl].mean(axis=0)
                fp = np.clip(np.where(n_clear > 0, fp, backup), 0.0, 1.0)
                qc = np.where(n_clear > 0, 0, 1 | 0b01 << 3 | 0b011 << 5)
                qc = np.where((n_clear > 0) & snow[sl][best, cols], 1 | 0b011 << 5, qc)
                add(product, "Fpar_500m", fp)
                add(product, "Lai_500m", np.minimum(-np.log(1.0 - np.minimum(fp, 0.95) / 0.96) / 0.5, 10.0))
                add(product, "FparLai_QC", qc)
                continue
            middle = (e - s) // 2
            best = np.where(n_clear > 0, score.argmax(axis=0), middle)
            day = s + best
            v = np.clip(fapar[day, cols] / 0.95, 0.0, 1.0)
            surface = _reflectances(v, w["wai"][day, cols])
            is_snow = snow[day, cols]
            cloudy = n_clear == 0
            refl = {}
            for k in SOIL:
                r = np.where(is_snow, SNOW[k], surface[k])
                r = np.where(cloudy, 0.7 * CLOUD[k] + 0.3 * r, r)
                noise = refl_noise[k][0 if product == "MOD13A2" else 1][day, cols]
                refl[k] = np.clip(r * (1.0 + 0.03 * noise) + 0.003 * noise, -0.01, 1.6)
            if product == "MOD13A2":
                ndvi = (refl["nir"] - refl["red"]) / (refl["nir"] + refl["red"])
                evi = (
                    2.5
                    * (refl["nir"] - refl["red"])
                    / (refl["nir"] + 6 * refl["red"] - 7.5 * refl["blue"] + 1)
                )
                reliability = np.where(cloudy, 3, np.where(is_snow, 2, np.where(n_clear == 1, 1, 0)))
                quality = np.select(
                    [reliability == 0, reliability == 1, reliability == 2],
                    [LAND, 0b01 | 0b0001 << 2 | LAND, 0b01 | 0b0010 << 2 | LAND | 1 << 14],
                    0b10 | 0b1100 << 2 | 1 << 10 | LAND,
                )
                add(product, "NDVI", np.clip(ndvi, -0.2, 1.0))
                add(product, "EVI", np.clip(evi, -0.2, 1.0))
                for name, k in (("red", "red"), ("NIR", "nir"), ("blue", "blue"), ("MIR", "b07")):
                    add(product, f"{name}_reflectance", np.clip(refl[k], 0.0, 1.0))
                add(product, "VI_Quality", quality)
                add(product, "pixel_reliability", reliability)
                add(product, "composite_day_of_the_year", doy[day])
            else:  # MOD09A1
                for band, k in (
                    ("b01", "red"),
                    ("b02", "nir"),
                    ("b03", "blue"),
                    ("b06", "b06"),
                    ("b07", "b07"),
                ):
                    add(product, f"sur_refl_{band}", refl[k])
                state = np.where(cloudy, 0b01, 0) | 0b001 << 3 | np.where(is_snow, 1 << 12 | 1 << 15, 0)
                add(product, "sur_refl_state_500m", state)
                add(product, "sur_refl_qc_500m", np.where(cloudy | is_snow | (n_clear == 1), 1, 0))
                add(product, "sur_refl_day_of_year", doy[day])
    return {p: {k: np.stack(v) for k, v in d.items()} for p, d in out.items()}


def stored(var: Var, values: np.ndarray) -> np.ndarray:
    """Values as stored: packed with the variable's scale (NaN -> fill), or cast for integer layers."""
    if var.scale != 1.0 or var.offset != 0.0:
        return ncfiles.pack(values, var.scale, var.offset, var.dtype, var.fill)
    return values.astype(var.dtype)


def open_product(
    path: Path,
    product: str,
    year: int,
    dates: pd.DatetimeIndex,
    lat: np.ndarray,
    lon: np.ndarray,
    attrs: dict[str, Any],
    band_rows: int,
) -> netCDF4.Dataset:
    """A product file for ``year`` on the world grid (latitude descending), variables empty (fill)."""
    length, variables, title = PRODUCTS[product]
    spans = periods(dates, length)
    ds = ncfiles.create(
        path,
        {
            "title": title,
            "product": product,
            "composite_period_days": length,
            "Conventions": "CF-1.10",
            "grid": "regular latitude/longitude (world grid), not the MODIS sinusoidal tiles",
            **attrs,
        },
        {"time": len(spans), "lat": lat.size, "lon": lon.size, "nv": 2},
    )
    starts = np.array([(dates[s] - EPOCH).days for s, _ in spans], dtype="i4")
    ends = np.array([(dates[e - 1] - EPOCH).days + 1 for _, e in spans], dtype="i4")
    ncfiles.variable(
        ds,
        "time",
        "i4",
        ("time",),
        {
            "units": "days since 2000-01-01",
            "calendar": "standard",
            "standard_name": "time",
            "long_name": "first day of the composite period",
            "bounds": "time_bnds",
        },
        compress=False,
        data=starts,
    )
    ncfiles.variable(
        ds,
        "time_bnds",
        "i4",
        ("time", "nv"),
        {"units": "days since 2000-01-01"},
        compress=False,
        data=np.stack([starts, ends], axis=1),
    )
    ncfiles.coordinate(ds, "lat", lat[::-1], ncfiles.LAT_ATTRS)
    ncfiles.coordinate(ds, "lon", lon, ncfiles.LON_ATTRS)
    for name, var in variables.items():
        attrs_v: dict[str, Any] = dict(var.attrs)
        if var.scale != 1.0 or var.offset != 0.0:
            attrs_v.update(scale_factor=var.scale, add_offset=var.offset)
        if var.valid is not None:
            attrs_v["valid_range"] = np.array(var.valid, dtype=var.dtype)
        ncfiles.variable(
            ds,
            name,
            var.dtype,
            ("time", "lat", "lon"),
            attrs_v,
            fill=np.array(var.fill, var.dtype),
            chunks=(len(spans), band_rows, lon.size),
        )
    return ds


def write_band(
    ds: netCDF4.Dataset,
    product: str,
    values: dict[str, np.ndarray],
    cells: np.ndarray,
    i0: int,
    i1: int,
    n_lon: int,
) -> None:
    """Write one band's composites (composite, point) into rows ``i0..i1`` (world order) of ``ds``.

    ``cells`` are the points' flat indices within the band (row - i0) * n_lon + column.
    """
    n_lat = ds.dimensions["lat"].size
    _, variables, _ = PRODUCTS[product]
    for name, var in variables.items():
        data = stored(var, values[name])
        slab = np.full((data.shape[0], (i1 - i0) * n_lon), NOT_PRODUCED.get(name, var.fill), dtype=var.dtype)
        slab[:, cells] = data
        slab = slab.reshape(data.shape[0], i1 - i0, n_lon)[:, ::-1, :]
        ds[name][:, n_lat - i1 : n_lat - i0, :] = slab
