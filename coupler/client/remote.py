"""The gRPC client an atmospheric model's Python driver uses (re-exported by ``coupler.client``;
imports neither torch nor the core).

    client = CouplerClient("127.0.0.1:50051", token=...)
    with client.open_session(lat=lat, lon=lon, start="2001-06-01T00:00:00", timestep=3600,
                             outputs=["hfls", "hfss"]) as session:
        reply = session.step(0, {"tas": tas, ...})   # {"hfls": ndarray, "hfss": ndarray}

Refusals raise :class:`~coupler.wire.status.CouplerRpcError` (``.code()``, ``.field``, ``.rule``).
Steps are retried on UNAVAILABLE with exponential backoff: safe, because a resent index returns
the stored reply without advancing. ``stream=True`` sends steps over the Exchange stream, split
into one frame per field when a step's payload is at least ``split_bytes``;
``shared_memory=True`` (a server on this node) moves the arrays through a shared-memory segment
and sends only control messages (``coupler.client.shared``). ``reply_dtype="float32"`` has the
outputs sent as float32. Reply arrays are read-only views of the received message
(``coupler.wire.reader``), which they keep alive (copy them to write), or read-only copies out
of the segment.
"""

from __future__ import annotations

import random
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc
import numpy as np

from coupler._proto.landcoupler.v1 import landcoupler_pb2 as pb
from coupler._proto.landcoupler.v1 import landcoupler_pb2_grpc as pb_grpc
from coupler.client.common import LandCoverUpdate, spec_from_arguments
from coupler.client.exchange import Exchange
from coupler.client.shared import SharedChannel
from coupler.client.stepmsgs import CodecArg, StepMessages, StepStub, stated_units
from coupler.errors import InvalidArgument
from coupler.spec import ObservationBatch, SessionSpec
from coupler.spec.times import rfc3339
from coupler.wire import encoded as E
from coupler.wire import fields as F
from coupler.wire import spec_proto
from coupler.wire.status import CLIENT_KEY, REQUEST_ID_KEY, CouplerRpcError

MiB = 1 << 20
#: Steps with at least this many payload bytes go on Exchange as one frame per field.
DEFAULT_SPLIT_BYTES = 4 * MiB
T = TypeVar("T")


