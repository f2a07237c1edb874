r"""The fused stages of the potential flow field on the ``numba`` backend (MATH D4, D5).

:class:`~ocp_learn.models.potential_flow.PotentialFlowField` hands its two calls per RK
stage to these functions when its potential's backend declares ``fused_flow``.  They
change no formula; they remove work and Python overhead:

* :func:`flow_rhs`: one kernel forms the whole augmented right-hand side
  ``[-grad Phi / a1, -lap Phi / a1, |grad Phi|^2 / (2 a1), |HJB residual|]``
  per sample (D4) instead of ``derivatives`` + NumPy post-processing;
* :func:`flow_vjp`: the generic field calls ``derivatives`` (for ``grad Phi``,
  ``d_t Phi`` in the cotangents) and then ``derivatives_vjp`` (which recomputes the same
  forward pass).  Here one kernel does, per sample, the forward pass (D1--D3) once,
  forms the cotangents

  ``grad_bar = -ybar_z / a1 + (ybar_L + w) / a1 grad Phi``,
  ``dt_bar = -w``, ``lap_bar = -ybar_ell / a1``,
  ``w = ybar_R sign(-d_t Phi + |grad Phi|^2 / (2 a1) + extra)``

  and runs the adjoint (D6) -- one forward pass fewer per stage (about a third of the
  backward sweep).

Interaction terms ``F_j`` (crowd motion: :mod:`ocp_learn.costs.interactions`) stay in
NumPy: the field forms the per-sample HJB term ``extra = -a2 sum_j dF_j/drho`` (E4),
which the kernels add to the residual; the vjp returns ``w`` so that the field adds the
interactions' own partials afterwards.

On the Jacobian path of the exact trace both calls run the samples in tiles, with the
weight products as GEMMs over a tile (:mod:`.potential_soa_numba`; ``layout="auto"`` or
``"tiles"``); ``layout="samples"`` and Hutchinson probes run one sample at a time.  The
per-tile loops that surround the tile kernels (``_tile_rhs``, ``_tile_cotangents``) are
functions of their own, called from the ``prange`` body.

On the Gram path of the exact trace (high ``d``; :func:`.potential_gram_numba.trace_gram`)
both calls go through :mod:`.potential_gram_numba` (the products with the samples as
GEMMs over the batch, a per-sample kernel in ``R^m``), with the same per-sample formulas
(``_rhs_row``, ``_cotangent_row``) applied row by row.  Tested against the
generic field to 1e-12 in ``tests/test_kernels.py``.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from . import potential_gram_numba as gram
from . import potential_soa_numba as soa
from . import potential_tiles_numba as tiles
from .numba_common import FASTMATH, blocks, with_serial_blas
from .potential_jacobian_numba import fwd_sample, vjp_sample
from .potential_net_numba import (accumulators, adjoint_workspace, block, cotangents,
                                  directions, forward_workspace, params)

__all__ = ["flow_rhs", "flow_vjp", "flow_aux_floats"]


@njit(cache=True, fastmath=FASTMATH)
def _rhs_row(G, lp, a1, c_R, extra_n, d, out_n):
    """One sample's augmented right-hand side (D4) from ``G = grad_s Phi`` and ``lap``."""
    gg = 0.0
    for k in range(d):
        out_n[k] = -G[k] / a1
        gg += G[k] * G[k]
    out_n[d] = -lp / a1
    out_n[d + 1] = gg / (2.0 * a1)
    if c_R >= 0:
        out_n[c_R] = abs(-G[d] + gg / (2.0 * a1) + extra_n)


