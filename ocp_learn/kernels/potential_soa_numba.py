r"""The Jacobian path of the exact trace in tiles of samples (structure of arrays).

The same straight-line program and adjoint as :mod:`.potential_jacobian_numba` (MATH D1--D3,
D6; the derivation is in :mod:`.potential_reference`), laid out so that the vector units
and the matrix-multiply units are busy:

* samples are split into *tiles* of ``T`` samples; every per-sample vector of the program
  becomes an ``(m, T)`` array with the samples innermost (``(m, d T)`` for the Jacobians
  ``J_i``, column ``col T + b`` holding direction ``col`` of sample ``b``), so the
  elementwise work and the activation (:func:`.activation_numba.act`) run as long
  vector loops over ``m T`` entries;
* every product with a weight matrix is a GEMM over the tile: ``K_i U_{i-1}`` and
  ``K_i^T (h Y_i)`` (``m x m`` times ``m x T``), ``K_i J_{i-1}`` (``m x m`` times
  ``m x d T``), and in the adjoint ``K_i Zbar_i``, ``K_i^T Pbar_i``, ``K_i^T Abar_i``
  and the parameter cotangents ``Pbar_i J_{i-1}^T``, ``(h Y_i) Zbar_i^T``,
  ``Abar_i U_{i-1}^T`` (``m x T`` times ``T x m``), all by BLAS (``np.dot``), in the
  samples' dtype;
* the adjoint of a tile runs right after its forward pass, while the tile's forward
  values are still in cache, and no array is allocated inside the loop over tiles.

*float32*: float32 samples run float32 tiles and float32 GEMMs (SGEMM).  The per-tile
parameter cotangents (sums over ``T`` or ``d T`` products) are formed in float32 and
added to float64 per-thread accumulators, so the rounding of the sum over all ``n``
samples stays that of one tile.  Reductions over the neurons of one sample (the trace
terms) start from float64 literals and so run in float64.

Exact trace only (the Hutchinson probes differ per sample and keep the per-sample kernels).
Tested against the per-sample kernels and the NumPy reference to 1e-12 in
``tests/test_kernels_soa.py``.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numba import njit

from .activation_numba import act
from .numba_common import FASTMATH, acc_gemm, acc_row_sums

__all__ = ["tile_size", "SoaParams", "Tape", "Bar", "soa_params", "tape_workspace", "bar_workspace",
           "load_tile", "fwd_tile", "vjp_tile"]


def tile_size(d: int, m: int) -> int:
    """Samples per tile: 64 while a tile's Jacobians (``m x d T``) are small (``d m <= 512``),
    else 32.  Measured, one thread, objective + gradient stage (rhs + vjp): at d = 2, m = 32
    64 and 128 tie and 32 is 5 % slower; at d = 8, m = 128 and d = 64, m = 128, 32 is
    within 3 % of the best and 64 is up to 15 % slower (the Jacobians leave the L2 cache)."""
    return 64 if d * m <= 512 else 32



class SoaParams(NamedTuple):
    """The potential's parameters in the kernels' dtype with the transposes the tiles'
    GEMMs read (``KT[i] = K_i^T``, ``AT = A^T``), the first layer's trace directions
    ``C0 = K_{0,x}`` with ``csq_j = |C0 row j|^2``, and ``trAA = tr(A_x^T A_x)`` (D3)."""

    w: Any
    A: Any
    AT: Any
    b: Any
    c: Any
    K0: Any
    K0T: Any
    b0: Any
    K: Any
    KT: Any
    bK: Any
    C0: Any
    csq: Any
    trAA: float


def soa_params(P: dict, d: int, dtype: Any = np.float64) -> SoaParams:
    """:class:`SoaParams` of the parameter blocks ``P`` for dimension ``d`` in ``dtype``."""
    def arr(x):
        return np.ascontiguousarray(x, dtype=dtype)
    K0, K, A = arr(P["K0"]), arr(P["K"]), arr(P["A"])
    C0 = arr(K0[:, :d])
    Ax = np.asarray(P["A"], dtype=np.float64)[:, :d]
    return SoaParams(arr(P["w"]), A, arr(A.T), arr(P["b"]), arr(P["c"]), K0, arr(K0.T),
                     arr(P["b0"]), K, arr(K.transpose(0, 2, 1)), arr(P["bK"]), C0,
                     arr((C0.astype(np.float64) ** 2).sum(axis=1)),
                     float((Ax * Ax).sum()))


class Tape(NamedTuple):
    """One tile's forward values: samples ``s`` (D, T); per layer ``a``, ``u``, ``g``, ``q``
    (M+1, m, T), ``z`` (M+2, m, T), ``y`` (M+1, m, T); the Jacobians ``J`` and products
    ``Pm`` (M+1, m, d T); ``G = grad_s Phi`` (D, T), ``As = A s`` (r, T), ``lap`` (T) and
    the scratch ``hy`` (m, T)."""

    s: Any
    a: Any
    u: Any
    g: Any
    q: Any
    z: Any
    y: Any
    J: Any
    Pm: Any
    G: Any
    As: Any
    lap: Any
    hy: Any


class Bar(NamedTuple):
    """One tile's adjoint scratch: ``gbar``, ``qbar`` (M+1, m, T), ``zbar`` (M+2, m, T),
    ``Jbar``, ``Pbar``, ``Cm`` (m, d T), ``ubar``, ``abar``, ``ybr``, ``Tmp`` (m, T), ``Gb``,
    ``sbar`` (D, T), ``AG`` (r, T), ``lb``, ``phib`` (T) and the per-tile parameter
    cotangents ``Bmm`` (m, m), ``BmD`` (m, D), ``BrD`` (r, D)."""

    gbar: Any
    qbar: Any
    zbar: Any
    Jbar: Any
    Pbar: Any
    Cm: Any
    ubar: Any
    abar: Any
    ybr: Any
    Tmp: Any
    Gb: Any
    sbar: Any
    AG: Any
    lb: Any
    phib: Any
    Bmm: Any
    BmD: Any
    BrD: Any


@njit(cache=True)
def tape_workspace(M, m, d, r, T, dt):
    """A :class:`Tape` for one tile."""
    D = d + 1
    return Tape(np.zeros((D, T), dt), np.zeros((M + 1, m, T), dt), np.zeros((M + 1, m, T), dt),
                np.zeros((M + 1, m, T), dt), np.zeros((M + 1, m, T), dt),
                np.zeros((M + 2, m, T), dt), np.zeros((M + 1, m, T), dt),
                np.zeros((M + 1, m, d * T), dt), np.zeros((M + 1, m, d * T), dt),
                np.zeros((D, T), dt), np.zeros((r, T), dt), np.zeros(T),
                np.zeros((m, T), dt))


@njit(cache=True)
def bar_workspace(M, m, d, r, T, dt):
    """A :class:`Bar` for one tile."""
    D = d + 1
    return Bar(np.zeros((M + 1, m, T), dt), np.zeros((M + 1, m, T), dt),
               np.zeros((M + 2, m, T), dt), np.zeros((m, d * T), dt), np.zeros((m, d * T), dt),
               np.zeros((m, d * T), dt), np.zeros((m, T), dt), np.zeros((m, T), dt),
               np.zeros((m, T), dt), np.zeros((m, T), dt), np.zeros((D, T), dt),
               np.zeros((D, T), dt), np.zeros((r, T), dt), np.zeros(T, dt), np.zeros(T, dt),
               np.zeros((m, m), dt), np.zeros((m, D), dt), np.zeros((r, D), dt))


@njit(cache=True, fastmath=FASTMATH)
def load_tile(x, t, n0, nb, s):
    """Samples ``n0 .. n0 + nb - 1`` of the states ``x`` (n, d) and the time ``t`` into the
    columns of ``s`` (D, T); columns past ``nb`` get zeros (finite values whose cotangents
    are zero, so they add nothing)."""
    d = x.shape[1]
    T = s.shape[1]
    for k in range(d):
        for b in range(nb):
            s[k, b] = x[n0 + b, k]
        for b in range(nb, T):
            s[k, b] = 0.0
    for b in range(nb):
        s[d, b] = t
    for b in range(nb, T):
        s[d, b] = 0.0


@njit(cache=True, fastmath=FASTMATH)
def _add_bias(X, bias):
    """``X[j, :] += bias[j]``."""
    for j in range(X.shape[0]):
        bj = bias[j]
        for b in range(X.shape[1]):
            X[j, b] += bj


@njit(cache=True, fastmath=FASTMATH)
def fwd_tile(h, P, F, trace):
    """Steps 1--3 (D1--D3) for the tile ``F.s``: fills the :class:`Tape` ``F`` (``G``, and
    ``lap`` with ``trace``); returns nothing (``phi`` is not needed by the flow field)."""
    M = P.K.shape[0]
    m, T = F.hy.shape
    d = P.C0.shape[1]
    a, u, g, q, z, y, J, Pm, hy = F.a, F.u, F.g, F.q, F.z, F.y, F.J, F.Pm, F.hy
    # (1) forward pass: a_0 = K_0 s + b_0, u_i = u_{i-1} + h sigma(K_i u_{i-1} + b_i)
    np.dot(P.K0, F.s, a[0])
    _add_bias(a[0], P.b0)
    act(a[0].reshape(m * T), u[0].reshape(m * T), g[0].reshape(m * T), q[0].reshape(m * T))
    for i in range(1, M + 1):
        np.dot(P.K[i - 1], u[i - 1], a[i])
        _add_bias(a[i], P.bK[i - 1])
        act(a[i].reshape(m * T), hy.reshape(m * T), g[i].reshape(m * T),
                q[i].reshape(m * T))
        for j in range(m):
            for b in range(T):
                u[i, j, b] = u[i - 1, j, b] + h * hy[j, b]
    # (2) reverse sweep z_i = z_{i+1} + h K_i^T (g_i z_{i+1}), G = K_0^T y_0 + A^T A s + b
    for j in range(m):
        wj = P.w[j]
        for b in range(T):
            z[M + 1, j, b] = wj
    for i in range(M, 0, -1):
        for j in range(m):
            for b in range(T):
                yjb = g[i, j, b] * z[i + 1, j, b]
                y[i, j, b] = yjb
                hy[j, b] = h * yjb
        np.dot(P.KT[i - 1], hy, z[i])
        for j in range(m):
            for b in range(T):
                z[i, j, b] += z[i + 1, j, b]
    for j in range(m):
        for b in range(T):
            y[0, j, b] = g[0, j, b] * z[1, j, b]
    np.dot(P.K0T, y[0], F.G)
    np.dot(P.A, F.s, F.As)
    D = F.s.shape[0]
    r = P.A.shape[0]
    for k in range(D):
        bk = P.b[k]
        for b in range(T):
            F.G[k, b] += bk
        for l in range(r):
            alk = P.A[l, k]
            for b in range(T):
                F.G[k, b] += alk * F.As[l, b]
    if not trace:
        return
    # (3) exact trace: J_0 = D_0 K_{0,x}, P_i = K_i J_{i-1}, J_i = J_{i-1} + h D_i P_i,
    # lap = sum_j q_0 z_1 |C0_j|^2 + h sum_i sum_j q_i z_{i+1} |P_i row j|^2 + tr(A_x^T A_x)
    lap = F.lap
    for b in range(T):
        lap[b] = P.trAA
    for j in range(m):
        cs = P.csq[j]
        for b in range(T):
            lap[b] += q[0, j, b] * z[1, j, b] * cs
        for col in range(d):
            cjc = P.C0[j, col]
            o = col * T
            for b in range(T):
                J[0, j, o + b] = g[0, j, b] * cjc
    for i in range(1, M + 1):
        np.dot(P.K[i - 1], J[i - 1], Pm[i])
        for j in range(m):
            for b in range(T):
                hy[j, b] = 0.0
            for col in range(d):
                o = col * T
                for b in range(T):
                    p = Pm[i, j, o + b]
                    J[i, j, o + b] = J[i - 1, j, o + b] + h * g[i, j, b] * p
                    hy[j, b] += p * p
            for b in range(T):
                lap[b] += h * q[i, j, b] * z[i + 1, j, b] * hy[j, b]


@njit(cache=True, fastmath=FASTMATH)
def vjp_tile(h, P, F, V, B, phi_terms):
    """Adjoint (D6) of :func:`fwd_tile` for the cotangents ``V.phib`` of ``phi`` (read only
    with ``phi_terms``), ``V.Gb`` of ``G`` and ``V.lb`` of ``lap``; ``F`` the tile's
    forward values.  Writes the samples' cotangent to ``V.sbar`` and adds the parameter
    cotangents to ``B`` (float64 accumulators named as :class:`.potential_net_numba.Params`)."""
    M = P.K.shape[0]
    m, T = F.hy.shape
    d = P.C0.shape[1]
    D = d + 1
    r = P.A.shape[0]
    g, q, u, z, y, J, Pm, s = F.g, F.q, F.u, F.z, F.y, F.J, F.Pm, F.s
    gbar, qbar, zbar, Jbar, Pbar, Cm = V.gbar, V.qbar, V.zbar, V.Jbar, V.Pbar, V.Cm
    ubar, abar, ybr, Tmp, Gb, sbar, AG, lb, phib = V.ubar, V.abar, V.ybr, V.Tmp, V.Gb, \
        V.sbar, V.AG, V.lb, V.phib
    gbar[:] = 0.0
    qbar[:] = 0.0
    zbar[:] = 0.0
    Jbar[:] = 0.0
    # ---- (3) the trace: tr(A_x^T A_x), then the layers from the top
    lsum = 0.0
    for b in range(T):
        lsum += lb[b]
    for l in range(r):
        for k in range(d):
            B.A[l, k] += 2.0 * lsum * P.A[l, k]
    for i in range(M, 0, -1):
        for j in range(m):
            for b in range(T):
                Tmp[j, b] = 0.0   # |P_i row j|^2
                ubar[j, b] = 0.0  # Jbar_i . P_i
            for col in range(d):
                o = col * T
                for b in range(T):
                    p = Pm[i, j, o + b]
                    Tmp[j, b] += p * p
                    ubar[j, b] += Jbar[j, o + b] * p
            for b in range(T):
                hl = h * lb[b]
                gbar[i, j, b] += h * ubar[j, b]
                qbar[i, j, b] += hl * z[i + 1, j, b] * Tmp[j, b]
                zbar[i + 1, j, b] += hl * q[i, j, b] * Tmp[j, b]
                abar[j, b] = 2.0 * hl * q[i, j, b] * z[i + 1, j, b]   # coef
                ybr[j, b] = h * g[i, j, b]
            for col in range(d):
                o = col * T
                for b in range(T):
                    Pbar[j, o + b] = ybr[j, b] * Jbar[j, o + b] + abar[j, b] * Pm[i, j, o + b]
        acc_gemm(B.K[i - 1], Pbar, J[i - 1].T, V.Bmm)      # Kbar_i += Pbar J_{i-1}^T
        np.dot(P.KT[i - 1], Pbar, Cm)                        # Jbar_{i-1} = Jbar_i + K_i^T Pbar
        for j in range(m):
            for c in range(d * T):
                Jbar[j, c] += Cm[j, c]
    for j in range(m):
        cs = P.csq[j]
        for b in range(T):
            lz = lb[b]
            qbar[0, j, b] += lz * z[1, j, b] * cs
            zbar[1, j, b] += lz * q[0, j, b] * cs
            abar[j, b] = 2.0 * lz * q[0, j, b] * z[1, j, b]
        for col in range(d):
            o = col * T
            cjc = P.C0[j, col]
            sk = 0.0
            for b in range(T):
                jb = Jbar[j, o + b]
                gbar[0, j, b] += jb * cjc
                sk += abar[j, b] * cjc + g[0, j, b] * jb
            B.K0[j, col] += sk
    # ---- (2) G = K_0^T y_0 + A^T A s + b
    np.dot(P.A, Gb, AG)
    for k in range(D):
        sgb = 0.0
        for b in range(T):
            sgb += Gb[k, b]
            acc = 0.0
            for l in range(r):
                acc += P.A[l, k] * AG[l, b]
            sbar[k, b] = acc
        B.b[k] += sgb
    acc_gemm(B.A, F.As, Gb.T, V.BrD)
    acc_gemm(B.A, AG, s.T, V.BrD)
    np.dot(P.K0, Gb, ybr)
    acc_gemm(B.K0, y[0], Gb.T, V.BmD)
    # ---- (1) the quadratic and linear terms of phi
    if phi_terms:
        psum = 0.0
        for b in range(T):
            psum += phib[b]
        B.c[0] += psum
        for k in range(D):
            sk = 0.0
            for b in range(T):
                acc = P.b[k]
                for l in range(r):
                    acc += P.A[l, k] * F.As[l, b]
                sbar[k, b] += phib[b] * acc
                sk += phib[b] * s[k, b]
            B.b[k] += sk
        for l in range(r):
            for k in range(D):
                sk = 0.0
                for b in range(T):
                    sk += phib[b] * F.As[l, b] * s[k, b]
                B.A[l, k] += sk
    # ---- the network (net_vjp): y_0 = g_0 z_1, z_i = z_{i+1} + h K_i^T (g_i z_{i+1})
    for j in range(m):
        for b in range(T):
            gbar[0, j, b] += ybr[j, b] * z[1, j, b]
            zbar[1, j, b] += ybr[j, b] * g[0, j, b]
    for i in range(1, M + 1):
        for j in range(m):
            for b in range(T):
                zbar[i + 1, j, b] += zbar[i, j, b]
                F.hy[j, b] = h * y[i, j, b]
        acc_gemm(B.K[i - 1], F.hy, zbar[i].T, V.Bmm)       # Kbar_i += h y_i zbar_i^T
        np.dot(P.K[i - 1], zbar[i], Tmp)                     # ybar_i / h
        for j in range(m):
            for b in range(T):
                yb = h * Tmp[j, b]
                gbar[i, j, b] += yb * z[i + 1, j, b]
                zbar[i + 1, j, b] += yb * g[i, j, b]
    for j in range(m):
        wj = P.w[j]
        sw = 0.0
        for b in range(T):
            sw += zbar[M + 1, j, b]
            if phi_terms:
                sw += phib[b] * u[M, j, b]
                ubar[j, b] = phib[b] * wj
            else:
                ubar[j, b] = 0.0
        B.w[j] += sw
    for i in range(M, 0, -1):
        for j in range(m):
            for b in range(T):
                gi = g[i, j, b]
                abar[j, b] = h * gi * ubar[j, b] + (gbar[i, j, b] - 2.0 * gi * qbar[i, j, b]) \
                    * q[i, j, b]
        acc_row_sums(B.bK[i - 1], abar)
        acc_gemm(B.K[i - 1], abar, u[i - 1].T, V.Bmm)     # Kbar_i += abar_i u_{i-1}^T
        np.dot(P.KT[i - 1], abar, Tmp)                       # ubar += K_i^T abar_i
        for j in range(m):
            for b in range(T):
                ubar[j, b] += Tmp[j, b]
    for j in range(m):
        for b in range(T):
            g0 = g[0, j, b]
            abar[j, b] = g0 * ubar[j, b] + (gbar[0, j, b] - 2.0 * g0 * qbar[0, j, b]) * q[0, j, b]
    acc_row_sums(B.b0, abar)
    acc_gemm(B.K0, abar, s.T, V.BmD)
    np.dot(P.K0T, abar, Gb)                                  # Gb is free: reuse for K_0^T abar
    for k in range(D):
        for b in range(T):
            sbar[k, b] += Gb[k, b]
