"""The co-located fast path: steps whose arrays move through a shared-memory segment while gRPC
carries only control messages (``open_session(shared_memory=True)``, coupler/wire/shared.py).

Real servers on 127.0.0.1:0 and on a Unix socket; the replies are bitwise those of the network
path and of the in-process client, every refusal of the network path is refused alike, every
refusal of the segment itself names its field and rule and changes nothing (the session steps on
exactly as a session that was never refused, the segment's reply region untouched), and nothing
is left in /dev/shm."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from coupler._proto.landcoupler.v1 import landcoupler_pb2 as pb
from coupler.client import CouplerClient, CouplerRpcError, InProcessClient
from coupler.client.exchange import Exchange
from coupler.client.shared import SharedChannel
from coupler.replay import RecordSource, replay
from coupler.wire.server import ServerConfig, Service, start_service
from coupler.wire.shm import SHM_DIR
from emulators import variables as V

from .conftest import N_CELLS, OUTPUTS, forcing, open_kwargs
from .test_transport import BAD_STEPS, _fields

N = N_CELLS


def _segments() -> set[str]:
    """The segments this process created (their names carry its pid; other processes on the
    machine may have their own)."""
    mine = f"landcoupler-{os.getpid()}-"
    return {p.name for p in SHM_DIR.iterdir() if p.name.startswith(mine)}


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Every test leaves /dev/shm as it found it."""
    before = _segments()
    yield
    assert _segments() == before


def _f32(index: int) -> dict[str, np.ndarray]:
    return {k: v.astype(np.float32) for k, v in forcing(index).items()}


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(a[k].tobytes() == b[k].tobytes() for k in a)


def _refused(fn: Any) -> CouplerRpcError:
    with pytest.raises(CouplerRpcError) as info:
        fn()
    return info.value


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_replies_are_bitwise_those_of_the_network_path_and_in_process(
    service: Service, client: CouplerClient, dtype: type
) -> None:
    kw = open_kwargs(members=3, output_spread=True)
    with InProcessClient(service.manager, owner="local") as local:
        shm = client.open_session(**kw, shared_memory=True)
        wire = client.open_session(**kw)
        mem = local.open_session(**kw)
        assert len(_segments()) == 0  # made at the first step
        for k in range(6):
            sent = {n: v.astype(dtype) for n, v in forcing(k).items()}
            replies = [s.step(k, sent) for s in (shm, wire, mem)]
            assert set(replies[0]) == {*OUTPUTS, *(f"{o}_spread" for o in OUTPUTS)}
            assert _same(replies[0], replies[1]) and _same(replies[0], replies[2])
            assert all(not v.flags.writeable for v in replies[0].values())
            assert shm.last_time == wire.last_time and shm.next_index == k + 1
        again = shm.step(5, forcing(5))  # a resent index: the stored reply, not advanced
        assert _same(again, replies[0]) and shm.next_index == 6
        assert len(_segments()) == 1
        for s in (shm, wire, mem):
            s.close()
    assert len(service.servicer.shared) == 0


def test_over_a_unix_socket(tmp_path: Path) -> None:
    address = f"unix:{tmp_path}/landcoupler.sock"
    svc = start_service(address, ServerConfig(max_workers=4))
    try:
        with CouplerClient(address) as client:
            shm = client.open_session(**open_kwargs(), shared_memory=True)
            wire = client.open_session(**open_kwargs())
            for k in range(3):
                assert _same(shm.step(k, _f32(k)), wire.step(k, _f32(k)))
            shm.close()
            wire.close()
    finally:
        svc.server.stop(None)
        svc.manager.shutdown(checkpoint=False)


POISON = 0xAB


def _poison(channel: SharedChannel) -> None:
    """Fill the reply region of ``channel``'s last request with a pattern no output has."""
    seg, start = channel.segment, channel.reply_offset
    assert seg is not None
    seg.buffer[start : start + channel.reply_bytes] = bytes([POISON]) * channel.reply_bytes


def _untouched(channel: SharedChannel) -> bool:
    seg, start = channel.segment, channel.reply_offset
    assert seg is not None
    return set(bytes(seg.buffer[start : start + channel.reply_bytes])) == {POISON}


def _units() -> dict[str, str]:
    return {k: V.REGISTRY[k].units for k in forcing(0)}


