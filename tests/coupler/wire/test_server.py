"""A real server on 127.0.0.1:0: describe, sessions over unary and stream, retries, step order,
refusals (each malformed-input class: INVALID_ARGUMENT naming the field and the rule, state
unchanged), random malformed messages, deadlines, health, reflection, request ids, metrics."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, cast

import grpc
import numpy as np
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coupler._proto.landcoupler.v1 import landcoupler_pb2 as pb
from coupler.client import CodecSpec, CouplerClient, CouplerRpcError
from coupler.wire import fields as F
from coupler.wire.server import Service

from .conftest import N_CELLS, OUTPUTS, forcing, open_kwargs

Code = grpc.StatusCode


def run(client: CouplerClient, steps: int, **over: Any) -> list[dict[str, np.ndarray]]:
    with client.open_session(**open_kwargs(**over)) as s:
        return [s.step(i, forcing(i)) for i in range(steps)]


def same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    """Bit-identical replies (same names, dtypes, shapes and bytes)."""
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and a[k].tobytes() == b[k].tobytes()
        for k in a
    )


@pytest.fixture(scope="module")
def reference(service: Service) -> list[dict[str, np.ndarray]]:
    """An uninterrupted 4-step run, the yardstick of every 'state unchanged' check."""
    with CouplerClient(f"127.0.0.1:{service.port}", client_name="yardstick") as c:
        return run(c, 4)


def test_describe(client: CouplerClient) -> None:
    d = client.describe()
    assert d["protocol"] == "landcoupler.v1"
    assert "reference" in d["backends"]
    assert d["variables"]["tas"]["units"] == "K"
    assert d["variables"]["tas"]["direction"] == "to_land"
    assert d["variables"]["hfls"]["positive"] == "up"
    assert set(d["codecs"]) == {"none", "zstd", "blosc"}
    assert d["details"]["limits"]["max_sessions"] >= 1


def test_open_step_close(client: CouplerClient, reference: list[dict[str, np.ndarray]]) -> None:
    s = client.open_session(**open_kwargs())
    assert (s.next_index, s.cells, s.outputs) == (0, N_CELLS, OUTPUTS)
    assert s.start == "2001-06-01T00:00:00Z" and s.timestep == 3600
    for i in range(4):
        reply = s.step(i, forcing(i))
        assert set(reply) == set(OUTPUTS)
        assert all(v.shape == (N_CELLS,) and v.dtype == np.float64 for v in reply.values())
        assert same(reply, reference[i])
    assert s.last_time == "2001-06-01T03:00:00Z"
    s.close()
    with pytest.raises(CouplerRpcError) as info:
        s.client.call(s.client.stub.Step, pb.StepRequest(session_id=s.id, index=4))
    assert info.value.code() is Code.NOT_FOUND
    s.close()  # idempotent


@pytest.mark.parametrize(
    "options",
    [
        dict(stream=True),
        dict(stream=True, split_bytes=0),
        dict(codec="zstd"),
        dict(codec=CodecSpec("blosc", {"cname": "lz4", "shuffle": 1}), stream=True, split_bytes=0),
        dict(codec={"tas": "zstd", "rsds": "blosc"}),
    ],
    ids=["stream-inline", "stream-per-field", "unary-zstd", "stream-blosc", "per-field-codec"],
)
def test_every_transport_gives_the_same_bytes(
    client: CouplerClient, reference: list[dict[str, np.ndarray]], options: dict[str, Any]
) -> None:
    replies = run(client, 4, **options)
    assert all(same(a, b) for a, b in zip(replies, reference, strict=True))


def test_retry_returns_the_identical_reply_and_does_not_advance(client: CouplerClient) -> None:
    for stream in (False, True):
        with client.open_session(**open_kwargs(stream=stream)) as s:
            first = s.step(0, forcing(0))
            again = s.step(0, forcing(0))
            assert same(first, again)
            second = s.step(1, forcing(1))
            assert same(s.step(1, forcing(1)), second)
            assert not same(first, second)


@pytest.mark.parametrize("stream", [False, True])
def test_out_of_order_steps_are_refused(client: CouplerClient, stream: bool) -> None:
    with client.open_session(**open_kwargs(stream=stream)) as s:
        with pytest.raises(CouplerRpcError) as info:
            s.step(1, forcing(1))
        assert info.value.code() is Code.FAILED_PRECONDITION
        s.step(0, forcing(0))
        for k in (2, 5, -1):
            with pytest.raises(CouplerRpcError) as info:
                s.step(k, forcing(1))
            assert info.value.code() is Code.FAILED_PRECONDITION
            assert (info.value.field, info.value.rule) == ("index", "step_order")
        s.step(1, forcing(1))


# ---- every malformed-input class: INVALID_ARGUMENT naming field and rule, state unchanged -----
def _fields(i: int) -> list[pb.Field]:
    return F.encode_all(forcing(i), {n: u for n, u in UNITS.items()})


UNITS = {"tas": "K", "huss": "1", "ps": "Pa", "sfcWind": "m s-1", "pr": "kg m-2 s-1",
         "rsds": "W m-2", "rlds": "W m-2"}  # fmt: skip


def _replace(fields: list[pb.Field], name: str, new: pb.Field | None) -> list[pb.Field]:
    out = [f for f in fields if f.name != name]
    return out + ([new] if new is not None else [])


def _mutate(name: str, fn: Callable[[pb.Field], None]) -> Callable[[list[pb.Field]], list]:
    def apply(fields: list[pb.Field]) -> list[pb.Field]:
        f = next(x for x in fields if x.name == name)
        g = pb.Field()
        g.CopyFrom(f)
        fn(g)
        return _replace(fields, name, g)

    return apply


def _values(name: str, values: Any) -> Callable[[list[pb.Field]], list]:
    return lambda fields: _replace(fields, name, F.encode(name, values, UNITS[name]))


def _set(attr: str, value: Any) -> Callable[[pb.Field], None]:
    def fn(f: pb.Field) -> None:
        setattr(f, attr, value)

    return fn


def _codec(codec_id: str, config: str = "", keepbits: int = 0) -> Callable[[pb.Field], None]:
    def fn(f: pb.Field) -> None:
        f.codec.id, f.codec.config_json, f.codec.keepbits = codec_id, config, keepbits

    return fn


def _shape(*shape: int) -> Callable[[pb.Field], None]:
    def fn(f: pb.Field) -> None:
        f.shape[:] = shape

    return fn


N = N_CELLS
MALFORMED: dict[str, tuple[Callable[[list[pb.Field]], list], str, str]] = {
    "unknown name": (lambda fs: [*fs, F.encode("tasmax", np.full(N, 290.0), "K")], "tasmax",
                     "known_name"),
    "output sent as forcing": (lambda fs: [*fs, F.encode("hfls", np.zeros(N), "W m-2")], "hfls",
                               "direction"),
    "missing required field": (lambda fs: _replace(fs, "rlds", None), "rlds", "required"),
    "duplicate field": (lambda fs: [*fs, fs[0]], "tas", "unique"),
    "unnamed field": (lambda fs: [*fs, F.encode("", np.zeros(N))], "name", "non_empty"),
    "wrong units": (_mutate("tas", _set("units", "degC")), "tas", "units"),
    "missing units": (_mutate("tas", _set("units", "")), "tas", "units"),
    "integer dtype": (_values("tas", np.full(N, 290, dtype=np.int32)), "tas", "dtype"),
    "unknown dtype": (_mutate("tas", _set("dtype", 42)), "tas", "dtype"),
    "unspecified dtype": (_mutate("tas", _set("dtype", 0)), "tas", "dtype"),
    "too few cells": (_values("tas", np.full(N - 1, 290.0)), "tas", "shape"),
    "2-D field": (_values("tas", np.full((N, 1), 290.0)), "tas", "shape"),
    "bytes short of the shape": (_mutate("tas", lambda f: setattr(f, "data", f.data[:-3])),
                                 "tas", "size"),
    "shape larger than the bytes": (_mutate("tas", _shape(N + 1)), "tas", "size"),
    "NaN": (_values("tas", np.r_[np.full(N - 1, 290.0), np.nan]), "tas", "finite"),
    "infinity": (_values("rsds", np.r_[np.inf, np.zeros(N - 1)]), "rsds", "finite"),
    "above the valid range": (_values("tas", np.full(N, 400.0)), "tas", "valid_range"),
    "below the valid range": (_values("pr", np.full(N, -1e-3)), "pr", "valid_range"),
    "unknown codec": (_mutate("tas", _codec("pickle")), "tas", "codec"),
    "bad codec config": (_mutate("tas", _codec("zstd", '{"level": 99}')), "tas", "codec_config"),
    "config not JSON": (_mutate("tas", _codec("zstd", "{")), "tas", "codec_config"),
    "corrupt zstd data": (_mutate("tas", _codec("zstd")), "tas", "codec_data"),
    "corrupt blosc data": (_mutate("tas", _codec("blosc")), "tas", "codec_data"),
    "keepbits out of range": (_mutate("tas", _codec("none", "", 77)), "tas", "keepbits"),
}  # fmt: skip


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_input_is_refused_and_changes_nothing(
    client: CouplerClient, reference: list[dict[str, np.ndarray]], case: str, stream: bool
) -> None:
    corrupt, field, rule = MALFORMED[case]
    with client.open_session(**open_kwargs(stream=stream, split_bytes=0)) as s:
        assert same(s.step(0, forcing(0)), reference[0])
        request = pb.StepRequest(session_id=s.id, index=1, fields=corrupt(_fields(1)))
        with pytest.raises(CouplerRpcError) as info:
            if stream:
                frames = [
                    pb.ExchangeRequest(
                        step=pb.StepRequest(
                            session_id=s.id, index=1, trailing_fields=len(request.fields)
                        )
                    )
                ]
                frames += [pb.ExchangeRequest(field=f) for f in request.fields]
                _exchange(client, frames)
            else:
                client.call(client.stub.Step, request)
        err = info.value
        assert err.code() is Code.INVALID_ARGUMENT, err
        assert (err.field, err.rule) == (field, rule), err
        assert err.details().startswith(f"field {field!r}: rule {rule}: ")
        assert err.request_id
        # state unchanged: the retry of step 0 and the correct step 1 match an uninterrupted run
        assert same(s.step(0, forcing(0)), reference[0])
        assert same(s.step(1, forcing(1)), reference[1])
        assert same(s.step(2, forcing(2)), reference[2])


def _exchange(client: CouplerClient, frames: list[pb.ExchangeRequest]) -> list[pb.ExchangeReply]:
    try:
        return list(client.stub.Exchange(iter(frames), metadata=client.metadata, timeout=30))
    except grpc.RpcError as exc:
        raise CouplerRpcError.from_grpc(exc) from None


def test_stream_framing_errors(client: CouplerClient) -> None:
    with client.open_session(**open_kwargs()) as s:
        fields = _fields(0)
        bad_streams = [
            ("frame", "frame_order", [pb.ExchangeRequest(field=fields[0])]),
            ("frame", "frame_order", [pb.ExchangeRequest()]),
            ("trailing_fields", "frame_count", [
                pb.ExchangeRequest(step=pb.StepRequest(session_id=s.id, index=0,
                                                       trailing_fields=len(fields) + 1)),
                *[pb.ExchangeRequest(field=f) for f in fields],
            ]),
            ("trailing_fields", "frame_count", [
                pb.ExchangeRequest(step=pb.StepRequest(session_id=s.id, index=0,
                                                       trailing_fields=2)),
                pb.ExchangeRequest(field=fields[0]),
                pb.ExchangeRequest(step=pb.StepRequest(session_id=s.id, index=0)),
            ]),
            ("trailing_fields", "max_fields", [
                pb.ExchangeRequest(step=pb.StepRequest(session_id=s.id, trailing_fields=10**6))
            ]),
        ]  # fmt: skip
        for field, rule, frames in bad_streams:
            with pytest.raises(CouplerRpcError) as info:
                _exchange(client, frames)
            assert info.value.code() is Code.INVALID_ARGUMENT
            assert (info.value.field, info.value.rule) == (field, rule)
        with pytest.raises(CouplerRpcError) as info:
            client.call(client.stub.Step, pb.StepRequest(session_id=s.id, trailing_fields=1))
        assert (info.value.field, info.value.rule) == ("trailing_fields", "unary")
        # a good stream after all that: several steps on one stream, replies in order
        frames = [
            pb.ExchangeRequest(step=pb.StepRequest(session_id=s.id, index=i, fields=_fields(i)))
            for i in range(3)
        ]
        replies = _exchange(client, frames)
        assert [r.step.index for r in replies] == [0, 1, 2]


# ---- random malformed messages ---------------------------------------------------------------
NAMES = ["tas", "huss", "ps", "rsds", "", "x" * 300, "tas\x00", "lat"]
CODEC_IDS = ["", "none", "zstd", "blosc", "pickle", "lz4", "\u00e9"]
CONFIGS = ["", "{}", "[]", "null", '{"level": 1}', '{"cname": "zstd"}', '{"id": "zstd"}', "{{"]


@st.composite
def garbage_fields(draw: st.DrawFn) -> pb.Field:
    f = pb.Field(
        name=draw(st.sampled_from(NAMES)),
        units=draw(st.sampled_from(["", "K", "Pa", "\u00b0C"])),
        dtype=cast(Any, draw(st.integers(0, 20))),
        shape=draw(st.lists(st.integers(0, 2**63), max_size=4)),
        data=draw(st.binary(max_size=200)),
    )
    if draw(st.booleans()):
        f.codec.id = draw(st.sampled_from(CODEC_IDS))
        f.codec.config_json = draw(st.sampled_from(CONFIGS))
        f.codec.keepbits = draw(st.integers(0, 2**32 - 1))
    return f


@pytest.fixture(scope="module")
def target(service: Service) -> Iterator[tuple[CouplerClient, Any, dict[str, np.ndarray]]]:
    """A client and a session at step 1, with its stored step-0 reply."""
    with CouplerClient(f"127.0.0.1:{service.port}", client_name="fuzz", retries=0) as c:
        s = c.open_session(**open_kwargs())
        yield c, s, s.step(0, forcing(0))
        s.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bad=garbage_fields(), replace=st.booleans(), stream=st.booleans())
def test_random_malformed_fields_get_a_precise_status(
    target: tuple[CouplerClient, Any, dict[str, np.ndarray]], bad: pb.Field, replace: bool,
    stream: bool,
) -> None:  # fmt: skip
    client, session, first = target
    fields = _fields(1)
    if replace and bad.name in {f.name for f in fields}:
        fields = _replace(fields, bad.name, bad)
    else:
        fields = [*fields, bad]
    request = pb.StepRequest(session_id=session.id, index=1, fields=fields)
    with pytest.raises(CouplerRpcError) as info:
        if stream:
            _exchange(client, [pb.ExchangeRequest(step=request)])
        else:
            client.call(client.stub.Step, request)
    err = info.value
    assert err.code() is Code.INVALID_ARGUMENT, err
    assert err.field and err.rule, err
    # the server is alive and the session untouched: step 0 retried gives the stored reply
    assert same(session.step(0, forcing(0)), first)


def test_malformed_requests_outside_fields(client: CouplerClient) -> None:
    cases: list[tuple[pb.OpenSessionRequest, str, str]] = []
    good = pb.OpenSessionRequest(start_rfc3339="2001-06-01T00:00:00", timestep=3600,
                                 outputs=["hfls"])  # fmt: skip
    F.encode_into(good.lat, "lat", np.zeros(3))
    F.encode_into(good.lon, "lon", np.zeros(3))

    def variant(**changes: Any) -> pb.OpenSessionRequest:
        r = pb.OpenSessionRequest()
        r.CopyFrom(good)
        for k, v in changes.items():
            if isinstance(v, pb.Field):
                getattr(r, k).CopyFrom(v)
            elif isinstance(v, list):
                del getattr(r, k)[:]
                getattr(r, k).extend(v)
            else:
                setattr(r, k, v)
        return r

    no_lat = variant()
    no_lat.ClearField("lat")
    no_start = variant()
    no_start.ClearField("start_rfc3339")
    cases += [
        (no_lat, "lat", "required"),
        (no_start, "start", "required"),
        (variant(lat=F.encode("lat", np.full(3, 95.0))), "lat", "valid_range"),
        (variant(lon=F.encode("lon", np.zeros(4))), "lon", "shape"),
        (variant(timestep=7), "timestep", "divides_day"),
        (variant(timestep=-3600), "timestep", "positive_int"),
        (variant(start_rfc3339="June 1st"), "start", "datetime"),
        (variant(outputs=["tas"]), "outputs", "direction"),
        (variant(outputs=[]), "outputs", "non_empty"),
        (variant(outputs=["nope"]), "outputs", "known_name"),
        (variant(backend="fortran"), "backend", "known_backend"),
        (variant(land_cover_name="moon"), "land_cover", "known_class"),
        (variant(land_cover_fractions=F.encode("land_cover", np.ones((3, 8)))), "land_cover",
         "sums_to_one"),
        (variant(members=-2), "members", "int_range"),
        (variant(checkpoint_every=5), "checkpoint_every", "needs_checkpoint_url"),
        (variant(grid_shape=[2, 2]), "shape", "matches_cells"),
    ]  # fmt: skip
    for request, field, rule in cases:
        with pytest.raises(CouplerRpcError) as info:
            client.call(client.stub.OpenSession, request)
        assert info.value.code() is Code.INVALID_ARGUMENT, (field, info.value)
        assert (info.value.field, info.value.rule) == (field, rule), info.value
    opened = client.call(client.stub.OpenSession, variant())
    client.call(client.stub.CloseSession, pb.CloseSessionRequest(session_id=opened.session_id))


def test_start_time_forms_agree(client: CouplerClient) -> None:
    starts = ["2001-06-01T00:00:00", "2001-06-01T00:00:00Z", "2001-06-01T02:00:00+02:00",
              np.datetime64("2001-06-01T00:00:00")]  # fmt: skip
    for start in starts:
        with client.open_session(**open_kwargs(start=start)) as s:
            assert s.start == "2001-06-01T00:00:00Z", start


def test_unknown_and_foreign_sessions(service: Service, client: CouplerClient) -> None:
    with pytest.raises(CouplerRpcError) as info:
        client.call(client.stub.Step, pb.StepRequest(session_id="nope", index=0))
    assert info.value.code() is Code.NOT_FOUND
    s = client.open_session(**open_kwargs())
    s.step(0, forcing(0))
    with CouplerClient(f"127.0.0.1:{service.port}", client_name="intruder") as other:
        for method, request in [
            (other.stub.Step, pb.StepRequest(session_id=s.id, index=1, fields=_fields(1))),
            (other.stub.Checkpoint, pb.CheckpointRequest(session_id=s.id, url="memory://x")),
            (other.stub.CloseSession, pb.CloseSessionRequest(session_id=s.id)),
            (other.stub.Assimilate, pb.AssimilateRequest(session_id=s.id)),
        ]:
            with pytest.raises(CouplerRpcError) as info:
                other.call(method, request)
            assert info.value.code() is Code.PERMISSION_DENIED
    assert s.step(1, forcing(1))  # still ours, still where it was
    s.close()


def test_limits_are_resource_exhausted() -> None:
    from coupler.core.config import Limits
    from coupler.wire.server import ServerConfig, start_service

    svc = start_service(
        "127.0.0.1:0", ServerConfig(limits=Limits(max_sessions=1, max_cells_per_session=4))
    )
    try:
        with CouplerClient(f"127.0.0.1:{svc.port}") as c:
            with pytest.raises(CouplerRpcError) as info:
                c.open_session(**open_kwargs())  # 6 cells > 4
            assert info.value.code() is Code.RESOURCE_EXHAUSTED
            assert info.value.field == "lat"
            c.open_session(**open_kwargs(lat=np.zeros(2), lon=np.zeros(2)))
            with pytest.raises(CouplerRpcError) as info:
                c.open_session(**open_kwargs(lat=np.zeros(2), lon=np.zeros(2)))
            assert info.value.code() is Code.RESOURCE_EXHAUSTED
            assert info.value.rule == "max_sessions"
    finally:
        svc.server.stop(None)


def test_message_size_limit() -> None:
    from coupler.wire.server import ServerConfig, start_service

    svc = start_service("127.0.0.1:0", ServerConfig(max_message_bytes=64 * 1024))
    try:
        with CouplerClient(f"127.0.0.1:{svc.port}") as c:
            n = 20_000  # 160 kB per field
            with pytest.raises(CouplerRpcError) as info:
                c.open_session(**open_kwargs(lat=np.zeros(n), lon=np.zeros(n)))
            assert info.value.code() is Code.RESOURCE_EXHAUSTED
    finally:
        svc.server.stop(None)


def test_deadline_exceeded_leaves_the_session_unchanged(
    client: CouplerClient, reference: list[dict[str, np.ndarray]]
) -> None:
    for stream in (False, True):
        with client.open_session(**open_kwargs(stream=stream)) as s:
            s.step(0, forcing(0))
            with pytest.raises(CouplerRpcError) as info:
                s.step(1, forcing(1), timeout=1e-6)
            assert info.value.code() is Code.DEADLINE_EXCEEDED
            # whether or not the server got to compute step 1, going on is exact
            assert same(s.step(1, forcing(1)), reference[1])
            assert same(s.step(2, forcing(2)), reference[2])


def test_health_reflection_and_request_ids(service: Service, client: CouplerClient) -> None:
    channel = grpc.insecure_channel(f"127.0.0.1:{service.port}")
    try:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", "landcoupler.v1.LandCoupler"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        (answer,) = list(stub.ServerReflectionInfo(iter([request]), timeout=10))
        names = {s.name for s in answer.list_services_response.service}
        assert "landcoupler.v1.LandCoupler" in names
        assert "grpc.health.v1.Health" in names
        request = reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="landcoupler.v1.LandCoupler"
        )
        (answer,) = list(stub.ServerReflectionInfo(iter([request]), timeout=10))
        files = answer.file_descriptor_response.file_descriptor_proto
        (served,) = [
            f
            for f in map(descriptor_pb2.FileDescriptorProto.FromString, files)
            if f.package == "landcoupler.v1"
        ]
        assert served.package == "landcoupler.v1"
        assert [s.name for s in served.service] == ["LandCoupler"]
        assert served.name == pb.DESCRIPTOR.name  # coupler/_proto/... (docs/wire.md)
    finally:
        channel.close()
    # request ids: echoed when given, generated otherwise
    _, call = client.stub.Describe.with_call(
        pb.DescribeRequest(), metadata=(("x-request-id", "abc-123"),), timeout=10
    )
    assert dict(call.trailing_metadata())["x-request-id"] == "abc-123"
    _, call = client.stub.Describe.with_call(pb.DescribeRequest(), timeout=10)
    assert len(dict(call.trailing_metadata())["x-request-id"]) == 32


def test_metrics_count_refusals_and_phases(service: Service, client: CouplerClient) -> None:
    before = service.metrics.exposition()
    with client.open_session(**open_kwargs()) as s:
        s.step(0, forcing(0))
        with pytest.raises(CouplerRpcError):
            s.step(3, forcing(3))
    text = service.metrics.exposition()
    assert 'landcoupler_refusals_total{code="FAILED_PRECONDITION"}' in text
    for phase in ("decode", "encode", "validate", "land"):
        assert f'landcoupler_step_phase_seconds_count{{phase="{phase}"}}' in text
    assert text != before


def test_assimilate_validates_then_needs_assimilation(client: CouplerClient) -> None:
    """Malformed batches are INVALID_ARGUMENT naming field and rule; a well-formed one on a
    session without assimilation is FAILED_PRECONDITION (assimilation, enabled). Sessions with
    assimilation: tests/assimilation/test_session_da.py."""
    with client.open_session(**open_kwargs()) as s:
        times = ["2001-06-01T10:00:00Z", "2001-06-01T11:00:00+01:00"]
        with pytest.raises(CouplerRpcError) as info:
            s.assimilate("lai", [2.5, 3.0], [0.3, 0.3], [35.0, 40.0], [-100.0, -90.0], times)
        assert info.value.code() is Code.FAILED_PRECONDITION
        assert (info.value.field, info.value.rule) == ("assimilation", "enabled")
        bad_cases: list[tuple[dict[str, Any], str, str]] = [
            (dict(type="tas"), "batches[0].type", "observable"),
            (dict(units="W m-2"), "batches[0].units", "units"),
            (dict(values=[2.5, np.nan]), "batches[0].values", "finite"),
            (dict(values=[2.5, 30.0]), "batches[0].values", "valid_range"),
            (dict(values=[]), "batches[0].values", "non_empty"),
            (dict(errors=[0.3, 0.0]), "batches[0].errors", "positive"),
            (dict(errors=[0.3]), "batches[0].errors", "shape"),
            (dict(lat=[35.0, 91.0]), "batches[0].lat", "valid_range"),
            (dict(lon=[0.0]), "batches[0].lon", "shape"),
            (dict(times=["2001-06-01T10:00:00Z", "yesterday"]), "batches[0].times", "rfc3339"),
            (dict(times=["2001-06-01T10:00:00Z"]), "batches[0].times", "shape"),
        ]
        base: dict[str, Any] = {
            "type": "lai", "values": [2.5, 3.0], "errors": [0.3, 0.3], "lat": [35.0, 40.0],
            "lon": [-100.0, -90.0], "times": times, "units": "1",
        }  # fmt: skip
        for change, field, rule in bad_cases:
            with pytest.raises(CouplerRpcError) as info:
                s.assimilate(**{**base, **change})
            assert info.value.code() is Code.INVALID_ARGUMENT
            assert (info.value.field, info.value.rule) == (field, rule), info.value
        with pytest.raises(CouplerRpcError) as info:
            client.call(client.stub.Assimilate, pb.AssimilateRequest(session_id=s.id))
        assert (info.value.field, info.value.rule) == ("batches", "non_empty")


def test_checkpoint_and_resume_over_the_wire(
    client: CouplerClient, reference: list[dict[str, np.ndarray]]
) -> None:
    s = client.open_session(**open_kwargs())
    s.step(0, forcing(0))
    s.step(1, forcing(1))
    url = s.checkpoint("memory://wire-tests/ckpt-a.ckpt")
    assert url == "memory://wire-tests/ckpt-a.ckpt"
    s.close()
    with client.open_session(resume_from=url) as r:
        assert r.next_index == 2 and r.outputs == OUTPUTS
        assert same(r.step(1, forcing(1)), reference[1])  # the stored reply travels along
        assert same(r.step(2, forcing(2)), reference[2])
        assert same(r.step(3, forcing(3)), reference[3])
    with pytest.raises(CouplerRpcError) as info:
        client.open_session(resume_from="memory://wire-tests/none.ckpt")
    assert info.value.code() in (Code.NOT_FOUND, Code.INVALID_ARGUMENT)
    with client.open_session(**open_kwargs()) as s:
        with pytest.raises(CouplerRpcError) as info:
            s.checkpoint()
        assert info.value.code() is Code.FAILED_PRECONDITION


def test_describe_json_is_valid(client: CouplerClient) -> None:
    reply = client.stub.Describe(pb.DescribeRequest(), timeout=10)
    assert json.loads(reply.details_json)["service"] == "landcoupler"


def test_unexpected_errors_become_internal_with_a_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The status mapping on a real server: a handler failing in an unforeseen way gives
    INTERNAL naming the request id, logged with the traceback, never the exception's text."""
    from concurrent import futures

    from coupler.metrics import ServiceMetrics
    from coupler.wire.interceptors import RequestInterceptor

    def broken(request: pb.DescribeRequest, context: grpc.ServicerContext) -> pb.DescribeReply:
        raise KeyError("secret internals")

    handler = grpc.method_handlers_generic_handler(
        "landcoupler.v1.LandCoupler",
        {"Describe": grpc.unary_unary_rpc_method_handler(
            broken, pb.DescribeRequest.FromString, pb.DescribeReply.SerializeToString)},
    )  # fmt: skip
    metrics = ServiceMetrics()
    server = grpc.server(futures.ThreadPoolExecutor(2), interceptors=[RequestInterceptor(metrics)])
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with CouplerClient(f"127.0.0.1:{port}", retries=0) as c, caplog.at_level("ERROR"):
            with pytest.raises(CouplerRpcError) as info:
                c.call(c.stub.Describe, pb.DescribeRequest())
    finally:
        server.stop(None)
    err = info.value
    assert err.code() is Code.INTERNAL
    assert err.request_id and err.request_id in err.details()
    assert "secret internals" not in err.details()
    assert any(err.request_id in r.getMessage() and r.exc_info for r in caplog.records)
    assert 'landcoupler_refusals_total{code="INTERNAL"} 1.0' in metrics.exposition()


