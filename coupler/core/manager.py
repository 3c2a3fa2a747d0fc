"""The session manager: all sessions of one service instance — limits, ownership, resume,
shutdown (sessions themselves: ``session``)."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from coupler.core import checkpoint, landstep, provenance, registry
from coupler.core.assimilate import SessionAssimilation
from coupler.core.batching import DEFAULT_MAX_CELLS, StepBatcher
from coupler.core.config import Limits
from coupler.core.frozen import FrozenVegetation
from coupler.core.recorder import Recorder, ZarrRecorder
from coupler.core.session import Session
from coupler.core.telemetry import MetricsSink, NullMetrics
from coupler.errors import (
    CouplerError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
)
from coupler.spec import SessionSpec
from emulators import constants as C
from emulators import variables as V
from emulators.landstep.nitrogen import with_nitrogen
from emulators.protocol import (
    HeightAwareBackend,
    LandBackend,
    LandState,
    LandStatic,
    StepClock,
)

log = logging.getLogger(__name__)


class SessionManager:
    """All sessions of one service instance: limits, ownership, resume and shutdown."""

    def __init__(
        self,
        limits: Limits = Limits(),  # noqa: B008 (frozen dataclass, immutable default)
        metrics: MetricsSink | None = None,
        *,
        record_chunk_steps: int | None = None,
        record_queue_size: int = 64,
        backend_options: registry.BackendOptions | None = None,
        batch_window: float = 0.0,
        batch_max_cells: int = DEFAULT_MAX_CELLS,
    ) -> None:
        """``batch_window`` (s): gather the steps of concurrent sessions that can share one
        backend call for this long (``coupler.core.batching``); 0 = every step alone."""
        self.limits = limits
        self.backend_options = backend_options or registry.BackendOptions()
        self.metrics = metrics if metrics is not None else NullMetrics()
        self._record_chunk_steps = record_chunk_steps
        self._record_queue_size = record_queue_size
        self._sessions: dict[str, Session] = {}
        self._pending = 0
        self._backends: dict[str, LandBackend] = {}
        self._lock = threading.Lock()
        self._shutting_down = False
        if not batch_window >= 0.0:
            raise ValueError(f"batch_window: must be >= 0 s, got {batch_window!r}")
        self.batcher = (
            StepBatcher(batch_window, batch_max_cells, self.metrics) if batch_window > 0 else None
        )

    # ---- opening -----------------------------------------------------------------------------
    def open(self, config: SessionSpec, owner: str, elsewhere: int = 0) -> Session:
        """A new session of ``config`` owned by ``owner`` (at step index 0). ``elsewhere``:
        sessions the server holds outside this manager (the other worker processes of
        ``landcoupler serve --workers``), counted against ``limits.max_sessions``."""

        def build(backend: LandBackend) -> Session:
            static = landstep.build_static(config)
            da = _assimilation(config, static)
            if da is not None:
                static = da.perturb_static(static)
            state = _initial_state(backend, static, landstep.clock_for(config, 0))
            if da is not None:
                state = da.perturb_initial(state)
            return self._session(uuid.uuid4().hex, owner, config, backend, static, state, da)

        session = self._admit(config, owner, build, elsewhere=elsewhere)
        log.info(
            "opened session %s for %s: %d cells, %d members, backend %s",
            session.id, owner, config.n_cells, config.members, config.backend,
        )  # fmt: skip
        return session

    def resume(self, url: str, owner: str, elsewhere: int = 0) -> Session:
        """A session continued from the checkpoint at ``url`` (written by any process); it keeps
        its id unless that id is open here, and ``owner`` becomes its owner (``elsewhere``: as
        in :meth:`open`)."""
        return self.resume_from(checkpoint.load(url), owner, url, elsewhere=elsewhere)

    def resume_from(
        self,
        data: checkpoint.CheckpointData,
        owner: str,
        url: str = "checkpoint",
        elsewhere: int = 0,
    ) -> Session:
        """A session continued from checkpoint ``data`` (read from ``url``, for messages)."""
        config = data.config

        def build(backend: LandBackend) -> Session:
            static = landstep.build_static(config)
            fresh = _initial_state(backend, static, landstep.clock_for(config, data.next_index))
            # a checkpoint written before the leaf nitrogen pool: derived from leaf carbon
            stored = with_nitrogen(data.state, fresh.tensors)
            _check_state(fresh, stored, url)
            da = _assimilation(config, static)
            if da is not None:
                if data.assimilation is None:
                    raise InvalidArgument(
                        f"resume_from: {url!r} holds no assimilation state",
                        field="resume_from",
                        rule="checkpoint_assimilation",
                    )
                static = da.load_state_dict(data.assimilation, static)
            with self._lock:
                taken = data.session_id in self._sessions
            session_id = uuid.uuid4().hex if taken else data.session_id
            state = LandState(stored)
            return self._session(
                session_id, owner, config, backend, static, state, da,
                next_index=data.next_index, last_reply=data.last_reply,
                storage=data.extra.get("mrso"),
            )  # fmt: skip

        session = self._admit(
            config, owner, build, stored_backend=data.backend, elsewhere=elsewhere
        )
        log.info(
            "resumed session %s for %s from %s at step %d", session.id, owner, url, data.next_index
        )
        return session

    def _admit(
        self,
        config: SessionSpec,
        owner: str,
        build: Callable[[LandBackend], Session],
        stored_backend: Mapping[str, Any] | None = None,
        elsewhere: int = 0,
    ) -> Session:
        """Check the request and the limits, reserve a place, ``build`` the session with its
        backend and register it; on any failure the place is given back and nothing is kept."""
        self._check_request(config, owner)
        backend = self._backend_for(config)
        if stored_backend is not None:
            checkpoint.check_backend(stored_backend, registry.identity(backend))
        self._reserve(elsewhere)
        try:
            session = build(backend)
        except BaseException:
            self._release(None)
            raise
        self._release(session)
        return session

    def _session(
        self,
        session_id: str,
        owner: str,
        config: SessionSpec,
        backend: LandBackend,
        static: LandStatic,
        state: LandState,
        da: SessionAssimilation | None,
        next_index: int = 0,
        **resumed: Any,
    ) -> Session:
        recorder = None
        if config.record_url is not None:  # the record starts with this session's checkpoint
            start = checkpoint.CheckpointData(
                session_id=session_id, owner=owner, config=config,
                backend=registry.identity(backend), next_index=next_index,
                state=state.state_dict(), last_reply=resumed.get("last_reply"),
                extra={} if resumed.get("storage") is None else {"mrso": resumed["storage"]},
                assimilation=None if da is None else da.state_dict(static),
            )  # fmt: skip
            recorder = self._recorder(
                config, backend, next_index, checkpoint.to_bytes(start),
                0 if da is None else da.requests,
            )  # fmt: skip
        return Session(
            session_id, owner, config, backend, static, state, next_index=next_index,
            recorder=recorder, metrics=self.metrics, assimilation=da, batcher=self.batcher,
            **resumed,
        )  # fmt: skip

    # ---- lookup and closing ------------------------------------------------------------------
    def get(self, session_id: str, owner: str) -> Session:
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None:
            raise NotFound(
                f"session_id: no open session {session_id!r}", field="session_id", rule="exists"
            )
        if session.owner != owner:
            raise PermissionDenied(
                f"session_id: session {session_id!r} belongs to another caller",
                field="session_id",
                rule="owner",
            )
        return session

    def close(self, session_id: str, owner: str) -> None:
        session = self.get(session_id, owner)
        with self._lock:
            self._sessions.pop(session_id, None)
            self.metrics.set_open_sessions(len(self._sessions))
        session.close()

    def shutdown(self, checkpoint: bool = True) -> list[str]:
        """Refuse new sessions, checkpoint every open session that has a ``checkpoint_url``
        (waiting for its in-flight step) and close them all. Returns the URLs written."""
        with self._lock:
            self._shutting_down = True
            sessions = list(self._sessions.values())
            self._sessions.clear()
            self.metrics.set_open_sessions(0)
        urls: list[str] = []
        for session in sessions:
            try:
                if checkpoint and session.config.checkpoint_url is not None:
                    urls.append(session.checkpoint())
                elif checkpoint:
                    log.warning("session %s has no checkpoint_url; not checkpointed", session.id)
            except (CouplerError, OSError) as exc:
                log.error("checkpoint of session %s failed: %s", session.id, exc)
            try:
                session.close()
            except (CouplerError, OSError) as exc:
                log.error("closing session %s failed: %s", session.id, exc)
        with self._lock:
            backends = list(self._backends.values())
            self._backends.clear()
        for backend in backends:  # release what a backend holds (Triton shared memory)
            close = getattr(backend, "close", None)
            if callable(close):
                try:
                    close()
                except (OSError, RuntimeError, ConnectionError) as exc:
                    log.error("closing backend %s failed: %s", backend.name, exc)
        return urls

    @property
    def open_sessions(self) -> int:
        with self._lock:
            return len(self._sessions)

    def describe(self) -> dict[str, Any]:
        """Capabilities: backends (available or why not), variables, versions and limits."""
        status: dict[str, str] = {}
        for name in registry.names():
            try:
                self._backend(name)
                status[name] = "available"
            except CouplerError as exc:
                status[name] = str(exc)
        variables = [
            {"name": v.name, "units": v.units, "direction": v.direction.value,
             "long_name": v.long_name, "standard_name": v.standard_name or "",
             "valid_min": v.valid_min, "valid_max": v.valid_max, "positive": v.positive or "",
             "required": v.required, "observable": v.observable}
            for v in V.REGISTRY.values()
        ]  # fmt: skip
        return {
            "service": "landcoupler",
            "code_version": provenance.code_version(),
            "versions": provenance.library_versions(),
            "backends": status,
            "variables": variables,
            "limits": asdict(self.limits),
            "open_sessions": self.open_sessions,
        }

    # ---- internals ---------------------------------------------------------------------------
    def _check_request(self, config: SessionSpec, owner: str) -> None:
        if not isinstance(owner, str) or not owner:
            raise InvalidArgument(
                "owner: must be a non-empty string", field="owner", rule="non_empty"
            )
        if not isinstance(config, SessionSpec):
            raise InvalidArgument("config: expected a SessionSpec", field="config", rule="type")
        if config.n_cells > self.limits.max_cells_per_session:
            raise ResourceExhausted(
                f"lat: {config.n_cells} cells exceed this server's limit of "
                f"{self.limits.max_cells_per_session} per session",
                field="lat",
                rule="max_cells_per_session",
            )
        if config.members > self.limits.max_members:
            raise ResourceExhausted(
                f"members: {config.members} exceed this server's limit of "
                f"{self.limits.max_members}",
                field="members",
                rule="max_members",
            )

    def _reserve(self, elsewhere: int = 0) -> None:
        with self._lock:
            if self._shutting_down:
                raise FailedPrecondition(
                    "the service is shutting down", field="session_id", rule="shutting_down"
                )
            if len(self._sessions) + self._pending + elsewhere >= self.limits.max_sessions:
                raise ResourceExhausted(
                    f"sessions: this server already holds {self.limits.max_sessions} sessions",
                    field="session_id",
                    rule="max_sessions",
                )
            self._pending += 1

    def _release(self, session: Session | None) -> None:
        with self._lock:
            self._pending -= 1
            if session is not None:
                self._sessions[session.id] = session
            self.metrics.set_open_sessions(len(self._sessions))

    def _backend_for(self, spec: SessionSpec) -> LandBackend:
        """The backend a session of ``spec`` steps: the shared instance of its name, wrapped to
        hold the vegetation when the spec freezes it."""
        backend = self._at_heights(self._backend(spec.backend), spec)
        if spec.freeze_vegetation_year is not None:
            return FrozenVegetation(backend, spec.freeze_vegetation_year)
        return backend

    def _at_heights(self, backend: LandBackend, spec: SessionSpec) -> LandBackend:
        """``backend`` at the spec's forcing heights: itself at the defaults, else the one
        instance per (name, heights) that ``HeightAwareBackend.at_heights`` builds. A backend
        that cannot serve them (or knows no heights) is refused, rule ``backend_heights``."""
        heights = (spec.height_wind, spec.height_temperature)
        if heights == C.DEFAULT_HEIGHTS:
            return backend
        key = f"{spec.backend}@{heights[0]!r}/{heights[1]!r}"
        with self._lock:
            found = self._backends.get(key)
        if found is not None:
            return found
        if not isinstance(backend, HeightAwareBackend):
            raise InvalidArgument(
                f"height_wind: the {spec.backend!r} backend serves forcing at "
                f"{C.DEFAULT_HEIGHT_WIND:g} m (wind) / {C.DEFAULT_HEIGHT_TEMPERATURE:g} m "
                "(temperature) only",
                field="height_wind"
                if heights[0] != C.DEFAULT_HEIGHT_WIND
                else "height_temperature",
                rule="backend_heights",
            )
        try:
            built = backend.at_heights(*heights)
        except ValueError as exc:
            if (refusal := _refusal(exc)) is None:
                raise
            raise refusal from exc
        with self._lock:
            return self._backends.setdefault(key, built)

    def _backend(self, name: str) -> LandBackend:
        with self._lock:
            backend = self._backends.get(name)
        if backend is None:
            backend = registry.create(name, self.backend_options)
            with self._lock:
                backend = self._backends.setdefault(name, backend)
        return backend

    def _recorder(
        self,
        config: SessionSpec,
        backend: LandBackend,
        start_index: int,
        start: bytes,
        requests_before: int,
    ) -> Recorder | None:
        if config.record_url is None:
            return None
        return ZarrRecorder(
            config.record_url,
            config,
            registry.identity(backend),
            start_index=start_index,
            start=start,
            requests_before=requests_before,
            metrics=self.metrics,
            chunk_steps=self._record_chunk_steps,
            queue_size=self._record_queue_size,
        )


def _assimilation(config: SessionSpec, static: LandStatic) -> SessionAssimilation | None:
    """The assimilation state of a new session of ``config`` (None without assimilation)."""
    if config.assimilation is None:
        return None
    lat, lon = np.array(config.grid.lat), np.array(config.grid.lon)  # writable copies for torch
    return SessionAssimilation(config.assimilation, lat, lon, static.cover, config.members)


def _initial_state(backend: LandBackend, static: LandStatic, clock: StepClock) -> LandState:
    """The backend's initial state; a backend refusal that names a field and rule (e.g. an
    emulator without an artifact for this timestep: ``dt``/``trained_timestep``) becomes
    InvalidArgument, so clients see INVALID_ARGUMENT rather than INTERNAL."""
    try:
        return backend.initial_state(static, clock)
    except ValueError as exc:
        if (refusal := _refusal(exc)) is None:
            raise
        raise refusal from exc


def _refusal(exc: ValueError) -> InvalidArgument | None:
    """A backend's ValueError as the client should see it: InvalidArgument where it names a
    field and rule (``TimestepError``, ``HeightsError``, a record's refusals); None for any other
    (re-raised as it is: a bug, INTERNAL)."""
    field, rule = getattr(exc, "field", None), getattr(exc, "rule", None)
    if isinstance(exc, CouplerError) or not (isinstance(field, str) and isinstance(rule, str)):
        return None
    return InvalidArgument(str(exc), field=field, rule=rule)


def _check_state(fresh: LandState, stored: Mapping[str, torch.Tensor], url: str) -> None:
    """The checkpoint's state must have the tensors (names, shapes, dtypes) the backend makes."""
    want = {k: (tuple(v.shape), v.dtype) for k, v in fresh.tensors.items()}
    have = {k: (tuple(v.shape), v.dtype) for k, v in stored.items()}
    if want != have:
        raise InvalidArgument(
            f"resume_from: the state in {url!r} does not match the backend's: "
            f"{sorted(have.items())} vs {sorted(want.items())}",
            field="resume_from",
            rule="state_shape",
        )
