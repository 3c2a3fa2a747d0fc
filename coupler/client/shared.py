"""The client's side of the co-located fast path (``open_session(..., shared_memory=True)``).

Each session gets one shared-memory segment on this node (:mod:`coupler.wire.shm`), created at
its first step with room for that step's forcing and the session's outputs (and replaced by a
bigger one if a later step needs more). A step copies each forcing array into the segment (one
copy, in the caller's dtype), sends a ``StepRequest`` whose ``shared_memory`` names the segment
and where each field lies, and copies the outputs the server wrote into the segment out of it
(so replies stay valid after the next step, as on the network path). The segment is unlinked
when the session or the client closes, and, failing that, when the interpreter exits.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from typing import Any

import grpc
import numpy as np

from coupler._proto.landcoupler.v1 import landcoupler_pb2 as pb
from coupler.wire import fields as F
from coupler.wire.shm import HEADER_BYTES, Segment, aligned
from coupler.wire.status import CouplerRpcError

F64 = np.dtype("<f8")


def _drop(segment: Segment) -> None:
    segment.unlink()
    segment.close()


class SharedChannel:
    """One session's segment and the layout of its steps."""

    def __init__(self, session_id: str, outputs: tuple[str, ...], cells: int) -> None:
        self.session_id = session_id
        self.reply_bytes = len(outputs) * aligned(cells * F64.itemsize)
        self.segment: Segment | None = None
        #: where the outputs of the last request go in the segment
        self.reply_offset = 0
        #: held from writing a step's forcing to copying its outputs (one step at a time)
        self.lock = threading.RLock()
        self._finalizer: weakref.finalize | None = None

    def request(
        self, index: int, fields: Mapping[str, Any], units: Mapping[str, str]
    ) -> pb.StepRequest:
        """Write ``fields`` into the segment; the StepRequest that points at them."""
        arrays = {name: np.asarray(values) for name, values in fields.items()}
        codes = {name: F.proto_dtype(arr.dtype) for name, arr in arrays.items()}
        offsets, offset = {}, HEADER_BYTES
        for name, arr in arrays.items():
            offsets[name] = offset
            offset += aligned(arr.nbytes)
        segment = self._room(offset + self.reply_bytes)
        req = pb.StepRequest(session_id=self.session_id, index=int(index))
        shm = req.shared_memory
        shm.name, shm.size, shm.reply_offset = segment.name, segment.size, offset
        self.reply_offset = offset
        for name, arr in arrays.items():
            dtype = arr.dtype.newbyteorder("<")
            np.copyto(segment.view(offsets[name], dtype, arr.shape), arr, casting="equiv")
            shm.fields.add(
                name=name, units=units[name], dtype=codes[name],
                shape=arr.shape, offset=offsets[name],
            )  # fmt: skip
        return req

    def outputs(self, reply: pb.StepReply) -> dict[str, np.ndarray]:
        """Copies of the outputs the server wrote into the segment (read-only, as the network
        path's). A layout outside the segment is the server's fault: INTERNAL."""
        segment = self.segment
        assert segment is not None
        out = {}
        for msg in reply.shared_fields:
            dtype, shape, nbytes = F.layout(msg.name, msg.dtype, msg.shape)
            if msg.offset < HEADER_BYTES or msg.offset + nbytes > segment.size:
                raise CouplerRpcError(
                    grpc.StatusCode.INTERNAL,
                    f"the server placed {msg.name!r} outside the shared-memory segment",
                )
            values = segment.view(int(msg.offset), dtype, shape).copy()
            values.flags.writeable = False
            out[msg.name] = values
        return out

    def _room(self, size: int) -> Segment:
        if self.segment is not None and self.segment.size >= size:
            return self.segment
        self.close()
        self.segment = Segment.create(size, self.session_id)
        self._finalizer = weakref.finalize(self, _drop, self.segment)
        return self.segment

    def close(self) -> None:
        """Unlink and unmap the segment (idempotent; waits for a step in flight)."""
        with self.lock:
            if self._finalizer is not None:
                self._finalizer()  # runs _drop once
                self._finalizer = None
            self.segment = None
