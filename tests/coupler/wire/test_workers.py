"""A front with two worker processes (``landcoupler serve --workers 2``) against a single-process
server of the same configuration and the in-process client: sessions spread over both workers,
replies bitwise equal, retries, every refusal the same (code, field, rule, message) and changing
nothing, checkpoint and resume through the front, one Exchange stream over two workers,
Describe and merged metrics. Real processes on 127.0.0.1:0 and Unix sockets."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from coupler._proto.landcoupler.v1 import landcoupler_pb2 as pb
from coupler.client import CouplerClient, CouplerRpcError, InProcessClient
from coupler.core.config import Limits
from coupler.metrics import ServiceMetrics
from coupler.spec import SessionSpec
from coupler.wire import spec_proto
from coupler.wire.front import Front, start_front
from coupler.wire.server import ServerConfig, Service, start_service

from .conftest import forcing, grid, open_kwargs
from .test_server import MALFORMED, _exchange, _fields

Code = grpc.StatusCode
TOKENS = {"alice": "tok-alice-123", "bob": "tok-bob-456"}
MAX_SESSIONS = 6


def _config(**over: Any) -> ServerConfig:
    kw: dict[str, Any] = dict(max_workers=8, tokens=TOKENS, limits=Limits(MAX_SESSIONS),
                              metrics_port=0, grace_period=5.0)  # fmt: skip
    kw.update(over)
    return ServerConfig(**kw)


@pytest.fixture(scope="module")
def front() -> Iterator[Front]:
    running = start_front("127.0.0.1:0", _config(workers=2))
    try:
        yield running
        # every test closed its sessions: nothing is left counted on any worker
        assert running.router.sessions() == 0 and running.router.loads() == [0, 0]
    finally:
        running.stop(5.0)
        # no orphans: every worker process has ended and been reaped
        assert all(w.proc.returncode is not None for w in running.pool.workers)


@pytest.fixture(scope="module")
def single() -> Iterator[Service]:
    service = start_service("127.0.0.1:0", _config(), metrics=ServiceMetrics())
    yield service
    service.server.stop(None)
    service.manager.shutdown(checkpoint=False)


def _client(port: int, who: str = "alice") -> CouplerClient:
    return CouplerClient(f"127.0.0.1:{port}", token=TOKENS[who], retries=0)


@pytest.fixture()
def clients(front: Front, single: Service) -> Iterator[tuple[CouplerClient, CouplerClient]]:
    with _client(front.port) as a, _client(single.port) as b:
        yield a, b


def _bytes(reply: dict[str, np.ndarray]) -> dict[str, bytes]:
    return {name: values.tobytes() for name, values in reply.items()}


def test_sessions_spread_over_both_workers_bitwise_as_one_process_and_in_process(
    front: Front, clients: tuple[CouplerClient, CouplerClient]
) -> None:
    multi, one = clients
    sizes = (5, 6, 7, 9)
    opened = []
    with InProcessClient() as local:
        for k, n in enumerate(sizes):
            kw = open_kwargs(**grid(n))
            stream = k % 2 == 0
            opened.append(
                (n, multi.open_session(**kw, stream=stream), one.open_session(**kw, stream=stream),
                 local.open_session(**kw))
            )  # fmt: skip
        assert {front.router.worker_of(s.id).index for _, s, _, _ in opened} == {0, 1}  # type: ignore[union-attr]
        for i in range(6):
            for n, s_multi, s_one, s_local in opened:
                f = forcing(i, n)
                want = _bytes(s_local.step(i, f))
                assert _bytes(s_multi.step(i, f)) == want == _bytes(s_one.step(i, f))
                assert _bytes(s_multi.step(i, f)) == want  # a retry: the stored reply
        for _, *sessions in opened:
            for s in sessions:
                s.close()


def _refusal(call: Callable[[], Any]) -> tuple[Code, str | None, str | None, str]:
    with pytest.raises(CouplerRpcError) as info:
        call()
    err = info.value
    assert err.request_id
    return err.code(), err.field, err.rule, err.details()


def _malformed(client: CouplerClient, stream: bool, reference: list[dict[str, bytes]]) -> list:
    """Every malformed step of test_server's table, refused; the session unchanged after each."""
    refusals = []
    with client.open_session(**open_kwargs()) as s:
        assert _bytes(s.step(0, forcing(0))) == reference[0]
        for k, case in enumerate(sorted(MALFORMED)):
            corrupt = MALFORMED[case][0]
            step = pb.StepRequest(session_id=s.id, index=k + 1, fields=corrupt(_fields(k + 1)))
            if stream:
                head = pb.StepRequest(session_id=s.id, index=k + 1,
                                      trailing_fields=len(step.fields))  # fmt: skip
                frames = [pb.ExchangeRequest(step=head)]
                frames += [pb.ExchangeRequest(field=f) for f in step.fields]
                refusals.append(_refusal(lambda: _exchange(client, frames)))  # noqa: B023
            else:
                refusals.append(_refusal(lambda: client.call(client.stub.Step, step)))  # noqa: B023
            # nothing changed: the retry of the last step, then the step itself
            assert _bytes(s.step(k, forcing(k))) == reference[k]
            assert _bytes(s.step(k + 1, forcing(k + 1))) == reference[k + 1]
    return refusals


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
def test_malformed_steps_are_refused_as_by_one_process_and_change_nothing(
    clients: tuple[CouplerClient, CouplerClient], stream: bool
) -> None:
    with InProcessClient() as local, local.open_session(**open_kwargs()) as s_local:
        reference = [_bytes(s_local.step(i, forcing(i))) for i in range(len(MALFORMED) + 1)]
    multi, one = (_malformed(client, stream, reference) for client in clients)
    assert multi == one
    assert {r[0] for r in multi} == {Code.INVALID_ARGUMENT}


