"""Micro-batching over gRPC (``ServerConfig.batch_window_ms``): concurrent sessions on one real
server — unary and Exchange, sizes that join and sizes that do not, another timestep — get
replies bitwise equal to the same sessions stepped alone in-process; retries return the stored
reply; a bad field is refused in its own session only; checkpoints and a drain under load
resume bit-identically."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from coupler.client import CouplerClient, CouplerRpcError, InProcessClient
from coupler.core.manager import SessionManager
from coupler.metrics import ServiceMetrics
from coupler.wire.server import ServerConfig, Service, start_service
from tests.coupler.core.conftest import forcing, run_threads

START = "2001-06-01T00:00:00"
OUTPUTS = ["hfls", "hfss", "ts", "rns", "mrso"]
#: (cells, seed, open_session overrides)
SESSIONS: list[tuple[int, int, dict[str, Any]]] = [
    (64, 1, {}),
    (128, 2, {"land_cover": "cropland"}),
    (64, 3, {"start": "2001-06-01T07:00:00", "stream": True}),
    (192, 4, {"stream": True}),
    (50, 5, {}),  # not a multiple of 64 cells: stepped alone
    (64, 6, {"timestep": 1800}),  # another timestep: its own batches
]
STEPS = 5


def _kwargs(n: int, seed: int, over: dict[str, Any]) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    kw: dict[str, Any] = {
        "lat": rng.uniform(-50.0, 60.0, n), "lon": rng.uniform(-180.0, 180.0, n),
        "start": START, "timestep": 3600, "outputs": OUTPUTS, "land_cover": "grass",
    }  # fmt: skip
    kw.update(over)
    return kw


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    config = ServerConfig(max_workers=16, batch_window_ms=100.0)
    svc = start_service("127.0.0.1:0", config, metrics=ServiceMetrics())
    yield svc
    svc.server.stop(None)
    svc.manager.shutdown(checkpoint=False)


def _alone(steps: int = STEPS) -> list[list[dict[str, np.ndarray]]]:
    """The sessions stepped one after another in-process, without batching."""
    client = InProcessClient(SessionManager())
    runs = []
    for n, seed, over in SESSIONS:
        s = client.open_session(**_kwargs(n, seed, over))
        runs.append([s.step(k, forcing(k, n, seed)) for k in range(steps)])
    return runs


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _batches(svc: Service) -> tuple[float, float]:
    get = svc.metrics.registry.get_sample_value
    return (get("landcoupler_batch_sessions_count") or 0.0,
            get("landcoupler_batch_sessions_sum") or 0.0)  # fmt: skip


def test_concurrent_sessions_get_the_replies_they_get_alone(service: Service) -> None:
    want = _alone()
    count0, sum0 = _batches(service)
    barrier = threading.Barrier(len(SESSIONS))
    got: list[list[dict[str, np.ndarray]]] = [[] for _ in SESSIONS]
    with CouplerClient(f"127.0.0.1:{service.port}", client_name="batch", retries=0) as c:

        def drive(i: int) -> None:
            n, seed, over = SESSIONS[i]
            s = c.open_session(**_kwargs(n, seed, over))
            for k in range(STEPS):
                barrier.wait()
                reply = s.step(k, forcing(k, n, seed))
                got[i].append(reply)
                assert _same(s.step(k, forcing(k, n, seed)), reply)  # a resend: stored reply
            s.close()

        assert run_threads([lambda i=i: drive(i) for i in range(len(SESSIONS))]) == []
    for i in range(len(SESSIONS)):
        for k in range(STEPS):
            assert _same(got[i][k], want[i][k]), (i, k)
    count, total = _batches(service)
    # four batchable sessions (64/128/64/192 cells, hourly) met at every step; the 50-cell
    # and the half-hourly sessions never join them. How many joined is timing, not results.
    assert count > count0 and total - sum0 == 5 * STEPS
    assert (total - sum0) / (count - count0) > 1.0


def test_a_bad_field_is_refused_in_its_session_only(service: Service) -> None:
    want = _alone(2)
    barrier = threading.Barrier(4)
    refused: list[CouplerRpcError] = []
    with CouplerClient(f"127.0.0.1:{service.port}", client_name="batch", retries=0) as c:
        sessions = [c.open_session(**_kwargs(*SESSIONS[i])) for i in range(4)]
        for i, s in enumerate(sessions):
            s.step(0, forcing(0, SESSIONS[i][0], SESSIONS[i][1]))

        def drive(i: int) -> None:
            n, seed, _ = SESSIONS[i]
            f = forcing(1, n, seed)
            barrier.wait()
            if i == 1:
                f["rsds"][3] = -5.0
                with pytest.raises(CouplerRpcError) as err:
                    sessions[i].step(1, f)
                refused.append(err.value)
                f = forcing(1, n, seed)  # fixed and sent again: the same index
            assert _same(sessions[i].step(1, f), want[i][1])

        assert run_threads([lambda i=i: drive(i) for i in range(4)]) == []
    err = refused[0]
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (err.field, err.rule) == ("rsds", "valid_range")


def test_checkpoint_and_resume_of_batched_sessions(service: Service, tmp_path: Path) -> None:
    want = _alone()
    urls: list[str] = [""] * 4
    with CouplerClient(f"127.0.0.1:{service.port}", client_name="batch", retries=0) as c:

        def first(i: int) -> None:
            n, seed, over = SESSIONS[i]
            s = c.open_session(**_kwargs(n, seed, over))
            for k in range(3):
                s.step(k, forcing(k, n, seed))
            urls[i] = s.checkpoint(f"{tmp_path.as_uri()}/s{i}.ckpt")
            s.close()

        def resumed(i: int) -> None:
            n, seed, over = SESSIONS[i]
            s = c.open_session(resume_from=urls[i], stream=bool(over.get("stream")))
            assert s.next_index == 3
            for k in range(3, STEPS):
                assert _same(s.step(k, forcing(k, n, seed)), want[i][k]), (i, k)

        assert run_threads([lambda i=i: first(i) for i in range(4)]) == []
        assert run_threads([lambda i=i: resumed(i) for i in range(4)]) == []


def test_a_drain_with_batched_steps_in_flight_resumes_bit_identically(tmp_path: Path) -> None:
    steps = 30
    want = _alone(steps)
    config = ServerConfig(max_workers=16, batch_window_ms=20.0, grace_period=20.0)
    svc = start_service("127.0.0.1:0", config)
    ckpt = f"{tmp_path.as_uri()}/ckpt/"
    done = [0] * 4
    started = threading.Barrier(5)
    with CouplerClient(f"127.0.0.1:{svc.port}", client_name="batch", retries=0) as c:
        sessions = [
            c.open_session(**_kwargs(*SESSIONS[i][:2], {**SESSIONS[i][2], "checkpoint_url": ckpt}))
            for i in range(4)
        ]

        def drive(i: int) -> None:
            n, seed, _ = SESSIONS[i]
            started.wait()
            for k in range(steps):
                try:
                    reply = sessions[i].step(k, forcing(k, n, seed))
                except CouplerRpcError:
                    return  # refused while draining (UNAVAILABLE or CANCELLED): not applied
                assert _same(reply, want[i][k]), (i, k)
                done[i] = k + 1

        threads = [threading.Thread(target=drive, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        started.wait()
        while min(done) < 3:
            threading.Event().wait(0.01)
        urls = svc.stop()
        for t in threads:
            t.join()
    assert len(urls) == 4
    fresh = start_service("127.0.0.1:0", ServerConfig(batch_window_ms=20.0))
    try:
        with CouplerClient(f"127.0.0.1:{fresh.port}", client_name="batch", retries=0) as c:

            def finish(i: int) -> None:
                n, seed, _ = SESSIONS[i]
                url = next(u for u in urls if u.endswith(f"{sessions[i].id}.ckpt"))
                s = c.open_session(resume_from=url)
                assert s.next_index >= done[i]  # a step may have finished after its reply
                for k in range(s.next_index, steps):
                    assert _same(s.step(k, forcing(k, n, seed)), want[i][k]), (i, k)

            assert run_threads([lambda i=i: finish(i) for i in range(4)]) == []
    finally:
        fresh.stop(grace=1.0, checkpoint=False)
