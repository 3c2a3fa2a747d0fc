"""Shared-memory segments of the co-located fast path (docs/wire.md, "Shared memory").

A segment is a POSIX shared-memory object: on Linux ``shm_open("/<name>")`` is the file
``/dev/shm/<name>`` on a tmpfs, so it is opened here as that file, which lets both sides refuse
what ``multiprocessing.shared_memory`` would accept blindly (symbolic links, hard links, other
file types) and keeps Python's resource tracker out (on Python < 3.13 it unlinks every segment a
process merely *opened* when that process exits). A C client reaches the same object with
``shm_open``.

Layout: a 128-byte header (:data:`MAGIC`, then the id of the session the segment belongs to),
then the arrays, each at a 64-byte aligned offset the step request names. The client creates the
segment (:meth:`Segment.create`, mode 0600, so the server must run as the same user), the server
maps it by name (:meth:`Segment.attach`) and checks its size and header. No protobuf, no gRPC.
"""

from __future__ import annotations

import mmap
import os
import re
import secrets
import stat
from pathlib import Path

import numpy as np

from coupler.errors import InvalidArgument

#: where POSIX shared-memory objects live on Linux (shm_open(3))
SHM_DIR = Path("/dev/shm")
PREFIX = "landcoupler-"
NAME = re.compile(r"^landcoupler-[A-Za-z0-9_-]{1,188}$")
HEADER_BYTES = 128
ALIGN = 64
MAGIC = b"LCSHM\x00\x00\x01"
_ID_BYTES = HEADER_BYTES - len(MAGIC) - 1


def aligned(nbytes: int) -> int:
    """``nbytes`` rounded up to the segment's alignment (64 bytes: a cache line)."""
    return -(-nbytes // ALIGN) * ALIGN


def header(session_id: str) -> bytes:
    """The 128-byte header of a segment of ``session_id``."""
    raw = session_id.encode()
    if len(raw) > _ID_BYTES:
        raise ValueError(f"session id of {len(raw)} bytes > {_ID_BYTES}")
    return (MAGIC + bytes([len(raw)]) + raw).ljust(HEADER_BYTES, b"\0")


def _refuse(field: str, rule: str, message: str) -> InvalidArgument:
    return InvalidArgument(message, field=field, rule=rule)


class Segment:
    """One mapped segment. ``ident`` is the object's (device, inode), so that unlinking by name
    removes this object and never a newer one of the same name."""

    def __init__(self, name: str, buffer: mmap.mmap, size: int, ident: tuple[int, int]) -> None:
        self.name = name
        self.size = size
        self.ident = ident
        self._buffer: mmap.mmap | None = buffer

    @property
    def path(self) -> Path:
        return SHM_DIR / self.name

    @classmethod
    def create(cls, size: int, session_id: str) -> Segment:
        """A new segment of ``size`` bytes (header written) for ``session_id``; mode 0600."""
        name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(12)}"
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(SHM_DIR / name, flags, 0o600)
        try:
            os.ftruncate(fd, size)
            info = os.fstat(fd)
            seg = cls(name, mmap.mmap(fd, size), size, (info.st_dev, info.st_ino))
        except BaseException:
            os.unlink(SHM_DIR / name)
            raise
        finally:
            os.close(fd)
        seg.buffer[:HEADER_BYTES] = header(session_id)
        return seg

    @classmethod
    def attach(cls, name: str, size: int, session_id: str) -> Segment:
        """Map the segment ``name`` that a client created for ``session_id``. InvalidArgument on
        field ``shared_memory.name`` (rules ``name``: not a landcoupler segment name; ``open``:
        no such object, not readable and writable, a link or not a regular file; ``session``:
        the header names another session) or ``shared_memory.size`` (rule ``size_match``: the
        object's size is not ``size``)."""
        field = "shared_memory.name"
        if not NAME.match(name):
            raise _refuse(field, "name", f"{name!r} is not a segment name ({NAME.pattern})")
        try:
            fd = os.open(SHM_DIR / name, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise _refuse(
                field, "open", f"cannot open {name!r} on the server's node: {exc.strerror}"
            ) from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
                raise _refuse(field, "open", f"{name!r} is not a shared-memory object")
            if info.st_size != size or size < HEADER_BYTES:
                raise _refuse(
                    "shared_memory.size", "size_match",
                    f"the segment {name!r} has {info.st_size} bytes, the request says {size}"
                    f" (at least {HEADER_BYTES})",
                )  # fmt: skip
            seg = cls(name, mmap.mmap(fd, size), size, (info.st_dev, info.st_ino))
        finally:
            os.close(fd)
        if seg.owner() != session_id:
            seg.close()
            raise _refuse(field, "session", f"{name!r} is not a segment of session {session_id}")
        return seg

    @property
    def buffer(self) -> mmap.mmap:
        if self._buffer is None:
            raise ValueError(f"segment {self.name} is closed")
        return self._buffer

    def owner(self) -> str | None:
        """The session id in the header (None: not a landcoupler header)."""
        head = bytes(self.buffer[:HEADER_BYTES])
        if not head.startswith(MAGIC):
            return None
        n = head[len(MAGIC)]
        if n > _ID_BYTES:
            return None
        return head[len(MAGIC) + 1 : len(MAGIC) + 1 + n].decode(errors="replace")

    def view(self, offset: int, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        """A writable array on the segment's bytes at ``offset`` (the caller checked bounds)."""
        count = int(np.prod(shape, dtype=np.int64))
        return np.frombuffer(self.buffer, dtype=dtype, count=count, offset=offset).reshape(shape)

    def unlink(self) -> bool:
        """Remove the name if it still names this object; True if it did."""
        try:
            info = os.stat(self.path, follow_symlinks=False)
            if (info.st_dev, info.st_ino) != self.ident:
                return False
            os.unlink(self.path)
        except FileNotFoundError:
            return False
        return True

    def close(self) -> None:
        """Unmap now, or (views still alive) when the last view is gone."""
        buffer, self._buffer = self._buffer, None
        if buffer is not None:
            try:
                buffer.close()
            except BufferError:  # numpy views exported: the mapping ends with them
                pass

    def __repr__(self) -> str:
        return f"Segment({self.name!r}, {self.size})"
