"""The forcing of a step is checked once on the service path: the session's validation runs the
registry's value check (``emulators.variables.check``) and hands the backend
``CheckedForcing``, which the backend's check phase skips; a direct backend user (plain
mapping) still gets the backend's own check."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from coupler.core.manager import SessionManager
from emulators import variables as V
from emulators.landstep import CheckedForcing
from emulators.landstep import forcing as landstep_forcing
from emulators.protocol import LandStatic, StepClock
from emulators.reference import ReferenceBackend

from .conftest import START, config, forcing

N = 6


def _count_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = V.check

    def counting(name: str, values: Any, units: str | None = None) -> None:
        calls.append(name)
        real(name, values, units)

    monkeypatch.setattr(V, "check", counting)
    monkeypatch.setattr(landstep_forcing, "check", counting)
    return calls


@pytest.mark.parametrize("backend", ["reference", "torchscript"])
def test_each_forcing_field_is_checked_once_per_session_step(
    manager: SessionManager, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    session = manager.open(config(N, backend=backend), owner="alice")
    calls = _count_checks(monkeypatch)
    for i in range(2):
        calls.clear()
        session.step(i, forcing(i, N))
        assert sorted(calls) == sorted(forcing(i, N))


def test_a_backend_checks_plain_forcing_and_not_checked_forcing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = ReferenceBackend()
    lat = torch.zeros(N, dtype=torch.float64)
    cover = torch.zeros(N, 8, dtype=torch.float64)
    cover[:, 2] = 1.0
    static = LandStatic.from_cover(lat, lat.clone(), cover)
    clock = StepClock(0, np.datetime64(START), 3600.0)
    state = backend.initial_state(static, clock)
    plain = {k: torch.from_numpy(v)[None] for k, v in forcing(0, N).items()}
    calls = _count_checks(monkeypatch)
    backend.step(state, static, plain, clock)
    assert sorted(calls) == sorted(plain)
    calls.clear()
    backend.step(state, static, CheckedForcing(plain), clock)
    assert calls == []
