"""Hamiltonian ("stable") network of Haber & Ruthotto (MATH A4).

State ``Y = [y, z]`` (``y`` and ``z`` each of ``d`` columns, samples in rows)::

    dy/dt =  sigma(K z + b)        (the y-velocity: a function of z only)
    dz/dt = -sigma(K^T y + b)      (the z-velocity: a function of y only)

with ``sigma = tanh``, ``K`` a ``d x d`` matrix and ``b`` a ``d``-vector (row
convention: ``K z`` of a sample row ``z`` is ``z @ K.T``).  The Jacobian of the
field has the block form ``[[0, A], [-B, 0]]`` with ``A = diag(sigma') K`` and
``B = diag(sigma') K^T``; its eigenvalues stay near the imaginary axis, which is
the "stable forward propagation" property.

The model follows the ordinary model contract (:mod:`ocp_learn.models.base`),
so every Runge--Kutta integrator works with it, and it also exposes the two
*half-fields* the leapfrog / Stoermer--Verlet integrator needs (the
*partitioned-field contract*):

* ``partition`` -- ``d``, the number of leading columns that form ``y``;
* ``rhs_y(z, t, theta)``, ``jvp_y(z, t, theta, dz, dtheta)``,
  ``vjp_y(z, t, theta, vbar) -> (zbar, thetabar)`` for ``dy/dt``;
* ``rhs_z(y, t, theta)``, ``jvp_z(y, t, theta, dy, dtheta)``,
  ``vjp_z(y, t, theta, vbar) -> (ybar, thetabar)`` for ``dz/dt``.
"""
from __future__ import annotations

import numpy as np

from ..arrays import concat, namespace
from ..errors import check_positive_int, check_positive_float
from ..params import ParamLayout
from .base import Model, array_module

__all__ = ["HamiltonianNet"]