@njit(cache=True, fastmath=FASTMATH)
def _cotangent_row(G, ybar_n, a1, c_R, extra_n, d, Gb):
    """One sample's cotangent ``Gb`` of ``grad_s Phi`` (module docstring); returns ``w``."""
    coef = ybar_n[d + 1] / a1
    Gb[d] = 0.0
    wR = 0.0
    if c_R >= 0:
        gg = 0.0
        for k in range(d):
            gg += G[k] * G[k]
        res = -G[d] + gg / (2.0 * a1) + extra_n
        sg = 1.0 if res > 0.0 else (-1.0 if res < 0.0 else 0.0)
        wR = ybar_n[c_R] * sg
        coef += wR / a1
        Gb[d] = -wR
    for k in range(d):
        Gb[k] = -ybar_n[k] / a1 + coef * G[k]
    return wR


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def _rhs_rows(G, lap, a1, c_R, extra, d, edges, out):
    """``_rhs_row`` for every sample (the Gram path's ``G`` and ``lap`` come from GEMMs)."""
    for blk in prange(edges.size - 1):
        for n in range(edges[blk], edges[blk + 1]):
            _rhs_row(G[n], lap[n], a1, c_R, extra[n], d, out[n])


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def _cotangent_rows(G, ybar, a1, c_R, extra, d, edges, Gb, wout):
    """``_cotangent_row`` for every sample."""
    for blk in prange(edges.size - 1):
        for n in range(edges[blk], edges[blk + 1]):
            wout[n] = _cotangent_row(G[n], ybar[n], a1, c_R, extra[n], d, Gb[n])


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def _rhs_kernel(S, W, exact, d, h, P, a1, c_R, extra, edges, out):
    """The right-hand side of every sample on the Jacobian path (``_rhs_row``)."""
    M = P.K.shape[0]
    m = P.K0.shape[0]
    r = P.A.shape[0]
    D = S.shape[1]
    cc = d if exact else W.shape[2]
    for blk in prange(edges.size - 1):
        F = forward_workspace(M, m, cc, r, S.dtype)
        G = np.empty(D, S.dtype)
        for n in range(edges[blk], edges[blk + 1]):
            Wn = W[0] if exact else W[n]
            _, lp = fwd_sample(S[n], Wn, exact, d, h, P, F, G)
            _rhs_row(G, lp, a1, c_R, extra[n], d, out[n])


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def _vjp_kernel(S, W, exact, d, h, P, a1, c_R, extra, ybar, edges, out, wout, acc):
    """The vjp of every sample on the Jacobian path: forward pass, cotangents
    (``_cotangent_row``), adjoint; the parameter cotangents go to ``acc``."""
    M = P.K.shape[0]
    m = P.K0.shape[0]
    r = P.A.shape[0]
    D = S.shape[1]
    cc = d if exact else W.shape[2]
    for blk in prange(edges.size - 1):
        dt = S.dtype
        F = forward_workspace(M, m, cc, r, dt)
        G = np.empty(D, dt)
        Gb = np.empty(D, dt)
        V = adjoint_workspace(M, m, cc, r, dt)
        B = block(acc, blk)
        sbar = np.empty(D, dt)
        for n in range(edges[blk], edges[blk + 1]):
            Wn = W[0] if exact else W[n]
            fwd_sample(S[n], Wn, exact, d, h, P, F, G)
            wout[n] = _cotangent_row(G, ybar[n], a1, c_R, extra[n], d, Gb)
            lb = -ybar[n, d] / a1
            vjp_sample(S[n], Wn, exact, d, h, P, 0.0, Gb, lb, F, V, sbar, B)
            for k in range(d):
                out[n, k] = sbar[k]


@njit(cache=True, fastmath=FASTMATH)
def _tile_rhs(F, n0, nb, a1, c_R, extra, out):
    """``_rhs_row`` for the ``nb`` samples of a tile from ``n0`` (``F`` its forward values)."""
    d = F.s.shape[0] - 1
    for b in range(nb):
        _rhs_row(F.G[:, b], F.lap[b], a1, c_R, extra[n0 + b], d, out[n0 + b])


