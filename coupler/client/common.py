"""What both clients share: the spec of an ``open_session`` call."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from coupler.errors import CouplerError
from coupler.spec import SessionSpec
from coupler.wire.status import CouplerRpcError


def spec_from_arguments(spec: SessionSpec | None, fields: Mapping[str, Any]) -> SessionSpec:
    """``spec`` itself, or the spec of the keyword arguments ``fields``; a bad spec raises
    CouplerRpcError INVALID_ARGUMENT naming the field and rule, as the server would."""
    if spec is not None:
        if fields:
            raise TypeError(
                f"open_session: give a SessionSpec or its fields, not both ({sorted(fields)})"
            )
        if not isinstance(spec, SessionSpec):
            raise TypeError(f"open_session: expected a SessionSpec, got {type(spec).__name__}")
        return spec
    if any(fields.get(k) is None for k in ("lat", "lon", "start")):
        raise ValueError("open_session: lat, lon and start are required (or resume_from)")
    try:
        return SessionSpec.of(**fields)
    except CouplerError as exc:
        raise CouplerRpcError.from_domain(exc) from None


@dataclass(frozen=True)
class LandCoverUpdate:
    """The answer to ``Session.update_land_cover``: cells whose fractions changed; per cell
    (ensemble mean) what left the cell, ``released["released_water"]`` [kg m-2],
    ``["released_heat"]`` [J m-2] and ``["released_carbon"]`` [kg C m-2]; the conservation
    residuals (max over members and cells of |stores after + released − stores before|):
    water [kg m-2], energy (soil heat relative to 273.15 K) [J m-2], carbon [kg C m-2]."""

    cells_changed: int
    water_residual: float
    energy_residual: float
    carbon_residual: float
    released: dict[str, np.ndarray]


#: what ``describe`` reports of each variable
VARIABLE_KEYS = (
    "units", "direction", "long_name", "valid_min", "valid_max", "required", "observable",
    "positive",
)  # fmt: skip


def capabilities(details: Mapping[str, Any]) -> dict[str, Any]:
    """``describe()``'s answer from the core's own description (``SessionManager.describe``),
    in the shape the gRPC client builds from a DescribeReply."""
    from importlib import metadata

    from coupler.wire.fields import CODECS

    try:
        version = metadata.version("landcoupler")
    except metadata.PackageNotFoundError:  # pragma: no cover  (source tree without install)
        version = "unknown"
    return {
        "server_version": version,
        "protocol": "landcoupler.v1",
        "backends": list(details["backends"]),
        "codecs": list(CODECS),
        "variables": {
            v["name"]: {k: (v[k] or None) if k == "positive" else v[k] for k in VARIABLE_KEYS}
            for v in details["variables"]
        },
        "details": dict(details),
    }
