"""Helpers of the replay tests: small records written by real sessions (in-process or over a
real gRPC server on 127.0.0.1:0) to real Zarr stores (local or memory://)."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np

from coupler.core.manager import SessionManager
from coupler.spec import GridSpec, RecordOptions, SessionSpec

START = np.datetime64("2001-06-01T00:00:00", "s")
OUTPUTS = ("hfls", "hfss", "hfdsl", "rns", "ts", "albedo", "evspsbl", "mrso", "lai")
#: small chunks so that a few dozen steps span several chunks and shards
SMALL = RecordOptions(chunk_bytes=1024, shard_chunks=2)


def memory_url(tag: str) -> str:
    return f"memory://{tag}-{uuid.uuid4().hex}.zarr"


def grid(n: int, seed: int = 0) -> GridSpec:
    rng = np.random.default_rng(seed)
    return GridSpec(
        lat=rng.uniform(-50.0, 60.0, n), lon=rng.uniform(-180.0, 180.0, n),
        area=rng.uniform(1e8, 1e9, n), land_fraction=rng.uniform(0.3, 1.0, n),
    )  # fmt: skip


def spec(n: int = 6, **overrides: Any) -> SessionSpec:
    kwargs: dict[str, Any] = {
        "grid": grid(n), "start": START, "timestep": 3600, "outputs": OUTPUTS,
        "land_cover": "grass", "record_options": SMALL,
    }  # fmt: skip
    kwargs.update(overrides)
    return SessionSpec(**kwargs)


def forcing(index: int, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Hour ``index`` of a physically valid summer diurnal cycle, different per cell."""
    rng = np.random.default_rng(seed)
    phase, amp = rng.uniform(-2.0, 2.0, n), rng.uniform(500.0, 900.0, n)
    hour = (index % 24) + phase
    sun = np.clip(np.sin(np.pi * (hour - 6.0) / 12.0), 0.0, None)
    noise = np.random.default_rng([seed, index]).uniform(-1.0, 1.0, n)
    return {
        "tas": 290.0 + 8.0 * np.sin(np.pi * (hour - 9.0) / 12.0) + 2.0 * noise,
        "huss": 0.008 + 0.002 * rng.uniform(0.0, 1.0, n),
        "ps": 100_000.0 + rng.uniform(-2000.0, 2000.0, n),
        "sfcWind": 1.0 + 4.0 * rng.uniform(0.0, 1.0, n) * (0.5 + sun),
        "pr": (index % 7 == 3) * rng.uniform(0.0, 3e-4, n),
        "rsds": amp * sun,
        "rlds": 320.0 + 30.0 * rng.uniform(0.0, 1.0, n) + 5.0 * noise,
    }


def record(
    url: str,
    steps: int,
    n: int = 6,
    close: bool = True,
    wire: Any = np.float64,
    **overrides: Any,
) -> list[dict[str, np.ndarray]]:
    """Record ``steps`` steps of an in-process session at ``url``, the forcing sent as
    ``wire`` (dtype); returns the replies."""
    manager = SessionManager()
    session = manager.open(spec(n, record_url=url, **overrides), "alice")
    sent = ({k: v.astype(wire) for k, v in forcing(i, n).items()} for i in range(steps))
    replies = [session.step(i, f) for i, f in enumerate(sent)]
    if close:
        manager.close(session.id, "alice")
    return replies
