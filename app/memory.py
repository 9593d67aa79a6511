"""How the C heap behaves under a long run: large frame buffers go back to the OS when freed.

Every frame allocates a few buffers of a megabyte or more (the decoded image, its NV12 or RGB
copy, the annotated JPEG source) from several threads. glibc serves allocations above
M_MMAP_THRESHOLD with mmap and returns them on free, but by default it raises that threshold
to the size of every mmapped block that is freed. After the first frame, frame-sized buffers
therefore come from the heap arenas, one per thread, up to 8 per core. Freed buffers leave holes
there that smaller, longer-lived allocations pin, so the resident size creeps up for hours.
A fixed threshold keeps frame buffers mmapped, and two arenas bound the per-thread copies.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # mallopt parameters from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 256 << 10  # bytes; above the tiles and tensors, below a 640x360 frame (345 KiB as NV12)
ARENA_MAX = 2


def tune_malloc() -> bool:
    """Fix glibc's mmap threshold and cap its arenas (unless MALLOC_* variables set them); True when applied.

    Call it before threads start: arenas made earlier stay. Other C libraries (musl) are left alone.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - glibc only: musl has mallopt as a stub
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    applied = True
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        applied &= bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    if "MALLOC_ARENA_MAX" not in os.environ:
        applied &= bool(mallopt(M_ARENA_MAX, ARENA_MAX))
    if not applied:
        log.debug("mallopt refused a setting; the C heap keeps its defaults")
    return applied
