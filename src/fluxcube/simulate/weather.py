"""Deterministic daily weather of the simulated world, at any set of (lat, lon) points.

Every variable is a climatology (a function of latitude and day of year, hemispheres opposite) plus
anomalies that are a function of *location*: seeded N(0, 1) values on a coarse global node grid
(``NODE_SPACING_DEG``), AR(1)-filtered in time and interpolated bilinearly to the point. A tower and
the 0.5 degree grid cell that contains it therefore see (almost) the same weather, and any subset of
points or dates gives the same values as the whole: the innovations of year ``y`` come from a random
stream keyed on ``(seed, variable, component, y)`` and the AR(1) filter of year ``y`` is spun up over
year ``y - 1`` only.

Variables (arrays of shape ``(time, point)``):

- ``tair``  air temperature, degC (daily mean)
- ``rpot``  potential (top-of-atmosphere) shortwave radiation on a horizontal surface, W m-2 (daily mean)
- ``rg``    global radiation, W m-2 (daily mean); ``rg = rpot * k`` with transmissivity ``0.27 <= k <= 0.74``
- ``precip`` precipitation, mm d-1
- ``vpd``   vapour pressure deficit, hPa (from ``tair`` and a relative humidity)
- ``swc``   soil water in a bucket of capacity ``capacity`` (mm), mm
- ``wai``   water availability index ``swc / capacity``, 0..1
- ``daylength`` hours of daylight

The bucket (Tramontana et al. 2016 style): snow accumulates below 0 degC and melts at 3 mm d-1 K-1;
``swc`` gains rain + melt, loses ``ET = PET * min(1, swc / (0.5 * capacity))`` with Priestley-Taylor
``PET = 1.26 * s/(s+gamma) * Rn / lambda``, ``Rn = 0.5 * Rg``; water above capacity runs off. The
capacity is itself a smooth function of location (100..450 mm). The bucket starts full one year
before the first requested year (spin-up), so its memory of the start is gone.

A regional drought (:class:`DroughtSpec`, default: Europe, a 2018-like hot dry growing season in 2012)
raises the temperature, cuts precipitation and cloudiness and dries the air inside a smoothly
tapered box, with a smooth seasonal bump.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from fluxcube import solar

SOLAR_CONSTANT = 1376.0  # W m-2: the value behind FLUXNET2015's SW_IN_POT (the modern one is 1361)
NODE_SPACING_DEG = 7.5  # coarse anomaly grid: synoptic scale (~800 km)
STATIC_SPACING_DEG = 15.0  # coarse grid of the time-constant climate offsets
SECONDS_PER_DAY = 86400.0

# random-stream ids of the anomaly variables (never renumber: it would change every simulated world)
_VAR_TAIR, _VAR_MOIST, _VAR_STATIC = 1, 2, 3
_FAST, _SLOW = 0, 1
_STATIC_NAMES = ("tair_offset", "precip_factor", "capacity", "amplitude", "sink")


def _day_angle(doy: np.ndarray) -> np.ndarray:
    """Day angle (radians) of day of year ``doy`` (1..366), Spencer (1971)."""
    return 2.0 * np.pi * (np.asarray(doy) - 1) / 365.0


def solar_declination(doy: np.ndarray) -> np.ndarray:
    """Solar declination (radians) for day of year ``doy`` (1..366), Spencer (1971) Fourier series."""
    return solar.declination(_day_angle(doy))


def earth_sun_distance_factor(doy: np.ndarray) -> np.ndarray:
    """Inverse squared relative Earth-Sun distance (dimensionless) for day of year, Spencer (1971)."""
    g = _day_angle(doy)
    return (
        1.000110
        + 0.034221 * np.cos(g)
        + 0.001280 * np.sin(g)
        + 0.000719 * np.cos(2 * g)
        + 0.000077 * np.sin(2 * g)
    )


def _sunset_hour_angle(lat_deg: np.ndarray, doy: np.ndarray) -> np.ndarray:
    """Sunset hour angle (radians, 0..pi) for latitude (degrees) and day of year."""
    phi = np.deg2rad(lat_deg)
    x = -np.tan(phi) * np.tan(solar_declination(doy))
    return np.arccos(np.clip(x, -1.0, 1.0))


def potential_radiation(lat_deg: np.ndarray, doy: np.ndarray) -> np.ndarray:
    """Daily mean top-of-atmosphere shortwave radiation on a horizontal surface, W m-2.

    ``S0/pi * E0 * (ws sin(phi) sin(d) + cos(phi) cos(d) sin(ws))`` with Spencer's declination and
    distance factor; broadcasts ``lat_deg`` (degrees north) against ``doy`` (1..366). With
    ``SOLAR_CONSTANT`` = 1376 W m-2 this reproduces FLUXNET2015's daily ``SW_IN_POT`` to 0.1 %.
    """
    phi = np.deg2rad(lat_deg)
    delta = solar_declination(doy)
    ws = _sunset_hour_angle(lat_deg, doy)
    ra = (
        (SOLAR_CONSTANT / np.pi)
        * earth_sun_distance_factor(doy)
        * (ws * np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.sin(ws))
    )
    return np.maximum(ra, 0.0)


def day_length(lat_deg: np.ndarray, doy: np.ndarray) -> np.ndarray:
    """Hours of daylight (0..24) for latitude (degrees north) and day of year (geometric sunrise)."""
    return 24.0 / np.pi * _sunset_hour_angle(lat_deg, doy)


def saturation_vapour_pressure(tair: np.ndarray) -> np.ndarray:
    """Saturation vapour pressure over water, hPa, for air temperature ``tair`` in degC (Tetens)."""
    return 6.1078 * np.exp(17.27 * tair / (tair + 237.3))


def norm_cdf(z: np.ndarray) -> np.ndarray:
    """Standard normal CDF (dimensionless), Abramowitz & Stegun 7.1.26 erf (|error| < 1.5e-7)."""
    x = np.abs(z) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = 1.0 - poly * np.exp(-x * x)
    return 0.5 * (1.0 + np.sign(z) * erf)


# ---------------------------------------------------------------------------------------------
# location-keyed random fields
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeWeights:
    """Bilinear weights of points on a global node grid (``spacing`` degrees, lon periodic).

    ``index`` (point, 4) are flat node indices, ``weight`` (point, 4) the weights divided by the
    root of their sum of squares, so interpolated N(0, 1) node values stay N(0, 1) everywhere.
    """

    index: np.ndarray
    weight: np.ndarray
    n_nodes: int

    @classmethod
    def build(cls, lat: np.ndarray, lon: np.ndarray, spacing: float) -> NodeWeights:
        """Weights for points at ``lat``, ``lon`` (degrees) on a grid with ``spacing`` degrees."""
        n_lat = round(180.0 / spacing) + 1
        n_lon = round(360.0 / spacing)
        y = (np.clip(lat, -90.0, 90.0) + 90.0) / spacing
        x = np.mod(np.asarray(lon, dtype=float) + 180.0, 360.0) / spacing
        i0 = np.minimum(np.floor(y).astype(int), n_lat - 2)
        j0 = np.floor(x).astype(int) % n_lon
        fy, fx = y - i0, x - np.floor(x)
        j1 = (j0 + 1) % n_lon
        index = np.stack([i0 * n_lon + j0, i0 * n_lon + j1, (i0 + 1) * n_lon + j0, (i0 + 1) * n_lon + j1], -1)
        w = np.stack([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx], -1)
        w = w / np.sqrt((w**2).sum(-1, keepdims=True))
        return cls(index=index, weight=w, n_nodes=n_lat * n_lon)

    def used_nodes(self) -> tuple[np.ndarray, NodeWeights]:
        """The nodes the points use, and weights indexing into that subset (saves work for few points)."""
        used, inverse = np.unique(self.index, return_inverse=True)
        return used, NodeWeights(inverse.reshape(self.index.shape), self.weight, len(used))

    def interpolate(self, node_values: np.ndarray) -> np.ndarray:
        """Values (..., point) at the points from ``node_values`` (..., node)."""
        out = np.zeros((*node_values.shape[:-1], self.index.shape[0]))
        for k in range(4):
            out += node_values[..., self.index[:, k]] * self.weight[:, k]
        return out


def _innovations(seed: int, var: int, comp: int, year: int, nodes: np.ndarray) -> np.ndarray:
    """N(0, 1) innovations (day of year, node) of one variable component and year at ``nodes``.

    One random stream per node, so the cost grows with the nodes asked for, not the whole grid.
    """
    n_days = 366 if pd.Timestamp(year=year, month=12, day=31).day_of_year == 366 else 365
    columns = [np.random.default_rng([seed, var, comp, year, int(n)]).standard_normal(n_days) for n in nodes]
    return np.stack(columns, axis=1) if columns else np.zeros((n_days, 0))


def ar1_node_anomalies(
    seed: int, var: int, comp: int, years: range, phi: float, nodes: np.ndarray
) -> np.ndarray:
    """Unit-variance AR(1) anomalies (day, node) at grid ``nodes`` for consecutive ``years``.

    ``x_t = phi x_(t-1) + sqrt(1 - phi^2) e_t`` (dimensionless); each year is spun up on its
    predecessor only, so year ``y`` depends only on the innovations of ``y - 1`` and ``y`` and values
    do not depend on the requested period (nor on which other nodes are asked for).
    """
    blocks = []
    previous = _innovations(seed, var, comp, years[0] - 1, nodes)
    for year in years:
        current = _innovations(seed, var, comp, year, nodes)
        e = np.concatenate([previous, current], axis=0)  # the AR(1) starts from 0 a year early
        # x_t = sqrt(1 - phi^2) sum_k phi^k e_(t-k): a causal convolution, done by FFT
        n_fft = 1 << int(np.ceil(np.log2(2 * len(e))))
        kernel = np.sqrt(1.0 - phi**2) * phi ** np.arange(len(e))
        x = np.fft.irfft(np.fft.rfft(e, n_fft, axis=0) * np.fft.rfft(kernel, n_fft)[:, None], n_fft, axis=0)
        blocks.append(x[len(previous) : len(e)])
        previous = current
    return np.concatenate(blocks, axis=0)


def static_fields(lat: np.ndarray, lon: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Smooth, time-constant N(0, 1) fields at the points (one per name in ``_STATIC_NAMES``).

    They set the location's climate offsets (temperature, precipitation factor, seasonal amplitude),
    bucket capacity and the modulation of the ecosystem sink (used by :mod:`fluxcube.simulate.truth`).
    """
    nw = NodeWeights.build(lat, lon, STATIC_SPACING_DEG)
    rng = np.random.default_rng([seed, _VAR_STATIC])
    nodes = rng.standard_normal((len(_STATIC_NAMES), nw.n_nodes))
    return {name: nw.interpolate(nodes[i]) for i, name in enumerate(_STATIC_NAMES)}


