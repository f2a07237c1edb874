r"""The Jacobian path of the potential's trace in Numba: value, gradient and Laplacian
(MATH D1--D3) of one sample at a time and their adjoint (D6).

The same straight-line program and adjoint as the reference
:mod:`.potential_reference` (whose module docstring holds the derivation), written as
loops over one sample at a time so that the ``(M + 1)`` Jacobians ``J_i`` (``m x c``,
``c = d`` for the exact trace, ``c = k`` probes for Hutchinson) live in per-thread
scratch, never per batch.  They are stored transposed, ``(c, m)``, so that
``P_i = K_i J_{i-1}`` is a set of contiguous dot products of length ``m`` (vectorized
thanks to ``reassoc``; 5--50x faster than the ``(m, c)`` layout for small ``d``).
Samples are split into one contiguous block per thread, ``prange`` over blocks; the
parameter cotangents are accumulated per block and summed in Python.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .numba_common import FASTMATH
from .potential_net_numba import (adjoint_workspace, block, forward_workspace, net_forward,
                                  net_vjp)

__all__ = ["BLAS_INNER_M", "BLAS_INNER_C", "fwd_sample", "vjp_sample", "derivatives_kernel",
           "vjp_kernel"]

#: Width ``m`` and column count ``c`` (``d``, or the probes) from which the Jacobian path's
#: per-sample products ``K_i J_{i-1}`` (m x m times m x c) and their adjoints call BLAS
#: (``np.dot`` inside the kernels, cache-blocked) instead of the loops, which stream ``K_i``
#: from L2 once per column: 1.7x faster at m = 128, d = 64 (42 % of DGEMM against 25 %),
#: 1.3x slower at d = 2 (call overhead), hence the column bound.  Read at compile time.
BLAS_INNER_M = 64
BLAS_INNER_C = 16


@njit(cache=True, fastmath=FASTMATH)
def first_layer_directions(K0, Wn, exact, d, cc, m, C0):
    """``C0 = (K0_x W)^T``: the first layer's weights on the trace directions ``W`` (D3), or
    ``K0_x^T`` itself for the exact trace (``W = I``); linear in ``K0``, so the tangent
    applies the same map to ``dK0``."""
    for j in range(m):
        for col in range(cc):
            if exact:
                C0[col, j] = K0[j, col]
            else:
                acc = 0.0
                for k in range(d):
                    acc += K0[j, k] * Wn[k, col]
                C0[col, j] = acc


@njit(cache=True, fastmath=FASTMATH)
def fwd_sample(s, Wn, exact, d, h, P, F, G):
    """Steps 1--3 (D1--D3) for one sample ``s``, the trace by the Jacobians ``J_i`` (the
    Gram path is :mod:`.potential_gram_numba`); fills the ``Forward`` scratch ``F``,
    returns ``(phi, lap)``, writes ``G = grad_s Phi``."""
    w, A, b, c, K0, b0, K, bK = P
    a, g, q, u, z, y, J, Pm, C0, As = F
    M = K.shape[0]
    m = K0.shape[0]
    D = s.shape[0]
    r = A.shape[0]
    cc = C0.shape[0]
    # (1) forward pass
    for j in range(m):
        acc = b0[j]
        for k in range(D):
            acc += K0[j, k] * s[k]
        a[0, j] = acc
    phi = c[0] + net_forward(h, w, K, bK, a, g, q, u, z, y)
    for l in range(r):
        acc = 0.0
        for k in range(D):
            acc += A[l, k] * s[k]
        As[l] = acc
        phi += 0.5 * acc * acc
    for k in range(D):
        phi += b[k] * s[k]
    # (2) gradient: G = K0^T y_0 + A^T A s + b (y_0 from the reverse sweep of net_forward)
    for k in range(D):
        G[k] = b[k]
    for j in range(m):
        yj = y[0, j]
        for k in range(D):
            G[k] += K0[j, k] * yj
    for l in range(r):
        for k in range(D):
            G[k] += A[l, k] * As[l]
    # (3) trace
    first_layer_directions(K0, Wn, exact, d, cc, m, C0)
    lap = 0.0
    for j in range(m):
        csq = 0.0
        for col in range(cc):
            csq += C0[col, j] * C0[col, j]
            J[0, col, j] = g[0, j] * C0[col, j]
        lap += q[0, j] * z[1, j] * csq
    for i in range(1, M + 1):
        Ki = K[i - 1]
        Jp = J[i - 1]
        if m >= BLAS_INNER_M and cc >= BLAS_INNER_C:
            np.dot(Jp, Ki.T, Pm[i])
        else:
            for col in range(cc):
                for j in range(m):
                    acc = 0.0
                    for k in range(m):
                        acc += Ki[j, k] * Jp[col, k]
                    Pm[i, col, j] = acc
        ti = 0.0
        for j in range(m):
            psq = 0.0
            hg = h * g[i, j]
            for col in range(cc):
                p = Pm[i, col, j]
                psq += p * p
                J[i, col, j] = J[i - 1, col, j] + hg * p
            ti += q[i, j] * z[i + 1, j] * psq
        lap += h * ti
    for l in range(r):
        if exact:
            for k in range(d):
                lap += A[l, k] * A[l, k]
        else:
            for col in range(cc):
                acc = 0.0
                for k in range(d):
                    acc += A[l, k] * Wn[k, col]
                lap += acc * acc
    return phi, lap


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def derivatives_kernel(S, W, exact, d, h, P, edges, phi, G, lap):
    """:func:`fwd_sample` for every sample: ``phi``, ``G``, ``lap`` (D1--D3)."""
    M = P.K.shape[0]
    m = P.K0.shape[0]
    r = P.A.shape[0]
    cc = d if exact else W.shape[2]
    for blk in prange(edges.size - 1):
        F = forward_workspace(M, m, cc, r, S.dtype)
        for n in range(edges[blk], edges[blk + 1]):
            Wn = W[0] if exact else W[n]
            p, lp = fwd_sample(S[n], Wn, exact, d, h, P, F, G[n])
            phi[n] = p
            lap[n] = lp


@njit(cache=True, fastmath=FASTMATH)
def vjp_sample(s, Wn, exact, d, h, P, phib, Gb, lb, F, V, sbar, B):
    """Adjoint of :func:`fwd_sample` (D6, :mod:`.potential_reference`) for the cotangents
    ``phib``, ``Gb``, ``lb`` of ``phi``, ``G``, ``lap``, with ``F`` the forward scratch of
    the same sample and ``V`` an ``Adjoint`` scratch: writes ``sbar``, adds to the
    parameter cotangents ``B`` (a ``Params`` of one block's accumulators)."""
    K, A = P.K, P.A
    BA = B.A
    gbar, qbar, zbar, AW = V.gbar, V.qbar, V.zbar, V.AW
    C0 = F.C0
    M = K.shape[0]
    m = P.K0.shape[0]
    r = A.shape[0]
    cc = C0.shape[0]
    for i in range(M + 1):
        for j in range(m):
            gbar[i, j] = 0.0
            qbar[i, j] = 0.0
    for i in range(M + 2):
        for j in range(m):
            zbar[i, j] = 0.0
    # ---- (3) trace
    for l in range(r):
        if exact:
            for k in range(d):
                BA[l, k] += 2.0 * lb * A[l, k]
        else:
            for col in range(cc):
                acc = 0.0
                for k in range(d):
                    acc += A[l, k] * Wn[k, col]
                AW[l, col] = acc
            for k in range(d):
                acc = 0.0
                for col in range(cc):
                    acc += AW[l, col] * Wn[k, col]
                BA[l, k] += 2.0 * lb * acc
    _jac_trace_vjp(exact, d, h, lb, K, F, Wn, V, B.K, B.K0)
    _vjp_rest(s, Gb, phib, h, P, F, V, sbar, B)


@njit(cache=True, fastmath=FASTMATH)
def _jac_trace_vjp(exact, d, h, lb, K, F, Wn, V, BK, BK0):
    """Adjoint of the Jacobian path of the trace (step 3 of :func:`fwd_sample`).

    From width :data:`BLAS_INNER_M` and :data:`BLAS_INNER_C` columns on, the two products per layer
    (``BK_i += Pbar^T J_{i-1}``, ``Jbar += Pbar K_i``) are BLAS calls into the
    scratch ``Tm`` (m, m) and ``C0bar`` (free until level 0)."""
    g, q, z, J, Pm, C0 = F.g, F.q, F.z, F.J, F.Pm, F.C0
    gbar, qbar, zbar, Jbar, Pbar, C0bar, Tm = V.gbar, V.qbar, V.zbar, V.Jbar, V.Pbar, V.C0bar, V.Tm
    M = K.shape[0]
    m = g.shape[1]
    cc = C0.shape[0]
    for j in range(m):
        for col in range(cc):
            Jbar[col, j] = 0.0
    for i in range(M, 0, -1):
        Ki = K[i - 1]
        BKi = BK[i - 1]
        for j in range(m):
            psq = 0.0
            gj = 0.0
            for col in range(cc):
                p = Pm[i, col, j]
                psq += p * p
                gj += Jbar[col, j] * p
            gbar[i, j] += h * gj
            qbar[i, j] += h * lb * z[i + 1, j] * psq
            zbar[i + 1, j] += h * lb * q[i, j] * psq
            coef = 2.0 * h * lb * q[i, j] * z[i + 1, j]
            hg = h * g[i, j]
            for col in range(cc):
                Pbar[col, j] = hg * Jbar[col, j] + coef * Pm[i, col, j]
        Jp = J[i - 1]
        if m >= BLAS_INNER_M and cc >= BLAS_INNER_C:
            np.dot(Pbar.T, Jp, Tm)
            np.dot(Pbar, Ki, C0bar)
            for j in range(m):
                for k in range(m):
                    BKi[j, k] += Tm[j, k]
            for col in range(cc):
                for k in range(m):
                    Jbar[col, k] += C0bar[col, k]
        else:
            for col in range(cc):
                for j in range(m):
                    pb = Pbar[col, j]
                    for k in range(m):
                        BKi[j, k] += pb * Jp[col, k]
                        Jbar[col, k] += pb * Ki[j, k]
    for j in range(m):
        csq = 0.0
        gj = 0.0
        for col in range(cc):
            csq += C0[col, j] * C0[col, j]
            gj += Jbar[col, j] * C0[col, j]
        gbar[0, j] += gj
        qbar[0, j] += lb * z[1, j] * csq
        zbar[1, j] += lb * q[0, j] * csq
        coef = 2.0 * lb * q[0, j] * z[1, j]
        for col in range(cc):
            C0bar[col, j] = coef * C0[col, j] + g[0, j] * Jbar[col, j]
        if exact:
            for col in range(cc):
                BK0[j, col] += C0bar[col, j]
        else:
            for k in range(d):
                acc = 0.0
                for col in range(cc):
                    acc += C0bar[col, j] * Wn[k, col]
                BK0[j, k] += acc


@njit(cache=True, fastmath=FASTMATH)
def _vjp_rest(s, Gb, phib, h, P, F, V, sbar, B):
    """Adjoint of steps 2 and 1 of :func:`fwd_sample` (gradient, forward pass)."""
    w, A, b, K0, K = P.w, P.A, P.b, P.K0, P.K
    g, q, u, z, y, As = F.g, F.q, F.u, F.z, F.y, F.As
    gbar, qbar, zbar, ubar, abar, AG, ybr = V.gbar, V.qbar, V.zbar, V.ubar, V.abar, V.AG, V.ybar
    Bw, BA, Bb, Bc, BK0, Bb0, BK, BbK = B
    m = K0.shape[0]
    D = s.shape[0]
    r = A.shape[0]
    # ---- (2) G = K0^T y_0 + A^T A s + b
    for l in range(r):
        acc = 0.0
        for k in range(D):
            acc += A[l, k] * Gb[k]
        AG[l] = acc
    for k in range(D):
        acc = 0.0
        for l in range(r):
            acc += A[l, k] * AG[l]
        sbar[k] = acc
        Bb[k] += Gb[k]
    for l in range(r):
        for k in range(D):
            BA[l, k] += As[l] * Gb[k] + AG[l] * s[k]
    for j in range(m):
        acc = 0.0
        for k in range(D):
            acc += K0[j, k] * Gb[k]
            BK0[j, k] += y[0, j] * Gb[k]
        ybr[j] = acc
    # ---- (1) the quadratic and linear terms of phi
    for k in range(D):
        acc = b[k]
        for l in range(r):
            acc += A[l, k] * As[l]
        sbar[k] += phib * acc
        Bb[k] += phib * s[k]
    for l in range(r):
        for k in range(D):
            BA[l, k] += phib * As[l] * s[k]
    Bc[0] += phib
    # ---- the network, down to the cotangent abar of the opening pre-activation
    net_vjp(ybr, phib, h, w, K, g, q, u, z, y, gbar, qbar, zbar, ubar, abar, Bw, BK, BbK)
    for j in range(m):
        aj = abar[j]
        Bb0[j] += aj
        for k in range(D):
            BK0[j, k] += aj * s[k]
            sbar[k] += aj * K0[j, k]


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def vjp_kernel(S, W, exact, d, h, P, phib, Gb, lb, edges, sbar, acc):
    """:func:`fwd_sample` then :func:`vjp_sample` for every sample; the parameter
    cotangents go to the per-block accumulators ``acc`` (``accumulators``)."""
    M = P.K.shape[0]
    m = P.K0.shape[0]
    r = P.A.shape[0]
    D = S.shape[1]
    cc = d if exact else W.shape[2]
    for blk in prange(edges.size - 1):
        F = forward_workspace(M, m, cc, r, S.dtype)
        G = np.empty(D, S.dtype)
        V = adjoint_workspace(M, m, cc, r, S.dtype)
        B = block(acc, blk)
        for n in range(edges[blk], edges[blk + 1]):
            Wn = W[0] if exact else W[n]
            fwd_sample(S[n], Wn, exact, d, h, P, F, G)
            vjp_sample(S[n], Wn, exact, d, h, P, phib[n], Gb[n], lb[n], F, V, sbar[n], B)
