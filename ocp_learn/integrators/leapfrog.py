"""Leapfrog / Stoermer--Verlet for partitioned fields, with its exact inverse (MATH A4, B4).

For a partitioned field ``dy/dt = F(z, t)``, ``dz/dt = G(y, t)`` (the
Hamiltonian network of MATH A4 provides ``F = rhs_y`` and ``G = rhs_z``), one
step ``(y_k, z_k) -> (y_{k+1}, z_{k+1})`` of size ``h`` is the symmetric
kick--drift--kick scheme::

    z_h     = z_k + h/2 G(y_k,     t_k)            (theta at stage fraction 0)
    y_{k+1} = y_k + h   F(z_h,     t_k + h/2)      (fraction 1/2)
    z_{k+1} = z_h + h/2 G(y_{k+1}, t_k + h)        (fraction 1)

It is second order, symplectic for Hamiltonian fields and *exactly invertible*:
each sub-step is a shear that :meth:`Leapfrog.step_inverse` undoes by
subtracting the same increment, so states can be rebuilt backwards (the
``reversible`` gradient strategy, MATH B4).  In floating point the rebuilt
states differ from the forward ones by rounding (each inverse sub-step
re-evaluates the increment on a rounded argument); the tests measure it.

The adjoint (MATH B2 written for this scheme), given ``lam = (ly, lz)`` of
``(y_{k+1}, z_{k+1})``::

    lz_h = lz;  ly' = ly + h/2 (dG/dy(y_{k+1}))^T lz
    lz_h += h (dF/dz(z_h))^T ly'
    ly_k = ly' + h/2 (dG/dy(y_k))^T lz_h;  lz_k = lz_h

with the matching parameter terms added at fractions ``1, 1/2, 0``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["Leapfrog"]

_HALF_FIELD_API = ("partition", "rhs_y", "rhs_z", "jvp_y", "jvp_z", "vjp_y", "vjp_z")


def _check_field(field):
    missing = [a for a in _HALF_FIELD_API if not hasattr(field, a)]
    if missing:
        raise TypeError(
            "the leapfrog integrator needs a partitioned field (dy/dt = F(z), dz/dt = G(y)) "
            f"such as HamiltonianNet; {type(field).__name__} lacks {missing}. Running costs "
            "(AugmentedDynamics) are not supported by leapfrog: use an RK integrator or "
            "regularizers instead")
    return field.partition


class Leapfrog:
    """Stoermer--Verlet (kick--drift--kick) integrator (MATH A4).

    Follows the integrator contract of :class:`ocp_learn.integrators.ExplicitRK`
    (``step``, ``step_adjoint``, ``step_tangent``, ``tape_floats``, ``stages``)
    and adds ``step_inverse``.

    ``stages`` is 3: three half-field evaluations per step (``G``, ``F``,
    ``G``), that is 1.5 evaluations of the full field.  The tape of one step
    holds ``(y_k, z_h, y_{k+1})``: ``3 n d = 1.5 n D`` floats for ``D = 2 d``.
    """

    name = "leapfrog"
    order = 2
    stages = 3

    def __repr__(self):
        return "Leapfrog()"

    def tape_floats(self, n, D):
        return 3 * n * (D // 2)

    def step(self, field, Y, t, h, ctrl, keep=True):
        d = _check_field(field)
        y, z = Y[:, :d], Y[:, d:]
        z_h = z + (0.5 * h) * field.rhs_z(y, t, ctrl.theta(0.0))
        y1 = y + h * field.rhs_y(z_h, t + 0.5 * h, ctrl.theta(0.5))
        z1 = z_h + (0.5 * h) * field.rhs_z(y1, t + h, ctrl.theta(1.0))
        out = np.empty_like(Y)
        out[:, :d], out[:, d:] = y1, z1
        return out, ((y.copy(), z_h, y1) if keep else None)

    def step_inverse(self, field, Y1, t, h, ctrl, keep=True):
        """``(Y_k, tape_k)`` from ``Y_{k+1}``: the three shears undone in reverse order.

        The tape is the one :meth:`step` would have kept (computed from the
        rebuilt states), so no extra evaluation is needed for the adjoint.
        """
        d = _check_field(field)
        y1, z1 = Y1[:, :d], Y1[:, d:]
        z_h = z1 - (0.5 * h) * field.rhs_z(y1, t + h, ctrl.theta(1.0))
        y = y1 - h * field.rhs_y(z_h, t + 0.5 * h, ctrl.theta(0.5))
        z = z_h - (0.5 * h) * field.rhs_z(y, t, ctrl.theta(0.0))
        out = np.empty_like(Y1)
        out[:, :d], out[:, d:] = y, z
        return out, ((y, z_h, y1.copy()) if keep else None)

    def step_adjoint(self, field, tape, t, h, ctrl, lam):
        d = _check_field(field)
        y, z_h, y1 = tape
        ly, lz = lam[:, :d], lam[:, d:]
        yb, g = field.vjp_z(y1, t + h, ctrl.theta(1.0), (0.5 * h) * lz)
        ctrl.add_grad(1.0, g)
        ly = ly + yb
        zb, g = field.vjp_y(z_h, t + 0.5 * h, ctrl.theta(0.5), h * ly)
        ctrl.add_grad(0.5, g)
        lz = lz + zb
        yb, g = field.vjp_z(y, t, ctrl.theta(0.0), (0.5 * h) * lz)
        ctrl.add_grad(0.0, g)
        out = np.empty_like(lam)
        out[:, :d], out[:, d:] = ly + yb, lz
        return out

    def step_tangent(self, field, Y, dY, t, h, ctrl):
        d = _check_field(field)
        y, z = Y[:, :d], Y[:, d:]
        dy, dz = dY[:, :d], dY[:, d:]
        th0, thm, th1 = ctrl.theta(0.0), ctrl.theta(0.5), ctrl.theta(1.0)
        z_h = z + (0.5 * h) * field.rhs_z(y, t, th0)
        dz_h = dz + (0.5 * h) * field.jvp_z(y, t, th0, dy, ctrl.dtheta(0.0))
        y1 = y + h * field.rhs_y(z_h, t + 0.5 * h, thm)
        dy1 = dy + h * field.jvp_y(z_h, t + 0.5 * h, thm, dz_h, ctrl.dtheta(0.5))
        z1 = z_h + (0.5 * h) * field.rhs_z(y1, t + h, th1)
        dz1 = dz_h + (0.5 * h) * field.jvp_z(y1, t + h, th1, dy1, ctrl.dtheta(1.0))
        out, dout = np.empty_like(Y), np.empty_like(Y)
        out[:, :d], out[:, d:] = y1, z1
        dout[:, :d], dout[:, d:] = dy1, dz1
        return out, dout
