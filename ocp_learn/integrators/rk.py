"""One generic explicit Runge--Kutta step with its tangent and adjoint (MATH B1, B2).

The step is written once for every tableau.  An integrator step receives a
*step control* ``ctrl`` (see :mod:`ocp_learn.controls`) that gives the local
parameters at stage time ``t + c_i h`` (``ctrl.theta(c)``), their tangent
(``ctrl.dtheta(c)``) and accumulates parameter gradients (``ctrl.add_grad(c, g)``).
"""
from __future__ import annotations

import numpy as np

from .tableau import ButcherTableau

__all__ = ["ExplicitRK"]


class ExplicitRK:
    """Explicit Runge--Kutta integrator defined by a :class:`ButcherTableau`.

    Contract of an integrator (shared with the leapfrog integrator):

    1. ``step(field, y, t, h, ctrl, keep)`` -> ``(y_next, tape)``; ``tape`` holds
       what the adjoint needs (the stage states ``Y_i``) when ``keep`` is true.
    2. ``step_adjoint(field, tape, t, h, ctrl, lam)`` -> ``lam_prev``: given
       ``lam = dJ/dy_{k+1}``, returns ``dJ/dy_k`` and adds the parameter gradient
       to ``ctrl`` (MATH B2).
    3. ``step_tangent(field, y, dy, t, h, ctrl)`` -> ``(y_next, dy_next)``.
    4. ``tape_floats(n, D)`` -- floats one step's tape holds.
    5. ``counts`` -- rhs evaluations per step (``stages``).
    """

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
        for i in range(self.stages):
            Yi = y
            if self._a_rows[i]:
                Yi = y.copy()
                for j, aij in self._a_rows[i]:
                    Yi += (h * aij) * K[j]
            Ki = field.rhs(Yi, t + tab.c[i] * h, ctrl.theta(tab.c[i]))
            K.append(Ki)
            if keep:
                Y.append(Yi)
            if tab.b[i] != 0.0:
                acc += (h * tab.b[i]) * Ki
        return acc, Y

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
                term = (h * aji) * Ybar[j]
                Kbar = term if Kbar is None else Kbar + term
            if Kbar is None:
                Ybar[i] = np.zeros_like(lam)
                continue
            Ybar[i], gth = field.vjp(Y[i], t + tab.c[i] * h, ctrl.theta(tab.c[i]), Kbar)
            ctrl.add_grad(tab.c[i], gth)
            out += Ybar[i]
        return out

    def step_tangent(self, field, y, dy, t, h, ctrl):
        tab = self.tableau
        K, dK = [], []
        acc, dacc = y.copy(), dy.copy()
        for i in range(self.stages):
            Yi, dYi = y, dy
            if self._a_rows[i]:
                Yi, dYi = y.copy(), dy.copy()
                for j, aij in self._a_rows[i]:
                    Yi += (h * aij) * K[j]
                    dYi += (h * aij) * dK[j]
            ti = t + tab.c[i] * h
            th = ctrl.theta(tab.c[i])
            K.append(field.rhs(Yi, ti, th))
            dK.append(field.jvp(Yi, ti, th, dYi, ctrl.dtheta(tab.c[i])))
            if tab.b[i] != 0.0:
                acc += (h * tab.b[i]) * K[i]
                dacc += (h * tab.b[i]) * dK[i]
        return acc, dacc
