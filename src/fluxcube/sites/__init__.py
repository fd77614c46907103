"""Site processing of half-hourly eddy-covariance data (design step 3).

QC flags, u* filtering, MDS gap filling, night- and day-time partitioning, random uncertainty and
daily aggregation, as in the FLUXNET pipeline (REddyProc / ONEFlux), vectorised with numpy.
Entry point: :func:`process_site`; readers: :func:`read_halfhourly`.
"""

from fluxcube.sites.common import StepError
from fluxcube.sites.gapfill import GapFillResult, mds_gapfill
from fluxcube.sites.partition import daytime_partition, light_response, lloyd_taylor, nighttime_partition
from fluxcube.sites.pipeline import process_site
from fluxcube.sites.timestamps import read_halfhourly, regular_grid
from fluxcube.sites.uncertainty import daily_sums, monthly_from_daily, random_uncertainty
from fluxcube.sites.ustar import UstarResult, low_turbulence, ustar_threshold

__all__ = [
    "GapFillResult",
    "StepError",
    "UstarResult",
    "daily_sums",
    "daytime_partition",
    "light_response",
    "lloyd_taylor",
    "low_turbulence",
    "mds_gapfill",
    "monthly_from_daily",
    "nighttime_partition",
    "process_site",
    "random_uncertainty",
    "read_halfhourly",
    "regular_grid",
    "ustar_threshold",
]
