"""The driver table: every driver's name, source, formula, units and time step, and its CF attributes.

This table is the single source of the attributes written to the site driver store and the global
driver cube, of the driver order in a driver matrix, and of the table in ``docs/drivers.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

#: MODIS 8-day indices (input store ``modis_8day_0p5deg``) -> (units, long name).
MODIS_INDICES: dict[str, tuple[str, str]] = {
    "EVI": ("1", "enhanced vegetation index"),
    "fAPAR": ("1", "fraction of absorbed photosynthetically active radiation"),
    "LST_day": ("K", "daytime land surface temperature"),
    "LST_night": ("K", "night-time land surface temperature"),
    "MIR": ("1", "middle-infrared (band 7, 2105-2155 nm) surface reflectance"),
    "NDVI": ("1", "normalised difference vegetation index"),
    "NDWI": ("1", "normalised difference water index (bands 2 and 6)"),
}
#: Seasonal metrics of each mean seasonal cycle -> long-name template.
METRICS: dict[str, str] = {
    "min": "minimum of the mean seasonal cycle of {}",
    "max": "maximum of the mean seasonal cycle of {}",
    "amp": "amplitude (maximum - minimum) of the mean seasonal cycle of {}",
    "mean": "annual mean of the mean seasonal cycle of {}",
}


@dataclass(frozen=True)
class Driver:
    """One driver: what it is, where it comes from, how it is computed."""

    name: str
    units: str
    long_name: str
    source: str
    formula: str
    time_step: str  # "daily", "day of year" (a mean seasonal cycle) or "static" (one value per pixel)
    standard_name: str = ""

    def attrs(self) -> dict[str, str]:
        """CF attributes of the driver's variable."""
        out = {
            "units": self.units,
            "long_name": self.long_name,
            "source": self.source,
            "formula": self.formula,
        }
        if self.standard_name:
            out["standard_name"] = self.standard_name
        return out


def _table() -> dict[str, Driver]:
    out: dict[str, Driver] = {
        "Tair": Driver(
            "Tair",
            "degC",
            "daily mean air temperature at 2 m",
            "era5_daily_0p5deg Tair",
            "copied (ERA5 t2m daily mean, 0.5 deg cell)",
            "daily",
            "air_temperature",
        ),
        "Rg": Driver(
            "Rg",
            "W m-2",
            "daily mean global radiation (surface downward short-wave)",
            "era5_daily_0p5deg Rg",
            "copied (ERA5 ssrd daily mean, 0.5 deg cell)",
            "daily",
            "surface_downwelling_shortwave_flux_in_air",
        ),
        "Rpot": Driver(
            "Rpot",
            "W m-2",
            "daily mean potential (top-of-atmosphere) radiation on a horizontal surface",
            "solar geometry (fluxcube.solar: Spencer 1971 declination)",
            "S0/pi dr (ws sin(phi) sin(d) + cos(phi) cos(d) sin(ws)), S0 = 1366.1 W m-2, "
            "dr = 1 + 0.033 cos(2 pi doy / 365), ws = arccos(-tan(phi) tan(d))",
            "day of year",
        ),
        "WAI": Driver(
            "WAI",
            "1",
            "water availability index: soil water of a daily bucket over its capacity",
            "era5_daily_0p5deg P, Tair, Rg",
            "W(t) = min(C, W(t-1) + P) - ET, ET = min(PET, k min(C, W(t-1) + P)), PET Priestley-Taylor "
            "from Rn = 0.6 Rg and Tair; WAI = W / C (C = 150 mm, k = 0.05 d-1)",
            "daily",
        ),
    }
    for name, (units, long_name) in MODIS_INDICES.items():
        out[f"{name}_msc"] = Driver(
            f"{name}_msc",
            units,
            f"mean seasonal cycle of {long_name}",
            f"modis_8day_0p5deg {name}",
            "per pixel mean over all years of each 8-day composite slot (day of year), clouds (NaN) "
            "skipped; empty slots and days between slot centres by periodic linear interpolation",
            "day of year",
        )
        for metric, template in METRICS.items():
            out[f"{name}_msc_{metric}"] = Driver(
                f"{name}_msc_{metric}",
                units,
                template.format(long_name),
                f"{name}_msc",
                f"{metric} over the 366 days of {name}_msc",
                "static",
            )
    return out


#: All drivers, in the order of the driver dimension of a driver matrix.
DRIVERS: dict[str, Driver] = _table()
DAILY = [n for n, d in DRIVERS.items() if d.time_step == "daily"]
SEASONAL = [n for n, d in DRIVERS.items() if d.time_step == "day of year"]
STATIC = [n for n, d in DRIVERS.items() if d.time_step == "static"]


def markdown_table() -> str:
    """The driver table as Markdown (name, source, formula, units, time step)."""
    lines = ["| name | source | formula | units | time step |", "|---|---|---|---|---|"]
    for d in DRIVERS.values():
        lines.append(f"| `{d.name}` | {d.source} | {d.formula} | {d.units} | {d.time_step} |")
    return "\n".join(lines)
