r"""The trace of a potential with one residual layer, in tiles of samples (Gram path).

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
(:func:`h_matrix_vjp`).  For ``M = 1`` the kernels run over *tiles* of ``TILE = 32`` samples
(:func:`fwd_tiles`, :func:`vjp_tiles`): each per-sample vector is an ``(m, 32)`` array with
the samples innermost, so the loops of length ``m = 16`` become vector operations over the
tile (measured at d = 100, n = 8464, one thread: forward with trace 6.4 ms against 8.4 ms
per sample, vjp 13 ms against 19 ms; tiles of 8 or 16 samples were slower than per sample).
The contractions with ``H`` are small GEMMs per tile (``np.dot``, BLAS): ``T = H [g g^T]``
(m x P times P x 32), and in the vjp ``N = H^T C`` and ``Hbar += C [g g^T]^T``: the
forward tile kernel with the trace took 4.4 ms against 5.2 ms with loops, the vjp 5.7 ms
against 6.6 ms (n = 4232, d = 100, one thread, interleaved in one process; the m x m
products of the residual layer stay loops, BLAS was slower there).  All loops are
contiguous over ``m^2`` entries, where the general recursion of
:func:`.potential_gram_numba.gram_trace` has loops of length ``m``.  Tested against the
numpy reference to 1e-12 (``tests/test_kernels.py``).
"""
from __future__ import annotations

import functools

import numpy as np
from numba import njit, prange

from .activation_numba import act_row
from .numba_common import FASTMATH

__all__ = ["PAD", "TILE", "NT_ARRAYS", "h_matrix", "h_matrix_vjp", "h_trace", "h_trace_vjp",
           "fwd_tiles", "vjp_tiles", "tape_floats", "no_tape"]

