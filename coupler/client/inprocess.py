"""The in-process client: the client API of :mod:`coupler.client` without gRPC.

``InProcessClient(manager)`` implements the same :class:`~coupler.client.protocol.Client` as
``CouplerClient``, and its sessions call the core directly: the same spec
(:class:`~coupler.spec.SessionSpec`), the same step validation (``Session.step``),
the same observation checks, and refusals raise the same :class:`CouplerRpcError` with the same
code, message, field and rule as over the wire. Differences: no serialisation (a field's dtype
must still be one the wire can carry), ``codec`` is accepted but nothing is compressed or
bit-rounded, and there is no deadline or retry (nothing transient can happen in-process).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

import numpy as np

from coupler.client.common import LandCoverUpdate, capabilities, spec_from_arguments
from coupler.core.manager import SessionManager
from coupler.core.session import Session
from coupler.errors import CouplerError, InvalidArgument
from coupler.spec import ObservationBatch, SessionSpec
from coupler.spec.times import format_time
from coupler.wire import fields as F
from coupler.wire.status import CouplerRpcError

T = TypeVar("T")


def _domain(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except CouplerError as exc:
        raise CouplerRpcError.from_domain(exc) from None


class InProcessClient:
    """Sessions on a ``SessionManager`` in this process. ``owner``: the principal its sessions
    belong to (like a token name over gRPC)."""

    def __init__(self, manager: SessionManager | None = None, owner: str = "in-process") -> None:
        self.manager = manager if manager is not None else SessionManager()
        self.owner = owner
        self._sessions: list[InProcessSession] = []

    def describe(self) -> dict[str, Any]:
        """As ``CouplerClient.describe`` (the same keys; ``details`` is the core's own)."""
        details = _domain(self.manager.describe)
        return capabilities(details)

    def open_session(
        self,
        spec: SessionSpec | None = None,
        /,
        *,
        resume_from: str | None = None,
        codec: Any = None,
        stream: bool = False,
        split_bytes: int = 0,
        shared_memory: bool = False,
        reply_dtype: Any = None,
        **fields: Any,
    ) -> InProcessSession:
        """As :meth:`coupler.client.CouplerClient.open_session` (``codec``, ``stream``,
        ``split_bytes`` and ``shared_memory`` are accepted and have no in-process meaning;
        ``reply_dtype`` casts the outputs as the server does)."""
        del codec, stream, split_bytes, shared_memory
        dtype = F.reply_dtype(_domain(lambda: F.reply_dtype_code(reply_dtype)))
        if resume_from:
            session = _domain(lambda: self.manager.resume(resume_from, self.owner))
        else:
            chosen = spec_from_arguments(spec, fields)
            session = _domain(lambda: self.manager.open(chosen, self.owner))
        handle = InProcessSession(self, session, dtype)
        self._sessions.append(handle)
        return handle

    def close(self) -> None:
        """Close the sessions this client opened and still holds open."""
        for s in self._sessions:
            s.close()
        self._sessions.clear()

    def __enter__(self) -> InProcessClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcessSession:
    """A session on the local core, with the interface of ``RemoteSession``."""

    def __init__(
        self, client: InProcessClient, session: Session, reply_dtype: np.dtype | None = None
    ) -> None:
        self.client = client
        self._reply_dtype = np.dtype(np.float64) if reply_dtype is None else reply_dtype
        self._session = session
        cfg = session.config
        self.id: str = session.id
        self.next_index: int = session.next_index
        self.outputs: tuple[str, ...] = tuple(cfg.reply_names())
        self.cells: int = cfg.n_cells
        self.members: int = cfg.members
        self.start: str = format_time(cfg.start)
        self.timestep: int = cfg.timestep
        self.backend: str = cfg.backend
        self.last_time: str | None = None
        self._closed = False

    def step(
        self, index: int, fields: Mapping[str, Any], units: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> dict[str, np.ndarray]:  # fmt: skip
        """As ``RemoteSession.step`` (``timeout`` is ignored in-process)."""
        del timeout
        arrays = {name: np.asarray(values) for name, values in fields.items()}
        for name, arr in arrays.items():
            _domain(partial(_wire_dtype, name, arr))
        session = _domain(lambda: self.client.manager.get(self.id, self.client.owner))
        out = _domain(lambda: session.step(int(index), arrays, dict(units) if units else None))
        self.last_time = format_time(session.config.step_time(int(index)))
        self.next_index = session.next_index
        return F.as_reply_dtype(out, self._reply_dtype)

    def checkpoint(self, url: str | None = None) -> str:
        session = _domain(lambda: self.client.manager.get(self.id, self.client.owner))
        return _domain(lambda: session.checkpoint(url or None))

    def update_land_cover(self, index: int, fractions: Any) -> LandCoverUpdate:
        """As ``RemoteSession.update_land_cover``."""
        arr = np.asarray(fractions)
        _domain(partial(_wire_dtype, "land_cover", arr))
        session = _domain(lambda: self.client.manager.get(self.id, self.client.owner))
        change = _domain(lambda: session.update_cover(index, arr))
        return LandCoverUpdate(
            cells_changed=change.cells_changed,
            water_residual=change.residual_water,
            energy_residual=change.residual_energy,
            carbon_residual=change.residual_carbon,
            released=dict(change.released),
        )

    def assimilate(
        self, type: str, values: Any, errors: Any, lat: Any, lon: Any, times: Sequence[Any],
        units: str = "",
    ) -> int:  # fmt: skip
        """As ``RemoteSession.assimilate``: the number of observations queued."""
        batch = ObservationBatch(type, values, errors, lat, lon, list(times), units)
        return self.assimilate_batches([batch])

    def assimilate_batches(self, batches: Sequence[ObservationBatch]) -> int:
        """As ``RemoteSession.assimilate_batches`` (one request, accepted or refused whole)."""
        for i, b in enumerate(batches):
            for name in ("values", "errors", "lat", "lon"):
                arr = np.asarray(getattr(b, name))
                _domain(partial(_wire_dtype, f"batches[{i}].{name}", arr))
        session = _domain(lambda: self.client.manager.get(self.id, self.client.owner))
        return _domain(lambda: session.assimilate(list(batches)))

    def close(self) -> None:
        if self._closed:
            return
        _domain(lambda: self.client.manager.close(self.id, self.client.owner))
        self._closed = True

    def __enter__(self) -> InProcessSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _wire_dtype(name: str, arr: np.ndarray) -> None:
    """Refuse what the wire could not carry, exactly as a decode would (field, rule dtype)."""
    try:
        F.proto_dtype(arr.dtype)
    except CouplerError:
        raise InvalidArgument(
            f"field {name!r}: dtype {arr.dtype} cannot be sent", field=name, rule="dtype"
        ) from None
