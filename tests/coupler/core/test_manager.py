"""The session manager: ownership, limits, describe, shutdown, and concurrent sessions."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from coupler.core import registry
from coupler.core.config import Limits
from coupler.core.manager import SessionManager
from coupler.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
)
from coupler.spec import GridSpec

from .conftest import assert_replies_identical, config, forcing

N = 4


def test_get_checks_owner_and_existence(manager: SessionManager) -> None:
    session = manager.open(config(N), owner="alice")
    assert manager.get(session.id, "alice") is session
    with pytest.raises(PermissionDenied) as denied:
        manager.get(session.id, "mallory")
    assert (denied.value.field, denied.value.rule) == ("session_id", "owner")
    with pytest.raises(PermissionDenied):
        manager.close(session.id, "mallory")
    assert manager.get(session.id, "alice").next_index == 0  # still open, untouched
    with pytest.raises(NotFound) as missing:
        manager.get("no-such-session", "alice")
    assert (missing.value.field, missing.value.rule) == ("session_id", "exists")
    manager.close(session.id, "alice")
    with pytest.raises(NotFound):
        manager.get(session.id, "alice")


def test_owner_must_be_given(manager: SessionManager) -> None:
    with pytest.raises(InvalidArgument) as err:
        manager.open(config(N), owner="")
    assert err.value.field == "owner"


def test_unknown_backend_is_refused_when_the_session_opens(manager: SessionManager) -> None:
    """The spec cannot know a server's backends; the manager names the field and the rule."""
    with pytest.raises(InvalidArgument) as err:
        manager.open(config(N, backend="magic"), owner="alice")
    assert (err.value.field, err.value.rule) == ("backend", "known_backend")
    assert "unknown backend 'magic'; known: " in str(err.value)
    assert manager.open_sessions == 0


def test_max_sessions() -> None:
    manager = SessionManager(Limits(max_sessions=2))
    a = manager.open(config(N), "alice")
    manager.open(config(N), "bob")
    with pytest.raises(ResourceExhausted) as err:
        manager.open(config(N), "carol")
    assert err.value.rule == "max_sessions"
    assert manager.open_sessions == 2
    manager.close(a.id, "alice")
    manager.open(config(N), "carol")  # a slot was freed
    manager.shutdown(checkpoint=False)


def test_max_cells_and_members() -> None:
    manager = SessionManager(Limits(max_cells_per_session=5, max_members=3))
    with pytest.raises(ResourceExhausted) as cells:
        manager.open(config(6), "alice")
    assert (cells.value.field, cells.value.rule) == ("lat", "max_cells_per_session")
    with pytest.raises(ResourceExhausted) as members:
        manager.open(config(N, members=4), "alice")
    assert (members.value.field, members.value.rule) == ("members", "max_members")
    assert manager.open_sessions == 0
    manager.open(config(5, members=3), "alice")
    assert manager.open_sessions == 1


def test_concurrent_opens_respect_max_sessions() -> None:
    manager = SessionManager(Limits(max_sessions=3))
    results: list[str] = []
    lock = threading.Lock()

    def open_one() -> None:
        try:
            manager.open(config(N), "alice")
            outcome = "ok"
        except ResourceExhausted:
            outcome = "refused"
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=open_one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok"] * 3 + ["refused"] * 5
    assert manager.open_sessions == 3


def test_concurrent_sessions_step_independently(manager: SessionManager) -> None:
    """Sessions stepped from parallel threads give the same replies as a sequential run."""
    grids = [GridSpec(lat=np.full(N, 10.0 * k), lon=np.linspace(0, 30, N)) for k in range(4)]
    serial = [manager.open(config(N, grid=g), "alice") for g in grids]
    expected = [[s.step(i, forcing(i, N)) for i in range(6)] for s in serial]
    parallel = [manager.open(config(N, grid=g), "alice") for g in grids]
    got: dict[int, list[dict[str, np.ndarray]]] = {}

    def run(k: int) -> None:
        got[k] = [parallel[k].step(i, forcing(i, N)) for i in range(6)]

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(4):
        for a, b in zip(got[k], expected[k], strict=True):
            assert_replies_identical(a, b)


def test_describe_lists_backends_variables_limits(manager: SessionManager) -> None:
    manager.open(config(N), "alice")
    d = manager.describe()
    assert d["backends"]["reference"] == "available"
    names = {v["name"]: v for v in d["variables"]}
    assert names["tas"]["units"] == "K" and names["tas"]["required"] is True
    assert names["hfls"]["direction"] == "to_atmosphere"
    assert d["limits"] == {
        "max_sessions": 64,
        "max_cells_per_session": 1_048_576,
        "max_members": 128,
    }
    assert d["open_sessions"] == 1
    assert "torch" in d["versions"] and d["code_version"].startswith("landcoupler")


def test_backend_registry() -> None:
    assert "reference" in registry.names()
    with pytest.raises(InvalidArgument) as err:
        registry.create("nope")
    assert (err.value.field, err.value.rule) == ("backend", "known_backend")
    ident = registry.identity(registry.create("reference"))
    assert ident["name"] == "reference"
    assert ident["class"] == "emulators.reference.model.ReferenceBackend"


def test_unavailable_backend_is_failed_precondition() -> None:
    def broken() -> registry.LandBackend:
        raise ImportError("compiled artifact missing")

    registry.register("broken_for_test", broken)
    try:
        with pytest.raises(FailedPrecondition) as err:
            registry.create("broken_for_test")
        assert (err.value.field, err.value.rule) == ("backend", "available")
        assert "compiled artifact missing" in registry.available()["broken_for_test"]
    finally:
        registry._FACTORIES.pop("broken_for_test")


def test_shutdown_refuses_new_sessions_and_closes(manager: SessionManager) -> None:
    session = manager.open(config(N), "alice")
    session.step(0, forcing(0, N))
    assert manager.shutdown(checkpoint=True) == []  # no checkpoint_url configured
    assert session.closed and manager.open_sessions == 0
    with pytest.raises(FailedPrecondition) as err:
        manager.open(config(N), "alice")
    assert err.value.rule == "shutting_down"
