"""Replies serialized straight from the arrays (coupler.wire.encoded): the bytes are exactly what
protobuf writes for the same message, the arrays are not copied before the join and not written,
and a real server answers a raw step with them (same decoded reply as a compressed one)."""

from __future__ import annotations

import numpy as np
import pytest

from coupler._proto.landcoupler.v1 import landcoupler_pb2 as pb
from coupler.client import CouplerClient
from coupler.wire import encoded as E
from coupler.wire import fields as F
from coupler.wire.server import ServerConfig, create_server

ARRAYS = [
    np.linspace(0.0, 1.0, 7),
    np.arange(5, dtype=np.float32),
    np.zeros(0),
    np.arange(6, dtype=">f8").reshape(2, 3),  # big-endian: sent little-endian
    np.arange(300, dtype=np.int64)[::3],  # not contiguous
]


@pytest.mark.parametrize("values", ARRAYS, ids=lambda a: f"{a.dtype.str}{a.shape}")
def test_a_raw_field_is_the_bytes_protobuf_writes(values: np.ndarray) -> None:
    expected = F.encode("hfls", values, "W m-2").SerializeToString()
    assert E.raw_field("hfls", values, "W m-2").tobytes() == expected
    assert E.raw_field("", values, "").tobytes() == F.encode("", values).SerializeToString()


CAST = [
    np.array([0.1, -1e-30, 3.4e38, 1e39, np.nan, np.inf, -0.0, 1.0 + 2.0**-24]),  # edge roundings
    np.arange(6, dtype=">f8").reshape(2, 3) / 7.0,  # big-endian and 2-D
    np.linspace(0.0, 1.0, 301)[::3],  # not contiguous
    np.zeros(0),
]


@pytest.mark.parametrize("values", CAST, ids=lambda a: f"{a.dtype.str}{a.shape}")
def test_a_rounded_field_is_the_bytes_protobuf_writes_for_astype(values: np.ndarray) -> None:
    with np.errstate(over="ignore"):
        expected = F.encode("hfls", values.astype(np.float32), "W m-2").SerializeToString()
    field = E.raw_field("hfls", values, "W m-2", np.float32)
    assert any(isinstance(c, E.Cast) for c in field.chunks) == bool(values.size)
    with np.errstate(over="ignore"):
        wrapped = pb.StepReply(fields=[pb.Field.FromString(expected)]).SerializeToString()
        for prefix in (b"", b"\x08\x01", b"\x08\x81\x01"):
            # prefixes of odd lengths put the float32 data at every alignment in the bytes
            message = E.Encoded([prefix])
            message.add_message(3, field)
            assert E.serialize(message) == prefix + wrapped


def test_a_rounded_step_reply_is_bitwise_the_float32_message_and_leaves_the_outputs() -> None:
    out = {"hfls": np.linspace(-5, 5, 11) / 3.0, "ts": np.full(11, 290.0) + 1e-9}
    before = {k: v.copy() for k, v in out.items()}
    msg = pb.StepReply(session_id="abc", index=7, time_rfc3339="t")
    for name, values in out.items():
        F.encode_into(msg.fields.add(), name, values.astype(np.float32), "u")
    raw = [E.raw_field(name, values, "u", np.float32) for name, values in out.items()]
    reply = E.step_reply("abc", 7, "t", raw)
    assert E.serialize(reply) == msg.SerializeToString()
    assert E.serialize(E.exchange_step(reply)) == pb.ExchangeReply(step=msg).SerializeToString()
    assert all(np.array_equal(out[k], before[k]) for k in out)
    same = E.raw_field("hfls", out["hfls"], "u", np.float64)  # its own dtype: a view, no Cast
    assert not any(isinstance(c, E.Cast) for c in same.chunks)


