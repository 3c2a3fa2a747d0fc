"""Shared checks of the serving tests: run two backends side by side, compare to a tolerance."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from emulators.export import relative_error
from emulators.protocol import LandBackend, LandStatic, StepClock
from emulators.variables import LAND_OUTPUTS
from tests.contracts.backend_contract import (
    contract_daily_forcing,
    contract_forcing,
    contract_static,
)


def run(
    backend: LandBackend, static: LandStatic, steps: int, dt: float, start: str
) -> list[dict[str, torch.Tensor]]:
    clock = StepClock(0, np.datetime64(start), dt)
    state = backend.initial_state(static, clock)
    outs = []
    for _ in range(steps):
        make = contract_daily_forcing if dt >= 86_400 else contract_forcing
        state, out = backend.step(state, static, make(static, clock, 2), clock)
        outs.append(out)
        clock = clock.advance()
    return outs


def worst_difference(
    a: list[dict[str, torch.Tensor]], b: list[dict[str, torch.Tensor]]
) -> tuple[float, str]:
    """The largest relative error (``emulators.export.relative_error``: max |a − b| / max |b|
    per field) over every step and land output, and the field where it is."""
    worst, where = 0.0, ""
    for x, y in zip(a, b, strict=True):
        for name in LAND_OUTPUTS:
            e = relative_error(x[name].reshape(-1, 1).cpu(), y[name].reshape(-1, 1).cpu())
            if e > worst:
                worst, where = e, name
    return worst, where


#: (dt, start, steps) of the backend-agreement checks: hourly and daily
AGREEMENT_CASES = [(3600.0, "2001-06-30T18:00:00", 30), (86_400.0, "2001-06-27T00:00:00", 12)]


def agreement(
    a: LandBackend, b: LandBackend, dt: float, start: str, steps: int
) -> tuple[float, str]:
    """:func:`worst_difference` of ``a`` against ``b`` over ``steps`` steps of the contract's
    24 cells × 2 members from ``start``."""
    static = contract_static(24, 2, seed=4)
    return worst_difference(run(a, static, steps, dt, start), run(b, static, steps, dt, start))


def session_forcing(i: int, n: int) -> dict[str, np.ndarray]:
    """Step ``i``'s forcing of ``n`` cells: a diurnal cycle, ramps across cells, rain on some."""
    day = max(0.0, float(np.cos((i % 24 - 12.0) / 12.0 * np.pi)))
    ramp = np.linspace(0.0, 1.0, n)
    return {
        "tas": 290.0 + 5.0 * day + ramp, "huss": 0.007 + 0.001 * ramp,
        "ps": np.full(n, 99_000.0), "sfcWind": 2.0 + ramp, "pr": np.where(ramp > 0.7, 3e-5, 0.0),
        "rsds": 800.0 * day * (0.7 + 0.3 * ramp), "rlds": 330.0 + 10.0 * ramp,
    }  # fmt: skip


def grpc_replies(
    names: tuple[str, ...], client_name: str, steps: int = 12
) -> tuple[dict[str, Any], dict[str, list[dict[str, np.ndarray]]]]:
    """(Describe's answer, each backend's replies) of a real server on 127.0.0.1 port 0: one
    hourly session of 8 grass cells per backend of ``names``, ``steps`` steps of
    :func:`session_forcing`."""
    from coupler.client import CouplerClient
    from coupler.wire.server import ServerConfig, start_service

    svc = start_service("127.0.0.1:0", ServerConfig(max_workers=4))
    try:
        lat, lon = np.linspace(-30.0, 60.0, 8), np.linspace(-120.0, 100.0, 8)
        replies: dict[str, list[dict[str, np.ndarray]]] = {}
        with CouplerClient(f"127.0.0.1:{svc.port}", client_name=client_name, retries=0) as client:
            described = client.describe()
            for backend in names:
                session = client.open_session(
                    lat=lat, lon=lon, start="2001-06-01T00:00:00", timestep=3600,
                    outputs=["hfls", "hfss", "ts", "gpp"], backend=backend, land_cover="grass",
                )  # fmt: skip
                replies[backend] = [session.step(i, session_forcing(i, 8)) for i in range(steps)]
                session.close()
    finally:
        svc.stop(grace=1.0, checkpoint=False)
    return described, replies


def assert_replies_agree(
    a: list[dict[str, np.ndarray]], b: list[dict[str, np.ndarray]], tol: float
) -> None:
    """Every reply field of ``a`` within ``tol`` of ``b``'s, relative to ``b``'s largest value."""
    for x, y in zip(a, b, strict=True):
        for name in ("hfls", "hfss", "ts", "gpp"):
            scale = max(float(np.abs(y[name]).max()), 1e-30)
            assert float(np.abs(x[name] - y[name]).max()) / scale <= tol, name
