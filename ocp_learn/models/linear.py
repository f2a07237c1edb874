"""Linear dynamics ``f(z; A) = A z`` -- the test problem with exact solutions."""
from __future__ import annotations

import numpy as np

from ..arrays import namespace
from ..errors import check_positive_int
from ..params import ParamLayout
from .base import Model, array_module

__all__ = ["LinearModel"]


class LinearModel(Model):
    """``f(z; theta) = A z`` with ``theta = vec(A)`` (row major).

    Its flow is ``expm(t A)``, which makes it the reference for integrator
    orders and for the Riccati checks of linear-quadratic problems.

    Parameters
    ----------
    dim : int
        ``d``, the state dimension.
    xp : None, "numpy", "cupy" or module
        The array namespace :class:`~ocp_learn.OCP` runs the sweeps in
        (:attr:`array_namespace`; see :func:`~ocp_learn.models.base.array_module`).  The
        model computes in the namespace of the states it is handed.
    """

    def __init__(self, dim, xp=None):
        self._xp = array_module(xp)
        self.dim = self.state_dim = check_positive_int("dim", dim)
        self.layout = ParamLayout([("A", (dim, dim))])

    def init_params(self, rng=None):
        rng = self._rng(rng)
        return 0.1 * rng.standard_normal(self.n_params)

    def rhs(self, z, t, theta):
        return z @ self.unpack(theta)["A"].T

    def jvp(self, z, t, theta, dz, dtheta):
        out = 0.0
        if dz is not None:
            out = dz @ self.unpack(theta)["A"].T
        if dtheta is not None:
            out = out + z @ self.unpack(dtheta)["A"].T
        return out

    def vjp(self, z, t, theta, fbar):
        A = self.unpack(theta)["A"]
        if namespace(z) is np:
            return fbar @ A, (fbar.T @ z).ravel()
        return fbar @ A, namespace(z).reshape(fbar.T @ z, (-1,))
