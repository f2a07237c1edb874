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

from typing import Any

from ..arrays import Workspace, copy, namespace, scalar
from ..protocols import PartitionedField, check_protocol

__all__ = ["Leapfrog"]


def _split(field: Any) -> Any:
    """The column split of ``field``, after checking it is a partitioned field."""
    try:
        check_protocol(field, PartitionedField, "field")
    except TypeError as err:
        raise TypeError(f"the leapfrog integrator needs a partitioned field (dy/dt = F(z), "
                        f"dz/dt = G(y)) such as HamiltonianNet: {err}. Running costs "
                        "(AugmentedDynamics) are not supported by leapfrog: use an RK integrator "
                        "or regularizers instead") from None
    return field.partition


class Leapfrog:
    """Stoermer--Verlet (kick--drift--kick) integrator (MATH A4).

    Follows the :class:`~ocp_learn.integrators.base.InvertibleIntegrator` contract for a
    :class:`~ocp_learn.protocols.PartitionedField` (checked at every step: a field of
    another kind raises a ``TypeError`` naming what it lacks).

    ``stages`` is 3: three half-field evaluations per step (``G``, ``F``,
    ``G``), that is 1.5 evaluations of the full field.  The tape of one step
    holds ``(y_k, z_h, y_{k+1})``: ``3 n d = 1.5 n D`` floats for ``D = 2 d``.
    """

    name = "leapfrog"
    order = 2
    stages = 3
    tableau = None
    reversible = True
    uses_residuals = False

    def __repr__(self) -> str:
        return "Leapfrog()"

    def tape_floats(self, n: int, D: int) -> int:
        """Floats of one kept step: ``(y_k, z_h, y_{k+1})``.

        Parameters
        ----------
        n : int
            Number of samples.
        D : int
            Width of the state.

        Returns
        -------
        int
            The number of floats.
        """
        return 3 * n * (D // 2)

    def step(self, field: Any, Y: Any, t: float, h: float, ctrl: Any, keep: bool = True, *,
             work: Workspace | None = None, residuals: bool = False) -> tuple[Any, Any]:
        """``(Y_{k+1}, tape)``: kick, drift, kick.

        Parameters
        ----------
        field : Field
            The vector field.
        Y : array
            The state ``[y, z]`` at the start of the step.
        t : float
            Time at the start of the step.
        h : float
            Step size.
        ctrl : StepControl
            The parameters over the step (:mod:`ocp_learn.controls`); the adjoint
            accumulates their gradient in it.
        keep : bool, optional
            Whether to return the tape the step's adjoint reads.
        work : Workspace, optional
            Scratch arrays reused from step to step.
        residuals : bool, optional
            Not used (a leapfrog tape holds states only).

        Returns
        -------
        y1 : array
            The state at the end of the step.
        tape : object or None
            What the adjoint reads (None unless ``keep``).
        """
        d = _split(field)
        xp = namespace(Y)
        hh, h1 = scalar(0.5 * h, xp), scalar(h, xp)
        y, z = Y[:, :d], Y[:, d:]
        z_h = z + hh * field.rhs_z(y, t, ctrl.theta(0.0))
        y1 = y + h1 * field.rhs_y(z_h, t + 0.5 * h, ctrl.theta(0.5))
        z1 = z_h + hh * field.rhs_z(y1, t + h, ctrl.theta(1.0))
        out = xp.empty_like(Y)
        out[:, :d], out[:, d:] = y1, z1
        return out, ((copy(y), z_h, y1) if keep else None)

    def step_inverse(self, field: Any, Y1: Any, t: float, h: float, ctrl: Any,
                     keep: bool = True) -> tuple[Any, Any]:
        """``(Y_k, tape_k)`` from ``Y_{k+1}``: the three shears undone in reverse order.

        The tape is the one :meth:`step` would have kept (computed from the
        rebuilt states), so no extra evaluation is needed for the adjoint.

        Parameters
        ----------
        field : Field
            The vector field.
        Y1 : array
            The state at the end of the step.
        t : float
            Time at the start of the step.
        h : float
            Step size.
        ctrl : StepControl
            The parameters over the step (:mod:`ocp_learn.controls`); the adjoint
            accumulates their gradient in it.
        keep : bool, optional
            Whether to return the tape the step's adjoint reads.

        Returns
        -------
        y : array
            The state at the start of the step.
        tape : object or None
            The tape of the step (None unless ``keep``).
        """
        d = _split(field)
        xp = namespace(Y1)
        hh, h1 = scalar(0.5 * h, xp), scalar(h, xp)
        y1, z1 = Y1[:, :d], Y1[:, d:]
        z_h = z1 - hh * field.rhs_z(y1, t + h, ctrl.theta(1.0))
        y = y1 - h1 * field.rhs_y(z_h, t + 0.5 * h, ctrl.theta(0.5))
        z = z_h - hh * field.rhs_z(y, t, ctrl.theta(0.0))
        out = xp.empty_like(Y1)
        out[:, :d], out[:, d:] = y, z
        return out, ((y, z_h, copy(y1)) if keep else None)

    def step_adjoint(self, field: Any, tape: Any, t: float, h: float, ctrl: Any, lam: Any, *,
                     work: Workspace | None = None) -> Any:
        """``dJ/dY_k`` from ``lam = dJ/dY_{k+1}`` (the adjoint of the module docstring).

        Parameters
        ----------
        field : Field
            The vector field.
        tape : tuple
            The step's tape (from :meth:`step` with ``keep``).
        t : float
            Time at the start of the step.
        h : float
            Step size.
        ctrl : StepControl
            The parameters over the step (:mod:`ocp_learn.controls`); the adjoint
            accumulates their gradient in it.
        lam : array
            The adjoint at the end of the step.
        work : Workspace, optional
            Scratch arrays reused from step to step.

        Returns
        -------
        array
            The adjoint at the start of the step.
        """
        d = _split(field)
        xp = namespace(lam)
        hh, h1 = scalar(0.5 * h, xp), scalar(h, xp)
        y, z_h, y1 = tape
        ly, lz = lam[:, :d], lam[:, d:]
        yb, g = field.vjp_z(y1, t + h, ctrl.theta(1.0), hh * lz)
        ctrl.add_grad(1.0, g)
        ly = ly + yb
        zb, g = field.vjp_y(z_h, t + 0.5 * h, ctrl.theta(0.5), h1 * ly)
        ctrl.add_grad(0.5, g)
        lz = lz + zb
        yb, g = field.vjp_z(y, t, ctrl.theta(0.0), hh * lz)
        ctrl.add_grad(0.0, g)
        out = xp.empty_like(lam)
        out[:, :d], out[:, d:] = ly + yb, lz
        return out

    def step_tangent(self, field: Any, Y: Any, dY: Any, t: float, h: float, ctrl: Any, *,
                     work: Workspace | None = None) -> tuple[Any, Any]:
        """``(Y_{k+1}, dY_{k+1})``: the step and its tangent.

        Parameters
        ----------
        field : Field
            The vector field.
        Y : array
            The state at the start of the step.
        dY : array
            Its tangent.
        t : float
            Time at the start of the step.
        h : float
            Step size.
        ctrl : StepControl
            The parameters over the step (:mod:`ocp_learn.controls`); the adjoint
            accumulates their gradient in it.
        work : Workspace, optional
            Scratch arrays reused from step to step.

        Returns
        -------
        y1, dy1 : array
            The state and its tangent at the end of the step.
        """
        d = _split(field)
        xp = namespace(Y, dY)
        hh, h1 = scalar(0.5 * h, xp), scalar(h, xp)
        y, z = Y[:, :d], Y[:, d:]
        dy, dz = dY[:, :d], dY[:, d:]
        th0, thm, th1 = ctrl.theta(0.0), ctrl.theta(0.5), ctrl.theta(1.0)
        z_h = z + hh * field.rhs_z(y, t, th0)
        dz_h = dz + hh * field.jvp_z(y, t, th0, dy, ctrl.dtheta(0.0))
        y1 = y + h1 * field.rhs_y(z_h, t + 0.5 * h, thm)
        dy1 = dy + h1 * field.jvp_y(z_h, t + 0.5 * h, thm, dz_h, ctrl.dtheta(0.5))
        z1 = z_h + hh * field.rhs_z(y1, t + h, th1)
        dz1 = dz_h + hh * field.jvp_z(y1, t + h, th1, dy1, ctrl.dtheta(1.0))
        out, dout = xp.empty_like(Y), xp.empty_like(Y)
        out[:, :d], out[:, d:] = y1, z1
        dout[:, :d], dout[:, d:] = dy1, dz1
        return out, dout
