"""Closed-form and independent references: Riccati, Gaussian OT, the MFG single-agent check.

* Linear--quadratic (LQ): ``dz/dt = A z + B u``, cost
  ``int_0^T 1/2 (z^T Q z + u^T R u) dt + 1/2 |z(T)|^2``.  Its optimal cost
  from ``x0`` is ``1/2 x0^T P(0) x0`` with the Riccati ODE
  ``-dP/dt = A^T P + P A - P B R^{-1} B^T P + Q``, ``P(T) = I``; the optimal
  feedback is ``u = -R^{-1} B^T P z``.  :func:`lq_problem` writes the same
  problem as an :class:`~ocp_learn.OCP` (open-loop control ``theta(t) = u(t)``
  on the state grid), so ocp_learn's discrete optimum can be compared with the
  continuous one; the gap decays like ``O(h^p)`` (:func:`riccati_gap`).
* Gaussian-to-Gaussian optimal transport: ``W_2`` distance, the linear Monge
  map and the displacement interpolation (the optimal flow of OT MFGs with
  ``L = 1/2 |v|^2``, MATH E1/E5), as functions other modules call.
* The MFG single-agent check (MATH E3/E4, Pontryagin consistency): an agent
  following ``v = -grad Phi`` should not be able to improve its own cost
  ``int L(x, v) + dF/drho(x, t) dt + G(x(T))`` by a direct-collocation solve
  started from that trajectory (:func:`single_agent_check`).
"""
from __future__ import annotations

import time

import casadi as ca
import numpy as np
from scipy.integrate import solve_ivp

from ..errors import as_array, check_positive_float, check_positive_int

__all__ = ["riccati", "lq_problem", "lq_optimum", "riccati_gap", "gaussian_w2", "gaussian_ot_map",
           "gaussian_interpolation", "gaussian_ot_velocity", "single_agent_check"]


# ============================================================================ Riccati (LQ)
def _lq_matrices(A, B, Q, R):
    A = as_array("A", A, ndim=2)
    B = as_array("B", B, ndim=2)
    d, m = B.shape
    if A.shape != (d, d):
        raise ValueError(f"A must have shape ({d}, {d}) to match B {B.shape}, got {A.shape}")
    Q = as_array("Q", Q, shape=(d, d))
    R = as_array("R", R, shape=(m, m))
    return A, B, Q, R


def riccati(A, B, Q, R, T, Qf=None, rtol=1e-12, atol=1e-14):
    """Solve the Riccati ODE backwards: ``-P' = A^T P + P A - P B R^{-1} B^T P + Q``, ``P(T) = Qf``.

    Returns
    -------
    callable
        ``P(t)`` (``(d, d)`` array) for ``t in [0, T]`` (dense output of an
        8th-order Dormand--Prince solve at ``rtol``).
    """
    A, B, Q, R = _lq_matrices(A, B, Q, R)
    T = check_positive_float("T", T)
    d = A.shape[0]
    Qf = np.eye(d) if Qf is None else as_array("Qf", Qf, shape=(d, d))
    S = B @ np.linalg.solve(R, B.T)

    def rhs(t, p):
        P = p.reshape(d, d)
        return -(A.T @ P + P @ A - P @ S @ P + Q).ravel()

    sol = solve_ivp(rhs, (T, 0.0), Qf.ravel(), method="DOP853", rtol=rtol, atol=atol,
                    dense_output=True)
    if not sol.success:  # pragma: no cover - smooth problem
        raise RuntimeError(f"Riccati solve failed: {sol.message}")

    def P(t):
        Pt = sol.sol(t).reshape(d, d)
        return 0.5 * (Pt + Pt.T)
    return P


def lq_problem(A, B, Q, R, x0, T, nt, integrator="rk4", time_param="piecewise_constant"):
    """The LQ problem as an :class:`~ocp_learn.OCP` (terminal cost ``1/2 |z(T)|^2``).

    ``theta(t) = u(t)`` is piecewise constant on the ``nt`` steps
    (``"piecewise_constant"``) or piecewise linear on the ``nt + 1`` grid
    times (``"piecewise_linear"``); the running cost
    ``1/2 z^T Q z + 1/2 u^T R u`` is integrated by the same RK scheme.
    """
    from ..costs import LinearHeadLoss, QuadraticState
    from ..models.controlled_linear import ControlEnergy, ControlledLinearModel
    from ..ocp import OCP

    A, B, Q, R = _lq_matrices(A, B, Q, R)
    nt = check_positive_int("nt", nt)
    x0 = as_array("x0", x0, ndim=2, shape=(None, A.shape[0]))
    d = A.shape[0]
    tp = {"piecewise_constant": ("piecewise_constant", nt),
          "piecewise_linear": ("piecewise_linear", nt + 1)}
    if time_param not in tp:
        raise ValueError(f"time_param must be 'piecewise_constant' or 'piecewise_linear', "
                         f"got {time_param!r}")
    return OCP(ControlledLinearModel(A, B), x0,
               LinearHeadLoss(np.zeros((x0.shape[0], d)), d, "squares", fit_head=False),
               T=T, nt=nt, integrator=integrator, time_param=tp[time_param],
               running=[QuadraticState(Q), ControlEnergy(R)])


