"""The server's side of the co-located fast path: a step whose arrays lie in shared memory.

A ``StepRequest`` with ``shared_memory`` names a segment the client created on this node
(:mod:`coupler.wire.shm`) and where each forcing field lies in it; the server maps the segment
once per session (:class:`SharedSegments` keeps the mapping), copies each field out of it (one
copy: the client cannot change what was validated while the step runs) and hands the copies to
the session exactly as the network path hands its decoded fields, so validation, refusals,
retries, records and replies are the network path's. The outputs are written into the segment at
``reply_offset``, and the reply lists where (``StepReply.shared_fields``).

Refusals, before the session is touched (nothing changes, the segment's reply region included):
FAILED_PRECONDITION field ``shared_memory`` rule ``colocated`` (the peer is not on this node:
neither loopback nor a Unix socket); INVALID_ARGUMENT ``shared_memory.name`` (``name``,
``open``, ``session``: the segment belongs to another session), ``shared_memory.size``
(``size_match``), ``shared_memory`` (``exclusive``: fields inline too), ``reply_codec``
(``shared_memory``: replies in shared memory are raw), ``shared_memory.reply_offset``
(``alignment``, ``bounds``), and per field its name with the rules of :func:`coupler.wire.
fields.layout` (``dtype``, ``shape``, ``max_bytes``) and ``alignment``, ``bounds`` (outside the
segment or over its header).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote

import numpy as np

from coupler._proto.landcoupler.v1 import landcoupler_pb2 as pb
from coupler.errors import FailedPrecondition, InvalidArgument
from coupler.wire import fields as F
from coupler.wire.shm import ALIGN, HEADER_BYTES, Segment, aligned

#: gRPC peer strings of a caller on this node (grpc's ``context.peer()``)
LOCAL_PEERS = ("unix:", "unix-abstract:", "ipv4:127.", "ipv6:[::1]:", "ipv6:[::ffff:127.")
F64 = np.dtype("<f8")


def local_peer(peer: str) -> bool:
    """True for a loopback or Unix-domain-socket peer (the only ones that share our node);
    grpc writes an IPv6 peer's brackets percent-encoded (``ipv6:%5B::1%5D:port``)."""
    return unquote(peer).startswith(LOCAL_PEERS)


@dataclass
class SharedStep:
    """One step's inputs, copied out of ``segment``, and where its reply goes."""

    segment: Segment
    fields: dict[str, np.ndarray]
    units: dict[str, str]
    reply_offset: int


