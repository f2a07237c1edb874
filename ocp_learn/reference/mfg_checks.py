"""Pontryagin consistency of a learned MFG value function (MATH E3, E4) via CasADi.

Each agent's own OCP -- ``min int a1/2 |x'|^2 + a2 Q(x) dt + Phi(x(T), T)`` --
is solved by direct collocation (IPOPT) started on the trajectory the learned
feedback ``v = -grad Phi / a1`` produces (:func:`ocp_learn.reference.analytic.single_agent_check`).
If ``Phi`` solves the HJB equation the start is optimal and IPOPT cannot
improve it; the improvement measures how far the learned ``Phi`` is from that.
The entropy part of ``dF/drho`` depends on the density, not on the agent's own
position alone; it is left out of the agent's cost (its weight is 0.01 in
the crowd-motion preset), which the report states.
"""
from __future__ import annotations

import numpy as np

from ..costs.interactions import ObstacleCost

__all__ = ["pontryagin_check"]


def pontryagin_check(prob, theta, x0, nt=8, degree=3, tol=1e-2):
    """Run the single-agent check for the agents ``x0`` (rows) of a
    :class:`~ocp_learn.problems.mfg.PotentialMFG`.

    Returns the dict of :func:`~ocp_learn.reference.analytic.single_agent_check`
    plus ``relative_improvement`` (``max improvement / mean |J_feedback|``) and
    ``entropy_left_out``.
    """
    import casadi as ca

    from .analytic import single_agent_check
    from .symbolic import SYMBOLIC_POTENTIAL, lookup

    pot = prob.potential
    th = ca.DM(np.asarray(theta[:pot.n_params]))
    phi_sym = lookup(SYMBOLIC_POTENTIAL, pot, "potential")
    T_end = prob.t0 + prob.T
    a1, a2 = float(prob.alpha[0]), float(prob.alpha[1])
    obstacles = [F for F in prob.field.interactions if isinstance(F, ObstacleCost)]

    def running(x, t):
        out = 0
        for F in obstacles:
            u = x[:F.k] - ca.DM(F.center)
            out += a2 * F._c * ca.exp(-0.5 * ca.sum1(u * u / ca.DM(F.var)))
        return out

    def terminal(x):
        return phi_sym(pot, x, T_end, th)

    r = single_agent_check(lambda x, t: pot.phi(x, t, theta[:pot.n_params]),
                           lambda x, t: pot.derivatives(x, t, theta[:pot.n_params]).grad,
                           x0, prob.T, nt, running if obstacles else None, terminal, alpha=a1,
                           degree=degree, t0=prob.t0, tol=tol)
    scale = float(np.mean(np.abs(r["J_feedback"]))) or 1.0
    r["relative_improvement"] = float(r["max_improvement"]) / scale
    r["entropy_left_out"] = any(F.uses_logrho for F in prob.field.interactions)
    return r
