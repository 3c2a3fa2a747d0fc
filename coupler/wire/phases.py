"""The wire's share of one step, as timeable pieces (``make bench-wire``, coupler.bench.wire):
each piece does one phase of a real step on real data, so a benchmark above the wire can time
them without touching generated code."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from coupler._proto.landcoupler.v1 import landcoupler_pb2 as pb
from coupler.wire import encoded as E
from coupler.wire import fields as F
from coupler.wire import reader
from emulators import variables as V

SESSION_ID = "x" * 32  # a session id's length
WHEN = "2001-07-01T13:00:00Z"


def request(fields: Mapping[str, np.ndarray]) -> pb.StepRequest:
    """The StepRequest a client sends for ``fields`` (registry units, raw)."""
    req = pb.StepRequest(session_id=SESSION_ID, index=1)
    for name, values in fields.items():
        F.encode_into(req.fields.add(), name, values, V.REGISTRY[name].units)
    return req


def request_encoded(fields: Mapping[str, np.ndarray]) -> E.Encoded:
    """The request of a raw step as the client builds it (coupler.wire.encoded)."""
    raw = [E.raw_field(k, v, V.REGISTRY[k].units) for k, v in fields.items()]
    return E.step_request(SESSION_ID, 1, raw)


def reply_message(out: Mapping[str, np.ndarray]) -> pb.StepReply:
    """The reply as protobuf messages (the path of compressed replies)."""
    reply = pb.StepReply(session_id=SESSION_ID, index=1, time_rfc3339=WHEN)
    for name, values in out.items():
        F.encode_into(reply.fields.add(), name, values, V.REGISTRY[name].units)
    return reply


def reply_encoded(out: Mapping[str, np.ndarray], dtype: Any = None) -> E.Encoded:
    """The reply of a raw step as the server builds it (coupler.wire.encoded), its fields
    rounded to ``dtype`` if given."""
    raw = [E.raw_field(k, v, V.REGISTRY[k].units, dtype) for k, v in out.items()]
    return E.step_reply(SESSION_ID, 1, WHEN, raw)


def sizes(fields: Mapping[str, np.ndarray], out: Mapping[str, np.ndarray]) -> tuple[bytes, int]:
    """(the serialized request, the serialized reply's size in bytes)."""
    return request(fields).SerializeToString(), reply_encoded(out).nbytes


def pieces(
    fields: Mapping[str, np.ndarray], out: Mapping[str, np.ndarray]
) -> tuple[list[tuple[str, str, Callable[[], Any]]], list[tuple[str, str, Callable[[], Any]]]]:
    """(the pieces before the session step, the pieces after it) as (side, phase, fn)."""
    wire = request(fields).SerializeToString()
    parsed = pb.StepRequest.FromString(wire)
    received = reader.parse(pb.StepRequest, wire)
    encoded = reply_encoded(out)
    reply_wire = E.serialize(encoded)
    reply_msg = pb.StepReply.FromString(reply_wire)
    got = reader.parse(pb.StepReply, reply_wire)
    out32_dtype = np.dtype("<f4")
    reply32 = E.serialize(reply_encoded(out, out32_dtype))
    raw_request = request_encoded(fields)
    before: list[tuple[str, str, Callable[[], Any]]] = [
        ("client", "encode request (chunks: views of the arrays)", lambda: request_encoded(fields)),
        ("client", "serialize request (join: the one copy)", lambda: E.serialize(raw_request)),
        (
            "client",
            "before: encode + serialize request as messages",
            lambda: request(fields).SerializeToString(),
        ),
        ("server", "parse request (reader: data as views)", lambda: _parse(pb.StepRequest, wire)),
        ("server", "wire decode (np.frombuffer of the views)", lambda: _decode(received)),
        ("server", "before: parse request (protobuf)", lambda: pb.StepRequest.FromString(wire)),
        (
            "server",
            "before: wire decode (protobuf's copy of each data)",
            lambda: [F.decode(f) for f in parsed.fields],
        ),
    ]
    after: list[tuple[str, str, Callable[[], Any]]] = [
        ("server", "encode reply (chunks: views of the arrays)", lambda: reply_encoded(out)),
        ("server", "serialize reply (join: the one copy)", lambda: E.serialize(encoded)),
        (
            "server",
            "before: encode + serialize reply as messages",
            lambda: reply_message(out).SerializeToString(),
        ),
        ("client", "parse reply (reader)", lambda: _parse(pb.StepReply, reply_wire)),
        ("client", "wire decode reply (views)", lambda: _decode(got)),
        ("client", "before: parse reply (protobuf)", lambda: pb.StepReply.FromString(reply_wire)),
        (
            "client",
            "before: wire decode reply (protobuf's copies)",
            lambda: [F.decode(f) for f in reply_msg.fields],
        ),
        (
            "server",
            "float32 reply: encode + serialize (rounded into the message: one pass)",
            lambda: E.serialize(reply_encoded(out, out32_dtype)),
        ),
        (
            "server",
            "float32 reply, before: round to new arrays, then encode + serialize",
            lambda: E.serialize(reply_encoded(F.as_reply_dtype(out, out32_dtype))),
        ),
        (
            "client",
            "float32 reply: parse (reader) + decode",
            lambda: _decode(_parse(pb.StepReply, reply32)),
        ),
    ]
    return before, after


def _parse(kind: Any, wire: bytes) -> reader.Received:
    return reader.parse(kind, wire)


def _decode(received: reader.Received) -> list[np.ndarray]:
    return [F.decode(f, data=data) for f, data in received.pairs]


def decoded(fields: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What the server's decode hands the session: read-only views of the received bytes."""
    received = reader.parse(pb.StepRequest, request(fields).SerializeToString())
    return {f.name: F.decode(f, data=data) for f, data in received.pairs}


def pb_step_reply(shared_fields: list[pb.SharedField]) -> pb.StepReply:
    """The StepReply of a co-located step whose outputs were written at ``shared_fields``."""
    return pb.StepReply(session_id=SESSION_ID, index=1, time_rfc3339=WHEN,
                        shared_fields=shared_fields)  # fmt: skip
