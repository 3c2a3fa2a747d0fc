"""The spec ring: what a session is and what crosses the seam between a model and the service,
as plain validated data (numpy, no torch, no gRPC): :class:`SessionSpec`, :class:`GridSpec`,
:class:`ObservationBatch`, RFC 3339 times. The core, the wire and both clients share it."""

from __future__ import annotations

from coupler.spec.codecs import CodecSpec
from coupler.spec.grid import GridSpec
from coupler.spec.observations import ObservationBatch
from coupler.spec.record import RecordOptions
from coupler.spec.session import DEFAULT_DA_MEMBERS, SessionSpec, assimilation_config

__all__ = [
    "DEFAULT_DA_MEMBERS",
    "CodecSpec",
    "GridSpec",
    "ObservationBatch",
    "RecordOptions",
    "SessionSpec",
    "assimilation_config",
]
