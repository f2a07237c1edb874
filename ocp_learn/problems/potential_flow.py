"""The terminal cost of the potential flow shared by normalizing flows and mean field games
(MATH D5, F); the field itself is :class:`ocp_learn.models.potential_flow.PotentialFlowField`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..arrays import namespace
from ..costs.terminal import TerminalCost
from ..errors import check_choice, check_positive_float
from ..protocols import ScoredDensity, TerminalResult, check_protocol
from ..models.potential_flow import PotentialFlowField, flow_field_class

__all__ = ["PotentialFlowField", "PotentialTerminal", "flow_field_class"]


class PotentialTerminal(TerminalCost):
    r"""Terminal part of the potential-flow objective (MATH D5, F).

    ``J = wL E[L(T)] + wF E[sum_j F_j(T)] + wG E[G] + wR E[R(T)] + wRT E[|Phi(z, T) - a3 dG/drho|]``

    with ``G`` either the negative log-likelihood under ``N(0, I)``
    (``"nll"``: ``1/2 |z|^2 + d/2 log 2 pi - ell``, D5) or the pointwise KL
    integrand (``"kl"``: ``log rho_0(x) - ell - log rho_1(z)``, F), whose
    variational derivative is ``dG/drho = 1 + log rho(z, T) - log rho_1(z)``.

    Parameters
    ----------
    field : PotentialFlowField
    kind : {"nll", "kl"}
    rho1 : ScoredDensity, optional
        Target density with ``logpdf_and_score`` (:class:`~ocp_learn.protocols.ScoredDensity`),
        for ``"kl"``.
    weights : dict with keys ``L, F, G, R, RT`` (missing keys: ``L=F=G=1``, ``R=RT=0``)
    a3 : float
        Scale of ``dG/drho`` in the terminal HJB condition ``Phi(., T) = a3 dG/drho``.

    Attributes
    ----------
    reads_theta_T : bool
        True when the terminal HJB penalty is on (``weights["RT"] > 0``): it reads
        ``Phi(., T)``, i.e. the dynamics parameters at the final time.
    """

    def __init__(self, field, kind="nll", rho1=None, weights=None, a3=1.0):
        self.field = field
        self.kind = check_choice("kind", kind, {"nll", "kl"})
        if kind == "kl" and (rho1 is None or field.c_lr0 is None):
            raise ValueError("kind='kl' needs rho1 (a density) and a field built with log_rho0")
        if rho1 is not None:
            check_protocol(rho1, ScoredDensity, "rho1")
        self.rho1 = rho1
        w = {"L": 1.0, "F": 1.0, "G": 1.0, "R": 0.0, "RT": 0.0}
        for k, v in (weights or {}).items():
            check_choice("weights key", k, set(w))
            w[k] = check_positive_float(f"weights[{k!r}]", v, allow_zero=True)
        if w["R"] > 0 and not field.hjb:
            raise ValueError("weights['R'] > 0 needs a field built with hjb=True")
        if w["RT"] > 0 and self.kind != "kl":
            raise ValueError("the terminal HJB penalty (weights['RT']) is defined for kind='kl'")
        self.w = w
        self.a3 = float(a3)
        self.reads_theta_T = bool(w["RT"] > 0)

    def _G(self, y):
        f, d = self.field, self.field.dim
        z, ell = y[:, :d], y[:, f.c_ell]
        if self.kind == "nll":
            xp = namespace(y)
            return 0.5 * xp.sum(z * z, axis=1) + 0.5 * d * float(np.log(2 * np.pi)) - ell, z, None
        lr1, score1 = self.rho1.logpdf_and_score(z)
        return y[:, f.c_lr0] - ell - lr1, -score1, lr1

    def value_and_grad(self, y: np.ndarray, p: np.ndarray, idx: Any = None,
                       theta_T: np.ndarray | None = None, t_T: float | None = 1.0) -> TerminalResult:
        """The terminal objective, ``dJ/dy`` and, with ``reads_theta_T``, ``dJ/dtheta(T)``;
        ``terms`` holds ``G``, ``L`` and, where present, ``F``, ``hjb``, ``hjb_terminal``."""
        f, w, d = self.field, self.w, self.field.dim
        xp = namespace(y)
        n = y.shape[0]
        ybar = xp.zeros_like(y)
        G, Gz, lr1 = self._G(y)
        terms = {"G": float(xp.mean(G)), "L": float(xp.mean(y[:, f.c_L]))}
        J = w["G"] * terms["G"] + w["L"] * terms["L"]
        ybar[:, :d] += (w["G"] / n) * Gz
        ybar[:, f.c_ell] -= w["G"] / n
        if self.kind == "kl":
            ybar[:, f.c_lr0] += w["G"] / n
        ybar[:, f.c_L] += w["L"] / n
        if f.c_F:
            cF = slice(f.c_F[0], f.c_F[-1] + 1)  # the interaction columns are consecutive
            terms["F"] = float(xp.mean(xp.sum(y[:, cF], axis=1)))
            J += w["F"] * terms["F"]
            ybar[:, cF] += w["F"] / n
        if f.hjb:
            terms["hjb"] = float(xp.mean(y[:, f.c_R]))
            J += w["R"] * terms["hjb"]
            ybar[:, f.c_R] += w["R"] / n
        g_T = None
        if self.reads_theta_T:
            z = y[:, :d]
            dGdrho = 1.0 + y[:, f.c_lr0] - y[:, f.c_ell] - lr1
            phi, pullback = f.potential.phi_vjp(z, t_T, theta_T)
            res = phi - self.a3 * dGdrho
            terms["hjb_terminal"] = float(xp.mean(xp.abs(res)))
            J += w["RT"] * terms["hjb_terminal"]
            s = (w["RT"] / n) * xp.sign(res)
            xb, _, g_T = pullback(s)
            # d(dG/drho)/dz = -score_1(z); d/dell = -1; d/dlogrho0 = +1
            ybar[:, :d] += xb - (self.a3 * s)[:, None] * Gz
            ybar[:, f.c_ell] += self.a3 * s
            ybar[:, f.c_lr0] -= self.a3 * s
        return TerminalResult(J, ybar, np.zeros(0), g_T, terms)
