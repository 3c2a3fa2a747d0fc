"""The step messages of a remote session (``coupler.client.remote``): a StepRequest with its
fields inline, or the frames of an Exchange step, encoded in place from the arrays; and the
``Step``/``Exchange`` stub whose replies are parsed by :mod:`coupler.wire.reader`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc

from coupler._proto.landcoupler.v1 import landcoupler_pb2 as pb
from coupler.wire import encoded as E
from coupler.wire import fields as F
from coupler.wire import reader
from emulators import variables as V

CodecArg = F.CodecSpec | str | Mapping[str, F.CodecSpec | str | None] | None


class StepMessages:
    """How one session's steps are written: its id, the request codec (one spec or one per
    field), the reply codec (the session-wide spec; a per-field mapping is for requests) and
    the proto DType asked for the replies (0: unset, float64)."""

    def __init__(self, session_id: str, codec: CodecArg, reply_dtype: int) -> None:
        self.session_id = session_id
        self.codec = codec
        self.reply_codec = _reply_codec(codec)
        self.reply_dtype = int(reply_dtype)

    def spec(self, name: str) -> F.CodecSpec | str | None:
        return self.codec.get(name) if isinstance(self.codec, Mapping) else self.codec

    def request(
        self, index: int, fields: Mapping[str, Any], units: Mapping[str, str] | None,
        split: bool,
    ) -> list[Any] | pb.StepRequest | E.Encoded:  # fmt: skip
        """A StepRequest with the fields inline, or (``split``) the Exchange frames: a header
        announcing ``trailing_fields`` then one frame per field, each encoded in place."""
        stated = stated_units(fields, units)
        if all(_raw(self.spec(name)) for name in fields):
            return self._raw_request(index, fields, stated, split)
        head = pb.ExchangeRequest() if split else None
        req = head.step if head is not None else pb.StepRequest()
        req.session_id = self.session_id
        req.index = int(index)
        if self.reply_codec is not None:
            req.reply_codec.CopyFrom(F.codec_to_proto(self.reply_codec))
        req.reply_dtype = self.reply_dtype  # type: ignore[assignment]
        if head is None:
            for name, values in fields.items():
                F.encode_into(req.fields.add(), name, values, stated[name], self.spec(name))
            return req
        req.trailing_fields = len(fields)
        frames = [head]
        for name, values in fields.items():
            frame = pb.ExchangeRequest()
            F.encode_into(frame.field, name, values, stated[name], self.spec(name))
            frames.append(frame)
        return frames

    def _raw_request(
        self, index: int, fields: Mapping[str, Any], units: Mapping[str, str], split: bool
    ) -> list[Any] | E.Encoded:
        """:meth:`request` for raw fields, serialized straight from the arrays when sent
        (``coupler.wire.encoded``; the arrays are read, never written, until the step
        returns)."""
        raw = [E.raw_field(name, values, units[name]) for name, values in fields.items()]
        codec = None if self.reply_codec is None else F.codec_to_proto(self.reply_codec)
        if not split:
            return E.step_request(self.session_id, int(index), raw, codec, self.reply_dtype)
        head = pb.ExchangeRequest()
        head.step.session_id = self.session_id
        head.step.index = int(index)
        head.step.trailing_fields = len(raw)
        head.step.reply_dtype = self.reply_dtype  # type: ignore[assignment]
        if codec is not None:
            head.step.reply_codec.CopyFrom(codec)
        return [head, *(E.exchange_field(field) for field in raw)]


class StepStub:
    """``Step`` and ``Exchange`` of the LandCoupler service with :func:`coupler.wire.encoded.
    serialize` as the request serializer (a request may be an ``Encoded``) and replies parsed by
    :mod:`coupler.wire.reader` (``Received``: the fields' data are views of the received
    bytes)."""

    def __init__(self, channel: grpc.Channel) -> None:
        service = "/landcoupler.v1.LandCoupler/"
        self.Step = channel.unary_unary(
            service + "Step",
            request_serializer=E.serialize,
            response_deserializer=reader.deserializer(pb.StepReply),
        )
        self.Exchange = channel.stream_stream(
            service + "Exchange",
            request_serializer=E.serialize,
            response_deserializer=reader.deserializer(pb.ExchangeReply),
        )


def stated_units(fields: Mapping[str, Any], units: Mapping[str, str] | None) -> dict[str, str]:
    """The units sent with each field: the caller's, else the registry's ("" for unknown
    names: the server names the field)."""
    given = units or {}
    out = {}
    for name in fields:
        var = V.REGISTRY.get(name)
        out[name] = given[name] if name in given else (var.units if var is not None else "")
    return out


def _reply_codec(codec: CodecArg) -> F.CodecSpec | None:
    """The codec asked for replies: the session-wide spec (a per-field mapping is for requests)."""
    if codec is None or isinstance(codec, Mapping):
        return None
    return F.wire_codec(codec, "reply_codec")


def _raw(spec: F.CodecSpec | str | None) -> bool:
    """A field sent as raw bytes (no codec, no bit-rounding)."""
    parsed = F.CodecSpec.parse(spec)
    return parsed.id == "none" and not parsed.keepbits
