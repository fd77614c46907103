"""FLUXNET2015 / ONEFlux variable names -> CF units, long names and plausible ranges.

A FLUXNET variable name is a base (``TA``, ``SW_IN``, ``NEE``...) followed by qualifiers
(``_F``, ``_MDS``, ``_VUT_REF``, ``_1``, ``_NIGHT``, ``_QC``, ``_RANDUNC``...). Units depend on the base
and, for carbon fluxes and precipitation, on the time step (FLUXNET2015 data product documentation):
carbon fluxes are umol CO2 m-2 s-1 half-hourly, g C m-2 d-1 daily to monthly and g C m-2 y-1 yearly;
precipitation is mm per half hour, mm d-1 daily to monthly (monthly: mean daily sum) and mm y-1 yearly.
"""

from __future__ import annotations

from dataclasses import dataclass

STEPS = ("HH", "HR", "DD", "WW", "MM", "YY")


@dataclass(frozen=True)
class VarInfo:
    long_name: str
    units: str  # CF/udunits units, or "step" for step-dependent ones (see _STEP_UNITS)
    standard_name: str | None = None
    plausible: tuple[float, float] | None = None  # range of a plausible *median*, in ``units``


_CARBON = {
    "HH": "umol m-2 s-1",
    "HR": "umol m-2 s-1",
    "DD": "g m-2 d-1",
    "WW": "g m-2 d-1",
    "MM": "g m-2 d-1",
    "YY": "g m-2 yr-1",
}
_PRECIP = {"HH": "mm", "HR": "mm", "DD": "mm d-1", "WW": "mm d-1", "MM": "mm d-1", "YY": "mm yr-1"}
_CARBON_RANGE = {"HH": (-60.0, 60.0), "HR": (-60.0, 60.0), "YY": (-3000.0, 3000.0)}

# longest matching prefix wins; "step" units resolved per time step
BASES: dict[str, VarInfo] = {
    "TA": VarInfo("air temperature", "degC", "air_temperature", (-60.0, 50.0)),
    "TMIN": VarInfo("daily minimum air temperature", "degC", "air_temperature", (-70.0, 45.0)),
    "TMAX": VarInfo("daily maximum air temperature", "degC", "air_temperature", (-60.0, 60.0)),
    "T_SONIC": VarInfo("sonic temperature", "degC", None, (-60.0, 50.0)),
    "TS": VarInfo("soil temperature", "degC", "soil_temperature", (-50.0, 50.0)),
    "SW_IN_POT": VarInfo("potential (top of atmosphere) shortwave radiation", "W m-2", None, (0.0, 600.0)),
    "SW_IN": VarInfo(
        "incoming shortwave radiation", "W m-2", "surface_downwelling_shortwave_flux_in_air", (0.0, 600.0)
    ),
    "SW_OUT": VarInfo(
        "outgoing shortwave radiation", "W m-2", "surface_upwelling_shortwave_flux_in_air", (0.0, 400.0)
    ),
    "SW_DIF": VarInfo("diffuse shortwave radiation", "W m-2", None, (0.0, 400.0)),
    "LW_IN": VarInfo(
        "incoming longwave radiation", "W m-2", "surface_downwelling_longwave_flux_in_air", (50.0, 600.0)
    ),
    "LW_OUT": VarInfo(
        "outgoing longwave radiation", "W m-2", "surface_upwelling_longwave_flux_in_air", (100.0, 700.0)
    ),
    "NETRAD": VarInfo("net radiation", "W m-2", "surface_net_downward_radiative_flux", (-200.0, 400.0)),
    "PPFD_IN": VarInfo("incoming photosynthetic photon flux density", "umol m-2 s-1", None, (0.0, 1500.0)),
    "PPFD_OUT": VarInfo("outgoing photosynthetic photon flux density", "umol m-2 s-1", None, (0.0, 500.0)),
    "PPFD_DIF": VarInfo("diffuse photosynthetic photon flux density", "umol m-2 s-1", None, (0.0, 800.0)),
    "VPD": VarInfo("vapour pressure deficit", "hPa", "water_vapor_saturation_deficit_in_air", (0.0, 80.0)),
    "RH": VarInfo("relative humidity", "%", "relative_humidity", (0.0, 100.0)),
    "PA": VarInfo("atmospheric pressure", "kPa", "surface_air_pressure", (40.0, 110.0)),
    "P": VarInfo("precipitation", "step", "precipitation_amount", None),
    "WS": VarInfo("wind speed", "m s-1", "wind_speed", (0.0, 30.0)),
    "WD": VarInfo("wind direction", "degree", "wind_from_direction", (0.0, 360.0)),
    "USTAR": VarInfo("friction velocity", "m s-1", None, (0.0, 3.0)),
    "ZL": VarInfo("stability parameter z/L", "1", None, None),
    "MO_LENGTH": VarInfo("Monin-Obukhov length", "m", None, None),
    "W_SIGMA": VarInfo("standard deviation of vertical wind", "m s-1", None, (0.0, 5.0)),
    "V_SIGMA": VarInfo("standard deviation of lateral wind", "m s-1", None, (0.0, 10.0)),
    "U_SIGMA": VarInfo("standard deviation of streamwise wind", "m s-1", None, (0.0, 10.0)),
    "CO2": VarInfo(
        "CO2 mole fraction", "umol mol-1", "mole_fraction_of_carbon_dioxide_in_air", (250.0, 800.0)
    ),
    "H2O": VarInfo("water vapour mole fraction", "mmol mol-1", None, (0.0, 60.0)),
    "CH4": VarInfo("CH4 mole fraction", "nmol mol-1", None, None),
    "FCH4": VarInfo("CH4 flux", "nmol m-2 s-1", None, None),
    "SWC": VarInfo("soil water content", "%", None, (0.0, 100.0)),
    "WTD": VarInfo("water table depth", "m", None, None),
    "G": VarInfo("soil heat flux", "W m-2", "downward_heat_flux_in_soil", (-150.0, 150.0)),
    "LE": VarInfo("latent heat flux", "W m-2", "surface_upward_latent_heat_flux", (-100.0, 400.0)),
    "H": VarInfo("sensible heat flux", "W m-2", "surface_upward_sensible_heat_flux", (-200.0, 400.0)),
    "EBC_CF": VarInfo("energy balance closure correction factor", "1", None, None),
    "NEE": VarInfo(
        "net ecosystem exchange of CO2 as carbon, positive to the atmosphere", "carbon", None, None
    ),
    "FC": VarInfo("CO2 turbulent flux (no storage correction)", "umol m-2 s-1", None, (-60.0, 60.0)),
    "SC": VarInfo("CO2 storage flux", "umol m-2 s-1", None, None),
    "RECO": VarInfo("ecosystem respiration as carbon", "carbon", None, None),
    "GPP": VarInfo(
        "gross primary production as carbon",
        "carbon",
        "gross_primary_productivity_of_biomass_expressed_as_carbon",
        None,
    ),
    "NIGHT": VarInfo("number of night-time records in the period", "1", None, None),
    "DAY": VarInfo("number of day-time records in the period", "1", None, None),
    "LAI": VarInfo("leaf area index", "1", "leaf_area_index", (0.0, 12.0)),
    "FPAR": VarInfo("fraction of absorbed photosynthetically active radiation", "1", None, (0.0, 1.0)),
}

