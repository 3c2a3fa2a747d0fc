"""Replaying a record in-process: each rank's session is re-created from the record and driven,
step by step, with the recorded forcing through the core's own session (the same validation,
land step and reply code as the service), with no server and no atmosphere.

- **Bitwise mode**: the record's start state resumes on the chosen backend (same name, class,
  version and artifact hashes as recorded): every reply must equal the record bit for bit (a
  bit-rounded output is compared after the same rounding: ``keepbits`` in the record).
- **A/B mode**: another backend (or other artifacts): the session starts fresh from the recorded
  spec at step 0 and its replies are compared with the record as skill (``report``).

In both modes the recorded Assimilate requests (``observations/``) are sent again, through the
session's own ``assimilate``, right before the step they preceded when recorded, and so are the
recorded land-cover changes (``land_cover_changes/``, through ``update_cover``).

:class:`RankReplay` yields :class:`StepResult` per step (the Python API: debug a run step by step
without the atmosphere); :func:`compare` checks one step's bits.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from coupler.core.manager import SessionManager
from coupler.core.session import Session
from coupler.errors import FailedPrecondition, InvalidArgument
from coupler.replay.observations import RecordedRequest
from coupler.replay.source import RecordError, RecordSource
from coupler.spec.codecs import bitround

OWNER = "replay"


@dataclass(frozen=True)
class StepResult:
    """One replayed step: the recorded forcing and outputs, and the replayed outputs ((cell,)
    float64, as the session replied, before any rounding)."""

    rank: int
    index: int
    forcing: Mapping[str, np.ndarray]
    recorded: Mapping[str, np.ndarray]
    replayed: Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Difference:
    """The first replayed value whose bits differ from the record."""

    rank: int
    step: int
    field: str
    cell: int
    lat: float
    lon: float
    recorded: float
    replayed: float

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def compare(
    result: StepResult, keepbits: Mapping[str, int], lat: np.ndarray, lon: np.ndarray
) -> Difference | None:
    """The first field (in record order) and cell where ``result`` differs from the record bit
    for bit (outputs recorded with ``keepbits`` are rounded the same way first), else None."""
    for name, recorded in result.recorded.items():
        got = bitround(np.asarray(result.replayed[name], dtype=np.float64), keepbits.get(name, 0))
        same = got.view(np.uint64) == recorded.view(np.uint64)
        if not same.all():
            cell = int(np.argmin(same))
            return Difference(
                result.rank, result.index, name, cell, float(lat[cell]), float(lon[cell]),
                float(recorded[cell]), float(got[cell]),
            )  # fmt: skip
    return None


class RankReplay:
    """One rank's record replayed on ``backend`` (default: the recorded one), in-process."""

    def __init__(
        self,
        source: RecordSource,
        backend: str | None = None,
        manager: SessionManager | None = None,
    ) -> None:
        self.source = source
        self.backend = backend or source.spec.backend
        self._manager = manager if manager is not None else SessionManager()
        self.mode: str | None = None  # "bitwise" or "ab", known once the session is open
        self.requests_sent = 0  # recorded Assimilate requests re-sent
        self._requests_before = 0
        self.observations_sent = 0
        self.cover_changes_applied = 0  # recorded land-cover changes applied again

    def _open(self, step: int) -> Session:
        """The session that will replay from the start state at or before ``step``."""
        src = self.source
        spec = src.spec_for_replay(self.backend)
        start = src.start_for(step)
        data = replace(src.checkpoint(start), config=spec)
        # the requests accepted before the start state are in it (analysed or queued)
        self._requests_before = int((data.assimilation or {}).get("requests", 0))
        try:
            session = self._manager.resume_from(data, OWNER, f"{src.url} starts/{start}")
            self.mode = "bitwise" if src.bitwise_replayable else "ab"
            return self._check_file(session, data.assimilation)
        except (FailedPrecondition, InvalidArgument) as exc:
            if exc.rule not in ("backend_identity", "state_shape"):
                raise
        if start != 0:
            raise RecordError(
                src.url, "ab_start", f"backend {self.backend!r} is not the recorded one, so it "
                f"must start from step 0, but the record starts at step {start}",
            )  # fmt: skip
        self.mode = "ab"
        return self._check_file(self._manager.open(spec, OWNER), data.assimilation)

    def _check_file(self, session: Session, recorded: Mapping[str, Any] | None) -> Session:
        """``session``, unless its observation file differs from the recorded session's."""
        want = None if recorded is None else recorded.get("file_sha256")
        da = session.assimilation
        if want is None or da is None or da.file is None or da.file.fingerprint == want:
            return session
        self._manager.close(session.id, OWNER)
        url = session.config.assimilation.observations_url if session.config.assimilation else ""
        raise RecordError(
            self.source.url, "observations_file", f"the observation file {url!r} changed since "
            f"the recording (sha256 {da.file.fingerprint[:16]}..., recorded {want[:16]}...): "
            "the replay would not see the recorded observations",
        )  # fmt: skip

    def steps(
        self, start: int = 0, stop: int | None = None, prefetch: int = 2
    ) -> Iterator[StepResult]:
        """Replay steps up to ``stop`` (default: every committed step), yielding those from
        ``start`` on; steps between the start state and ``start`` are run but not yielded.
        While it runs, torch uses the record's intra-op thread count (``torch_num_threads``:
        the emulators' float results depend on it); it is restored when the iterator ends."""
        src = self.source
        stop = src.n_steps if stop is None else min(stop, src.n_steps)
        if not 0 <= start <= stop:
            raise InvalidArgument(
                f"steps: {start}:{stop} is not within the record's 0:{src.n_steps}",
                field="steps", rule="range",
            )  # fmt: skip
        threads = torch.get_num_threads()
        torch.set_num_threads(src.torch_threads)
        try:
            session = self._open(start)
            try:
                yield from self._drive(session, start, stop, prefetch)
            finally:
                self._manager.close(session.id, OWNER)
        finally:
            torch.set_num_threads(threads)

    def _assimilate(self, session: Session, request: RecordedRequest) -> None:
        """Re-send a recorded Assimilate request before the step it preceded."""
        try:
            session.assimilate(request.batches)
        except (FailedPrecondition, InvalidArgument) as exc:
            raise RecordError(
                self.source.url, "observations", f"observation request {request.serial}, "
                f"accepted before step {request.step} when recorded, is refused on replay: {exc}",
            ) from exc  # fmt: skip
        self.requests_sent += 1
        self.observations_sent += request.n_obs

    def _drive(
        self, session: Session, start: int, stop: int, prefetch: int
    ) -> Iterator[StepResult]:
        src = self.source
        names = src.forcing + src.outputs
        for block in src.blocks(session.next_index, stop, names, prefetch=prefetch):
            pending = [
                r
                for r in src.observations.requests(block.start, block.stop)
                if r.serial >= self._requests_before
            ]
            for row, index in enumerate(range(block.start, block.stop)):
                if index in src.cover_changes:  # before the step, as the session took it
                    session.update_cover(index, src.cover(index))
                    self.cover_changes_applied += 1
                while pending and pending[0].step == index:
                    self._assimilate(session, pending.pop(0))
                forcing = {
                    n: block.fields[n][row]
                    for n in src.forcing
                    if not np.isnan(block.fields[n][row]).all()
                }
                reply = session.step(index, forcing)
                if index >= start:
                    recorded = {n: block.fields[n][row] for n in src.outputs}
                    yield StepResult(src.rank, index, forcing, recorded, reply)
