"""An OCP's discrete objective rebuilt in CasADi, with its AD gradient (MATH B1, C1).

:func:`build_reference` reads an :class:`~ocp_learn.OCP` -- tableau ``(a, b, c)``,
time grid, ``theta(t)`` weights, initial states, field, running costs,
terminal cost and regularizers -- and writes *the same arithmetic* as a
CasADi function of the flat ``theta``.  Per sample the scheme is (B1)

    ``Y_i = y_k + h sum_{j<i} a_ij K_j``, ``K_i = F(Y_i, t_k + c_i h; theta(t_k + c_i h))``,
    ``y_{k+1} = y_k + h sum_i b_i K_i``,

with ``theta(t) = sum_j w_j(t) theta_j`` from ``ocp.time_param.weights``
exactly as :class:`~ocp_learn.controls.StepControl` forms it, and the
objective ``J = mean_i [G(y_i(T); p) + sum_j c_ij(T)] + sum_k R_k(theta)``.

Samples are independent until the mean, so the per-sample map is one SX
function; the batch is either inlined in SX (``mode="sx"``, tiny problems) or
applied with ``casadi.Function.map`` inside an MX graph (``mode="mx"``).
CasADi's reverse mode then gives ``dJ/dtheta``: an independent witness of the
hand-derived discrete adjoint (B2).
"""
from __future__ import annotations

import casadi as ca
import numpy as np

from ..controls import combine_rows

from .symbolic import SYMBOLIC_STEP, SYMBOLIC_TERMINAL, lookup, symbolic_regularizer

__all__ = ["ReferenceProblem", "build_reference", "reference_objective_and_gradient",
           "compare_gradient", "SX_MAX_SAMPLES"]

SX_MAX_SAMPLES = 64
"""``mode="auto"`` inlines at most this many samples in SX; more go through ``map``."""


def _rows(theta, n_nodes, p):
    return [theta[j * p:(j + 1) * p] for j in range(n_nodes)]


_combine = combine_rows  # the same combination of parameter rows as the sweeps use


class ReferenceProblem:
    """The CasADi twin of one OCP on a fixed batch.

    Parameters
    ----------
    ocp : OCP
        The problem (:class:`~ocp_learn.OCP`).
    batch : index array or boolean mask, optional
        The samples (all by default).
    mode : {"auto", "sx", "mx"}
        The CasADi graph (see :func:`build_reference`).

    Attributes
    ----------
    function : casadi.Function
        ``theta -> (J, dJ/dtheta)``.
    objective : casadi.Function
        ``theta -> J``.
    theta : casadi.SX or casadi.MX
        The symbolic parameters; ``J`` the symbolic objective (for IPOPT).
    """

    def __init__(self, ocp, batch=None, mode="auto"):
        if mode not in ("auto", "sx", "mx"):
            raise ValueError(f"mode must be 'auto', 'sx' or 'mx', got {mode!r}")
        idx, x = ocp._batch(batch)
        n = x.shape[0]
        if mode == "auto":
            mode = "sx" if n <= SX_MAX_SAMPLES else "mx"
        self.mode, self.n_samples, self.ocp = mode, n, ocp
        field = ocp.field
        y0 = np.asarray(field.initial_state(x), dtype=np.float64)   # data, not a parameter
        D = y0.shape[1]
        twin = lookup(SYMBOLIC_TERMINAL, ocp.terminal, "terminal cost")
        data = twin.data(ocp.terminal, idx)
        data = np.zeros((n, 0)) if data is None else np.asarray(data, dtype=np.float64).reshape(n, -1)
        run_twin = (lookup(SYMBOLIC_TERMINAL, ocp._running_cost, "terminal cost")
                    if ocp._running_cost is not None else None)

        # --- per-sample discrete map (SX) ----------------------------------------
        y_s = ca.SX.sym("y0", D)
        d_s = ca.SX.sym("data", data.shape[1])
        th_s = ca.SX.sym("theta", ocp.n_params)
        c_s = self._sample_cost(ocp, y_s, d_s, th_s, twin, run_twin)
        self.sample = ca.Function("sample", [y_s, d_s, th_s], [c_s])

        # --- batch mean + regularizers ---------------------------------------------
        Sym = ca.SX if mode == "sx" else ca.MX
        theta = Sym.sym("theta", ocp.n_params)
        if mode == "sx":
            J = 0
            for i in range(n):
                J = J + self.sample(ca.DM(y0[i]), ca.DM(data[i]), theta)
        else:
            fmap = self.sample.map("sample_map", "serial", n, [2], [0])
            J = fmap(ca.DM(y0.T), ca.DM(data.T), theta)
        J = J / n
        nodes = ocp.time_param.n_nodes
        p = ocp.model.layout.size
        rows = _rows(theta, nodes, p)
        for reg in ocp.regularizers:
            J = J + symbolic_regularizer(reg, rows)
        self.theta, self.J = theta, J
        self.objective = ca.Function("J", [theta], [J])
        self.function = ca.Function("J_grad", [theta], [J, ca.gradient(J, theta)])

    @staticmethod
    def _sample_cost(ocp, y, data, theta, twin, run_twin):
        nodes = ocp.time_param.n_nodes
        p = ocp.model.layout.size
        rows = _rows(theta, nodes, p)
        field, times = ocp.field, ocp.times
        step = lookup(SYMBOLIC_STEP, ocp.integrator, "integrator")
        for k in range(len(times) - 1):
            t, h = float(times[k]), float(times[k + 1] - times[k])
            s0 = (t - ocp.t0) / ocp.T
            ds = h / ocp.T
            s_mid = s0 + 0.5 * ds

            def theta_at(c, s0=s0, ds=ds, s_mid=s_mid):
                return _combine(rows, ocp.time_param.weights(s_mid, s0 + c * ds))
            y = step(ocp.integrator, field, y, t, h, theta_at)
        P = ocp.layout.offsets["terminal"]
        p_term = theta[P[0]:P[1]]
        kw = {}
        if ocp.terminal.reads_theta_T:
            t, h = float(times[-2]), float(times[-1] - times[-2])
            s0 = (t - ocp.t0) / ocp.T
            ds = h / ocp.T
            kw = {"theta_T": _combine(rows, ocp.time_param.weights(s0 + 0.5 * ds, s0 + ds)),
                  "t_T": float(times[-1])}
        cost = twin.value(ocp.terminal, y, p_term, data, **kw)
        if run_twin is not None:
            cost = cost + run_twin.value(ocp._running_cost, y, None, None)
        return cost

    def value_and_gradient(self, theta):
        """``(J, dJ/dtheta)`` at a numeric ``theta``.

        Parameters
        ----------
        theta : ndarray, shape (n_params,)
            The parameters.

        Returns
        -------
        J : float
            The objective.
        gradient : ndarray, shape (n_params,)
            Its gradient by CasADi's AD.
        """
        theta = self.ocp.check_theta(theta)
        J, g = self.function(theta)
        return float(J), np.asarray(g, dtype=np.float64).ravel()


