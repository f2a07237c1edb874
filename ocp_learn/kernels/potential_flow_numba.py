r"""Fused Numba path of the CNF potential flow field (MATH D4, D5; optional fast path).

:class:`FusedPotentialFlowField` is a drop-in subclass of
:class:`ocp_learn.models.potential_flow.PotentialFlowField` for the plain
OT-Flow CNF and the mean field games (with or without interaction terms) whose potential
uses ``backend="numba"`` on the fused path (``path="auto"`` or ``"fused"``; the
BLAS program of ``path="blas"`` measured slower at every size tried, m = 32 and 128
included).  It changes no formula; it removes work and
Python overhead from the two calls the RK sweep makes per stage:

* ``rhs``: one kernel forms the whole augmented right-hand side
  ``[-grad Phi / a1, -lap Phi / a1, |grad Phi|^2 / (2 a1), |HJB residual|]``
  per sample (D4) instead of ``derivatives`` + numpy post-processing;
* ``vjp``: the generic field calls ``derivatives`` (for ``grad Phi``,
  ``d_t Phi`` in the cotangents) and then ``derivatives_vjp`` (which
  recomputes the same forward pass).  Here one kernel does, per sample, the
  forward pass (D1--D3) ONCE, forms the cotangents

  ``grad_bar = -ybar_z / a1 + (ybar_L + w) / a1 grad Phi``,
  ``dt_bar = -w``, ``lap_bar = -ybar_ell / a1``,
  ``w = ybar_R sign(-d_t Phi + |grad Phi|^2 / (2 a1))``

  (exactly :meth:`PotentialFlowField.vjp` with no interactions) and runs the
  adjoint (D6) -- one forward pass fewer per stage (about a third of the
  backward sweep).

Interaction terms ``F_j`` (crowd motion: :mod:`ocp_learn.costs.interactions`)
stay in numpy: before the kernel we form the per-sample HJB term
``extra = -a2 sum_j dF_j/drho`` (E4), which the kernels add to the residual
``res = -d_t Phi + |grad Phi|^2 / (2 a1) + extra`` (for ``|res|`` and its sign
``w``); the vjp kernel returns ``w`` so that the interactions' own partials
(``ybar_F dF/dz``, ``-a2 w d(dF/drho)/dz`` and the ``log rho`` column
cotangents) are added afterwards exactly as :meth:`PotentialFlowField.vjp` does.

On the Gram path of the exact trace (high ``d``; :func:`potential_numba.trace_gram`)
both calls go through :mod:`.potential_gram_numba` instead (the products with the
samples as GEMMs over the batch, a per-sample kernel in ``R^m``), with the same
per-sample formulas (:func:`_rhs_row`, :func:`_cotangent_row`) applied row by row.

Any other configuration falls back to the generic field.  Tested against
the generic field to 1e-12 in ``tests/test_kernels.py``.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..models.potential_flow import PotentialFlowField, same_method
from . import potential_gram_numba as gram
from .potential_numba import (_FM, _W, _adj_workspace, _blocks, _fwd_sample, _fwd_workspace,
                              _params, _vjp_sample, accumulators, cotangents, trace_gram,
                              use_gram)

__all__ = ["FusedPotentialFlowField", "fused_available", "fuse"]


@njit(cache=True, fastmath=_FM)
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


@njit(cache=True, fastmath=_FM)
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


@njit(cache=True, parallel=True, fastmath=_FM)
def _rhs_rows(G, lap, a1, c_R, extra, d, edges, out):
    """:func:`_rhs_row` for every sample (the Gram path's ``G`` and ``lap`` come from GEMMs)."""
    for blk in prange(edges.size - 1):
        for n in range(edges[blk], edges[blk + 1]):
            _rhs_row(G[n], lap[n], a1, c_R, extra[n], d, out[n])


@njit(cache=True, parallel=True, fastmath=_FM)
def _cotangent_rows(G, ybar, a1, c_R, extra, d, edges, Gb, wout):
    """:func:`_cotangent_row` for every sample."""
    for blk in prange(edges.size - 1):
        for n in range(edges[blk], edges[blk + 1]):
            wout[n] = _cotangent_row(G[n], ybar[n], a1, c_R, extra[n], d, Gb[n])


@njit(cache=True, parallel=True, fastmath=_FM)
def _rhs_kernel(S, W, exact, d, h, w, A, b, c, K0, b0, K, bK, a1, c_R, extra, edges, out):
    M = K.shape[0]
    m = K0.shape[0]
    r = A.shape[0]
    D = S.shape[1]
    cc = d if exact else W.shape[2]
    for blk in prange(edges.size - 1):
        a, g, q, u, z, y, J, Pm, C0, As = _fwd_workspace(M, m, cc, r, S.dtype)
        G = np.empty(D, S.dtype)
        for n in range(edges[blk], edges[blk + 1]):
            Wn = W[0] if exact else W[n]
            _, lp = _fwd_sample(S[n], Wn, exact, d, h, w, A, b, c, K0, b0, K, bK,
                                a, g, q, u, z, y, J, Pm, C0, As, G)
            _rhs_row(G, lp, a1, c_R, extra[n], d, out[n])


@njit(cache=True, parallel=True, fastmath=_FM)
def _vjp_kernel(S, W, exact, d, h, w, A, b, c, K0, b0, K, bK, a1, c_R, extra, ybar, edges,
                out, wout, Bw, BA, Bb, Bc, BK0, Bb0, BK, BbK):
    M = K.shape[0]
    m = K0.shape[0]
    r = A.shape[0]
    D = S.shape[1]
    cc = d if exact else W.shape[2]
    for blk in prange(edges.size - 1):
        dt = S.dtype
        a, g, q, u, z, y, J, Pm, C0, As = _fwd_workspace(M, m, cc, r, dt)
        G = np.empty(D, dt)
        Gb = np.empty(D, dt)
        gbar, qbar, zbar, Jbar, Pbar, C0bar, ubar, abar, ybr, AG, AW, Tm = _adj_workspace(
            M, m, cc, r, dt)
        sbar = np.empty(D, dt)
        for n in range(edges[blk], edges[blk + 1]):
            Wn = W[0] if exact else W[n]
            _fwd_sample(S[n], Wn, exact, d, h, w, A, b, c, K0, b0, K, bK,
                        a, g, q, u, z, y, J, Pm, C0, As, G)
            wout[n] = _cotangent_row(G, ybar[n], a1, c_R, extra[n], d, Gb)
            lb = -ybar[n, d] / a1
            _vjp_sample(S[n], Wn, exact, d, h, w, A, b, c, K0, b0, K, bK, 0.0, Gb, lb,
                        a, g, q, u, z, y, J, Pm, C0, As,
                        gbar, qbar, zbar, Jbar, Pbar, C0bar, ubar, abar, ybr, AG, AW, Tm, sbar,
                        Bw[blk], BA[blk], Bb[blk], Bc[blk], BK0[blk], Bb0[blk], BK[blk], BbK[blk])
            for k in range(d):
                out[n, k] = sbar[k]


def fused_available(field):
    """Whether ``field`` (a :class:`PotentialFlowField`) fits the fused kernels."""
    pot = field.potential
    # interaction terms (and the log rho_0 column they may read) stay in numpy: the
    # kernels only see their per-sample HJB term -a2 sum_j dF_j/drho (``_interactions``)
    return getattr(pot, "backend", None) == "numba" and pot._fused()


class FusedPotentialFlowField(PotentialFlowField):
    """:class:`PotentialFlowField` with fused ``rhs``/``vjp`` kernels (module docstring).

    Same parameters as :class:`PotentialFlowField`; same numbers (to rounding).
    """

    def _state(self, y, t, gram_path=False):
        """``(S, exact, W, dt)``: samples ``[z, t]``, the trace directions and the kernels'
        dtype ``dt`` -- float32 for a float32 state (``OCP(dtype=numpy.float32)``), else
        float64; ``S`` and ``W`` are in ``dt``.  On the Gram path (exact trace only) ``S`` is
        the pair ``(y[:, :d], t)`` (a view: :func:`potential_gram_numba.forward`) and ``W``
        is ``None``: the per-sample kernels that read directions do not run there."""
        d = self.dim
        dt = np.dtype(np.float32) if y.dtype == np.float32 else np.dtype(np.float64)
        W = self.potential._directions(self.probes, y.shape[0])  # checks the probes
        if gram_path:
            return (y[:, :d], float(t)), True, None, dt
        exact, Wa = _W(W, d, dt)
        S = np.empty((y.shape[0], d + 1), dt)
        S[:, :d] = y[:, :d]
        S[:, d] = t
        return S, exact, Wa, dt

    def _gram(self, theta):
        """``(P, G0)``: the unpacked parameters and the trace Gram matrix (empty off the
        Gram path, :func:`potential_numba.trace_gram`)."""
        P = self.potential.unpack(theta)
        exact = self.potential.trace == "exact"
        return P, trace_gram(P, self.dim, exact, self.potential.trace_path)

    def rhs(self, y, t, theta):
        return self.rhs_tape(y, t, theta, keep=False)[0]

    def rhs_tape(self, y, t, theta, keep=True):
        """``(rhs, aux)``: on the Gram path ``aux = (P_A, Y_A, G, NT, extra)``
        (:func:`potential_gram_numba.forward`'s products ``[P_0, A s]``, ``[Y_0, A s, 1]``,
        ``grad_s Phi``, for one residual layer the tiles' forward values ``NT``, and the
        interaction part of the HJB residual, :meth:`_interactions`), which
        :meth:`vjp` at the same stage reuses instead of recomputing the forward pass (the
        integrator keeps it on its tape, :mod:`ocp_learn.integrators.rk`); ``aux = None``
        otherwise (and with ``keep=False``: :meth:`rhs`)."""
        if not fused_available(self) or np.ndim(t) != 0:
            return super().rhs(y, t, theta), None
        P, G0 = self._gram(theta)
        S, exact, Wa, dt = self._state(y, t, G0.size > 0)
        out = np.empty_like(y)  # the kernels write the columns :d+2 and c_R
        out[:, self.dim + 2:] = 0.0
        z, lr, extra, dF = self._interactions(y)
        c_R = -1 if self.c_R is None else int(self.c_R)
        aux = None
        if G0.size:  # Gram path: GEMMs over the batch + a kernel in R^m
            edges = _blocks(y.shape[0])
            _, G, lap, (_, PA, YA, NT) = gram.forward(P, S, self.potential.h, G0, edges,
                                                      value=False, tape=keep)
            _rhs_rows(G, lap, float(self.a1), c_R, extra, self.dim, edges, out)
            aux = (PA, YA, G, NT, extra) if keep else None
        else:
            _rhs_kernel(S, Wa, exact, self.dim, dt.type(self.potential.h), *_params(P, dt),
                        dt.type(self.a1), c_R, extra, _blocks(y.shape[0]), out)
        for F, c, v in zip(self.interactions, self.c_F, dF):
            out[:, c] = v if v is not None and same_method(F, "drho", "value") else F.value(z, lr)
        return out, aux

    def aux_floats(self, n):
        """Floats of :meth:`rhs_tape`'s residuals for ``n`` samples (0 off the Gram path)."""
        pot = self.potential
        if not fused_available(self) or pot.trace != "exact" or pot.trace_path == "jacobian" or (
                pot.trace_path == "auto" and not use_gram(self.dim, pot.width, pot.n_layers)):
            return 0
        return n * (2 * (pot.width + pot.rank) + self.dim + 3) + gram.tape_floats(
            n, pot.width, pot.n_layers)

    def _interactions(self, y, extra=None):
        """``(z, log rho, extra, dF)``: ``extra = -a2 sum_j dF_j/drho`` (n,), the interaction
        part of the HJB residual (E4), formed in numpy exactly as
        :meth:`PotentialFlowField.rhs` does (zeros without interaction terms), and the
        terms' ``dF_j/drho`` (``None`` where not formed); a given ``extra`` (a residual of
        :meth:`rhs_tape`) is returned as it is."""
        z = y[:, :self.dim]
        lr = self._logrho(y)
        none = [None] * len(self.interactions)
        if extra is not None:
            return z, lr, extra, none
        if not (self.interactions and self.hjb):
            return z, lr, np.zeros(y.shape[0]), none
        dF = [F.drho(z, lr) for F in self.interactions]
        return z, lr, np.ascontiguousarray(-(self.a2 * sum(dF, 0.0)), dtype=np.float64), dF

    def _gram_vjp(self, P, S, G0, edges, c_R, extra, ybar, out, wR, aux=None):
        """The vjp on the Gram path: ``G`` by GEMMs (or from ``aux``, :meth:`rhs_tape`), the
        cotangents ``Gb`` per sample (:func:`_cotangent_row`, as :func:`_vjp_kernel` forms
        them), then :func:`potential_gram_numba.vjp`; writes ``out[:, :d]`` and ``wR``."""
        d, a1, h = self.dim, float(self.a1), self.potential.h
        if aux is None:
            _, G, _, cache = gram.forward(P, S, h, G0, edges, trace=False, value=False)
        else:
            PA, YA, G, NT, _ = aux
            cache = (S, PA, YA, NT)
        Gb = np.empty_like(G)
        _cotangent_rows(G, ybar, a1, c_R, extra, d, edges, Gb, wR)
        _, B = gram.vjp(P, S, h, G0, edges, None, Gb, ybar[:, d] / -a1, cache,
                        sbar_out=out[:, :d])
        return B

    def vjp(self, y, t, theta, ybar, aux=None):
        """:meth:`PotentialFlowField.vjp`; ``aux`` are :meth:`rhs_tape`'s residuals at the
        same ``(y, t, theta)`` (optional: recomputed when ``None``)."""
        if not fused_available(self) or np.ndim(t) != 0:
            return super().vjp(y, t, theta, ybar)
        P, G0 = self._gram(theta)
        S, exact, Wa, dt = self._state(y, t, G0.size > 0)
        n = y.shape[0]
        edges = _blocks(n)
        if G0.size:  # columns :d are written by the GEMM of the samples' cotangent
            out = np.empty_like(y)
            out[:, self.dim:] = 0.0
        else:
            out = np.zeros_like(y)
        z, lr, extra, _ = self._interactions(y, None if aux is None else aux[-1])
        wR = np.zeros(n)
        c_R = -1 if self.c_R is None else int(self.c_R)
        ybar = np.ascontiguousarray(ybar, dtype=dt)
        if G0.size:
            B = self._gram_vjp(P, S, G0, edges, c_R, extra, ybar, out, wR, aux)
        else:
            prm = _params(P, dt)
            acc = accumulators(prm, edges.size - 1)
            _vjp_kernel(S, Wa, exact, self.dim, dt.type(self.potential.h), *prm, dt.type(self.a1),
                        c_R, extra, ybar, edges, out, wR,
                        *acc)
            B = cotangents(acc)
        self._interaction_vjp(z, lr, ybar, wR if self.hjb else None, out)
        return out, self.potential.layout.pack(B)


def fuse(problem):
    """Swap the field of an OCP built on a :class:`PotentialFlowField` (e.g. a
    :class:`~ocp_learn.problems.cnf.ContinuousNormalizingFlow`) for the fused one, in place.

    The new field shares every attribute of the old one (same potential, columns,
    probes slot); returns ``problem``.
    """
    old = problem.field
    if not isinstance(old, PotentialFlowField):
        raise TypeError(f"problem.field must be a PotentialFlowField, got {type(old).__name__}")
    new = FusedPotentialFlowField.__new__(FusedPotentialFlowField)
    new.__dict__.update(old.__dict__)
    if problem.model is old:
        problem.model = new
    problem.field = new
    if getattr(problem.terminal, "field", None) is old:
        problem.terminal.field = new
    return problem
