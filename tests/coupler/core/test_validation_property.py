"""Hypothesis: random malformed step messages are always refused precisely (field + rule) and
never change the session; a message the independent oracle calls valid always goes through."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coupler.core.manager import SessionManager
from coupler.core.validation import UNIT_ALIASES
from coupler.errors import InvalidArgument
from emulators import variables as V

from .conftest import assert_unchanged, config, forcing, snapshot

N = 4
RULES = {"known_name", "direction", "units", "dtype", "shape", "finite", "valid_range", "required"}
NAMES = [*V.FORCING, "hfls", "lai", "lat", "Tas", "", "tas ", "x" * 40]
DTYPES = ["<f8", "<f4", ">f8", "<f2", "<i4", "<u1", "bool", "<c16"]
SPECIAL = [np.nan, np.inf, -np.inf, -1.0, 0.0, 1e9, -1e9, 1e-30]


@st.composite
def messages(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, str] | None]:
    fields: dict[str, Any] = dict(forcing(draw(st.integers(0, 23)), N))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["drop", "add", "dtype", "shape", "value", "list"]))
        name = draw(st.sampled_from(NAMES))
        if kind == "drop":
            fields.pop(name, None)
        elif kind == "add":
            fields[name] = np.full(N, draw(st.floats(allow_nan=True, allow_infinity=True)))
        elif kind == "dtype" and name in fields:
            with np.errstate(over="ignore", invalid="ignore"):
                fields[name] = np.asarray(fields[name]).astype(draw(st.sampled_from(DTYPES)))
        elif kind == "shape":
            shape = draw(st.sampled_from([(N - 1,), (N + 1,), (0,), (1, N), (N, 1), ()]))
            fields[name] = np.full(shape, 1.0)
        elif kind == "value" and name in fields:
            arr = np.array(fields[name], dtype=np.float64)
            if arr.shape == (N,):
                arr[draw(st.integers(0, N - 1))] = draw(st.sampled_from(SPECIAL))
            fields[name] = arr
        elif kind == "list":
            fields[name] = [1.0] * N
    units = None
    if draw(st.booleans()):
        units = {n: (V.REGISTRY[n].units if n in V.REGISTRY else "1") for n in fields}
        if draw(st.booleans()) and units:
            units[draw(st.sampled_from(sorted(units)))] = draw(st.sampled_from(["K", "", "ppm"]))
    return fields, units


def _field_ok(name: str, value: Any, units: dict[str, str] | None) -> bool:
    """An independent statement of the data contract for one field."""
    var = V.REGISTRY.get(name)
    if var is None or var.direction is not V.Direction.TO_LAND:
        return False
    if units is not None and name in units:
        given = units[name]
        if given != var.units and given not in UNIT_ALIASES.get(var.units, ()):
            return False
    if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
        return False
    if value.dtype.itemsize not in (4, 8) or value.shape != (N,):
        return False
    v = value.astype(np.float64)
    return bool(np.isfinite(v).all() and v.min() >= var.valid_min and v.max() <= var.valid_max)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_random_malformed_messages(message: tuple[dict[str, Any], dict[str, str] | None]) -> None:
    fields, units = message
    manager = SessionManager()
    session = manager.open(config(N), "alice")
    session.step(0, forcing(0, N))
    before = snapshot(session)
    bad = {n for n, v in fields.items() if not _field_ok(n, v, units)}
    missing = set(V.REQUIRED_FORCING) - set(fields)
    try:
        reply = session.step(1, fields, units)
    except InvalidArgument as err:
        assert bad or missing, f"refused a valid message: {err}"
        assert err.rule in RULES
        assert err.field in bad | missing, (err.field, bad, missing)
        assert_unchanged(session, before)
    else:
        assert not bad and not missing
        assert session.next_index == 2
        assert all(np.isfinite(v).all() for v in reply.values())
    manager.shutdown(checkpoint=False)