def _anonymous(refusal: Any, session_id: str) -> Any:
    if not isinstance(refusal, tuple):
        return refusal
    return (*refusal[:3], refusal[3].replace(session_id, "<session>"))


def _others(client: CouplerClient, port: int) -> list:
    out: list[Any] = []
    with _client(port, "bob") as bob, client.open_session(**open_kwargs()) as s:
        s.step(0, forcing(0))
        nobody = pb.StepRequest(session_id="no-such-session", index=0)
        bad_open = spec_proto.to_request(SessionSpec.of(**open_kwargs()))
        bad_open.timestep = 7
        calls = [
            lambda: s.step(3, forcing(3)),  # step_order
            lambda: client.call(client.stub.Step, nobody),
            lambda: bob.call(bob.stub.Checkpoint, pb.CheckpointRequest(session_id=s.id)),
            lambda: bob.call(bob.stub.CloseSession, pb.CloseSessionRequest(session_id=s.id)),
            lambda: client.call(client.stub.OpenSession, bad_open),
            lambda: s.assimilate("lai", [1.0], [0.1], [40.0], [-100.0], ["2001-06-01T00:00:00Z"]),
        ]
        out += [_refusal(call) for call in calls]
        with CouplerClient(f"127.0.0.1:{port}", token="wrong", retries=0) as stranger:
            out.append(_refusal(stranger.describe))
        # the session limit over the whole server (both workers)
        extra = []
        try:
            while True:
                extra.append(client.open_session(**open_kwargs()))
        except CouplerRpcError as exc:
            out.append((exc.code(), exc.field, exc.rule, exc.details()))
        out.append(len(extra))
        for e in extra:
            e.close()
        assert s.step(1, forcing(1)).keys() == set(open_kwargs()["outputs"])
        return [_anonymous(r, s.id) for r in out]


def test_other_refusals_are_the_single_servers(
    clients: tuple[CouplerClient, CouplerClient], front: Front, single: Service
) -> None:
    multi, one = (
        _others(client, port)
        for client, port in zip(clients, (front.port, single.port), strict=True)
    )
    assert multi == one
    assert [r[0] for r in multi[:-1]] == [
        Code.FAILED_PRECONDITION, Code.NOT_FOUND, Code.PERMISSION_DENIED, Code.PERMISSION_DENIED,
        Code.INVALID_ARGUMENT, Code.FAILED_PRECONDITION, Code.UNAUTHENTICATED,
        Code.RESOURCE_EXHAUSTED,
    ]  # fmt: skip
    assert multi[-1] == MAX_SESSIONS - 1


