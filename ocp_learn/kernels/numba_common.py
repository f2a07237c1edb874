"""What the Numba kernels share: the fast-math flags, the split of samples into blocks, the
accumulation of a tile's products, and BLAS on one thread inside threaded kernels.

All kernels are compiled with ``cache=True``; their thread count is set from Python
(:func:`ocp_learn.kernels.set_num_threads`), never inside a kernel.
"""
from __future__ import annotations

import contextlib
import functools

import numba
import numpy as np
from numba import njit

__all__ = ["FASTMATH", "blocks", "acc_gemm", "acc_row_sums", "serial_blas", "with_serial_blas"]

#: Reassociation lets LLVM vectorize the dot products (reductions) and use FMA; it changes
#: the rounding only (no finite-math assumptions: NaN and inf still propagate).
FASTMATH = {"reassoc", "contract"}


def blocks(n: int, nblocks: int | None = None) -> np.ndarray:
    """Edges of contiguous sample blocks, one per thread unless ``nblocks`` is given
    (``prange`` runs over the blocks; parameter cotangents are accumulated per block)."""
    nb_ = max(1, min(n, numba.get_num_threads() if nblocks is None else int(nblocks)))
    edges = np.linspace(0, n, nb_ + 1).round().astype(np.int64)
    return edges


@njit(cache=True, fastmath=FASTMATH)
def acc_gemm(acc, X, Y, scratch):
    """``acc += X Y`` through ``scratch``: the product by BLAS in the operands' dtype (a
    tile's share of a parameter cotangent), the sum in ``acc``'s (float64 accumulators)."""
    np.dot(X, Y, scratch)
    for j in range(acc.shape[0]):
        for k in range(acc.shape[1]):
            acc[j, k] += scratch[j, k]


@njit(cache=True, fastmath=FASTMATH)
def acc_row_sums(acc, X):
    """``acc[j] += sum_b X[j, b]`` (float64 sums; a column sum is ``acc_row_sums(acc, X.T)``)."""
    for j in range(X.shape[0]):
        sj = 0.0
        for b in range(X.shape[1]):
            sj += X[j, b]
        acc[j] += sj


@functools.lru_cache(maxsize=1)
def _blas_controller():
    """A ``threadpoolctl`` controller that sees the BLAS the kernels call (SciPy's, through
    ``np.dot`` in nopython code) and NumPy's; ``None`` without ``threadpoolctl``."""
    try:
        import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS numba's np.dot calls)
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover
        return None
    return ThreadpoolController()


def serial_blas():
    """A context in which BLAS runs on one thread while the Numba kernels run on several.

    The kernels' threads call BLAS themselves (``np.dot`` per tile), and a threaded
    OpenBLAS keeps its own threads spinning after each call: on a machine with as many
    cores as kernel threads the two pools then take turns on the cores (a CNF gradient at
    d = 64, m = 32 took 1.7 s on two threads against 0.9 s on one; 0.68 s with BLAS on one
    thread).  A no-op when the kernels run on one thread (about 50 microseconds otherwise)."""
    ctl = _blas_controller() if numba.get_num_threads() > 1 else None
    return contextlib.nullcontext() if ctl is None else ctl.limit(limits=1, user_api="blas")


def with_serial_blas(fn):
    """``fn`` run inside :func:`serial_blas` (the entry points of the Numba back ends)."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with serial_blas():
            return fn(*args, **kwargs)
    return wrapped
