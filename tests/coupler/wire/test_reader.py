"""The step reader (coupler.wire.reader) parses exactly what protobuf parses: valid messages,
unknown fields, packed and unpacked shapes, fields out of order or repeated, groups, merged
sub-messages, and every truncation and many corruptions of a real request (DecodeError exactly
where protobuf raises one); the fields' data are views of the received bytes; a real server
refuses a request protobuf cannot parse with INVALID_ARGUMENT (field and rule) and changes
nothing."""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf.message import DecodeError, Message

from coupler._proto.landcoupler.v1 import landcoupler_pb2 as pb
from coupler.client import CouplerClient, CouplerRpcError
from coupler.wire import fields as F
from coupler.wire import reader
from coupler.wire.status import FIELD_KEY, RULE_KEY
from tests.coupler.wire.conftest import forcing, open_kwargs

KINDS = (pb.StepRequest, pb.StepReply, pb.ExchangeRequest, pb.ExchangeReply)


_varint = reader._encode_varint  # the inputs are judged by protobuf's own parse, not by it


def _tag(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _len(number: int, payload: bytes) -> bytes:
    return _tag(number, 2) + _varint(len(payload)) + payload


def _whole(received: reader.Received) -> bytes:
    """The received message with its fields' data put back, serialized deterministically."""
    for field, data in received.pairs:
        field.data = bytes(data)
    return received.message.SerializeToString(deterministic=True)


def _same(kind: type[Message], wire: bytes) -> reader.Received | None:
    """Assert parse(kind, wire) is protobuf's parse of ``wire`` (or raises as it does)."""
    try:
        expected = kind.FromString(wire).SerializeToString(deterministic=True)
    except DecodeError:
        with pytest.raises(DecodeError):
            reader.parse(kind, wire)
        assert isinstance(reader.request_deserializer(kind)(wire), reader.Malformed)
        return None
    received = reader.parse(kind, wire)
    assert isinstance(received.message, kind)
    assert _whole(reader.parse(kind, wire)) == expected
    return received


def _request() -> pb.StepRequest:
    req = pb.StepRequest(session_id="s" * 32, index=7)
    req.reply_codec.CopyFrom(pb.Codec(id="zstd", keepbits=9))
    F.encode_into(req.fields.add(), "tas", np.linspace(280, 300, 5, dtype=np.float32), "K")
    F.encode_into(req.fields.add(), "pr", np.zeros((2, 3)), "kg m-2 s-1", codec="zstd")
    F.encode_into(req.fields.add(), "huss", np.zeros(0), "1")
    return req


def test_valid_messages_parse_as_protobuf_parses_them_with_the_data_as_views() -> None:
    req = _request()
    wire = req.SerializeToString()
    received = _same(pb.StepRequest, wire)
    assert received is not None
    assert [f.name for f, _ in received.pairs] == ["tas", "pr", "huss"]
    assert all(f.data == b"" for f, _ in received.pairs)  # cut out, not copied
    tas, pr, huss = (data for _, data in received.pairs)
    assert isinstance(tas, memoryview) and tas.obj is wire and tas.readonly
    assert np.shares_memory(np.frombuffer(tas, np.uint8), np.frombuffer(wire, np.uint8))
    assert bytes(huss) == b""
    field = received.pairs[0][0]
    assert np.array_equal(F.decode(field, data=tas), F.decode(req.fields[0]))
    assert np.array_equal(F.decode(received.pairs[1][0], data=pr), np.zeros((2, 3)))
    reply = pb.StepReply(session_id="r", index=2, trailing_fields=1, time_rfc3339="t")
    reply.fields.extend(req.fields)
    for kind, msg in [
        (pb.StepReply, reply),
        (pb.ExchangeRequest, pb.ExchangeRequest(step=req)),
        (pb.ExchangeRequest, pb.ExchangeRequest(field=req.fields[1])),
        (pb.ExchangeRequest, pb.ExchangeRequest()),
        (pb.ExchangeReply, pb.ExchangeReply(step=reply)),
        (pb.ExchangeReply, pb.ExchangeReply(field=reply.fields[0])),
        (pb.StepRequest, pb.StepRequest()),
    ]:
        got = _same(kind, msg.SerializeToString())
        assert got is not None
        assert all(isinstance(d, memoryview) for _, d in got.pairs)  # the fast path
    frame = reader.parse(
        pb.ExchangeRequest, pb.ExchangeRequest(field=req.fields[0]).SerializeToString()
    )
    assert len(frame.pairs) == 1 and frame.pairs[0][0] is not None


def _field(*entries: bytes) -> bytes:
    return b"".join(entries)


NAME = _len(1, b"tas")
UNITS = _len(2, b"K")
DTYPE = _tag(3, 0) + _varint(pb.DTYPE_FLOAT32)
DATA = _len(5, np.arange(3, dtype="<f4").tobytes())

ODD_REQUESTS = {
    "unknown fields everywhere": _len(1, b"id")
    + _tag(99, 0)
    + _varint(5)
    + _len(
        3,
        _field(
            NAME,
            _tag(77, 1) + bytes(8),
            UNITS,
            _tag(78, 5) + bytes(4),
            _len(79, b"xyz"),
            DTYPE,
            _len(4, _varint(3)),
            DATA,
        ),
    )
    + _tag(100, 2)
    + _varint(2)
    + b"ab",
    "out of order": _len(3, _field(DATA, DTYPE, _len(4, _varint(3)), UNITS, NAME))
    + _tag(2, 0)
    + _varint(4)
    + _len(1, b"id"),
    "shape unpacked": _len(3, _field(NAME, _tag(4, 0) + _varint(3), _tag(4, 0) + _varint(1), DATA)),
    "shape packed and unpacked": _len(
        3, _field(_len(4, _varint(1) + _varint(3)), _tag(4, 0) + _varint(1), DATA)
    ),
    "data twice, the last kept": _len(3, _field(_len(5, b"first"), NAME, _len(5, b"second"))),
    "data with another wire type": _len(3, _field(_tag(5, 0) + _varint(1), DATA)),
    "fields with a wrong wire type": _tag(3, 0) + _varint(1) + _len(3, DATA),
    "codec twice, merged": _len(
        3, _field(_len(6, _len(1, b"zstd")), DATA, _len(6, _len(2, b"{}")))
    ),
    "reply_codec twice, merged": _len(5, _len(1, b"zstd")) + _len(5, _tag(3, 0) + _varint(4)),
    "negative index, overlong varints": _tag(2, 0)
    + _varint((1 << 64) - 3)
    + bytes([0x9A, 0x80, 0x80, 0x00])
    + _varint(len(DATA))
    + DATA,
    "a group (left to protobuf)": _tag(50, 3)
    + _tag(1, 0)
    + _varint(1)
    + _tag(50, 4)
    + _len(3, DATA),
    "a group inside a field": _len(3, _field(_tag(50, 3) + _tag(50, 4), DATA)),
}


@pytest.mark.parametrize("wire", ODD_REQUESTS.values(), ids=ODD_REQUESTS.keys())
def test_odd_but_valid_requests_parse_as_protobuf_parses_them(wire: bytes) -> None:
    assert _same(pb.StepRequest, wire) is not None
    assert _same(pb.ExchangeRequest, _len(1, wire)) is not None


def test_merged_and_switching_exchange_frames_parse_as_protobuf_parses_them() -> None:
    step = _request().SerializeToString()
    field = _request().fields[0].SerializeToString()
    for wire in [
        _len(1, step) + _len(1, step),  # a step sent twice: merged, fields concatenated
        _len(2, field) + _len(1, step),  # the oneof ends on the step
        _len(1, step) + _len(2, field),  # ... or on the field
        _len(2, field) + _len(2, _len(5, b"last")),  # one field merged from two
    ]:
        for kind in (pb.ExchangeRequest, pb.ExchangeReply):
            assert _same(kind, wire) is not None


MALFORMED = {
    "truncated varint": _tag(2, 0) + b"\x80",
    "length past the end": _tag(1, 2) + _varint(50) + b"abc",
    "field number 0": _tag(0, 0) + b"\x01",
    "wire type 7": _tag(3, 7),
    "end group without a start": _tag(3, 4),
    "not UTF-8 in a name": _len(3, _len(1, b"\xff\xfe") + DATA),
    "not UTF-8 in the session id": _len(1, b"\xc3\x28") + _len(3, DATA),
    "a field cut short": _len(3, NAME + _tag(5, 2) + _varint(20) + b"x"),
    "varint of 11 bytes": _tag(2, 0) + b"\xff" * 10 + b"\x01",
}


@pytest.mark.parametrize("wire", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_input_is_refused_where_protobuf_refuses_it(wire: bytes) -> None:
    for kind in KINDS:
        _same(kind, wire)
        _same(kind, _len(1, wire))
    with pytest.raises(DecodeError):
        pb.StepRequest.FromString(wire)


def test_every_truncation_and_random_corruption_parses_as_protobuf_does() -> None:
    wire = _request().SerializeToString()
    framed = pb.ExchangeRequest(step=_request()).SerializeToString()
    for base, kind in [(wire, pb.StepRequest), (framed, pb.ExchangeRequest)]:
        for cut in range(len(base)):
            _same(kind, base[:cut])
        rng = np.random.default_rng(15)
        for _ in range(400):
            mutated = bytearray(base)
            for pos in rng.integers(0, len(base), size=rng.integers(1, 4)):
                mutated[pos] = int(rng.integers(0, 256))
            _same(kind, bytes(mutated))


def _raw_call(client: CouplerClient, method: str, stream: bool = False) -> object:
    ident = lambda b: b  # noqa: E731
    path = f"/landcoupler.v1.LandCoupler/{method}"
    channel = client._channel
    if stream:
        return channel.stream_stream(path, request_serializer=ident, response_deserializer=ident)
    return channel.unary_unary(path, request_serializer=ident, response_deserializer=ident)


@pytest.mark.parametrize("stream", [False, True], ids=["Step", "Exchange"])
def test_the_server_refuses_what_protobuf_cannot_parse_and_changes_nothing(
    client: CouplerClient, stream: bool
) -> None:
    session = client.open_session(**open_kwargs(), stream=stream)
    first = session.step(0, forcing(0))
    bad = _len(1, session.id.encode()) + _tag(2, 0) + _varint(1) + _len(3, _len(1, b"\xff"))
    call = _raw_call(client, "Exchange" if stream else "Step", stream)
    with pytest.raises(Exception) as info:
        if stream:
            list(call(iter([_len(1, bad)]), metadata=client.metadata))  # type: ignore[operator]
        else:
            call(bad, metadata=client.metadata)  # type: ignore[operator]
    err = CouplerRpcError.from_grpc(info.value)  # type: ignore[arg-type]
    field = "frame" if stream else "request"
    assert err.code().name == "INVALID_ARGUMENT"
    assert (err.field, err.rule) == (field, "protobuf")
    kind = "ExchangeRequest" if stream else "StepRequest"
    assert err.details() == (
        f"field '{field}': rule protobuf: the {field} is not a valid landcoupler.v1.{kind} "
        f"(Error parsing message with type 'landcoupler.v1.{kind}')"
    )
    md = dict(info.value.trailing_metadata())  # type: ignore[attr-defined]
    assert (md[FIELD_KEY], md[RULE_KEY]) == (field, "protobuf")
    again = session.step(0, forcing(0))  # the stored reply: the refusal changed nothing
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert session.step(1, forcing(1)).keys() == first.keys()
    session.close()


def _root(arr: np.ndarray) -> object:
    base: object = arr
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    return base.obj if isinstance(base, memoryview) else base


@pytest.mark.parametrize("stream", [False, True], ids=["Step", "Exchange"])
def test_a_clients_reply_arrays_are_views_of_the_received_message(
    client: CouplerClient, stream: bool
) -> None:
    session = client.open_session(**open_kwargs(), stream=stream)
    out = session.step(0, forcing(0))
    roots = {id(_root(arr)) for arr in out.values()}
    root = _root(next(iter(out.values())))
    assert isinstance(root, bytes) and len(roots) == 1  # one message, no copy per field
    assert len(root) > sum(arr.nbytes for arr in out.values())
    assert not any(arr.flags.writeable for arr in out.values())
    session.close()