def lq_optimum(A, B, Q, R, x0, T):
    """The continuous optimal cost ``1/2 x0^T P(0) x0`` (one initial state ``x0`` of shape ``(d,)``)."""
    x0 = as_array("x0", x0, ndim=1)
    P = riccati(A, B, Q, R, T)
    return 0.5 * float(x0 @ P(0.0) @ x0)


def riccati_gap(A, B, Q, R, x0, T, nts=(4, 8, 16, 32), integrator="rk4",
                time_param="piecewise_constant", gtol=1e-12):
    """ocp_learn's discrete LQ optimum (L-BFGS, fine tolerance) against the Riccati value.

    Returns
    -------
    dict
        ``J_riccati``, ``nt``, ``J_discrete``, ``gap = |J_h - J*|``, ``orders``
        (``log2`` ratios of successive gaps, ``nts`` doubling) and
        ``order`` (least-squares slope of ``-log gap`` against ``log nt``).
    """
    from ..optim import lbfgs

    x0 = as_array("x0", x0, ndim=1)
    Jstar = lq_optimum(A, B, Q, R, x0, T)
    Js, gaps = [], []
    for nt in nts:
        prob = lq_problem(A, B, Q, R, x0[None, :], T, nt, integrator, time_param)
        res = lbfgs(prob, np.zeros(prob.n_params), maxiter=10000, gtol=gtol, ftol=1e-16,
                    memory=30, progress=False)
        Js.append(float(res.fun))
        gaps.append(abs(res.fun - Jstar))
    gaps = np.array(gaps)
    orders = np.log2(gaps[:-1] / gaps[1:]) * (np.log(2) / np.log(np.array(nts[1:]) / np.array(nts[:-1])))
    slope = float(np.polyfit(np.log(np.asarray(nts, float)), -np.log(gaps), 1)[0])
    return {"J_riccati": Jstar, "nt": list(nts), "J_discrete": Js, "gap": gaps.tolist(),
            "orders": orders.tolist(), "order": slope, "integrator": str(integrator),
            "time_param": time_param}


# ============================================================================ Gaussian OT
def _gauss(m, S, name):
    m = as_array(f"m{name}", m, ndim=1)
    S = as_array(f"S{name}", S, shape=(m.size, m.size))
    if not np.allclose(S, S.T) or np.min(np.linalg.eigvalsh(S)) <= 0:
        raise ValueError(f"S{name} must be symmetric positive definite")
    return m, S


def _psd_sqrt(S):
    w, V = np.linalg.eigh(0.5 * (S + S.T))
    return (V * np.sqrt(np.clip(w, 0.0, None))) @ V.T


def gaussian_w2(m0, S0, m1, S1, squared=False):
    """``W_2(N(m0, S0), N(m1, S1))``:
    ``W_2^2 = |m0 - m1|^2 + tr(S0 + S1 - 2 (S1^{1/2} S0 S1^{1/2})^{1/2})``."""
    m0, S0 = _gauss(m0, S0, "0")
    m1, S1 = _gauss(m1, S1, "1")
    r1 = _psd_sqrt(S1)
    cross = _psd_sqrt(r1 @ S0 @ r1)
    w2 = float(np.sum((m0 - m1) ** 2) + np.trace(S0 + S1 - 2.0 * cross))
    w2 = max(w2, 0.0)
    return w2 if squared else np.sqrt(w2)


def gaussian_ot_map(m0, S0, m1, S1):
    """The Monge map ``T(x) = m1 + M (x - m0)``,
    ``M = S0^{-1/2} (S0^{1/2} S1 S0^{1/2})^{1/2} S0^{-1/2}`` (symmetric positive definite).

    Returns
    -------
    M : ndarray, shape (d, d)
    b : ndarray, shape (d,)
        ``T(x) = x @ M.T + b`` with ``b = m1 - M m0``.
    """
    m0, S0 = _gauss(m0, S0, "0")
    m1, S1 = _gauss(m1, S1, "1")
    r0 = _psd_sqrt(S0)
    r0i = np.linalg.inv(r0)
    M = r0i @ _psd_sqrt(r0 @ S1 @ r0) @ r0i
    M = 0.5 * (M + M.T)
    return M, m1 - M @ m0


