"""Replaying ranks, one after the other or in parallel worker processes.

Ranks are independent in a replay (each rank's forcing is in its record), so ``workers`` > 1
replays them in that many processes, each rank whole in one worker (its own session, reads and
prefetch), and the outcomes are merged in rank order: the results are the same as a serial
replay's (``tests/coupler/replay/test_replay_parallel.py`` compares the JSON). Workers are forked
where the platform can (Linux: no re-import, and a ``memory://`` record is seen by the workers),
else spawned; an error in a worker arrives whole (class, message, ``field``, ``rule``) and the
lowest failing rank's is raised, as a serial replay would. Progress is reported per block of
steps through a queue that a thread of the caller drains.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from coupler.replay.engine import Difference, RankReplay, compare
from coupler.replay.source import RecordSource
from coupler.spec.codecs import bitround

#: steps a worker replays between two progress reports
PROGRESS_EVERY = 16


@dataclass
class RankData:
    """One rank's compared outputs: (step, cell) arrays, steps ``[start, start + n)``; the
    replayed outputs are rounded to the record's ``keepbits`` (what a bitwise check compares)."""

    rank: int
    start: int
    lat: np.ndarray
    lon: np.ndarray
    times: np.ndarray
    recorded: dict[str, np.ndarray] = field(default_factory=dict)
    replayed: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class RankOutcome:
    """What replaying one rank gives (picklable: it crosses back from a worker)."""

    data: RankData
    first: Difference | None
    mode: str
    requests_sent: int
    observations_sent: int


def cores() -> int:
    """CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def replay_rank(
    src: RecordSource,
    backend: str | None,
    a: int,
    b: int,
    collect: bool,
    progress: Callable[[int], None] | None,
) -> RankOutcome:
    """Replay one rank's steps [a, b): its data, first difference, mode and counts."""
    runner = RankReplay(src, backend)
    d = RankData(src.rank, a, src.lat, src.lon, _times(src, a, b))
    if collect:
        d.recorded = {n: np.empty((b - a, src.n_cells)) for n in src.outputs}
        d.replayed = {n: np.empty((b - a, src.n_cells)) for n in src.outputs}
    first: Difference | None = None
    for result in runner.steps(a, b):
        if first is None:
            first = compare(result, src.keepbits, src.lat, src.lon)
        if collect:
            row = result.index - a
            for n in src.outputs:  # compared as stored: with the record's rounding
                d.recorded[n][row] = result.recorded[n]
                d.replayed[n][row] = bitround(result.replayed[n], src.keepbits.get(n, 0))
        if progress is not None:
            progress(1)
    return RankOutcome(
        d, first, runner.mode or "bitwise", runner.requests_sent, runner.observations_sent
    )


def replay_ranks(
    sources: Sequence[RecordSource],
    backend: str | None,
    a: int,
    b: int,
    collect: bool,
    progress: Callable[[int], None] | None,
    workers: int,
    storage_options: Mapping[str, Any] | None = None,
) -> list[RankOutcome]:
    """Every source's outcome, in the order given; ``workers`` <= 1 (or one source): serially
    in this process, else in ``min(workers, len(sources))`` worker processes."""
    workers = min(workers, len(sources))
    if workers <= 1:
        return [replay_rank(s, backend, a, b, collect, progress) for s in sources]
    ctx = mp.get_context("fork" if sys.platform == "linux" else "spawn")
    queue = ctx.SimpleQueue() if progress is not None else None
    drain = None
    if queue is not None and progress is not None:
        drain = threading.Thread(target=_drain, args=(queue, progress), daemon=True)
        drain.start()
    try:
        with ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_init_worker, initargs=(queue,)
        ) as pool:
            futures = [
                pool.submit(_work, s.url, storage_options, backend, a, b, collect) for s in sources
            ]
            done = [f.exception() or f.result() for f in futures]
    finally:
        if queue is not None and drain is not None:
            queue.put(None)
            drain.join()
    for item in done:  # the lowest rank's error, as a serial replay raises it
        if isinstance(item, BaseException):
            raise item
    return [item for item in done if isinstance(item, RankOutcome)]


# ---- the worker side ---------------------------------------------------------------------------
_QUEUE: Any = None


def _init_worker(queue: Any) -> None:
    global _QUEUE
    _QUEUE = queue


def _work(
    url: str,
    storage_options: Mapping[str, Any] | None,
    backend: str | None,
    a: int,
    b: int,
    collect: bool,
) -> RankOutcome:
    pending = [0]

    def report(n: int) -> None:
        pending[0] += n
        if pending[0] >= PROGRESS_EVERY:
            _QUEUE.put(pending[0])
            pending[0] = 0

    src = RecordSource(url, storage_options)
    outcome = replay_rank(src, backend, a, b, collect, report if _QUEUE is not None else None)
    if _QUEUE is not None and pending[0]:
        _QUEUE.put(pending[0])
    return outcome


def _drain(queue: Any, progress: Callable[[int], None]) -> None:
    while (n := queue.get()) is not None:
        progress(n)


def _times(src: RecordSource, a: int, b: int) -> np.ndarray:
    start = src.spec.start
    return start + np.arange(a, b, dtype=np.int64) * np.timedelta64(src.spec.timestep, "s")
