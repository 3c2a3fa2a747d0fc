"""Exchange framing on the server side (``docs/wire.md``): reading one step's frames off a
stream, and writing its reply frames. Each step is a ``StepRequest`` frame, followed by
``trailing_fields`` ``Field`` frames when the client splits a big step; the reply mirrors the
request: inline fields in one ``StepReply``, or a ``StepReply`` header with ``trailing_fields``
followed by one ``Field`` frame per output (raw fields as :class:`~coupler.wire.encoded.Encoded`
frames, serialized straight from the arrays)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import numpy as np

from coupler._proto.landcoupler.v1 import landcoupler_pb2 as pb
from coupler.errors import InvalidArgument
from coupler.wire import encoded as E
from coupler.wire import fields as F
from coupler.wire import reader
from emulators import variables as V

#: Most Field frames one step may announce on Exchange.
MAX_FIELDS_PER_STEP = 256

Frames = Iterator[reader.Received | reader.Malformed | pb.ExchangeRequest]


def units_of(name: str) -> str:
    """The registry units of output ``name`` (an ``_spread`` output has its variable's)."""
    var = V.REGISTRY.get(name.removesuffix("_spread"))
    return var.units if var is not None else ""


def is_raw(codec: F.CodecSpec) -> bool:
    """Whether ``codec`` sends the element bytes as they are (no compression, no bit rounding)."""
    return codec.id == "none" and not codec.keepbits


def raw_fields(out: Mapping[str, np.ndarray], dtype: np.dtype) -> list[E.Encoded]:
    """The outputs as raw fields in the reply dtype (float64 ones as they are)."""
    return [
        E.raw_field(name, values, units_of(name), None if dtype == np.float64 else dtype)
        for name, values in out.items()
    ]


def start_step(parsed: reader.Received) -> tuple[pb.StepRequest, int]:
    """The ``StepRequest`` that frame ``parsed`` starts a step with, and how many trailing
    ``Field`` frames it announces (checked: the frame order, no shared memory on a stream, at
    most ``MAX_FIELDS_PER_STEP``)."""
    frame: pb.ExchangeRequest = parsed.message
    if frame.WhichOneof("frame") != "step":
        raise InvalidArgument(
            "expected a StepRequest frame to start a step, got "
            f"{frame.WhichOneof('frame') or 'an empty frame'}",
            field="frame", rule="frame_order",
        )  # fmt: skip
    request = frame.step
    if request.HasField("shared_memory"):
        raise InvalidArgument(
            "shared_memory is only meaningful on the unary Step",
            field="shared_memory", rule="unary",
        )  # fmt: skip
    n_trailing = int(request.trailing_fields)
    if n_trailing > MAX_FIELDS_PER_STEP:
        raise InvalidArgument(
            f"{n_trailing} trailing fields > {MAX_FIELDS_PER_STEP}",
            field="trailing_fields", rule="max_fields",
        )  # fmt: skip
    return request, n_trailing


def read_trailing(
    request: pb.StepRequest, n_trailing: int, frames: Frames, add: Callable[[reader.Received], None]
) -> None:
    """Hand the ``n_trailing`` ``Field`` frames that follow ``request`` to ``add``, in order;
    a missing one or another kind of frame is refused (``trailing_fields``/``frame_count``)."""
    for k in range(n_trailing):
        raw = next(frames, None)
        nxt = None if raw is None else reader.received(raw, "frame")
        if nxt is None or nxt.message.WhichOneof("frame") != "field":
            what = "the end of the stream" if nxt is None else "another frame"
            raise InvalidArgument(
                f"step {request.index}: field frame {k + 1} of {n_trailing} expected, "
                f"got {what}",
                field="trailing_fields", rule="frame_count",
            )  # fmt: skip
        add(nxt)


def reply_frames(
    request: pb.StepRequest,
    when: str,
    out: dict[str, np.ndarray],
    codec: F.CodecSpec,
    dtype: np.dtype,
    split: int,
) -> Iterator[pb.ExchangeReply | E.Encoded]:
    """The reply frames of an Exchange step at time ``when`` (RFC 3339) with outputs ``out``
    in ``dtype`` and ``codec``: inline, or (``split``, the request was split) a header then one
    frame per field."""
    if is_raw(codec):
        raw = raw_fields(out, dtype)
        if not split:
            yield E.exchange_step(E.step_reply(request.session_id, request.index, when, raw))
            return
        yield E.exchange_step(
            E.step_reply(request.session_id, request.index, when, [], trailing_fields=len(out))
        )
        for field in raw:
            yield E.exchange_field(field)
        return
    out = F.as_reply_dtype(out, dtype)
    header = pb.ExchangeReply()
    head = header.step
    head.session_id = request.session_id
    head.index = request.index
    head.time_rfc3339 = when
    if not split:
        for name, values in out.items():
            F.encode_into(head.fields.add(), name, values, units_of(name), codec)
        yield header
        return
    head.trailing_fields = len(out)
    yield header
    for name, values in out.items():
        frame_out = pb.ExchangeReply()
        F.encode_into(frame_out.field, name, values, units_of(name), codec)
        yield frame_out
