"""Keep freed memory in the process: glibc ``malloc`` tuning for the large temporary arrays.

A training run allocates and frees the same large arrays (states, stages, cotangents of
``(n, D)`` floats, megabytes each) thousands of times.  With glibc's defaults a freed
block above the mmap threshold, or at the top of the heap above the trim threshold, goes
back to the kernel, and the next allocation of the same size page-faults every page in
again (and the kernel zeroes it): measured 17 000 page faults and 0.085 s of system time
per crowd-motion gradient at d = 100 (n = 8464, one thread), 1.13--1.30 s per gradient
against 0.96--1.10 s with the thresholds raised (``benchmarks/results`` notes; the
``mpiexec -n 2`` training run had 30 million minor faults, 9 % of its CPU time in the
kernel).  :func:`tune_malloc` raises both thresholds with ``mallopt``; the ``ocp-learn``
command calls it at start.  The cost is that freed memory stays mapped (the peak resident
size is unchanged; it is simply not returned between evaluations).

The sweeps write their own temporaries (stage states of unkept steps, the adjoint's stage
cotangents) into a :class:`~ocp_learn.arrays.Workspace` allocated once per sweep; the
arrays the fields return (right-hand sides, cotangents, kernel buffers) and the states a
tape keeps are still allocated per stage, which is what this tuning serves.

Only glibc has ``mallopt``; elsewhere :func:`tune_malloc` does nothing and returns False.
"""
from __future__ import annotations

import ctypes
import ctypes.util

__all__ = ["tune_malloc"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: glibc's upper bound for M_MMAP_THRESHOLD on 64-bit systems (4 MiB * sizeof(long))
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024


def tune_malloc(mmap_threshold: int = MMAP_THRESHOLD_MAX, trim_threshold: int = 1 << 30) -> bool:
    """Serve blocks up to ``mmap_threshold`` bytes from the heap and keep up to
    ``trim_threshold`` bytes of free heap in the process (glibc ``mallopt``).

    Returns True when both settings were applied, False without glibc.
    """
    for name, v in (("mmap_threshold", mmap_threshold), ("trim_threshold", trim_threshold)):
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise ValueError(f"{name} must be a positive int (bytes), got {v!r}")
    if mmap_threshold > MMAP_THRESHOLD_MAX:
        raise ValueError(f"mmap_threshold must be at most {MMAP_THRESHOLD_MAX} bytes (glibc's "
                         f"limit), got {mmap_threshold}")
    path = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(path)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    trim = min(int(trim_threshold), 2**31 - 1)
    return bool(mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))) and \
        bool(mallopt(_M_TRIM_THRESHOLD, trim))
