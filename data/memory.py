"""Giving memory a process has freed back to the system.

``revstack run`` runs every agent in one process. Python takes its objects of more than
512 bytes (a briefing's text, a row's strings) from the C library's ``malloc``, and
glibc keeps the pages of freed blocks for later ``malloc`` calls: only the top of a heap
goes back by itself. The frames that come next are polars' and DuckDB's, which allocate
elsewhere, so an agent's let-go strings stayed in the process's resident memory under
the next agent's peak (docs/scale.md, Weekly run on large). ``malloc_trim(0)`` hands
every whole free page of glibc's heaps back; it changes no value the process holds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable

__all__ = ["give_back"]


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    trim = getattr(libc, "malloc_trim", None)  # glibc's; not on macOS
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def give_back() -> bool:
    """Return the C heap's free pages to the system; whether any went back (False also
    where the C library has no ``malloc_trim``)."""
    trim = _malloc_trim()
    return bool(trim is not None and trim(0))
