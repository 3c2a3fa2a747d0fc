"""Keep glibc from returning and re-faulting the big buffers of large gRPC messages.

Measured here (PLATFORM.md; ``examples/wire_transport.py``): with glibc's default dynamic mmap
threshold, every multi-MB protobuf message is allocated with mmap, returned on free and faulted
in again on the next step; raising the mmap and trim thresholds made 4-37 MB steps 1.5-2.5x
faster. The Makefile exports ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_`` for its own
targets; :func:`tune_allocator` does the same at run time (``mallopt``) for processes started
otherwise, e.g. ``landcoupler serve`` in a container, or an atmospheric driver that calls it.
A process-wide setting: only entry points call it, never an import.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 30  # 1 GiB: big message buffers stay on the heap and are reused
TRIM_THRESHOLD = (1 << 31) - 1  # ~2 GiB (mallopt takes a C int): keep freed heap mapped


def tune_allocator() -> bool:
    """Raise glibc's mmap and trim thresholds for this process. Returns False (and changes
    nothing) where there is no glibc ``mallopt``."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    log.debug("glibc mallopt thresholds raised: %s", ok)
    return ok
