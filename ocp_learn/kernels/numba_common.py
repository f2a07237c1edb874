"""What the Numba kernels share: the fast-math flags and the split of samples into blocks.

All kernels are compiled with ``cache=True``; their thread count is set from Python
(:func:`ocp_learn.kernels.set_num_threads`), never inside a kernel.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit

__all__ = ["FASTMATH", "blocks", "acc_gemm", "acc_row_sums"]

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