def _send(client: CouplerClient, request: Any) -> Any:
    return client.call(client.steps.Step, request)


@pytest.fixture()
def pair(client: CouplerClient) -> Iterator[tuple[Any, Any, SharedChannel]]:
    """A shm session that made one step, its network twin, and a second channel (segment) of
    the shm session for hand-made requests."""
    shm = client.open_session(**open_kwargs(), shared_memory=True)
    wire = client.open_session(**open_kwargs())
    assert _same(shm.step(0, forcing(0)), wire.step(0, forcing(0)))
    channel = SharedChannel(shm.id, shm.outputs, shm.cells)
    yield shm, wire, channel
    channel.close()
    shm.close()
    wire.close()


def _assert_unchanged(shm: Any, wire: Any, channel: SharedChannel) -> None:
    """The refused step wrote no output and the session steps on as its twin."""
    assert _untouched(channel)
    assert shm.next_index == 1
    assert _same(shm.step(0, forcing(0)), wire.step(0, forcing(0)))  # the stored reply
    assert _same(shm.step(1, forcing(1)), wire.step(1, forcing(1)))


@pytest.mark.parametrize("case", sorted(BAD_STEPS))
def test_the_network_paths_refusals_alike(pair: tuple[Any, Any, SharedChannel], case: str) -> None:
    shm, wire, channel = pair
    change, units = BAD_STEPS[case]
    bad = _fields(change)
    if case == "booleans":  # neither client can send it: the same rule
        for s in (shm, wire):
            with pytest.raises(Exception) as enc:
                s.step(1, bad)
            assert getattr(enc.value, "rule", None) == "dtype"
        channel.request(1, forcing(1), _units())
    else:
        a = _refused(lambda: shm.step(1, bad, units))
        b = _refused(lambda: wire.step(1, bad, units))
        assert a.code() is b.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert (a.field, a.rule, a.details()) == (b.field, b.rule, b.details())
        stated = {k: (units or {}).get(k, _units().get(k, "")) for k in bad}
        request = channel.request(1, bad, stated)
        _poison(channel)
        c = _refused(lambda: _send(shm.client, request))
        assert (c.code(), c.field, c.rule, c.details()) == (a.code(), a.field, a.rule, a.details())
    _poison(channel)
    _assert_unchanged(shm, wire, channel)


