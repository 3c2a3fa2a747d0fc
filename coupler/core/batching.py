"""Micro-batching of backend steps across sessions (``landcoupler serve --batch-window-ms``).

A session's step is a transaction around one ``backend.step`` call (``session``). With a
:class:`StepBatcher`, that call may be shared: the steps of sessions whose backend promises
bitwise batching (``emulators.protocol.BatchableBackend``: the reference model) and whose steps
agree on everything the backend step reads besides the per-cell data — the same backend
instance, equal ``batch_key(clock)`` (for the reference model: the timestep, and at the end of a
day the day of the year), the same members, forcing names and state layout — are gathered for
at most ``window`` seconds (or until ``max_cells``) into ONE backend call on the domains joined
on the cell axis, whose result is split back, each session getting its own slice (copies).

The batch covers only the backend call. Validation (so a bad field is refused, with its own
field and rule, before the step joins a batch), retries of the previous index, the assimilation,
the reply statistics, checkpoints, the record and the commit stay in each session's
transaction, in its own thread. If the joined call fails, every member steps alone, so an error
belongs to the one session that causes it and the others are computed as without batching.

Not batched (stepped alone, exactly as without a batcher): backends that do not declare
``batch_key`` (the compiled emulators and Triton: their networks' float32 results are not
proven independent of the batch), sessions with frozen vegetation (their own backend wrapper),
sessions with assimilation (member-perturbed forcing), domains whose cell count is not a
multiple of the backend's ``batch_cells``, and any step when ``window`` is 0.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from coupler.core.telemetry import MetricsSink, NullMetrics
from emulators.landstep import CheckedForcing
from emulators.protocol import LandBackend, LandState, LandStatic, StepClock

Tensor = torch.Tensor
StepResult = tuple[LandState, dict[str, Tensor]]
#: output name -> the ensemble mean over members of a joined step's part (:func:`member_means`)
Means = dict[str, np.ndarray]
#: the default ceiling on the cells of one joined step (the reference model's cell block)
DEFAULT_MAX_CELLS = 8192
#: seconds a domain counts as a peer of its key after its last step: a step whose key no other
#: domain stepped under for this long is computed at once, without waiting for the window
PEER_HORIZON = 1.0


def batch_key(
    backend: LandBackend,
    state: LandState,
    static: LandStatic,
    forcing: Mapping[str, Tensor],
    clock: StepClock,
) -> Hashable | None:
    """What two steps must share to be computed as one joined step, or None when this step
    is never batched (see the module docstring)."""
    key_of = getattr(backend, "batch_key", None)
    multiple = getattr(backend, "batch_cells", 0)
    if not callable(key_of) or not isinstance(multiple, int) or multiple <= 0:
        return None
    if not isinstance(forcing, CheckedForcing):  # perturbed member forcing: not batched
        return None
    n, m = static.n_cells, static.n_members
    if n == 0 or n % multiple:
        return None
    clock_key = key_of(clock)
    if clock_key is None:
        return None
    layout: list[Hashable] = [static.params.dtype, static.cover.dtype, static.lat.dtype]
    for name, t in sorted(state.tensors.items(), key=lambda item: item[0]):
        if t.dim() < 2 or t.shape[0] != m or t.shape[1] != n:
            return None
        layout.append((name, tuple(t.shape[2:]), t.dtype))
    for name, t in sorted(forcing.items(), key=lambda item: item[0]):
        if tuple(t.shape) != (m, n):
            return None
        layout.append((name, t.dtype))
    return (id(backend), clock_key, m, tuple(layout))


@dataclass
class _Entry:
    state: LandState
    static: LandStatic
    forcing: Mapping[str, Tensor]
    clock: StepClock
    means_of: tuple[str, ...] = ()


@dataclass
class _Batch:
    """The steps gathered under one key; the first to arrive (the leader) runs it."""

    backend: LandBackend
    entries: list[_Entry] = field(default_factory=list)
    cells: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    results: list[StepResult] | None = None  # None after run(): every member steps alone
    means: list[Means] = field(default_factory=list)  # per member; [] when not joined

    def run(self) -> None:
        """The joined step, split into the members' results (and the member means they asked
        for); on any failure ``results`` stays None and each member steps alone (and gets its
        own error)."""
        try:
            if len(self.entries) == 1:
                e = self.entries[0]
                self.results = [self.backend.step(e.state, e.static, e.forcing, e.clock)]
            else:
                domains = [(e.state, e.static, e.forcing) for e in self.entries]
                # the batch key says the step reads nothing of the clock that differs
                state, outputs = _joined(self.backend, domains, self.entries[0].clock)
                bounds = _bounds(domains)
                names = sorted({name for e in self.entries for name in e.means_of})
                means = member_means(outputs, names, bounds)
                self.results = _split(state, outputs, bounds)
                self.means = [{k: m[k] for k in e.means_of if k in m}
                              for e, m in zip(self.entries, means, strict=True)]  # fmt: skip
        except Exception:  # each member repeats its step alone and gets its own error
            self.results = None
        finally:
            self.done.set()


class StepBatcher:
    """Gathers batchable backend steps of concurrent sessions into joined steps.

    ``window``: seconds the first step of a batch waits for others (> 0); ``max_cells``: a
    batch is closed when the next step would take it past this many cells. While a joined
    step of a key runs, the next batch of that key keeps gathering (it starts when both its
    window has passed and the running one is done, or when it is full): under load, batches
    grow to what arrives during one joined step instead of what arrives in one window
    (dynamic batching; one Python process computes one joined step at a time anyway). A step
    that no other domain could join (none stepped under its key for :data:`PEER_HORIZON`
    seconds) does not wait: a lone session pays no window; and a batch that every domain seen
    under its key in that time has joined starts at once (ranks stepping in lockstep)."""

    def __init__(
        self,
        window: float,
        max_cells: int = DEFAULT_MAX_CELLS,
        metrics: MetricsSink | None = None,
    ) -> None:
        if not window > 0.0:
            raise ValueError(f"window: must be > 0 s, got {window!r}")
        if isinstance(max_cells, bool) or not isinstance(max_cells, int) or max_cells < 1:
            raise ValueError(f"max_cells: must be an integer >= 1, got {max_cells!r}")
        self.window = float(window)
        self.max_cells = max_cells
        self._metrics = metrics if metrics is not None else NullMetrics()
        self._cond = threading.Condition()
        self._open: dict[Hashable, _Batch] = {}
        self._running: dict[Hashable, int] = {}
        self._seen: dict[Hashable, dict[int, float]] = {}

    def step_means(
        self,
        backend: LandBackend,
        state: LandState,
        static: LandStatic,
        forcing: Mapping[str, Tensor],
        clock: StepClock,
        names: Sequence[str],
    ) -> tuple[LandState, dict[str, Tensor], Means]:
        """``backend.step(state, static, forcing, clock)``, bitwise, possibly computed as part
        of a joined step with other sessions' steps (inputs are not modified), and where the
        step was joined the ensemble means of the outputs ``names`` (:func:`member_means`:
        computed once for the whole batch, bitwise what the caller would compute on its part);
        empty when the step ran alone."""
        key = batch_key(backend, state, static, forcing, clock)
        if key is None:
            return (*backend.step(state, static, forcing, clock), {})
        entry = _Entry(state, static, forcing, clock, tuple(names))
        with self._cond:
            alone = self._peers(key, id(static)) == 1
            if not alone:
                batch, leader, position = self._join(key, backend, entry)
        if alone:  # nobody to wait for: no window
            result = backend.step(state, static, forcing, clock)
            self._metrics.observe_batch(1, static.n_cells)
            return (*result, {})
        if leader:
            self._lead(key, batch)
        else:
            batch.done.wait()
        if batch.results is None:
            return (*backend.step(state, static, forcing, clock), {})
        means = batch.means[position] if batch.means else {}
        return (*batch.results[position], means)

    def _join(self, key: Hashable, backend: LandBackend, entry: _Entry) -> tuple[_Batch, bool, int]:
        """Add ``entry`` to the open batch of ``key`` (a new one, led by this step, when there
        is none or it is full): (the batch, whether this step leads it, its position). The
        batch is closed when it is full or holds every recent peer. Under the lock."""
        n = entry.static.n_cells
        batch = self._open.get(key)
        leader = batch is None or batch.cells + n > self.max_cells
        if leader:
            if batch is not None:  # full: run it now, start another
                del self._open[key]
                self._cond.notify_all()
            batch = _Batch(backend)
            self._open[key] = batch
        assert batch is not None
        position = len(batch.entries)
        batch.entries.append(entry)
        batch.cells += n
        everyone = len(batch.entries) >= len(self._seen.get(key, ()))  # all recent peers
        if (batch.cells >= self.max_cells or everyone) and self._open.get(key) is batch:
            del self._open[key]
            self._cond.notify_all()
        return batch, leader, position

    def _peers(self, key: Hashable, domain: int) -> int:
        """How many domains stepped under ``key`` in the last :data:`PEER_HORIZON` seconds,
        this one (``domain``: its static fields' id) included. Under the lock."""
        now = time.monotonic()
        seen = self._seen.setdefault(key, {})
        seen[domain] = now
        if len(seen) > 1:
            for other in [d for d, t in seen.items() if now - t > PEER_HORIZON]:
                del seen[other]
        return len(seen)

    def _lead(self, key: Hashable, batch: _Batch) -> None:
        deadline = time.monotonic() + self.window
        with self._cond:
            while self._open.get(key) is batch:  # else: closed full by another step
                left = deadline - time.monotonic()
                if left <= 0.0 and not self._running.get(key):
                    del self._open[key]
                    break
                self._cond.wait(left if left > 0.0 else None)  # woken when a batch ends
            self._running[key] = self._running.get(key, 0) + 1
        try:
            batch.run()
        finally:
            with self._cond:
                if self._running[key] == 1:
                    del self._running[key]
                else:
                    self._running[key] -= 1
                self._cond.notify_all()
        self._metrics.observe_batch(len(batch.entries), batch.cells)


Domain = tuple[LandState, LandStatic, Mapping[str, Tensor]]


def joined_step(
    backend: LandBackend, domains: Sequence[Domain], clock: StepClock
) -> list[StepResult]:
    """One backend step of the domains (state, static, forcing) joined on the cell axis (in
    order), split back into each domain's (state, outputs) as contiguous copies (a slice would
    keep the whole joined tensor alive, and a checkpoint would save all of it). The caller
    guarantees what :func:`batch_key` checks (``clock`` stands for every domain's clock)."""
    new_state, outputs = _joined(backend, domains, clock)
    return _split(new_state, outputs, _bounds(domains))


def _joined(
    backend: LandBackend, domains: Sequence[Domain], clock: StepClock
) -> tuple[LandState, dict[str, Tensor]]:
    """The backend step of the joined domains, unsplit (inference tensors: cut them with
    :func:`_split`, which makes ordinary ones)."""
    first_state, _, first_forcing = domains[0]
    names = list(first_state.tensors)
    # Inference mode: the same kernels without autograd's and the version counters' work on
    # each of the step's ~1 800 small ops (≈ 17 % of a 64-cell step; docs/benchmarks.md). Its
    # tensors never reach a session: the parts are copied outside it, so every session gets
    # ordinary tensors (in-place updates of its state stay allowed).
    with torch.inference_mode():
        state = LandState({k: torch.cat([d[0].tensors[k] for d in domains], 1) for k in names})
        forcing = CheckedForcing(
            {k: torch.cat([d[2][k] for d in domains], 1) for k in first_forcing}
        )
        static = LandStatic.join([d[1] for d in domains])
        new_state, outputs = backend.step(state, static, forcing, clock)
    total = static.n_cells
    for t in (*new_state.tensors.values(), *outputs.values()):
        if t.dim() < 2 or t.shape[1] != total:
            raise ValueError("a joined step returned a tensor without the cell axis")
    return new_state, outputs


def _bounds(domains: Sequence[Domain]) -> list[slice]:
    """Each domain's cells on the joined cell axis."""
    bounds = []
    start = 0
    for _, part, _ in domains:
        bounds.append(slice(start, start + part.n_cells))
        start += part.n_cells
    return bounds


def _split(
    new_state: LandState, outputs: Mapping[str, Tensor], bounds: Sequence[slice]
) -> list[StepResult]:
    state_parts = {k: _parts(v, bounds) for k, v in new_state.tensors.items()}
    output_parts = {k: _parts(v, bounds) for k, v in outputs.items()}
    return [
        (
            LandState({k: parts[i] for k, parts in state_parts.items()}),
            {k: parts[i] for k, parts in output_parts.items()},
        )
        for i in range(len(bounds))
    ]


def _parts(t: Tensor, bounds: Sequence[slice]) -> list[Tensor]:
    """``t`` cut on the cell axis into the domains' parts, each a contiguous copy of its own.
    On the CPU through numpy: a slice's copy there is ~4× cheaper than ``Tensor.clone`` for a
    64-cell part and does not release the GIL (whose hand-offs cost the server more than the
    copy, docs/benchmarks.md); the tensor made from it owns exactly its part's bytes, is an
    ordinary tensor, and has the same bits, dtype, shape and (contiguous) strides."""
    whole = _numpy(t)
    if whole is None:
        return [t[:, cells].clone(memory_format=torch.contiguous_format) for cells in bounds]
    return [torch.from_numpy(np.array(whole[:, cells], order="C")) for cells in bounds]


def _numpy(t: Tensor) -> np.ndarray | None:
    """``t``'s memory as a numpy array (no copy), or None where numpy cannot hold it."""
    if t.device.type != "cpu":
        return None
    try:
        return (t.detach() if t.requires_grad else t).numpy()
    except (TypeError, RuntimeError):  # a dtype numpy lacks (bfloat16), a conjugate bit...
        return None


def member_means(
    outputs: Mapping[str, Tensor], names: Sequence[str], bounds: Sequence[slice]
) -> list[Means]:
    """Per part (``bounds``), the ensemble mean of each (member, cell) output of ``names`` as
    a read-only float64 (cell,) array: ``t.to(float64).mean(dim=0)`` computed once on the
    joined tensor and cut, for ``coupler.core.landstep.reply_fields``. Bitwise what each part
    gives alone: the mean reduces over members cell by cell (the same additions in the same
    order whatever the cell count), and the parts start and end on whole 64-cell blocks, as
    for the step itself (tested against unbatched sessions with 1 and 3 members). Names the
    outputs lack, or whose tensors are not (member, cell) on the CPU, are left out (the
    session computes them, and refuses what it must)."""
    whole: dict[str, np.ndarray] = {}
    with torch.inference_mode():
        for name in names:
            t = outputs.get(name)
            if t is None or t.dim() != 2 or t.device.type != "cpu":
                continue
            mean = _numpy(t.to(torch.float64).mean(dim=0))
            if mean is not None:
                whole[name] = mean
    out: list[Means] = []
    for cells in bounds:
        part: Means = {}
        for name, values in whole.items():
            arr = np.array(values[cells], order="C")
            arr.flags.writeable = False
            part[name] = arr
        out.append(part)
    return out
