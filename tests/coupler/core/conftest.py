"""Shared helpers of the core tests: grids, configs and physically valid forcing."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pytest

from coupler.core.manager import SessionManager
from coupler.core.session import Session
from coupler.metrics import ServiceMetrics
from coupler.spec import GridSpec, SessionSpec
from emulators.protocol import LandState

START = np.datetime64("2001-06-01T00:00:00", "s")
OUTPUTS = ("hfls", "hfss", "hfdsl", "rns", "ts", "albedo", "evspsbl", "mrro", "mrso", "lai")


def grid(n: int = 6, seed: int = 0) -> GridSpec:
    rng = np.random.default_rng(seed)
    return GridSpec(
        lat=rng.uniform(-55.0, 65.0, n),
        lon=rng.uniform(-180.0, 180.0, n),
        area=rng.uniform(1e8, 1e9, n),
        land_fraction=rng.uniform(0.2, 1.0, n),
    )


def config(n: int = 6, **overrides: Any) -> SessionSpec:
    kwargs: dict[str, Any] = {
        "grid": grid(n),
        "start": START,
        "timestep": 3600,
        "outputs": OUTPUTS,
        "land_cover": "grass",
    }
    kwargs.update(overrides)
    return SessionSpec(**kwargs)


def forcing(index: int, n: int = 6, seed: int = 0) -> dict[str, np.ndarray]:
    """Hour ``index`` of a physically valid summer diurnal cycle, different per cell: sun from
    06 to 18 local, warm afternoons, moist air below saturation, showers every 7th hour."""
    rng = np.random.default_rng(seed)
    phase = rng.uniform(-2.0, 2.0, n)
    amp = rng.uniform(500.0, 900.0, n)
    hour = (index % 24) + phase
    sun = np.clip(np.sin(np.pi * (hour - 6.0) / 12.0), 0.0, None)
    tas = 290.0 + 8.0 * np.sin(np.pi * (hour - 9.0) / 12.0) + rng.uniform(-3.0, 3.0, n)
    rain = (index % 7 == 3) * rng.uniform(0.0, 3e-4, n)
    return {
        "tas": tas,
        "huss": np.full(n, 0.008) + rng.uniform(0.0, 0.002, n),
        "ps": 100_000.0 + rng.uniform(-2000.0, 2000.0, n),
        "sfcWind": 1.0 + 4.0 * rng.uniform(0.0, 1.0, n) * (0.5 + sun),
        "pr": rain,
        "rsds": amp * sun,
        "rlds": 320.0 + 30.0 * rng.uniform(0.0, 1.0, n),
    }


def snapshot(session: Session) -> tuple[LandState, int, dict[str, np.ndarray] | None]:
    return session.state.clone(), session.next_index, session.last_reply


def assert_unchanged(
    session: Session, before: tuple[LandState, int, dict[str, np.ndarray] | None]
) -> None:
    state, index, reply = before
    assert session.state.equal(state)
    assert session.next_index == index
    after = session.last_reply
    assert (after is None) == (reply is None)
    if after is not None and reply is not None:
        assert after.keys() == reply.keys()
        for k in reply:
            assert np.array_equal(after[k], reply[k])


def assert_replies_identical(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype == np.float64
        assert a[k].tobytes() == b[k].tobytes(), k


@pytest.fixture
def manager() -> Iterator[SessionManager]:
    m = SessionManager(metrics=ServiceMetrics())  # Prometheus, as the server passes in
    yield m
    m.shutdown(checkpoint=False)


def run_threads(work: Sequence[Callable[[], None]]) -> list[BaseException]:
    """Run each callable in its own thread at once, join them all, and return what they raised
    (in no particular order; empty when every one returned)."""
    errors: list[BaseException] = []

    def run(fn: Callable[[], None]) -> None:
        try:
            fn()
        except BaseException as exc:  # reported to the caller
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(fn,)) for fn in work]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors
