"""What a session needs from a recorder: the :class:`Recorder` Protocol (the Zarr one is
``coupler.core.recorder.ZarrRecorder``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from coupler.spec.observations import Parsed


@runtime_checkable
class Recorder(Protocol):
    """What a session needs from a recorder."""

    def record(
        self,
        index: int,
        inputs: Mapping[str, np.ndarray],
        outputs: Mapping[str, np.ndarray],
        analysis: Mapping[str, float] | None = None,
        dtypes: Mapping[str, np.dtype] | None = None,
    ) -> None:
        """Queue step ``index``'s (cell,) inputs (checked, float64) and outputs, and the
        scalar diagnostics of an analysis run in that step (``assim_<name>``); ``dtypes``: the
        dtype each input came in (None: its own), which the record keeps. The arrays must not
        be modified afterwards (the session hands over read-only arrays)."""
        ...

    def admit(self, inputs: Mapping[str, np.ndarray], dtypes: Mapping[str, np.dtype]) -> None:
        """Raise (FailedPrecondition, rule ``record_dtype``) unless the checked float64 forcing
        ``inputs``, received in ``dtypes``, can be stored losslessly in the record (called
        before the step computes, so a refusal changes nothing)."""
        ...

    def observations(
        self, index: int, serial: int, batches: Sequence[Parsed], units: Sequence[str]
    ) -> None:
        """Queue the session's accepted Assimilate request number ``serial`` (checked
        ``batches`` and the units each stated), queued before step ``index``."""
        ...

    def cover_change(self, index: int, fractions: np.ndarray) -> None:
        """Queue the session's new (cell, 8) land-cover fractions from step ``index`` on
        (replay applies them before that step)."""
        ...

    def check(self) -> None:
        """Raise if the recorder has failed (so the session refuses the step, state intact)."""
        ...

    def flush(self) -> None:
        """Block until everything queued so far is written (partial chunk included)."""
        ...

    def close(self) -> None:
        """Flush and stop; idempotent."""
        ...