def test_an_address_in_use_is_a_clear_error(service: Service) -> None:
    from coupler.wire.server import start_service

    with pytest.raises(ValueError, match="address: cannot bind"):
        start_service(f"127.0.0.1:{service.port}")


def test_metrics_exporter_serves_prometheus_text() -> None:
    import urllib.request

    from coupler.wire.server import ServerConfig, start_service

    svc = start_service("127.0.0.1:0", ServerConfig(metrics_port=0))
    try:
        assert svc.metrics_port
        with CouplerClient(f"127.0.0.1:{svc.port}") as c, c.open_session(**open_kwargs()) as s:
            s.step(0, forcing(0))
            with pytest.raises(CouplerRpcError):
                s.step(1, {**forcing(1), "tas": np.full(N_CELLS, np.nan)})
        url = f"http://127.0.0.1:{svc.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        assert 'landcoupler_refusals_total{code="INVALID_ARGUMENT"} 1.0' in text
        assert f"landcoupler_cells_total {float(N_CELLS)}" in text
    finally:
        svc.stop(grace=1.0, checkpoint=False)


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
def test_steps_are_retried_across_a_server_restart(
    reference: list[dict[str, np.ndarray]], stream: bool
) -> None:
    """UNAVAILABLE (the server is down) is retried with backoff; once a server is back on the
    address the step goes through, exactly once."""
    import threading

    from coupler.core.manager import SessionManager
    from coupler.wire.server import start_service

    manager = SessionManager()
    first = start_service("127.0.0.1:0", manager=manager)
    port = first.port
    with CouplerClient(f"127.0.0.1:{port}", retries=10, backoff=0.05) as c:
        s = c.open_session(**open_kwargs(stream=stream))
        assert same(s.step(0, forcing(0)), reference[0])
        first.server.stop(None).wait()  # the sessions live on in the manager
        restarted: list[Any] = []
        timer = threading.Timer(
            0.5, lambda: restarted.append(start_service(f"127.0.0.1:{port}", manager=manager))
        )
        timer.start()
        try:
            assert same(s.step(1, forcing(1)), reference[1])  # sent while the server is down
            assert same(s.step(2, forcing(2)), reference[2])
        finally:
            timer.join()
            for svc in restarted:
                svc.server.stop(None)
    manager.shutdown(checkpoint=False)
