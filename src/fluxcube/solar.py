"""Solar geometry shared by the simulator and site processing (Spencer 1971 Fourier series)."""

from __future__ import annotations

import numpy as np


def declination(day_angle: np.ndarray) -> np.ndarray:
    """Solar declination (radians) for the day angle ``2 pi (doy - 1) / 365`` (radians), Spencer (1971)."""
    g = np.asarray(day_angle)
    return (
        0.006918
        - 0.399912 * np.cos(g)
        + 0.070257 * np.sin(g)
        - 0.006758 * np.cos(2 * g)
        + 0.000907 * np.sin(2 * g)
        - 0.002697 * np.cos(3 * g)
        + 0.00148 * np.sin(3 * g)
    )


def equation_of_time(day_angle: np.ndarray) -> np.ndarray:
    """Equation of time (minutes) for the day angle (radians), Spencer (1971)."""
    g = np.asarray(day_angle)
    return 229.18 * (
        0.000075
        + 0.001868 * np.cos(g)
        - 0.032077 * np.sin(g)
        - 0.014615 * np.cos(2 * g)
        - 0.040849 * np.sin(2 * g)
    )
