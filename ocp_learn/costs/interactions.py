"""Interaction costs ``F(rho)`` of mean field games in Lagrangian form (MATH E1, E2, F).

Along agent trajectories ``int F(rho) dx`` becomes an expectation over agents:
``int Q rho dx = E[Q(z)]`` and ``int rho log rho dx = E[log rho(z)]`` with
``log rho(z(t), t) = log rho_0(x) - ell(t)`` (E2).  Each term gives, per agent,
its integrand ``value(z, logrho)``, the variational derivative
``drho(z, logrho) = dF/drho`` that enters the HJB equation (E4), and the
partial derivatives of both in ``z`` and ``logrho`` (hand-derived).  The ``z`` partial
covers the leading columns the term depends on (shape ``(n, k)``, ``k <= d``; the
obstacle's ``k`` is 1 or 2, the entropy's 0): at ``d = 100`` a dense ``(n, d)`` array of
zeros per term and stage would cost more than the term itself.

The contract is :class:`ocp_learn.protocols.Interaction`; each term declares
``uses_logrho`` (whether it reads ``log rho``).
"""
from __future__ import annotations

import numpy as np

from ..arrays import namespace
from ..errors import as_array, check_positive_float

__all__ = ["ObstacleCost", "EntropyCost"]


class ObstacleCost:
    """``F_p = int Q rho``, ``Q(x) = scale * N((x1, x2); center, diag(var))`` (MATH F).

    Defaults: ``scale = 50``, ``center = 0``, ``var = (1, 0.5)``, so ``Q(0) = 11.254``.
    ``center`` and ``var`` of length one give an obstacle on ``x1`` only (1-D problems).
    """

    uses_logrho = False

    def __init__(self, scale=50.0, center=(0.0, 0.0), var=(1.0, 0.5)):
        self.scale = check_positive_float("scale", scale, allow_zero=True)
        self.center = as_array("center", center, ndim=1)
        self.k = self.center.size
        if self.k not in (1, 2):
            raise ValueError(f"center must have 1 or 2 entries, got {self.k}")
        self.var = as_array("var", var, shape=(self.k,))
        if np.any(self.var <= 0):
            raise ValueError(f"var must be positive, got {self.var}")
        self._c = float(self.scale / ((2 * np.pi) ** (self.k / 2) * np.sqrt(np.prod(self.var))))

    def _u(self, z):
        """``(xp, u = z_lead - center, var)`` in the namespace of ``z``."""
        xp = namespace(z)
        if xp is np:
            return np, z[:, :self.k] - self.center, self.var
        return xp, z[:, :self.k] - xp.asarray(self.center), xp.asarray(self.var)

    def Q(self, z):
        xp, u, var = self._u(z)
        return self._c * xp.exp(-0.5 * xp.sum(u * u / var, axis=1))

    def _grad_lead(self, z):
        """``grad Q`` in the ``k`` coordinates ``Q`` depends on, ``(n, k)``."""
        xp, u, var = self._u(z)
        q = self._c * xp.exp(-0.5 * xp.sum(u * u / var, axis=1))
        return -(q[:, None] * u / var)

    def grad_Q(self, z):
        """``grad Q``, ``(n, d)``."""
        g = namespace(z).zeros_like(z)
        g[:, :self.k] = self._grad_lead(z)
        return g

    def value(self, z, logrho):
        return self.Q(z)

    def value_partials(self, z, logrho):
        return self._grad_lead(z), namespace(z).zeros(z.shape[0], dtype=namespace(z).float64)

    drho = value
    drho_partials = value_partials


class EntropyCost:
    """``F_e = lam int rho log rho``: integrand ``lam log rho``, ``dF/drho = lam (log rho + 1)``."""

    uses_logrho = True

    def __init__(self, lam=0.01):
        self.lam = check_positive_float("lam", lam, allow_zero=True)

    def value(self, z, logrho):
        return self.lam * logrho

    def value_partials(self, z, logrho):
        xp = namespace(z)
        return (xp.zeros((z.shape[0], 0), dtype=xp.float64),
                xp.full(z.shape[0], self.lam, dtype=xp.float64))

    def drho(self, z, logrho):
        return self.lam * (logrho + 1.0)

    drho_partials = value_partials