def build_reference(ocp, batch=None, mode="auto"):
    """The :class:`ReferenceProblem` of ``ocp`` on ``batch`` (all samples by default).

    Parameters
    ----------
    ocp : OCP
        The problem (:class:`~ocp_learn.OCP`).
    batch : index array or boolean mask, optional
        The samples (all by default).
    mode : {"auto", "sx", "mx"}
        ``"sx"`` inlines every sample in one SX graph (tiny problems); ``"mx"``
        maps the per-sample SX function over the samples; ``"auto"`` picks SX
        for at most :data:`SX_MAX_SAMPLES` samples.

    Returns
    -------
    ReferenceProblem
        The CasADi twin.
    """
    return ReferenceProblem(ocp, batch, mode)


def reference_objective_and_gradient(ocp, theta, batch=None, mode="auto"):
    """``(J, dJ/dtheta)`` of ``ocp``'s discrete objective by CasADi's AD.

    Parameters
    ----------
    ocp : OCP
        The problem (:class:`~ocp_learn.OCP`).
    theta : ndarray, shape (n_params,)
        The parameters.
    batch : index array or boolean mask, optional
        The samples (all by default).
    mode : {"auto", "sx", "mx"}
        The CasADi graph (see :func:`build_reference`).

    Returns
    -------
    J : float
        The objective.
    gradient : ndarray, shape (n_params,)
        Its gradient.
    """
    return build_reference(ocp, batch, mode).value_and_gradient(theta)


def compare_gradient(ocp, theta, batch=None, mode="auto", reference=None):
    """Compare ``ocp.objective_and_gradient`` with CasADi's AD of the same discrete problem.

    Parameters
    ----------
    ocp : OCP
        The problem (:class:`~ocp_learn.OCP`).
    theta : ndarray, shape (n_params,)
        The parameters.
    batch : index array or boolean mask, optional
        The samples (all by default).
    mode : {"auto", "sx", "mx"}
        The CasADi graph (see :func:`build_reference`).
    reference : ReferenceProblem, optional
        A twin built before (built here by default).

    Returns
    -------
    dict
        ``rel_diff = |g - g_ref| / |g_ref|``, ``abs_diff``, ``value_rel_diff``,
        ``J``, ``J_ref``, ``grad_norm_ref``, ``mode``, ``n_params``.
    """
    ref = build_reference(ocp, batch, mode) if reference is None else reference
    J, g = ocp.objective_and_gradient(theta, batch)
    Jr, gr = ref.value_and_gradient(theta)
    nr = float(np.linalg.norm(gr))
    diff = float(np.linalg.norm(g - gr))
    return {"rel_diff": diff / max(nr, 1e-300), "abs_diff": diff,
            "value_rel_diff": abs(J - Jr) / max(abs(Jr), 1e-300), "J": float(J), "J_ref": Jr,
            "grad_norm_ref": nr, "mode": ref.mode, "n_params": int(ocp.n_params)}
