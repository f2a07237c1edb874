r"""The OT-Flow potential ``Phi(x, t; theta)`` and its hand-derived derivatives (MATH D1--D3, D6).

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
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import as_array, check_choice, check_positive_int, check_rng
from ..params import ParamLayout

__all__ = ["PotentialResNet", "PotentialDerivatives", "log_cosh"]


class PotentialDerivatives(NamedTuple):
    """Per-sample ``Phi`` (n,), ``grad = grad_x Phi`` (n, d), ``dt = d_t Phi`` (n,), ``lap`` (n,).

    Returned by :meth:`PotentialResNet.derivatives` (values) and
    :meth:`PotentialResNet.derivatives_jvp` (tangents of the same quantities).
    """

    phi: np.ndarray
    grad: np.ndarray
    dt: np.ndarray
    lap: np.ndarray


def log_cosh(a):
    """``sigma(a) = log(exp(a) + exp(-a))`` computed stably as ``|a| + log1p(exp(-2|a|))`` (D1)."""
    aa = np.abs(a)
    return aa + np.log1p(np.exp(-2.0 * aa))


# --------------------------------------------------------------------------------------------
# numpy reference: one chunk of samples, arrays with samples in the leading axis
# --------------------------------------------------------------------------------------------

def _activation(a):
    """``(sigma(a), sigma'(a)) = (log_cosh(a), tanh(a))`` elementwise (D1)."""
    return log_cosh(a), np.tanh(a)


def _forward(P, s, W, h, d, act=_activation):
    """Steps 1--3 of the module docstring on a chunk; returns outputs and the cache.

    ``W`` is ``None`` (exact trace, ``W = I_d``) or per-sample directions ``(n, d, c)``.
    ``act`` maps ``a`` to ``(sigma(a), tanh(a))`` (a fused GPU kernel on the cupy backend).
    Written with array-API calls only, so that CuPy arrays run it unchanged
    (``__array_function__`` dispatch; :mod:`ocp_learn.kernels.potential_cupy`).
    """
    K0, b0, K, bK, w, A, b = P["K0"], P["b0"], P["K"], P["bK"], P["w"], P["A"], P["b"]
    M = K.shape[0]
    n = s.shape[0]
    # (1) forward pass (D1)
    a = [s @ K0.T + b0]
    u0, g0 = act(a[0])
    g = [g0]
    u = [u0]
    for i in range(1, M + 1):
        a.append(u[i - 1] @ K[i - 1].T + bK[i - 1])
        ui, gi = act(a[i])
        g.append(gi)
        u.append(u[i - 1] + h * ui)
    q = [1.0 - gi * gi for gi in g]
    As = s @ A.T
    phi = u[M] @ w + 0.5 * np.sum(As * As, axis=1) + s @ b + P["c"][0]
    # (2) reverse sweep (D2)
    z = [None] * (M + 2)
    y = [None] * (M + 1)
    z[M + 1] = np.broadcast_to(w, (n, w.size))
    for i in range(M, 0, -1):
        y[i] = g[i] * z[i + 1]
        z[i] = z[i + 1] + h * (y[i] @ K[i - 1])
    y[0] = g[0] * z[1]
    z0 = y[0] @ K0
    G = z0 + As @ A + b
    # (3) Jacobian propagation and trace (D3)
    Kx = K0[:, :d]
    if W is None:
        C0 = np.broadcast_to(Kx, (n,) + Kx.shape)
        Ax = A[:, :d]
        lap_A = np.zeros_like(s[:, 0]) + np.sum(Ax * Ax)
    else:
        C0 = Kx @ W                                      # (n, m, c)
        AW = A[:, :d] @ W                                # (n, r, c)
        lap_A = np.sum(AW * AW, axis=(1, 2))
    C0sq = np.sum(C0 * C0, axis=2)
    lap = np.sum(q[0] * z[1] * C0sq, axis=1)
    J = [g[0][:, :, None] * C0]
    Pm = [None]
    for i in range(1, M + 1):
        Pi = K[i - 1] @ J[i - 1]
        Pm.append(Pi)
        lap = lap + h * np.sum(q[i] * z[i + 1] * np.sum(Pi * Pi, axis=2), axis=1)
        J.append(J[i - 1] + h * g[i][:, :, None] * Pi)
    lap = lap + lap_A
    cache = dict(a=a, g=g, q=q, u=u, z=z, y=y, J=J, Pm=Pm, C0=C0, C0sq=C0sq, As=As, s=s, W=W)
    return phi, G, lap, cache


def _vjp(P, cache, h, d, phibar, Gbar, lapbar, _drop=()):
    """Adjoint of :func:`_forward` (module docstring); returns ``sbar (n, D)`` and block bars.

    ``_drop`` names terms to leave out on purpose -- ``"sigma3"`` (the third
    derivative term ``-2 g_i qbar_i q_i``), ``"zbar_trace"`` (the trace's dependence
    on ``z``), ``"Jbar_chain"`` (``Jbar_{i-1} += K_i^T Pbar_i``) -- only so that the
    tests can show that each dropped term is caught.
    """
    K0, K, w, A = P["K0"], P["K"], P["w"], P["A"]
    M = K.shape[0]
    g, q, u, z, y, J, Pm = (cache[k] for k in ("g", "q", "u", "z", "y", "J", "Pm"))
    s, W, As, C0, C0sq = cache["s"], cache["W"], cache["As"], cache["C0"], cache["C0sq"]
    n, D = s.shape
    B = {k: np.zeros_like(v) for k, v in P.items()}
    gbar = [np.zeros_like(gi) for gi in g]
    qbar = [np.zeros_like(gi) for gi in g]
    zbar = [None] + [np.zeros_like(g[0]) for _ in range(M + 1)]  # zbar[1..M+1]
    # ---- (3) trace
    lb = lapbar[:, None]
    if W is None:
        B["A"][:, :d] += 2.0 * lapbar.sum() * A[:, :d]
    else:
        AW = A[:, :d] @ W                                          # (n, r, c)
        B["A"][:, :d] += 2.0 * np.tensordot(lb[:, :, None] * AW, W, axes=([0, 2], [0, 2]))
    Jbar = np.zeros_like(J[0]) if M > 0 else None
    for i in range(M, 0, -1):
        Pi = Pm[i]
        Psq = np.sum(Pi * Pi, axis=2)
        gbar[i] += h * np.sum(Jbar * Pi, axis=2)
        qbar[i] += h * lb * z[i + 1] * Psq
        if "zbar_trace" not in _drop:
            zbar[i + 1] += h * lb * q[i] * Psq
        Pbar = h * g[i][:, :, None] * Jbar + (2.0 * h) * (lb * q[i] * z[i + 1])[:, :, None] * Pi
        B["K"][i - 1] += np.tensordot(Pbar, J[i - 1], axes=([0, 2], [0, 2]))
        if "Jbar_chain" not in _drop:
            Jbar = Jbar + K[i - 1].T @ Pbar
    qbar[0] += lb * z[1] * C0sq
    if "zbar_trace" not in _drop:
        zbar[1] += lb * q[0] * C0sq
    C0bar = 2.0 * (lb * q[0] * z[1])[:, :, None] * C0
    if M > 0:
        gbar[0] += np.sum(Jbar * C0, axis=2)
        C0bar = C0bar + g[0][:, :, None] * Jbar
    if W is None:
        B["K0"][:, :d] += C0bar.sum(axis=0)
    else:
        B["K0"][:, :d] += np.tensordot(C0bar, W, axes=([0, 2], [0, 2]))
    # ---- (2) reverse sweep
    sbar = Gbar @ (A.T @ A)
    B["A"] += A @ (s.T @ Gbar + Gbar.T @ s)
    B["b"] += Gbar.sum(axis=0)
    ybar = Gbar @ K0.T
    B["K0"] += y[0].T @ Gbar
    gbar[0] += ybar * z[1]
    zbar[1] += ybar * g[0]
    for i in range(1, M + 1):
        zbar[i + 1] += zbar[i]
        ybar = h * (zbar[i] @ K[i - 1].T)
        B["K"][i - 1] += h * (y[i].T @ zbar[i])
        gbar[i] += ybar * z[i + 1]
        zbar[i + 1] += ybar * g[i]
    B["w"] += zbar[M + 1].sum(axis=0)
    # ---- (1) forward pass
    pb = phibar[:, None]
    ubar = pb * w
    B["w"] += phibar @ u[M]
    sbar += pb * (As @ A + P["b"])
    B["A"] += (As * pb).T @ s
    B["b"] += phibar @ s
    B["c"][0] += phibar.sum()
    s3 = 0.0 if "sigma3" in _drop else 2.0
    for i in range(M, 0, -1):
        abar = h * g[i] * ubar + (gbar[i] - s3 * g[i] * qbar[i]) * q[i]
        B["K"][i - 1] += abar.T @ u[i - 1]
        B["bK"][i - 1] += abar.sum(axis=0)
        ubar = ubar + abar @ K[i - 1]
    abar = g[0] * ubar + (gbar[0] - s3 * g[0] * qbar[0]) * q[0]
    B["K0"] += abar.T @ s
    B["b0"] += abar.sum(axis=0)
    sbar += abar @ K0
    return sbar, B


def _jvp(P, T, cache, h, d, ds):
    """Tangent of :func:`_forward`: ``T`` are parameter tangents, ``ds (n, D)``; returns dphi, dG, dlap."""
    K0, K, w, A = P["K0"], P["K"], P["w"], P["A"]
    M = K.shape[0]
    g, q, u, z, y, J, Pm = (cache[k] for k in ("g", "q", "u", "z", "y", "J", "Pm"))
    s, W, As, C0 = cache["s"], cache["W"], cache["As"], cache["C0"]
    # (1)
    da = s @ T["K0"].T + ds @ K0.T + T["b0"]
    dg = [q[0] * da]
    du = g[0] * da
    dus = [du]
    for i in range(1, M + 1):
        da = dus[i - 1] @ K[i - 1].T + u[i - 1] @ T["K"][i - 1].T + T["bK"][i - 1]
        dg.append(q[i] * da)
        dus.append(dus[i - 1] + h * g[i] * da)
    dq = [-2.0 * gi * dgi for gi, dgi in zip(g, dg)]
    dAs = s @ T["A"].T + ds @ A.T
    dphi = (dus[M] @ w + u[M] @ T["w"] + np.sum(As * dAs, axis=1) + s @ T["b"] + ds @ P["b"]
            + T["c"][0])
    # (2)
    dz = [None] * (M + 2)
    dz[M + 1] = np.broadcast_to(T["w"], z[M + 1].shape)
    for i in range(M, 0, -1):
        dy = dg[i] * z[i + 1] + g[i] * dz[i + 1]
        dz[i] = dz[i + 1] + h * (y[i] @ T["K"][i - 1] + dy @ K[i - 1])
    dy = dg[0] * z[1] + g[0] * dz[1]
    dG = y[0] @ T["K0"] + dy @ K0 + As @ T["A"] + dAs @ A + T["b"]
    # (3)
    dKx = T["K0"][:, :d]
    if W is None:
        dC0 = np.broadcast_to(dKx, C0.shape)
        dlap_A = np.zeros_like(s[:, 0]) + 2.0 * np.sum(A[:, :d] * T["A"][:, :d])
    else:
        dC0 = dKx @ W
        AW = A[:, :d] @ W
        dAW = T["A"][:, :d] @ W
        dlap_A = 2.0 * np.sum(AW * dAW, axis=(1, 2))
    dlap = (np.sum((dq[0] * z[1] + q[0] * dz[1]) * np.sum(C0 * C0, axis=2), axis=1)
            + 2.0 * np.sum(q[0] * z[1] * np.sum(C0 * dC0, axis=2), axis=1))
    dJ = dg[0][:, :, None] * C0 + g[0][:, :, None] * dC0
    for i in range(1, M + 1):
        Pi = Pm[i]
        dP = T["K"][i - 1] @ J[i - 1] + K[i - 1] @ dJ
        dlap = dlap + h * (np.sum((dq[i] * z[i + 1] + q[i] * dz[i + 1]) * np.sum(Pi * Pi, axis=2), axis=1)
                           + 2.0 * np.sum(q[i] * z[i + 1] * np.sum(Pi * dP, axis=2), axis=1))
        dJ = dJ + h * (dg[i][:, :, None] * Pi + g[i][:, :, None] * dP)
    dlap = dlap + dlap_A
    return dphi, dG, dlap


def _any_on_device(*args):
    """True when an argument is a CuPy array (``backend="cupy"`` then stays on the device)."""
    return any(type(v).__module__.split(".")[0] == "cupy" for v in args)


# --------------------------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------------------------

class PotentialResNet:
    r"""OT-Flow potential ``Phi(x, t; theta)`` (MATH D1) with derivatives (D2, D3, D6).

    Parameters
    ----------
    dim : int
        Spatial dimension ``d``; the network input is ``s = (x, t)`` of size ``d + 1``.
    width : int
        ResNet width ``m``.
    n_layers : int
        Number ``M >= 1`` of residual layers (step ``h = 1/M``).
    rank : int, optional
        Rank ``r`` of ``A`` (``r x (d+1)``); ``None`` means ``min(10, d + 1)``.
    trace : {"exact", "hutchinson"}
        ``lap`` is the exact trace (D3), or the Hutchinson estimate
        ``mean_k v_k^T Hess_x Phi v_k`` over the probes passed to each call.
    backend : {"numpy", "numba", "cupy"}
        The numpy reference, fused per-sample Numba kernels
        (:mod:`ocp_learn.kernels.potential_numba`) giving the same numbers, or
        the GPU (:mod:`ocp_learn.kernels.potential_cupy`: CuPy + cuBLAS +
        a numba-cuda activation kernel; needs a CUDA device).
    path : {"auto", "fused", "blas"}
        ``backend="numba"`` only: ``"fused"`` runs the per-sample kernels
        (``prange`` over samples); ``"blas"`` the chunked batched-GEMM program
        of the numpy reference (matrix products by BLAS); ``"auto"`` picks
        ``"fused"``, which measured faster for the CNF objective + gradient at
        every size tried, m = 32 and 128, d = 2 to 128, one and two threads
        (``benchmarks/results/kernels_fused_vs_blas.md``).
    chunk : int, optional
        numpy backend: samples processed at once (bounds the ``(chunk, m, d)``
        Jacobians held); default from a 64 MB budget.  cupy backend: the same on
        the device; default from ``potential_cupy.CHUNK_BYTES`` (4 GiB).
    trace_path : {"auto", "jacobian", "gram"}
        ``backend="numba"`` fused kernels, exact trace only: propagate the
        ``m x d`` Jacobians ``J_i`` (``O(M m^2 d)`` per sample), or their Gram
        matrices ``J_i J_i^T`` (``O(M m^3)``, independent of ``d``;
        :mod:`ocp_learn.kernels.potential_gram_numba`, the ``d``-dimensional
        products as GEMMs over the batch); ``"auto"`` takes the
        Gram path when ``d > m`` (``M = 1``) or ``d > 2m``.  Same numbers to rounding.

    Notes
    -----
    The derivation of every derivative is in the module docstring.  The
    per-sample cost is ``O(M m^2 d)`` for the exact trace and its vjp/jvp
    (``O(M m^3)`` on the Gram path).
    """


    def __init__(self, dim, width=32, n_layers=1, rank=None, trace="exact", backend="numpy",
                 chunk=None, path="auto", trace_path="auto"):
        self.dim = check_positive_int("dim", dim)
        self.width = check_positive_int("width", width)
        self.n_layers = check_positive_int("n_layers", n_layers)
        self.rank = min(10, self.dim + 1) if rank is None else check_positive_int("rank", rank)
        self.trace = check_choice("trace", trace, {"exact", "hutchinson"})
        self.backend = check_choice("backend", backend, {"numpy", "numba", "cupy"})
        if self.backend == "cupy":
            from ..kernels import check_backend
            check_backend("cupy")
        self.chunk = None if chunk is None else check_positive_int("chunk", chunk)
        self.path = check_choice("path", path, {"auto", "fused", "blas"})
        self.trace_path = check_choice("trace_path", trace_path, {"auto", "jacobian", "gram"})
        m, D, M, r = self.width, self.dim + 1, self.n_layers, self.rank
        self.h = 1.0 / M
        self.layout = ParamLayout([("w", (m,)), ("A", (r, D)), ("b", (D,)), ("c", (1,)),
                                   ("K0", (m, D)), ("b0", (m,)), ("K", (M, m, m)), ("bK", (M, m))])

    # ---------------------------------------------------------------- basics
    @property
    def n_params(self):
        return self.layout.size

    def unpack(self, theta):
        """Named views of ``theta`` (see :class:`~ocp_learn.params.ParamLayout`)."""
        return self.layout.unpack(theta)

    def __repr__(self):
        return (f"PotentialResNet(dim={self.dim}, width={self.width}, n_layers={self.n_layers}, "
                f"rank={self.rank}, trace={self.trace!r}, backend={self.backend!r})")

    def init_params(self, rng=None):
        """OT-Flow initialization: ``w = 1``, ``b = c = 0``; ``A`` Xavier-uniform;
        ``K0, b0, K_i, b_i`` uniform in ``+-1/sqrt(fan_in)`` (PyTorch's ``nn.Linear`` default)."""
        rng = check_rng(rng, "rng")
        m, D, M, r = self.width, self.dim + 1, self.n_layers, self.rank
        bA = np.sqrt(6.0 / (r + D))
        p = {"w": np.ones(m), "A": rng.uniform(-bA, bA, (r, D)), "b": np.zeros(D),
             "c": np.zeros(1),
             "K0": rng.uniform(-1, 1, (m, D)) / np.sqrt(D), "b0": rng.uniform(-1, 1, m) / np.sqrt(D),
             "K": rng.uniform(-1, 1, (M, m, m)) / np.sqrt(m), "bK": rng.uniform(-1, 1, (M, m)) / np.sqrt(m)}
        return self.layout.pack(p)

    def sample_probes(self, n, rng, k=1, kind="rademacher"):
        """``k`` probe vectors per sample, shape ``(k, n, d)``: Rademacher (+-1) or standard Gaussian."""
        n = check_positive_int("n", n)
        k = check_positive_int("k", k)
        check_choice("kind", kind, {"rademacher", "gaussian"})
        rng = check_rng(rng, "rng")
        if kind == "rademacher":
            return rng.choice(np.array([-1.0, 1.0]), size=(k, n, self.dim))
        return rng.standard_normal((k, n, self.dim))

    # ---------------------------------------------------------------- input checks
    def _inputs(self, x, t, theta):
        x = as_array("x", x, ndim=2, shape=(None, self.dim))
        n = x.shape[0]
        if np.ndim(t) == 0:
            tt = np.full(n, float(as_array("t", np.reshape(t, 1))[0]))
        else:
            tt = as_array("t", t, ndim=1, shape=(n,))
        theta = as_array("theta", theta, ndim=1, shape=(self.n_params,))
        s = np.empty((n, self.dim + 1))
        s[:, :-1] = x
        s[:, -1] = tt
        return s, theta

    def _directions(self, probes, n, xp=np, asarr=None):
        """``W`` of the trace: ``None`` (exact) or ``probes`` as ``(n, d, k) / sqrt(k)``.

        ``xp``/``asarr`` (array module and checked conversion ``asarr(name, v)``) let the
        cupy backend build ``W`` on the device with the same checks.
        """
        if self.trace == "exact":
            if probes is not None:
                raise ValueError("probes are only used with trace='hutchinson'; this model has "
                                 "trace='exact', pass probes=None")
            return None
        if probes is None:
            raise ValueError("trace='hutchinson' needs probes of shape (k, n, d) or (n, d); "
                             "draw them with sample_probes(n, rng, k)")
        pr = as_array("probes", probes) if asarr is None else asarr("probes", probes)
        got = tuple(pr.shape)
        if pr.ndim == 2:
            pr = pr[None]
        if pr.ndim != 3 or tuple(pr.shape[1:]) != (n, self.dim):
            raise ValueError(f"probes must have shape (k, {n}, {self.dim}) or ({n}, {self.dim}), "
                             f"got {got}")
        k = pr.shape[0]
        return xp.ascontiguousarray(xp.transpose(pr, (1, 2, 0))) / np.sqrt(k)

    def _bar(self, name, v, shape):
        if v is None:
            return np.zeros(shape)
        v = as_array(name, v)
        if v.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {v.shape}")
        return v

    def _chunks(self, n, c):
        if self.chunk is not None:
            size = self.chunk
        else:
            per = self.width * c * (2 * self.n_layers + 3) + 20 * self.width
            size = max(1, (1 << 23) // per)
        return [slice(i, min(i + size, n)) for i in range(0, n, size)]

    def _fused(self):
        """Whether this call runs the fused Numba kernels (else the BLAS/numpy program)."""
        if self.backend != "numba":
            return False
        return self.path in ("auto", "fused")

    def _kernels(self):
        from ..kernels import potential_numba
        return potential_numba

    # ---------------------------------------------------------------- evaluation
    def phi(self, x, t, theta):
        """``Phi(x, t; theta)`` per sample, shape ``(n,)`` (D1)."""
        s, theta = self._inputs(x, t, theta)
        P = self.unpack(theta)
        a = s @ P["K0"].T + P["b0"]
        u = log_cosh(a)
        for i in range(self.n_layers):
            u = u + self.h * log_cosh(u @ P["K"][i].T + P["bK"][i])
        As = s @ P["A"].T
        return u @ P["w"] + 0.5 * np.sum(As * As, axis=1) + s @ P["b"] + P["c"][0]

    def phi_vjp(self, x, t, theta):
        """``(Phi, pullback)``: ``Phi(x, t; theta)`` per sample (D1) and its reverse-mode
        derivative ``pullback(phi_bar) -> (x_bar (n, d), t_bar (n,), theta_bar)``.

        Plain backpropagation through D1 -- no gradient, time derivative or Laplacian
        terms -- for the cotangents that reach ``Phi`` alone (the terminal HJB penalty,
        MATH F ``c_HJB,T``).  With ``KA = [K_0; A]`` it is three GEMMs of width ``m + r``
        over the batch, against six and the trace kernels of :meth:`derivatives_vjp`:

        * forward: ``[a_0, A s] = s KA^T + [b_0, 0]``, ``u_0 = sigma(a_0)``,
          ``u_{i+1} = u_i + h sigma(u_i K_i^T + b_i)``,
          ``Phi = u_M w + |A s|^2 / 2 + s b + c``;
        * reverse (``phibar``): ``ubar_M = phibar w^T``,
          ``abar_i = h ubar_{i+1} o sigma'(a_i)``, ``ubar_i = ubar_{i+1} + abar_i K_i``,
          ``abar_0 = ubar_0 o sigma'(a_0)``; with ``C = [abar_0, phibar A s]``:
          ``sbar = C KA + phibar b^T``, ``[Kbar_0; Abar] = C^T s``, ``Kbar_i = abar_i^T u_i``,
          ``wbar = u_M^T phibar``, ``bbar = s^T phibar``.

        The same numbers as :meth:`derivatives_vjp` with only ``phi_bar`` (to rounding;
        tested in ``tests/test_potential.py``).  numpy (BLAS) on every CPU backend.
        """
        s, theta = self._inputs(x, t, theta)
        P = self.unpack(theta)
        m, d = self.width, self.dim
        KA = np.concatenate([P["K0"], P["A"]])
        PA = s @ KA.T
        a = PA[:, :m] + P["b0"]
        u, gs = [log_cosh(a)], [np.tanh(a)]
        for i in range(self.n_layers):
            a = u[-1] @ P["K"][i].T + P["bK"][i]
            gs.append(np.tanh(a))
            u.append(u[-1] + self.h * log_cosh(a))
        As = PA[:, m:]
        phi = u[-1] @ P["w"] + 0.5 * np.einsum("nr,nr->n", As, As) + s @ P["b"] + P["c"][0]

        def pullback(phi_bar):
            pb = self._bar("phi_bar", phi_bar, phi.shape)
            B = {"w": u[-1].T @ pb, "b": s.T @ pb, "c": np.array([pb.sum()]),
                 "K": np.empty_like(P["K"]), "bK": np.empty_like(P["bK"])}
            ub = pb[:, None] * P["w"]
            for i in range(self.n_layers - 1, -1, -1):
                ab = self.h * ub * gs[i + 1]
                B["K"][i], B["bK"][i] = ab.T @ u[i], ab.sum(0)
                ub = ub + ab @ P["K"][i]
            C = np.concatenate([ub * gs[0], pb[:, None] * As], axis=1)
            sbar = C @ KA
            sbar += pb[:, None] * P["b"]
            BKA = C.T @ s
            B["K0"], B["A"], B["b0"] = BKA[:m], BKA[m:], C[:, :m].sum(0)
            return sbar[:, :d].copy(), sbar[:, d].copy(), self.layout.pack(B)

        return phi, pullback

    def derivatives(self, x, t, theta, probes=None):
        """``Phi``, ``grad_x Phi``, ``d_t Phi`` (D2) and ``lap_x Phi`` (D3) per sample.

        Parameters
        ----------
        x : ndarray, shape (n, d)
        t : float or ndarray, shape (n,)
        theta : ndarray, shape (n_params,)
        probes : ndarray, shape (k, n, d) or (n, d), optional
            Only (and required) for ``trace="hutchinson"``: ``lap`` is then
            ``mean_k probes[k]^T Hess_x Phi probes[k]``.

        Returns
        -------
        PotentialDerivatives
            With ``backend="cupy"``, CuPy arrays when any argument is a CuPy array
            (device-resident; :func:`~ocp_learn.kernels.potential_cupy.model_derivatives`).
        """
        if self.backend == "cupy" and _any_on_device(x, t, theta, probes):
            from ..kernels import potential_cupy
            return potential_cupy.model_derivatives(self, x, t, theta, probes)
        s, theta = self._inputs(x, t, theta)
        n, d = s.shape[0], self.dim
        W = self._directions(probes, n)
        if self._fused():
            phi, G, lap = self._kernels().derivatives(self.unpack(theta), s, W, self.h,
                                                      trace_path=self.trace_path)
        elif self.backend == "cupy":
            from ..kernels import potential_cupy
            phi, G, lap = potential_cupy.derivatives(self.unpack(theta), s, W, self.h, self.chunk)
        else:
            P = self.unpack(theta)
            phi, lap, G = np.empty(n), np.empty(n), np.empty((n, d + 1))
            for sl in self._chunks(n, d if W is None else W.shape[2]):
                phi[sl], G[sl], lap[sl], _ = _forward(P, s[sl], None if W is None else W[sl],
                                                      self.h, d)
        return PotentialDerivatives(phi, np.ascontiguousarray(G[:, :d]), G[:, d].copy(), lap)

    def derivatives_vjp(self, x, t, theta, phi_bar=None, grad_bar=None, dt_bar=None, lap_bar=None,
                        probes=None):
        """vjp of ``(Phi, grad_x Phi, d_t Phi, lap_x Phi)`` with respect to ``x``, ``t``, ``theta`` (D6).

        Parameters
        ----------
        phi_bar, dt_bar, lap_bar : ndarray, shape (n,), optional
        grad_bar : ndarray, shape (n, d), optional
            Cotangents; ``None`` means zero.

        Returns
        -------
        x_bar : ndarray, shape (n, d)
        t_bar : ndarray, shape (n,)
            Per-sample (sum it if ``t`` was a shared scalar).
        theta_bar : ndarray, shape (n_params,)
            Summed over samples.

        With ``backend="cupy"`` and any argument a CuPy array, all three are CuPy arrays.
        """
        if self.backend == "cupy" and _any_on_device(x, t, theta, phi_bar, grad_bar, dt_bar,
                                                     lap_bar, probes):
            from ..kernels import potential_cupy
            return potential_cupy.model_derivatives_vjp(self, x, t, theta, phi_bar, grad_bar,
                                                        dt_bar, lap_bar, probes)
        s, theta = self._inputs(x, t, theta)
        n, d = s.shape[0], self.dim
        W = self._directions(probes, n)
        phibar = self._bar("phi_bar", phi_bar, (n,))
        lapbar = self._bar("lap_bar", lap_bar, (n,))
        Gbar = np.empty((n, d + 1))
        Gbar[:, :d] = self._bar("grad_bar", grad_bar, (n, d))
        Gbar[:, d] = self._bar("dt_bar", dt_bar, (n,))
        P = self.unpack(theta)
        if self._fused():
            sbar, B = self._kernels().derivatives_vjp(P, s, W, self.h, phibar, Gbar, lapbar,
                                                      trace_path=self.trace_path)
        elif self.backend == "cupy":
            from ..kernels import potential_cupy
            sbar, B = potential_cupy.derivatives_vjp(P, s, W, self.h, phibar, Gbar, lapbar,
                                                     self.chunk)
        else:
            sbar = np.empty_like(s)
            B = {k: np.zeros_like(v) for k, v in P.items()}
            for sl in self._chunks(n, d if W is None else W.shape[2]):
                Ws = None if W is None else W[sl]
                _, _, _, cache = _forward(P, s[sl], Ws, self.h, d)
                sbar[sl], Bc = _vjp(P, cache, self.h, d, phibar[sl], Gbar[sl], lapbar[sl])
                for k in B:
                    B[k] += Bc[k]
        return sbar[:, :d].copy(), sbar[:, d].copy(), self.layout.pack(B)

    def derivatives_jvp(self, x, t, theta, dx=None, dt=None, dtheta=None, probes=None):
        """Tangent of ``(Phi, grad_x Phi, d_t Phi, lap_x Phi)`` along ``(dx, dt, dtheta)`` (D6).

        ``dx (n, d)``, ``dt`` (float or ``(n,)``), ``dtheta (n_params,)``; ``None`` means zero.
        Returns a :class:`PotentialDerivatives` of tangents (the directional
        derivatives used by Gauss--Newton, MATH G1).  With ``backend="cupy"`` and any
        argument a CuPy array, the tangents are CuPy arrays.
        """
        if self.backend == "cupy" and _any_on_device(x, t, theta, dx, dt, dtheta, probes):
            from ..kernels import potential_cupy
            return potential_cupy.model_derivatives_jvp(self, x, t, theta, dx, dt, dtheta, probes)
        s, theta = self._inputs(x, t, theta)
        n, d = s.shape[0], self.dim
        W = self._directions(probes, n)
        ds = np.zeros_like(s)
        if dx is not None:
            ds[:, :d] = as_array("dx", dx, ndim=2, shape=(n, d))
        if dt is not None:
            ds[:, d] = (as_array("dt", np.reshape(dt, 1))[0] if np.ndim(dt) == 0
                        else as_array("dt", dt, shape=(n,)))
        dth = (np.zeros(self.n_params) if dtheta is None
               else as_array("dtheta", dtheta, ndim=1, shape=(self.n_params,)))
        P, T = self.unpack(theta), self.unpack(dth)
        if self._fused():
            dphi, dG, dlap = self._kernels().derivatives_jvp(P, T, s, ds, W, self.h)
        elif self.backend == "cupy":
            from ..kernels import potential_cupy
            dphi, dG, dlap = potential_cupy.derivatives_jvp(P, T, s, ds, W, self.h, self.chunk)
        else:
            dphi, dlap, dG = np.empty(n), np.empty(n), np.empty((n, d + 1))
            for sl in self._chunks(n, d if W is None else W.shape[2]):
                Ws = None if W is None else W[sl]
                _, _, _, cache = _forward(P, s[sl], Ws, self.h, d)
                dphi[sl], dG[sl], dlap[sl] = _jvp(P, T, cache, self.h, d, ds[sl])
        return PotentialDerivatives(dphi, np.ascontiguousarray(dG[:, :d]), dG[:, d].copy(), dlap)
