r"""Gram path of the exact trace, split into GEMMs over the batch and a per-sample kernel in R^m.

On the Gram path (:func:`gram_trace`, MATH D3; chosen by :func:`trace_gram`) the
only quantities of the potential (D1, D2) that involve the dimension ``d`` are the
products with the sample ``s`` (``D = d + 1``):

* the opening pre-activation ``a_0 = K_0 s + b_0`` and ``A s``;
* the gradient ``G = K_0^T y_0 + A^T (A s) + b``, with ``y_0 = sigma'(a_0) * z_1``;
* their adjoints (D6): ``ybar_0 = K_0 Gbar``, ``sbar = K_0^T abar_0 + A^T (A Gbar)
  + phibar (b + A^T A s)`` and the rank-one parameter cotangents
  ``Kbar_0 = sum_n (y_0 Gbar^T + abar_0 s^T)``, ``Abar = sum_n (A s Gbar^T + A Gbar s^T
  + phibar A s s^T)``.

Done per sample, these are matrix-vector products and rank-one updates with
``O((m + r) d)`` work each, which run far below the machine's GEMM rate.  Over a batch
``S`` (n x D) they are GEMMs: ``P_0 = S K_0^T``, ``G = Y_0 K_0 + (S A^T) A``,
``Ybar_0 = Gbar K_0^T``, ``Kbar_0 = Y_0^T Gbar + Abar_0^T S`` and so on (numpy, i.e.
BLAS).  What remains per sample lives in ``R^m`` -- the residual layers, the reverse sweep
and the Gram trace -- and is one numba kernel (``prange`` over sample blocks):
:func:`~.potential_net_numba.net_forward` /
:func:`~.potential_net_numba.net_vjp` with the trace in between (:func:`gram_trace`).

The fused flow field passes the samples as the pair ``(x, t)``: a view of the state's first
``d`` columns and the stage's scalar time, so that no ``(n, d+1)`` copy of the state is
formed; the time column enters as a rank-one term, the biases ``b_0`` and ``b`` ride in the
GEMMs (a column of ones next to ``[Y_0, A s]``), and the samples' cotangent is written by its
GEMM straight into the field's output (``_mul_st``, ``_mul_s``; 0.85 s against
0.95--1.04 s for a crowd-motion gradient at d = 100, n = 8464, one thread).

One residual layer (``M = 1``) has a cheaper trace and runs in tiles of samples:
:mod:`.potential_tiles_numba`.  Tested against the numpy reference to 1e-12
(``tests/test_kernels.py``).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .numba_common import FASTMATH
from .potential_net_numba import net_forward, net_vjp, params
from .potential_tiles_numba import (NT_ARRAYS, PAD, TILE, fwd_tiles, h_matrix, h_matrix_vjp,
                                    h_trace, h_trace_vjp, no_tape, vjp_tiles)

__all__ = ["use_gram", "gram0", "gram0_vjp", "trace_gram", "gram_trace", "gram_trace_vjp",
           "fwd_kernel", "vjp_kernel", "forward", "vjp"]

#: ``G0`` argument that selects the Jacobian path of the trace
NO_GRAM = np.zeros((0, 0))


def use_gram(d, m, M):
    """Whether the exact trace is cheaper through the Gram matrices ``Gamma_i = J_i J_i^T``.

    The Jacobian path costs about ``3 M m^2 d`` flops per sample (forward + adjoint);
    the Gram path about ``4 m^3`` for ``M = 1`` and ``8 M m^3`` otherwise, independent of
    ``d``.  Chosen when ``d > m`` (``M = 1``) or ``d > 2 m`` (``M > 1``).
    """
    return d > (1 if M == 1 else 2) * m


def gram0(K0, d):
    """``G_0 = K_{0,x} K_{0,x}^T`` (m, m), the per-parameter constant of the Gram path."""
    K0x = np.ascontiguousarray(K0[:, :d], dtype=np.float64)
    return K0x @ K0x.T


def gram0_vjp(K0, d, BG0):
    """Add the cotangent of :func:`gram0` to the ``K0`` cotangent: ``(BG0 + BG0^T) K_{0,x}``."""
    return (BG0 + BG0.T) @ K0[:, :d]


def trace_gram(P, d, exact, trace_path="auto"):
    """``G0`` for the kernels: ``gram0(K0)`` on the Gram path, else the empty marker.

    ``trace_path`` is ``"auto"`` (:func:`use_gram`), ``"gram"`` or ``"jacobian"``;
    Hutchinson estimates always take the Jacobian (probe) path.
    """
    if trace_path not in ("auto", "gram", "jacobian"):
        raise ValueError(f"trace_path must be 'auto', 'gram' or 'jacobian', got {trace_path!r}")
    m, M = P["K0"].shape[0], P["K"].shape[0]
    if exact and (trace_path == "gram" or (trace_path == "auto" and use_gram(d, m, M))):
        return gram0(P["K0"], d)
    return NO_GRAM


@njit(cache=True, fastmath=FASTMATH)
def gram_trace(h, K, g, q, z, G0, Gam, R):
    r"""Exact Laplacian of the network part by Gram matrices (D3, any ``d``).

    With ``J_0 = D_0 K_{0,x}`` and ``J_i = (I + h D_i K_i) J_{i-1}`` (``D_i = diag
    sigma'(a_i)``), ``tr = sum_j q_{0j} z_{1j} |J_0 row|^2 + h sum_i sum_j q_{ij} z_{i+1,j}
    (K_i Gamma_{i-1} K_i^T)_{jj}`` only needs ``Gamma_i = J_i J_i^T`` (m x m):
    ``Gamma_0 = D_0 G_0 D_0`` and ``Gamma_i = Gamma_{i-1} + h (D_i R_i + R_i^T D_i)
    + h^2 D_i R_i K_i^T D_i`` with ``R_i = K_i Gamma_{i-1}``.  Stores ``Gamma_i`` in
    ``Gam[i]`` (i < M) and ``R_i`` in ``R[i]``; returns the trace.
    """
    M = K.shape[0]
    m = G0.shape[0]
    lap = 0.0
    for j in range(m):
        lap += q[0, j] * z[1, j] * G0[j, j]
        for k in range(m):
            Gam[0, j, k] = g[0, j] * G0[j, k] * g[0, k]
    for i in range(1, M + 1):
        Ki = K[i - 1]
        Gp = Gam[i - 1]
        Ri = R[i]
        for j in range(m):
            for k in range(m):
                Ri[j, k] = 0.0
            for l in range(m):
                kjl = Ki[j, l]
                for k in range(m):
                    Ri[j, k] += kjl * Gp[l, k]
        ti = 0.0
        for j in range(m):
            pj = 0.0
            for k in range(m):
                pj += Ri[j, k] * Ki[j, k]
            ti += q[i, j] * z[i + 1, j] * pj
        lap += h * ti
        if i < M:
            Gi = Gam[i]
            for j in range(m):
                hg = h * g[i, j]
                for k in range(m):
                    sjk = 0.0
                    for l in range(m):
                        sjk += Ri[j, l] * Ki[k, l]
                    Gi[j, k] = Gp[j, k] + hg * Ri[j, k] + h * Ri[k, j] * g[i, k] \
                        + hg * h * sjk * g[i, k]
    return lap


@njit(cache=True, fastmath=FASTMATH)
def gram_trace_vjp(h, lb, K, g, q, z, G0, Gam, R, gbar, qbar, zbar, Gb, Rb, Sb, BK, BG0):
    """Adjoint of ``_gram_trace`` for the cotangent ``lb`` of the trace.

    Adds to ``gbar``, ``qbar``, ``zbar`` (as the Jacobian path does), to the ``K_i``
    cotangents ``BK`` and to ``BG0``, the cotangent of ``G_0`` (turned into a ``K_0``
    cotangent once per call by :func:`gram0_vjp`).  ``Gb`` carries the (symmetrized)
    cotangent of ``Gamma_i``; ``Rb``, ``Sb`` those of ``R_i`` and ``S_i = R_i K_i^T``.
    """
    M = K.shape[0]
    m = G0.shape[0]
    for j in range(m):
        for k in range(m):
            Gb[j, k] = 0.0
    for i in range(M, 0, -1):
        Ki = K[i - 1]
        BKi = BK[i - 1]
        Gp = Gam[i - 1]
        Ri = R[i]
        if i == M:
            # only the diagonal of S_M enters (the trace term)
            for j in range(m):
                pj = 0.0
                for k in range(m):
                    pj += Ri[j, k] * Ki[j, k]
                qbar[i, j] += h * lb * z[i + 1, j] * pj
                zbar[i + 1, j] += h * lb * q[i, j] * pj
                sb = h * lb * q[i, j] * z[i + 1, j]
                for k in range(m):
                    Rb[j, k] = sb * Ki[j, k]
                    BKi[j, k] += sb * Ri[j, k]
        else:
            for j in range(m):
                gi = g[i, j]
                acc = 0.0
                for k in range(m):
                    sjk = 0.0
                    for l in range(m):
                        sjk += Ri[j, l] * Ki[k, l]
                    gbv = Gb[j, k]
                    acc += gbv * (Ri[j, k] + h * sjk * g[i, k])
                    Rb[j, k] = 2.0 * h * gi * gbv
                    Sb[j, k] = h * h * gi * g[i, k] * gbv
                gbar[i, j] += 2.0 * h * acc
                pj = 0.0
                for k in range(m):
                    pj += Ri[j, k] * Ki[j, k]
                qbar[i, j] += h * lb * z[i + 1, j] * pj
                zbar[i + 1, j] += h * lb * q[i, j] * pj
                Sb[j, j] += h * lb * q[i, j] * z[i + 1, j]
            # S = R K^T:  Rb += Sb K,  BK += Sb^T R
            for j in range(m):
                for k in range(m):
                    sb = Sb[j, k]
                    for l in range(m):
                        Rb[j, l] += sb * Ki[k, l]
                        BKi[k, l] += sb * Ri[j, l]
        # R = K Gamma_{i-1}:  BK += Rb Gamma_{i-1},  Gb(i-1) = Gb(i) + K^T Rb
        # (two loop nests, each contiguous in its innermost index)
        for j in range(m):
            for k in range(m):
                rb = Rb[j, k]
                for l in range(m):
                    BKi[j, l] += rb * Gp[k, l]
        for j in range(m):
            for l in range(m):
                kjl = Ki[j, l]
                for k in range(m):
                    Gb[l, k] += kjl * Rb[j, k]
        for j in range(m):
            for k in range(j + 1, m):
                v = 0.5 * (Gb[j, k] + Gb[k, j])
                Gb[j, k] = v
                Gb[k, j] = v
    # Gamma_0 = D_0 G_0 D_0 and the level-0 trace term q_0 z_1 diag(G_0)
    for j in range(m):
        acc = 0.0
        for k in range(m):
            gbv = Gb[j, k]
            acc += gbv * G0[j, k] * g[0, k]
            BG0[j, k] += g[0, j] * gbv * g[0, k]
        gbar[0, j] += 2.0 * acc
        qbar[0, j] += lb * z[1, j] * G0[j, j]
        zbar[1, j] += lb * q[0, j] * G0[j, j]
        BG0[j, j] += lb * q[0, j] * z[1, j]


@njit(cache=True)
def _workspace(M, m):
    """Per-block scratch: activations, reverse sweep, Gram matrices and the packed ``g g^T``
    (zero-padded like ``H``)."""
    return (np.empty((M + 1, m)), np.empty((M + 1, m)), np.empty((M + 1, m)), np.empty((M + 1, m)),
            np.empty((M + 2, m)), np.empty((M + 1, m)), np.empty((M + 1, m, m)),
            np.empty((M + 1, m, m)), np.zeros(-(-(m * (m + 1) // 2) // PAD) * PAD))


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def fwd_kernel(P0, h, w, K, bK, G0, H, trace, edges, Y0, phin, lapn):
    """Per sample: ``phin = w^T u_M``, ``Y0 = y_0`` and (``trace``) the network's Laplacian.
    ``P0`` (the pre-activations ``a_0``) and ``Y0`` are (m, n): one column per sample, as are
    ``Y0bar`` and ``A0bar`` of the vjp kernels."""
    M = K.shape[0]
    m = w.shape[0]
    for blk in prange(edges.size - 1):
        a, g, q, u, z, y, Gam, R, gg = _workspace(M, m)
        for n in range(edges[blk], edges[blk + 1]):
            for j in range(m):
                a[0, j] = P0[j, n]
            phin[n] = net_forward(h, w, K, bK, a, g, q, u, z, y)
            for j in range(m):
                Y0[j, n] = y[0, j]
            if trace:
                if H.shape[0] > 0:
                    lapn[n] = h_trace(h, H, g, q, z, G0, gg)
                else:
                    lapn[n] = gram_trace(h, K, g, q, z, G0, Gam, R)


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def vjp_kernel(P0, h, w, K, bK, G0, H, Y0bar, phib, lb, edges, A0bar, Bw, BK, BbK, BG0, BH):
    """Per sample: the adjoint of :func:`fwd_kernel` down to ``abar_0``, written to
    ``A0bar`` (which may be ``Y0bar`` itself: row ``n`` is read before it is written)."""
    M = K.shape[0]
    m = w.shape[0]
    for blk in prange(edges.size - 1):
        a, g, q, u, z, y, Gam, R, gg = _workspace(M, m)
        gbar, qbar, zbar = np.empty((M + 1, m)), np.empty((M + 1, m)), np.empty((M + 2, m))
        ubar, abar = np.empty(m), np.empty(m)
        Gb, Rb, Sb = np.empty((m, m)), np.empty((m, m)), np.empty((m, m))
        Nt = np.empty(gg.size)
        for n in range(edges[blk], edges[blk + 1]):
            for j in range(m):
                a[0, j] = P0[j, n]
            net_forward(h, w, K, bK, a, g, q, u, z, y)
            gbar[:] = 0.0
            qbar[:] = 0.0
            zbar[:] = 0.0
            if lb[n] != 0.0:
                if H.shape[0] > 0:
                    h_trace_vjp(h, lb[n], H, g, q, z, G0, gg, Nt, gbar, qbar, zbar, BH[blk],
                                 BG0[blk])
                else:
                    gram_trace(h, K, g, q, z, G0, Gam, R)
                    gram_trace_vjp(h, lb[n], K, g, q, z, G0, Gam, R, gbar, qbar, zbar, Gb, Rb, Sb,
                                    BK[blk], BG0[blk])
            net_vjp(Y0bar[:, n], phib[n], h, w, K, g, q, u, z, y, gbar, qbar, zbar, ubar, abar,
                     Bw[blk], BK[blk], BbK[blk])
            for j in range(m):
                A0bar[j, n] = abar[j]


def _setup(P, G0):
    """Contiguous parameters, ``KA = [K_0; A]`` ((m + r) x D) and ``H`` (empty unless M = 1)."""
    prm = params(P)._asdict()
    H = h_matrix(prm["K"][0], G0) if prm["K"].shape[0] == 1 else np.zeros((0, 0))
    return prm, np.concatenate([prm["K0"], prm["A"]]), H


def _mul_st(M, S, bias=None):
    """``M S^T (+ bias)``, (k, n), for the samples ``S = [x, t]``: an (n, D) array, or a pair
    ``(x, t)`` of an (n, d) array (any row stride) and a scalar time, whose product is
    ``M[:, :d] x^T + t M[:, d]`` -- no (n, D) copy of the state is formed."""
    if isinstance(S, tuple):
        x, t = S
        out = M[:, :-1] @ x.T
        col = t * M[:, -1] if bias is None else t * M[:, -1] + bias
        out += col[:, None]
        return out
    out = M @ S.T
    if bias is not None:
        out += bias[:, None]
    return out


def _mul_s(L, S):
    """``L S`` for ``L`` (k, n) and the samples of ``_mul_st`` (the time column of a pair is
    ``t sum_n L[:, n]``)."""
    if isinstance(S, tuple):
        x, t = S
        out = np.empty((L.shape[0], x.shape[1] + 1))
        np.matmul(L, x, out=out[:, :-1])
        out[:, -1] = t * L.sum(1)
        return out
    return L @ S


def forward(P, S, h, G0, edges, trace=True, value=True, tape=False):
    """``(phi, G, lap, cache)`` of the potential (D1--D3) on the Gram path for the samples
    ``S`` (an (n, d+1) array, or a pair ``(x, t)`` of the states (n, d) and a scalar time:
    ``_mul_st``); ``cache`` serves :func:`vjp` at the same point, and with ``tape``
    (``M = 1``) it holds the tiles' forward values too (``_fwd_tiles``, ``tape_floats``
    floats), which the vjp then reads instead of recomputing them.  ``phi`` (``lap``) is
    ``None`` when ``value`` (``trace``) is False.

    Two GEMMs with ``KA = [K_0; A]``: ``[P_0, A s]^T = KA S^T + [b_0, 0]`` and
    ``G = [Y_0, A s, 1] [KA; b^T]`` (the bias as a column of ones).  The products of
    width ``m + r`` are kept transposed, one row per unit and the samples along the rows
    (the GEMMs are faster that way round and the kernels read the samples contiguously).
    """
    prm, KA, H = _setup(P, G0)
    if not isinstance(S, tuple):
        S = np.ascontiguousarray(S, dtype=np.float64)
    n = S[0].shape[0] if isinstance(S, tuple) else S.shape[0]
    m, r = prm["K0"].shape[0], prm["A"].shape[0]
    PA = _mul_st(KA, S, np.concatenate([prm["b0"], np.zeros(r)]))   # [P_0, A s]^T
    P0 = PA[:m]
    YA = np.empty((m + r + 1, n))         # [Y_0, A s, 1]^T
    YA[m:m + r] = PA[m:]
    YA[-1] = 1.0
    phin = np.empty(n)
    lapn = np.empty(n) if trace else np.empty(0)
    NT = no_tape(m)
    if H.shape[0]:  # M = 1: tiles of samples
        if tape:
            NT = np.empty((-(-n // TILE), NT_ARRAYS, m, TILE))
        fwd_tiles(P0, float(h), prm["w"], prm["K"], prm["bK"], G0, H, bool(trace),
                   edges.size - 1, YA[:m], phin, lapn, NT)
    else:
        fwd_kernel(P0, float(h), prm["w"], prm["K"], prm["bK"], G0, H, bool(trace), edges,
                    YA[:m], phin, lapn)
    G = YA.T @ np.vstack([KA, prm["b"]])
    phi = lap = None
    if value:
        As = PA[m:]
        phi = phin + prm["c"][0] + 0.5 * np.einsum("ln,ln->n", As, As) + _mul_st(prm["b"][None], S)[0]
    if trace:
        lap = lapn + float(np.sum(prm["A"][:, :-1] ** 2))
    return phi, G, lap, (S, PA, YA, NT)


def vjp(P, S, h, G0, edges, phib, Gb, lb, cache=None, sbar_out=None, work=None):
    """``(sbar, parameter cotangents)`` of :func:`forward` for the cotangents
    ``phib`` (n,) or ``None`` (zero), ``Gb`` (n, d+1) and ``lb`` (n,) (D6).  ``sbar`` is
    (n, d+1) for an array ``S`` and (n, d) (the states' part) for a pair ``(x, t)``;
    written into ``sbar_out`` when given; ``work`` (a :class:`~ocp_learn.arrays.Workspace`)
    keeps the scratch product ``AB`` from one call to the next.

    GEMMs (with the transposed products of :func:`forward`): ``[Ybar_0, A Gbar]^T = KA Gbar^T``,
    ``sbar = [Abar_0, A Gbar + phibar A s] KA`` and
    ``[Kbar_0; Abar; bbar] = [Y_0, A s, 1]^T Gbar + [Abar_0, A Gbar + phibar A s]^T S``.
    """
    prm, KA, H = _setup(P, G0)
    S, PA, YA, NT = cache if cache is not None else forward(P, S, h, G0, edges, False, False)[3]
    D = Gb.shape[1]
    d = D - 1
    m = prm["K0"].shape[0]
    A, K = prm["A"], prm["K"]
    Gb = np.ascontiguousarray(Gb, dtype=np.float64)
    lb = np.ascontiguousarray(lb, dtype=np.float64)
    n = Gb.shape[0]
    phin = np.zeros(n) if phib is None else np.ascontiguousarray(phib, dtype=np.float64)
    nb = edges.size - 1
    Bw, BK, BbK = np.zeros((nb,) + prm["w"].shape), np.zeros((nb,) + K.shape), \
        np.zeros((nb,) + prm["bK"].shape)
    BG0, BH = np.zeros((nb,) + G0.shape), np.zeros((nb,) + H.shape)
    # [Ybar_0, A Gbar]^T, then [Abar_0, A Gbar]^T
    AB = KA @ Gb.T if work is None else np.matmul(
        KA, Gb.T, out=work.array("AB", (KA.shape[0], Gb.shape[0]), np.result_type(KA, Gb)))
    if H.shape[0]:  # M = 1: tiles of samples
        vjp_tiles(PA[:m], float(h), prm["w"], K, prm["bK"], G0, H, AB[:m], phin, lb,
                   nb, AB[:m], Bw, BK, BbK, BG0, BH, NT)
    else:
        vjp_kernel(PA[:m], float(h), prm["w"], K, prm["bK"], G0, H, AB[:m], phin, lb,
                    edges, AB[:m], Bw, BK, BbK, BG0, BH)
    if phib is not None:
        AB[m:] += phin * PA[m:]             # the cotangent phibar A s of A s
    ncol = d if isinstance(S, tuple) else D
    sbar = np.matmul(AB.T, KA[:, :ncol], out=sbar_out)
    BKA = YA @ Gb                         # [Kbar_0; Abar; bbar] (first part)
    BKA[:-1] += _mul_s(AB, S)
    B = {"w": Bw.sum(0), "K": BK.sum(0), "bK": BbK.sum(0), "b": BKA[-1],
         "b0": AB[:m].sum(1), "c": np.zeros(1)}
    if phib is not None:
        sbar += phin[:, None] * prm["b"][:ncol]
        B["b"] += _mul_s(phin[None], S)[0]
        B["c"][0] = phin.sum()
    BKA[m:-1, :d] += 2.0 * lb.sum() * A[:, :d]
    BG0 = BG0.sum(0)
    if H.size:
        BK1, BG0h = h_matrix_vjp(K[0], G0, BH.sum(0))
        B["K"][0] += BK1
        BG0 += BG0h
    BKA[:m, :d] += gram0_vjp(prm["K0"], d, BG0)
    B["K0"], B["A"] = BKA[:m], BKA[m:-1]
    return sbar, {k: B[k].reshape(np.shape(P[k])) for k in B}
