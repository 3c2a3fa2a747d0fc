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
of the segment. :class:`RemoteSession` lives in ``coupler.client.remote_session``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc
import numpy as np

from coupler._proto.landcoupler.v1 import landcoupler_pb2 as pb
from coupler._proto.landcoupler.v1 import landcoupler_pb2_grpc as pb_grpc
from coupler.client.common import spec_from_arguments
from coupler.client.remote_session import (
    DEFAULT_SPLIT_BYTES,
    MiB,
    RemoteSession,
    backoff,
    transient,
)
from coupler.client.stepmsgs import CodecArg, StepStub
from coupler.errors import InvalidArgument
from coupler.spec import SessionSpec
from coupler.wire import fields as F
from coupler.wire import spec_proto
from coupler.wire.status import CLIENT_KEY, REQUEST_ID_KEY, CouplerRpcError

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
                if not (retry and transient(err) and attempt < self.retries):
                    raise err from None
                backoff(self.backoff, attempt)
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


__all__ = ["REQUEST_ID_KEY", "CouplerClient", "CouplerRpcError", "RemoteSession"]