#: ``H`` rows are padded with zeros to a multiple of this many entries, so that the
#: vectorized loops over them have no scalar remainder (measured 1.6x on the forward trace)
PAD = 16
#: samples per tile of the one-layer (M = 1) kernels: every per-sample vector is an (m, TILE)
#: array with the samples innermost, so that the loops of length m = 16 become vector
#: operations over the tile (the per-sample kernels run loops of length m)
TILE = 32
#: arrays per tile on the forward tape of the tiles (:func:`fwd_tiles`, :func:`tape_floats`)
NT_ARRAYS = 9


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
    H = np.zeros((K1.shape[0], -(-P // PAD) * PAD))  # zero columns up to a multiple of PAD
    H[:, :P] = K1[:, k] * K1[:, l] * (G0[k, l] * np.where(k == l, 1.0, 2.0))
    return H


def h_matrix_vjp(K1, G0, BH):
    """Cotangents ``(K1bar, G0bar)`` of :func:`h_matrix` for ``Hbar`` (m, m(m+1)/2),
    ``Hbar[j, p] = sum_n c_{nj} g_{k_p} g_{l_p}`` as :func:`h_trace_vjp` accumulates it
    (the cotangent of the symmetric ``H_j[k, l]`` in each of its two entries)."""
    m = G0.shape[0]
    k, l = _pairs(m)
    B3 = np.zeros((BH.shape[0], m, m))
    B3[:, k, l] = BH[:, :k.size]
    B3[:, l, k] = BH[:, :k.size]
    BK1 = 2.0 * np.einsum("jkl,jl,kl->jk", B3, K1, G0)
    BG0 = np.einsum("jkl,jk,jl->kl", B3, K1, K1)
    return BK1, BG0


@njit(cache=True, fastmath=FASTMATH)
def _outer_packed(g, gg):
    """``gg[p] = g_k g_l`` over the packed pairs ``k <= l`` (row-major, as ``np.triu_indices``)."""
    m = g.shape[0]
    for k in range(m):
        gk = g[k]
        o = k * (2 * m - k - 1) // 2   # gg[o + l] = g_k g_l, l = k..m-1
        for l in range(k, m):
            gg[o + l] = gk * g[l]


@njit(cache=True, fastmath=FASTMATH)
def h_trace(h, H, g, q, z, G0, gg):
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


@njit(cache=True, fastmath=FASTMATH)
def h_trace_vjp(h, lb, H, g, q, z, G0, gg, Nt, gbar, qbar, zbar, BH, BG0):
    """Adjoint of :func:`h_trace` for the cotangent ``lb``; adds to ``gbar``, ``qbar``,
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
def _tile_workspace(m, P, k):
    """Per-block scratch of the tile kernels: ``k`` (m, B) arrays and two (P, B) arrays (the
    packed ``g_0 g_0^T`` and ``N``; zero rows beyond m(m+1)/2 so that ``H``'s padding
    multiplies zeros)."""
    B = TILE
    return ([np.zeros((m, B)) for _ in range(k)], np.zeros((P, B)), np.zeros((P, B)))


@njit(cache=True, fastmath=FASTMATH)
def _tile_net(P0, n0, nb, h, w, K1, b1, V):
    """:func:`net_forward` (M = 1) for the samples ``n0 .. n0 + nb - 1`` (columns of the
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
    act_row(a0.reshape(m * B), u0.reshape(m * B), g0.reshape(m * B), q0.reshape(m * B))
    for j in range(m):
        for b in range(B):
            a1[j, b] = b1[j]
        for k in range(m):
            kjk = K1[j, k]
            for b in range(B):
                a1[j, b] += kjk * u0[k, b]
    act_row(a1.reshape(m * B), u1.reshape(m * B), g1.reshape(m * B), q1.reshape(m * B))
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


@njit(cache=True, fastmath=FASTMATH)
def _tile_gg(g0, gg):
    """The packed ``g_0 g_0^T`` of the tile, ``gg`` (P, B)."""
    m, B = g0.shape
    o = 0
    for k in range(m):
        for l in range(k, m):
            for b in range(B):
                gg[o, b] = g0[k, b] * g0[l, b]
            o += 1


@njit(cache=True, fastmath=FASTMATH)
def _tile_trace(H, g0, gg, T):
    """``T_j = g_0^T H_j g_0`` for the tile: ``gg`` the packed ``g_0 g_0^T`` (P, B)."""
    _tile_gg(g0, gg)
    np.dot(H, gg, T)  # a GEMM (m x P x B)


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def fwd_tiles(P0, h, w, K, bK, G0, H, trace, nblk, Y0, phin, lapn, NT):
    """:func:`.potential_gram_numba.fwd_kernel` for M = 1 in tiles of ``TILE`` samples (the
    trace through ``H``).
    With a tape ``NT`` (``(ntiles, NT_ARRAYS, m, TILE)``; empty for none) each tile's
    ``u_0, g_0, q_0, u_1, g_1, q_1, y_1, z_1, T`` are kept there for :func:`vjp_tiles`."""
    n = P0.shape[1]
    taped = NT.shape[0] > 0
    m = w.shape[0]
    B = TILE
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
                for i in range(NT_ARRAYS):  # V without a_0 and a_1
                    NT[tile, i] = V[i + 1] if i < 3 else V[i + 2]
            if trace:
                for b in range(nb):
                    lap = 0.0
                    t1 = 0.0
                    for j in range(m):
                        lap += q0[j, b] * z1[j, b] * G0[j, j]
                        t1 += q1[j, b] * w[j] * T[j, b]
                    lapn[n0 + b] = lap + h * t1


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def vjp_tiles(P0, h, w, K, bK, G0, H, Y0bar, phib, lb, nblk, A0bar, Bw, BK, BbK, BG0, BH, NT):
    """:func:`.potential_gram_numba.vjp_kernel` for M = 1 in tiles: the adjoint of :func:`fwd_tiles` (trace
    through ``H``, module docstring; then ``net_vjp``'s M = 1 sweep) down to
    ``abar_0``, written to ``A0bar`` (which may be ``Y0bar``: a tile is read before it is
    written).  Padded columns get zero cotangents, so they add nothing.  The forward
    values come from :func:`fwd_tiles`' tape ``NT`` when it is not empty, else they are
    recomputed."""
    taped = NT.shape[0] > 0
    n = P0.shape[1]
    m = w.shape[0]
    P = H.shape[1]
    B = TILE
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
            # the network's adjoint (net_vjp with M = 1)
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


def tape_floats(n, m, M):
    """Floats of ``forward``'s tape of the tiles for ``n`` samples (0 unless ``M = 1``)."""
    return -(-n // TILE) * NT_ARRAYS * m * TILE if M == 1 else 0


def no_tape(m):
    """An empty tape of the tiles (:func:`fwd_tiles` keeps none)."""
    return np.empty((0, NT_ARRAYS, m, TILE))