class SharedSegments:
    """The mapped segments of this server's sessions (one per session; a session that sends
    another segment replaces its mapping; the first session to use a name keeps it)."""

    def __init__(self, max_field_bytes: int = F.DEFAULT_MAX_BYTES) -> None:
        self._max_field_bytes = max_field_bytes
        self._lock = threading.Lock()
        self._segments: dict[str, Segment] = {}  # session id -> its segment
        self._owners: dict[str, str] = {}  # segment name -> session id

    def __len__(self) -> int:
        return len(self._segments)

    def inputs(self, session_id: str, request: pb.StepRequest, peer: str) -> SharedStep:
        """The checked layout and the copied forcing of ``request`` (see the module docstring
        for the refusals). The mapping is kept only when the step succeeds (:meth:`reply`)."""
        if not local_peer(peer):
            raise FailedPrecondition(
                f"the caller {unquote(peer)} is not on the server's node (loopback or a "
                "Unix socket); send the fields on the wire instead",
                field="shared_memory", rule="colocated",
            )  # fmt: skip
        if request.fields:
            raise InvalidArgument(
                "fields are sent either inline or in shared memory, not both",
                field="shared_memory", rule="exclusive",
            )  # fmt: skip
        if request.HasField("reply_codec") and not _raw(request.reply_codec):
            raise InvalidArgument(
                "replies in shared memory are raw float64 (no codec)",
                field="reply_codec", rule="shared_memory",
            )  # fmt: skip
        if F.reply_dtype(request.reply_dtype) != F64:
            raise InvalidArgument(
                "replies in shared memory are float64 (no reply_dtype): the outputs are "
                "written into the segment as the session computed them",
                field="reply_dtype", rule="shared_memory",
            )  # fmt: skip
        shm = request.shared_memory
        segment = self._segment(session_id, shm.name, int(shm.size))
        try:
            return self._copy(segment, shm)
        except BaseException:
            if self._segments.get(session_id) is not segment:
                segment.close()  # mapped for this request only
            raise

    def _copy(self, segment: Segment, shm: pb.SharedMemory) -> SharedStep:
        fields: dict[str, np.ndarray] = {}
        units: dict[str, str] = {}
        for msg in shm.fields:
            name = msg.name
            if not name:
                raise InvalidArgument("a field without a name", field="name", rule="non_empty")
            if name in fields:
                raise InvalidArgument(f"{name!r} sent twice in one step", field=name, rule="unique")
            dtype, shape, nbytes = F.layout(name, msg.dtype, msg.shape, self._max_field_bytes)
            _within(name, int(msg.offset), nbytes, dtype.itemsize, segment.size)
            values = segment.view(int(msg.offset), dtype, shape).copy()
            values.flags.writeable = False
            fields[name] = values
            units[name] = msg.units
        return SharedStep(segment, fields, units, int(shm.reply_offset))

    def check_reply(self, step: SharedStep, names: tuple[str, ...], n_cells: int) -> None:
        """Refuse, before the step, a reply region that cannot hold ``names`` × (n_cells,)
        float64 (field ``shared_memory.reply_offset``, rules ``alignment``, ``bounds``)."""
        need = len(names) * aligned(n_cells * F64.itemsize)
        _within("shared_memory.reply_offset", step.reply_offset, need, ALIGN, step.segment.size)

    def reply(
        self,
        session_id: str,
        step: SharedStep,
        out: Mapping[str, np.ndarray],
        units_of: Callable[[str], str],
    ) -> list[pb.SharedField]:
        """Write the outputs into the reply region; keep the segment as the session's."""
        placed = []
        offset = step.reply_offset
        for name, values in out.items():
            arr = np.asarray(values, dtype=F64)
            np.copyto(step.segment.view(offset, F64, arr.shape), arr)
            field = pb.SharedField(name=name, units=units_of(name), dtype=pb.DTYPE_FLOAT64)
            field.shape[:] = arr.shape
            field.offset = offset
            placed.append(field)
            offset += aligned(arr.nbytes)
        self._bind(session_id, step.segment)
        return placed

    def release(self, session_id: str, unlink: bool = True) -> None:
        """Forget the session's segment (its views die with their steps); ``unlink``: remove
        its name too (CloseSession: a client that died leaves nothing in /dev/shm)."""
        with self._lock:
            segment = self._segments.pop(session_id, None)
            if segment is not None:
                self._owners.pop(segment.name, None)
        if segment is not None:
            if unlink:
                segment.unlink()
            segment.close()

    def close(self) -> None:
        """Server shutdown, after its sessions were closed: unlink and unmap every segment (a
        session resumed elsewhere gets a new id and its client a new segment)."""
        for session_id in list(self._segments):
            self.release(session_id)

    def _segment(self, session_id: str, name: str, size: int) -> Segment:
        with self._lock:
            owner = self._owners.get(name)
            current = self._segments.get(session_id)
        if owner is not None and owner != session_id:
            raise InvalidArgument(
                f"{name!r} is the segment of another session",
                field="shared_memory.name", rule="session",
            )  # fmt: skip
        if current is not None and current.name == name:
            if current.size != size:
                raise InvalidArgument(
                    f"the segment {name!r} has {current.size} bytes, the "
                    f"request says {size}",
                    field="shared_memory.size", rule="size_match",
                )  # fmt: skip
            return current
        return Segment.attach(name, size, session_id)

    def _bind(self, session_id: str, segment: Segment) -> None:
        with self._lock:
            old = self._segments.get(session_id)
            if old is segment:
                return
            self._segments[session_id] = segment
            if old is not None:
                self._owners.pop(old.name, None)
            self._owners[segment.name] = session_id
        if old is not None:
            old.close()  # the client moved to a bigger segment; it unlinks its old one


def _within(name: str, offset: int, nbytes: int, align: int, size: int) -> None:
    if offset % align:
        raise InvalidArgument(
            f"offset {offset} is not a multiple of {align}",
            field=name, rule="alignment",
        )  # fmt: skip
    if offset < HEADER_BYTES or offset + nbytes > size:
        raise InvalidArgument(
            f"bytes [{offset}, {offset + nbytes}) are not inside the segment's "
            f"data [{HEADER_BYTES}, {size})",
            field=name, rule="bounds",
        )  # fmt: skip


def _raw(codec: pb.Codec) -> bool:
    return codec.id in ("", "none") and not codec.keepbits
