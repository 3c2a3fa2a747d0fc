"""The one place where domain errors become gRPC status codes (and back, for clients).

Server side, :func:`abort` turns an exception into a status: a
:class:`~coupler.errors.CouplerError` maps to its code in :data:`CODES` with the message
``"field 'tas': rule valid_range: ..."`` and the trailing metadata ``landcoupler-field`` /
``landcoupler-rule``; anything unexpected becomes INTERNAL with the request id in the message,
and is logged with its traceback (never shown to the caller).

Client side, :class:`CouplerRpcError` is what every refusal raises, from the gRPC client and from
the in-process transport alike: ``.code()`` (a ``grpc.StatusCode``), ``.details()``, ``.field``,
``.rule`` and ``.request_id``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import grpc

from coupler import errors

log = logging.getLogger(__name__)

FIELD_KEY = "landcoupler-field"
RULE_KEY = "landcoupler-rule"
REQUEST_ID_KEY = "x-request-id"
#: metadata naming the caller on servers without authentication (the session owner)
CLIENT_KEY = "x-landcoupler-client"
#: the same, UTF-8 bytes (a front forwards its caller's principal so: a certificate subject
#: need not be ASCII); read before CLIENT_KEY
CLIENT_BIN_KEY = "x-landcoupler-client-bin"
#: the caller's own gRPC peer string, forwarded by a front (``serve --workers``) to its workers,
#: whose direct peer is the front's Unix socket; read only from a Unix-socket peer
PEER_KEY = "x-landcoupler-peer"


def caller_peer(context: object) -> str:
    """The peer the co-located check judges: ``context.peer()``, or, when the direct peer is a
    Unix socket (a front's worker connection), the peer the front forwarded in ``PEER_KEY`` —
    a local caller can only make itself look remote that way, never the reverse."""
    peer: str = context.peer()  # type: ignore[attr-defined]
    if peer.startswith("unix"):
        for key, value in context.invocation_metadata() or ():  # type: ignore[attr-defined]
            if key == PEER_KEY:
                return str(value)
    return peer


class DeadlineExceeded(errors.CouplerError):
    """The call's deadline leaves no time for the land phase (wire-level; the core never sees
    deadlines). Raised before the session is touched."""


class Unavailable(errors.CouplerError):
    """The server is draining (SIGTERM) and takes no new calls. Raised before any handler runs,
    so nothing changed; a client may retry elsewhere (UNAVAILABLE is the retryable code)."""


#: Domain error class -> gRPC status code. Subclasses map like their nearest listed base.
CODES: Mapping[type[errors.CouplerError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
}


def code_of(exc: BaseException) -> grpc.StatusCode:
    """The status code of an exception: its domain class's, else INTERNAL."""
    for cls in type(exc).__mro__:
        code = CODES.get(cls)
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL


def message_of(exc: errors.CouplerError) -> str:
    """``"field 'tas': rule valid_range: <message>"`` (parts omitted when unknown)."""
    prefix = ""
    if exc.field:
        prefix += f"field {exc.field!r}: "
    if exc.rule:
        prefix += f"rule {exc.rule}: "
    text = str(exc)
    return text if text.startswith(prefix) else prefix + text


def trailing_metadata(exc: BaseException, request_id: str | None) -> tuple[tuple[str, str], ...]:
    md: list[tuple[str, str]] = []
    if isinstance(exc, errors.CouplerError):
        if exc.field:
            md.append((FIELD_KEY, _ascii(exc.field)))
        if exc.rule:
            md.append((RULE_KEY, _ascii(exc.rule)))
    if request_id:
        md.append((REQUEST_ID_KEY, request_id))
    return tuple(md)


def _ascii(value: str) -> str:
    """Metadata values must be printable ASCII; anything else is escaped."""
    text = value.encode("ascii", "backslashreplace").decode("ascii")
    return "".join(c if 0x20 <= ord(c) < 0x7F else f"\\x{ord(c):02x}" for c in text)


def abort(context: grpc.ServicerContext, exc: BaseException, request_id: str | None) -> NoReturn:
    """End the RPC with the status of ``exc`` (raises, like ``context.abort``)."""
    code = code_of(exc)
    if code is grpc.StatusCode.INTERNAL:
        log.error("internal error, request id %s", request_id, exc_info=exc)
        details = f"internal error ({type(exc).__name__}); request id {request_id}"
    else:
        details = message_of(exc)  # type: ignore[arg-type]
    context.set_trailing_metadata(trailing_metadata(exc, request_id))
    context.abort(code, details)
    raise AssertionError("unreachable: context.abort raises")  # pragma: no cover


class CouplerRpcError(Exception):
    """A refused call. Behaves like ``grpc.RpcError`` for ``code()`` and ``details()``."""

    def __init__(
        self,
        code: grpc.StatusCode,
        details: str,
        *,
        field: str | None = None,
        rule: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{code.name}: {details}")
        self._code = code
        self._details = details
        self.field = field
        self.rule = rule
        self.request_id = request_id

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    @staticmethod
    def from_grpc(exc: grpc.RpcError) -> CouplerRpcError:
        """From a ``grpc.RpcError`` raised by a stub (reads the trailing metadata)."""
        code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
        details = exc.details() if hasattr(exc, "details") else str(exc)
        md = _metadata(exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None)
        return CouplerRpcError(
            code, details or "", field=md.get(FIELD_KEY), rule=md.get(RULE_KEY),
            request_id=md.get(REQUEST_ID_KEY),
        )  # fmt: skip

    @staticmethod
    def from_domain(exc: errors.CouplerError) -> CouplerRpcError:
        """From a core error raised in-process (same code and message as over the wire)."""
        return CouplerRpcError(code_of(exc), message_of(exc), field=exc.field, rule=exc.rule)


def _metadata(md: Sequence[Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in md or ():
        key, value = (item.key, item.value) if hasattr(item, "key") else item
        out[key] = value.decode() if isinstance(value, bytes) else value
    return out
