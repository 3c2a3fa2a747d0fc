"""Replies serialized straight from the arrays: one copy from the backend's output into the
message gRPC sends.

Building a ``StepReply`` the ordinary way copies every output three times before gRPC sees it:
``ndarray.tobytes()``, protobuf's own copy on assignment to ``Field.data``, and
``SerializeToString()`` (measured at 311 040 cells, 8 float64 outputs: 8 + 21 ms of 30 ms,
docs/benchmarks.md, ``make bench-wire``). :class:`Encoded` instead keeps a message as a list of
chunks: the small parts serialized by protobuf itself, and each raw field's element bytes as a
``memoryview`` of the array; the server's response serializer (:func:`serialize`) joins them,
the one copy. The bytes are exactly what ``SerializeToString()`` writes for the same message
(fields in field-number order; tests/coupler/wire/test_encoded.py).

A field sent in a narrower dtype than it was computed in (``reply_dtype`` float32) is a
:class:`Cast` chunk: the rounding happens while the message is serialized, straight into the
bytes gRPC sends (``numpy.copyto``, the same rounding as ``astype``), so the float32 reply costs
one pass over the outputs instead of a rounding pass into new arrays plus the join
(docs/benchmarks.md, ``make bench-wire``).

Only raw (codec ``none``) fields take this path; compressed replies are built as messages.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import grpc
import numpy as np
from google.protobuf.message import Message

from coupler._proto.landcoupler.v1 import landcoupler_pb2 as pb
from coupler.wire import fields as F
from coupler.wire import reader

SERVICE = "landcoupler.v1.LandCoupler"
_WIRE_LEN = 2  # protobuf wire type "length-delimited"
_FIELD_DATA = 5  # Field.data
_REPLY_FIELDS = 3  # StepReply.fields
_EXCHANGE_STEP, _EXCHANGE_FIELD = 1, 2  # ExchangeReply.step / .field


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


# A bytes object of a given size whose contents the caller writes before anyone else sees it:
# ``PyBytes_FromStringAndSize(NULL, n)`` (CPython's documented way to fill a new bytes object),
# so a message is assembled in place, with no second copy.
# (Own prototypes, not ``ctypes.pythonapi.X.restype = ...``, which other code shares.)
_new_bytes = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_ssize_t)(
    ("PyBytes_FromStringAndSize", ctypes.pythonapi)
)
_bytes_data = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object)(
    ("PyBytes_AsString", ctypes.pythonapi)
)


class Cast:
    """A chunk that is ``values`` rounded to ``dtype`` (little-endian), written only when the
    message is serialized (:meth:`Encoded.tobytes`)."""

    __slots__ = ("dtype", "values")

    def __init__(self, values: np.ndarray, dtype: np.dtype) -> None:
        self.values = values.reshape(-1)
        self.dtype = np.dtype(dtype).newbyteorder("<")

    def __len__(self) -> int:
        return self.values.size * self.dtype.itemsize

    def write(self, out: np.ndarray) -> None:
        """Round into ``out`` (a uint8 array of ``len(self)`` bytes)."""
        np.copyto(out.view(self.dtype), self.values, casting="same_kind")


class Encoded:
    """A serialized protobuf message in chunks (``bytes``, byte ``memoryview``s of arrays, or
    :class:`Cast` chunks)."""

    __slots__ = ("chunks", "nbytes")

    def __init__(self, chunks: list[Any] | None = None) -> None:
        self.chunks: list[Any] = chunks if chunks is not None else []
        self.nbytes = sum(len(c) for c in self.chunks)

    def add(self, chunk: Any) -> None:
        if len(chunk):
            self.chunks.append(chunk)
            self.nbytes += len(chunk)

    def add_message(self, number: int, message: Encoded) -> None:
        """Append ``message`` as the length-delimited field ``number`` (always written, as
        protobuf writes a set sub-message, even an empty one)."""
        self.add(_varint(number << 3 | _WIRE_LEN) + _varint(message.nbytes))
        self.chunks.extend(message.chunks)
        self.nbytes += message.nbytes

    def tobytes(self) -> bytes:
        if not any(isinstance(c, Cast) for c in self.chunks):
            return b"".join(self.chunks)
        out = _new_bytes(None, self.nbytes)  # nbytes > 1: a Cast chunk is never empty
        room = (ctypes.c_char * self.nbytes).from_address(_bytes_data(out))
        view = np.frombuffer(room, np.uint8)  # type: ignore[call-overload]
        at = 0
        for chunk in self.chunks:
            end = at + len(chunk)
            if isinstance(chunk, Cast):
                chunk.write(view[at:end])
            else:
                view[at:end] = np.frombuffer(chunk, np.uint8)
            at = end
        return out


def serialize(message: Message | Encoded) -> bytes:
    """The response serializer of the LandCoupler service and the client's step request
    serializer: an :class:`Encoded` is joined (the one copy of its arrays), a protobuf message
    serialized as usual."""
    if isinstance(message, Encoded):
        return message.tobytes()
    return message.SerializeToString()


def raw_field(name: str, values: Any, units: str, dtype: Any = None) -> Encoded:
    """A ``Field`` of raw little-endian element bytes, the bytes a view of ``values`` (kept
    alive by the result; the caller must not write ``values`` before it is serialized). With a
    ``dtype`` other than ``values``' own, the field is ``values`` rounded to ``dtype``
    (:class:`Cast`: rounded during serialization, bitwise ``values.astype(dtype)``)."""
    arr = np.asarray(values)
    target = arr.dtype if dtype is None else np.dtype(dtype)
    code = F.proto_dtype(target)
    shape = arr.shape
    data: Any
    if target.newbyteorder("<") != arr.dtype.newbyteorder("<"):
        data = Cast(np.ascontiguousarray(arr), target)
    else:
        arr = np.require(arr, dtype=arr.dtype.newbyteorder("<"), requirements="C")
        data = memoryview(arr.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
    head = pb.Field(name=name, units=units, dtype=code, shape=shape)  # type: ignore[arg-type]
    out = Encoded([head.SerializeToString()])
    if len(data):
        out.add(_varint(_FIELD_DATA << 3 | _WIRE_LEN) + _varint(len(data)))
        out.add(data)
    return out


def _with_fields(head: Message, fields: list[Encoded], tail: Message) -> Encoded:
    """``head``'s fields (numbers below 3), the repeated ``fields`` (3), then ``tail``'s (above
    3): the layout of both ``StepRequest`` and ``StepReply``."""
    out = Encoded([head.SerializeToString()])
    for field in fields:
        out.add_message(_REPLY_FIELDS, field)
    out.add(tail.SerializeToString())
    return out


def step_reply(
    session_id: str,
    index: int,
    time_rfc3339: str,
    fields: list[Encoded],
    trailing_fields: int = 0,
) -> Encoded:
    """A ``StepReply`` with the raw ``fields`` inline (:func:`raw_field`)."""
    return _with_fields(
        pb.StepReply(session_id=session_id, index=index),
        fields,
        pb.StepReply(trailing_fields=trailing_fields, time_rfc3339=time_rfc3339),
    )


def step_request(
    session_id: str,
    index: int,
    fields: list[Encoded],
    reply_codec: pb.Codec | None = None,
    reply_dtype: int = 0,
) -> Encoded:
    """A ``StepRequest`` with the raw ``fields`` inline (the client's side of a raw step)."""
    tail = pb.StepRequest(reply_dtype=reply_dtype)  # type: ignore[arg-type]
    if reply_codec is not None:
        tail.reply_codec.CopyFrom(reply_codec)
    return _with_fields(pb.StepRequest(session_id=session_id, index=index), fields, tail)


def exchange_step(reply: Encoded) -> Encoded:
    """An ``ExchangeReply`` (or ``ExchangeRequest``: same numbers) whose frame is the step
    reply (request) ``reply``."""
    out = Encoded()
    out.add_message(_EXCHANGE_STEP, reply)
    return out


def exchange_field(field: Encoded) -> Encoded:
    """An ``ExchangeReply`` (or ``ExchangeRequest``) whose frame is the field ``field``."""
    out = Encoded()
    out.add_message(_EXCHANGE_FIELD, field)
    return out


def add_servicer(servicer: Any, server: grpc.Server) -> None:
    """Register ``servicer``'s LandCoupler methods on ``server`` as the generated
    ``add_LandCouplerServicer_to_server`` does, with :func:`serialize` as every response
    serializer (so a method may answer an :class:`Encoded`) and ``Step``'s and ``Exchange``'s
    requests parsed by :mod:`coupler.wire.reader` (the fields' data not copied)."""

    service = pb.DESCRIPTOR.services_by_name["LandCoupler"]
    kinds: dict[tuple[bool, bool], Callable[..., grpc.RpcMethodHandler]] = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }
    handlers = {}
    for method in service.methods:
        request = getattr(pb, method.input_type.name)
        make = kinds[(method.client_streaming, method.server_streaming)]
        read = request.FromString
        if method.name in ("Step", "Exchange"):
            read = reader.request_deserializer(request)
        handlers[method.name] = make(
            getattr(servicer, method.name),
            request_deserializer=read,
            response_serializer=serialize,
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
