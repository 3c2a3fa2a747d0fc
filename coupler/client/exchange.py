"""The client side of one ``Exchange`` stream (see ``coupler.client.remote`` and docs/wire.md).

Requests go through a queue that feeds the bidirectional call; replies are read in order. A step
is a list of frames (a ``StepRequest``, optionally followed by its ``Field`` frames); the answer
is the reply header's inline fields plus its ``trailing_fields`` frames.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import grpc

from coupler._proto.landcoupler.v1 import landcoupler_pb2 as pb
from coupler.wire.reader import Received
from coupler.wire.status import CouplerRpcError

_END = object()


class Exchange:
    """One open Exchange stream: a request queue feeding the call, replies read in order."""

    def __init__(self, stub: Any, metadata: Sequence[tuple[str, str]]) -> None:
        """``stub``: ``coupler.client.remote``'s stub of the service's ``Exchange`` stream
        (frames sent serialized from the arrays, replies parsed by ``coupler.wire.reader``)."""
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._call = stub.Exchange(iter(self._queue.get, _END), metadata=metadata)
        self._replies: Iterator[Received] = iter(self._call)

    def _next(self) -> Received:
        try:
            return next(self._replies)
        except grpc.RpcError as exc:
            raise CouplerRpcError.from_grpc(exc) from None
        except StopIteration:
            raise CouplerRpcError(
                grpc.StatusCode.UNAVAILABLE, "the server ended the Exchange stream"
            ) from None

    def step(
        self, frames: list[Any], index: int, timeout: float | None
    ) -> tuple[list[tuple[pb.Field, Any]], str]:
        """Send step ``index``'s ``frames`` (messages or ``coupler.wire.encoded.Encoded``) and
        read its reply: each output ``Field`` with its data, and the reply's time."""
        timer = None
        expired = threading.Event()
        if timeout is not None:

            def expire() -> None:
                expired.set()
                self._call.cancel()

            timer = threading.Timer(timeout, expire)
            timer.daemon = True
            timer.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            for frame in frames:
                self._queue.put(frame)
            received = self._receive()
            if deadline is not None and time.monotonic() > deadline:
                # the reply beat the timer thread: the deadline passed all the same (as a unary
                # call's would); the caller drops this stream and a resend is answered as a resend
                expired.set()
                raise CouplerRpcError(grpc.StatusCode.CANCELLED, "deadline passed")
            return received
        except CouplerRpcError:
            if expired.is_set():
                raise CouplerRpcError(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"step {index} took longer than {timeout} s on the Exchange stream",
                ) from None
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def _receive(self) -> tuple[list[tuple[pb.Field, Any]], str]:
        first = self._next()
        if first.message.WhichOneof("frame") != "step":
            raise CouplerRpcError(grpc.StatusCode.INTERNAL, "Exchange: reply out of order")
        head_reply = first.message.step
        fields = list(first.pairs)
        for _ in range(head_reply.trailing_fields):
            frame_in = self._next()
            if frame_in.message.WhichOneof("frame") != "field":
                raise CouplerRpcError(grpc.StatusCode.INTERNAL, "Exchange: field frame expected")
            fields.extend(frame_in.pairs)
        return fields, head_reply.time_rfc3339

    def close(self, cancel: bool = False) -> None:
        """Half-close the stream (the server ends it after the last step); ``cancel`` drops
        it at once (after an error)."""
        self._queue.put(_END)
        if cancel:
            self._call.cancel()
