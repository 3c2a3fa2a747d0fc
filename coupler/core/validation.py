"""Validation of incoming step fields against the variable registry.

Every field is checked before anything is computed, in this order per field: known name
(``known_name``), a forcing variable (``direction``), units (``units``), dtype float32/float64
(``dtype``), shape == (n_cells,) (``shape``), finite (``finite``), inside the valid range
(``valid_range``); then every required forcing must be present (``required``). The first
violation raises InvalidArgument(field=<name>, rule=<rule>). Nothing is modified.

``finite`` and ``valid_range`` are the registry's own value check (``emulators.variables.check``,
its ``VariableError`` mapped to InvalidArgument), the one the land backends run on their forcing;
the session hands the checked fields to the backend as ``emulators.landstep.CheckedForcing``, so
the forcing of a step is checked once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from coupler.errors import InvalidArgument
from emulators import variables as V

#: Accepted spellings of a registry unit that mean exactly the same (no conversion is done).
UNIT_ALIASES: Mapping[str, frozenset[str]] = {
    "1": frozenset({"1", "kg kg-1", "kg/kg", "kg kg**-1"}),
    "m s-1": frozenset({"m s-1", "m/s", "m s**-1"}),
    "W m-2": frozenset({"W m-2", "W/m2", "W m**-2", "W/m^2"}),
    "kg m-2 s-1": frozenset({"kg m-2 s-1", "kg/m2/s", "kg m**-2 s**-1"}),
    "1e-6": frozenset({"1e-6", "ppm", "umol mol-1"}),
}

ACCEPTED_DTYPES: tuple[np.dtype, ...] = (np.dtype("<f4"), np.dtype("<f8"))


def units_match(expected: str, given: str) -> bool:
    """True if ``given`` spells the registry unit ``expected`` (exactly or a listed alias)."""
    return given == expected or given.strip() in UNIT_ALIASES.get(expected, frozenset())


def _refuse(name: str, rule: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"field {name!r}: rule {rule}: {message}", field=name, rule=rule)


def check_field(name: str, values: Any, n_cells: int, units: str | None = None) -> np.ndarray:
    """Check one forcing field; return it as a new float64 (cell,) array (a copy).

    ``units`` None means "not given" (in-process callers); the wire always passes the string
    it received, and an empty string is then a units error.
    """
    checked = check_values(name, values, n_cells, units)
    return to_float64(checked)


def check_values(name: str, values: Any, n_cells: int, units: str | None = None) -> np.ndarray:
    """Every rule of :func:`check_field`, on the values as given (float32 stays float32: its
    conversion to float64 is exact, so finite and range read the same); returns ``values``
    (not copied, not modified)."""
    var = V.REGISTRY.get(name)
    if var is None:
        raise _refuse(
            name, "known_name", f"unknown variable; forcing fields are {', '.join(V.FORCING)}"
        )
    if var.direction is not V.Direction.TO_LAND:
        raise _refuse(
            name,
            "direction",
            f"{name} is a {var.direction.value} variable, not "
            f"forcing; forcing fields are {', '.join(V.FORCING)}",
        )
    if units is not None and not units_match(var.units, units):
        raise _refuse(name, "units", f"units {units!r}, expected {var.units!r}")
    if not isinstance(values, np.ndarray):
        raise _refuse(name, "dtype", f"expected a numpy array, got {type(values).__name__}")
    if values.dtype.newbyteorder("<") not in ACCEPTED_DTYPES or values.dtype.kind != "f":
        raise _refuse(name, "dtype", f"dtype {values.dtype}, expected float32 or float64")
    if values.shape != (n_cells,):
        raise _refuse(name, "shape", f"shape {values.shape}, expected ({n_cells},)")
    try:
        V.check(name, values)
    except V.VariableError as exc:
        raise _refuse(name, exc.rule, str(exc)) from None
    return values


def to_float64(values: np.ndarray) -> np.ndarray:
    """A new, writable, native float64 copy of checked values: the one conversion between the
    wire and the backends (a float32 field is converted, a float64 one copied once, so the
    session owns what it hands to the backend and the recorder)."""
    return values.astype(np.float64, copy=True)


def validate_forcing(
    fields: Mapping[str, Any], n_cells: int, units: Mapping[str, str] | None = None
) -> dict[str, np.ndarray]:
    """Check all forcing ``fields`` of one step (see the module docstring).

    Returns name -> float64 (cell,) copies owned by the caller, in registry order. ``units``
    maps field names to the units the caller declared (missing entries: not declared).
    """
    if not isinstance(fields, Mapping):
        raise InvalidArgument(
            "fields: expected a mapping of name to array", field="fields", rule="type"
        )
    checked: dict[str, np.ndarray] = {}
    for name, values in fields.items():
        if not isinstance(name, str):
            raise _refuse(str(name), "known_name", "field names must be strings")
        given = None if units is None else units.get(name)
        checked[name] = check_field(name, values, n_cells, given)
    for name in V.REQUIRED_FORCING:
        if name not in checked:
            raise _refuse(name, "required", "required forcing field is missing")
    return {name: checked[name] for name in V.FORCING if name in checked}