def _bytes(value: bytes | str | Path | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return Path(value).read_bytes()


class CouplerClient:
    """A channel to a landcoupler server.

    token: bearer token (sent as ``authorization`` metadata). root_certificates: PEM (bytes or a
    path) of the CA that signed the server (enables TLS); private_key / certificate_chain: the
    client's PEM key and certificate for mutual TLS. client_name: the ``x-landcoupler-client``
    owner on servers without auth. timeout: per-call deadline (s), None = none. retries /
    backoff: attempts and first delay (s) for UNAVAILABLE on steps. options: extra channel
    options, e.g. ``[("grpc.ssl_target_name_override", "localhost")]``. shared_memory: the
    default of :meth:`open_session`'s option (a server on this node; sessions opened with
    ``stream`` or ``codec`` step over the wire).
    """

    def __init__(
        self,
        target: str,
        token: str | None = None,
        root_certificates: bytes | str | Path | None = None,
        private_key: bytes | str | Path | None = None,
        certificate_chain: bytes | str | Path | None = None,
        client_name: str | None = None,
        max_message_bytes: int = 256 * MiB,
        timeout: float | None = 300.0,
        retries: int = 5,
        backoff: float = 0.05,
        options: Sequence[tuple[str, Any]] = (),
        shared_memory: bool = False,
    ) -> None:
        opts = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
            *options,
        ]
        secure = root_certificates is not None or private_key is not None
        if secure:
            creds = grpc.ssl_channel_credentials(
                _bytes(root_certificates), _bytes(private_key), _bytes(certificate_chain)
            )
            self._channel = grpc.secure_channel(target, creds, options=opts)
        else:
            self._channel = grpc.insecure_channel(target, options=opts)
        md: list[tuple[str, str]] = []
        if token:
            md.append(("authorization", f"Bearer {token}"))
        if client_name:
            md.append((CLIENT_KEY, client_name))
        self.metadata: tuple[tuple[str, str], ...] = tuple(md)
        self.target = target
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.shared_memory = shared_memory
        self.stub = pb_grpc.LandCouplerStub(self._channel)
        #: sessions stepping through shared memory, whose segments ``close`` unlinks
        self._shared: weakref.WeakSet[RemoteSession] = weakref.WeakSet()
        #: Step and Exchange taking requests serialized straight from the arrays (or messages)
        self.steps = StepStub(self._channel)

    # ---- plumbing --------------------------------------------------------------------------
    def call(
        self, method: Callable[..., T], request: Any, *, retry: bool = False,
        timeout: float | None = None,
    ) -> T:  # fmt: skip
        """Invoke a unary stub method; RpcError -> CouplerRpcError; UNAVAILABLE retried if
        ``retry``."""
        attempt = 0
        while True:
            try:
                return method(
                    request, metadata=self.metadata,
                    timeout=self.timeout if timeout is None else timeout,
                )  # fmt: skip
            except grpc.RpcError as exc:
                err = CouplerRpcError.from_grpc(exc)
                if not (retry and _transient(err) and attempt < self.retries):
                    raise err from None
                time.sleep(self.backoff * (2**attempt) * (0.5 + random.random()))
                attempt += 1

    # ---- API -------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """Capabilities: ``backends``, ``variables`` (name -> units, range, ...), ``codecs``,
        ``server_version`` and the core's ``details``."""
        import json

        reply = self.call(self.stub.Describe, pb.DescribeRequest(), retry=True)
        return {
            "server_version": reply.server_version,
            "protocol": reply.protocol,
            "backends": list(reply.backends),
            "codecs": list(reply.codecs),
            "variables": {
                v.name: {
                    "units": v.units,
                    "direction": v.direction,
                    "long_name": v.long_name,
                    "valid_min": v.valid_min,
                    "valid_max": v.valid_max,
                    "required": v.required,
                    "observable": v.observable,
                    "positive": v.positive or None,
                }
                for v in reply.variables
            },
            "details": json.loads(reply.details_json) if reply.details_json else {},
        }

    def open_session(
        self,
        spec: SessionSpec | None = None,
        /,
        *,
        resume_from: str | None = None,
        codec: CodecArg = None,
        stream: bool = False,
        split_bytes: int = DEFAULT_SPLIT_BYTES,
        shared_memory: bool | None = None,
        reply_dtype: Any = None,
        **fields: Any,
    ) -> RemoteSession:
        """Open a session of ``spec`` — a :class:`~coupler.spec.SessionSpec`, or its fields as
        keyword arguments (``lat``, ``lon``, ``start``, ``timestep``, ``outputs``, ``backend``,
        ``land_cover``, ``members``, ``assimilation``, ... : :meth:`SessionSpec.of`) — or
        resume one from ``resume_from``, a checkpoint URL. The spec is validated here first, so
        a bad one is refused (CouplerRpcError INVALID_ARGUMENT naming the field and rule)
        before anything is sent. Transport options: ``codec``, one spec for all fields (also
        used for replies) or a mapping field name -> spec; ``stream``, step over Exchange, one
        frame per field for steps of at least ``split_bytes``; ``shared_memory``, move the
        arrays through a shared-memory segment on this node (the server must be on it: reached
        through 127.0.0.1, ::1 or a ``unix:`` address; raw float64 fields, unary steps; None:
        the client's default); ``reply_dtype``, ``"float32"`` to have the outputs sent as
        float32 (rounded to nearest; half the bytes), None or ``"float64"`` for float64 (the
        default)."""
        try:
            dtype_code = F.reply_dtype_code(reply_dtype)
        except InvalidArgument as exc:
            raise CouplerRpcError.from_domain(exc) from None
        wire_only = stream or codec is not None or F.reply_dtype(dtype_code) != np.float64
        if shared_memory is None:
            shared_memory = self.shared_memory and not wire_only
        if shared_memory and wire_only:
            raise ValueError(
                "open_session: shared_memory steps are unary, raw and float64 "
                "(no stream/codec/reply_dtype)"
            )
        if resume_from:
            req = pb.OpenSessionRequest(resume_from=resume_from)
        else:
            req = spec_proto.to_request(spec_from_arguments(spec, fields))
        reply = self.call(self.stub.OpenSession, req)
        session = RemoteSession(
            self, reply, codec=codec, stream=stream, split_bytes=split_bytes,
            shared_memory=shared_memory, reply_dtype=dtype_code,
        )  # fmt: skip
        if shared_memory:
            self._shared.add(session)
        return session

    def close(self) -> None:
        """Close the channel; unlink the shared-memory segments of the sessions still open."""
        for session in list(self._shared):
            session.release_shared()
        self._channel.close()

    def __enter__(self) -> CouplerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _transient(err: CouplerRpcError, stream: bool = False) -> bool:
    """Worth resending (safe for steps: a resent index returns the stored reply): UNAVAILABLE,
    and on a stream also CANCELLED, which only the server causes there (shutdown drain; the
    client's own timeout is reported as DEADLINE_EXCEEDED)."""
    codes = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
    return err.code() in (codes if stream else codes[:1])


