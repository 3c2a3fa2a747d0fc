"""The forcing's measurement heights in the session contract (``height_wind``,
``height_temperature``): the reference and hybrid backends run at a session's heights, the
network emulators refuse heights they do not serve (field and rule, nothing left open), and the
heights survive checkpoints, records and replay."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from coupler.core import registry
from coupler.core.manager import SessionManager
from coupler.errors import InvalidArgument
from coupler.replay import replay
from coupler.spec import SessionSpec
from emulators.reference import ReferenceBackend
from emulators.reference.model import ReferenceConfig

from ..replay.conftest import forcing, memory_url, spec

N = 6
STEPS = 12


def run(manager: SessionManager, config: SessionSpec, steps: int = STEPS) -> np.ndarray:
    """(step, output, cell) replies of ``steps`` steps of a new session of ``config``."""
    session = manager.open(config, "alice")
    try:
        replies = [session.step(i, forcing(i, N)) for i in range(steps)]
    finally:
        manager.close(session.id, "alice")
    return np.stack([np.stack([r[name] for name in config.outputs]) for r in replies])


@pytest.fixture()
def manager() -> Iterator[SessionManager]:
    m = SessionManager()
    yield m
    m.shutdown(checkpoint=False)


def test_reference_session_at_heights_is_the_model_at_those_heights(
    manager: SessionManager,
) -> None:
    """Equivalence of two paths: a ``reference`` session at 2 m / 2 m replies bit for bit what a
    backend configured at 2 m / 2 m replies in a session at the default heights; the defaults
    named explicitly change nothing; other heights change the fluxes."""
    at_10_2 = run(manager, spec(N))
    assert np.array_equal(run(manager, spec(N, height_wind=10.0, height_temperature=2.0)), at_10_2)
    at_2_2 = run(manager, spec(N, height_wind=2.0, height_temperature=2.0))
    name = "ref_at_2m_for_test"
    registry.register(
        name, lambda: ReferenceBackend(ReferenceConfig(height_wind=2.0, height_temperature=2.0))
    )
    try:
        configured = run(manager, spec(N, backend=name))
    finally:
        registry._FACTORIES.pop(name)
    assert np.array_equal(at_2_2, configured)
    hfss = spec(N).outputs.index("hfss")
    assert np.abs(at_2_2[:, hfss] - at_10_2[:, hfss]).max() > 1.0  # W m-2
    # a higher wind measurement: the same wind speed means less turbulence near the ground
    at_30 = run(manager, spec(N, height_wind=30.0, height_temperature=30.0))
    day = np.abs(at_10_2[:, hfss]).sum()
    assert np.abs(at_30[:, hfss]).sum() < day < np.abs(at_2_2[:, hfss]).sum()


def test_hybrid_runs_at_the_session_heights(manager: SessionManager) -> None:
    base = run(manager, spec(N, backend="hybrid"), steps=4)
    other = run(manager, spec(N, backend="hybrid", height_wind=3.0), steps=4)
    assert np.isfinite(other).all() and not np.array_equal(base, other)


@pytest.mark.parametrize(
    ("backend", "heights", "field", "why"),
    [
        ("torchscript", {"height_wind": 100.0}, "height_wind", "trained at wind heights 2-60 m"),
        ("fused", {"height_temperature": 1.0}, "height_temperature", "temperature heights 1.5-60"),
        ("transformer", {"height_wind": 2.0}, "height_wind", "have no height input"),
        ("transformer", {"height_temperature": 1.5}, "height_temperature", "have no height input"),
    ],
)
def test_network_emulators_refuse_heights_they_were_not_trained_at(
    manager: SessionManager, backend: str, heights: dict[str, float], field: str, why: str
) -> None:
    """The hourly ``flux-lstm`` takes the heights as inputs and serves the ranges it was trained
    at; the transformer's network has none and serves 10 m / 2 m only."""
    with pytest.raises(InvalidArgument) as err:
        manager.open(spec(N, backend=backend, **heights), "alice")
    assert (err.value.field, err.value.rule) == (field, "backend_heights")
    assert why in str(err.value)
    assert manager.open_sessions == 0
    # the defaults, named, are accepted
    session = manager.open(spec(N, backend=backend, height_wind=10, height_temperature=2), "bob")
    assert np.isfinite(session.step(0, forcing(0, N))["hfss"]).all()


@pytest.mark.parametrize("backend", ["torchscript", "fused"])
def test_the_hourly_network_serves_the_heights_it_was_trained_at(
    manager: SessionManager, backend: str
) -> None:
    base = run(manager, spec(N, backend=backend), steps=6)
    at_30 = run(manager, spec(N, backend=backend, height_wind=30.0, height_temperature=30.0), 6)
    assert np.isfinite(at_30).all() and not np.array_equal(base, at_30)
    # a daily session at other heights: flux-lstm-daily has no height input
    with pytest.raises(InvalidArgument) as err:
        manager.open(spec(N, backend=backend, timestep=86_400, height_wind=30.0), "alice")
    assert (err.value.field, err.value.rule) == ("height_wind", "backend_heights")
    assert "flux-lstm-daily) have no height input" in str(err.value)
    assert manager.open_sessions == 0


def test_a_backend_that_knows_no_heights_serves_only_the_defaults(
    manager: SessionManager,
) -> None:
    class NoHeights:
        name = "noheights"

        def __init__(self) -> None:
            self._inner = ReferenceBackend()

        def initial_state(self, static: Any, clock: Any) -> Any:
            return self._inner.initial_state(static, clock)

        def step(self, *args: Any) -> Any:
            return self._inner.step(*args)

    registry.register("noheights_for_test", NoHeights)
    try:
        with pytest.raises(InvalidArgument) as err:
            manager.open(spec(N, backend="noheights_for_test", height_wind=20.0), "alice")
        assert (err.value.field, err.value.rule) == ("height_wind", "backend_heights")
        assert run(manager, spec(N, backend="noheights_for_test"), steps=2).shape[0] == 2
    finally:
        registry._FACTORIES.pop("noheights_for_test")


def test_checkpoint_resume_keeps_the_heights(manager: SessionManager) -> None:
    url = memory_url("heights-ckpt")
    config = spec(N, height_wind=25.0, height_temperature=15.0, checkpoint_url=url)
    whole = run(manager, config)
    session = manager.open(config, "alice")
    for i in range(STEPS // 2):
        session.step(i, forcing(i, N))
    written = session.checkpoint()
    manager.close(session.id, "alice")
    resumed = manager.resume(written, "alice")
    assert (resumed.config.height_wind, resumed.config.height_temperature) == (25.0, 15.0)
    rest = [resumed.step(i, forcing(i, N)) for i in range(STEPS // 2, STEPS)]
    got = np.stack([np.stack([r[n] for n in config.outputs]) for r in rest])
    assert np.array_equal(got, whole[STEPS // 2 :])


def test_a_record_replays_at_its_heights(manager: SessionManager) -> None:
    url = memory_url("heights-record")
    run(manager, spec(N, height_wind=40.0, height_temperature=40.0, record_url=url))
    result = replay(url)
    assert result.bitwise_equal and result.mode == "bitwise"
