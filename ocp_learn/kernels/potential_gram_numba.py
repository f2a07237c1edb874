r"""Gram path of the exact trace, split into GEMMs over the batch and a per-sample kernel in R^m.

On the Gram path (:func:`~ocp_learn.kernels.potential_numba._gram_trace`, MATH D3) the
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
:func:`~ocp_learn.kernels.potential_numba._net_forward` /
:func:`~ocp_learn.kernels.potential_numba._net_vjp` with the trace in between.

The fused flow field passes the samples as the pair ``(x, t)``: a view of the state's first
``d`` columns and the stage's scalar time, so that no ``(n, d+1)`` copy of the state is
formed; the time column enters as a rank-one term, the biases ``b_0`` and ``b`` ride in the
GEMMs (a column of ones next to ``[Y_0, A s]``), and the samples' cotangent is written by its
GEMM straight into the field's output (:func:`_mul_st`, :func:`_mul_s`; 0.85 s against
0.95--1.04 s for a crowd-motion gradient at d = 100, n = 8464, one thread).

One residual layer (``M = 1``, the MFG and OT-Flow default) has a cheaper trace.  With
``Gamma_0 = D_0 G_0 D_0`` the layer-1 term is
``sum_j q_{1j} z_{2j} (K_1 Gamma_0 K_1^T)_{jj} = sum_j q_{1j} z_{2j} g_0^T H_j g_0``,
``H_j = (K_{1,j} K_{1,j}^T) o G_0`` (elementwise product; ``m x m``, symmetric, the same for
every sample).  Per sample the forward pass is ``m`` dot products of length ``m^2`` with
``g_0 g_0^T``, and the adjoint of the cotangent ``lbar`` is

* ``qbar_{1j} += h lbar z_{2j} T_j``, ``zbar_{2j} += h lbar q_{1j} T_j``
  (``T_j = g_0^T H_j g_0``);
* ``gbar_0 += 2 (sum_j c_j H_j) g_0`` and ``Hbar_j += c_j g_0 g_0^T``,
  with ``c_j = h lbar q_{1j} z_{2j}``;

and ``Hbar`` becomes the ``K_1`` and ``G_0`` cotangents once per call
(:func:`h_matrix_vjp`).  For ``M = 1`` the kernels run over *tiles* of ``_TILE = 32`` samples
(:func:`_fwd_tiles`, :func:`_vjp_tiles`): each per-sample vector is an ``(m, 32)`` array with
the samples innermost, so the loops of length ``m = 16`` become vector operations over the
tile (measured at d = 100, n = 8464, one thread: forward with trace 6.4 ms against 8.4 ms
per sample, vjp 13 ms against 19 ms; tiles of 8 or 16 samples were slower than per sample).
The contractions with ``H`` are small GEMMs per tile (``np.dot``, BLAS): ``T = H [g g^T]``
(m x P times P x 32), and in the vjp ``N = H^T C`` and ``Hbar += C [g g^T]^T``: the
forward tile kernel with the trace took 4.4 ms against 5.2 ms with loops, the vjp 5.7 ms
against 6.6 ms (n = 4232, d = 100, one thread, interleaved in one process; the m x m
products of the residual layer stay loops, BLAS was slower there).  All loops are contiguous over ``m^2`` entries, where the general
recursion of :func:`~ocp_learn.kernels.potential_numba._gram_trace` has loops of
length ``m``.  Tested against the numpy reference to 1e-12 (``tests/test_kernels.py``).
"""
from __future__ import annotations

import functools

import numpy as np
from numba import njit, prange

from .potential_numba import (_FM, _act_row, _gram_trace, _gram_trace_vjp, _net_forward, _net_vjp,
                              _params,
                              gram0_vjp)

__all__ = ["h_matrix", "h_matrix_vjp", "forward", "vjp"]


#: ``H`` rows are padded with zeros to a multiple of this many entries, so that the
#: vectorized loops over them have no scalar remainder (measured 1.6x on the forward trace)
_PAD = 16


@functools.lru_cache(maxsize=8)
def _pairs(m):
    """Row and column of the packed upper triangle ``k <= l`` (``m (m + 1) / 2`` pairs;
    cached, read-only: ``np.triu_indices`` took 0.2 ms, four times per RK stage)."""
    k, l = np.triu_indices(m)
    k.flags.writeable = l.flags.writeable = False
    return k, l


