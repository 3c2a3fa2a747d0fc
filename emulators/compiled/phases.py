"""Wall time per phase of the emulator backend's step, for ``make bench-emulators``.

The backend calls ``phase(name)`` around each part of its step (``EmulatorBackend.phases``): by
default :func:`no_phases` (a shared ``nullcontext``, nothing measured); the benchmark sets a
:class:`PhaseTimes`, which adds each part's wall time to ``seconds[name]``. Torch's CPU kernels
return when their work is done, so the wall time of a block of code is its cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

#: ``phase(name)``: a context manager around the part of the step called ``name``
Phase = Callable[[str], AbstractContextManager[None]]

#: the phases of a step, in order: gather the active tiles' state, forcing and class constants
#: into rows; input features (surface diagnostics included); the flux network; the constraint
#: layer (water, energy, soil heat, float64); daily accumulators and, at the end of a day, the
#: LAI step (LAI network included); scatter: the network's per-call outputs joined, rows back
#: into the dense state, and their fields into dense tile fields (``step_tiles``) or summed
#: into cell fields (``step``)
PHASES = ("gather", "features", "network", "closure", "phenology", "scatter")

_NULL: AbstractContextManager[None] = nullcontext()


def no_phases(name: str) -> AbstractContextManager[None]:
    """The default ``phase``: measures nothing."""
    del name
    return _NULL


class PhaseTimes:
    """A ``phase`` that adds the wall time of every part to ``seconds[name]``. A part inside
    another counts for its own name only: the outer part's time excludes it (e.g. joining the
    network's per-call outputs, "scatter", inside "network")."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._nested: list[float] = []  # per open part: seconds of the parts inside it

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        self._nested.append(0.0)
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            inner = self._nested.pop()
            self.seconds[name] = self.seconds.get(name, 0.0) + elapsed - inner
            if self._nested:
                self._nested[-1] += elapsed

    def reset(self) -> None:
        self.seconds.clear()