def _framing(client: CouplerClient) -> list:
    with client.open_session(**open_kwargs()) as s:
        fields = _fields(0)
        streams = [
            [pb.ExchangeRequest(field=fields[0])],
            [pb.ExchangeRequest()],
            [pb.ExchangeRequest(step=pb.StepRequest(session_id=s.id, index=0,
                                                    trailing_fields=len(fields) + 1)),
             *[pb.ExchangeRequest(field=f) for f in fields]],
            [pb.ExchangeRequest(step=pb.StepRequest(session_id=s.id, trailing_fields=10**6))],
            [pb.ExchangeRequest(step=pb.StepRequest(session_id="nope", index=0))],
        ]  # fmt: skip
        return [
            _anonymous(_refusal(lambda: _exchange(client, frames)), s.id)  # noqa: B023
            for frames in streams
        ]


def test_stream_framing_refusals_are_the_single_servers(
    clients: tuple[CouplerClient, CouplerClient],
) -> None:
    multi, one = (_framing(client) for client in clients)
    assert multi == one


def test_one_stream_over_sessions_on_both_workers(front: Front, clients: Any) -> None:
    multi, one = clients
    replies = []
    for client in (multi, one):
        a, b = client.open_session(**open_kwargs()), client.open_session(**open_kwargs())
        if client is multi:
            assert front.router.worker_of(a.id) is not front.router.worker_of(b.id)
        frames = []
        for i in range(3):
            for s in (a, b):
                frames.append(pb.ExchangeRequest(
                    step=pb.StepRequest(session_id=s.id, index=i, fields=_fields(i))))  # fmt: skip
        got = _exchange(client, frames)
        assert [(r.step.session_id, r.step.index) for r in got] == [
            (s.id, i) for i in range(3) for s in (a, b)
        ]
        replies.append([[f.SerializeToString() for f in r.step.fields] for r in got])
        a.close()
        b.close()
    assert replies[0] == replies[1]


def test_checkpoint_and_resume_through_the_front(
    front: Front, clients: tuple[CouplerClient, CouplerClient], tmp_path: Path
) -> None:
    multi, _ = clients
    kw = open_kwargs(checkpoint_url=str(tmp_path))
    with InProcessClient() as local, local.open_session(**kw) as s_local:
        reference = [_bytes(s_local.step(i, forcing(i))) for i in range(8)]
    s = multi.open_session(**kw, stream=True)
    for i in range(4):
        assert _bytes(s.step(i, forcing(i))) == reference[i]
    url = s.checkpoint()
    # resumed while the original is open (on whichever worker): a fresh id, as on one server
    twin = multi.open_session(resume_from=url)
    assert twin.id != s.id and twin.next_index == 4
    for i in range(4, 8):
        assert _bytes(twin.step(i, forcing(i))) == reference[i]
        assert _bytes(s.step(i, forcing(i))) == reference[i]
    s.close()
    twin.close()
    resumed = multi.open_session(resume_from=url)
    assert resumed.id == s.id and resumed.next_index == 4
    for i in range(4, 8):
        assert _bytes(resumed.step(i, forcing(i))) == reference[i]
    resumed.close()


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        lines = r.read().decode().splitlines()
    out = {}
    for line in lines:
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_describe_and_metrics_are_the_whole_servers(front: Front, clients: Any) -> None:
    multi, _ = clients
    sessions = [multi.open_session(**open_kwargs()) for _ in range(3)]
    for s in sessions:
        s.step(0, forcing(0))
    with pytest.raises(CouplerRpcError):
        sessions[0].step(5, forcing(5))
    assert multi.describe()["details"]["open_sessions"] == 3
    assert front.metrics_port is not None
    merged = _scrape(front.metrics_port)
    workers = [_scrape(w.metrics_port) for w in front.pool.workers if w.metrics_port]
    assert len(workers) == 2
    for name in ("landcoupler_steps_total", "landcoupler_cells_total",
                 'landcoupler_step_phase_seconds_count{phase="land"}'):  # fmt: skip
        assert merged[name] == sum(w[name] for w in workers) > 0
    assert merged["landcoupler_open_sessions"] == 3
    assert merged['landcoupler_refusals_total{code="FAILED_PRECONDITION"}'] >= 1
    for s in sessions:
        s.close()
