"""Every metrics sink passes the contract: the core's no-op default and Prometheus."""

from __future__ import annotations

from coupler.core.manager import SessionManager
from coupler.core.telemetry import CORE_PHASES, MetricsSink, NullMetrics
from coupler.metrics import PHASES, ServiceMetrics

from .metrics_contract import MetricsSinkContract, analysis


class TestNullMetrics(MetricsSinkContract):
    def make_sink(self) -> MetricsSink:
        return NullMetrics()


class TestServiceMetrics(MetricsSinkContract):
    def make_sink(self) -> MetricsSink:
        return ServiceMetrics()


def test_the_core_defaults_to_the_null_sink() -> None:
    manager = SessionManager()
    assert isinstance(manager.metrics, NullMetrics)
    manager.shutdown(checkpoint=False)


def test_prometheus_knows_every_core_phase() -> None:
    assert set(CORE_PHASES) <= set(PHASES)


def test_prometheus_exports_an_analysis_given_as_plain_numbers() -> None:
    m = ServiceMetrics()
    m.observe_analysis("s1", **analysis())
    get = m.registry.get_sample_value
    assert get("landcoupler_assimilation_analyses_total", {"session": "s1"}) == 1.0
    used = {"session": "s1", "obs_type": "lai", "outcome": "used"}
    assert get("landcoupler_assimilation_observations_total", used) == 2.0
    gross = {"session": "s1", "obs_type": "lai", "outcome": "gross_error"}
    assert get("landcoupler_assimilation_observations_total", gross) == 1.0
    lai = {"session": "s1", "obs_type": "lai"}
    assert get("landcoupler_assimilation_innovation_rms", lai) == 0.3
    prior = {"session": "s1", "stage": "prior"}
    assert get("landcoupler_assimilation_state_spread", prior) == 0.5
    assert get("landcoupler_assimilation_inflation_mean", {"session": "s1"}) == 1.02
    m.forget_session("s1")
    assert 'session="s1"' not in m.exposition()