REFUSALS: dict[str, tuple[Any, grpc.StatusCode, str, str]] = {
    "name": (lambda r: setattr(r.shared_memory, "name", "../../etc/passwd"),
             grpc.StatusCode.INVALID_ARGUMENT, "shared_memory.name", "name"),
    "missing": (lambda r: setattr(r.shared_memory, "name", "landcoupler-no-such-segment"),
                grpc.StatusCode.INVALID_ARGUMENT, "shared_memory.name", "open"),
    "size": (lambda r: setattr(r.shared_memory, "size", r.shared_memory.size + 64),
             grpc.StatusCode.INVALID_ARGUMENT, "shared_memory.size", "size_match"),
    "bounds": (lambda r: setattr(r.shared_memory.fields[2], "offset", r.shared_memory.size - 8),
               grpc.StatusCode.INVALID_ARGUMENT, "ps", "bounds"),
    "header": (lambda r: setattr(r.shared_memory.fields[0], "offset", 0),
               grpc.StatusCode.INVALID_ARGUMENT, "tas", "bounds"),
    "alignment": (lambda r: setattr(r.shared_memory.fields[1], "offset",
                                    r.shared_memory.fields[1].offset + 2),
                  grpc.StatusCode.INVALID_ARGUMENT, "huss", "alignment"),
    "dtype": (lambda r: setattr(r.shared_memory.fields[0], "dtype", 99),
              grpc.StatusCode.INVALID_ARGUMENT, "tas", "dtype"),
    "max_bytes": (lambda r: r.shared_memory.fields[0].shape.append(1 << 40),
                  grpc.StatusCode.INVALID_ARGUMENT, "tas", "max_bytes"),
    "reply region": (lambda r: setattr(r.shared_memory, "reply_offset", r.shared_memory.size - 64),
                     grpc.StatusCode.INVALID_ARGUMENT, "shared_memory.reply_offset", "bounds"),
    "reply alignment": (lambda r: setattr(r.shared_memory, "reply_offset",
                                          r.shared_memory.reply_offset + 8),
                        grpc.StatusCode.INVALID_ARGUMENT, "shared_memory.reply_offset",
                        "alignment"),
    "inline too": (lambda r: r.fields.add(name="tas"),
                   grpc.StatusCode.INVALID_ARGUMENT, "shared_memory", "exclusive"),
    "reply codec": (lambda r: setattr(r.reply_codec, "id", "zstd"),
                    grpc.StatusCode.INVALID_ARGUMENT, "reply_codec", "shared_memory"),
    "reply float32": (lambda r: setattr(r, "reply_dtype", pb.DTYPE_FLOAT32),
                      grpc.StatusCode.INVALID_ARGUMENT, "reply_dtype", "shared_memory"),
    "reply dtype unknown": (lambda r: setattr(r, "reply_dtype", pb.DTYPE_INT32),
                            grpc.StatusCode.INVALID_ARGUMENT, "reply_dtype", "dtype"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_bad_segment_or_layout_is_refused_and_changes_nothing(
    client: CouplerClient, pair: tuple[Any, Any, SharedChannel], case: str
) -> None:
    shm, wire, channel = pair
    spoil, code, field, rule = REFUSALS[case]
    request = channel.request(1, forcing(1), _units())
    _poison(channel)
    spoil(request)
    err = _refused(lambda: _send(client, request))
    assert (err.code(), err.field, err.rule) == (code, field, rule), err.details()
    _assert_unchanged(shm, wire, channel)


def test_another_sessions_segment_is_refused(
    client: CouplerClient, pair: tuple[Any, Any, SharedChannel]
) -> None:
    shm, wire, channel = pair
    other = client.open_session(**open_kwargs(), shared_memory=True)
    other.step(0, forcing(0))  # its segment: bound to it on the server, its id in the header
    mine = channel.request(1, forcing(1), _units())
    _poison(channel)
    theirs = other._shared.segment
    for bound in (True, False):
        if not bound:  # the header alone: a segment of the other session it never used
            fresh = SharedChannel(other.id, other.outputs, other.cells)
            fresh.request(1, forcing(1), _units())
            theirs = fresh.segment
        request = type(mine)()
        request.CopyFrom(mine)
        request.shared_memory.name, request.shared_memory.size = theirs.name, theirs.size
        before = bytes(theirs.buffer)
        err = _refused(lambda r=request: _send(client, r))
        assert bytes(theirs.buffer) == before
        assert (err.code(), err.field, err.rule) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "shared_memory.name",
            "session",
        ), err.details()
        if not bound:
            fresh.close()
    _assert_unchanged(shm, wire, channel)
    other.close()


def test_links_and_other_files_are_not_opened(
    client: CouplerClient, pair: tuple[Any, Any, SharedChannel], tmp_path: Path
) -> None:
    shm, wire, channel = pair
    request = channel.request(1, forcing(1), _units())
    _poison(channel)
    real = channel.segment
    assert real is not None
    link = SHM_DIR / "landcoupler-test-symlink"
    hard = SHM_DIR / "landcoupler-test-hardlink"
    os.symlink(real.path, link)
    os.link(real.path, hard)
    try:
        for path in (link, hard):
            request.shared_memory.name = path.name
            err = _refused(lambda r=request: _send(client, r))
            assert (err.field, err.rule) == ("shared_memory.name", "open"), err.details()
    finally:
        link.unlink()
        hard.unlink()
    _assert_unchanged(shm, wire, channel)


def test_exchange_refuses_shared_memory(pair: tuple[Any, Any, SharedChannel]) -> None:
    shm, wire, channel = pair
    request = channel.request(1, forcing(1), _units())
    _poison(channel)
    stream = Exchange(shm.client.steps, shm.client.metadata)
    err = _refused(lambda: stream.step([pb.ExchangeRequest(step=request)], 1, 10.0))
    stream.close(cancel=True)
    assert (err.code(), err.field, err.rule) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "shared_memory",
        "unary",
    )
    _assert_unchanged(shm, wire, channel)


