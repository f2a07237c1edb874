r"""Numba kernels of the single-layer network ``f(z) = K2 tanh(K1 z + b1) + b2`` (MATH A1).

The samples are the rows of ``Z``; each thread takes one contiguous block of them and
walks it in tiles of :data:`TILE` rows.  Per tile every product with a weight matrix is a
GEMM (``np.dot``, BLAS) on the tile's rows, and ``tanh`` with ``1 - tanh^2`` come from the
vectorized activation of the potential (:func:`.activation_numba.act`, no libm calls); the
tile's hidden layer stays in per-thread scratch and the parameter cotangents are
accumulated per block (float64) and summed in Python.  Formulas (those of
:class:`ocp_learn.models.mlp.SingleLayerNet`):

* rhs: ``a = K1 z + b1``, ``s = tanh a``, ``f = K2 s + b2``;
* tangent: ``da = K1 dz + dK1 z + db1``, ``df = K2 ((1 - s^2) da) + dK2 s + db2``;
* adjoint: ``abar = (1 - s^2) K2^T fbar``, ``K2bar += fbar s^T``, ``b2bar += fbar``,
  ``K1bar += abar z^T``, ``b1bar += abar``, ``zbar = K1^T abar``.

All kernels ``cache=True``; thread count from Python (:func:`ocp_learn.kernels.set_num_threads`).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit, prange

from .activation_numba import act
from .numba_common import FASTMATH, acc_gemm, acc_row_sums, blocks, with_serial_blas

__all__ = ["TILE", "rhs", "jvp", "vjp", "NumbaMLPBackend"]

#: rows (samples) per tile: the tile's ``(TILE, m)`` hidden layer stays in the L1/L2 cache
TILE = 256


@njit(cache=True, fastmath=FASTMATH)
def _hidden(Zt, K1T, b1, A, S, Q, L):
    """``A = Zt K1^T + b1``, ``S = tanh A``, ``Q = 1 - S^2`` for the rows ``Zt`` of a tile
    (``L`` receives ``log(2 cosh A)``, which is not used; a separate array, since an
    output aliasing the input ``A`` keeps the activation's loop scalar)."""
    np.dot(Zt, K1T, A)
    nb, m = A.shape
    for r in range(nb):
        for j in range(m):
            A[r, j] += b1[j]
    act(A.reshape(nb * m), L.reshape(nb * m), S.reshape(nb * m), Q.reshape(nb * m))


@njit(cache=True, fastmath=FASTMATH)
def _add_row(X, v):
    """``X[r, :] += v`` for every row ``r``."""
    for r in range(X.shape[0]):
        for i in range(X.shape[1]):
            X[r, i] += v[i]


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def _rhs_kernel(Z, K1T, b1, K2T, b2, edges, out):
    m = K1T.shape[1]
    for blk in prange(edges.size - 1):
        A, S, Q, L = np.empty((TILE, m)), np.empty((TILE, m)), np.empty((TILE, m)), \
            np.empty((TILE, m))
        for r0 in range(edges[blk], edges[blk + 1], TILE):
            r1 = min(r0 + TILE, edges[blk + 1])
            nb = r1 - r0
            _hidden(Z[r0:r1], K1T, b1, A[:nb], S[:nb], Q[:nb], L[:nb])
            np.dot(S[:nb], K2T, out[r0:r1])
            _add_row(out[r0:r1], b2)


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def _jvp_kernel(Z, K1T, b1, K2T, b2, dZ, dK1T, db1, dK2T, db2, has_dz, has_dth, edges, out):
    m, d = K1T.shape[1], K1T.shape[0]
    for blk in prange(edges.size - 1):
        A, S, Q, L = np.empty((TILE, m)), np.empty((TILE, m)), np.empty((TILE, m)), \
            np.empty((TILE, m))
        dA, T1 = np.empty((TILE, m)), np.empty((TILE, m))
        T2 = np.empty((TILE, d))
        for r0 in range(edges[blk], edges[blk + 1], TILE):
            r1 = min(r0 + TILE, edges[blk + 1])
            nb = r1 - r0
            Zt = Z[r0:r1]
            _hidden(Zt, K1T, b1, A[:nb], S[:nb], Q[:nb], L[:nb])
            dA[:nb] = 0.0
            if has_dz:
                np.dot(dZ[r0:r1], K1T, dA[:nb])
            if has_dth:
                np.dot(Zt, dK1T, T1[:nb])
                for r in range(nb):
                    for j in range(m):
                        dA[r, j] += T1[r, j] + db1[j]
            for r in range(nb):
                for j in range(m):
                    dA[r, j] *= Q[r, j]
            np.dot(dA[:nb], K2T, out[r0:r1])
            if has_dth:
                np.dot(S[:nb], dK2T, T2[:nb])
                for r in range(nb):
                    for i in range(d):
                        out[r0 + r, i] += T2[r, i] + db2[i]


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def _vjp_kernel(Z, K1T, b1, K2, b2, Fb, edges, zbar, BK1, Bb1, BK2, Bb2):
    m, d = K1T.shape[1], K1T.shape[0]
    K1 = np.ascontiguousarray(K1T.T)
    for blk in prange(edges.size - 1):
        A, S, Q, L = np.empty((TILE, m)), np.empty((TILE, m)), np.empty((TILE, m)), \
            np.empty((TILE, m))
        Ab = np.empty((TILE, m))
        T21, T12 = np.empty((d, m)), np.empty((m, d))
        for r0 in range(edges[blk], edges[blk + 1], TILE):
            r1 = min(r0 + TILE, edges[blk + 1])
            nb = r1 - r0
            Zt, Fbt = Z[r0:r1], Fb[r0:r1]
            _hidden(Zt, K1T, b1, A[:nb], S[:nb], Q[:nb], L[:nb])
            np.dot(Fbt, K2, Ab[:nb])                          # sbar = fbar K2
            for r in range(nb):
                for j in range(m):
                    Ab[r, j] *= Q[r, j]                       # abar = (1 - s^2) sbar
            acc_gemm(BK2[blk], Fbt.T, S[:nb], T21)           # K2bar += fbar^T s
            acc_row_sums(Bb2[blk], Fbt.T)
            acc_gemm(BK1[blk], Ab[:nb].T, Zt, T12)           # K1bar += abar^T z
            acc_row_sums(Bb1[blk], Ab[:nb].T)
            np.dot(Ab[:nb], K1, zbar[r0:r1])                  # zbar = abar K1


def _c(a):
    return np.ascontiguousarray(a, dtype=np.float64)


@with_serial_blas
def rhs(P, Z):
    """``f(Z)`` of shape ``(n, d)``; ``P`` the named parameter views."""
    out = np.empty(Z.shape)
    _rhs_kernel(_c(Z), _c(P["K1"].T), _c(P["b1"]), _c(P["K2"].T), _c(P["b2"]),
                blocks(Z.shape[0]), out)
    return out


@with_serial_blas
def jvp(P, T, Z, dZ):
    """Tangent ``df``; ``T`` parameter tangents (or ``None``), ``dZ`` (or ``None``)."""
    out = np.empty(Z.shape)
    has_dz, has_dth = dZ is not None, T is not None
    dZ = np.zeros((1, 1)) if dZ is None else _c(dZ)
    T = P if T is None else T
    _jvp_kernel(_c(Z), _c(P["K1"].T), _c(P["b1"]), _c(P["K2"].T), _c(P["b2"]), dZ,
                _c(T["K1"].T), _c(T["b1"]), _c(T["K2"].T), _c(T["b2"]), has_dz, has_dth,
                blocks(Z.shape[0]), out)
    return out


@with_serial_blas
def vjp(P, Z, Fb):
    """``(zbar (n, d), dict of parameter cotangents summed over samples)``."""
    edges = blocks(Z.shape[0])
    nb = edges.size - 1
    names = ("K1", "b1", "K2", "b2")
    acc = [np.zeros((nb,) + P[k].shape) for k in names]
    zbar = np.empty(Z.shape)
    _vjp_kernel(_c(Z), _c(P["K1"].T), _c(P["b1"]), _c(P["K2"]), _c(P["b2"]), _c(Fb), edges, zbar,
                *acc)
    return zbar, {k: a.sum(axis=0) for k, a in zip(names, acc)}


class NumbaMLPBackend:
    """The ``numba`` backend of :class:`~ocp_learn.models.mlp.SingleLayerNet`: the tiled
    kernels of this module (same numbers as the numpy reference to rounding)."""

    name = "numba"

    def __init__(self, **options: Any) -> None:
        pass

    def rhs(self, P: dict, z: np.ndarray) -> np.ndarray:
        return rhs(P, z)

    def jvp(self, P: dict, T: dict | None, z: np.ndarray, dz: np.ndarray | None) -> np.ndarray:
        return jvp(P, T, z, dz)

    def vjp(self, P: dict, z: np.ndarray, fbar: np.ndarray) -> tuple[np.ndarray, dict]:
        return vjp(P, z, fbar)