@njit(cache=True, fastmath=FASTMATH)
def _tile_cotangents(F, V, n0, nb, a1, c_R, extra, ybar, wout):
    """The tile's cotangents ``V.Gb`` of ``grad_s Phi`` and ``V.lb`` of the Laplacian
    (``_cotangent_row``), zero in the padded columns; the HJB weights to ``wout``."""
    d = F.s.shape[0] - 1
    T = V.lb.shape[0]
    for b in range(nb):
        wout[n0 + b] = _cotangent_row(F.G[:, b], ybar[n0 + b], a1, c_R, extra[n0 + b], d,
                                      V.Gb[:, b])
        V.lb[b] = -ybar[n0 + b, d] / a1
    for b in range(nb, T):
        V.lb[b] = 0.0
        for k in range(d + 1):
            V.Gb[k, b] = 0.0


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def _rhs_soa(x, t, h, P, a1, c_R, extra, nblk, T, out):
    """The right-hand side of every sample on the Jacobian path in tiles of ``T`` samples
    (:mod:`.potential_soa_numba`, exact trace)."""
    n, d = x.shape
    M = P.K.shape[0]
    m = P.w.shape[0]
    r = P.A.shape[0]
    ntile = (n + T - 1) // T
    for blk in prange(nblk):
        F = soa.tape_workspace(M, m, d, r, T, x.dtype)
        for tile in range(blk * ntile // nblk, (blk + 1) * ntile // nblk):
            n0 = tile * T
            nb = min(T, n - n0)
            soa.load_tile(x, t, n0, nb, F.s)
            soa.fwd_tile(h, P, F, True)
            _tile_rhs(F, n0, nb, a1, c_R, extra, out)


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def _vjp_soa(x, t, h, P, a1, c_R, extra, ybar, nblk, T, out, wout, acc):
    """The vjp of every sample on the Jacobian path in tiles (:func:`_rhs_soa`): forward
    pass, cotangents (``_cotangent_row``), adjoint; parameter cotangents to ``acc``."""
    n, d = x.shape
    M = P.K.shape[0]
    m = P.w.shape[0]
    r = P.A.shape[0]
    ntile = (n + T - 1) // T
    for blk in prange(nblk):
        F = soa.tape_workspace(M, m, d, r, T, x.dtype)
        V = soa.bar_workspace(M, m, d, r, T, x.dtype)
        B = block(acc, blk)
        for tile in range(blk * ntile // nblk, (blk + 1) * ntile // nblk):
            n0 = tile * T
            nb = min(T, n - n0)
            soa.load_tile(x, t, n0, nb, F.s)
            soa.fwd_tile(h, P, F, True)
            _tile_cotangents(F, V, n0, nb, a1, c_R, extra, ybar, wout)
            soa.vjp_tile(h, P, F, V, B, False)
            for k in range(d):
                for b in range(nb):
                    out[n0 + b, k] = V.sbar[k, b]


def _state(x, t, W, gram_path):
    """``(S, exact, W, dt)``: the samples ``[x, t]``, the trace directions and the kernels'
    dtype ``dt`` -- float32 for float32 states, else float64; ``S`` and ``W`` are in ``dt``.
    On the Gram path (exact trace only) ``S`` is the pair ``(x, t)`` (a view:
    ``potential_gram_numba.forward``) and ``W`` is ``None``."""
    d = x.shape[1]
    dt = np.dtype(np.float32) if x.dtype == np.float32 else np.dtype(np.float64)
    if gram_path:
        return (x, float(t)), True, None, dt
    exact, Wa = directions(W, d, dt)
    S = np.empty((x.shape[0], d + 1), dt)
    S[:, :d] = x
    S[:, d] = t
    return S, exact, Wa, dt


def _tiled(exact, layout):
    """Whether the Jacobian path runs in tiles of samples (:mod:`.potential_soa_numba`):
    ``layout`` is ``"auto"`` (tiles for the exact trace), ``"tiles"`` or ``"samples"``
    (the per-sample kernels; Hutchinson probes always run per sample)."""
    if layout not in ("auto", "tiles", "samples"):
        raise ValueError(f"layout must be 'auto', 'tiles' or 'samples', got {layout!r}")
    return exact and layout != "samples"


def _tile_blocks(n, T):
    """Blocks of tiles, one per thread (at most one per tile)."""
    return max(1, min(numba.get_num_threads(), -(-n // T)))


@with_serial_blas
def flow_rhs(P, x, t, W, h, a1, c_R, extra, out, keep, trace_path="auto", layout="auto"):
    """The field's right-hand side columns ``[:d+2]`` and ``c_R`` (D4) into ``out``.

    Returns the residuals ``aux = (P_A, Y_A, G, NT, extra)`` on the Gram path with ``keep``
    (``potential_gram_numba.forward``'s products ``[P_0, A s]``, ``[Y_0, A s, 1]``,
    ``grad_s Phi``, for one residual layer the tiles' forward values ``NT``, and the
    interaction part of the HJB residual), which :func:`flow_vjp` at the same stage
    reuses; ``None`` otherwise.
    """
    d, n = x.shape[1], x.shape[0]
    G0 = gram.trace_gram(P, d, W is None, trace_path)
    S, exact, Wa, dt = _state(x, t, W, G0.size > 0)
    if G0.size:  # Gram path: GEMMs over the batch + a kernel in R^m
        edges = blocks(n)
        _, G, lap, (_, PA, YA, NT) = gram.forward(P, S, h, G0, edges, value=False, tape=keep)
        _rhs_rows(G, lap, float(a1), c_R, extra, d, edges, out)
        return (PA, YA, G, NT, extra) if keep else None
    if _tiled(exact, layout):
        T = soa.tile_size(d, P["K0"].shape[0])
        _rhs_soa(x, dt.type(t), dt.type(h), soa.soa_params(P, d, dt), dt.type(a1), c_R, extra,
                 _tile_blocks(n, T), T, out)
        return None
    _rhs_kernel(S, Wa, exact, d, dt.type(h), params(P, dt), dt.type(a1), c_R, extra,
                blocks(n), out)
    return None


@with_serial_blas
def flow_vjp(P, x, t, W, h, a1, c_R, extra, ybar, out, wR, aux, trace_path="auto", work=None,
             layout="auto"):
    """The field's vjp through the potential (module docstring): writes ``out[:, :d]`` and
    the HJB weights ``wR``; returns the parameter cotangents (a dict of blocks).  ``aux``
    are :func:`flow_rhs`'s residuals at the same point, or ``None`` (recomputed); ``work``
    (a :class:`~ocp_learn.arrays.Workspace`) keeps the per-sample cotangents' scratch array
    from one call to the next."""
    d, n = x.shape[1], x.shape[0]
    G0 = gram.trace_gram(P, d, W is None, trace_path)
    S, exact, Wa, dt = _state(x, t, W, G0.size > 0)
    edges = blocks(n)
    if G0.size:
        if aux is None:
            _, G, _, cache = gram.forward(P, S, h, G0, edges, trace=False, value=False)
        else:
            PA, YA, G, NT, _ = aux
            cache = (S, PA, YA, NT)
        Gb = np.empty_like(G) if work is None else work.empty("Gb", G)
        _cotangent_rows(G, ybar, float(a1), c_R, extra, d, edges, Gb, wR)
        _, B = gram.vjp(P, S, h, G0, edges, None, Gb, ybar[:, d] / -float(a1), cache,
                        sbar_out=out[:, :d], work=work)
        return B
    prm = params(P, dt)
    if _tiled(exact, layout):
        T = soa.tile_size(d, P["K0"].shape[0])
        nblk = _tile_blocks(n, T)
        acc = accumulators(prm, nblk)
        _vjp_soa(x, dt.type(t), dt.type(h), soa.soa_params(P, d, dt), dt.type(a1), c_R, extra,
                 ybar, nblk, T, out, wR, acc)
        return cotangents(acc)
    acc = accumulators(prm, edges.size - 1)
    _vjp_kernel(S, Wa, exact, d, dt.type(h), prm, dt.type(a1), c_R, extra, ybar, edges,
                out, wR, acc)
    return cotangents(acc)


def flow_aux_floats(n, d, m, M, r, exact, trace_path="auto"):
    """Floats of :func:`flow_rhs`'s residuals for ``n`` samples (0 off the Gram path)."""
    if not exact or trace_path == "jacobian" or (trace_path == "auto" and not gram.use_gram(d, m, M)):
        return 0
    return n * (2 * (m + r) + d + 3) + tiles.tape_floats(n, m, M)
