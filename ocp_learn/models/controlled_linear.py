"""Controlled linear dynamics ``dz/dt = A z + B u(t)`` and the control energy ``1/2 u^T R u``.

The linear--quadratic problem (Riccati reference, :mod:`ocp_learn.reference.analytic`)
as an OCP: the local parameters are the control ``theta(t) = u(t)``, shared by
every sample (an open-loop control), with ``A``, ``B`` fixed; the control
energy is a running cost integrated as a state column (MATH B1).
"""
from __future__ import annotations

import numpy as np

from ..arrays import namespace
from ..errors import as_array
from ..params import ParamLayout
from ..arrays import resident
from .base import Model, array_module

__all__ = ["ControlledLinearModel", "ControlEnergy"]


class ControlledLinearModel(Model):
    """``f(z, t; u) = A z + B u`` with ``theta = u`` of size ``m``.

    Parameters
    ----------
    A : array_like, shape (d, d)
    B : array_like, shape (d, m)
    xp : None, "numpy", "cupy" or module
        The array namespace :class:`~ocp_learn.OCP` runs the sweeps in
        (:attr:`array_namespace`; see :func:`~ocp_learn.models.base.array_module`).  The
        model computes in the namespace of the states it is handed (``A`` and ``B`` are
        copied there once).

    Notes
    -----
    Rows are samples: ``f = z A^T + u^T B^T``.  Tangent
    ``df = dz A^T + du^T B^T``; adjoint ``zbar = fbar A``,
    ``ubar = B^T sum_i fbar_i``.
    """

    def __init__(self, A, B, xp=None):
        self._xp = array_module(xp)
        A = as_array("A", A, ndim=2)
        B = as_array("B", B, ndim=2)
        if A.shape[0] != A.shape[1]:
            raise ValueError(f"A must be square, got shape {A.shape}")
        if B.shape[0] != A.shape[0]:
            raise ValueError(f"B must have {A.shape[0]} rows (the state dimension), got shape {B.shape}")
        self.A, self.B = A, B
        self.dim = self.state_dim = A.shape[0]
        self.n_controls = B.shape[1]
        self.layout = ParamLayout([("u", (self.n_controls,))])

    def init_params(self, rng=None):
        rng = self._rng(rng)
        return 0.1 * rng.standard_normal(self.n_controls)

    def rhs(self, z, t, theta):
        A, B = resident(self, "A", z), resident(self, "B", z)
        return z @ A.T + theta @ B.T

    def jvp(self, z, t, theta, dz, dtheta):
        A, B = resident(self, "A", z), resident(self, "B", z)
        out = namespace(z).zeros_like(z)
        if dz is not None:
            out = out + dz @ A.T
        if dtheta is not None:
            out = out + dtheta @ B.T
        return out

    def vjp(self, z, t, theta, fbar):
        A, B = resident(self, "A", z), resident(self, "B", z)
        return fbar @ A, B.T @ namespace(z).sum(fbar, axis=0)


class ControlEnergy:
    """Running cost ``r = 1/2 u^T R u`` (the same for every sample); ``R`` symmetric.

    Contract of :mod:`ocp_learn.costs.running`: ``value``, ``jvp``, ``vjp``; computed in
    the namespace of the states (``R`` is copied there once).
    """

    def __init__(self, R):
        R = as_array("R", R, ndim=2)
        if R.shape[0] != R.shape[1] or not np.allclose(R, R.T):
            raise ValueError(f"R must be a symmetric square matrix, got shape {R.shape}")
        self.R = R

    def value(self, z, t, theta):
        xp = namespace(z)
        if xp is np:
            return np.full(z.shape[0], 0.5 * theta @ self.R @ theta)
        return _rows(xp, z, 0.5 * theta @ resident(self, "R", z) @ theta)

    def jvp(self, z, t, theta, dz, dtheta):
        xp = namespace(z)
        if xp is np:
            if dtheta is None:
                return np.zeros(z.shape[0])
            return np.full(z.shape[0], theta @ self.R @ dtheta)
        if dtheta is None:
            return xp.zeros(z.shape[0], dtype=z.dtype)
        return _rows(xp, z, theta @ resident(self, "R", z) @ dtheta)

    def vjp(self, z, t, theta, cbar):
        xp = namespace(z)
        if xp is np:
            return np.zeros_like(z), float(np.sum(cbar)) * (self.R @ theta)
        return xp.zeros_like(z), xp.sum(cbar) * (resident(self, "R", z) @ theta)


def _rows(xp, z, c):
    """The 0-d array ``c`` repeated for each row of ``z`` (on ``c``'s device, no host copy)."""
    return xp.zeros(z.shape[0], dtype=c.dtype) + c
