"""The data contract: every variable landcoupler exchanges, stores or observes, declared once.

Names are CMIP6/CF short names, units are SI as CMIP writes them (UDUNITS strings). The registry
is used for validation (``check``), for Zarr/CF attributes (``cf_attrs``) and for manifests.

Sign conventions (CF ``positive`` attribute): turbulent and radiative fluxes leaving the surface
(``hfls``, ``hfss``, ``rsus``, ``rlus``, ``evspsbl``) are positive *upward*; the ground heat flux
``hfdsl`` is positive *downward* (into the ground); incoming radiation ``rsds``/``rlds`` and
precipitation ``pr`` are positive downward.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


class Direction(enum.Enum):
    """Which way a variable flows through the coupler."""

    TO_LAND = "to_land"  # forcing sent by the atmosphere every step
    TO_ATMOSPHERE = "to_atmosphere"  # land fields returned to the atmosphere
    DIAGNOSTIC = "diagnostic"  # land diagnostics a session may request
    STATE = "state"  # prognostic land state (per member, cell)
    STATIC = "static"  # per-cell constants (grid, land cover)


@dataclass(frozen=True)
class Variable:
    name: str
    units: str
    direction: Direction
    long_name: str
    standard_name: str | None
    valid_min: float
    valid_max: float
    positive: str | None = None  # CF "up" / "down" for fluxes
    observable: bool = False  # can arrive as an observation for assimilation
    required: bool = False  # a TO_LAND field the atmosphere must send every step

    def __post_init__(self) -> None:
        if not self.valid_min < self.valid_max:
            raise ValueError(
                f"{self.name}: valid_min {self.valid_min} >= valid_max {self.valid_max}"
            )
        if self.positive not in (None, "up", "down"):
            raise ValueError(f"{self.name}: positive must be 'up', 'down' or None")

    def cf_attrs(self) -> dict[str, Any]:
        """CF attributes for a Zarr/netCDF variable."""
        attrs: dict[str, Any] = {
            "units": self.units,
            "long_name": self.long_name,
            "valid_min": self.valid_min,
            "valid_max": self.valid_max,
        }
        if self.standard_name:
            attrs["standard_name"] = self.standard_name
        if self.positive:
            attrs["positive"] = self.positive
        return attrs


class VariableError(ValueError):
    """A value or name violates the data contract. ``variable`` and ``rule`` say which and why."""

    def __init__(self, variable: str, rule: str, message: str) -> None:
        super().__init__(message)
        self.variable = variable
        self.rule = rule


_D = Direction
_VARIABLES: tuple[Variable, ...] = (
    # ---- atmosphere -> land (forcing at the lowest model level / surface) -------------------
    Variable(
        "tas",
        "K",
        _D.TO_LAND,
        "Near-Surface Air Temperature",
        "air_temperature",
        180.0,
        340.0,
        required=True,
    ),
    Variable(
        "huss",
        "1",
        _D.TO_LAND,
        "Near-Surface Specific Humidity",
        "specific_humidity",
        0.0,
        0.06,
        required=True,
    ),
    Variable(
        "ps",
        "Pa",
        _D.TO_LAND,
        "Surface Air Pressure",
        "surface_air_pressure",
        40_000.0,
        110_000.0,
        required=True,
    ),
    Variable(
        "sfcWind",
        "m s-1",
        _D.TO_LAND,
        "Near-Surface Wind Speed",
        "wind_speed",
        0.0,
        75.0,
        required=True,
    ),
    Variable(
        "pr",
        "kg m-2 s-1",
        _D.TO_LAND,
        "Precipitation",
        "precipitation_flux",
        0.0,
        0.1,
        positive="down",
        required=True,
    ),
    Variable(
        "rsds",
        "W m-2",
        _D.TO_LAND,
        "Surface Downwelling Shortwave Radiation",
        "surface_downwelling_shortwave_flux_in_air",
        0.0,
        1450.0,
        positive="down",
        required=True,
    ),
    Variable(
        "rlds",
        "W m-2",
        _D.TO_LAND,
        "Surface Downwelling Longwave Radiation",
        "surface_downwelling_longwave_flux_in_air",
        30.0,
        700.0,
        positive="down",
        required=True,
    ),
    Variable(
        "co2",
        "1e-6",
        _D.TO_LAND,
        "Atmospheric CO2 Mole Fraction (ppm)",
        "mole_fraction_of_carbon_dioxide_in_air",
        150.0,
        2500.0,
    ),
    # ---- land -> atmosphere ----------------------------------------------------------------
    Variable(
        "hfls",
        "W m-2",
        _D.TO_ATMOSPHERE,
        "Surface Upward Latent Heat Flux",
        "surface_upward_latent_heat_flux",
        -800.0,
        1500.0,
        positive="up",
        observable=True,
    ),
    Variable(
        "hfss",
        "W m-2",
        _D.TO_ATMOSPHERE,
        "Surface Upward Sensible Heat Flux",
        "surface_upward_sensible_heat_flux",
        -800.0,
        1500.0,
        positive="up",
        observable=True,
    ),
    Variable(
        "hfdsl",
        "W m-2",
        _D.TO_ATMOSPHERE,
        "Downward Heat Flux at Land Surface",
        "surface_downward_heat_flux_in_soil",
        -1000.0,
        1000.0,
        positive="down",
    ),
    Variable(
        "ts",
        "K",
        _D.TO_ATMOSPHERE,
        "Surface (Skin) Temperature",
        "surface_temperature",
        180.0,
        360.0,
        observable=True,
    ),
    Variable("albedo", "1", _D.TO_ATMOSPHERE, "Surface Albedo", "surface_albedo", 0.0, 1.0),
    Variable(
        "rsus",
        "W m-2",
        _D.TO_ATMOSPHERE,
        "Surface Upwelling Shortwave Radiation",
        "surface_upwelling_shortwave_flux_in_air",
        0.0,
        1450.0,
        positive="up",
    ),
    Variable(
        "rlus",
        "W m-2",
        _D.TO_ATMOSPHERE,
        "Surface Upwelling Longwave Radiation",
        "surface_upwelling_longwave_flux_in_air",
        50.0,
        1000.0,
        positive="up",
    ),
    Variable(
        "evspsbl",
        "kg m-2 s-1",
        _D.TO_ATMOSPHERE,
        "Evaporation Including Sublimation and Transpiration",
        "water_evapotranspiration_flux",
        -0.001,
        0.002,
        positive="up",
    ),
    Variable(
        "z0",
        "m",
        _D.TO_ATMOSPHERE,
        "Surface Roughness Length",
        "surface_roughness_length",
        1e-5,
        10.0,
    ),
    # ---- diagnostics -----------------------------------------------------------------------
    Variable(
        "lai", "1", _D.DIAGNOSTIC, "Leaf Area Index", "leaf_area_index", 0.0, 15.0, observable=True
    ),
    Variable(
        "mrsos",
        "kg m-2",
        _D.DIAGNOSTIC,
        "Moisture in Upper Portion of Soil Column",
        "mass_content_of_water_in_soil_layer",
        0.0,
        200.0,
    ),
    Variable(
        "mrso",
        "kg m-2",
        _D.DIAGNOSTIC,
        "Total Soil Moisture Content",
        "mass_content_of_water_in_soil",
        0.0,
        5000.0,
    ),
    Variable("mrro", "kg m-2 s-1", _D.DIAGNOSTIC, "Total Runoff", "runoff_flux", 0.0, 0.1),
    Variable(
        "gpp",
        "kg m-2 s-1",
        _D.DIAGNOSTIC,
        "Carbon Mass Flux out of Atmosphere Due to Gross Primary Production on Land",
        "gross_primary_productivity_of_biomass_expressed_as_carbon",
        0.0,
        1e-6,
    ),
    Variable(
        "tran",
        "kg m-2 s-1",
        _D.DIAGNOSTIC,
        "Transpiration",
        "transpiration_flux",
        -0.001,
        0.002,
        positive="up",
    ),
    Variable(
        "rns",
        "W m-2",
        _D.DIAGNOSTIC,
        "Surface Net Radiation (rsds-rsus+rlds-rlus)",
        "surface_net_downward_radiative_flux",
        -500.0,
        1500.0,
        positive="down",
    ),
    # ---- prognostic state ------------------------------------------------------------------
    Variable(
        "cLeaf",
        "kg m-2",
        _D.STATE,
        "Carbon Mass in Leaves",
        "leaf_mass_content_of_carbon",
        0.0,
        2.0,
    ),
    Variable("tsl", "K", _D.STATE, "Temperature of Soil", "soil_temperature", 180.0, 360.0),
    # ---- static ----------------------------------------------------------------------------
    Variable("lat", "degrees_north", _D.STATIC, "Latitude", "latitude", -90.0, 90.0),
    Variable("lon", "degrees_east", _D.STATIC, "Longitude", "longitude", -360.0, 360.0),
    Variable("areacella", "m2", _D.STATIC, "Grid-Cell Area", "cell_area", 0.0, 1e13),
    Variable(
        "sftlf",
        "%",
        _D.STATIC,
        "Percentage of the Grid Cell Occupied by Land",
        "land_area_fraction",
        0.0,
        100.0,
    ),
    Variable(
        "landCoverFrac",
        "%",
        _D.STATIC,
        "Percentage of Land Area by Land-Cover Class",
        "area_fraction",
        0.0,
        100.0,
    ),
)

REGISTRY: Mapping[str, Variable] = {v.name: v for v in _VARIABLES}

FORCING: tuple[str, ...] = tuple(v.name for v in _VARIABLES if v.direction is _D.TO_LAND)
REQUIRED_FORCING: tuple[str, ...] = tuple(
    v.name for v in _VARIABLES if v.direction is _D.TO_LAND and v.required
)
LAND_OUTPUTS: tuple[str, ...] = tuple(
    v.name for v in _VARIABLES if v.direction in (_D.TO_ATMOSPHERE, _D.DIAGNOSTIC)
)
OBSERVABLE: tuple[str, ...] = tuple(v.name for v in _VARIABLES if v.observable)


def get(name: str) -> Variable:
    """The registry entry for ``name``; a precise error for an unknown name."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise VariableError(
            name, "known_name", f"unknown variable {name!r}; known: {', '.join(sorted(REGISTRY))}"
        ) from None


