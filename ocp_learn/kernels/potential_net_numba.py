r"""The network part of the potential in Numba, per sample, and the packed kernel arguments.

The potential's parameters travel through the kernels as one :class:`Params` tuple
(``w, A, b, c, K0, b0, K, bK``; MATH D1), and the per-block scratch of the forward pass
and of its adjoint as :class:`Forward` and :class:`Adjoint` tuples (numba compiles
named tuples of arrays to plain structs).  :func:`net_forward` and :func:`net_vjp` are
the residual layers and the reverse sweep (D1, D2) and their adjoint (D6), shared by
the Jacobian path (:mod:`.potential_jacobian_numba`) and the Gram path
(:mod:`.potential_gram_numba`) of the trace.

*float32*: the Jacobian-path kernels take float32 samples, probes, parameters
(:func:`params`, :func:`directions` with a dtype) and ``h``, and allocate their scratch in
the samples' dtype (:func:`forward_workspace`, :func:`adjoint_workspace`); numba compiles
float32 specializations of the same source (the activation by
:func:`.activation_numba.act_row32`), so float64 numbers are unchanged.  Kept in float64:
the scalar reductions (they start from the float64 literal ``0.0``) and the per-block
parameter cotangents (:func:`accumulators`: each sums thousands of per-sample terms).
Measured (``tests/test_float32_kernels.py``, d = 2 and 5, m = 8, M = 1 and 2, exact and
Hutchinson): CNF objective and gradient within ``1e-5`` and ``1e-4`` (2-norm) relative of
float64, jvp/vjp dot-product mismatch below ``1e-4``.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numba import njit

from .activation_numba import act
from .numba_common import FASTMATH

__all__ = ["Params", "Forward", "Adjoint", "params", "directions", "accumulators",
           "cotangents", "block", "forward_workspace", "adjoint_workspace", "net_forward",
           "net_vjp"]


class Params(NamedTuple):
    """The parameter blocks of the potential as kernel arguments (MATH D1), or arrays of
    the same names with a leading block axis (:func:`accumulators`)."""

    w: Any
    A: Any
    b: Any
    c: Any
    K0: Any
    b0: Any
    K: Any
    bK: Any


class Forward(NamedTuple):
    """Per-block scratch of the forward pass of one sample: pre-activations ``a``,
    ``g = sigma'``, ``q = sigma''``, activations ``u``, the reverse sweep ``z``,
    ``y = g * z``, the Jacobians ``J`` and products ``Pm`` of the trace (stored ``(c, m)``),
    ``C0 = K_{0,x} W`` and ``As = A s``."""

    a: Any
    g: Any
    q: Any
    u: Any
    z: Any
    y: Any
    J: Any
    Pm: Any
    C0: Any
    As: Any


class Adjoint(NamedTuple):
    """Per-block scratch of the adjoint of one sample: the cotangents of :class:`Forward`'s
    quantities and the small work arrays ``AG = A Gbar``, ``AW = A_x W`` and ``Tm`` (m, m)."""

    gbar: Any
    qbar: Any
    zbar: Any
    Jbar: Any
    Pbar: Any
    C0bar: Any
    ubar: Any
    abar: Any
    ybar: Any
    AG: Any
    AW: Any
    Tm: Any


def params(P: dict, dtype: Any = np.float64) -> Params:
    """The parameter blocks of ``P`` as contiguous arrays of ``dtype``."""
    return Params(*(np.ascontiguousarray(P[k], dtype=dtype) for k in Params._fields))


def directions(W: Any, d: int, dtype: Any = np.float64) -> tuple[bool, np.ndarray]:
    """``(exact, W)`` for the kernels: exact trace (a dummy ``W``) or the probes, in ``dtype``."""
    if W is None:
        return True, np.zeros((1, d, d), dtype)
    return False, np.ascontiguousarray(W, dtype=dtype)


def accumulators(prm: Params, nblocks: int) -> Params:
    """Per-block parameter cotangent accumulators, float64 for any kernel dtype (float32
    kernels sum thousands of per-sample cotangents into them: float64 keeps that sum's
    rounding below the float32 rounding of each term, at ``8 x n_params`` bytes per block)."""
    return Params(*(np.zeros((nblocks,) + p.shape) for p in prm))


def cotangents(acc: Params) -> dict:
    """Sum the per-block accumulators of :func:`accumulators` into a cotangent dict."""
    return {k: v.sum(axis=0) for k, v in zip(Params._fields, acc)}


@njit(cache=True)
def block(acc, blk):
    """The accumulators of block ``blk`` (views)."""
    return Params(acc.w[blk], acc.A[blk], acc.b[blk], acc.c[blk], acc.K0[blk], acc.b0[blk],
                  acc.K[blk], acc.bK[blk])


@njit(cache=True)
def forward_workspace(M, m, cc, r, dt=np.float64):
    """A :class:`Forward` scratch of dtype ``dt`` (the kernels pass ``S.dtype``: float32
    scratch for float32 samples)."""
    return Forward(np.empty((M + 1, m), dt), np.empty((M + 1, m), dt), np.empty((M + 1, m), dt),
                   np.empty((M + 1, m), dt), np.empty((M + 2, m), dt), np.empty((M + 1, m), dt),
                   np.empty((M + 1, cc, m), dt), np.empty((M + 1, cc, m), dt),
                   np.empty((cc, m), dt), np.empty(r, dt))


@njit(cache=True)
def adjoint_workspace(M, m, cc, r, dt=np.float64):
    """An :class:`Adjoint` scratch of dtype ``dt``."""
    return Adjoint(np.empty((M + 1, m), dt), np.empty((M + 1, m), dt), np.empty((M + 2, m), dt),
                   np.empty((cc, m), dt), np.empty((cc, m), dt), np.empty((cc, m), dt),
                   np.empty(m, dt), np.empty(m, dt), np.empty(m, dt), np.empty(r, dt),
                   np.empty((r, cc), dt), np.empty((m, m), dt))


@njit(cache=True, fastmath=FASTMATH)
def net_forward(h, w, K, bK, a, g, q, u, z, y):
    """The network part of steps 1--2 (D1, D2) from the opening pre-activation ``a[0]``:
    activations ``u_i``, ``g_i = sigma'``, ``q_i = sigma''``, the reverse sweep ``z_i``
    and ``y_i = g_i * z_{i+1}`` (so that ``grad_s N = K_0^T y_0``); returns ``w^T u_M``."""
    M = K.shape[0]
    m = w.shape[0]
    act(a[0], u[0], g[0], q[0])
    for i in range(1, M + 1):
        Ki = K[i - 1]
        for j in range(m):
            acc = bK[i - 1, j]
            for k in range(m):
                acc += Ki[j, k] * u[i - 1, k]
            a[i, j] = acc
        act(a[i], u[i], g[i], q[i])
        for j in range(m):
            u[i, j] = u[i - 1, j] + h * u[i, j]
    phi = 0.0
    for j in range(m):
        phi += w[j] * u[M, j]
    for j in range(m):
        z[M + 1, j] = w[j]
    for i in range(M, 0, -1):
        Ki = K[i - 1]
        for k in range(m):
            z[i, k] = z[i + 1, k]
        for j in range(m):
            yj = g[i, j] * z[i + 1, j]
            y[i, j] = yj
            hy = h * yj
            for k in range(m):
                z[i, k] += Ki[j, k] * hy
    for j in range(m):
        y[0, j] = g[0, j] * z[1, j]
    return phi


@njit(cache=True, fastmath=FASTMATH)
def net_vjp(ybr, phib, h, w, K, g, q, u, z, y, gbar, qbar, zbar, ubar, abar, Bw, BK, BbK):
    """Adjoint of :func:`net_forward` for the cotangents ``ybr`` of ``y_0``, ``phib`` of
    ``w^T u_M`` and ``gbar``, ``qbar``, ``zbar`` already holding the trace's share; adds
    to ``Bw``, ``BK``, ``BbK`` and leaves the cotangent of ``a[0]`` in ``abar``."""
    M = K.shape[0]
    m = w.shape[0]
    for j in range(m):
        gbar[0, j] += ybr[j] * z[1, j]
        zbar[1, j] += ybr[j] * g[0, j]
    for i in range(1, M + 1):
        Ki = K[i - 1]
        BKi = BK[i - 1]
        for j in range(m):
            zbar[i + 1, j] += zbar[i, j]
        for j in range(m):
            acc = 0.0
            hy = h * y[i, j]
            for k in range(m):
                acc += Ki[j, k] * zbar[i, k]
                BKi[j, k] += hy * zbar[i, k]
            acc *= h
            gbar[i, j] += acc * z[i + 1, j]
            zbar[i + 1, j] += acc * g[i, j]
    for j in range(m):
        Bw[j] += zbar[M + 1, j] + phib * u[M, j]
        ubar[j] = phib * w[j]
    for i in range(M, 0, -1):
        Ki = K[i - 1]
        BKi = BK[i - 1]
        for j in range(m):
            abar[j] = h * g[i, j] * ubar[j] + (gbar[i, j] - 2.0 * g[i, j] * qbar[i, j]) * q[i, j]
            BbK[i - 1, j] += abar[j]
        for j in range(m):
            aj = abar[j]
            for k in range(m):
                BKi[j, k] += aj * u[i - 1, k]
                ubar[k] += aj * Ki[j, k]
    for j in range(m):
        abar[j] = g[0, j] * ubar[j] + (gbar[0, j] - 2.0 * g[0, j] * qbar[0, j]) * q[0, j]