# ---------------------------------------------------------------------------------------------
# climatology and drought
# ---------------------------------------------------------------------------------------------

_ABS_LAT = np.array([0, 10, 20, 30, 40, 50, 60, 70, 80, 90], dtype=float)
_T_MEAN = np.array([26, 26, 23, 18, 13, 7, 1, -7, -15, -20], dtype=float)  # degC
_T_AMPL = np.array([0.5, 1.0, 3.0, 6.0, 9.0, 11.0, 13.0, 15.0, 17.0, 18.0])  # K, half annual range
_T_ANOM_SD = np.array([0.8, 0.9, 1.3, 2.0, 2.6, 3.0, 3.4, 3.8, 4.0, 4.0])  # K, day-to-day


def tair_climatology(
    lat: np.ndarray, doy: np.ndarray, amplitude_factor: np.ndarray | float = 1.0
) -> np.ndarray:
    """Mean daily air temperature (degC): annual mean and a cosine cycle peaking on day 200 (north).

    Southern-hemisphere points peak half a year later. ``amplitude_factor`` (dimensionless) scales
    the seasonal half-range (continentality).
    """
    a = np.abs(lat)
    amp = np.interp(a, _ABS_LAT, _T_AMPL) * amplitude_factor
    phase = np.where(lat >= 0, 200.0, 200.0 + 365.25 / 2)
    return np.interp(a, _ABS_LAT, _T_MEAN) + amp * np.cos(2 * np.pi * (doy - phase) / 365.25)


