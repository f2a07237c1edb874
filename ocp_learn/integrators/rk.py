"""One generic explicit Runge--Kutta step with its tangent and adjoint (MATH B1, B2).

The step is written once for every tableau.  An integrator step receives a
*step control* ``ctrl`` (see :mod:`ocp_learn.controls`) that gives the local
parameters at stage time ``t + c_i h`` (``ctrl.theta(c)``), their tangent
(``ctrl.dtheta(c)``) and accumulates parameter gradients (``ctrl.add_grad(c, g)``).
"""
from __future__ import annotations

import numpy as np

from ..kernels.axpy_numba import add_scaled, axpy
from .tableau import ButcherTableau

__all__ = ["ExplicitRK", "StageTape"]


class StageTape(tuple):
    """A kept stage: ``(Y, aux)``, the stage state and the field's residuals for its vjp."""

    __slots__ = ()

    def __new__(cls, Y, aux):
        return tuple.__new__(cls, (Y, aux))


def _stage_rhs(field, keep):
    """``rhs(y, t, theta) -> (F, aux)``: the field's ``rhs_tape`` when the step keeps a tape
    and the field has one, else ``rhs`` with ``aux = None``."""
    rhs_tape = getattr(field, "rhs_tape", None) if keep else None
    if rhs_tape is not None:
        return rhs_tape
    return lambda y, t, theta: (field.rhs(y, t, theta), None)


def stage_vjp(field, Yi, t, theta, ybar):
    """``field.vjp`` at a kept stage ``Yi`` (a state or a :class:`StageTape`)."""
    if isinstance(Yi, StageTape):
        y, aux = Yi
        if aux is not None:
            return field.vjp(y, t, theta, ybar, aux=aux)
        return field.vjp(y, t, theta, ybar)
    return field.vjp(Yi, t, theta, ybar)


class ExplicitRK:
    """Explicit Runge--Kutta integrator defined by a :class:`ButcherTableau`.

    Contract of an integrator (shared with the leapfrog integrator):

    1. ``step(field, y, t, h, ctrl, keep)`` -> ``(y_next, tape)``; ``tape`` holds
       what the adjoint needs (the stage states ``Y_i``) when ``keep`` is true.
    2. ``step_adjoint(field, tape, t, h, ctrl, lam)`` -> ``lam_prev``: given
       ``lam = dJ/dy_{k+1}``, returns ``dJ/dy_k`` and adds the parameter gradient
       to ``ctrl`` (MATH B2).
    3. ``step_tangent(field, y, dy, t, h, ctrl)`` -> ``(y_next, dy_next)``.
    4. ``tape_floats(n, D)`` -- floats one step's tape holds (the stage states; a
       field's residuals, below, are counted by :meth:`~ocp_learn.gradients.base.Sweep.tape_floats`).
    5. ``counts`` -- rhs evaluations per step (``stages``).

    A field may offer *residuals*: ``rhs_tape(y, t, theta) -> (F, aux)`` returns, with
    the right-hand side, intermediate values its ``vjp(y, t, theta, ybar, aux=aux)``
    would otherwise recompute (``aux`` may be ``None``), and ``aux_floats(n)`` their
    size.  When the step keeps a tape, it calls ``rhs_tape`` and stores ``aux`` next to
    the stage state (:class:`StageTape`); the adjoint hands it back to ``vjp``.
    """

    #: kept steps store the field's residuals (``rhs_tape``), counted by ``Sweep.tape_floats``
    uses_residuals = True

    def __init__(self, tableau):
        if not isinstance(tableau, ButcherTableau):
            raise TypeError(f"tableau must be a ButcherTableau, got {type(tableau).__name__}")
        self.tableau = tableau
        self.name = tableau.name
        self.order = tableau.order
        self.stages = tableau.stages
        a = tableau.a
        # nonzero couplings, used to skip zero terms
        self._a_rows = [[(j, a[i, j]) for j in range(i) if a[i, j] != 0.0] for i in range(self.stages)]
        self._a_cols = [[(i, a[i, j]) for i in range(j + 1, self.stages) if a[i, j] != 0.0]
                        for j in range(self.stages)]

    def __repr__(self):
        return f"ExplicitRK({self.name!r}, order={self.order})"

    def tape_floats(self, n, D):
        return self.stages * n * D

    def step(self, field, y, t, h, ctrl, keep=True):
        tab = self.tableau
        K = []
        Y = [] if keep else None
        acc = y.copy()
        rhs = _stage_rhs(field, keep)
        for i in range(self.stages):
            Yi = self._stage_state(y, K, i, h)
            Ki, aux = rhs(Yi, t + tab.c[i] * h, ctrl.theta(tab.c[i]))
            K.append(Ki)
            if keep:
                Y.append(Yi if aux is None else StageTape(Yi, aux))
            if tab.b[i] != 0.0:
                axpy(h * tab.b[i], Ki, acc)
        return acc, Y

    def _stage_state(self, y, K, i, h):
        """``Y_i = y + h sum_j a_ij K_j`` (``y`` itself when the row is zero)."""
        rows = self._a_rows[i]
        if not rows:
            return y
        Yi = add_scaled(y, h * rows[0][1], K[rows[0][0]])
        for j, aij in rows[1:]:
            axpy(h * aij, K[j], Yi)
        return Yi

    def step_adjoint(self, field, Y, t, h, ctrl, lam):
        tab = self.tableau
        s = self.stages
        Ybar = [None] * s
        out = lam.copy()
        for i in range(s - 1, -1, -1):
            Kbar = None
            if tab.b[i] != 0.0:
                Kbar = (h * tab.b[i]) * lam
            for j, aji in self._a_cols[i]:
                if Kbar is None:
                    Kbar = (h * aji) * Ybar[j]
                else:
                    axpy(h * aji, Ybar[j], Kbar)
            if Kbar is None:
                Ybar[i] = np.zeros_like(lam)
                continue
            Ybar[i], gth = stage_vjp(field, Y[i], t + tab.c[i] * h, ctrl.theta(tab.c[i]), Kbar)
            ctrl.add_grad(tab.c[i], gth)
            out += Ybar[i]
        return out

    def step_tangent(self, field, y, dy, t, h, ctrl):
        tab = self.tableau
        K, dK = [], []
        acc, dacc = y.copy(), dy.copy()
        for i in range(self.stages):
            Yi, dYi = self._stage_state(y, K, i, h), self._stage_state(dy, dK, i, h)
            ti = t + tab.c[i] * h
            th = ctrl.theta(tab.c[i])
            K.append(field.rhs(Yi, ti, th))
            dK.append(field.jvp(Yi, ti, th, dYi, ctrl.dtheta(tab.c[i])))
            if tab.b[i] != 0.0:
                axpy(h * tab.b[i], K[i], acc)
                axpy(h * tab.b[i], dK[i], dacc)
        return acc, dacc
