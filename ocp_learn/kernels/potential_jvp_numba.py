r"""The tangent of the potential's value, gradient and Laplacian in Numba, one sample at a
time (MATH D6 forwards; the Jacobian path of the trace, :mod:`.potential_jacobian_numba`).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numba import njit, prange

from .numba_common import FASTMATH
from .potential_jacobian_numba import first_layer_directions, fwd_sample
from .potential_net_numba import forward_workspace

__all__ = ["Tangent", "jvp_sample", "jvp_kernel"]


class Tangent(NamedTuple):
    """Per-block scratch of the tangent of one sample: the tangents of ``g, q, u, z``,
    of the Jacobians, products and ``C0`` of the trace, and of ``A s``."""

    dg: Any
    dq: Any
    du: Any
    dz: Any
    dJ: Any
    dP: Any
    dC0: Any
    dAs: Any


@njit(cache=True, fastmath=FASTMATH)
def jvp_sample(s, Wn, exact, d, h, P, ds, T, F, V, dG):
    """Tangent of :func:`~.potential_jacobian_numba.fwd_sample` along ``ds`` and the
    parameter tangents ``T`` (a ``Params``), with ``F`` the forward scratch of the
    same sample and ``V`` a :class:`Tangent` scratch; returns ``(dphi, dlap)``, writes
    ``dG``."""
    w, A, b, c, K0, b0, K, bK = P
    dw, dA, db, dc, dK0, db0, dK, dbK = T
    a, g, q, u, z, y, J, Pm, C0, As = F
    dg, dq, du, dz, dJ, dP, dC0, dAs = V
    M = K.shape[0]
    m = K0.shape[0]
    D = s.shape[0]
    r = A.shape[0]
    cc = C0.shape[0]
    # (1)
    for j in range(m):
        acc = db0[j]
        for k in range(D):
            acc += dK0[j, k] * s[k] + K0[j, k] * ds[k]
        dg[0, j] = q[0, j] * acc
        du[0, j] = g[0, j] * acc
        dq[0, j] = -2.0 * g[0, j] * dg[0, j]
    for i in range(1, M + 1):
        Ki = K[i - 1]
        dKi = dK[i - 1]
        for j in range(m):
            acc = dbK[i - 1, j]
            for k in range(m):
                acc += Ki[j, k] * du[i - 1, k] + dKi[j, k] * u[i - 1, k]
            dg[i, j] = q[i, j] * acc
            du[i, j] = du[i - 1, j] + h * g[i, j] * acc
            dq[i, j] = -2.0 * g[i, j] * dg[i, j]
    dphi = dc[0]
    for j in range(m):
        dphi += dw[j] * u[M, j] + w[j] * du[M, j]
    for l in range(r):
        acc = 0.0
        for k in range(D):
            acc += dA[l, k] * s[k] + A[l, k] * ds[k]
        dAs[l] = acc
        dphi += As[l] * acc
    for k in range(D):
        dphi += db[k] * s[k] + b[k] * ds[k]
    # (2)
    for j in range(m):
        dz[M + 1, j] = dw[j]
    for i in range(M, 0, -1):
        Ki = K[i - 1]
        dKi = dK[i - 1]
        for k in range(m):
            dz[i, k] = dz[i + 1, k]
        for j in range(m):
            dyj = dg[i, j] * z[i + 1, j] + g[i, j] * dz[i + 1, j]
            hy = h * y[i, j]
            hdy = h * dyj
            for k in range(m):
                dz[i, k] += dKi[j, k] * hy + Ki[j, k] * hdy
    for k in range(D):
        dG[k] = db[k]
    for j in range(m):
        dyj = dg[0, j] * z[1, j] + g[0, j] * dz[1, j]
        for k in range(D):
            dG[k] += dK0[j, k] * y[0, j] + K0[j, k] * dyj
    for l in range(r):
        for k in range(D):
            dG[k] += dA[l, k] * As[l] + A[l, k] * dAs[l]
    # (3)
    first_layer_directions(dK0, Wn, exact, d, cc, m, dC0)
    dlap = 0.0
    for j in range(m):
        csq = 0.0
        cdc = 0.0
        for col in range(cc):
            csq += C0[col, j] * C0[col, j]
            cdc += C0[col, j] * dC0[col, j]
            dJ[col, j] = dg[0, j] * C0[col, j] + g[0, j] * dC0[col, j]
        dlap += (dq[0, j] * z[1, j] + q[0, j] * dz[1, j]) * csq + 2.0 * q[0, j] * z[1, j] * cdc
    for i in range(1, M + 1):
        Ki = K[i - 1]
        dKi = dK[i - 1]
        Jp = J[i - 1]
        for col in range(cc):
            for j in range(m):
                acc = 0.0
                for k in range(m):
                    acc += dKi[j, k] * Jp[col, k] + Ki[j, k] * dJ[col, k]
                dP[col, j] = acc
        ti = 0.0
        for j in range(m):
            psq = 0.0
            pdp = 0.0
            for col in range(cc):
                p = Pm[i, col, j]
                psq += p * p
                pdp += p * dP[col, j]
            ti += (dq[i, j] * z[i + 1, j] + q[i, j] * dz[i + 1, j]) * psq + 2.0 * q[i, j] * z[i + 1, j] * pdp
        dlap += h * ti
        for j in range(m):
            hdg = h * dg[i, j]
            hg = h * g[i, j]
            for col in range(cc):
                dJ[col, j] += hdg * Pm[i, col, j] + hg * dP[col, j]
    for l in range(r):
        if exact:
            for k in range(d):
                dlap += 2.0 * A[l, k] * dA[l, k]
        else:
            for col in range(cc):
                acc = 0.0
                dacc = 0.0
                for k in range(d):
                    acc += A[l, k] * Wn[k, col]
                    dacc += dA[l, k] * Wn[k, col]
                dlap += 2.0 * acc * dacc
    return dphi, dlap


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def jvp_kernel(S, W, exact, d, h, P, dS, T, edges, dphi, dG, dlap):
    """:func:`fwd_sample` then :func:`jvp_sample` for every sample."""
    M = P.K.shape[0]
    m = P.K0.shape[0]
    r = P.A.shape[0]
    D = S.shape[1]
    cc = d if exact else W.shape[2]
    for blk in prange(edges.size - 1):
        dt = S.dtype
        F = forward_workspace(M, m, cc, r, dt)
        G = np.empty(D, dt)
        V = Tangent(np.empty((M + 1, m), dt), np.empty((M + 1, m), dt),
                    np.empty((M + 1, m), dt), np.empty((M + 2, m), dt), np.empty((cc, m), dt),
                    np.empty((cc, m), dt), np.empty((cc, m), dt), np.empty(r, dt))
        for n in range(edges[blk], edges[blk + 1]):
            Wn = W[0] if exact else W[n]
            fwd_sample(S[n], Wn, exact, d, h, P, F, G)
            p, lp = jvp_sample(S[n], Wn, exact, d, h, P, dS[n], T, F, V, dG[n])
            dphi[n] = p
            dlap[n] = lp