class RemoteSession:
    """One open session on a server (from :meth:`CouplerClient.open_session`)."""

    def __init__(
        self,
        client: CouplerClient,
        opened: pb.OpenSessionReply,
        *,
        codec: CodecArg = None,
        stream: bool = False,
        split_bytes: int = DEFAULT_SPLIT_BYTES,
        shared_memory: bool = False,
        reply_dtype: int = 0,
    ) -> None:
        self.client = client
        self.id: str = opened.session_id
        self.next_index: int = int(opened.next_index)
        self.outputs: tuple[str, ...] = tuple(opened.outputs)
        self.cells: int = int(opened.cells)
        self.members: int = int(opened.members)
        self.start: str = opened.start_rfc3339
        self.timestep: int = int(opened.timestep)
        self.backend: str = opened.backend
        self.stream = stream
        self.split_bytes = split_bytes
        self.last_time: str | None = None
        self._messages = StepMessages(self.id, codec, reply_dtype)
        self._exchange: Exchange | None = None
        self._shared = SharedChannel(self.id, self.outputs, self.cells) if shared_memory else None
        self._closed = False

    @property
    def codec(self) -> CodecArg:
        """The request codec: one spec, or one per field."""
        return self._messages.codec

    @property
    def reply_dtype(self) -> int:
        """The proto DType asked for the replies (0: unset, float64)."""
        return self._messages.reply_dtype

    def step(
        self, index: int, fields: Mapping[str, Any], units: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> dict[str, np.ndarray]:  # fmt: skip
        """Send step ``index``'s forcing ((cell,) arrays by name) and return the outputs by
        name. ``units`` (name -> UDUNITS string) default to the registry's, i.e. the caller
        promises registry units; the server checks what is stated. Resending the
        previous index returns the same reply without advancing."""
        if self._shared is not None:  # the arrays go through shared memory
            with self._shared.lock:
                shared = self._shared.request(index, fields, stated_units(fields, units))
                call = self.client.steps.Step
                reply = self.client.call(call, shared, retry=True, timeout=timeout).message
                out = self._shared.outputs(reply)
            self.last_time = reply.time_rfc3339
            self.next_index = max(self.next_index, int(index) + 1)
            return out
        if self.stream:
            payload = sum(np.asarray(v).nbytes for v in fields.values())
            split = payload >= self.split_bytes and len(fields) > 1
            request = self._messages.request(index, fields, units, split)
            frames: list[Any]
            if isinstance(request, list):
                frames = request
            elif isinstance(request, E.Encoded):
                frames = [E.exchange_step(request)]
            else:
                frames = [pb.ExchangeRequest(step=request)]
            reply_fields, time_str = self._stream_step(frames, int(index), timeout)
        else:
            req = self._messages.request(index, fields, units, False)
            reply = self.client.call(self.client.steps.Step, req, retry=True, timeout=timeout)
            reply_fields, time_str = list(reply.pairs), reply.message.time_rfc3339
        out = {f.name: F.decode(f, data=data) for f, data in reply_fields}
        self.last_time = time_str
        self.next_index = max(self.next_index, int(index) + 1)
        return out

    def _stream_step(
        self, frames: list[Any], index: int, timeout: float | None
    ) -> tuple[list[tuple[pb.Field, Any]], str]:
        attempt = 0
        while True:
            if self._exchange is None:
                self._exchange = Exchange(self.client.steps, self.client.metadata)
            try:
                return self._exchange.step(frames, index, timeout)
            except CouplerRpcError as err:
                self._exchange.close(cancel=True)
                self._exchange = None
                if not (_transient(err, stream=True) and attempt < self.client.retries):
                    raise
                time.sleep(self.client.backoff * (2**attempt) * (0.5 + random.random()))
                attempt += 1

    def checkpoint(self, url: str | None = None) -> str:
        """Write a checkpoint (to ``url``, else the session's checkpoint_url); returns its URL."""
        req = pb.CheckpointRequest(session_id=self.id, url=url or "")
        reply = self.client.call(self.client.stub.Checkpoint, req, retry=True)
        return reply.url

    def update_land_cover(self, index: int, fractions: Any) -> LandCoverUpdate:
        """New (cell, 8) land-cover fractions [1] from step ``index`` (the next step) on; the
        server remaps the tile state conserving water, heat and leaf carbon. A refusal raises
        INVALID_ARGUMENT (field ``land_cover``: shape, valid_range, sums_to_one) or
        FAILED_PRECONDITION (``index``/``step_order``) and changes nothing."""
        req = pb.UpdateLandCoverRequest(session_id=self.id, index=int(index))
        F.encode_into(req.land_cover_fractions, "land_cover", np.asarray(fractions), "1")
        reply = self.client.call(self.client.stub.UpdateLandCover, req)
        return LandCoverUpdate(
            cells_changed=int(reply.cells_changed),
            water_residual=float(reply.water_residual),
            energy_residual=float(reply.energy_residual),
            carbon_residual=float(reply.carbon_residual),
            released={f.name: F.decode(f) for f in reply.released},
        )

    def assimilate(
        self,
        type: str,
        values: Any,
        errors: Any,
        lat: Any,
        lon: Any,
        times: Sequence[Any],
        units: str = "",
    ) -> int:
        """Send one observation batch: (obs,) values and error standard deviations in the
        registry's units of ``type``, lat/lon in degrees, times (RFC 3339 strings or
        datetime64; window starts, or the overpass for ``ts``). Returns the number of
        observations queued for the analysis at the start of the next step; a refusal raises
        INVALID_ARGUMENT naming the field and rule (nothing is queued), FAILED_PRECONDITION for
        a session without assimilation."""
        return self.assimilate_batches(
            [ObservationBatch(type, values, errors, lat, lon, list(times), units)]
        )

    def assimilate_batches(self, batches: Sequence[ObservationBatch]) -> int:
        """Send several batches in one request (accepted or refused as a whole)."""
        req = pb.AssimilateRequest(session_id=self.id)
        for b in batches:
            batch = req.batches.add(type=b.type, units=b.units)
            for name in ("values", "errors", "lat", "lon"):
                arr = np.asarray(getattr(b, name))
                F.encode_into(getattr(batch, name), name, arr)
            batch.times_rfc3339.extend(rfc3339(t) for t in b.times)
        return int(self.client.call(self.client.stub.Assimilate, req).accepted)

    def close(self) -> None:
        """Close the session on the server (flushes its record). Idempotent."""
        if self._closed:
            return
        if self._exchange is not None:
            self._exchange.close()
            self._exchange = None
        try:
            req = pb.CloseSessionRequest(session_id=self.id)
            self.client.call(self.client.stub.CloseSession, req)
        finally:
            self.release_shared()
        self._closed = True

    def release_shared(self) -> None:
        """Unlink this session's shared-memory segment (the next step makes a new one)."""
        if self._shared is not None:
            self._shared.close()

    def __enter__(self) -> RemoteSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["REQUEST_ID_KEY", "CouplerClient", "CouplerRpcError", "RemoteSession"]