class HamiltonianNet(Model):
    r"""The Hamiltonian network of MATH (A4) with hand-derived jvp and vjp.

    Parameters
    ----------
    dim : int
        ``d``: the number of columns of ``y`` (and of ``z``); the state has
        ``2 d`` columns.
    init_scale : float
        Standard deviation of the entries of ``K`` at initialization is
        ``init_scale / sqrt(d)``.
    xp : None, "numpy", "cupy" or module
        The array namespace :class:`~ocp_learn.OCP` runs the sweeps in
        (:attr:`array_namespace`; see :func:`~ocp_learn.models.base.array_module`).  The
        model computes in the namespace of the states it is handed.

    Notes
    -----
    Derivatives (MATH A4), with ``a_y = z K^T + b``, ``s_y = tanh(a_y)``,
    ``a_z = y K + b``, ``s_z = tanh(a_z)``:

    * tangent: ``d(dy/dt) = (1 - s_y^2) (dz K^T + z dK^T + db)``,
      ``d(dz/dt) = -(1 - s_z^2) (dy K + y dK + db)``;
    * adjoint of ``vbar_y`` (cotangent of ``dy/dt``):
      ``abar_y = (1 - s_y^2) vbar_y``, ``zbar = abar_y K``,
      ``Kbar += abar_y^T z``, ``bbar += sum_i abar_y``;
    * adjoint of ``vbar_z``: ``abar_z = -(1 - s_z^2) vbar_z``,
      ``ybar = abar_z K^T``, ``Kbar += y^T abar_z``, ``bbar += sum_i abar_z``.

    ``initial_state(x)`` accepts ``x`` with ``d`` columns (then ``z(0) = 0``,
    as in Haber & Ruthotto) or with ``2 d`` columns (the full state).
    """

    def __init__(self, dim, init_scale=1.0, xp=None):
        self._xp = array_module(xp)
        self.dim = check_positive_int("dim", dim)
        self.partition = self.dim
        self.state_dim = 2 * self.dim
        self.init_scale = check_positive_float("init_scale", init_scale)
        d = self.dim
        self.layout = ParamLayout([("K", (d, d)), ("b", (d,))])

    def init_params(self, rng=None):
        rng = self._rng(rng)
        d = self.dim
        return self.layout.pack({"K": self.init_scale * rng.standard_normal((d, d)) / np.sqrt(d),
                                 "b": 0.1 * rng.standard_normal(d)})

    def initial_state(self, x):
        if x.shape[1] == self.dim:
            if namespace(x) is np:
                return np.hstack([x, np.zeros_like(x)])
            return concat([x, namespace(x).zeros_like(x)], axis=1)
        if x.shape[1] == self.state_dim:
            return x
        raise ValueError(f"x must have {self.dim} columns (y; z(0) = 0) or {self.state_dim} "
                         f"columns (y, z) for this model, got shape {x.shape}")

    # --- the two half-fields (partitioned-field contract) ----------------
    def rhs_y(self, z, t, theta):
        """``dy/dt = sigma(K z + b)``.

        Parameters
        ----------
        z : ndarray
            The ``z`` half of the state.
        t : float
            The time.
        theta : ndarray
            The parameters at time ``t``.

        Returns
        -------
        ndarray
            ``dy/dt``.
        """
        P = self.unpack(theta)
        return namespace(z).tanh(z @ P["K"].T + P["b"])

    def rhs_z(self, y, t, theta):
        """``dz/dt = -sigma(K^T y + b)``.

        Parameters
        ----------
        y : ndarray
            The ``y`` half of the state.
        t : float
            The time.
        theta : ndarray
            The parameters at time ``t``.

        Returns
        -------
        ndarray
            ``dz/dt``.
        """
        P = self.unpack(theta)
        return -namespace(y).tanh(y @ P["K"] + P["b"])

    def jvp_y(self, z, t, theta, dz, dtheta):
        P = self.unpack(theta)
        s = namespace(z).tanh(z @ P["K"].T + P["b"])
        da = 0.0
        if dz is not None:
            da = dz @ P["K"].T
        if dtheta is not None:
            D = self.unpack(dtheta)
            da = da + z @ D["K"].T + D["b"]
        return (1.0 - s * s) * da

    def jvp_z(self, y, t, theta, dy, dtheta):
        P = self.unpack(theta)
        s = namespace(y).tanh(y @ P["K"] + P["b"])
        da = 0.0
        if dy is not None:
            da = dy @ P["K"]
        if dtheta is not None:
            D = self.unpack(dtheta)
            da = da + y @ D["K"] + D["b"]
        return -(1.0 - s * s) * da

    def vjp_y(self, z, t, theta, vbar):
        """``((d rhs_y/dz)^T vbar, (d rhs_y/dtheta)^T vbar)``.

        Parameters
        ----------
        z : ndarray
            The ``z`` half of the state.
        t : float
            The time.
        theta : ndarray
            The parameters at time ``t``.
        vbar : ndarray
            The cotangent of the half-field.

        Returns
        -------
        state_bar : ndarray
            Pullback to the half of the state.
        theta_bar : ndarray
            Pullback to the parameters, summed over samples.
        """
        P = self.unpack(theta)
        xp = namespace(z)
        s = xp.tanh(z @ P["K"].T + P["b"])
        abar = (1.0 - s * s) * vbar
        return abar @ P["K"], self._grad(xp, abar.T @ z, abar)

    def vjp_z(self, y, t, theta, vbar):
        """``((d rhs_z/dy)^T vbar, (d rhs_z/dtheta)^T vbar)``.

        Parameters
        ----------
        y : ndarray
            The ``y`` half of the state.
        t : float
            The time.
        theta : ndarray
            The parameters at time ``t``.
        vbar : ndarray
            The cotangent of the half-field.

        Returns
        -------
        state_bar : ndarray
            Pullback to the half of the state.
        theta_bar : ndarray
            Pullback to the parameters, summed over samples.
        """
        P = self.unpack(theta)
        xp = namespace(y)
        s = xp.tanh(y @ P["K"] + P["b"])
        abar = -(1.0 - s * s) * vbar
        return abar @ P["K"].T, self._grad(xp, y.T @ abar, abar)

    def _grad(self, xp, Kbar, abar):
        """The parameter cotangent ``(Kbar, bbar = sum_i abar_i)`` as one vector (float64 on
        NumPy; the states' namespace and dtype otherwise)."""
        if xp is np:
            g = np.empty(self.n_params)
            G = self.unpack(g)
            G["K"][...] = Kbar
            G["b"][...] = abar.sum(axis=0)
            return g
        return concat([xp.reshape(Kbar, (-1,)), xp.sum(abar, axis=0)])

    # --- the ordinary model contract ---------------------------------------
    def rhs(self, Y, t, theta):
        d = self.dim
        out = namespace(Y).empty_like(Y)
        out[:, :d] = self.rhs_y(Y[:, d:], t, theta)
        out[:, d:] = self.rhs_z(Y[:, :d], t, theta)
        return out

    def jvp(self, Y, t, theta, dY, dtheta):
        d = self.dim
        out = namespace(Y).empty_like(Y)
        out[:, :d] = self.jvp_y(Y[:, d:], t, theta, None if dY is None else dY[:, d:], dtheta)
        out[:, d:] = self.jvp_z(Y[:, :d], t, theta, None if dY is None else dY[:, :d], dtheta)
        return out

    def vjp(self, Y, t, theta, Ybar):
        d = self.dim
        zbar, g1 = self.vjp_y(Y[:, d:], t, theta, Ybar[:, :d])
        ybar, g2 = self.vjp_z(Y[:, :d], t, theta, Ybar[:, d:])
        out = namespace(Y).empty_like(Y)
        out[:, :d] = ybar
        out[:, d:] = zbar
        return out, g1 + g2
