"""The front of a multi-process server: every LandCoupler call forwarded, as raw bytes, to the
worker process that owns its session (``coupler.wire.front`` runs it; docs/architecture.md,
"Several worker processes").

The front never parses a step: the session id (and on Exchange the frame kind and the number
of field frames that follow) is read from the serialized request by :mod:`coupler.wire.route`,
and requests and replies pass through as bytes. What the front adds is only what a single
server knows about itself as a whole:

- **Where a session lives** (:class:`Router`): OpenSession goes to the live worker with the
  fewest sessions; the reply's session id is mapped to that worker. A call naming an unknown
  id goes to any worker, which refuses it exactly as a single server does (NOT_FOUND).
- **The caller**: the front authenticates (tokens, mutual TLS) and forwards the principal as
  ``x-landcoupler-client-bin`` (UTF-8; workers run without auth on a private socket), with
  the call's ``x-request-id`` and deadline. Refusals come back with the worker's code, message and
  trailing metadata (field, rule, request id), unchanged.
- **The session limit** over all workers: OpenSession carries how many sessions the other
  workers hold (``route.ELSEWHERE_KEY``), so the worker's manager refuses in its usual order.
- **A worker that died**: calls for its sessions are refused UNAVAILABLE (field
  ``session_id``, rule ``worker_lost``) at once, naming the worker and how it ended.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import grpc

from coupler._proto.landcoupler.v1 import landcoupler_pb2 as pb
from coupler.wire import route, status
from coupler.wire.frames import MAX_FIELDS_PER_STEP
from coupler.wire.interceptors import (
    SERVICE,
    Authenticator,
    cancel_idle_streams,
    current_request_id,
)
from coupler.wire.workers import Worker

_END = object()
UNARY = ("Describe", "OpenSession", "Step", "Assimilate", "UpdateLandCover", "Checkpoint",
         "CloseSession")  # fmt: skip


class Router:
    """Session id -> worker, and the choice of a worker for a new session."""

    def __init__(self, workers: list[Worker]) -> None:
        self.workers = workers
        self._where: dict[str, Worker] = {}
        self._load = [0] * len(workers)  # sessions + opens in flight, per worker
        self._lock = threading.Lock()

    def live(self) -> list[Worker]:
        return [w for w in self.workers if w.alive]

    def any(self) -> Worker:
        """A live worker (to answer what needs no particular one)."""
        for worker in self.workers:
            if worker.alive:
                return worker
        raise status.Unavailable(
            "every worker process of this server has ended", field="server", rule="workers"
        )

    def reserve(self) -> tuple[Worker, int]:
        """The live worker with the fewest sessions for a new one (counted in until
        :meth:`opened` or :meth:`release`), and how many sessions the other live ones hold."""
        with self._lock:
            live = self.live()
            if not live:
                self.any()
            worker = min(live, key=lambda w: (self._load[w.index], w.index))
            elsewhere = sum(self._load[w.index] for w in live if w is not worker)
            self._load[worker.index] += 1
        return worker, elsewhere

    def reserve_on(self, worker: Worker) -> None:
        """Count a new session in on ``worker`` (see :meth:`reserve`)."""
        with self._lock:
            self._load[worker.index] += 1

    def release(self, worker: Worker) -> None:
        with self._lock:
            self._load[worker.index] -= 1

    def opened(self, session_id: str, worker: Worker) -> None:
        """``worker`` now holds ``session_id`` (its reservation becomes the session)."""
        with self._lock:
            self._load[worker.index] += 1
            self._where[session_id] = worker

    def closed(self, session_id: str) -> None:
        with self._lock:
            worker = self._where.pop(session_id, None)
            if worker is not None:
                self._load[worker.index] -= 1

    def worker_of(self, session_id: str) -> Worker | None:
        with self._lock:
            return self._where.get(session_id)

    def loads(self) -> list[int]:
        """Sessions and opens in flight, per worker."""
        with self._lock:
            return list(self._load)

    def sessions(self) -> int:
        """Sessions on live workers."""
        with self._lock:
            return sum(1 for w in self._where.values() if w.alive)


def _timeout(context: grpc.ServicerContext) -> float | None:
    """What is left of the caller's deadline, for the forwarded call (None: no deadline, which
    grpc reports as ~9.2e18 s)."""
    remaining = context.time_remaining()
    return None if remaining is None or remaining > 1e9 else float(remaining)


def lost(worker: Worker, how: str, session_id: str = "") -> status.Unavailable:
    what = f"session {session_id!r} was lost with it" if session_id else "the call was lost"
    return status.Unavailable(
        f"worker {worker.index} (pid {worker.proc.pid}) of this server {how}: {what}; open the "
        "session again from its last checkpoint (open_session(resume_from=URL))",
        field="session_id", rule="worker_lost",
    )  # fmt: skip


class Forwarder:
    """The LandCoupler service of the front (generic handlers on raw bytes)."""

    def __init__(self, router: Router, authenticator: Authenticator) -> None:
        self._router = router
        self._auth = authenticator
        self._stubs: dict[tuple[int, str], Any] = {}
        self._streams: dict[int, tuple[grpc.ServicerContext, threading.Event]] = {}
        self._streams_lock = threading.Lock()
        self._draining = threading.Event()

    def handler(self) -> grpc.GenericRpcHandler:
        handlers = {name: grpc.unary_unary_rpc_method_handler(self._unary(name)) for name in UNARY}
        handlers["Exchange"] = grpc.stream_stream_rpc_method_handler(self.Exchange)
        return grpc.method_handlers_generic_handler(SERVICE, handlers)

    def drain(self) -> int:
        """As ``LandCouplerServicer.drain``: streams end after their current step; idle ones
        are cancelled now."""
        self._draining.set()
        return cancel_idle_streams(self._streams, self._streams_lock)

    # ---- plumbing --------------------------------------------------------------------------
    def _metadata(
        self, context: grpc.ServicerContext, *extra: tuple[str, str]
    ) -> tuple[tuple[str, str | bytes], ...]:
        md: list[tuple[str, str | bytes]] = [
            (status.CLIENT_BIN_KEY, self._auth.principal(context).encode()),
            (status.PEER_KEY, context.peer()),
            *extra,
        ]
        request_id = current_request_id()
        if request_id:
            md.append((status.REQUEST_ID_KEY, request_id))
        return tuple(md)

    def _stub(self, worker: Worker, method: str, stream: bool = False) -> Any:
        key = (worker.index, method)
        stub = self._stubs.get(key)
        if stub is None:
            assert worker.channel is not None
            path = f"/{SERVICE}/{method}"
            make = worker.channel.stream_stream if stream else worker.channel.unary_unary
            stub = self._stubs[key] = make(path)
        return stub

    def _relay(
        self, worker: Worker, exc: grpc.RpcError, context: grpc.ServicerContext, session: str
    ) -> NoReturn:
        """End the call with the worker's status, or with :func:`lost` if the worker died."""
        code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
        trailing = tuple(exc.trailing_metadata() or ()) if hasattr(exc, "trailing_metadata") else ()
        from_worker = any(item[0] == status.REQUEST_ID_KEY for item in trailing)
        broken = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN,
                  grpc.StatusCode.INTERNAL)  # fmt: skip
        if not from_worker and code in broken:  # the connection (or the process) broke
            how = worker.exit_description(wait=2.0)
            if how is not None:
                raise lost(worker, how, session)
        context.set_trailing_metadata(trailing)
        context.abort(code, exc.details() or "")
        raise AssertionError("unreachable: context.abort raises")  # pragma: no cover

    def _call(
        self, worker: Worker, method: str, request: bytes, context: grpc.ServicerContext,
        session: str = "", *extra: tuple[str, str],
    ) -> bytes:  # fmt: skip
        if not worker.alive:
            raise lost(worker, worker.exit_description() or "has ended", session)
        try:
            reply: bytes = self._stub(worker, method)(
                request, metadata=self._metadata(context, *extra),
                timeout=_timeout(context),
            )  # fmt: skip
        except grpc.RpcError as exc:
            self._relay(worker, exc, context, session)
        return reply

    # ---- unary calls -----------------------------------------------------------------------
    def _unary(self, method: str) -> Callable[[bytes, grpc.ServicerContext], bytes]:
        if method == "Describe":
            return self._describe
        if method == "OpenSession":
            return self._open

        def forward(request: bytes, context: grpc.ServicerContext) -> bytes:
            session = route.session_id(request)
            worker = self._router.worker_of(session) or self._router.any()
            reply = self._call(worker, method, request, context, session)
            if method == "CloseSession":
                self._router.closed(session)
            return reply

        return forward

    def _describe(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        reply = pb.DescribeReply.FromString(
            self._call(self._router.any(), "Describe", request, context)
        )
        details = json.loads(reply.details_json or "{}")
        details["open_sessions"] = self._router.sessions()
        details["workers"] = len(self._router.live())
        reply.details_json = json.dumps(details, sort_keys=True)
        return reply.SerializeToString()

    def _open(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        worker, elsewhere = self._router.reserve()
        try:
            reply = self._call(
                worker, "OpenSession", request, context, "", (route.ELSEWHERE_KEY, str(elsewhere))
            )
            session = route.session_id(reply)
            holder = self._router.worker_of(session)
            if holder is not None and holder is not worker and holder.alive:
                # a resumed session whose id is open on another worker: a single server would
                # have given it a fresh id, and so does that worker
                close = pb.CloseSessionRequest(session_id=session).SerializeToString()
                self._call(worker, "CloseSession", close, context)
                self._router.release(worker)
                worker = holder
                self._router.reserve_on(worker)
                reply = self._call(worker, "OpenSession", request, context)
                session = route.session_id(reply)
            self._router.opened(session, worker)
            return reply
        finally:
            self._router.release(worker)

    # ---- Exchange --------------------------------------------------------------------------
    def Exchange(
        self, request_iterator: Iterator[bytes], context: grpc.ServicerContext
    ) -> Iterator[bytes]:
        metadata = self._metadata(context)
        stream = _Stream(self, metadata, _timeout(context))
        waiting = threading.Event()
        key = id(context)
        with self._streams_lock:
            self._streams[key] = (context, waiting)
        context.add_callback(lambda: stream.order.put(_END))
        pump = threading.Thread(target=stream.pump, args=(request_iterator,), daemon=True)
        pump.start()
        try:
            while not self._draining.is_set():
                waiting.set()
                item = stream.order.get()
                waiting.clear()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                sub, session = item
                try:
                    head = next(sub.replies)
                    yield head
                    for _ in range(route.exchange_frame(head)[2]):
                        yield next(sub.replies)
                except StopIteration:  # the worker ended the stream (its drain): so do we
                    return
                except grpc.RpcError as exc:
                    self._relay(sub.worker, exc, context, session)
                stream.replied()
        finally:
            with self._streams_lock:
                self._streams.pop(key, None)
            stream.close()


class _Sub:
    """The front's Exchange stream to one worker."""

    def __init__(self, forwarder: Forwarder, worker: Worker, md: Any, timeout: Any) -> None:
        self.worker = worker
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        stub = forwarder._stub(worker, "Exchange", stream=True)
        self.call = stub(iter(self.queue.get, _END), metadata=md, timeout=timeout)
        self.replies: Iterator[bytes] = iter(self.call)


class _Stream:
    """One client Exchange stream: a pump thread reads the client's frames and sends each step
    to its session's worker; the handler reads the replies in the order of the steps. Steps go
    to another worker only once every earlier step is answered, so a refusal ends the stream
    before any later step ran, as on a single server."""

    def __init__(self, forwarder: Forwarder, metadata: Any, timeout: Any) -> None:
        self._forwarder = forwarder
        self._metadata = metadata
        self._timeout = timeout
        self.order: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._subs: dict[int, _Sub] = {}
        self._pending = 0
        self._cond = threading.Condition()
        self._closed = False

    def replied(self) -> None:
        with self._cond:
            self._pending -= 1
            self._cond.notify_all()

    def _sub(self, worker: Worker) -> _Sub:
        with self._cond:
            self._cond.wait_for(lambda: self._pending == 0 or self._closed)
            sub = self._subs.get(worker.index)
            if sub is None and not self._closed:
                sub = self._subs[worker.index] = _Sub(
                    self._forwarder, worker, self._metadata, self._timeout
                )
        if sub is None:
            raise status.Unavailable("the stream ended", field="server", rule="stream")
        return sub

    def pump(self, frames: Iterator[bytes]) -> None:
        router = self._forwarder._router
        current: _Sub | None = None
        try:
            frames = iter(frames)
            for frame in frames:
                kind, session, trailing = route.exchange_frame(frame)
                worker = router.worker_of(session) if kind == "step" else None
                if worker is not None and not worker.alive:
                    raise lost(worker, worker.exit_description() or "has ended", session)
                if worker is None:  # unknown session or a misplaced frame: whoever answers
                    worker = current.worker if current is not None else router.any()
                if current is None or current.worker is not worker:
                    current = self._sub(worker)
                current.queue.put(frame)
                for _ in range(min(trailing, MAX_FIELDS_PER_STEP + 1) if kind == "step" else 0):
                    nxt = next(frames, None)
                    if nxt is None:
                        break
                    current.queue.put(nxt)
                with self._cond:
                    self._pending += 1
                self.order.put((current, session))
            self.close()  # the client half-closed: so do we, towards every worker
            self.order.put(_END)
        except grpc.RpcError:  # the client went away
            self.order.put(_END)
        except Exception as exc:  # handed to the handler thread, which raises it
            self.order.put(exc)

    def close(self) -> None:
        """Half-close every worker stream (once)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            subs = list(self._subs.values())
            self._cond.notify_all()
        for sub in subs:
            sub.queue.put(_END)
