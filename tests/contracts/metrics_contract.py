"""The contract every metrics sink passes (``coupler.core.telemetry.MetricsSink``).

Subclass :class:`MetricsSinkContract` as ``TestSomething`` and implement ``make_sink`` (as
``backend_contract.py`` does for land backends): the sink is a ``MetricsSink`` with the
Protocol's signatures; it takes every call the core makes with every value the core sends (each
core phase, zero and huge counts, NaN residuals, an analysis given as plain numbers with NaN
statistics for unused types, every observation outcome), returns nothing, forgets sessions
idempotently, is safe to call from several threads at once, and a real session (steps, a retry,
assimilation, record, checkpoint, close) runs with it — through a spy that fails on any call
outside the Protocol, so the core uses exactly the Protocol. The checks use only the Protocol.
"""

from __future__ import annotations

import abc
import inspect
import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from coupler.assimilation import configio
from coupler.core.manager import SessionManager
from coupler.core.telemetry import CORE_OUTCOMES, CORE_PHASES, MetricsSink
from coupler.spec import ObservationBatch
from tests.coupler.core.conftest import START, config, forcing

#: the Protocol's methods (what the core may call)
PROTOCOL_METHODS = frozenset(
    name
    for name, value in vars(MetricsSink).items()
    if inspect.isfunction(value) and not name.startswith("_")
)


def analysis(*, used: bool = True) -> dict[str, Any]:
    """Keyword arguments of ``observe_analysis`` as the session sends them."""
    nan = math.nan
    lai = {"n_obs": 3.0, "n_used": 2.0, "rejected_gross_error": 1.0, "innovation_mean": 0.1,
           "innovation_rms": 0.3, "obs_prior_spread": 0.2}  # fmt: skip
    ts = {"n_obs": 1.0, "n_used": 0.0, "rejected_nonfinite_forward": 1.0,
          "innovation_mean": nan, "innovation_rms": nan, "obs_prior_spread": nan}  # fmt: skip
    return {
        "by_type": {"lai": lai, "ts": ts} if used else {"ts": ts},
        "prior_spread": 0.5,
        "posterior_spread": 0.25,
        "inflation_mean": 1.02,
    }


class _Spy:
    """Forwards the Protocol's calls to ``sink`` and records their names; anything else the
    core asks for is an error."""

    def __init__(self, sink: MetricsSink) -> None:
        self._sink = sink
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name not in PROTOCOL_METHODS:
            raise AssertionError(f"the core called {name!r}, which MetricsSink does not declare")
        method = getattr(self._sink, name)

        def call(*args: Any, **kwargs: Any) -> None:
            self.calls.append(name)
            assert method(*args, **kwargs) is None

        return call


class MetricsSinkContract(abc.ABC):
    """Subclass as ``TestSomething`` with ``make_sink`` returning a fresh sink."""

    @abc.abstractmethod
    def make_sink(self) -> MetricsSink: ...

    def test_is_a_metrics_sink_with_the_protocols_signatures(self) -> None:
        sink = self.make_sink()
        assert isinstance(sink, MetricsSink)
        for name in PROTOCOL_METHODS:
            want = inspect.signature(getattr(MetricsSink, name))
            have = inspect.signature(getattr(type(sink), name))
            assert list(have.parameters) == list(want.parameters), name

    def test_takes_every_core_phase(self) -> None:
        sink = self.make_sink()
        for phase in CORE_PHASES:
            for seconds in (0.0, 3e-5, 0.2, 120.0):
                assert sink.observe_phase(phase, seconds) is None

    def test_counts_and_gauges(self) -> None:
        sink = self.make_sink()
        for n in (0, 1, 10**9):
            assert sink.count_cells(n) is None
            assert sink.set_open_sessions(n) is None
        assert sink.set_open_sessions(0) is None
        assert sink.count_retry() is None
        assert sink.count_checkpoint() is None
        assert sink.count_recorder_block(0.0) is None
        assert sink.count_recorder_block(1.5) is None
        for sessions, cells in ((1, 64), (16, 1024), (128, 8192)):
            assert sink.observe_batch(sessions, cells) is None

    def test_residuals_may_be_nan(self) -> None:
        sink = self.make_sink()
        for energy, water in ((1e-13, math.nan), (math.nan, math.nan), (0.0, 0.0), (50.0, 1e-7)):
            assert sink.observe_residuals(energy, water) is None

    def test_analysis_arrives_as_plain_numbers(self) -> None:
        sink = self.make_sink()
        assert sink.observe_analysis("s1", **analysis()) is None
        assert sink.observe_analysis("s1", **analysis(used=False)) is None
        assert sink.observe_analysis("s2", **analysis()) is None
        for outcome in CORE_OUTCOMES:
            assert sink.count_observations("s1", "lai", outcome, 4) is None
            assert sink.count_observations("s1", "ts", outcome, 0) is None

    def test_forget_session_is_idempotent(self) -> None:
        sink = self.make_sink()
        sink.observe_analysis("s1", **analysis())
        sink.count_observations("s1", "lai", "received", 3)
        for session in ("s1", "s1", "never-seen"):
            assert sink.forget_session(session) is None
        sink.observe_analysis("s1", **analysis())  # a reused id starts afresh
        sink.forget_session("s1")

    def test_calls_from_several_threads(self) -> None:
        sink = self.make_sink()
        errors: list[BaseException] = []

        def work(k: int) -> None:
            try:
                for i in range(200):
                    session = f"s{k}-{i % 3}"
                    sink.observe_phase(CORE_PHASES[i % len(CORE_PHASES)], 1e-4 * i)
                    sink.count_cells(k + i)
                    sink.set_open_sessions(i)
                    sink.observe_residuals(1e-12 * i, math.nan if i % 2 else 1e-9)
                    sink.observe_analysis(session, **analysis(used=bool(i % 2)))
                    sink.count_observations(session, "lai", CORE_OUTCOMES[i % 6], 1)
                    if i % 7 == 0:
                        sink.forget_session(session)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []

    def test_a_session_runs_with_the_sink_and_only_the_protocol_is_used(self) -> None:
        spy = _Spy(self.make_sink())
        manager = SessionManager(metrics=spy, record_chunk_steps=1)  # type: ignore[arg-type]
        url = f"memory://metrics-contract/{type(self).__name__}"
        cfg = config(
            2,
            members=4,
            assimilation=configio.from_options({"seed": 1}),
            record_url=f"{url}/record.zarr",
            checkpoint_url=f"{url}/ckpt/",
        )
        session = manager.open(cfg, "alice")
        for i in range(3):
            session.step(i, forcing(i, 2))
        session.step(2, forcing(2, 2))  # a retry
        when = START + np.timedelta64(2 * 3600, "s")
        batch = ObservationBatch(
            "ts", [295.0, 296.0], [1.0, 1.0], cfg.grid.lat, cfg.grid.lon, [when, when]
        )
        assert session.assimilate([batch]) == 2
        session.step(3, forcing(3, 2))  # analyses the two observations
        session.checkpoint()
        manager.close(session.id, "alice")
        manager.shutdown(checkpoint=False)
        # count_recorder_block only when the queue is full, observe_batch only with a batch
        # window (tests/coupler/core/test_batching.py)
        expected = PROTOCOL_METHODS - {"count_recorder_block", "observe_batch"}
        assert set(spy.calls) == expected