def precip_climatology(lat: np.ndarray, doy: np.ndarray) -> np.ndarray:
    """Mean precipitation (mm d-1): a migrating ITCZ, mid-latitude storm tracks and a base rate.

    ITCZ at ``8 sin(2 pi (doy - 110)/365)`` degrees (north in boreal summer), 7 mm d-1 peak, 12 deg
    half-width; storm tracks 2.6 mm d-1 at |lat| = 47 -/+ 5 deg (poleward in local summer, which
    gives the subtropics' dry summers), 13 deg half-width equatorward and 20 deg poleward; summer
    convection over the mid-latitude continents, up to 1 mm d-1 at |lat| = 45 (12 deg half-width);
    base 0.3 mm d-1.
    """
    itcz = 8.0 * np.sin(2 * np.pi * (doy - 110.0) / 365.25)
    summer = np.cos(2 * np.pi * (doy - 200.0) / 365.25) * np.where(lat >= 0, 1.0, -1.0)
    track = 47.0 + 5.0 * summer
    storm_width = np.where(np.abs(lat) > track, 20.0, 13.0)
    return (
        7.0 * np.exp(-(((lat - itcz) / 12.0) ** 2))
        + 2.6 * np.exp(-(((np.abs(lat) - track) / storm_width) ** 2))
        + 1.0 * np.maximum(summer, 0.0) * np.exp(-(((np.abs(lat) - 45.0) / 12.0) ** 2))
        + 0.3
    )


