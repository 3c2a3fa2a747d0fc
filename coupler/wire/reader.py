"""Step messages parsed without copying their field data: the server's ``StepRequest`` and
Exchange request frames, the client's ``StepReply`` and Exchange reply frames.

The generated parser copies a big step's element bytes twice before numpy sees them: into its
own buffer while parsing, and into a new ``bytes`` object when ``Field.data`` is read
(measured at 311 040 cells: 0.7 + 0.7 ms for the 8.7 MB request, 1.5 + 1.6 ms for the 20 MB
float64 reply; ``make bench-wire``). Here one pass walks the protobuf wire format
(https://protobuf.dev/programming-guides/encoding/) just far enough to find each ``Field``'s
``data`` (field 5) and cut it out; everything else — every other field, unknown fields and
their order included — is parsed by the generated parser from the few bytes left, and each
``data`` is a read-only ``memoryview`` of the bytes gRPC received (no copy).

The walk accepts only what it fully understands; anything else (a group, a field number 0, a
truncated or over-long varint, a length past the end, a singular sub-message sent twice, both
frames of an Exchange oneof) goes whole to the generated parser, which gives protobuf's own
answer, with copies. So the result is always what ``FromString`` gives
(tests/coupler/wire/test_reader.py checks it field by field on valid, odd and malformed
input). A message protobuf cannot parse at all becomes a :class:`Malformed` on the server, which
the servicer refuses with INVALID_ARGUMENT (rule ``protobuf``); on the client it raises
protobuf's ``DecodeError``, as the generated deserializer does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from google.protobuf.message import DecodeError, Message

from coupler._proto.landcoupler.v1 import landcoupler_pb2 as pb
from coupler.errors import InvalidArgument

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_FIELD_DATA = 5  # Field.data
_STEP_FIELDS = 3  # StepRequest.fields / StepReply.fields
_FRAME_STEP, _FRAME_FIELD = 1, 2  # Exchange*.step / .field
_EMPTY = memoryview(b"")


class Received(NamedTuple):
    """A parsed step message and its fields' data.

    ``message``: the generated message (a step or an Exchange frame); ``pairs``: each ``Field``
    of the step (``fields``, in order) or the frame's one ``field``, with its data (a read-only
    ``memoryview`` of the received bytes, or ``bytes``). Read a field's data from here, never
    from ``Field.data`` (emptied by the fast path)."""

    message: Any
    pairs: tuple[tuple[pb.Field, Any], ...]


class Malformed(NamedTuple):
    """A request protobuf cannot parse (the servicer refuses it: field ``request``, rule
    ``protobuf``)."""

    type_name: str
    reason: str


class _Unexpected(Exception):
    """Something the fast walk leaves to the generated parser."""


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while pos < end and shift < 70:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise _Unexpected("varint")


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _entries(buf: memoryview, pos: int, end: int) -> Any:
    """(number, wire type, start of the tag, start of the value, end of the entry) of each
    entry in ``buf[pos:end]``; for LEN entries the value starts after the length."""
    while pos < end:
        start = pos
        tag, pos = _varint(buf, pos, end)
        number, wire = tag >> 3, tag & 7
        if number == 0 or tag > 0xFFFFFFFF:
            raise _Unexpected("tag")
        if wire == _VARINT:
            _, stop = _varint(buf, pos, end)
        elif wire == _I64:
            stop = pos + 8
        elif wire == _I32:
            stop = pos + 4
        elif wire == _LEN:
            size, pos = _varint(buf, pos, end)
            stop = pos + size
        else:  # groups (3, 4) and the invalid 6, 7
            raise _Unexpected("wire type")
        if stop > end:
            raise _Unexpected("truncated")
        yield number, wire, start, pos, stop
        pos = stop


def _strip_field(buf: memoryview, pos: int, end: int, out: bytearray) -> memoryview:
    """Copy a ``Field``'s entries but its data into ``out``; return the data (the last one
    sent, as protobuf keeps the last value of a singular field)."""
    data = _EMPTY
    for number, wire, start, value, stop in _entries(buf, pos, end):
        if number == _FIELD_DATA and wire == _LEN:
            data = buf[value:stop]
        else:
            out += buf[start:stop]
    return data


def _nested(out: bytearray, buf: memoryview, start: int, inner: bytearray) -> None:
    """Append a LEN entry: the original tag bytes, the new length, the stripped content."""
    tag_end = start
    while buf[tag_end] & 0x80:
        tag_end += 1
    out += buf[start : tag_end + 1]
    out += _encode_varint(len(inner))
    out += inner


def _strip_step(buf: memoryview, pos: int, end: int, out: bytearray, data: list[Any]) -> None:
    """A ``StepRequest``/``StepReply``: each ``fields`` entry stripped of its data."""
    for number, wire, start, value, stop in _entries(buf, pos, end):
        if number == _STEP_FIELDS and wire == _LEN:
            inner = bytearray()
            data.append(_strip_field(buf, value, stop, inner))
            _nested(out, buf, start, inner)
        else:
            out += buf[start:stop]


def _strip_frame(buf: memoryview, out: bytearray, data: list[Any]) -> None:
    """An Exchange frame: its one ``step`` or ``field`` stripped."""
    seen = 0
    for number, wire, start, value, stop in _entries(buf, 0, len(buf)):
        if number in (_FRAME_STEP, _FRAME_FIELD) and wire == _LEN:
            seen += 1
            if seen > 1:  # merged sub-messages, or the oneof switching: protobuf's to say
                raise _Unexpected("frame twice")
            inner = bytearray()
            if number == _FRAME_STEP:
                _strip_step(buf, value, stop, inner, data)
            else:
                data.append(_strip_field(buf, value, stop, inner))
            _nested(out, buf, start, inner)
        else:
            out += buf[start:stop]


def _pairs(message: Message, data: list[Any] | None) -> tuple[tuple[pb.Field, Any], ...]:
    """The step's or frame's fields with their data (``data`` None: the fields' own)."""
    if isinstance(message, pb.ExchangeRequest | pb.ExchangeReply):
        frame = message.WhichOneof("frame")
        if frame == "field":
            fields: list[pb.Field] = [message.field]
        elif frame == "step":
            fields = list(message.step.fields)
        else:
            fields = []
    else:
        fields = list(message.fields)
    if data is None:
        return tuple((f, f.data) for f in fields)
    return tuple(zip(fields, data, strict=True))


def parse(kind: type[Message], wire: bytes) -> Received:
    """``wire`` as a ``kind`` (``StepRequest``, ``StepReply``, ``ExchangeRequest`` or
    ``ExchangeReply``), the fields' data as views of ``wire``. Raises protobuf's
    ``DecodeError`` where ``kind.FromString`` does."""
    buf = memoryview(wire)
    out = bytearray()
    data: list[Any] = []
    try:
        if kind in (pb.ExchangeRequest, pb.ExchangeReply):
            _strip_frame(buf, out, data)
        else:
            _strip_step(buf, 0, len(buf), out, data)
    except _Unexpected:
        message = kind.FromString(wire)
        return Received(message, _pairs(message, None))
    try:
        message = kind.FromString(bytes(out))
    except DecodeError:
        kind.FromString(wire)  # protobuf's own error for the whole message
        raise
    try:
        return Received(message, _pairs(message, data))
    except ValueError:  # not one data per field (cannot happen): protobuf's parse, with copies
        message = kind.FromString(wire)
        return Received(message, _pairs(message, None))


def of_message(message: Message) -> Received:
    """A generated message as a :class:`Received` (the data stays in its fields)."""
    return Received(message, _pairs(message, None))


def deserializer(kind: type[Message]) -> Callable[[bytes], Received]:
    """A client's response deserializer: :func:`parse` for ``kind``."""

    def read(wire: bytes) -> Received:
        return parse(kind, wire)

    return read


def request_deserializer(kind: type[Message]) -> Callable[[bytes], Received | Malformed]:
    """The server's request deserializer: :func:`parse`, or a :class:`Malformed` naming
    protobuf's reason, which the servicer refuses (gRPC's own answer to a deserializer that
    raises would be INTERNAL)."""

    def read(wire: bytes) -> Received | Malformed:
        try:
            return parse(kind, wire)
        except DecodeError as exc:
            return Malformed(kind.DESCRIPTOR.full_name, str(exc))

    return read


def received(request: Received | Malformed | Message, field: str) -> Received:
    """What the servicer steps on: a :class:`Received` as is, a generated message (from a
    direct caller) wrapped, a :class:`Malformed` refused: InvalidArgument naming ``field``
    (``request`` or ``frame``), rule ``protobuf``."""
    if isinstance(request, Received):
        return request
    if isinstance(request, Malformed):
        raise InvalidArgument(
            f"the {field} is not a valid {request.type_name} ({request.reason})",
            field=field,
            rule="protobuf",
        )
    return of_message(request)
