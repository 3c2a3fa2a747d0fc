"""The LandCoupler servicer: proto <-> numpy, then the SessionManager. Nothing else.

Errors are raised as domain errors and become statuses in :mod:`coupler.wire.interceptors`
(through :mod:`coupler.wire.status`). The owner of every session call is the authenticated
principal (:class:`~coupler.wire.interceptors.Authenticator`).

Exchange framing (see ``docs/wire.md``): each step is a ``StepRequest`` frame, followed by
``trailing_fields`` ``Field`` frames when the client splits a big step; the reply mirrors the
request: inline fields in one ``StepReply``, or a ``StepReply`` header with ``trailing_fields``
followed by one ``Field`` frame per output. Measured on these machines (PLATFORM.md), one
protobuf message per field on a stream is ~2.5-3x faster than one message carrying a ~20 MB step,
because grpcio's Python path pays per-byte costs (buffer allocation and re-faulting) on huge
messages, while field-sized frames stay in the allocator's reuse range and decode while later
frames are still in flight.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping
from functools import partial
from typing import Any

import grpc
import numpy as np

from coupler._proto.landcoupler.v1 import landcoupler_pb2 as pb
from coupler._proto.landcoupler.v1 import landcoupler_pb2_grpc as pb_grpc
from coupler.core import registry
from coupler.core.manager import SessionManager
from coupler.core.session import Session
from coupler.errors import InvalidArgument
from coupler.metrics import ServiceMetrics
from coupler.spec import ObservationBatch
from coupler.spec.times import format_time
from coupler.wire import encoded as E
from coupler.wire import fields as F
from coupler.wire import frames as frames_
from coupler.wire import reader, route, spec_proto, status
from coupler.wire.interceptors import Authenticator, cancel_idle_streams
from coupler.wire.shared import SharedSegments
from coupler.wire.status import DeadlineExceeded
from emulators import variables as V

PROTOCOL = "landcoupler.v1"


class LandCouplerServicer(pb_grpc.LandCouplerServicer):
    """Thin adapter. ``max_field_bytes``: ceiling on one decoded field (bytes)."""

    def __init__(
        self,
        manager: SessionManager,
        authenticator: Authenticator,
        metrics: ServiceMetrics | None = None,
        max_field_bytes: int = F.DEFAULT_MAX_BYTES,
    ) -> None:
        self._manager = manager
        self._auth = authenticator
        self._metrics = metrics
        self._max_field_bytes = max_field_bytes
        #: the co-located fast path's mapped segments (coupler.wire.shared)
        self.shared = SharedSegments(max_field_bytes)
        self._streams: dict[int, tuple[grpc.ServicerContext, threading.Event]] = {}
        self._streams_lock = threading.Lock()
        self._draining = threading.Event()

    def drain(self) -> int:
        """Shutdown: Exchange streams end after their current step, and streams idle between
        steps are cancelled now (nothing of theirs is in flight). Returns how many were idle."""
        self._draining.set()
        return cancel_idle_streams(self._streams, self._streams_lock)

    # ---- helpers ---------------------------------------------------------------------------
    def _phase(self, phase: str, since: float) -> None:
        if self._metrics is not None:
            self._metrics.observe_phase(phase, time.perf_counter() - since)

    def _decode(self, msg: pb.Field, name: str | None = None, data: Any = None) -> np.ndarray:
        return F.decode(msg, self._max_field_bytes, name, data)

    def _add_fields(
        self, received: reader.Received, fields: dict[str, np.ndarray], units: dict[str, str]
    ) -> None:
        for msg, data in received.pairs:
            name = msg.name
            if not name:
                raise InvalidArgument("a field without a name", field="name", rule="non_empty")
            if name in fields:
                raise InvalidArgument(f"{name!r} sent twice in one step", field=name, rule="unique")
            fields[name] = self._decode(msg, data=data)
            units[name] = msg.units  # always passed: an empty string is a units refusal

    def _run_step(
        self,
        context: grpc.ServicerContext,
        session: Session,
        index: int,
        fields: Mapping[str, np.ndarray],
        units: Mapping[str, str],
    ) -> dict[str, np.ndarray]:
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0.0:
            raise DeadlineExceeded(
                f"the deadline passed before step {index} could start ({remaining:.3g} s left); "
                "the session was not changed",
                field="deadline",
                rule="time_remaining",
            )
        return session.step(index, fields, units or None)

    def _reply_dtype(self, request: pb.StepRequest) -> np.dtype:
        return F.reply_dtype(request.reply_dtype)

    def _reply_codec(self, request: pb.StepRequest) -> F.CodecSpec:
        if not request.HasField("reply_codec"):
            return F.CodecSpec()
        return F.codec_from_proto(request.reply_codec, "reply_codec")

    # ---- RPCs ------------------------------------------------------------------------------
    def Describe(self, request: pb.DescribeRequest, context: grpc.ServicerContext) -> Any:
        self._auth.principal(context)
        details = self._manager.describe()
        names = details.get("backends") if isinstance(details, dict) else None
        if isinstance(names, Mapping):
            names = list(names)
        variables = [
            pb.VariableInfo(
                name=v.name,
                units=v.units,
                direction=v.direction.value,
                long_name=v.long_name,
                valid_min=v.valid_min,
                valid_max=v.valid_max,
                required=v.required,
                observable=v.observable,
                positive=v.positive or "",
            )
            for v in V.REGISTRY.values()
        ]
        return pb.DescribeReply(
            server_version=_server_version(),
            protocol=PROTOCOL,
            backends=[str(n) for n in (names or registry.names())],
            variables=variables,
            codecs=list(F.CODECS),
            details_json=json.dumps(details, default=_json_default, sort_keys=True),
        )

    def OpenSession(self, request: pb.OpenSessionRequest, context: grpc.ServicerContext) -> Any:
        owner = self._auth.principal(context)
        elsewhere = route.elsewhere(context.invocation_metadata())
        if request.resume_from:
            session = self._manager.resume(request.resume_from, owner, elsewhere)
        else:
            session = self._manager.open(
                spec_proto.from_request(request, self._max_field_bytes), owner, elsewhere
            )
        return _opened(session)

    def Step(
        self, received: reader.Received | reader.Malformed | pb.StepRequest,
        context: grpc.ServicerContext,
    ) -> Any:  # fmt: skip
        t0 = time.perf_counter()
        parsed = reader.received(received, "request")
        request: pb.StepRequest = parsed.message
        if request.trailing_fields:
            raise InvalidArgument(
                "trailing_fields is only meaningful on Exchange",
                field="trailing_fields",
                rule="unary",
            )
        session = self._manager.get(request.session_id, self._auth.principal(context))
        if request.HasField("shared_memory"):
            return self._shared_step(context, session, request, t0)
        codec, dtype = self._reply_codec(request), self._reply_dtype(request)
        fields: dict[str, np.ndarray] = {}
        units: dict[str, str] = {}
        self._add_fields(parsed, fields, units)
        self._phase("decode", t0)
        out = self._run_step(context, session, request.index, fields, units)
        t1 = time.perf_counter()
        when = format_time(session.config.step_time(request.index))
        # raw fields are serialized (and rounded) straight from the arrays: coupler.wire.encoded
        if frames_.is_raw(codec):
            raw = frames_.raw_fields(out, dtype)
            encoded = E.step_reply(request.session_id, request.index, when, raw)
            self._phase("encode", t1)
            return encoded
        out = F.as_reply_dtype(out, dtype)
        reply = pb.StepReply(session_id=request.session_id, index=request.index, time_rfc3339=when)
        for name, values in out.items():
            F.encode_into(reply.fields.add(), name, values, frames_.units_of(name), codec)
        self._phase("encode", t1)
        return reply

    def _shared_step(
        self, context: grpc.ServicerContext, session: Session, request: pb.StepRequest, t0: float
    ) -> pb.StepReply:
        """A step whose arrays lie in shared memory (coupler.wire.shared): the inputs are
        copied out of the segment and the outputs written into it; the reply is metadata."""
        step = self.shared.inputs(session.id, request, status.caller_peer(context))
        self.shared.check_reply(step, session.config.reply_names(), session.config.n_cells)
        self._phase("decode", t0)
        out = self._run_step(context, session, request.index, step.fields, step.units)
        t1 = time.perf_counter()
        placed = self.shared.reply(session.id, step, out, frames_.units_of)
        reply = pb.StepReply(
            session_id=request.session_id, index=request.index, shared_fields=placed,
            time_rfc3339=format_time(session.config.step_time(request.index)),
        )  # fmt: skip
        self._phase("encode", t1)
        return reply

    def Exchange(
        self, request_iterator: Iterator[reader.Received | reader.Malformed | pb.ExchangeRequest],
        context: grpc.ServicerContext,
    ) -> Iterator[pb.ExchangeReply | E.Encoded]:  # fmt: skip
        waiting = threading.Event()
        key = id(context)
        with self._streams_lock:
            self._streams[key] = (context, waiting)
        try:
            owner = self._auth.principal(context)
            yield from self._exchange(iter(request_iterator), context, owner, waiting)
        finally:
            with self._streams_lock:
                self._streams.pop(key, None)

    def _exchange(
        self,
        frames: frames_.Frames,
        context: grpc.ServicerContext,
        owner: str,
        waiting: threading.Event,
    ) -> Iterator[pb.ExchangeReply | E.Encoded]:
        while not self._draining.is_set():
            waiting.set()
            got = next(frames, None)
            waiting.clear()
            if got is None:
                return
            t0 = time.perf_counter()
            parsed = reader.received(got, "frame")
            request, n_trailing = frames_.start_step(parsed)
            session = self._manager.get(request.session_id, owner)
            codec, dtype = self._reply_codec(request), self._reply_dtype(request)
            fields: dict[str, np.ndarray] = {}
            units: dict[str, str] = {}
            add = partial(self._add_fields, fields=fields, units=units)
            add(parsed)
            frames_.read_trailing(request, n_trailing, frames, add)
            self._phase("decode", t0)
            out = self._run_step(context, session, request.index, fields, units)
            t1 = time.perf_counter()
            when = format_time(session.config.step_time(request.index))
            yield from frames_.reply_frames(request, when, out, codec, dtype, n_trailing)
            self._phase("encode", t1)

    def Assimilate(self, request: pb.AssimilateRequest, context: grpc.ServicerContext) -> Any:
        session = self._manager.get(request.session_id, self._auth.principal(context))
        batches = []
        for i, b in enumerate(request.batches):
            p = f"batches[{i}]."
            batches.append(
                ObservationBatch(
                    type=b.type,
                    units=b.units,
                    values=self._decode(b.values, p + "values"),
                    errors=self._decode(b.errors, p + "errors"),
                    lat=self._decode(b.lat, p + "lat"),
                    lon=self._decode(b.lon, p + "lon"),
                    times=list(b.times_rfc3339),
                )
            )
        return pb.AssimilateReply(accepted=session.assimilate(batches), assimilated=True)

    def UpdateLandCover(
        self, request: pb.UpdateLandCoverRequest, context: grpc.ServicerContext
    ) -> Any:
        session = self._manager.get(request.session_id, self._auth.principal(context))
        if not request.HasField("land_cover_fractions"):
            raise InvalidArgument(
                "land_cover: the new fractions are required", field="land_cover", rule="required"
            )
        msg = request.land_cover_fractions
        if msg.units != "1":
            raise InvalidArgument(
                f"land_cover: units must be '1' (fractions), got {msg.units!r}",
                field="land_cover",
                rule="units",
            )
        change = session.update_cover(request.index, self._decode(msg, "land_cover"))
        reply = pb.UpdateLandCoverReply(
            cells_changed=change.cells_changed,
            water_residual=change.residual_water,
            energy_residual=change.residual_energy,
            carbon_residual=change.residual_carbon,
        )
        for name, values in change.released.items():
            F.encode_into(reply.released.add(), name, values, RELEASED_UNITS[name])
        return reply

    def Checkpoint(self, request: pb.CheckpointRequest, context: grpc.ServicerContext) -> Any:
        session = self._manager.get(request.session_id, self._auth.principal(context))
        url = session.checkpoint(request.url or None)
        return pb.CheckpointReply(url=url, next_index=session.next_index)

    def CloseSession(self, request: pb.CloseSessionRequest, context: grpc.ServicerContext) -> Any:
        self._manager.close(request.session_id, self._auth.principal(context))
        self.shared.release(request.session_id)  # unlinked: nothing left in /dev/shm
        return pb.CloseSessionReply()


#: units of the released amounts of ``UpdateLandCoverReply``
RELEASED_UNITS = {"released_water": "kg m-2", "released_heat": "J m-2",
                  "released_carbon": "kg m-2"}  # fmt: skip


def _opened(session: Session) -> pb.OpenSessionReply:
    cfg = session.config
    return pb.OpenSessionReply(
        session_id=session.id,
        next_index=session.next_index,
        outputs=list(cfg.reply_names()),
        cells=int(cfg.grid.lat.shape[0]),
        members=int(cfg.members),
        start_rfc3339=format_time(cfg.start),
        timestep=int(cfg.timestep),
        backend=cfg.backend,
    )


def _server_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("landcoupler")
    except metadata.PackageNotFoundError:  # pragma: no cover  (source tree without install)
        return "unknown"


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