def check(name: str, values: Any, units: str | None = None) -> None:
    """Validate ``values`` of variable ``name``: units (if given), finite, inside the valid range.

    Raises :class:`VariableError` naming the variable and the violated rule. ``values`` may be a
    numpy array, a torch tensor or a scalar.
    """
    var = get(name)
    if units is not None and units != var.units:
        raise VariableError(name, "units", f"{name}: units {units!r}, expected {var.units!r}")
    arr = _as_numpy(name, values)
    if arr.size == 0:
        return
    # two passes, no temporaries: min and max propagate NaN and are ±inf for an infinity, so
    # both finite means every value is; the count for the message only on refusal
    lo, hi = float(arr.min()), float(arr.max())
    if not (math.isfinite(lo) and math.isfinite(hi)):
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise VariableError(name, "finite", f"{name}: {bad} non-finite value(s) (NaN or inf)")
    if lo < var.valid_min or hi > var.valid_max:
        raise VariableError(
            name,
            "valid_range",
            f"{name}: values span [{lo:.6g}, {hi:.6g}] {var.units}, outside the valid range "
            f"[{var.valid_min:g}, {var.valid_max:g}] {var.units}",
        )


def check_all(fields: Mapping[str, Any], names: Iterable[str] | None = None) -> None:
    """Validate several fields; ``names`` (default: all of ``fields``) must all be present."""
    for name in names if names is not None else fields:
        if name not in fields:
            raise VariableError(name, "required", f"required field {name!r} is missing")
        check(name, fields[name])


def _as_numpy(name: str, values: Any) -> np.ndarray:
    if hasattr(values, "detach"):
        return values.detach().cpu().numpy()
    arr = np.asarray(values)
    if arr.dtype.kind not in "fiu":
        raise VariableError(
            name, "dtype", f"{name}: expected numeric values, got dtype {arr.dtype}"
        )
    return arr
