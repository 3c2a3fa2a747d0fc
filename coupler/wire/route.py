"""What a front process needs to route a call, read from the serialized request without parsing
it: the session id, and on an Exchange stream the frame kind and how many field frames follow.

A protobuf message is a sequence of (tag, value) pairs; this walks the top-level pairs of a
message and skips every length-delimited value by its length, so a step's big ``fields`` are
never decoded or copied (a ``StepRequest`` or ``ExchangeRequest`` of any size costs a handful
of varint reads). The numbers are those of ``proto/landcoupler/v1/landcoupler.proto``:
``session_id = 1`` in every request and reply that names a session, ``StepRequest`` /
``StepReply.trailing_fields = 4``, ``ExchangeRequest`` / ``ExchangeReply`` frame ``step = 1``,
``field = 2``. A message this cannot read (truncated, a group) routes nowhere in particular; the
worker that gets it refuses it with the single-process server's own error.
"""

from __future__ import annotations

from typing import Literal

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
SESSION_ID = 1
TRAILING_FIELDS = 4
EXCHANGE_STEP, EXCHANGE_FIELD = 1, 2

Value = int | memoryview
Frame = Literal["step", "field", "other"]


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]  # IndexError on a truncated varint: caught by fields()
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def fields(data: bytes | memoryview, wanted: frozenset[int]) -> dict[int, Value]:
    """The last value of each top-level field number in ``wanted`` (varints as ints,
    length-delimited values as zero-copy views); {} for bytes that are not a readable message."""
    view = memoryview(data)
    found: dict[int, Value] = {}
    pos, end = 0, len(view)
    try:
        while pos < end:
            key, pos = _varint(view, pos)
            number, kind = key >> 3, key & 7
            if kind == _VARINT:
                value, pos = _varint(view, pos)
                if number in wanted:
                    found[number] = value
            elif kind == _LEN:
                size, pos = _varint(view, pos)
                if pos + size > end:
                    return {}
                if number in wanted:
                    found[number] = view[pos : pos + size]
                pos += size
            elif kind == _I64:
                pos += 8
            elif kind == _I32:
                pos += 4
            else:  # groups (never in our messages)
                return {}
    except (IndexError, ValueError):
        return {}
    return found


_SESSION = frozenset({SESSION_ID})
_STEP_HEAD = frozenset({SESSION_ID, TRAILING_FIELDS})
_FRAME = frozenset({EXCHANGE_STEP, EXCHANGE_FIELD})


def session_id(data: bytes | memoryview) -> str:
    """The ``session_id`` (field 1) of a serialized request or reply; "" when absent."""
    value = fields(data, _SESSION).get(SESSION_ID)
    if not isinstance(value, memoryview):
        return ""
    return bytes(value).decode("utf-8", errors="replace")


def exchange_frame(data: bytes | memoryview) -> tuple[Frame, str, int]:
    """An ``ExchangeRequest`` (or ``ExchangeReply``): its frame kind, and for a step frame its
    session id and ``trailing_fields``."""
    frame = fields(data, _FRAME)
    step = frame.get(EXCHANGE_STEP)
    if isinstance(step, memoryview):
        head = fields(step, _STEP_HEAD)
        sid = head.get(SESSION_ID)
        trailing = head.get(TRAILING_FIELDS, 0)
        return (
            "step",
            bytes(sid).decode("utf-8", errors="replace") if isinstance(sid, memoryview) else "",
            trailing if isinstance(trailing, int) else 0,
        )
    if isinstance(frame.get(EXCHANGE_FIELD), memoryview):
        return "field", "", 0
    return "other", "", 0


#: Metadata a front puts on OpenSession: how many sessions its other workers hold (and are
#: opening), so the worker's manager applies ``max_sessions`` to the whole server, in the
#: single-process order of checks and with its message. Ignored unless a non-negative integer.
ELSEWHERE_KEY = "x-landcoupler-sessions-elsewhere"


def elsewhere(metadata: object) -> int:
    """The :data:`ELSEWHERE_KEY` value of call metadata (0 when absent or malformed)."""
    for item in metadata or ():  # type: ignore[attr-defined]
        key, value = (item.key, item.value) if hasattr(item, "key") else item
        if key == ELSEWHERE_KEY:
            text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
            return int(text) if text.isdigit() and len(text) < 10 else 0
    return 0
