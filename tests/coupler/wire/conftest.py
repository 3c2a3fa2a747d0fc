"""Fixtures of the wire tests: a real server on 127.0.0.1:0, clients, a small grid and forcing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from coupler.client import CouplerClient
from coupler.metrics import ServiceMetrics
from coupler.wire.server import ServerConfig, Service, start_service

N_CELLS = 6
OUTPUTS = ("hfls", "hfss", "hfdsl", "rns", "ts", "rsus", "rlus")
START = "2001-06-01T00:00:00"


def grid(n: int = N_CELLS) -> dict[str, np.ndarray]:
    """A few land cells across North America (degrees)."""
    return {"lat": np.linspace(30.0, 55.0, n), "lon": np.linspace(-120.0, -70.0, n)}


def forcing(
    index: int, n: int = N_CELLS, dt: float = 3600.0, wet_above: float = 0.8
) -> dict[str, np.ndarray]:
    """Smooth, physically valid hourly forcing for step ``index`` (a clear June day; a shower
    every few steps on the cells past ``wet_above`` of the ramp)."""
    hour = (index * dt / 3600.0) % 24.0
    day = max(0.0, np.cos((hour - 12.0) / 12.0 * np.pi))
    ramp = np.linspace(0.0, 1.0, n)
    return {
        "tas": 288.0 + 6.0 * day + 2.0 * ramp,
        "huss": 0.006 + 0.002 * ramp,
        "ps": np.full(n, 98_000.0) + 1_000.0 * ramp,
        "sfcWind": 2.0 + ramp,
        "pr": np.where(ramp > wet_above, 2e-5 * (index % 3), 0.0),
        "rsds": 850.0 * day * (0.8 + 0.2 * ramp),
        "rlds": 320.0 + 20.0 * ramp,
    }


def open_kwargs(**over: Any) -> dict[str, Any]:
    kw: dict[str, Any] = dict(grid(), start=START, timestep=3600, outputs=list(OUTPUTS))
    kw.update(over)
    return kw


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    svc = start_service("127.0.0.1:0", ServerConfig(max_workers=8), metrics=ServiceMetrics())
    yield svc
    svc.server.stop(None)
    svc.manager.shutdown(checkpoint=False)


@pytest.fixture()
def client(service: Service) -> Iterator[CouplerClient]:
    with CouplerClient(f"127.0.0.1:{service.port}", client_name="tester", retries=0) as c:
        yield c
