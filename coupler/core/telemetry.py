"""The seam between the core and whatever records its metrics.

The core (sessions, the session manager, the recorder) reports what it does through
:class:`MetricsSink`, a Protocol of exactly the calls it makes, and knows nothing else about
metrics: the Prometheus implementation (``coupler.metrics.ServiceMetrics``) lives above the core,
and the wire's server creates one and hands it to the :class:`~coupler.core.manager.SessionManager`.
Without one the core reports to :class:`NullMetrics`, which drops everything.

Only plain numbers, strings and dicts cross the seam: an analysis's diagnostics arrive as the
per-observation-type statistics and three spreads, not as an assimilation object, so a sink needs
nothing of ``coupler.assimilation``. The contract every sink passes is
``tests/contracts/metrics_contract.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

#: The step phases the core times (``observe_phase``); the wire adds its own (decode, encode).
CORE_PHASES: tuple[str, ...] = (
    "validate",  # checking the fields of a step (Session.step)
    "assimilation",  # the analysis and the forcing perturbation before the backend step
    "land",  # backend step + ensemble statistics
    "record",  # handing the step to the record queue, including any wait for room
    "record_write",  # the recorder's background writer storing one time chunk
    "checkpoint",  # a periodic or requested checkpoint write
)

#: Observation outcomes the core counts (``count_observations``): queued, used, or rejected by
#: the analysis's screening (``rejected_<reason>`` keys of ``by_type`` without the prefix), or
#: ``window``: a file observation whose window began before the session's history.
CORE_OUTCOMES: tuple[str, ...] = (
    "received",
    "used",
    "nonfinite_forward",
    "zero_spread",
    "gross_error",
    "window",
)


@runtime_checkable
class MetricsSink(Protocol):
    """What the core reports. Every method returns nothing and must not raise for valid
    arguments; a sink is called from gRPC worker threads and the recorder's writer thread at
    once, so it must be thread-safe."""

    def observe_phase(self, phase: str, seconds: float) -> None:
        """``seconds`` (s, ≥ 0) spent in ``phase`` (one of :data:`CORE_PHASES`)."""
        ...

    def count_cells(self, n: int) -> None:
        """One new (non-retry) step of ``n`` cells."""
        ...

    def count_retry(self) -> None:
        """A retried step answered from the stored reply."""
        ...

    def set_open_sessions(self, n: int) -> None:
        """The number of open sessions is now ``n``."""
        ...

    def observe_residuals(self, energy_w_m2: float, water_kg_m2: float) -> None:
        """A step's maximum closure residuals (W m-2, kg m-2); NaN = not available this step
        (the water balance on a session's first step)."""
        ...

    def count_checkpoint(self) -> None:
        """A checkpoint was written."""
        ...

    def observe_batch(self, sessions: int, cells: int) -> None:
        """One backend call made for the steps of ``sessions`` sessions (≥ 1) of ``cells``
        cells in all (``coupler.core.batching``; only with a batch window)."""
        ...

    def count_recorder_block(self, seconds: float) -> None:
        """A record write waited ``seconds`` (s) for room in a full queue."""
        ...

    def observe_analysis(
        self,
        session: str,
        by_type: Mapping[str, Mapping[str, float]],
        prior_spread: float,
        posterior_spread: float,
        inflation_mean: float,
    ) -> None:
        """One analysis of ``session``. ``by_type``: observation type -> ``n_obs``, ``n_used``,
        ``rejected_<reason>`` counts and ``innovation_mean``, ``innovation_rms``,
        ``obs_prior_spread`` (observation units; NaN when none of that type was used).
        Spreads of the state vector before (inflated) and after the analysis, and the mean
        variance inflation."""
        ...

    def count_observations(self, session: str, obs_type: str, outcome: str, n: int) -> None:
        """``n`` observations of ``obs_type`` with ``outcome`` (:data:`CORE_OUTCOMES`)."""
        ...

    def forget_session(self, session: str) -> None:
        """``session`` closed: drop whatever is kept per session (idempotent)."""
        ...


class NullMetrics:
    """A :class:`MetricsSink` that records nothing (the core's default)."""

    def observe_phase(self, phase: str, seconds: float) -> None:
        pass

    def count_cells(self, n: int) -> None:
        pass

    def count_retry(self) -> None:
        pass

    def set_open_sessions(self, n: int) -> None:
        pass

    def observe_residuals(self, energy_w_m2: float, water_kg_m2: float) -> None:
        pass

    def count_checkpoint(self) -> None:
        pass

    def observe_batch(self, sessions: int, cells: int) -> None:
        pass

    def count_recorder_block(self, seconds: float) -> None:
        pass

    def observe_analysis(
        self,
        session: str,
        by_type: Mapping[str, Mapping[str, float]],
        prior_spread: float,
        posterior_spread: float,
        inflation_mean: float,
    ) -> None:
        pass

    def count_observations(self, session: str, obs_type: str, outcome: str, n: int) -> None:
        pass

    def forget_session(self, session: str) -> None:
        pass


__all__ = ["CORE_OUTCOMES", "CORE_PHASES", "MetricsSink", "NullMetrics"]
