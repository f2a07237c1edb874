"""The stage sums ``y + a x`` of the Runge--Kutta steps (MATH B1, B2), in one dispatch.

An explicit RK step forms ``Y_i = y + h sum_j a_ij K_j`` and ``y + h sum_i b_i K_i`` and its
adjoint ``Kbar_i = h b_i lam + h sum_j a_ji Ybar_j``.  :func:`axpy`, :func:`add_scaled` and
:func:`scaled` are the only places these sums are written:

* C-contiguous NumPy float arrays of one dtype and at least ``MIN_SIZE`` entries take
  one Numba loop (``prange`` over rows): one pass over the ``(n, D)`` array instead of a
  temporary and three passes.  The loops round exactly as the NumPy expressions (one
  product, one sum, no FMA contraction), so results do not change;
* other NumPy arrays take the NumPy expression, with NumPy's promotion of the coefficient;
* arrays of any other namespace (CuPy, ``array_api_strict``, ...) take array-API
  arithmetic with the coefficient as a Python float, and stay in their namespace.

``out`` arguments let the caller reuse preallocated storage (a
:class:`~ocp_learn.arrays.Workspace`).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit, prange

from ..arrays import namespace, scalar

__all__ = ["axpy", "add_scaled", "scaled", "product_dtype"]

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
    """Whether ``x`` and ``y`` take the Numba loops."""
    return (type(x) is np.ndarray and type(y) is np.ndarray and x.ndim == 2
            and x.shape == y.shape and x.dtype == y.dtype and x.size >= MIN_SIZE
            and x.dtype in (np.float64, np.float32)
            and x.flags.c_contiguous and y.flags.c_contiguous)


def axpy(a: Any, x: Any, y: Any) -> Any:
    """``y += a x`` in place; returns ``y``."""
    if _fused(x, y):
        _axpy(x.dtype.type(a), x, y)
    else:
        y += scalar(a, namespace(y)) * x
    return y


def add_scaled(y: Any, a: Any, x: Any, out: Any = None) -> Any:
    """``y + a x`` in ``y``'s namespace and dtype, written into ``out`` (a new array when
    ``None``; ``out`` must have ``y``'s shape and dtype and may not overlap ``x``)."""
    if out is None:
        out = namespace(y).empty_like(y)
    if _fused(x, y) and _fused(x, out):
        _add_scaled(y, x.dtype.type(a), x, out)
        return out
    if out is not y:
        out[...] = y
    out += scalar(a, namespace(y)) * x
    return out


def product_dtype(a: Any, x: Any) -> Any:
    """The dtype of ``a x`` as :func:`scaled` forms it (NumPy's promotion for NumPy arrays:
    a NumPy float64 coefficient makes a float32 array float64)."""
    return np.result_type(a, x) if type(x) is np.ndarray else x.dtype


def scaled(a: Any, x: Any, out: Any = None) -> Any:
    """``a x``, written into ``out`` (of dtype :func:`product_dtype`) when given."""
    c = scalar(a, namespace(x))
    if out is None:
        return c * x
    if type(x) is np.ndarray:
        return np.multiply(c, x, out=out)
    out[...] = c * x
    return out
