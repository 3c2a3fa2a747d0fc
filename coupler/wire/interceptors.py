"""Server interceptors: request ids + status mapping + refusal metrics, and bearer-token auth.

Order (outermost first): :class:`RequestInterceptor` then :class:`AuthInterceptor`. Both apply to
the ``landcoupler.v1.LandCoupler`` service only; health and reflection stay open (probes and
``grpcurl list`` need no token, and reveal nothing but the schema and liveness).

- Request ids: the caller's ``x-request-id`` metadata is echoed (or a fresh one generated) in the
  trailing metadata of every call, success or refusal, and appears in INTERNAL messages and logs.
- Errors: any exception escaping a handler becomes its status through :func:`status.abort` — the
  one mapping — and each refusal is counted by code (``ServiceMetrics.count_refusal``).
- Drain: once :meth:`Drain.begin` is called (SIGTERM), new calls are refused UNAVAILABLE
  (field ``server``, rule ``draining``) before any handler runs, while the calls in flight
  finish; :meth:`Drain.wait` returns when they have. (Without this, grpc's own shutdown answers a
  call that reaches an existing connection with a bare CANCELLED, which clients do not retry.)
- Auth: with tokens configured, ``authorization: Bearer <token>`` must name a known token, else
  UNAUTHENTICATED. The principal (the token's name; else the mTLS client certificate's subject
  CN; else the ``x-landcoupler-client`` metadata or "anonymous" on a server without auth) is
  the session owner, computed by :meth:`Authenticator.principal` in the servicer.
"""

from __future__ import annotations

import hmac
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NoReturn, Protocol

import grpc

from coupler.errors import Unauthenticated
from coupler.wire import status

SERVICE = "landcoupler.v1.LandCoupler"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
_TOKEN_NAME = re.compile(r"^[A-Za-z0-9._@+-]{1,128}$")
_current = threading.local()


class RefusalCounter(Protocol):
    """Where refusals are counted (``ServiceMetrics``, or a front's own counter)."""

    def count_refusal(self, code: str) -> None: ...


def current_request_id() -> str | None:
    """The request id of the LandCoupler call this thread is handling (None outside one): a
    front forwards it, so a worker's trailing metadata and logs carry the caller's id."""
    return getattr(_current, "request_id", None)


def parse_tokens(text: str, source: str = "tokens") -> dict[str, str]:
    """``name:token`` pairs separated by newlines, commas or whitespace; ``#`` starts a comment.

    Returns name -> token. Raises ValueError naming ``source`` for a malformed entry, a duplicate
    name or a token shared by two names.
    """
    tokens: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        for entry in re.split(r"[,\s]+", line.split("#", 1)[0].strip()):
            if not entry:
                continue
            name, sep, token = entry.partition(":")
            if not sep or not _TOKEN_NAME.match(name) or not token:
                raise ValueError(f"{source} line {lineno}: expected name:token, got {entry[:8]!r}…")
            if name in tokens:
                raise ValueError(f"{source} line {lineno}: duplicate token name {name!r}")
            if token in tokens.values():
                raise ValueError(f"{source} line {lineno}: token of {name!r} is not unique")
            tokens[name] = token
    return tokens


class Authenticator:
    """Who is calling. ``tokens``: name -> bearer token (empty = no token auth); ``mtls``: the
    server requires client certificates."""

    def __init__(self, tokens: Mapping[str, str] | None = None, mtls: bool = False) -> None:
        self._tokens = {name: tok.encode() for name, tok in (tokens or {}).items()}
        self.mtls = mtls

    @property
    def requires_token(self) -> bool:
        return bool(self._tokens)

    def token_name(self, metadata: Sequence[Any] | None) -> str:
        """The name of the presented bearer token; Unauthenticated if missing or unknown."""
        header = _get(metadata, "authorization")
        if header is None:
            raise Unauthenticated(
                "missing 'authorization: Bearer <token>' metadata",
                field="authorization", rule="bearer_token",
            )  # fmt: skip
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise Unauthenticated(
                "authorization metadata must be 'Bearer <token>'",
                field="authorization", rule="bearer_token",
            )  # fmt: skip
        given = presented.strip().encode()
        found = None
        for name, token in self._tokens.items():  # constant time per token, no early exit
            if hmac.compare_digest(given, token):
                found = name
        if found is None:
            raise Unauthenticated(
                "invalid bearer token", field="authorization", rule="bearer_token"
            )
        return found

    def principal(self, context: grpc.ServicerContext) -> str:
        """The session owner for this call (see the module docstring)."""
        metadata = context.invocation_metadata()
        if self._tokens:
            return self.token_name(metadata)
        if self.mtls:
            auth = context.auth_context()
            cn = auth.get("x509_common_name") or auth.get("x509_subject_alternative_name")
            if not cn:
                raise Unauthenticated(
                    "no client certificate subject", field="client_certificate", rule="mtls"
                )
            return "cn:" + cn[0].decode(errors="replace")
        named = _get(metadata, status.CLIENT_BIN_KEY) or _get(metadata, status.CLIENT_KEY)
        return named or "anonymous"


def _get(metadata: Sequence[Any] | None, key: str) -> str | None:
    for item in metadata or ():
        k, v = (item.key, item.value) if hasattr(item, "key") else item
        if k == key:
            return v.decode(errors="replace") if isinstance(v, bytes) else str(v)
    return None