def gaussian_interpolation(m0, S0, m1, S1, s):
    """McCann's displacement interpolation at ``s in [0, 1]``: ``N(m_s, S_s)`` with
    ``m_s = (1-s) m0 + s m1``, ``S_s = M_s S0 M_s``, ``M_s = (1-s) I + s M``."""
    M, _ = gaussian_ot_map(m0, S0, m1, S1)
    m0, S0 = _gauss(m0, S0, "0")
    m1, _ = _gauss(m1, S1, "1")
    Ms = (1.0 - s) * np.eye(m0.size) + s * M
    return (1.0 - s) * m0 + s * m1, Ms @ S0 @ Ms


def gaussian_ot_velocity(x, t, m0, S0, m1, S1, T=1.0):
    """The optimal velocity ``v(x, t) = -grad Phi(x, t)`` of dynamic OT between two Gaussians
    on ``[0, T]`` (minimal kinetic cost ``int 1/2 |v|^2 = W_2^2 / (2T)``).

    Along the displacement interpolation ``x(t) = m0 + (I + s (M - I))(x0 - m0) + s (m1 - m0)``,
    ``s = t/T``, so ``v(x, t) = [(M - I)(I + s (M - I))^{-1} (x - m_s) + m1 - m0] / T``.
    """
    x = as_array("x", x, ndim=2)
    M, _ = gaussian_ot_map(m0, S0, m1, S1)
    m0 = np.asarray(m0, float)
    m1 = np.asarray(m1, float)
    s = float(t) / T
    I = np.eye(M.shape[0])
    G = (M - I) @ np.linalg.inv(I + s * (M - I))
    ms = (1.0 - s) * m0 + s * m1
    return ((x - ms) @ G.T + (m1 - m0)) / T


# ============================================================================ MFG single agent
def _lagrange_collocation(K):
    """Nodes ``tau = [0, Gauss--Legendre(K)]`` on ``[0, 1]``, the derivative matrix
    ``C[r, j] = l_r'(tau_j)`` (``j >= 1``), end values ``D[r] = l_r(1)`` and
    Gauss weights ``w_j``."""
    g, w = np.polynomial.legendre.leggauss(K)
    tau = np.concatenate([[0.0], 0.5 * (g + 1.0)])
    w = 0.5 * w
    C = np.zeros((K + 1, K + 1))
    D = np.zeros(K + 1)
    for r in range(K + 1):
        coef = np.poly1d([1.0])
        for s in range(K + 1):
            if s != r:
                coef *= np.poly1d([1.0, -tau[s]]) / (tau[r] - tau[s])
        D[r] = coef(1.0)
        dcoef = np.polyder(coef)
        for j in range(K + 1):
            C[r, j] = dcoef(tau[j])
    return tau, C, D, w


