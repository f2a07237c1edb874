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

from typing import Any

from ..arrays import copy, namespace, scalar
from ..errors import check_choice
from .base import GradientStrategy, Sweep

__all__ = ["ContinuousAdjoint"]


class ContinuousAdjoint(GradientStrategy):
    """Optimize-then-discretize adjoint (MATH B3).

    Parameters
    ----------
    variant : {"backsolve", "interpolate"}
        How ``y(t)`` is obtained in the backward pass (see the module docstring).
        With ``"backsolve"`` the backward sweep records ``max |y_0(backsolved) - y_0|``
        in the ledger (``reconstruction_error``).

    Notes
    -----
    The tape is reusable: the backward sweep reads the kept states and leaves them.
    The gradient is not that of the discrete objective (``exact = False``): an optimizer
    starting with this strategy measures its error against the discrete adjoint
    (:meth:`ocp_learn.OCP.gradient_error`) and warns when it is large.
    """

    name = "continuous"
    reusable_tape = True
    exact = False

    def __init__(self, variant: str = "backsolve") -> None:
        self.variant = check_choice("variant", variant, {"backsolve", "interpolate"})

    def __repr__(self) -> str:
        return f"ContinuousAdjoint({self.variant!r})"

    @staticmethod
    def _tableau(sweep: Sweep) -> Any:
        tab = sweep.integ.tableau
        if tab is None:
            raise TypeError("strategy 'continuous' integrates the adjoint equations with the "
                            f"forward Runge--Kutta tableau; {sweep.integ!r} has none (use an RK "
                            "integrator such as 'rk4')")
        return tab

    def forward(self, sweep: Sweep, y0: Any) -> tuple[Any, dict]:
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
    def _hermite(ya, fa, yb, fb, h, theta_frac, xp):
        """Cubic Hermite interpolant at ``t_k + theta_frac h``."""
        s = theta_frac
        h00 = (1 + 2 * s) * (1 - s) ** 2
        h10 = s * (1 - s) ** 2
        h01 = s * s * (3 - 2 * s)
        h11 = s * s * (s - 1)
        return (scalar(h00, xp) * ya + scalar(h10 * h, xp) * fa + scalar(h01, xp) * yb
                + scalar(h11 * h, xp) * fb)

    def backward(self, sweep: Sweep, tape: dict, lam: Any) -> Any:
        tab = self._tableau(sweep)
        field, led = sweep.field, sweep.ledger
        a, b, c, S = tab.a, tab.b, tab.c, tab.stages
        xp = namespace(lam)
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
                if fb is None or not _same(fb[1], th1):
                    fb = (field.rhs(yb, t1, th1), th1)
                    led.rhs_evals += 1
                th0 = ctrl.theta(0.0)
                fa = (field.rhs(ya, sweep.times[k], th0), th0)
                led.rhs_evals += 1
            Ky, Kl = [], []
            acc_y = None if not backsolve else copy(y)
            acc_l = copy(lam)
            for i in range(S):
                Li = copy(lam)
                Yi = copy(y) if backsolve else None
                for j in range(i):
                    if a[i, j] != 0.0:
                        Li += scalar(h * a[i, j], xp) * Kl[j]
                        if backsolve:
                            Yi -= scalar(h * a[i, j], xp) * Ky[j]
                ti = t1 - c[i] * h
                frac = 1.0 - c[i]
                th = ctrl.theta(frac)
                if not backsolve:
                    Yi = self._hermite(ya, fa[0], yb, fb[0], h, frac, xp)
                else:
                    Ky.append(field.rhs(Yi, ti, th))
                    led.rhs_evals += 1
                    acc_y -= scalar(h * b[i], xp) * Ky[i]
                ybar, gth = field.vjp(Yi, ti, th, Li)
                led.vjp_evals += 1
                Kl.append(ybar)
                acc_l += scalar(h * b[i], xp) * ybar
                if b[i] != 0.0:
                    ctrl.add_grad(frac, scalar(h * b[i], namespace(gth)) * gth)
            lam = acc_l
            if backsolve:
                y = acc_y
            else:
                led.release(ys[k + 1].size)
                fb = fa
        if backsolve:
            led.reconstruction_error = max(led.reconstruction_error,
                                           float(xp.max(xp.abs(y - tape["y0"]))))
        led.release(lam.size)
        return lam


def _same(u: Any, v: Any) -> bool:
    """Whether the parameter vectors ``u`` and ``v`` are equal."""
    return u is v or bool(namespace(u, v).all(u == v))
