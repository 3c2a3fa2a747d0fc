"""Shared fixtures of the LULC downscaler tests: real static features of a few windows (the
package masks are decoded once per test session, ≈ 20 s)."""

from __future__ import annotations

import numpy as np
import pytest

from emulators.lulc import features
from emulators.lulc.grid import Window

#: 48 × 48 pixels (4° × 4°, 40–36° N, 10–6° W): the Atlantic, Portugal and south-west Spain.
GIBRALTAR = Window.around(40.0, -10.0, 48, 48)
#: Western Great Lakes: Lake Superior (lake, not ocean) and forest/cropland.
SUPERIOR = Window.around(49.0, -90.0, 48, 48)  # 49–45° N, 90–86° W


@pytest.fixture(scope="session")
def gibraltar() -> np.ndarray:
    return features.compute(GIBRALTAR)


@pytest.fixture(scope="session")
def superior() -> np.ndarray:
    return features.compute(SUPERIOR)


#: 2 × 3 super-blocks (24° × 36°, 60–36° N, 12° W–24° E): western and central Europe.
EUROPE = Window(row0=360, col0=2016, nrows=288, ncols=432)


@pytest.fixture(scope="session")
def europe() -> np.ndarray:
    return features.compute(EUROPE)