def single_agent_check(phi_fn, grad_phi_fn, x0, T, nt, running_cost_fn_casadi=None,
                       terminal_fn_casadi=None, *, alpha=1.0, degree=3, t0=0.0, tol=1e-4,
                       ipopt_tol=1e-12):
    """Pontryagin consistency of a learned MFG potential for single agents (MATH E3, E4).

    An agent starting at ``x0`` follows the feedback ``v = -grad Phi / alpha``
    (with ``L(x, v) = alpha/2 |v|^2``; ``alpha = a1`` of MATH F); its cost is

        ``J[x] = int_{t0}^{t0+T} alpha/2 |x'|^2 + ell(x, t) dt + G(x(t0+T))``

    with ``ell = dF/drho`` (frozen along the learned density) and ``G`` the
    terminal cost (``Phi(., T)`` or ``dG/drho``).  If ``Phi`` solves the HJB
    equation, the feedback trajectory is optimal for this agent: a
    direct-collocation solve (IPOPT; states continuous piecewise polynomials
    of ``degree`` on ``nt`` intervals, Gauss--Legendre nodes, ``v = x'``)
    started there should not improve it by more than ``tol``.

    Parameters
    ----------
    phi_fn : callable or None
        ``phi_fn(x (n, d), t) -> (n,)``; used for the value consistency
        ``Phi(x0, t0) - J_feedback`` (reported, not tested), may be None.
    grad_phi_fn : callable
        ``grad_phi_fn(x (n, d), t) -> (n, d)``.
    x0 : array_like, shape (d,) or (n_agents, d)
    T : float
    nt : int
        Collocation intervals.
    running_cost_fn_casadi, terminal_fn_casadi : callable, optional
        ``ell(x, t)`` and ``G(x)`` written with CasADi operations on a
        ``(d, 1)`` symbol (and a float ``t``); ``None`` means zero.
    alpha : float
        Weight of the kinetic Lagrangian.
    degree : int
        Polynomial degree of the collocation.
    tol : float
        Tolerated improvement (absolute, per agent).

    Returns
    -------
    dict
        Per agent (lists): ``J_feedback`` (cost of the feedback trajectory,
        integrated accurately), ``J_collocation_start`` (the collocation
        objective at the initial guess), ``J_optimal`` (after IPOPT),
        ``improvement = J_feedback - J_optimal``, ``value_gap =
        Phi(x0, t0) - J_feedback`` (if ``phi_fn``); and ``max_improvement``,
        ``passed = max_improvement <= tol``, ``status``, ``seconds``.
    """
    x0 = as_array("x0", x0)
    if x0.ndim == 1:
        x0 = x0[None, :]
    if x0.ndim != 2:
        raise ValueError(f"x0 must have shape (d,) or (n_agents, d), got {x0.shape}")
    T = check_positive_float("T", T)
    nt = check_positive_int("nt", nt)
    degree = check_positive_int("degree", degree)
    alpha = check_positive_float("alpha", alpha)
    d = x0.shape[1]
    xs = ca.SX.sym("x", d)
    ts = ca.SX.sym("t")
    ell_expr = 0 if running_cost_fn_casadi is None else running_cost_fn_casadi(xs, ts)
    G_expr = 0 if terminal_fn_casadi is None else terminal_fn_casadi(xs)
    ell_f = ca.Function("ell", [xs, ts], [ell_expr])
    G_f = ca.Function("G", [xs], [G_expr])

    def grad(x, t):
        g = np.asarray(grad_phi_fn(x[None, :], t), dtype=np.float64)
        return g.reshape(d)

    tau, C, Dend, w = _lagrange_collocation(degree)
    h = T / nt
    out = {"J_feedback": [], "J_collocation_start": [], "J_optimal": [], "improvement": [],
           "value_gap": [], "status": []}
    start = time.perf_counter()
    for a in range(x0.shape[0]):
        # --- 1. the feedback trajectory and its cost (accurate ODE solve) -------------
        def rhs(t, y):
            v = -grad(y[:d], t) / alpha
            return np.concatenate([v, [0.5 * alpha * v @ v + float(ell_f(y[:d], t))]])

        sol = solve_ivp(rhs, (t0, t0 + T), np.concatenate([x0[a], [0.0]]), method="DOP853",
                        rtol=1e-11, atol=1e-12, dense_output=True)
        xT = sol.y[:d, -1]
        J_fb = float(sol.y[d, -1] + G_f(xT))
        # --- 2. direct collocation, initialized on the feedback trajectory -----------
        X = [[ca.SX.sym(f"X_{k}_{j}", d) for j in range(degree + 1)] for k in range(nt)]
        XN = ca.SX.sym("X_N", d)
        J = 0
        g = [X[0][0] - x0[a]]
        guess = []
        for k in range(nt):
            tk = t0 + k * h
            for j in range(degree + 1):
                guess.append(sol.sol(tk + tau[j] * h)[:d])
            for j in range(1, degree + 1):
                xp = sum(C[r, j] * X[k][r] for r in range(degree + 1)) / h
                J = J + h * w[j - 1] * (0.5 * alpha * ca.sumsqr(xp) + ell_f(X[k][j], tk + tau[j] * h))
            xend = sum(Dend[r] * X[k][r] for r in range(degree + 1))
            g.append(xend - (X[k + 1][0] if k + 1 < nt else XN))
        guess.append(xT)
        J = J + G_f(XN)
        z = ca.vertcat(*[X[k][j] for k in range(nt) for j in range(degree + 1)], XN)
        z0 = np.concatenate(guess)
        nlp = {"x": z, "f": J, "g": ca.vertcat(*g)}
        solver = ca.nlpsol("agent", "ipopt", nlp, {"ipopt.print_level": 0, "print_time": False,
                                                   "ipopt.tol": ipopt_tol, "ipopt.sb": "yes"})
        J_start = float(ca.Function("J0", [z], [J])(z0))
        res = solver(x0=z0, lbg=0, ubg=0)
        J_opt = float(res["f"])
        out["J_feedback"].append(J_fb)
        out["J_collocation_start"].append(J_start)
        out["J_optimal"].append(J_opt)
        out["improvement"].append(J_fb - J_opt)
        out["status"].append(str(solver.stats().get("return_status")))
        if phi_fn is not None:
            out["value_gap"].append(float(np.ravel(phi_fn(x0[a][None, :], t0))[0]) - J_fb)
    out["max_improvement"] = float(max(out["improvement"]))
    out["passed"] = bool(out["max_improvement"] <= tol)
    out["tol"] = tol
    out["seconds"] = time.perf_counter() - start
    return out
