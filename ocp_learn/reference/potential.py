"""The potential model against CasADi's AD (MATH D1--D3, D6), and twins of the potential flow (D4, D5).

``Phi(x, t; theta)`` is written symbolically from its definition (D1, in
:mod:`.symbolic`); its ``grad_x``, ``d_t`` and Laplacian come from CasADi's
``gradient`` and ``hessian``, and the vjp/jvp of ``(Phi, grad, d_t, lap)`` from
CasADi's reverse and forward modes.  :func:`compare_potential` measures the
hand-derived :class:`~ocp_learn.models.potential.PotentialResNet` against them.

The twins of :class:`~ocp_learn.models.potential_flow.PotentialFlowField`
and :class:`~ocp_learn.problems.potential_flow.PotentialTerminal` (``"nll"``,
exact trace, no interaction terms) let :func:`.discrete.compare_gradient`
witness the whole OT-Flow objective, Laplacian terms included.
"""
from __future__ import annotations

import weakref
from typing import Any

import casadi as ca
import numpy as np

from ..errors import check_rng
from .symbolic import (SYMBOLIC_POTENTIAL, lookup, potential_derivatives, register_rhs,
                       register_terminal)

__all__ = ["potential_function", "potential_hessian", "compare_potential"]

_CACHE = weakref.WeakKeyDictionary()


def potential_function(model: Any) -> ca.Function:
    """CasADi function ``(x (d), t, theta) -> (Phi, grad_x Phi, d_t Phi, lap_x Phi)`` by AD (cached).

    Parameters
    ----------
    model : PotentialResNet
        Or any type registered with :func:`.symbolic.register_potential`.

    Returns
    -------
    casadi.Function
        The symbolic potential and its derivatives, cached per model.
    """
    f = _CACHE.get(model)
    if f is None:
        x = ca.SX.sym("x", model.dim)
        t = ca.SX.sym("t")
        th = ca.SX.sym("theta", model.n_params)
        phi, grad, dt, lap = potential_derivatives(model, x, t, th)
        f = ca.Function("potential", [x, t, th], [phi, grad, dt, lap])
        _CACHE[model] = f
    return f


def potential_hessian(model: Any, x: Any, t: float, theta: Any) -> np.ndarray:
    """``Hess_x Phi(x, t; theta)`` per sample by CasADi's AD of the symbolic twin (D1).

    Parameters
    ----------
    model : PotentialResNet
        Any ``trace`` setting (the twin is the network itself).
    x : ndarray, shape (n, d)
    t : float
    theta : ndarray, shape (n_params,)

    Returns
    -------
    ndarray, shape (n, d, d)
    """
    phi_sym = lookup(SYMBOLIC_POTENTIAL, model, "potential")
    d = model.dim
    xs, ts, ths = ca.SX.sym("x", d), ca.SX.sym("t"), ca.SX.sym("theta", model.n_params)
    H, _ = ca.hessian(phi_sym(model, xs, ts, ths), xs)
    f = ca.Function("hessian", [xs, ts, ths], [H])
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    theta = np.asarray(theta, dtype=np.float64)
    return np.stack([np.asarray(f(xi, float(t), theta)) for xi in x])


def _rel(a, b):
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def compare_potential(model: Any, x: Any, t: float, theta: Any,
                      seed: Any = 0) -> dict[str, float]:
    """Relative differences of the hand-derived potential derivatives to CasADi's AD.

    Parameters
    ----------
    model : PotentialResNet
        The potential (exact trace).
    x : ndarray, shape (n, d)
        The points.
    t : float
        The time.
    theta : ndarray, shape (n_params,)
        The parameters.
    seed : int or Generator
        For the random cotangents and tangents of the vjp/jvp checks.

    Returns
    -------
    dict
        ``phi``, ``grad``, ``dt``, ``lap`` (values, D1--D3), ``vjp_x``,
        ``vjp_t``, ``vjp_theta`` (D6, with random cotangents on all four
        outputs), ``phi_vjp`` and ``phi_vjp_x``, ``phi_vjp_t``, ``phi_vjp_theta``
        (:meth:`~ocp_learn.models.potential.PotentialResNet.phi_vjp`: the value and its
        pullback of a cotangent on ``Phi`` alone) and ``jvp`` (random ``dx, dtheta``): each
        ``|hand - casadi| / |casadi|``.
    """
    lookup(SYMBOLIC_POTENTIAL, model, "potential")
    if model.trace != "exact":
        raise ValueError("compare_potential needs a model with trace='exact' (the Hutchinson "
                         "estimate is stochastic)")
    rng = check_rng(seed)
    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    p = model.n_params
    f = potential_function(model)
    xs, ts, ths = ca.SX.sym("x", d), ca.SX.sym("t"), ca.SX.sym("theta", p)
    outs = f(xs, ts, ths)
    out = ca.vertcat(*outs)                     # (1 + d + 1 + 1)
    ins = ca.vertcat(xs, ts, ths)
    bar = ca.SX.sym("bar", out.shape[0])
    dins = ca.SX.sym("dins", ins.shape[0])
    fv = ca.Function("vjp", [xs, ts, ths, bar], [ca.jtimes(out, ins, bar, True)])
    fj = ca.Function("jvp", [xs, ts, ths, dins], [ca.jtimes(out, ins, dins)])
    fmap = f.map(n)
    phi, grad, dt, lap = (np.asarray(o) for o in fmap(x.T, np.full((1, n), t), np.tile(theta[:, None], n)))
    D = model.derivatives(x, t, theta)
    res = {"phi": _rel(D.phi, phi), "grad": _rel(D.grad, grad.T), "dt": _rel(D.dt, dt),
           "lap": _rel(D.lap, lap)}
    pb, gb, tb, lb = rng.standard_normal(n), rng.standard_normal((n, d)), rng.standard_normal(n), \
        rng.standard_normal(n)
    xb, tbar, thb = model.derivatives_vjp(x, t, theta, phi_bar=pb, grad_bar=gb, dt_bar=tb, lap_bar=lb)
    bars = np.vstack([pb[None], gb.T, tb[None], lb[None]])
    r = np.asarray(fv.map(n)(x.T, np.full((1, n), t), np.tile(theta[:, None], n), bars))
    res["vjp_x"] = _rel(xb, r[:d].T)
    res["vjp_t"] = _rel(tbar, r[d])
    res["vjp_theta"] = _rel(thb, r[d + 1:].sum(axis=1))
    phi_h, pull = model.phi_vjp(x, t, theta)   # the value-only pullback, phibar alone
    xb, tbar, thb = pull(pb)
    bars[1:] = 0.0
    r = np.asarray(fv.map(n)(x.T, np.full((1, n), t), np.tile(theta[:, None], n), bars))
    res["phi_vjp"] = _rel(phi_h, phi)
    res["phi_vjp_x"] = _rel(xb, r[:d].T)
    res["phi_vjp_t"] = _rel(tbar, r[d])
    res["phi_vjp_theta"] = _rel(thb, r[d + 1:].sum(axis=1))
    dx, dth = rng.standard_normal((n, d)), rng.standard_normal(p)
    T = model.derivatives_jvp(x, t, theta, dx=dx, dtheta=dth)
    dins_v = np.vstack([dx.T, np.zeros((1, n)), np.tile(dth[:, None], n)])
    r = np.asarray(fj.map(n)(x.T, np.full((1, n), t), np.tile(theta[:, None], n), dins_v))
    hand = np.vstack([T.phi[None], T.grad.T, T.dt[None], T.lap[None]])
    res["jvp"] = _rel(hand, r)
    return res