def _ramp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """0 below ``lo``, 1 above ``hi``, linear in between (units of ``x``)."""
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0)


@dataclass(frozen=True)
class DroughtSpec:
    """A regional, one-season drought (default: Europe, 2018-like, placed in 2012).

    Inside the box ``lat_min..lat_max`` x ``lon_min..lon_max`` (degrees; cosine-squared taper over
    ``taper_deg`` outside) and from ``start_doy`` to ``end_doy`` of ``year`` (sine-squared ramps of
    ``ramp_days`` at both ends), weight ``w`` in 0..1: air temperature + ``w * warming`` (K), precipitation x
    ``(1 - w * (1 - precip_factor))``, cloudiness x ``(1 - w * cloud_reduction)``, relative
    humidity - ``w * rh_drop``.
    """

    year: int = 2012
    lat_min: float = 44.0
    lat_max: float = 60.0
    lon_min: float = -5.0
    lon_max: float = 25.0
    taper_deg: float = 5.0
    start_doy: int = 91
    end_doy: int = 265
    ramp_days: int = 30
    warming: float = 3.5
    precip_factor: float = 0.2
    cloud_reduction: float = 0.5
    rh_drop: float = 0.15

    def spatial_weight(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Weight (0..1) of each point: 1 inside the box, cos^2 taper to 0 over ``taper_deg``."""

        def taper(dist: np.ndarray) -> np.ndarray:
            d = np.clip(dist / self.taper_deg, 0.0, 1.0)
            return np.cos(0.5 * np.pi * d) ** 2

        dlat = np.maximum(self.lat_min - lat, 0) + np.maximum(lat - self.lat_max, 0)
        dlon = np.maximum(self.lon_min - lon, 0) + np.maximum(lon - self.lon_max, 0)
        return taper(dlat) * taper(dlon)

    def seasonal_weight(self, dates: pd.DatetimeIndex) -> np.ndarray:
        """Weight (0..1) of each date: 1 inside ``start_doy..end_doy`` of ``year``, sine-squared ramps."""
        doy = dates.day_of_year.to_numpy()
        edge = np.minimum(doy - self.start_doy, self.end_doy - doy) / float(self.ramp_days)
        w = np.sin(0.5 * np.pi * np.clip(edge, 0.0, 1.0)) ** 2
        return np.where(dates.year.to_numpy() == self.year, w, 0.0)

    def weight(self, dates: pd.DatetimeIndex, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Drought weight (time, point), 0..1."""
        return self.seasonal_weight(dates)[:, None] * self.spatial_weight(lat, lon)[None, :]


DEFAULT_DROUGHT = DroughtSpec()


# ---------------------------------------------------------------------------------------------
# the weather
# ---------------------------------------------------------------------------------------------


@dataclass
class Weather:
    """Daily weather at points; arrays are (time, point) unless noted. Units in the module docstring."""

    dates: pd.DatetimeIndex
    lat: np.ndarray
    lon: np.ndarray
    tair: np.ndarray
    rpot: np.ndarray
    rg: np.ndarray
    precip: np.ndarray
    vpd: np.ndarray
    swc: np.ndarray
    wai: np.ndarray
    daylength: np.ndarray
    capacity: np.ndarray  # (point,), mm
    static: dict[str, np.ndarray] = field(default_factory=dict)  # (point,), N(0, 1)

    def select(self, start: str | pd.Timestamp, end: str | pd.Timestamp) -> Weather:
        """The same weather for the dates ``start..end`` (inclusive), e.g. without a spin-up period."""
        keep = (self.dates >= pd.Timestamp(start)) & (self.dates <= pd.Timestamp(end))
        arrays = {k: getattr(self, k)[keep] for k in _TIME_VARS}
        return Weather(
            self.dates[keep], self.lat, self.lon, capacity=self.capacity, static=self.static, **arrays
        )

    def to_dataset(self) -> xr.Dataset:
        """The weather as an xarray Dataset with CF attributes (dims ``time``, ``point``)."""
        ds = xr.Dataset(
            {k: (("time", "point"), getattr(self, k).astype("float32"), dict(_CF[k])) for k in _TIME_VARS},
            coords={
                "time": self.dates,
                "lat": ("point", self.lat, {"units": "degrees_north", "standard_name": "latitude"}),
                "lon": ("point", self.lon, {"units": "degrees_east", "standard_name": "longitude"}),
            },
        )
        ds["capacity"] = ("point", self.capacity, {"units": "mm", "long_name": "soil water bucket capacity"})
        ds.attrs.update(synthetic="true", generator="fluxcube.simulate.weather")
        return ds


_TIME_VARS = ("tair", "rpot", "rg", "precip", "vpd", "swc", "wai", "daylength")
_CF = {
    "tair": {"units": "degC", "long_name": "air temperature", "standard_name": "air_temperature"},
    "rpot": {"units": "W m-2", "long_name": "potential shortwave radiation at top of atmosphere"},
    "rg": {
        "units": "W m-2",
        "long_name": "global radiation",
        "standard_name": "surface_downwelling_shortwave_flux_in_air",
    },
    "precip": {"units": "mm d-1", "long_name": "precipitation"},
    "vpd": {"units": "hPa", "long_name": "vapour pressure deficit"},
    "swc": {"units": "mm", "long_name": "soil water in bucket"},
    "wai": {"units": "1", "long_name": "water availability index (bucket fill fraction)"},
    "daylength": {"units": "h", "long_name": "day length"},
}


def _soil_water_bucket(
    tair: np.ndarray, rg: np.ndarray, precip: np.ndarray, capacity: np.ndarray
) -> np.ndarray:
    """Soil water (mm, time x point) of the snow + bucket model in the module docstring, starting full.

    ``tair`` degC, ``rg`` W m-2, ``precip`` mm d-1, ``capacity`` mm (point,).
    """
    es_kpa = saturation_vapour_pressure(tair) / 10.0
    slope = 4098.0 * es_kpa / (tair + 237.3) ** 2  # kPa K-1
    rn = 0.5 * rg * SECONDS_PER_DAY / 1e6  # MJ m-2 d-1
    pet = np.where(tair > -2.0, 1.26 * slope / (slope + 0.066) * rn / 2.45, 0.0)  # mm d-1
    snowfall = np.where(tair < 0.0, precip, 0.0)
    rain = precip - snowfall
    melt_potential = 3.0 * np.maximum(tair, 0.0)
    swc = np.empty_like(tair)
    w = capacity.astype(float).copy()
    snow = np.zeros_like(w)
    half = 0.5 * capacity
    for t in range(tair.shape[0]):
        snow += snowfall[t]
        melt = np.minimum(snow, melt_potential[t])
        snow -= melt
        et = pet[t] * np.minimum(1.0, w / half)
        w = np.clip(w + rain[t] + melt - et, 0.0, capacity)
        swc[t] = w
    return swc


def generate_weather(
    lat: np.ndarray,
    lon: np.ndarray,
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
    seed: int = 0,
    drought: DroughtSpec | None = DEFAULT_DROUGHT,
    spinup_years: int = 1,
) -> Weather:
    """Daily weather at points (``lat``, ``lon`` in degrees) for ``start..end`` (inclusive dates).

    Seeded and location-keyed (see module docstring); units: degC, W m-2, mm d-1, hPa, mm, 0..1,
    h. ``spinup_years`` years before ``start`` are simulated and dropped (bucket spin-up).
    """
    lat = np.atleast_1d(np.asarray(lat, dtype=float))
    lon = np.atleast_1d(np.asarray(lon, dtype=float))
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    first_year = start.year - spinup_years
    years = range(first_year, end.year + 1)
    dates = pd.date_range(f"{first_year}-01-01", f"{end.year}-12-31", freq="D")
    doy = dates.day_of_year.to_numpy()[:, None]
    static = static_fields(lat, lon, seed)

    full = NodeWeights.build(lat, lon, NODE_SPACING_DEG)
    nodes, nw = full.used_nodes()

    def anomaly(var: int, phi_fast: float, phi_slow: float, slow_share: float) -> np.ndarray:
        """N(0, 1) anomaly (time, point): a fast (weather) and a slow (seasonal anomaly) AR(1) part."""
        fast = ar1_node_anomalies(seed, var, _FAST, years, phi_fast, nodes)
        slow = ar1_node_anomalies(seed, var, _SLOW, years, phi_slow, nodes)
        return nw.interpolate(np.sqrt(1.0 - slow_share**2) * fast + slow_share * slow)

    z_t = anomaly(_VAR_TAIR, 0.75, 0.99, 0.25)
    z_m = anomaly(_VAR_MOIST, 0.45, 0.99, 0.3)
    # without a drought, weight 0 makes the default spec's parameters inert
    spec = drought or DEFAULT_DROUGHT
    dw = drought.weight(dates, lat, lon) if drought is not None else np.zeros(z_t.shape)

    # temperature
    amp_factor = np.clip(1.0 + 0.15 * static["amplitude"], 0.6, 1.4)
    t_clim = tair_climatology(lat[None, :], doy, amp_factor[None, :]) + 1.5 * static["tair_offset"][None, :]
    tair = t_clim + np.interp(np.abs(lat), _ABS_LAT, _T_ANOM_SD)[None, :] * z_t + spec.warming * dw

    # precipitation: wet day when u = Phi(z) > 1 - p_wet; amount exponential with the climatological mean
    p_clim = precip_climatology(lat[None, :], doy) * np.exp(0.2 * static["precip_factor"])[None, :]
    p_wet = np.clip(0.12 + 0.13 * p_clim, 0.08, 0.85)
    u = norm_cdf(z_m)
    excess = np.clip((1.0 - u) / p_wet, 1e-12, 1.0)
    drought_p = 1.0 - dw * (1.0 - spec.precip_factor)
    precip = np.where(u > 1.0 - p_wet, -np.log(excess) * p_clim / p_wet, 0.0) * drought_p

    # cloudiness and radiation
    wetness = np.clip((u - (1.0 - p_wet) + 0.15) / (p_wet + 0.15), 0.0, 1.0)
    cloud = (0.4 * p_wet + 0.6 * wetness) * (1.0 - dw * spec.cloud_reduction)
    rpot = potential_radiation(lat[None, :], doy)
    rg = rpot * (0.74 - 0.5 * cloud)

    # humidity
    rh = (
        0.25
        + 0.55 * np.tanh(p_clim / 2.0)
        + 0.12 * (wetness - 0.5)
        - 0.01 * (tair - t_clim)
        - spec.rh_drop * dw
    )
    rh = np.clip(rh, 0.1, 0.98)
    vpd = saturation_vapour_pressure(tair) * (1.0 - rh)

    capacity = np.clip(250.0 * np.exp(0.3 * static["capacity"]), 100.0, 450.0)
    swc = _soil_water_bucket(tair, rg, precip, capacity)
    weather = Weather(
        dates=dates,
        lat=lat,
        lon=lon,
        tair=tair,
        rpot=np.broadcast_to(rpot, tair.shape).copy(),
        rg=rg,
        precip=precip,
        vpd=vpd,
        swc=swc,
        wai=swc / capacity[None, :],
        daylength=np.broadcast_to(day_length(lat[None, :], doy), tair.shape).copy(),
        capacity=capacity,
        static=static,
    )
    return weather.select(start, end)
