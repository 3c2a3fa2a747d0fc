"""ServiceMetrics: per-instance registries, the families of the contract, the HTTP exporter."""

from __future__ import annotations

import math
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from coupler.core.manager import SessionManager
from coupler.metrics import LATENCY_BUCKETS, ServiceMetrics

from .conftest import config, forcing

FAMILIES = {
    "landcoupler_step_phase_seconds": "histogram",
    "landcoupler_cells": "counter",
    "landcoupler_steps": "counter",
    "landcoupler_step_retries": "counter",
    "landcoupler_open_sessions": "gauge",
    "landcoupler_refusals": "counter",
    "landcoupler_energy_residual_w_m2": "histogram",
    "landcoupler_water_residual_kg_m2": "histogram",
    "landcoupler_recorder_queue_full": "counter",
    "landcoupler_checkpoints": "counter",
}


def _families(text: str) -> dict[str, str]:
    return {f.name: f.type for f in text_string_to_metric_families(text)}


def test_exposition_contains_the_families_after_steps() -> None:
    manager = SessionManager(metrics=ServiceMetrics())
    session = manager.open(config(4), "alice")
    for i in range(3):
        session.step(i, forcing(i, 4))
    session.step(2, {})
    manager.metrics.count_refusal("INVALID_ARGUMENT")
    manager.metrics.observe_phase("decode", 0.002)
    text = manager.metrics.exposition()
    found = _families(text)
    for name, kind in FAMILIES.items():
        assert found.get(name) == kind, name
    get = manager.metrics.registry.get_sample_value
    assert get("landcoupler_cells_total") == 12.0
    assert get("landcoupler_steps_total") == 3.0
    assert get("landcoupler_step_retries_total") == 1.0
    assert get("landcoupler_open_sessions") == 1.0
    assert get("landcoupler_refusals_total", {"code": "INVALID_ARGUMENT"}) == 1.0
    assert get("landcoupler_step_phase_seconds_count", {"phase": "land"}) == 3.0
    assert get("landcoupler_step_phase_seconds_count", {"phase": "validate"}) == 3.0
    assert get("landcoupler_step_phase_seconds_count", {"phase": "decode"}) == 1.0
    manager.shutdown(checkpoint=False)
    assert get("landcoupler_open_sessions") == 0.0


def test_buckets_span_a_tenth_of_a_millisecond_to_ten_seconds() -> None:
    assert LATENCY_BUCKETS[0] == 1e-4 and LATENCY_BUCKETS[-1] == 10.0
    assert list(LATENCY_BUCKETS) == sorted(LATENCY_BUCKETS)
    m = ServiceMetrics()
    m.observe_phase("land", 0.0003)
    get = m.registry.get_sample_value
    assert get("landcoupler_step_phase_seconds_bucket", {"phase": "land", "le": "0.0001"}) == 0
    assert get("landcoupler_step_phase_seconds_bucket", {"phase": "land", "le": "0.0005"}) == 1


def test_instances_are_independent_and_validate_phase() -> None:
    a, b = ServiceMetrics(), ServiceMetrics()
    a.count_cells(10)
    assert a.registry.get_sample_value("landcoupler_cells_total") == 10.0
    assert b.registry.get_sample_value("landcoupler_cells_total") == 0.0
    with pytest.raises(ValueError, match="phase"):
        a.observe_phase("lunch", 1.0)


def test_nan_residual_is_not_recorded() -> None:
    m = ServiceMetrics()
    m.observe_residuals(1e-12, math.nan)
    get = m.registry.get_sample_value
    assert get("landcoupler_energy_residual_w_m2_count") == 1.0
    assert get("landcoupler_water_residual_kg_m2_count") == 0.0


def test_http_exporter_serves_the_registry() -> None:
    m = ServiceMetrics()
    m.count_refusal("NOT_FOUND")
    port = m.serve(0)
    try:
        assert port > 0
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        assert 'landcoupler_refusals_total{code="NOT_FOUND"} 1.0' in text
        assert "python_gc_objects_collected_total" not in text  # not the global registry
        with pytest.raises(RuntimeError):
            m.serve(0)
    finally:
        m.stop()