# ------------------------------------------------------------------------------ potential flow twins
def _interaction_sym(F, z, lr):
    """``(value, dF/drho)`` of an interaction term (MATH F) written in CasADi."""
    from ..costs.interactions import EntropyCost, ObstacleCost

    if isinstance(F, ObstacleCost):
        u = z[:F.k] - ca.DM(F.center)
        q = F._c * ca.exp(-0.5 * ca.sum1(u * u / ca.DM(F.var)))
        return q, q
    if isinstance(F, EntropyCost):
        return F.lam * lr, F.lam * (lr + 1.0)
    raise NotImplementedError(f"no CasADi twin of the interaction term {type(F).__name__}")


def _logpdf_sym(rho, z):
    """``log rho(z)`` of a :class:`~ocp_learn.datasets.densities.GaussianMixture` in CasADi."""
    terms = []
    for mk, vk, wk in zip(rho.means, rho.variances, rho.weights):
        terms.append(np.log(wk) - 0.5 * ca.sumsqr(z - ca.DM(mk)) / vk
                     - 0.5 * rho.dim * np.log(2 * np.pi * vk))
    if len(terms) == 1:
        return terms[0]
    big = ca.vertcat(*terms)
    mx = ca.mmax(big)
    return mx + ca.log(ca.sum1(ca.exp(big - mx)))


def _register_flow():
    try:
        from ..problems.potential_flow import PotentialFlowField, PotentialTerminal
    except ImportError:  # pragma: no cover - optional family
        return

    @register_rhs(PotentialFlowField)
    def _flow(field, y, t, theta):
        """MATH D4 / E2--E4: ``[-grad Phi/a1, -lap Phi/a1, |grad Phi|^2/(2 a1), F_j, (R), (0)]``."""
        if field.potential.trace != "exact":
            raise NotImplementedError("CasADi twin of PotentialFlowField needs trace='exact'")
        d, a1, a2 = field.dim, field.a1, field.a2
        z = y[:d]
        lr = None if field.c_lr0 is None else y[field.c_lr0] - y[field.c_ell]
        phi, grad, dt, lap = potential_function(field.potential)(z, t, theta)
        gg = ca.sumsqr(grad)
        parts = [-grad / a1, -lap / a1, gg / (2 * a1)]
        dF = 0
        for F in field.interactions:
            val, drho = _interaction_sym(F, z, lr)
            parts.append(val)
            dF = dF + drho
        if field.hjb:
            parts.append(ca.fabs(-dt + gg / (2 * a1) - a2 * dF))
        if field.c_lr0 is not None:
            parts.append(ca.DM.zeros(1))
        return ca.vertcat(*parts)

    @register_terminal(PotentialTerminal, lambda cost, idx: None)
    def _terminal(cost, y, p, data, theta_T=None, t_T=None, **kw):
        """MATH D5 / F: ``wG G + wL L + wF sum F_j + wR R + wRT |Phi(z, T) - a3 dG/drho|``."""
        f, w, d = cost.field, cost.w, cost.field.dim
        z, ell = y[:d], y[f.c_ell]
        if cost.kind == "nll":
            G = 0.5 * ca.sumsqr(z) + 0.5 * d * np.log(2 * np.pi) - ell
        else:
            lr1 = _logpdf_sym(cost.rho1, z)
            G = y[f.c_lr0] - ell - lr1
        J = w["G"] * G + w["L"] * y[f.c_L]
        for c in f.c_F:
            J = J + w["F"] * y[c]
        if f.hjb:
            J = J + w["R"] * y[f.c_R]
        if cost.reads_theta_T:
            phi = lookup(SYMBOLIC_POTENTIAL, f.potential, "potential")(f.potential, z, t_T, theta_T)
            J = J + w["RT"] * ca.fabs(phi - cost.a3 * (1.0 + y[f.c_lr0] - ell - lr1))
        return J


_register_flow()
