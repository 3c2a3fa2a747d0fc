"""Sessions: one coupled domain, its land state and step index (the manager is ``manager``).

A step is a transaction: the fields are validated, the backend computes the new state and the
outputs, a due periodic checkpoint is written and the step is queued for the record, and only
then is the new state committed. Any error before the commit leaves the session exactly as it
was (same state tensors, same ``next_index``, same stored reply), so the caller may fix its
input and send the same index again.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from coupler.core import checkpoint, landstep, registry, validation
from coupler.core.assimilate import SessionAssimilation, record_row
from coupler.core.batching import StepBatcher
from coupler.core.landstep import CoverChange
from coupler.core.recorder import Recorder
from coupler.core.telemetry import MetricsSink, NullMetrics
from coupler.errors import (
    FailedPrecondition,
    InvalidArgument,
)
from coupler.spec import SessionSpec, observations
from emulators.landstep import CheckedForcing
from emulators.protocol import LandBackend, LandState, LandStatic, StepClock

log = logging.getLogger(__name__)


class Session:
    """One coupled domain. Thread-safe: concurrent calls on a session are serialised."""

    def __init__(
        self,
        session_id: str,
        owner: str,
        config: SessionSpec,
        backend: LandBackend,
        static: LandStatic,
        state: LandState,
        *,
        next_index: int = 0,
        last_reply: Mapping[str, np.ndarray] | None = None,
        storage: torch.Tensor | None = None,
        recorder: Recorder | None = None,
        metrics: MetricsSink | None = None,
        assimilation: SessionAssimilation | None = None,
        batcher: StepBatcher | None = None,
    ) -> None:
        self.id = session_id
        self.owner = owner
        self.config = config
        self.next_index = int(next_index)
        self.backend_identity = registry.identity(backend)
        self._backend = backend
        self._static = static
        self._state = state
        self._last_reply = dict(last_reply) if last_reply is not None else None
        self._storage = storage  # previous step's mrso (member, cell), for the water residual
        self._recorder = recorder
        self._metrics = metrics if metrics is not None else NullMetrics()
        self._da = assimilation
        self._batcher = batcher
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
        wire: dict[str, np.dtype] = {}
        if self._recorder is not None:
            wire = {name: fields[name].dtype for name in checked}  # what the record keeps
            self._recorder.check()
            self._recorder.admit(checked, wire)

        # checked once: the backends' own check (``emulators.landstep.check_forcing``) skips
        # CheckedForcing; member forcing made by the assimilation is new data and is checked
        forcing = CheckedForcing(landstep.forcing_tensors(checked, cfg.members))
        for arr in checked.values():  # shared with the tensors and the recorder from here on
            arr.flags.writeable = False
        clock = landstep.clock_for(cfg, index)
        snap = None if self._da is None else self._da.snapshot()
        try:
            return self._compute(index, checked, forcing, clock, wire)
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
        wire: Mapping[str, np.dtype],
    ) -> dict[str, np.ndarray]:
        cfg, metrics, da = self.config, self._metrics, self._da
        state, static, diag, skipped = self._state, self._static, None, {}
        t1 = time.perf_counter()
        if da is not None:  # analysis of the queued observations, then member forcing
            state, static, diag = da.begin(state, static, clock)
            forcing = da.perturb(forcing, clock)
            metrics.observe_phase("assimilation", time.perf_counter() - t1)
            t1 = time.perf_counter()
        means: Mapping[str, np.ndarray] = {}  # the reply's means, if a joined step made them
        if self._batcher is not None:  # maybe one backend call with other sessions' steps
            new_state, outputs, means = self._batcher.step_means(
                self._backend, state, static, forcing, clock, cfg.outputs
            )
        else:
            new_state, outputs = self._backend.step(state, static, forcing, clock)
        if da is not None:
            skipped = da.end(outputs, clock)
        reply = landstep.reply_fields(outputs, cfg.outputs, cfg.n_cells, cfg.output_spread, means)
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
            self._recorder.record(index, checked, reply, analysis=analysis, dtypes=wire)
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
            metrics.observe_analysis(
                self.id, diag.by_type, diag.prior_spread, diag.posterior_spread, diag.inflation_mean
            )
        for var, n in skipped.items():
            metrics.count_observations(self.id, var, "window", n)
        return dict(reply)

    # ---- land-cover change -------------------------------------------------------------------
    def update_cover(self, index: int, fractions: np.ndarray) -> CoverChange:
        """New land-cover fractions (cell, class) [1] from step ``index`` on (``index`` must be
        the next step index, else FailedPrecondition ``index``/``step_order``). Checked as
        ``SessionSpec.land_cover`` (InvalidArgument ``land_cover`` with rule ``shape``,
        ``valid_range`` or ``sums_to_one``); the tile state is remapped with water, heat and
        leaf carbon conserved per cell (``emulators.landstep.cover``). A transaction: a refusal
        leaves the session unchanged. The new cover goes into the config (so checkpoints carry
        it) and into the record (replay applies it before the same step)."""
        if isinstance(index, bool) or not isinstance(index, int | np.integer):
            raise InvalidArgument(
                f"index: must be an integer, got {index!r}", field="index", rule="type"
            )
        with self._lock:
            self._check_open()
            if int(index) != self.next_index:
                raise FailedPrecondition(
                    f"index: a land-cover change applies before the next step {self.next_index},"
                    f" not {int(index)}",
                    field="index",
                    rule="step_order",
                )
            config = dataclasses.replace(self.config, land_cover=fractions)
            change = getattr(self._backend, "change_cover", None)
            if change is None:
                raise FailedPrecondition(
                    f"land_cover: the {self.config.backend!r} backend cannot change land cover",
                    field="land_cover",
                    rule="cover_change_supported",
                )
            if self._recorder is not None:
                self._recorder.check()
            cover = torch.from_numpy(config.cover_fractions())
            old = self._static.cover
            state, static, out = change(self._state, self._static, cover)
            result = CoverChange.of(out, old, static.cover)
            if self._recorder is not None:
                self._recorder.cover_change(self.next_index, config.cover_fractions())
            # commit
            self.config = config
            self._state, self._static = state, static
            if self._storage is not None:  # the water that left is not in the next step's budget
                self._storage = self._storage - out.released["water"]
        return result

    # ---- observations ------------------------------------------------------------------------
    def assimilate(self, batches: Sequence[observations.ObservationBatch]) -> int:
        """Check the batches (format, then domain and windows), queue them for the analysis at
        the start of the next step, and return how many were queued. A refusal
        (InvalidArgument naming ``batches[i].<name>`` and the rule; FailedPrecondition
        ``assimilation``/``enabled`` for a session without assimilation; the recorder's error
        when its record cannot be written) queues nothing. An accepted request goes to the
        record with the step it precedes and its serial number (replay re-sends it)."""
        parsed = observations.parse_all(batches)
        with self._lock:
            self._check_open()
            if self._da is None:
                raise FailedPrecondition(
                    "assimilation: this session was opened without assimilation",
                    field="assimilation",
                    rule="enabled",
                )
            if self._recorder is not None:
                self._recorder.check()
            snap = self._da.snapshot()
            n = self._da.assimilate(parsed)
            if self._recorder is not None:
                try:
                    units = [str(b.units or "") for b in batches]
                    serial = self._da.requests - 1
                    self._recorder.observations(self.next_index, serial, parsed, units)
                except BaseException:
                    self._da.restore(snap)  # not recorded: not queued either
                    raise
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
