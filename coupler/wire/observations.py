"""Observation batches (re-exported from :mod:`coupler.core.observations`, where the checks
live so that the session and the Zarr observation file reader share them). No gRPC here."""

from __future__ import annotations

from coupler.core.observations import (
    MAX_OBSERVATIONS,
    ObservationBatch,
    Parsed,
    parse,
    parse_all,
    validate,
    validate_all,
)

__all__ = [
    "MAX_OBSERVATIONS",
    "ObservationBatch",
    "Parsed",
    "parse",
    "parse_all",
    "validate",
    "validate_all",
]
