"""Fused ``y + a x`` updates for the Runge--Kutta stage sums (MATH B1, B2).

An explicit RK step forms ``Y_i = y + h sum_j a_ij K_j`` and ``y + h sum_i b_i K_i`` and its
adjoint ``Kbar_i = h b_i lam + h sum_j a_ji Ybar_j``.  Written as NumPy expressions
(``y.copy(); Y += (h a) * K``) each term costs a temporary and three passes over an
``(n, D)`` array; :func:`axpy` and :func:`add_scaled` make it one pass (one Numba loop,
``prange`` over rows).  They round exactly as the NumPy expressions (one product, one sum,
no FMA contraction), so results do not change.  Arrays that are not C-contiguous NumPy
float arrays of one dtype (CuPy arrays, views, small arrays) take the NumPy expression.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["axpy", "add_scaled"]

#: below this many entries the NumPy expression is as fast (call overhead)
MIN_SIZE = 4096


@njit(cache=True, parallel=True)
def _axpy(a, x, y):
    for i in prange(x.shape[0]):
        for j in range(x.shape[1]):
            y[i, j] += a * x[i, j]


@njit(cache=True, parallel=True)
def _add_scaled(y, a, x, out):
    for i in prange(x.shape[0]):
        for j in range(x.shape[1]):
            out[i, j] = y[i, j] + a * x[i, j]


def _fused(x, y):
    return (type(x) is np.ndarray and type(y) is np.ndarray and x.ndim == 2
            and x.shape == y.shape and x.dtype == y.dtype and x.size >= MIN_SIZE
            and x.dtype in (np.float64, np.float32)
            and x.flags.c_contiguous and y.flags.c_contiguous)


def axpy(a, x, y):
    """``y += a x`` in place; returns ``y``."""
    if _fused(x, y):
        _axpy(x.dtype.type(a), x, y)
    else:
        y += a * x
    return y


def add_scaled(y, a, x):
    """``y + a x`` as a new array of ``y``'s type and dtype."""
    if _fused(x, y):
        out = np.empty_like(y)
        _add_scaled(y, x.dtype.type(a), x, out)
        return out
    out = y.copy()
    out += a * x
    return out
