"""Offline replay of session records (record format v2, ``docs/replay.md``).

The replay ring sits right above the core: it reads records (:class:`RecordSource`,
:func:`open_run`, :func:`open_dataset`), re-creates each rank's session from the start state
inside the record and drives a backend with the recorded forcing in-process
(:class:`RankReplay`, :func:`replay`), and serves a record through the land-backend Protocol
(:class:`RecordBackend`). No gRPC and no client.
"""

from __future__ import annotations

from coupler.replay import report
from coupler.replay.api import ReplayResult, replay
from coupler.replay.backend import RecordBackend
from coupler.replay.engine import Difference, RankReplay, StepResult
from coupler.replay.runindex import open_dataset, open_run
from coupler.replay.source import Block, RecordError, RecordSource

__all__ = [
    "Block",
    "Difference",
    "RankReplay",
    "RecordBackend",
    "RecordError",
    "RecordSource",
    "ReplayResult",
    "StepResult",
    "open_dataset",
    "open_run",
    "replay",
    "report",
]
