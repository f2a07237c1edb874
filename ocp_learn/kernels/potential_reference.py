r"""The reference program of the OT-Flow potential ``Phi(x, t; theta)`` and its hand-derived
derivatives (MATH D1--D3, D6), written with array-API calls on a chunk of samples.

``Phi(s; theta) = w^T N(s) + 1/2 s^T A^T A s + b^T s + c`` with ``s = (x, t)``
and ``N`` a ResNet of ``M`` residual layers of width ``m`` (D1).  Besides the
value we evaluate, per sample,

* ``grad_x Phi`` and ``d_t Phi`` by the reverse sweep (D2),
* the exact Laplacian ``lap_x Phi = tr(E^T Hess_s Phi E)`` by forward
  propagation of the ``m x d`` Jacobian ``J_i = du_i/dx`` (D3), in
  ``O(M m^2 d)`` per sample, or its Hutchinson estimate
  ``mean_k v_k^T Hess_x Phi v_k`` (the same recursion with ``E`` replaced by
  ``E V / sqrt(k)``, ``V`` the probes, in ``O(M m^2 k)``),
* the vjp of ``(Phi, grad_x Phi, d_t Phi, lap_x Phi)`` with respect to
  ``x``, ``t`` and ``theta`` (D6) -- third derivatives of the network --, and
  the matching jvp (tangent), both derived by hand.

Derivation (per sample; ``g_i = tanh(a_i) = sigma'(a_i)``,
``q_i = 1 - g_i^2 = sigma''(a_i)``, ``dq_i/da_i = sigma'''(a_i) = -2 g_i q_i``).
The evaluation is the straight-line program

1. forward: ``a_0 = K_0 s + b_0``, ``u_0 = sigma(a_0)``;
   ``a_i = K_i u_{i-1} + b_i``, ``u_i = u_{i-1} + h sigma(a_i)``;
   ``Phi = w.u_M + 1/2 |A s|^2 + b.s + c``  (D1)
2. reverse sweep: ``z_{M+1} = w``, ``y_i = g_i * z_{i+1}``,
   ``z_i = z_{i+1} + h K_i^T y_i``; ``y_0 = g_0 * z_1``, ``z_0 = K_0^T y_0``;
   ``G = grad_s Phi = z_0 + A^T A s + b``  (D2)
3. trace: ``C_0 = K_0 E W`` (``W = I_d`` for the exact trace),
   ``J_0 = g_0 * C_0``, ``t_0 = sum_j q_0j z_1j |C_0j|^2``;
   ``P_i = K_i J_{i-1}``, ``t_i = sum_j q_ij z_{i+1,j} |P_ij|^2``,
   ``J_i = J_{i-1} + h g_i * P_i``;
   ``lap = t_0 + h sum_i t_i + |A E W|_F^2``  (D3)

The vjp is the adjoint of this program, read backwards (3, then 2, then 1).
With bars ``Phibar, Gbar = (gradbar, dtbar), lapbar``:

* (3) ``Abar_x += 2 lapbar A_x W W^T``; for ``i = M..1``:
  ``Pbar_i = h g_i * Jbar_i + 2 h lapbar (q_i z_{i+1}) * P_i``,
  ``gbar_i += h rowdot(Jbar_i, P_i)``, ``qbar_i += h lapbar z_{i+1} |P_i|^2``,
  ``zbar_{i+1} += h lapbar q_i |P_i|^2``, ``Kbar_i += Pbar_i J_{i-1}^T``,
  ``Jbar_{i-1} = Jbar_i + K_i^T Pbar_i`` (``Jbar_M = 0``); then the same for
  ``t_0, J_0`` with ``C_0`` in place of ``P``, and ``K0bar_x += Cbar_0 W^T``.
* (2) ``zbar_0 = Gbar``; ``sbar += A^T A Gbar``, ``Abar += A (s Gbar^T + Gbar s^T)``,
  ``bbar += Gbar``; ``ybar_0 = K_0 zbar_0``, ``K0bar += y_0 zbar_0^T``,
  ``gbar_0 += ybar_0 z_1``, ``zbar_1 += ybar_0 g_0``; for ``i = 1..M``:
  ``zbar_{i+1} += zbar_i``, ``ybar_i = h K_i zbar_i``, ``Kbar_i += h y_i zbar_i^T``,
  ``gbar_i += ybar_i z_{i+1}``, ``zbar_{i+1} += ybar_i g_i``; ``wbar += zbar_{M+1}``.
* (1) ``ubar_M = Phibar w``, ``wbar += Phibar u_M``,
  ``sbar += Phibar (A^T A s + b)``, ``Abar += Phibar A s s^T``,
  ``bbar += Phibar s``, ``cbar += Phibar``; for ``i = M..1``:
  ``abar_i = h g_i ubar_i + (gbar_i - 2 g_i qbar_i) q_i``, ``Kbar_i += abar_i u_{i-1}^T``,
  ``bbar_i += abar_i``, ``ubar_{i-1} = ubar_i + K_i^T abar_i``; finally
  ``abar_0 = g_0 ubar_0 + (gbar_0 - 2 g_0 qbar_0) q_0``, ``K0bar += abar_0 s^T``,
  ``b0bar += abar_0``, ``sbar += K_0^T abar_0``.

The term ``-2 g_i qbar_i q_i`` is where ``sigma'''`` enters.  The jvp
differentiates the same program forwards.  The probes of the Hutchinson
estimator are constants (not differentiated).

``theta`` is laid out as ``w (m,), A (r, d+1), b (d+1,), c (1,), K0 (m, d+1),
b0 (m,), K (M, m, m), bK (M, m)``.

The functions here work on one chunk of samples (rows) with the parameter blocks ``P``
(a dict of arrays, :meth:`.ParamLayout.unpack`) and ``s = [x, t]`` of shape ``(n, d+1)``;
``W`` is ``None`` (exact trace) or the trace directions ``(n, d, c)``.  They call only
array-API operations, so NumPy and CuPy arrays run them unchanged: they are the program
of the ``numpy`` backend (:mod:`.potential_numpy`) and of the ``cupy`` backend
(:mod:`.potential_cupy`), and the reference the ``numba`` kernels are tested against.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..arrays import concat, namespace

__all__ = ["log_cosh", "activation", "forward", "vjp", "jvp", "phi", "phi_vjp",
           "gram_applies", "forward_gram", "vjp_gram"]

#: the vjp forms ``A^T A`` ((d+1) x (d+1)) while it holds at most this many entries
_ATA_MAX = 1 << 16


def log_cosh(a):
    """``sigma(a) = log(exp(a) + exp(-a))`` computed stably as ``|a| + log1p(exp(-2|a|))`` (D1)."""
    xp = namespace(a)
    aa = xp.abs(a)
    return aa + xp.log1p(xp.exp(-2.0 * aa))


def activation(a):
    """``(sigma(a), sigma'(a)) = (log_cosh(a), tanh(a))`` elementwise (D1)."""
    return log_cosh(a), namespace(a).tanh(a)


def forward(P, s, W, h, d, act=activation):
    """Steps 1--3 of the module docstring on a chunk; returns outputs and the cache.

    ``W`` is ``None`` (exact trace, ``W = I_d``) or per-sample directions ``(n, d, c)``.
    ``act`` maps ``a`` to ``(sigma(a), tanh(a))`` (a fused GPU kernel on the cupy backend).
    Written with array-API calls only, so that CuPy arrays run it unchanged
    (``__array_function__`` dispatch; :mod:`ocp_learn.kernels.potential_cupy`).
    """
    xp = namespace(s)
    K0, b0, K, bK, w, A, b = P["K0"], P["b0"], P["K"], P["bK"], P["w"], P["A"], P["b"]
    M = K.shape[0]
    n = s.shape[0]
    # (1) forward pass (D1)
    a = [s @ K0.T + b0]
    u0, g0 = act(a[0])
    g = [g0]
    u = [u0]
    for i in range(1, M + 1):
        a.append(u[i - 1] @ K[i - 1, ...].T + bK[i - 1, ...])
        ui, gi = act(a[i])
        g.append(gi)
        u.append(u[i - 1] + h * ui)
    q = [1.0 - gi * gi for gi in g]
    As = s @ A.T
    phi = u[M] @ w + 0.5 * xp.sum(As * As, axis=1) + s @ b + P["c"][0]
    # (2) reverse sweep (D2)
    z = [None] * (M + 2)
    y = [None] * (M + 1)
    z[M + 1] = xp.broadcast_to(w, (n, w.shape[0]))
    for i in range(M, 0, -1):
        y[i] = g[i] * z[i + 1]
        z[i] = z[i + 1] + h * (y[i] @ K[i - 1, ...])
    y[0] = g[0] * z[1]
    z0 = y[0] @ K0
    G = z0 + As @ A + b
    # (3) Jacobian propagation and trace (D3)
    Kx = K0[:, :d]
    if W is None:
        C0 = xp.broadcast_to(Kx, (n,) + tuple(Kx.shape))
        Ax = A[:, :d]
        lap_A = xp.zeros_like(s[:, 0]) + xp.sum(Ax * Ax)
    else:
        C0 = Kx @ W                                      # (n, m, c)
        AW = A[:, :d] @ W                                # (n, r, c)
        lap_A = xp.sum(AW * AW, axis=(1, 2))
    C0sq = xp.sum(C0 * C0, axis=2)
    lap = xp.sum(q[0] * z[1] * C0sq, axis=1)
    J = [g[0][:, :, None] * C0]
    Pm = [None]
    for i in range(1, M + 1):
        Pi = K[i - 1, ...] @ J[i - 1]
        Pm.append(Pi)
        lap = lap + h * xp.sum(q[i] * z[i + 1] * xp.sum(Pi * Pi, axis=2), axis=1)
        J.append(J[i - 1] + h * g[i][:, :, None] * Pi)
    lap = lap + lap_A
    cache = dict(a=a, g=g, q=q, u=u, z=z, y=y, J=J, Pm=Pm, C0=C0, C0sq=C0sq, As=As, s=s, W=W)
    return phi, G, lap, cache


def vjp(P, cache, h, d, phibar, Gbar, lapbar):
    """Adjoint of :func:`forward` (module docstring, D6) for the cotangents ``phibar (n,)``,
    ``Gbar (n, d+1)``, ``lapbar (n,)``; returns ``sbar (n, d+1)`` and the parameter
    cotangents (a dict of blocks, summed over the chunk's samples)."""
    K, A = P["K"], P["A"]
    M = K.shape[0]
    g, q, z, J, Pm = (cache[k] for k in ("g", "q", "z", "J", "Pm"))
    s, W, C0, C0sq = cache["s"], cache["W"], cache["C0"], cache["C0sq"]
    xp = namespace(s)
    B = {k: xp.zeros_like(v) for k, v in P.items()}
    gbar = [xp.zeros_like(gi) for gi in g]
    qbar = [xp.zeros_like(gi) for gi in g]
    zbar = [None] + [xp.zeros_like(g[0]) for _ in range(M + 1)]  # zbar[1..M+1]
    # ---- (3) trace
    lb = lapbar[:, None]
    if W is None:
        B["A"][:, :d] += 2.0 * xp.sum(lapbar) * A[:, :d]
    else:
        AW = A[:, :d] @ W                                          # (n, r, c)
        B["A"][:, :d] += 2.0 * xp.tensordot(lb[:, :, None] * AW, W, axes=([0, 2], [0, 2]))
    Jbar = xp.zeros_like(J[0]) if M > 0 else None
    for i in range(M, 0, -1):
        Pi = Pm[i]
        Psq = xp.sum(Pi * Pi, axis=2)
        gbar[i] += h * xp.sum(Jbar * Pi, axis=2)
        qbar[i] += h * lb * z[i + 1] * Psq
        zbar[i + 1] += h * lb * q[i] * Psq
        Pbar = h * g[i][:, :, None] * Jbar + (2.0 * h) * (lb * q[i] * z[i + 1])[:, :, None] * Pi
        B["K"][i - 1, ...] += xp.tensordot(Pbar, J[i - 1], axes=([0, 2], [0, 2]))
        Jbar = Jbar + K[i - 1, ...].T @ Pbar
    qbar[0] += lb * z[1] * C0sq
    zbar[1] += lb * q[0] * C0sq
    C0bar = 2.0 * (lb * q[0] * z[1])[:, :, None] * C0
    if M > 0:
        gbar[0] += xp.sum(Jbar * C0, axis=2)
        C0bar = C0bar + g[0][:, :, None] * Jbar
    if W is None:
        B["K0"][:, :d] += xp.sum(C0bar, axis=0)
    else:
        B["K0"][:, :d] += xp.tensordot(C0bar, W, axes=([0, 2], [0, 2]))
    return _vjp_sweep(P, cache, h, d, phibar, Gbar, B, gbar, qbar, zbar)


def _vjp_sweep(P, cache, h, d, phibar, Gbar, B, gbar, qbar, zbar):
    """Parts (2) and (1) of the adjoint (module docstring): the reverse sweep's and the
    forward pass's cotangents, given the trace's contributions ``gbar``, ``qbar``, ``zbar``
    (lists over the layers) and the parameter cotangents ``B`` so far."""
    K0, K, w, A = P["K0"], P["K"], P["w"], P["A"]
    M = K.shape[0]
    g, q, u, z, y = (cache[k] for k in ("g", "q", "u", "z", "y"))
    s, As = cache["s"], cache["As"]
    xp = namespace(s)
    D = s.shape[1]
    # ---- (2) reverse sweep
    # G = As A + ...: with A^T A formed while (d+1)^2 is small (the rounding of the CasADi
    # twin's program), by products with A alone above that (no (d+1) x (d+1) matrix)
    if D * D <= _ATA_MAX:
        sbar = Gbar @ (A.T @ A)
        B["A"] += A @ (s.T @ Gbar + Gbar.T @ s)
    else:
        GA = Gbar @ A.T                                            # (n, r)
        sbar = GA @ A
        B["A"] += As.T @ Gbar + GA.T @ s
    B["b"] += xp.sum(Gbar, axis=0)
    ybar = Gbar @ K0.T
    B["K0"] += y[0].T @ Gbar
    gbar[0] += ybar * z[1]
    zbar[1] += ybar * g[0]
    for i in range(1, M + 1):
        zbar[i + 1] += zbar[i]
        ybar = h * (zbar[i] @ K[i - 1, ...].T)
        B["K"][i - 1, ...] += h * (y[i].T @ zbar[i])
        gbar[i] += ybar * z[i + 1]
        zbar[i + 1] += ybar * g[i]
    B["w"] += xp.sum(zbar[M + 1], axis=0)
    # ---- (1) forward pass
    pb = phibar[:, None]
    ubar = pb * w
    B["w"] += phibar @ u[M]
    sbar += pb * (As @ A + P["b"])
    B["A"] += (As * pb).T @ s
    B["b"] += phibar @ s
    B["c"][0] += xp.sum(phibar)
    for i in range(M, 0, -1):
        abar = h * g[i] * ubar + (gbar[i] - 2.0 * g[i] * qbar[i]) * q[i]
        B["K"][i - 1, ...] += abar.T @ u[i - 1]
        B["bK"][i - 1, ...] += xp.sum(abar, axis=0)
        ubar = ubar + abar @ K[i - 1, ...]
    abar = g[0] * ubar + (gbar[0] - 2.0 * g[0] * qbar[0]) * q[0]
    B["K0"] += abar.T @ s
    B["b0"] += xp.sum(abar, axis=0)
    sbar += abar @ K0
    return sbar, B


def gram_applies(P, W, d):
    """Whether :func:`forward_gram` serves: exact trace, one residual layer and ``d > m``
    (then its ``O(m^3)`` trace per sample costs less than the Jacobian path's ``O(m^2 d)``)."""
    return W is None and P["K"].shape[0] == 1 and d > P["K0"].shape[0]


def forward_gram(P, s, h, d, act=activation):
    """:func:`forward` for the exact trace with one residual layer, by Gram matrices (D3).

    With ``J_0 = diag(g_0) K_{0,x}`` the residual layer's trace term needs
    ``|P_1j|^2 = |(K_1 J_0)_j|^2 = V_j^T G_0 V_j``, ``V_j = K_{1,j} o g_0`` (the row ``j`` of
    ``K_1`` times ``g_0``) and ``G_0 = K_{0,x} K_{0,x}^T`` (m x m, the same for every
    sample), and the opening layer's ``|C_0j|^2 = |K_{0,x,j}|^2``: per sample ``O(m^3)``
    work in ``(m, m)`` arrays instead of ``O(m^2 d)`` in ``(m, d)`` ones.  The same numbers
    as :func:`forward` (to rounding); the cache is the one :func:`vjp_gram` reads.
    """
    xp = namespace(s)
    K0, b0, K, bK, w, A, b = P["K0"], P["b0"], P["K"], P["bK"], P["w"], P["A"], P["b"]
    K1 = K[0, ...]
    n = s.shape[0]
    a = [s @ K0.T + b0]
    u0, g0 = act(a[0])
    a.append(u0 @ K1.T + bK[0, ...])
    s1, g1 = act(a[1])
    u = [u0, u0 + h * s1]
    g = [g0, g1]
    q = [1.0 - gi * gi for gi in g]
    As = s @ A.T
    phi = u[1] @ w + 0.5 * xp.sum(As * As, axis=1) + s @ b + P["c"][0]
    z2 = xp.broadcast_to(w, (n, w.shape[0]))
    y1 = g1 * z2
    z1 = z2 + h * (y1 @ K1)
    y0 = g0 * z1
    G = y0 @ K0 + As @ A + b
    K0x, Ax = K0[:, :d], A[:, :d]
    c0 = xp.sum(K0x * K0x, axis=1)                       # |C_0j|^2, (m,)
    G0 = K0x @ K0x.T                                     # (m, m)
    V = g0[:, None, :] * K1                              # (n, m, m): V[n, j, a]
    VG = V @ G0
    Psq = xp.sum(VG * V, axis=2)                         # |P_1j|^2, (n, m)
    lap = (xp.sum(q[0] * z1 * c0, axis=1) + h * xp.sum(q[1] * z2 * Psq, axis=1)
           + xp.sum(Ax * Ax))
    cache = dict(a=a, g=g, q=q, u=u, z=[None, z1, z2], y=[y0, y1], V=V, VG=VG, Psq=Psq,
                 c0=c0, As=As, s=s, W=None)
    return phi, G, lap, cache


def vjp_gram(P, cache, h, d, phibar, Gbar, lapbar):
    """Adjoint of :func:`forward_gram` (D6): as :func:`vjp`, with the trace's part read
    backwards through ``V``, ``G_0`` and ``c_0``:

    ``Psqbar = h lapbar q_1 z_2``, ``Vbar = 2 Psqbar o (V G_0)``,
    ``G0bar = sum_{n,j} Psqbar_j V_j V_j^T``, ``gbar_0 += sum_j Vbar_j o K_{1,j}``,
    ``Kbar_1 += sum_n Vbar o g_0``, ``Kbar_{0,x} += 2 c0bar K_{0,x} + (G0bar + G0bar^T)
    K_{0,x}`` with ``c0bar = sum_n lapbar q_0 z_1``; ``qbar``, ``zbar`` as in :func:`vjp`.
    """
    K0, K, A = P["K0"], P["K"], P["A"]
    K1 = K[0, ...]
    g, q, z = cache["g"], cache["q"], cache["z"]
    V, VG, Psq, c0 = cache["V"], cache["VG"], cache["Psq"], cache["c0"]
    xp = namespace(cache["s"])
    B = {k: xp.zeros_like(v) for k, v in P.items()}
    lb = lapbar[:, None]
    B["A"][:, :d] += 2.0 * xp.sum(lapbar) * A[:, :d]
    Pb = h * lb * q[1] * z[2]                            # Psqbar (n, m)
    qbar = [lb * z[1] * c0, h * lb * z[2] * Psq]
    zbar = [None, lb * q[0] * c0, h * lb * q[1] * Psq]
    Vbar = (2.0 * Pb)[:, :, None] * VG
    G0bar = xp.tensordot(Pb[:, :, None] * V, V, axes=([0, 1], [0, 1]))
    gbar = [xp.sum(Vbar * K1, axis=1), xp.zeros_like(g[1])]
    B["K"][0, ...] += xp.sum(Vbar * g[0][:, None, :], axis=0)
    c0bar = xp.sum(lb * q[0] * z[1], axis=0)
    K0x = K0[:, :d]
    B["K0"][:, :d] += 2.0 * c0bar[:, None] * K0x + (G0bar + G0bar.T) @ K0x
    return _vjp_sweep(P, cache, h, d, phibar, Gbar, B, gbar, qbar, zbar)


def jvp(P, T, cache, h, d, ds):
    """Tangent of :func:`forward`: ``T`` are parameter tangents, ``ds (n, D)``; returns dphi, dG, dlap."""
    K0, K, w, A = P["K0"], P["K"], P["w"], P["A"]
    M = K.shape[0]
    g, q, u, z, y, J, Pm = (cache[k] for k in ("g", "q", "u", "z", "y", "J", "Pm"))
    s, W, As, C0 = cache["s"], cache["W"], cache["As"], cache["C0"]
    xp = namespace(s)
    # (1)
    da = s @ T["K0"].T + ds @ K0.T + T["b0"]
    dg = [q[0] * da]
    du = g[0] * da
    dus = [du]
    for i in range(1, M + 1):
        da = dus[i - 1] @ K[i - 1, ...].T + u[i - 1] @ T["K"][i - 1, ...].T + T["bK"][i - 1, ...]
        dg.append(q[i] * da)
        dus.append(dus[i - 1] + h * g[i] * da)
    dq = [-2.0 * gi * dgi for gi, dgi in zip(g, dg)]
    dAs = s @ T["A"].T + ds @ A.T
    dphi = (dus[M] @ w + u[M] @ T["w"] + xp.sum(As * dAs, axis=1) + s @ T["b"] + ds @ P["b"]
            + T["c"][0])
    # (2)
    dz = [None] * (M + 2)
    dz[M + 1] = xp.broadcast_to(T["w"], z[M + 1].shape)
    for i in range(M, 0, -1):
        dy = dg[i] * z[i + 1] + g[i] * dz[i + 1]
        dz[i] = dz[i + 1] + h * (y[i] @ T["K"][i - 1, ...] + dy @ K[i - 1, ...])
    dy = dg[0] * z[1] + g[0] * dz[1]
    dG = y[0] @ T["K0"] + dy @ K0 + As @ T["A"] + dAs @ A + T["b"]
    # (3)
    dKx = T["K0"][:, :d]
    if W is None:
        dC0 = xp.broadcast_to(dKx, C0.shape)
        dlap_A = xp.zeros_like(s[:, 0]) + 2.0 * xp.sum(A[:, :d] * T["A"][:, :d])
    else:
        dC0 = dKx @ W
        AW = A[:, :d] @ W
        dAW = T["A"][:, :d] @ W
        dlap_A = 2.0 * xp.sum(AW * dAW, axis=(1, 2))
    dlap = (xp.sum((dq[0] * z[1] + q[0] * dz[1]) * xp.sum(C0 * C0, axis=2), axis=1)
            + 2.0 * xp.sum(q[0] * z[1] * xp.sum(C0 * dC0, axis=2), axis=1))
    dJ = dg[0][:, :, None] * C0 + g[0][:, :, None] * dC0
    for i in range(1, M + 1):
        Pi = Pm[i]
        dP = T["K"][i - 1, ...] @ J[i - 1] + K[i - 1, ...] @ dJ
        dlap = dlap + h * (xp.sum((dq[i] * z[i + 1] + q[i] * dz[i + 1]) * xp.sum(Pi * Pi, axis=2), axis=1)
                           + 2.0 * xp.sum(q[i] * z[i + 1] * xp.sum(Pi * dP, axis=2), axis=1))
        dJ = dJ + h * (dg[i][:, :, None] * Pi + g[i][:, :, None] * dP)
    dlap = dlap + dlap_A
    return dphi, dG, dlap


def phi(P, s, h):
    """``Phi(s; theta)`` per sample, shape ``(n,)`` (D1): the forward pass alone."""
    a = s @ P["K0"].T + P["b0"]
    u = log_cosh(a)
    for i in range(P["K"].shape[0]):
        u = u + h * log_cosh(u @ P["K"][i, ...].T + P["bK"][i, ...])
    As = s @ P["A"].T
    return u @ P["w"] + 0.5 * namespace(s).sum(As * As, axis=1) + s @ P["b"] + P["c"][0]


def phi_vjp(P, s, h) -> tuple[Any, Callable]:
    """``(Phi, pullback)``: ``Phi(s; theta)`` per sample (D1) and its reverse-mode derivative
    ``pullback(phibar) -> (sbar (n, d+1), dict of parameter cotangents)``.

    Plain backpropagation through D1 -- no gradient, time derivative or Laplacian terms --
    for cotangents that reach ``Phi`` alone.  With ``KA = [K_0; A]`` it is three GEMMs of
    width ``m + r`` over the batch, against six and the trace terms of :func:`vjp`:

    * forward: ``[a_0, A s] = s KA^T + [b_0, 0]``, ``u_0 = sigma(a_0)``,
      ``u_{i+1} = u_i + h sigma(u_i K_i^T + b_i)``,
      ``Phi = u_M w + |A s|^2 / 2 + s b + c``;
    * reverse (``phibar``): ``ubar_M = phibar w^T``,
      ``abar_i = h ubar_{i+1} o sigma'(a_i)``, ``ubar_i = ubar_{i+1} + abar_i K_i``,
      ``abar_0 = ubar_0 o sigma'(a_0)``; with ``C = [abar_0, phibar A s]``:
      ``sbar = C KA + phibar b^T``, ``[Kbar_0; Abar] = C^T s``, ``Kbar_i = abar_i^T u_i``,
      ``wbar = u_M^T phibar``, ``bbar = s^T phibar``.
    """
    xp = namespace(s)
    m = P["K0"].shape[0]
    KA = concat([P["K0"], P["A"]])
    PA = s @ KA.T
    a = PA[:, :m] + P["b0"]
    u, gs = [log_cosh(a)], [xp.tanh(a)]
    for i in range(P["K"].shape[0]):
        a = u[-1] @ P["K"][i, ...].T + P["bK"][i, ...]
        gs.append(xp.tanh(a))
        u.append(u[-1] + h * log_cosh(a))
    As = PA[:, m:]
    AsAs = np.einsum("nr,nr->n", As, As) if xp is np else xp.sum(As * As, axis=1)
    value = u[-1] @ P["w"] + 0.5 * AsAs + s @ P["b"] + P["c"][0]

    def pullback(pb):
        B = {"w": u[-1].T @ pb, "b": s.T @ pb, "c": xp.reshape(xp.sum(pb), (1,)),
             "K": xp.empty_like(P["K"]), "bK": xp.empty_like(P["bK"])}
        ub = pb[:, None] * P["w"]
        for i in range(P["K"].shape[0] - 1, -1, -1):
            ab = h * ub * gs[i + 1]
            B["K"][i, ...], B["bK"][i, ...] = ab.T @ u[i], xp.sum(ab, axis=0)
            ub = ub + ab @ P["K"][i, ...]
        C = concat([ub * gs[0], pb[:, None] * As], axis=1)
        sbar = C @ KA
        sbar += pb[:, None] * P["b"]
        BKA = C.T @ s
        B["K0"], B["A"], B["b0"] = BKA[:m, ...], BKA[m:, ...], xp.sum(C[:, :m], axis=0)
        return sbar, B

    return value, pullback
