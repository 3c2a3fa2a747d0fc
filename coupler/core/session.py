"""Sessions (one coupled domain, its land state and step index) and the manager that owns them.

A step is a transaction: the fields are validated, the backend computes the new state and the
outputs, a due periodic checkpoint is written and the step is queued for the record, and only
then is the new state committed. Any error before the commit leaves the session exactly as it
was (same state tensors, same ``next_index``, same stored reply), so the caller may fix its
input and send the same index again.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from coupler.core import backends, checkpoint, landstep, observations, provenance, validation
from coupler.core.assimilate import SessionAssimilation, record_row
from coupler.core.config import Limits, SessionConfig
from coupler.core.errors import (
    CouplerError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
)
from coupler.core.recorder import Recorder, ZarrRecorder
from coupler.metrics import ServiceMetrics
from emulators import variables as V
from emulators.backend import LandBackend, LandState, LandStatic, StepClock

log = logging.getLogger(__name__)


class Session:
    """One coupled domain. Thread-safe: concurrent calls on a session are serialised."""

    def __init__(
        self,
        session_id: str,
        owner: str,
        config: SessionConfig,
        backend: LandBackend,
        static: LandStatic,
        state: LandState,
        *,
        next_index: int = 0,
        last_reply: Mapping[str, np.ndarray] | None = None,
        storage: torch.Tensor | None = None,
        recorder: Recorder | None = None,
        metrics: ServiceMetrics | None = None,
        assimilation: SessionAssimilation | None = None,
    ) -> None:
        self.id = session_id
        self.owner = owner
        self.config = config
        self.next_index = int(next_index)
        self.backend_identity = backends.identity(backend)
        self._backend = backend
        self._static = static
        self._state = state
        self._last_reply = dict(last_reply) if last_reply is not None else None
        self._storage = storage  # previous step's mrso (member, cell), for the water residual
        self._recorder = recorder
        self._metrics = metrics if metrics is not None else ServiceMetrics()
        self._da = assimilation
        self._lock = threading.Lock()
        self._closed = False

    # ---- read-only views -------------------------------------------------------------------
    @property
    def state(self) -> LandState:
        """The current land state (do not modify; ``clone()`` it to keep a copy)."""
        return self._state

    @property
    def static(self) -> LandStatic:
        return self._static

    @property
    def assimilation(self) -> SessionAssimilation | None:
        """The session's assimilation state (None without assimilation); do not modify."""
        return self._da

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def last_reply(self) -> dict[str, np.ndarray] | None:
        return None if self._last_reply is None else dict(self._last_reply)

    # ---- the step --------------------------------------------------------------------------
    def step(
        self, index: int, fields: Mapping[str, np.ndarray], units: Mapping[str, str] | None = None
    ) -> dict[str, np.ndarray]:
        """index == next_index: validate all fields, advance, and return the requested outputs
        as read-only (cell,) float64 arrays (ensemble mean) plus ``<name>_spread`` if asked.
        index == next_index - 1: the stored previous reply, unchanged, without advancing.
        Anything else: FailedPrecondition(field="index", rule="step_order")."""
        if isinstance(index, bool) or not isinstance(index, int | np.integer):
            raise InvalidArgument(
                f"index: must be an integer, got {index!r}", field="index", rule="type"
            )
        index = int(index)
        with self._lock:
            self._check_open()
            if index == self.next_index - 1 and self._last_reply is not None:
                self._metrics.count_retry()
                return dict(self._last_reply)
            if index != self.next_index:
                raise FailedPrecondition(
                    f"index: step {index} is out of order; the next step is {self.next_index}"
                    + (f" (or {self.next_index - 1} to retry)" if self._last_reply else ""),
                    field="index",
                    rule="step_order",
                )
            return self._advance(index, fields, units)

    def _advance(
        self, index: int, fields: Mapping[str, np.ndarray], units: Mapping[str, str] | None
    ) -> dict[str, np.ndarray]:
        cfg, metrics = self.config, self._metrics
        t0 = time.perf_counter()
        checked = validation.validate_forcing(fields, cfg.n_cells, units)
        t1 = time.perf_counter()
        metrics.observe_phase("validate", t1 - t0)
        if self._recorder is not None:
            self._recorder.check()

        forcing = landstep.forcing_tensors(checked, cfg.members)
        for arr in checked.values():  # shared with the tensors and the recorder from here on
            arr.flags.writeable = False
        clock = landstep.clock_for(cfg, index)
        snap = None if self._da is None else self._da.snapshot()
        try:
            return self._compute(index, checked, forcing, clock)
        except BaseException:
            if self._da is not None and snap is not None:
                self._da.restore(snap)  # the assimilator is part of the transaction
            raise

    def _compute(
        self,
        index: int,
        checked: Mapping[str, np.ndarray],
        forcing: Mapping[str, torch.Tensor],
        clock: StepClock,
    ) -> dict[str, np.ndarray]:
        cfg, metrics, da = self.config, self._metrics, self._da
        state, static, diag, skipped = self._state, self._static, None, {}
        t1 = time.perf_counter()
        if da is not None:  # analysis of the queued observations, then member forcing
            state, static, diag = da.begin(state, static, clock)
            forcing = da.perturb(forcing, clock)
            metrics.observe_phase("assimilation", time.perf_counter() - t1)
            t1 = time.perf_counter()
        new_state, outputs = self._backend.step(state, static, forcing, clock)
        if da is not None:
            skipped = da.end(outputs, clock)
        reply = landstep.reply_fields(outputs, cfg.outputs, cfg.n_cells, cfg.output_spread)
        energy = landstep.energy_residual(outputs)
        water = landstep.water_residual(self._storage, outputs, forcing.get("pr"), clock.dt)
        storage = outputs.get("mrso")
        t2 = time.perf_counter()
        metrics.observe_phase("land", t2 - t1)

        next_index = index + 1
        every = cfg.checkpoint_every
        if every and cfg.checkpoint_url is not None and next_index % every == 0:
            url = checkpoint.default_url(cfg.checkpoint_url, self.id)
            self._write_checkpoint(url, new_state, next_index, reply, storage, static)
        t3 = time.perf_counter()
        if self._recorder is not None:
            analysis = None if diag is None else record_row(diag)
            self._recorder.record(index, checked, reply, analysis=analysis)
            metrics.observe_phase("record", time.perf_counter() - t3)

        # commit: nothing below can fail
        self._state = new_state
        self._static = static
        self.next_index = next_index
        self._last_reply = reply
        self._storage = storage
        metrics.count_cells(cfg.n_cells)
        metrics.observe_residuals(energy, water)
        if diag is not None:
            metrics.observe_analysis(self.id, diag)
        for var, n in skipped.items():
            metrics.count_observations(self.id, var, "window", n)
        return dict(reply)

    # ---- observations ------------------------------------------------------------------------
    def assimilate(self, batches: Sequence[observations.ObservationBatch]) -> int:
        """Check the batches (format, then domain and windows), queue them for the analysis at
        the start of the next step, and return how many were queued. A refusal
        (InvalidArgument naming ``batches[i].<name>`` and the rule; FailedPrecondition
        ``assimilation``/``enabled`` for a session without assimilation) queues nothing."""
        parsed = observations.parse_all(batches)
        with self._lock:
            self._check_open()
            if self._da is None:
                raise FailedPrecondition(
                    "assimilation: this session was opened without assimilation",
                    field="assimilation",
                    rule="enabled",
                )
            n = self._da.assimilate(parsed)
        for p in parsed:
            self._metrics.count_observations(self.id, p.type, "received", len(p))
        return n

    # ---- checkpoints and closing -----------------------------------------------------------
    def checkpoint(self, url: str | None = None) -> str:
        """Write a checkpoint and return its URL: ``url`` as given (a URL ending in "/" is a
        prefix: ``<url><session id>.ckpt``), else under the config's ``checkpoint_url``."""
        with self._lock:
            self._check_open()
            if url is not None and url.strip():
                target = checkpoint.default_url(url, self.id) if url.endswith("/") else url
            elif self.config.checkpoint_url is not None:
                target = checkpoint.default_url(self.config.checkpoint_url, self.id)
            else:
                raise FailedPrecondition(
                    "checkpoint_url: no URL given and the session has no checkpoint_url",
                    field="checkpoint_url",
                    rule="configured",
                )
            return self._write_checkpoint(
                target, self._state, self.next_index, self._last_reply, self._storage, self._static
            )

    def _write_checkpoint(
        self,
        url: str,
        state: LandState,
        next_index: int,
        reply: Mapping[str, np.ndarray] | None,
        storage: torch.Tensor | None,
        static: LandStatic,
    ) -> str:
        t0 = time.perf_counter()
        data = checkpoint.CheckpointData(
            session_id=self.id,
            owner=self.owner,
            config=self.config,
            backend=self.backend_identity,
            next_index=next_index,
            state=state.state_dict(),
            last_reply=None if reply is None else dict(reply),
            extra={} if storage is None else {"mrso": storage},
            assimilation=None if self._da is None else self._da.state_dict(static),
        )
        checkpoint.save(url, data)
        self._metrics.observe_phase("checkpoint", time.perf_counter() - t0)
        self._metrics.count_checkpoint()
        return url

    def flush(self) -> None:
        """Write everything recorded so far (the partial time chunk included)."""
        with self._lock:
            if self._recorder is not None and not self._closed:
                self._recorder.flush()

    def close(self) -> None:
        """Close the session and flush its record; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._da is not None:
                self._metrics.forget_session(self.id)
            if self._recorder is not None:
                self._recorder.close()

    def _check_open(self) -> None:
        if self._closed:
            raise FailedPrecondition(
                f"session_id: session {self.id} is closed", field="session_id", rule="open"
            )


class SessionManager:
    """All sessions of one service instance: limits, ownership, resume and shutdown."""

    def __init__(
        self,
        limits: Limits = Limits(),  # noqa: B008 (frozen dataclass, immutable default)
        metrics: ServiceMetrics | None = None,
        *,
        record_chunk_steps: int = 24,
        record_queue_size: int = 64,
    ) -> None:
        self.limits = limits
        self.metrics = metrics if metrics is not None else ServiceMetrics()
        self._record_chunk_steps = record_chunk_steps
        self._record_queue_size = record_queue_size
        self._sessions: dict[str, Session] = {}
        self._pending = 0
        self._backends: dict[str, LandBackend] = {}
        self._lock = threading.Lock()
        self._shutting_down = False

    # ---- opening -----------------------------------------------------------------------------
    def open(self, config: SessionConfig, owner: str) -> Session:
        """A new session of ``config`` owned by ``owner`` (at step index 0)."""
        self._check_request(config, owner)
        backend = self._backend(config.backend)
        self._reserve()
        try:
            static = landstep.build_static(config)
            da = _assimilation(config, static)
            if da is not None:
                static = da.perturb_static(static)
            state = backend.initial_state(static, landstep.clock_for(config, 0))
            if da is not None:
                state = da.perturb_initial(state)
            session_id = uuid.uuid4().hex
            recorder = self._recorder(config, backend, 0)
            session = Session(
                session_id,
                owner,
                config,
                backend,
                static,
                state,
                recorder=recorder,
                metrics=self.metrics,
                assimilation=da,
            )
        except BaseException:
            self._release(None)
            raise
        self._release(session)
        log.info(
            "opened session %s for %s: %d cells, %d members, backend %s",
            session_id,
            owner,
            config.n_cells,
            config.members,
            config.backend,
        )
        return session

    def resume(self, url: str, owner: str) -> Session:
        """A session continued from the checkpoint at ``url`` (written by any process); it keeps
        its id unless that id is open here, and ``owner`` becomes its owner."""
        data = checkpoint.load(url)
        config = data.config
        self._check_request(config, owner)
        backend = self._backend(config.backend)
        checkpoint.check_backend(data.backend, backends.identity(backend))
        self._reserve()
        try:
            static = landstep.build_static(config)
            fresh = backend.initial_state(static, landstep.clock_for(config, data.next_index))
            _check_state(fresh, data.state, url)
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
            recorder = self._recorder(config, backend, data.next_index)
            session = Session(
                session_id,
                owner,
                config,
                backend,
                static,
                LandState(dict(data.state)),
                next_index=data.next_index,
                last_reply=data.last_reply,
                storage=data.extra.get("mrso"),
                recorder=recorder,
                metrics=self.metrics,
                assimilation=da,
            )
        except BaseException:
            self._release(None)
            raise
        self._release(session)
        log.info(
            "resumed session %s for %s from %s at step %d", session_id, owner, url, data.next_index
        )
        return session

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
        return urls

    @property
    def open_sessions(self) -> int:
        with self._lock:
            return len(self._sessions)

    def describe(self) -> dict[str, Any]:
        """Capabilities: backends (available or why not), variables, versions and limits."""
        status: dict[str, str] = {}
        for name in backends.names():
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
    def _check_request(self, config: SessionConfig, owner: str) -> None:
        if not isinstance(owner, str) or not owner:
            raise InvalidArgument(
                "owner: must be a non-empty string", field="owner", rule="non_empty"
            )
        if not isinstance(config, SessionConfig):
            raise InvalidArgument("config: expected a SessionConfig", field="config", rule="type")
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

    def _reserve(self) -> None:
        with self._lock:
            if self._shutting_down:
                raise FailedPrecondition(
                    "the service is shutting down", field="session_id", rule="shutting_down"
                )
            if len(self._sessions) + self._pending >= self.limits.max_sessions:
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

    def _backend(self, name: str) -> LandBackend:
        with self._lock:
            backend = self._backends.get(name)
        if backend is None:
            backend = backends.create(name)
            with self._lock:
                backend = self._backends.setdefault(name, backend)
        return backend

    def _recorder(
        self, config: SessionConfig, backend: LandBackend, start_index: int
    ) -> Recorder | None:
        if config.record_url is None:
            return None
        return ZarrRecorder(
            config.record_url,
            config,
            backends.identity(backend),
            start_index=start_index,
            metrics=self.metrics,
            chunk_steps=self._record_chunk_steps,
            queue_size=self._record_queue_size,
        )


def _assimilation(config: SessionConfig, static: LandStatic) -> SessionAssimilation | None:
    """The assimilation state of a new session of ``config`` (None without assimilation)."""
    if config.assimilation is None:
        return None
    lat, lon = np.array(config.grid.lat), np.array(config.grid.lon)  # writable copies for torch
    return SessionAssimilation(config.assimilation, lat, lon, static.cover, config.members)


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
