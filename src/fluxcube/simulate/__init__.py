"""The simulated world: a known-truth twin of fluxcube's inputs, written in the real formats.

- :mod:`~fluxcube.simulate.weather`: seeded, location-keyed daily weather (Tair, Rg, Rpot, P, VPD, WAI)
  with a configurable regional drought.
- :mod:`~fluxcube.simulate.truth`: the light-use-efficiency process model giving true GPP, Reco and NEE.
- :mod:`~fluxcube.simulate.network`: the tower network (real FLUXNET2015 sites, or a generated twin).
- :mod:`~fluxcube.simulate.towers`: towers "measuring" the truth, written as FLUXNET2015 FULLSET files.
- :mod:`~fluxcube.simulate.turbulence`: the towers' friction velocity (u*) and the night-time flux they
  miss below their true u* threshold.
- :mod:`~fluxcube.simulate.world`: the gridded world (truth, ERA5, MODIS, GFAS, inversions, GCB table,
  regions) written chunk by chunk in the native formats.

Everything written is marked synthetic (``SYNTHETIC.json``). See docs/simulated-world.md.
"""

from fluxcube.simulate.network import TowerNetwork, load_network
from fluxcube.simulate.towers import write_towers
from fluxcube.simulate.truth import Fluxes, compare_with_cardamom, simulate_truth
from fluxcube.simulate.weather import DEFAULT_DROUGHT, DroughtSpec, Weather, generate_weather
from fluxcube.simulate.world import WorldSummary, write_world

__all__ = [
    "DEFAULT_DROUGHT",
    "DroughtSpec",
    "Fluxes",
    "TowerNetwork",
    "Weather",
    "WorldSummary",
    "compare_with_cardamom",
    "generate_weather",
    "load_network",
    "simulate_truth",
    "write_towers",
    "write_world",
]
