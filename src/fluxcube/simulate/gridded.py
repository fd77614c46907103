"""The truth on the grid: weather and fluxes of a band of land cells for one year.

Each year is simulated on its own, band of grid rows by band: :func:`simulate_band` calls the weather
generator for the year and the year before (plus the generator's own spin-up year), runs the process
model of :mod:`fluxcube.simulate.truth` on it and keeps the year (and the last day of the year before,
which the ERA5 accumulations ending at 00 UTC on 1 January need). A year's values therefore depend only
on the seed, the cell and the year, not on the world's period or on how the grid is cut into bands.

``R_ref`` is diagnosed once per cell by :func:`fluxcube.simulate.truth.diagnose_r_ref` with the world's
``sink_scale`` (default :data:`~fluxcube.simulate.truth.DEFAULT_SINK_SCALE`, the towers' default too): with
the unscaled PFT sink fractions (set to match FLUXNET sites) the global land would take up about 17 Pg C
per year, five times too much; 0.17 gives a global NEE of about -3.2 Pg C per year (2001-2017 mean; -1.7
to -4.6 in single years), and with fire (about +1 Pg C per year) a net land sink of about 2.2 Pg C per
year. With the same ``sink_scale`` a cell's truth is exactly the towers' truth at its centre and PFT.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fluxcube.simulate.fire import fire_emissions
from fluxcube.simulate.truth import DEFAULT_SINK_SCALE, ecosystem_fluxes
from fluxcube.simulate.weather import DroughtSpec, generate_weather

__all__ = ["DEFAULT_SINK_SCALE", "WEATHER_VARS", "BandYear", "simulate_band"]
_FIRE_STREAM = 130
#: weather variables kept for the drivers and the remote sensing (time, point)
WEATHER_VARS = ("tair", "rg", "rpot", "precip", "vpd", "wai", "daylength")


@dataclass
class BandYear:
    """One year of one band: ``dates`` the year's days; ``weather`` arrays (1 + days, point) whose first
    row is 31 December of the year before (units of :mod:`fluxcube.simulate.weather`); fluxes (days,
    point) in g C m-2 d-1: ``nee``, ``gpp``, ``reco``, ``fire`` (carbon emitted by fires); ``fapar`` 0..1."""

    year: int
    dates: pd.DatetimeIndex
    weather: dict[str, np.ndarray]
    nee: np.ndarray
    gpp: np.ndarray
    reco: np.ndarray
    fapar: np.ndarray
    fire: np.ndarray


def simulate_band(
    lat: np.ndarray,
    lon: np.ndarray,
    pfts: Sequence[str],
    r_ref: np.ndarray,
    sink: np.ndarray,
    year: int,
    seed: int,
    drought: DroughtSpec | None,
    stream_key: int,
) -> BandYear:
    """Weather, true fluxes and fire of the points for ``year`` (see the module docstring).

    ``stream_key`` (e.g. the band's first row) keys the fire's random stream with ``seed`` and ``year``.
    """
    weather = generate_weather(lat, lon, f"{year - 1}-01-01", f"{year}-12-31", seed=seed, drought=drought)
    fluxes = ecosystem_fluxes(weather, list(pfts), r_ref, sink)
    rng = np.random.default_rng([seed, _FIRE_STREAM, year, stream_key])
    fire = fire_emissions(pfts, fluxes.gpp, weather.wai, weather.precip, weather.tair, rng)
    this = weather.dates.year == year
    first = int(np.argmax(this))
    keep = slice(first - 1, None)  # 31 December of the year before, then the year
    return BandYear(
        year=year,
        dates=weather.dates[this],
        weather={k: getattr(weather, k)[keep] for k in WEATHER_VARS},
        nee=fluxes.nee[this],
        gpp=fluxes.gpp[this],
        reco=fluxes.reco[this],
        fapar=fluxes.fapar[this],
        fire=fire[this],
    )
