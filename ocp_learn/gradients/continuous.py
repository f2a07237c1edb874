"""Continuous adjoint (optimize-then-discretize), for comparison (MATH B3).

Instead of differentiating the discrete scheme (MATH B2), integrate the
continuous adjoint equations backwards in time, from ``lam(T) = dJ/dy_N``::

    dlam/dt      = -(dF/dy (y(t), t))^T lam,
    dthetabar/dt = -(dF/dtheta (y(t), t))^T lam,      thetabar(T) = 0,

with the *same* Runge--Kutta tableau and the same grid, stepping from
``t_{k+1}`` to ``t_k`` (stage ``i`` at ``t_{k+1} - c_i h``; its parameter
term goes to the control rows of that time, weight ``h b_i``).  ``y(t)`` comes
either from

* ``"backsolve"`` -- re-solving ``dy/dt = F`` backwards jointly with ``lam``
  from the computed ``y_N`` (O(1) stored states; the backward solve is not the
  inverse of the forward one, so ``y`` drifts by the discretization error and,
  for dissipative flows, by the instability of the backward problem); or
* ``"interpolate"`` -- the forward states ``y_k`` kept at the grid points and a
  cubic Hermite interpolant through ``(y_k, F(y_k))`` and ``(y_{k+1}, F(y_{k+1}))``
  (``(N + 1) n D`` stored floats; interpolation error ``O(h^4)``).

The result is *not* the gradient of the discrete objective: it differs from it
by ``O(h^p)`` (``p`` the order of the tableau, for ``p <= 4``).  The tests and
the memory benchmark measure that difference against the exact discrete
gradient; it is reported, never hidden.
"""
from __future__ import annotations

import numpy as np

from ..errors import check_choice
from .base import GradientStrategy

__all__ = ["ContinuousAdjoint"]


class ContinuousAdjoint(GradientStrategy):
    """Optimize-then-discretize adjoint (MATH B3).

    Parameters
    ----------
    variant : {"backsolve", "interpolate"}
        How ``y(t)`` is obtained in the backward pass (see the module docstring).
    """

    name = "continuous"

    def __init__(self, variant="backsolve"):
        self.variant = check_choice("variant", variant, {"backsolve", "interpolate"})
        #: ``max |y_0(backsolved) - y_0|`` of the last backward sweep ("backsolve" only)
        self.last_backsolve_error = None

    def __repr__(self):
        return f"ContinuousAdjoint({self.variant!r})"

    @staticmethod
    def _tableau(sweep):
        tab = getattr(sweep.integ, "tableau", None)
        if tab is None:
            raise TypeError("strategy 'continuous' integrates the adjoint equations with the "
                            f"forward Runge--Kutta tableau; {sweep.integ!r} has none (use an RK "
                            "integrator such as 'rk4')")
        return tab

    def forward(self, sweep, y0):
        self._tableau(sweep)
        led = sweep.ledger
        y = y0
        if self.variant == "backsolve":
            led.hold(y0.size)
            for k in range(sweep.nt):
                y, _ = sweep.step(k, y, keep=False)
            return y, {"y0": y0, "yN": y}
        ys = [y0]
        led.hold(y0.size)
        for k in range(sweep.nt):
            y, _ = sweep.step(k, y, keep=False)
            ys.append(y)
            led.hold(y.size)
        return y, {"ys": ys}

    # -- y(t) inside step k for the interpolating variant ----------------------
    @staticmethod
    def _hermite(ya, fa, yb, fb, h, theta_frac):
        """Cubic Hermite interpolant at ``t_k + theta_frac h``."""
        s = theta_frac
        h00 = (1 + 2 * s) * (1 - s) ** 2
        h10 = s * (1 - s) ** 2
        h01 = s * s * (3 - 2 * s)
        h11 = s * s * (s - 1)
        return h00 * ya + (h10 * h) * fa + h01 * yb + (h11 * h) * fb

    def backward(self, sweep, tape, lam):
        tab = self._tableau(sweep)
        field, led = sweep.field, sweep.ledger
        a, b, c, S = tab.a, tab.b, tab.c, tab.stages
        backsolve = self.variant == "backsolve"
        y = tape["yN"] if backsolve else None
        ys = None if backsolve else tape["ys"]
        fb = None
        for k in range(sweep.nt - 1, -1, -1):
            ctrl, h, t1 = sweep.controls[k], sweep.h(k), sweep.times[k + 1]
            if not backsolve:
                ya, yb = ys[k], ys[k + 1]
                th1 = ctrl.theta(1.0)
                # F(y_{k+1}) from step k+1 is reused unless theta(t) jumps at t_{k+1}
                if fb is None or not np.array_equal(fb[1], th1):
                    fb = (field.rhs(yb, t1, th1), th1)
                    led.rhs_evals += 1
                th0 = ctrl.theta(0.0)
                fa = (field.rhs(ya, sweep.times[k], th0), th0)
                led.rhs_evals += 1
            Ky, Kl = [], []
            acc_y = None if not backsolve else y.copy()
            acc_l = lam.copy()
            for i in range(S):
                Li = lam.copy()
                Yi = y.copy() if backsolve else None
                for j in range(i):
                    if a[i, j] != 0.0:
                        Li += (h * a[i, j]) * Kl[j]
                        if backsolve:
                            Yi -= (h * a[i, j]) * Ky[j]
                ti = t1 - c[i] * h
                frac = 1.0 - c[i]
                th = ctrl.theta(frac)
                if not backsolve:
                    Yi = self._hermite(ya, fa[0], yb, fb[0], h, frac)
                else:
                    Ky.append(field.rhs(Yi, ti, th))
                    led.rhs_evals += 1
                    acc_y -= (h * b[i]) * Ky[i]
                ybar, gth = field.vjp(Yi, ti, th, Li)
                led.vjp_evals += 1
                Kl.append(ybar)
                acc_l += (h * b[i]) * ybar
                if b[i] != 0.0:
                    ctrl.add_grad(frac, (h * b[i]) * gth)
            lam = acc_l
            if backsolve:
                y = acc_y
            else:
                led.release(ys[k + 1].size)
                ys[k + 1] = None
                fb = fa
        if backsolve:
            self.last_backsolve_error = float(np.max(np.abs(y - tape["y0"])))
        led.release(lam.size)
        return lam
