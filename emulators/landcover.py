"""Land-cover classes and their parameter sets, as plain data (no torch: the client and the
session spec import this).

The 12 calibrated plant-functional-type parameters of MdPL (Xie, Li & Yoshimura; SCIENCE.md §2,
table) with their published defaults for evergreen forest (EF), woodland (WL), grassland (GR) and
cultivation (CU), and the published calibration ranges, which are enforced. The shrubland, bare,
urban and water/ice rows are landcoupler's own choices (not from MdPL), picked inside the ranges;
for the three non-vegetated classes the leaf parameters are inert (their LAI is held at zero).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass


class LandCover(enum.IntEnum):
    """The eight land-cover classes; the integer is the tile index in every tensor."""

    EVERGREEN_BROADLEAF_FOREST = 0
    DECIDUOUS_FOREST_WOODLAND = 1
    GRASSLAND = 2
    CROPLAND = 3
    SHRUBLAND = 4
    BARE = 5
    URBAN = 6
    WATER_ICE = 7

    @property
    def short(self) -> str:
        return _SHORT[self]

    @classmethod
    def from_name(cls, name: str) -> LandCover:
        key = name.strip().lower().replace("-", "_")
        for lc in cls:
            if key in (lc.name.lower(), lc.short):
                return lc
        raise ValueError(
            f"unknown land-cover class {name!r}; known: "
            + ", ".join(f"{lc.short} ({lc.name.lower()})" for lc in cls)
        )


_SHORT = {
    LandCover.EVERGREEN_BROADLEAF_FOREST: "ebf",
    LandCover.DECIDUOUS_FOREST_WOODLAND: "dfw",
    LandCover.GRASSLAND: "grass",
    LandCover.CROPLAND: "crop",
    LandCover.SHRUBLAND: "shrub",
    LandCover.BARE: "bare",
    LandCover.URBAN: "urban",
    LandCover.WATER_ICE: "water",
}
N_CLASSES = len(LandCover)
VEGETATED = (
    LandCover.EVERGREEN_BROADLEAF_FOREST,
    LandCover.DECIDUOUS_FOREST_WOODLAND,
    LandCover.GRASSLAND,
    LandCover.CROPLAND,
    LandCover.SHRUBLAND,
)


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    units: str
    long_name: str
    low: float
    high: float


#: The 12 MdPL parameters, in this order everywhere (tensors, manifests, emulator inputs).
PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec("vegh", "m", "vegetation height", 0.5, 40.0),
    ParameterSpec("rlfv", "1", "leaf reflectance, visible", 0.05, 0.3),
    ParameterSpec("rlfn", "1", "leaf reflectance, near-infrared", 0.3, 0.7),
    ParameterSpec("tlfn", "1", "leaf transmittance, near-infrared", 0.1, 0.5),
    ParameterSpec("vgcov", "1", "vegetation cover fraction", 0.1, 1.0),
    ParameterSpec(
        "cdl", "s m-2 (as given by MdPL)", "leaf exchange coefficient, vapour", 0.01, 0.5
    ),
    ParameterSpec("chl", "s m-2 (as given by MdPL)", "leaf exchange coefficient, heat", 0.01, 0.1),
    ParameterSpec("vmax0", "mol m-2 s-1", "maximum Rubisco capacity at 25 degC", 1e-6, 1e-4),
    ParameterSpec("gradm", "1", "Ball-Berry stomatal slope m", 1.0, 20.0),
    ParameterSpec("binter", "mol m-2 s-1", "minimum stomatal conductance", 0.001, 0.1),
    ParameterSpec("effcon", "mol mol-1", "intrinsic quantum efficiency", 0.01, 0.2),
    ParameterSpec("psicr", "kPa", "critical leaf water potential", -500.0, -50.0),
)
PARAMETER_NAMES: tuple[str, ...] = tuple(p.name for p in PARAMETERS)
N_PARAMETERS = len(PARAMETERS)

_EF = (35.0, 0.10, 0.45, 0.25, 1.0, 0.11, 0.0274, 6e-5, 9.0, 0.01, 0.08, -200.0)
_WL = (20.0, 0.07, 0.40, 0.15, 1.0, 0.111, 0.0277, 6e-5, 7.5, 0.01, 0.08, -200.0)
_GR = (1.0, 0.11, 0.58, 0.25, 1.0, 0.0982, 0.0246, 6e-5, 4.0, 0.04, 0.05, -200.0)
_CU = (1.0, 0.11, 0.58, 0.25, 1.0, 0.098, 0.0246, 6e-5, 9.0, 0.01, 0.08, -200.0)
# landcoupler's choices (not MdPL): sparse, drought-adapted shrubs; inert leaf values elsewhere.
_SH = (2.0, 0.09, 0.45, 0.20, 0.6, 0.10, 0.025, 4e-5, 6.0, 0.02, 0.08, -300.0)
_INERT = (0.5, 0.10, 0.45, 0.25, 0.1, 0.10, 0.025, 3e-5, 4.0, 0.01, 0.05, -200.0)

DEFAULTS: Mapping[LandCover, tuple[float, ...]] = {
    LandCover.EVERGREEN_BROADLEAF_FOREST: _EF,
    LandCover.DECIDUOUS_FOREST_WOODLAND: _WL,
    LandCover.GRASSLAND: _GR,
    LandCover.CROPLAND: _CU,
    LandCover.SHRUBLAND: _SH,
    LandCover.BARE: _INERT,
    LandCover.URBAN: _INERT,
    LandCover.WATER_ICE: _INERT,
}


class ParameterRangeError(ValueError):
    """A parameter is outside its published range; ``parameter`` names it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
