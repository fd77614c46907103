"""fluxcube: a cloud-native data platform for land-atmosphere CO2 fluxes."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fluxcube")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+src"

__all__ = ["__version__"]
