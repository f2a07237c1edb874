r"""Numba kernels of the single-layer network ``f(z) = K2 tanh(K1 z + b1) + b2`` (MATH A1).

Fused per sample (the hidden layer ``s = tanh(a)`` lives in per-thread scratch),
``prange`` over one contiguous block of samples per thread; parameter
cotangents are accumulated per block and summed in Python.  Formulas (those of
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

from .numba_common import FASTMATH, blocks

__all__ = ["rhs", "jvp", "vjp", "NumbaMLPBackend"]


@njit(cache=True, fastmath=FASTMATH)
def _hidden(zn, K1, b1, s):
    m, d = K1.shape
    for j in range(m):
        acc = b1[j]
        for k in range(d):
            acc += K1[j, k] * zn[k]
        s[j] = np.tanh(acc)


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def _rhs_kernel(Z, K1, b1, K2, b2, edges, out):
    m, d = K1.shape
    for blk in prange(edges.size - 1):
        s = np.empty(m)
        for n in range(edges[blk], edges[blk + 1]):
            _hidden(Z[n], K1, b1, s)
            for i in range(d):
                acc = b2[i]
                for j in range(m):
                    acc += K2[i, j] * s[j]
                out[n, i] = acc


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def _jvp_kernel(Z, K1, b1, K2, b2, dZ, dK1, db1, dK2, db2, has_dz, has_dth, edges, out):
    m, d = K1.shape
    for blk in prange(edges.size - 1):
        s = np.empty(m)
        da = np.empty(m)
        for n in range(edges[blk], edges[blk + 1]):
            zn = Z[n]
            _hidden(zn, K1, b1, s)
            for j in range(m):
                acc = 0.0
                if has_dz:
                    for k in range(d):
                        acc += K1[j, k] * dZ[n, k]
                if has_dth:
                    acc += db1[j]
                    for k in range(d):
                        acc += dK1[j, k] * zn[k]
                da[j] = (1.0 - s[j] * s[j]) * acc
            for i in range(d):
                acc = 0.0
                for j in range(m):
                    acc += K2[i, j] * da[j]
                if has_dth:
                    acc += db2[i]
                    for j in range(m):
                        acc += dK2[i, j] * s[j]
                out[n, i] = acc


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def _vjp_kernel(Z, K1, b1, K2, b2, Fb, edges, zbar, BK1, Bb1, BK2, Bb2):
    m, d = K1.shape
    for blk in prange(edges.size - 1):
        s = np.empty(m)
        ab = np.empty(m)
        BK1b, Bb1b, BK2b, Bb2b = BK1[blk], Bb1[blk], BK2[blk], Bb2[blk]
        for n in range(edges[blk], edges[blk + 1]):
            zn = Z[n]
            fb = Fb[n]
            _hidden(zn, K1, b1, s)
            for j in range(m):
                ab[j] = 0.0
            for i in range(d):
                fi = fb[i]
                Bb2b[i] += fi
                for j in range(m):
                    ab[j] += K2[i, j] * fi
                    BK2b[i, j] += fi * s[j]
            for k in range(d):
                zbar[n, k] = 0.0
            for j in range(m):
                aj = (1.0 - s[j] * s[j]) * ab[j]
                Bb1b[j] += aj
                for k in range(d):
                    BK1b[j, k] += aj * zn[k]
                    zbar[n, k] += aj * K1[j, k]


def _c(a):
    return np.ascontiguousarray(a, dtype=np.float64)


def rhs(P, Z):
    """``f(Z)`` of shape ``(n, d)``; ``P`` the named parameter views."""
    out = np.empty(Z.shape)
    _rhs_kernel(_c(Z), _c(P["K1"]), _c(P["b1"]), _c(P["K2"]), _c(P["b2"]), blocks(Z.shape[0]), out)
    return out


def jvp(P, T, Z, dZ):
    """Tangent ``df``; ``T`` parameter tangents (or ``None``), ``dZ`` (or ``None``)."""
    out = np.empty(Z.shape)
    has_dz, has_dth = dZ is not None, T is not None
    dZ = np.zeros((1, 1)) if dZ is None else _c(dZ)
    T = P if T is None else T
    _jvp_kernel(_c(Z), _c(P["K1"]), _c(P["b1"]), _c(P["K2"]), _c(P["b2"]), dZ,
                _c(T["K1"]), _c(T["b1"]), _c(T["K2"]), _c(T["b2"]), has_dz, has_dth,
                blocks(Z.shape[0]), out)
    return out


def vjp(P, Z, Fb):
    """``(zbar (n, d), dict of parameter cotangents summed over samples)``."""
    edges = blocks(Z.shape[0])
    nb = edges.size - 1
    names = ("K1", "b1", "K2", "b2")
    acc = [np.zeros((nb,) + P[k].shape) for k in names]
    zbar = np.empty(Z.shape)
    _vjp_kernel(_c(Z), _c(P["K1"]), _c(P["b1"]), _c(P["K2"]), _c(P["b2"]), _c(Fb), edges, zbar, *acc)
    return zbar, {k: a.sum(axis=0) for k, a in zip(names, acc)}


class NumbaMLPBackend:
    """The ``numba`` backend of :class:`~ocp_learn.models.mlp.SingleLayerNet`: the fused
    per-sample kernels of this module (same numbers as the numpy reference to rounding)."""

    name = "numba"

    def __init__(self, **options: Any) -> None:
        pass

    def rhs(self, P: dict, z: np.ndarray) -> np.ndarray:
        return rhs(P, z)

    def jvp(self, P: dict, T: dict | None, z: np.ndarray, dz: np.ndarray | None) -> np.ndarray:
        return jvp(P, T, z, dz)

    def vjp(self, P: dict, z: np.ndarray, fbar: np.ndarray) -> tuple[np.ndarray, dict]:
        return vjp(P, z, fbar)