def _ours(details: grpc.HandlerCallDetails) -> bool:
    return details.method.startswith(f"/{SERVICE}/")


def _rewrap(handler: grpc.RpcMethodHandler, wrap: Callable[..., Any]) -> grpc.RpcMethodHandler:
    """The same handler with its behaviour passed through ``wrap(behaviour, streaming_reply)``."""
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            wrap(handler.unary_unary, False), handler.request_deserializer,
            handler.response_serializer,
        )  # fmt: skip
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            wrap(handler.unary_stream, True), handler.request_deserializer,
            handler.response_serializer,
        )  # fmt: skip
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(
            wrap(handler.stream_unary, False), handler.request_deserializer,
            handler.response_serializer,
        )  # fmt: skip
    return grpc.stream_stream_rpc_method_handler(
        wrap(handler.stream_stream, True), handler.request_deserializer,
        handler.response_serializer,
    )  # fmt: skip


def cancel_idle_streams(
    streams: dict[int, tuple[grpc.ServicerContext, threading.Event]], lock: threading.Lock
) -> int:
    """Cancel the Exchange streams whose event says they wait between steps (nothing of theirs
    in flight) and return how many: the servicer's and the front's drain."""
    with lock:
        idle = [ctx for ctx, waiting in streams.values() if waiting.is_set()]
    for ctx in idle:
        ctx.cancel()
    return len(idle)


class Drain:
    """Calls in flight on the LandCoupler service, and the gate that closes at shutdown."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._draining = False

    @property
    def active(self) -> int:
        return self._active

    def enter(self) -> None:
        """Count a new call in; status.Unavailable once draining."""
        with self._cond:
            if self._draining:
                raise status.Unavailable(
                    "the server is shutting down: it takes no new calls (retry on another "
                    "replica; resume a session there from its checkpoint_url)",
                    field="server", rule="draining",
                )  # fmt: skip
            self._active += 1

    def leave(self) -> None:
        with self._cond:
            self._active -= 1
            if self._active == 0:
                self._cond.notify_all()

    def begin(self) -> None:
        """Refuse every call from now on."""
        with self._cond:
            self._draining = True

    def wait(self, timeout: float) -> bool:
        """Block until no call is in flight or ``timeout`` s passed; True if none is left."""
        with self._cond:
            return self._cond.wait_for(lambda: self._active == 0, timeout)


class RequestInterceptor(grpc.ServerInterceptor):
    """Request ids, the error -> status mapping, refusal counting and the drain gate
    (outermost)."""

    def __init__(self, metrics: RefusalCounter | None = None, drain: Drain | None = None) -> None:
        self._metrics = metrics
        self._drain = drain or Drain()

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None or not _ours(handler_call_details):
            return handler
        given = _get(handler_call_details.invocation_metadata, status.REQUEST_ID_KEY)
        request_id = given if given and _REQUEST_ID.match(given) else uuid.uuid4().hex

        def wrap(behaviour: Callable[..., Any], streaming: bool) -> Callable[..., Any]:
            def fail(context: grpc.ServicerContext, exc: Exception) -> NoReturn:
                if isinstance(exc, grpc.RpcError) and not context.is_active():
                    raise exc  # the call was cancelled (client gone, or shutdown): no status
                code = context.code() if hasattr(context, "code") else None
                if code is not None and code is not grpc.StatusCode.OK:
                    self._count(code)  # a handler that aborted by itself (not ours)
                    raise exc
                self._count(status.code_of(exc))
                status.abort(context, exc, request_id)

            def done(context: grpc.ServicerContext) -> None:
                context.set_trailing_metadata(((status.REQUEST_ID_KEY, request_id),))

            if streaming:

                def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                    entered = False
                    _current.request_id = request_id
                    try:
                        self._drain.enter()
                        entered = True
                        yield from behaviour(request, context)
                    except Exception as exc:
                        fail(context, exc)
                    finally:
                        if entered:
                            self._drain.leave()
                    done(context)

                return stream

            def unary(request: Any, context: grpc.ServicerContext) -> Any:
                entered = False
                _current.request_id = request_id
                try:
                    self._drain.enter()
                    entered = True
                    reply = behaviour(request, context)
                except Exception as exc:
                    fail(context, exc)
                finally:
                    if entered:
                        self._drain.leave()
                done(context)
                return reply

            return unary

        return _rewrap(handler, wrap)

    def _count(self, code: grpc.StatusCode) -> None:
        if self._metrics is not None:
            self._metrics.count_refusal(code.name)


class AuthInterceptor(grpc.ServerInterceptor):
    """Refuses calls to the LandCoupler service without a valid bearer token (UNAUTHENTICATED)
    before any handler runs, when tokens are configured."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._auth = authenticator

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None or not self._auth.requires_token or not _ours(handler_call_details):
            return handler
        try:
            self._auth.token_name(handler_call_details.invocation_metadata)
        except Unauthenticated as exc:
            refusal = exc

            def wrap(_behaviour: Callable[..., Any], streaming: bool) -> Callable[..., Any]:
                def refuse(_request: Any, _context: grpc.ServicerContext) -> Any:
                    raise refusal

                if streaming:

                    def refuse_stream(_request: Any, _context: grpc.ServicerContext) -> Any:
                        raise refusal
                        yield  # pragma: no cover  (makes this a generator)

                    return refuse_stream
                return refuse

            return _rewrap(handler, wrap)
        return handler