def h_matrix(K1, G0):
    """``H`` (m, m(m+1)/2): row ``j`` is the upper triangle of ``(K_{1,j} K_{1,j}^T) o G_0``
    (module docstring), off-diagonal entries doubled, so that
    ``g^T H_j g = sum_p H[j, p] g_{k_p} g_{l_p}``."""
    k, l = _pairs(G0.shape[0])
    P = k.size
    H = np.zeros((K1.shape[0], -(-P // _PAD) * _PAD))  # zero columns up to a multiple of _PAD
    H[:, :P] = K1[:, k] * K1[:, l] * (G0[k, l] * np.where(k == l, 1.0, 2.0))
    return H


def h_matrix_vjp(K1, G0, BH):
    """Cotangents ``(K1bar, G0bar)`` of :func:`h_matrix` for ``Hbar`` (m, m(m+1)/2),
    ``Hbar[j, p] = sum_n c_{nj} g_{k_p} g_{l_p}`` as :func:`_h_trace_vjp` accumulates it
    (the cotangent of the symmetric ``H_j[k, l]`` in each of its two entries)."""
    m = G0.shape[0]
    k, l = _pairs(m)
    B3 = np.zeros((BH.shape[0], m, m))
    B3[:, k, l] = BH[:, :k.size]
    B3[:, l, k] = BH[:, :k.size]
    BK1 = 2.0 * np.einsum("jkl,jl,kl->jk", B3, K1, G0)
    BG0 = np.einsum("jkl,jk,jl->kl", B3, K1, K1)
    return BK1, BG0


@njit(cache=True, fastmath=_FM)
def _outer_packed(g, gg):
    """``gg[p] = g_k g_l`` over the packed pairs ``k <= l`` (row-major, as ``np.triu_indices``)."""
    m = g.shape[0]
    for k in range(m):
        gk = g[k]
        o = k * (2 * m - k - 1) // 2   # gg[o + l] = g_k g_l, l = k..m-1
        for l in range(k, m):
            gg[o + l] = gk * g[l]


@njit(cache=True, fastmath=_FM)
def _h_trace(h, H, g, q, z, G0, gg):
    """Exact Laplacian of the network for ``M = 1`` through ``H`` (module docstring)."""
    m = G0.shape[0]
    P = H.shape[1]
    _outer_packed(g[0], gg)
    lap = 0.0
    t1 = 0.0
    for j in range(m):
        lap += q[0, j] * z[1, j] * G0[j, j]
        acc = 0.0
        for p in range(P):
            acc += H[j, p] * gg[p]
        t1 += q[1, j] * z[2, j] * acc
    return lap + h * t1


@njit(cache=True, fastmath=_FM)
def _h_trace_vjp(h, lb, H, g, q, z, G0, gg, Nt, gbar, qbar, zbar, BH, BG0):
    """Adjoint of :func:`_h_trace` for the cotangent ``lb``; adds to ``gbar``, ``qbar``,
    ``zbar``, ``BH`` (cotangent of ``H``) and ``BG0`` (of ``G_0``)."""
    m = G0.shape[0]
    P = H.shape[1]
    _outer_packed(g[0], gg)
    for p in range(P):
        Nt[p] = 0.0
    for j in range(m):
        qbar[0, j] += lb * z[1, j] * G0[j, j]
        zbar[1, j] += lb * q[0, j] * G0[j, j]
        BG0[j, j] += lb * q[0, j] * z[1, j]
        cj = h * lb * q[1, j] * z[2, j]
        Tj = 0.0
        for p in range(P):  # one pass over H_j: T_j, N += c_j H_j, Hbar_j += c_j g g^T
            hjp = H[j, p]
            Tj += hjp * gg[p]
            Nt[p] += cj * hjp
            BH[j, p] += cj * gg[p]
        qbar[1, j] += h * lb * z[2, j] * Tj
        zbar[2, j] += h * lb * q[1, j] * Tj
    # gbar_0 += 2 N g_0 with N = sum_j c_j H_j: Nt holds N's upper triangle, off-diagonal doubled
    for k in range(m):
        o = k * (2 * m - k - 1) // 2
        gk = g[0, k]
        acc = 2.0 * Nt[o + k] * gk
        for l in range(k + 1, m):
            acc += Nt[o + l] * g[0, l]
            gbar[0, l] += Nt[o + l] * gk
        gbar[0, k] += acc


@njit(cache=True)
def _workspace(M, m):
    """Per-block scratch: activations, reverse sweep, Gram matrices and the packed ``g g^T``
    (zero-padded like ``H``)."""
    return (np.empty((M + 1, m)), np.empty((M + 1, m)), np.empty((M + 1, m)), np.empty((M + 1, m)),
            np.empty((M + 2, m)), np.empty((M + 1, m)), np.empty((M + 1, m, m)),
            np.empty((M + 1, m, m)), np.zeros(-(-(m * (m + 1) // 2) // _PAD) * _PAD))


@njit(cache=True, parallel=True, fastmath=_FM)
def _fwd_kernel(P0, h, w, K, bK, G0, H, trace, edges, Y0, phin, lapn):
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
            phin[n] = _net_forward(h, w, K, bK, a, g, q, u, z, y)
            for j in range(m):
                Y0[j, n] = y[0, j]
            if trace:
                if H.shape[0] > 0:
                    lapn[n] = _h_trace(h, H, g, q, z, G0, gg)
                else:
                    lapn[n] = _gram_trace(h, K, g, q, z, G0, Gam, R)


@njit(cache=True, parallel=True, fastmath=_FM)
def _vjp_kernel(P0, h, w, K, bK, G0, H, Y0bar, phib, lb, edges, A0bar, Bw, BK, BbK, BG0, BH):
    """Per sample: the adjoint of :func:`_fwd_kernel` down to ``abar_0``, written to
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
            _net_forward(h, w, K, bK, a, g, q, u, z, y)
            gbar[:] = 0.0
            qbar[:] = 0.0
            zbar[:] = 0.0
            if lb[n] != 0.0:
                if H.shape[0] > 0:
                    _h_trace_vjp(h, lb[n], H, g, q, z, G0, gg, Nt, gbar, qbar, zbar, BH[blk],
                                 BG0[blk])
                else:
                    _gram_trace(h, K, g, q, z, G0, Gam, R)
                    _gram_trace_vjp(h, lb[n], K, g, q, z, G0, Gam, R, gbar, qbar, zbar, Gb, Rb, Sb,
                                    BK[blk], BG0[blk])
            _net_vjp(Y0bar[:, n], phib[n], h, w, K, g, q, u, z, y, gbar, qbar, zbar, ubar, abar,
                     Bw[blk], BK[blk], BbK[blk])
            for j in range(m):
                A0bar[j, n] = abar[j]


# ---------------------------------------------------------------- one residual layer, in tiles
#: samples per tile of the one-layer (M = 1) kernels: every per-sample vector is an (m, _TILE)
#: array with the samples innermost, so that the loops of length m = 16 become vector
#: operations over the tile (the per-sample kernels above run loops of length m)
_TILE = 32
#: arrays per tile on the forward tape of the tiles (:func:`_fwd_tiles`, :func:`tape_floats`)
_NT = 9


@njit(cache=True)
def _tile_workspace(m, P, k):
    """Per-block scratch of the tile kernels: ``k`` (m, B) arrays and two (P, B) arrays (the
    packed ``g_0 g_0^T`` and ``N``; zero rows beyond m(m+1)/2 so that ``H``'s padding
    multiplies zeros)."""
    B = _TILE
    return ([np.zeros((m, B)) for _ in range(k)], np.zeros((P, B)), np.zeros((P, B)))


@njit(cache=True, fastmath=_FM)
def _tile_net(P0, n0, nb, h, w, K1, b1, V):
    """:func:`_net_forward` (M = 1) for the samples ``n0 .. n0 + nb - 1`` (columns of the
    tile; columns past ``nb`` hold zeros): ``a_0``, ``u_0 = sigma(a_0)``, ``g_0``, ``q_0``,
    ``a_1 = K_1 u_0 + b_1``, ``u_1 = u_0 + h sigma(a_1)``, ``g_1``, ``q_1``,
    ``y_1 = g_1 * w``, ``z_1 = w + h K_1^T y_1``."""
    a0, u0, g0, q0, a1, u1, g1, q1, y1, z1 = V[0], V[1], V[2], V[3], V[4], V[5], V[6], V[7], \
        V[8], V[9]
    m, B = a0.shape
    for j in range(m):
        for b in range(nb):
            a0[j, b] = P0[j, n0 + b]
        for b in range(nb, B):
            a0[j, b] = 0.0
    _act_row(a0.reshape(m * B), u0.reshape(m * B), g0.reshape(m * B), q0.reshape(m * B))
    for j in range(m):
        for b in range(B):
            a1[j, b] = b1[j]
        for k in range(m):
            kjk = K1[j, k]
            for b in range(B):
                a1[j, b] += kjk * u0[k, b]
    _act_row(a1.reshape(m * B), u1.reshape(m * B), g1.reshape(m * B), q1.reshape(m * B))
    for j in range(m):
        wj = w[j]
        for b in range(B):
            u1[j, b] = u0[j, b] + h * u1[j, b]
            y1[j, b] = g1[j, b] * wj
            z1[j, b] = wj
    for j in range(m):
        for k in range(m):
            kjk = K1[j, k]
            for b in range(B):
                z1[k, b] += kjk * (h * y1[j, b])


@njit(cache=True, fastmath=_FM)
def _tile_gg(g0, gg):
    """The packed ``g_0 g_0^T`` of the tile, ``gg`` (P, B)."""
    m, B = g0.shape
    o = 0
    for k in range(m):
        for l in range(k, m):
            for b in range(B):
                gg[o, b] = g0[k, b] * g0[l, b]
            o += 1


@njit(cache=True, fastmath=_FM)
def _tile_trace(H, g0, gg, T):
    """``T_j = g_0^T H_j g_0`` for the tile: ``gg`` the packed ``g_0 g_0^T`` (P, B)."""
    _tile_gg(g0, gg)
    np.dot(H, gg, T)  # a GEMM (m x P x B)


@njit(cache=True, parallel=True, fastmath=_FM)
def _fwd_tiles(P0, h, w, K, bK, G0, H, trace, nblk, Y0, phin, lapn, NT):
    """:func:`_fwd_kernel` for M = 1 in tiles of ``_TILE`` samples (the trace through ``H``).
    With a tape ``NT`` (``(ntiles, _NT, m, _TILE)``; empty for none) each tile's
    ``u_0, g_0, q_0, u_1, g_1, q_1, y_1, z_1, T`` are kept there for :func:`_vjp_tiles`."""
    n = P0.shape[1]
    taped = NT.shape[0] > 0
    m = w.shape[0]
    B = _TILE
    ntile = (n + B - 1) // B
    for blk in prange(nblk):
        V, gg, _ = _tile_workspace(m, H.shape[1], 11)
        g0, q0, u1, q1, z1, T = V[2], V[3], V[5], V[7], V[9], V[10]
        for tile in range(blk * ntile // nblk, (blk + 1) * ntile // nblk):
            n0 = tile * B
            nb = min(B, n - n0)
            _tile_net(P0, n0, nb, h, w, K[0], bK[0], V)
            for b in range(nb):
                phi = 0.0
                for j in range(m):
                    phi += w[j] * u1[j, b]
                    Y0[j, n0 + b] = g0[j, b] * z1[j, b]
                phin[n0 + b] = phi
            if trace or taped:
                _tile_trace(H, g0, gg, T)
            if taped:
                for i in range(_NT):  # V without a_0 and a_1
                    NT[tile, i] = V[i + 1] if i < 3 else V[i + 2]
            if trace:
                for b in range(nb):
                    lap = 0.0
                    t1 = 0.0
                    for j in range(m):
                        lap += q0[j, b] * z1[j, b] * G0[j, j]
                        t1 += q1[j, b] * w[j] * T[j, b]
                    lapn[n0 + b] = lap + h * t1


@njit(cache=True, parallel=True, fastmath=_FM)
def _vjp_tiles(P0, h, w, K, bK, G0, H, Y0bar, phib, lb, nblk, A0bar, Bw, BK, BbK, BG0, BH, NT):
    """:func:`_vjp_kernel` for M = 1 in tiles: the adjoint of :func:`_fwd_tiles` (trace
    through ``H``, module docstring; then :func:`_net_vjp`'s M = 1 sweep) down to
    ``abar_0``, written to ``A0bar`` (which may be ``Y0bar``: a tile is read before it is
    written).  Padded columns get zero cotangents, so they add nothing.  The forward
    values come from :func:`_fwd_tiles`' tape ``NT`` when it is not empty, else they are
    recomputed."""
    taped = NT.shape[0] > 0
    n = P0.shape[1]
    m = w.shape[0]
    P = H.shape[1]
    B = _TILE
    ntile = (n + B - 1) // B
    K1 = K[0]
    HT = np.ascontiguousarray(H.T)
    for blk in prange(nblk):
        V, gg, Nt = _tile_workspace(m, P, 22)  # 11 of _tile_net/_tile_trace, 11 cotangents
        ybr, qb0, zb1, c, qb1, zb2, gb0, gb1, ub, ab1, acc = V[11], V[12], V[13], V[14], V[15], \
            V[16], V[17], V[18], V[19], V[20], V[21]
        lv = np.zeros(B)
        pv = np.zeros(B)
        BK1 = BK[blk, 0]
        for tile in range(blk * ntile // nblk, (blk + 1) * ntile // nblk):
            n0 = tile * B
            nb = min(B, n - n0)
            if taped:
                u0, g0, q0, u1, g1, q1, y1, z1, T = NT[tile, 0], NT[tile, 1], NT[tile, 2], \
                    NT[tile, 3], NT[tile, 4], NT[tile, 5], NT[tile, 6], NT[tile, 7], NT[tile, 8]
                _tile_gg(g0, gg)
            else:
                _tile_net(P0, n0, nb, h, w, K1, bK[0], V)
                u0, g0, q0, u1, g1, q1, y1, z1, T = V[1], V[2], V[3], V[5], V[6], V[7], V[8], \
                    V[9], V[10]
                _tile_trace(H, g0, gg, T)
            for b in range(B):
                lv[b] = lb[n0 + b] if b < nb else 0.0
                pv[b] = phib[n0 + b] if b < nb else 0.0
            for j in range(m):
                for b in range(B):
                    ybr[j, b] = Y0bar[j, n0 + b] if b < nb else 0.0
            # the trace's adjoint (module docstring)
            for j in range(m):
                gjj = G0[j, j]
                wj = w[j]
                sg = 0.0
                for b in range(B):
                    lvb = lv[b]
                    qb0[j, b] = lvb * z1[j, b] * gjj
                    zb1[j, b] = lvb * q0[j, b] * gjj
                    sg += lvb * q0[j, b] * z1[j, b]
                    c[j, b] = h * lvb * q1[j, b] * wj
                    qb1[j, b] = h * lvb * wj * T[j, b]
                    zb2[j, b] = h * lvb * q1[j, b] * T[j, b]
                BG0[blk, j, j] += sg
            np.dot(HT, c, Nt)       # N = sum_j c_j H_j, (P, B)
            BH[blk] += np.dot(c, gg.T)  # Hbar_j += c_j g g^T
            for k in range(m):
                for b in range(B):
                    gb0[k, b] = 0.0
            o = 0
            for k in range(m):
                for b in range(B):
                    gb0[k, b] += 2.0 * Nt[o, b] * g0[k, b]
                o += 1
                for l in range(k + 1, m):
                    for b in range(B):
                        gb0[k, b] += Nt[o, b] * g0[l, b]
                        gb0[l, b] += Nt[o, b] * g0[k, b]
                    o += 1
            # the network's adjoint (_net_vjp with M = 1)
            for j in range(m):
                for b in range(B):
                    gb0[j, b] += ybr[j, b] * z1[j, b]
                    zb1[j, b] += ybr[j, b] * g0[j, b]
                    zb2[j, b] += zb1[j, b]
            for j in range(m):
                for b in range(B):
                    acc[j, b] = 0.0
                for k in range(m):
                    kjk = K1[j, k]
                    s1 = 0.0
                    for b in range(B):
                        acc[j, b] += kjk * zb1[k, b]
                        s1 += (h * y1[j, b]) * zb1[k, b]
                    BK1[j, k] += s1
                wj = w[j]
                for b in range(B):
                    ha = h * acc[j, b]
                    gb1[j, b] = ha * wj
                    zb2[j, b] += ha * g1[j, b]
            for j in range(m):
                wj = w[j]
                sw = 0.0
                sb = 0.0
                for b in range(B):
                    sw += zb2[j, b] + pv[b] * u1[j, b]
                    ub[j, b] = pv[b] * wj
                    a = h * g1[j, b] * ub[j, b] + (gb1[j, b] - 2.0 * g1[j, b] * qb1[j, b]) * q1[j, b]
                    ab1[j, b] = a
                    sb += a
                Bw[blk, j] += sw
                BbK[blk, 0, j] += sb
            for j in range(m):
                for k in range(m):
                    kjk = K1[j, k]
                    s1 = 0.0
                    for b in range(B):
                        s1 += ab1[j, b] * u0[k, b]
                        ub[k, b] += ab1[j, b] * kjk
                    BK1[j, k] += s1
            for j in range(m):
                for b in range(nb):
                    A0bar[j, n0 + b] = g0[j, b] * ub[j, b] + (gb0[j, b] - 2.0 * g0[j, b] * qb0[j, b]) \
                        * q0[j, b]


def _setup(P, G0):
    """Contiguous parameters, ``KA = [K_0; A]`` ((m + r) x D) and ``H`` (empty unless M = 1)."""
    prm = dict(zip(("w", "A", "b", "c", "K0", "b0", "K", "bK"), _params(P)))
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
    """``L S`` for ``L`` (k, n) and the samples of :func:`_mul_st` (the time column of a pair is
    ``t sum_n L[:, n]``)."""
    if isinstance(S, tuple):
        x, t = S
        out = np.empty((L.shape[0], x.shape[1] + 1))
        np.matmul(L, x, out=out[:, :-1])
        out[:, -1] = t * L.sum(1)
        return out
    return L @ S


def tape_floats(n, m, M):
    """Floats of :func:`forward`'s tape of the tiles for ``n`` samples (0 unless ``M = 1``)."""
    return -(-n // _TILE) * _NT * m * _TILE if M == 1 else 0


def _no_tape(m):
    return np.empty((0, _NT, m, _TILE))


def forward(P, S, h, G0, edges, trace=True, value=True, tape=False):
    """``(phi, G, lap, cache)`` of the potential (D1--D3) on the Gram path for the samples
    ``S`` (an (n, d+1) array, or a pair ``(x, t)`` of the states (n, d) and a scalar time:
    :func:`_mul_st`); ``cache`` serves :func:`vjp` at the same point, and with ``tape``
    (``M = 1``) it holds the tiles' forward values too (:func:`_fwd_tiles`, :func:`tape_floats`
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
    NT = _no_tape(m)
    if H.shape[0]:  # M = 1: tiles of samples
        if tape:
            NT = np.empty((-(-n // _TILE), _NT, m, _TILE))
        _fwd_tiles(P0, float(h), prm["w"], prm["K"], prm["bK"], G0, H, bool(trace),
                   edges.size - 1, YA[:m], phin, lapn, NT)
    else:
        _fwd_kernel(P0, float(h), prm["w"], prm["K"], prm["bK"], G0, H, bool(trace), edges,
                    YA[:m], phin, lapn)
    G = YA.T @ np.vstack([KA, prm["b"]])
    phi = lap = None
    if value:
        As = PA[m:]
        phi = phin + prm["c"][0] + 0.5 * np.einsum("ln,ln->n", As, As) + _mul_st(prm["b"][None], S)[0]
    if trace:
        lap = lapn + float(np.sum(prm["A"][:, :-1] ** 2))
    return phi, G, lap, (S, PA, YA, NT)


def vjp(P, S, h, G0, edges, phib, Gb, lb, cache=None, sbar_out=None):
    """``(sbar, parameter cotangents)`` of :func:`forward` for the cotangents
    ``phib`` (n,) or ``None`` (zero), ``Gb`` (n, d+1) and ``lb`` (n,) (D6).  ``sbar`` is
    (n, d+1) for an array ``S`` and (n, d) (the states' part) for a pair ``(x, t)``;
    written into ``sbar_out`` when given.

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
    AB = KA @ Gb.T                        # [Ybar_0, A Gbar]^T, then [Abar_0, A Gbar]^T
    if H.shape[0]:  # M = 1: tiles of samples
        _vjp_tiles(PA[:m], float(h), prm["w"], K, prm["bK"], G0, H, AB[:m], phin, lb,
                   nb, AB[:m], Bw, BK, BbK, BG0, BH, NT)
    else:
        _vjp_kernel(PA[:m], float(h), prm["w"], K, prm["bK"], G0, H, AB[:m], phin, lb,
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