def _outside_address() -> str | None:
    """A non-loopback IPv4 address of this host (None: it has none)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent; the kernel picks the source
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_a_peer_off_the_node_is_refused_colocated() -> None:
    address = _outside_address()
    if address is None:
        pytest.skip("this host has no non-loopback IPv4 address to call the server through")
    svc = start_service("0.0.0.0:0", ServerConfig(max_workers=4))
    try:
        with CouplerClient(f"{address}:{svc.port}", retries=0) as client:
            shm = client.open_session(**open_kwargs(), shared_memory=True)
            err = _refused(lambda: shm.step(0, forcing(0)))
            assert (err.code(), err.field, err.rule) == (
                grpc.StatusCode.FAILED_PRECONDITION,
                "shared_memory",
                "colocated",
            )
            assert "not on the server's node" in err.details()
            assert shm.next_index == 0
            wire = client.open_session(**open_kwargs())  # the same peer, on the wire: fine
            wire.step(0, forcing(0))
            shm.close()
            wire.close()
    finally:
        svc.server.stop(None)
        svc.manager.shutdown(checkpoint=False)


def test_segments_are_unlinked_by_close_session_and_by_client_close(service: Service) -> None:
    with CouplerClient(f"127.0.0.1:{service.port}") as client:
        a = client.open_session(**open_kwargs(), shared_memory=True)
        channel = SharedChannel(a.id, a.outputs, a.cells)
        _send(client, channel.request(0, forcing(0), _units()))
        segment = channel.segment
        assert segment is not None and segment.name in _segments()
        channel._finalizer.detach()  # as if the client had died: only the server may unlink
        a.close()  # CloseSession
        assert segment.name not in _segments()
        segment.close()
        b = client.open_session(**open_kwargs(), shared_memory=True)
        b.step(0, forcing(0))
        assert len(_segments()) == 1
    assert len(_segments()) == 0  # the client's close unlinked the open session's segment


def test_a_shared_memory_session_records_what_a_network_session_records(
    client: CouplerClient, tmp_path: Path
) -> None:
    urls = {kind: str(tmp_path / f"{kind}.zarr") for kind in ("shm", "wire")}
    sessions = {
        kind: client.open_session(**open_kwargs(record_url=url), shared_memory=kind == "shm")
        for kind, url in urls.items()
    }
    for k in range(5):
        replies = [s.step(k, _f32(k)) for s in sessions.values()]
        assert _same(*replies)
    for s in sessions.values():
        s.close()
    shm, wire = (RecordSource(url) for url in urls.values())
    assert shm.dtypes == wire.dtypes and shm.dtypes["tas"] == np.float32
    a, b = shm.read(0, 5).fields, wire.read(0, 5).fields
    assert a.keys() == b.keys() and all(a[k].tobytes() == b[k].tobytes() for k in a)
    assert replay(urls["shm"]).bitwise_equal


def test_a_serve_process_on_a_unix_socket_steps_a_client_process_through_shared_memory(
    tmp_path: Path,
) -> None:
    from .test_serve import serve

    socket = f"unix:{tmp_path}/serve.sock"
    with serve(tmp_path, "unix", "--address", socket) as (proc, address):
        assert address == socket
        with (
            CouplerClient(address, client_name="model") as client,
            InProcessClient(owner="model") as local,
        ):
            shm = client.open_session(**open_kwargs(), shared_memory=True)
            mem = local.open_session(**open_kwargs())
            for k in range(4):
                assert _same(shm.step(k, _f32(k)), mem.step(k, _f32(k)))
            assert len(_segments()) == 1  # mapped by the server process, owned by this one
            shm.close()
            assert len(_segments()) == 0
            dying = client.open_session(**open_kwargs(), shared_memory=True)
            dying.step(0, forcing(0))
            dying._shared._finalizer.detach()  # as if this client were killed: no close
            assert len(_segments()) == 1
            proc.terminate()  # SIGTERM: the server closes its sessions, unlinks their segments
            assert proc.wait(30) == 0
            assert len(_segments()) == 0
            dying._shared.segment.close()


def test_client_refuses_shared_memory_with_float32_replies(service: Service) -> None:
    with CouplerClient(f"127.0.0.1:{service.port}") as client:
        with pytest.raises(ValueError, match="shared_memory steps are unary, raw and float64"):
            client.open_session(**open_kwargs(), shared_memory=True, reply_dtype="float32")
    with CouplerClient(f"127.0.0.1:{service.port}", shared_memory=True) as client:
        # the client-wide default leaves a float32-reply session on the wire
        session = client.open_session(**open_kwargs(), reply_dtype="float32")
        out = session.step(0, forcing(0))
        assert all(v.dtype == np.float32 for v in out.values())
        session.close()
