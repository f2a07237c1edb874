"""Running costs integrated as extra state components (MATH B1, last paragraph).

A running cost ``r(z, t; theta)`` (one value per sample) is accumulated by the
same Runge--Kutta scheme as the state: the field :class:`AugmentedDynamics`
appends one column per running cost, ``dc_j/dt = r_j(z, t; theta)``, ``c_j(0) = 0``,
so the discrete objective is exactly what the scheme computes, and its exact
gradient comes out of the same adjoint sweep.

Contract of a running cost: ``value(z, t, theta) -> (n,)``,
``jvp(z, t, theta, dz, dtheta) -> (n,)``,
``vjp(z, t, theta, cbar) -> (zbar, thetabar)`` with ``cbar`` of shape ``(n,)``.

The costs here and :class:`AugmentedDynamics` compute in the array namespace of the states
they are handed (NumPy on the host, CuPy on a GPU).
"""
from __future__ import annotations

from types import ModuleType

import numpy as np

from ..arrays import astype, concat, namespace
from ..errors import check_positive_float, as_array
from ..arrays import resident
from ..models.base import Model

__all__ = ["AugmentedDynamics", "KineticEnergy", "QuadraticState"]


class KineticEnergy:
    """``r = alpha/2 |f(z, t; theta)|^2`` -- the transport cost of the flow.

    Parameters
    ----------
    model : Model
        The field ``f`` whose squared norm is the cost.
    alpha : float, optional
        The weight, ``>= 0``.
    """

    def __init__(self, model, alpha=1.0):
        self.model = model
        self.alpha = check_positive_float("alpha", alpha, allow_zero=True)

    def value(self, z, t, theta):
        f = self.model.rhs(z, t, theta)
        return 0.5 * self.alpha * namespace(f).sum(f * f, axis=1)

    def jvp(self, z, t, theta, dz, dtheta):
        f = self.model.rhs(z, t, theta)
        return self.alpha * namespace(f).sum(f * self.model.jvp(z, t, theta, dz, dtheta), axis=1)

    def vjp(self, z, t, theta, cbar):
        f = self.model.rhs(z, t, theta)
        return self.model.vjp(z, t, theta, (self.alpha * cbar)[:, None] * f)


class QuadraticState:
    """``r = 1/2 z^T Q z`` (linear--quadratic problems).

    Parameters
    ----------
    Q : array_like, shape (d, d)
        Symmetric matrix; copied once to the array namespace of the states.
    """

    def __init__(self, Q):
        Q = as_array("Q", Q, ndim=2)
        if Q.shape[0] != Q.shape[1] or not np.allclose(Q, Q.T):
            raise ValueError(f"Q must be a symmetric square matrix, got shape {Q.shape}")
        self.Q = Q

    def value(self, z, t, theta):
        return 0.5 * namespace(z).sum((z @ resident(self, "Q", z)) * z, axis=1)

    def jvp(self, z, t, theta, dz, dtheta):
        xp = namespace(z)
        if dz is None:
            return np.zeros(z.shape[0]) if xp is np else xp.zeros(z.shape[0], dtype=z.dtype)
        return xp.sum((z @ resident(self, "Q", z)) * dz, axis=1)

    def vjp(self, z, t, theta, cbar):
        return cbar[:, None] * (z @ resident(self, "Q", z)), 0.0


class AugmentedDynamics(Model):
    """The field ``F(y) = [f(z); r_1(z); ...; r_k(z)]`` on ``y = [z, c_1..c_k]``.

    ``y`` has ``d + k`` columns; the cost columns do not feed back into ``F``,
    so their adjoint is constant in time (``1/n`` from the mean).  It computes in the
    namespace of its states, the model's :attr:`array_namespace`.

    Parameters
    ----------
    model : Model
        The field ``f`` of the state ``z``.
    running : sequence of RunningCost
        The running costs ``r_1 .. r_k``, one cost column each.
    """

    def __init__(self, model, running):
        self.model = model
        self.running = list(running)
        self.dim = model.state_dim
        self.state_dim = self.dim + len(self.running)
        self.layout = model.layout
        self.cost_columns = list(range(self.dim, self.state_dim))

    @property
    def array_namespace(self) -> ModuleType:
        """The model's array namespace (NumPy for fields that do not declare one)."""
        return getattr(self.model, "array_namespace", np)

    def init_params(self, rng=None):
        return self.model.init_params(rng)

    def initial_state(self, x):
        x = self.model.initial_state(x)
        xp = namespace(x)
        if xp is np:
            return np.hstack([x, np.zeros((x.shape[0], len(self.running)))])
        return concat([x, xp.zeros((x.shape[0], len(self.running)), dtype=x.dtype)], axis=1)

    def rhs(self, y, t, theta):
        z = y[:, :self.dim]
        out = namespace(y).empty_like(y)
        out[:, :self.dim] = _cast(self.model.rhs(z, t, theta), out)
        for j, rc in enumerate(self.running):
            out[:, self.dim + j] = _cast(rc.value(z, t, theta), out)
        return out

    def jvp(self, y, t, theta, dy, dtheta):
        z = y[:, :self.dim]
        dz = None if dy is None else dy[:, :self.dim]
        out = namespace(y).empty_like(y)
        out[:, :self.dim] = _cast(self.model.jvp(z, t, theta, dz, dtheta), out)
        for j, rc in enumerate(self.running):
            out[:, self.dim + j] = _cast(rc.jvp(z, t, theta, dz, dtheta), out)
        return out

    def vjp(self, y, t, theta, ybar):
        z = y[:, :self.dim]
        zbar, g = self.model.vjp(z, t, theta, ybar[:, :self.dim])
        for j, rc in enumerate(self.running):
            zb, gb = rc.vjp(z, t, theta, ybar[:, self.dim + j])
            zbar = zbar + zb
            g = g + gb
        out = namespace(y).zeros_like(y)
        out[:, :self.dim] = _cast(zbar, out)
        return out, g


def _cast(v, out):
    """``v`` in the dtype of ``out`` before it is written there: NumPy casts on assignment,
    the array API standard asks for equal dtypes (``v`` may also be a Python float)."""
    if namespace(out) is np or not hasattr(v, "dtype"):
        return v
    return astype(v, out.dtype)
