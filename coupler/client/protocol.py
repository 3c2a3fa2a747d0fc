"""The client interface every transport implements: :class:`Client` and :class:`Session`.

The gRPC client (:class:`~coupler.client.remote.CouplerClient`) and the in-process client
(:class:`~coupler.client.inprocess.InProcessClient`) both implement it, and so will any other
(the contract suite ``tests/contracts/client_contract.py`` runs against each). Applications —
the simplified atmosphere, ``landcoupler run``, replay, the experiments — type their land
against these Protocols, so every feedback run exercises the service through one interface.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from coupler.client.common import LandCoverUpdate
from coupler.spec import ObservationBatch, SessionSpec


@runtime_checkable
class Session(Protocol):
    """One open session. Attributes mirror the server's OpenSession reply."""

    id: str
    next_index: int
    outputs: tuple[str, ...]
    cells: int
    members: int
    start: str
    timestep: int
    backend: str
    last_time: str | None

    def step(
        self,
        index: int,
        fields: Mapping[str, Any],
        units: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> dict[str, np.ndarray]:
        """Step ``index`` with (cell,) forcing by name; the outputs by name. Resending the last
        index returns the same reply without advancing; any other index is refused."""
        ...

    def checkpoint(self, url: str | None = None) -> str:
        """Write a checkpoint; its URL."""
        ...

    def update_land_cover(self, index: int, fractions: Any) -> LandCoverUpdate:
        """New (cell, 8) land-cover fractions from step ``index`` (the next) on; the tile state
        is remapped conserving water, heat and leaf carbon."""
        ...

    def assimilate(
        self,
        type: str,
        values: Any,
        errors: Any,
        lat: Any,
        lon: Any,
        times: Sequence[Any],
        units: str = "",
    ) -> int:
        """Queue one observation batch for the next analysis; how many were queued."""
        ...

    def assimilate_batches(self, batches: Sequence[ObservationBatch]) -> int:
        """Queue several batches, accepted or refused as a whole."""
        ...

    def close(self) -> None:
        """Close the session (flushes its record). Idempotent."""
        ...

    def __enter__(self) -> Session: ...

    def __exit__(self, *exc: object) -> None: ...


@runtime_checkable
class Client(Protocol):
    """A connection to the land service."""

    def describe(self) -> dict[str, Any]:
        """Capabilities: backends, variables, codecs, versions."""
        ...

    def open_session(
        self, spec: SessionSpec | None = None, /, *, resume_from: str | None = None, **options: Any
    ) -> Session:
        """Open a session of ``spec`` (or of its fields as keyword arguments), or resume one
        from a checkpoint URL; transport options (``codec``, ``stream``, ...) as keywords."""
        ...

    def close(self) -> None:
        """Close the sessions this client opened and the connection."""
        ...