def test_step_reply_and_exchange_frames_are_the_bytes_protobuf_writes() -> None:
    out = {"hfls": np.linspace(-5, 5, 11), "ts": np.full(11, 290.0)}
    msg = pb.StepReply(session_id="abc", index=300, time_rfc3339="2001-07-01T01:00:00Z")
    for name, values in out.items():
        F.encode_into(msg.fields.add(), name, values, "u")
    raw = [E.raw_field(name, values, "u") for name, values in out.items()]
    reply = E.step_reply("abc", 300, "2001-07-01T01:00:00Z", raw)
    assert E.serialize(reply) == msg.SerializeToString()
    assert E.serialize(E.exchange_step(reply)) == pb.ExchangeReply(step=msg).SerializeToString()
    head = E.step_reply("abc", 0, "t", [], trailing_fields=2)
    expected = pb.ExchangeReply(step=pb.StepReply(session_id="abc", trailing_fields=2,
                                                  time_rfc3339="t"))  # fmt: skip
    assert E.serialize(E.exchange_step(head)) == expected.SerializeToString()
    frame = E.exchange_field(raw[0])
    assert E.serialize(frame) == pb.ExchangeReply(field=msg.fields[0]).SerializeToString()
    assert E.serialize(pb.StepReply(index=1)) == pb.StepReply(index=1).SerializeToString()


def test_the_chunks_are_views_of_a_read_only_array_never_written() -> None:
    values = np.linspace(0.0, 1.0, 1000)
    values.flags.writeable = False
    field = E.raw_field("ts", values, "K")
    views = [c for c in field.chunks if isinstance(c, memoryview)]
    assert len(views) == 1 and views[0].readonly
    assert np.shares_memory(np.frombuffer(views[0], dtype=np.float64), values)
    before = values.copy()
    E.serialize(E.step_reply("s", 0, "t", [field]))
    assert np.array_equal(values, before) and not values.flags.writeable


@pytest.mark.parametrize("stream", [False, True])
def test_a_real_server_answers_raw_steps_as_it_answers_compressed_ones(stream: bool) -> None:
    server, port = create_server("127.0.0.1:0", ServerConfig())
    n = 64
    rng = np.random.default_rng(1)
    kw = dict(lat=rng.uniform(-50, 60, n), lon=rng.uniform(-180, 180, n),
              start="2001-07-01T00:00:00", timestep=3600, outputs=["hfls", "ts", "albedo"],
              backend="reference", land_cover="grass")  # fmt: skip
    forcing = {
        "tas": np.full(n, 295.0, np.float32), "huss": np.full(n, 0.01), "ps": np.full(n, 1e5),
        "sfcWind": np.full(n, 3.0), "pr": np.zeros(n), "rsds": np.full(n, 400.0),
        "rlds": np.full(n, 350.0),
    }  # fmt: skip
    try:
        with CouplerClient(f"127.0.0.1:{port}") as client:
            raw = client.open_session(**kw, stream=stream, split_bytes=1)
            packed = client.open_session(**kw, stream=stream, split_bytes=1, codec="zstd")
            for k in range(3):
                a, b = raw.step(k, forcing), packed.step(k, forcing)
                assert sorted(a) == ["albedo", "hfls", "ts"]
                for name in a:
                    assert a[name].dtype == np.float64 and a[name].shape == (n,)
                    assert a[name].tobytes() == b[name].tobytes()
            again = raw.step(2, forcing)  # a resent index: the stored reply, same bytes
            assert all(again[k].tobytes() == a[k].tobytes() for k in a)
            raw.close()
            packed.close()
    finally:
        server.stop(None)


def test_a_step_request_is_the_bytes_protobuf_writes() -> None:
    fields = {"tas": np.full(5, 290.0, np.float32), "pr": np.zeros(5)}
    msg = pb.StepRequest(session_id="s1", index=7)
    for name, values in fields.items():
        F.encode_into(msg.fields.add(), name, values, "K")
    raw = [E.raw_field(name, values, "K") for name, values in fields.items()]
    assert E.serialize(E.step_request("s1", 7, raw)) == msg.SerializeToString()
    codec = F.codec_to_proto(F.CodecSpec("zstd", keepbits=12))
    msg.reply_codec.CopyFrom(codec)
    assert E.serialize(E.step_request("s1", 7, raw, codec)) == msg.SerializeToString()
    frame = pb.ExchangeRequest(step=msg)
    assert E.serialize(E.exchange_step(E.step_request("s1", 7, raw, codec))) == (
        frame.SerializeToString()
    )