_SPREAD_SUFFIXES = ("_SD", "_SE", "_RANDUNC", "_JOINTUNC", "_RANDUNC_N")


def base_of(name: str) -> str | None:
    """The FLUXNET base of a variable name (longest known prefix), or None if unknown."""
    best = None
    for base in BASES:
        if (name == base or name.startswith(base + "_")) and (best is None or len(base) > len(best)):
            best = base
    return best


def describe(name: str, step: str) -> tuple[dict[str, str], tuple[float, float] | None, bool]:
    """CF attributes of a FLUXNET column, its plausible-median range, and whether it is known.

    Returns ``(attrs, plausible_range, known)``. QC columns are flags (units ``1``): 0 measured,
    1-3 good/medium/poor gap-filled at half-hourly steps; at daily and longer steps the fraction of
    measured and good-quality gap-filled records.
    """
    if name.endswith("_QC"):
        target = name[: -len("_QC")]
        meaning = (
            "0 measured, 1 good, 2 medium, 3 poor quality gap-filled"
            if step in ("HH", "HR")
            else "fraction of measured and good-quality gap-filled records"
        )
        return (
            {"long_name": f"quality flag of {target}", "units": "1", "flag_meaning": meaning},
            None,
            base_of(target) is not None,
        )
    if name.endswith("_N") and base_of(name[:-2]) is not None:
        return {"long_name": f"number of records used for {name[:-2]}", "units": "1"}, None, True
    base = base_of(name)
    if base is None:
        return {"long_name": name, "units": "unknown"}, None, False
    info = BASES[base]
    units = info.units
    plausible = info.plausible
    if units == "carbon":
        units = _CARBON[step]
        plausible = _CARBON_RANGE.get(step, (-30.0, 30.0))
        if step not in ("HH", "HR") and ("_NIGHT" in name or "_DAY" in name):
            # DD..YY night/day selections are means of the half-hours, in umol m-2 s-1 (FLUXNET2015 docs)
            units = _CARBON["HH"]
    elif units == "step":
        units = _PRECIP[step]
        plausible = None
    long_name = info.long_name
    spread = next((s for s in _SPREAD_SUFFIXES if name.endswith(s)), None)
    if spread:
        long_name = f"{spread.strip('_').lower()} of {long_name}"
        plausible = None
    elif name != base:
        long_name = f"{long_name} ({name[len(base) + 1 :]})"
    attrs = {"long_name": long_name, "units": units}
    if info.standard_name and not spread and "_NIGHT" not in name and "_DAY" not in name:
        attrs["standard_name"] = info.standard_name
    if name.startswith(("TMIN", "TMAX", "TA_DAY", "VPD_DAY")) or "_NIGHT" in name or "_DAY" in name:
        plausible = None  # sub-daily selections: no median test
    return attrs, plausible, True
