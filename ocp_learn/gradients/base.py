"""Gradient (memory) strategies for the discrete adjoint (MATH B2, B4).

A strategy decides what the forward sweep keeps and how the backward sweep
gets the stage states it needs.  Strategies never touch a model: they call a
:class:`Sweep`, which binds field, integrator, time grid and controls.

Contract of a strategy:

1. ``forward(sweep, y0)`` -> ``(yN, tape)``.
2. ``backward(sweep, tape, lamN)`` -> ``lam0``; parameter gradients accumulate
   in the sweep's controls.
3. ``name`` -- its registry name.
"""
from __future__ import annotations

import numpy as np

from ..errors import NonFiniteError

__all__ = ["Sweep", "GradientStrategy", "get_strategy", "register_strategy", "STRATEGIES"]


class Sweep:
    """Field + integrator + time grid + controls, with the ledger.

    Attributes
    ----------
    nt : int
        Number of steps; ``times[k]`` is the start of step ``k``.
    """

    def __init__(self, field, integrator, times, controls, ledger):
        self.field, self.integ, self.times = field, integrator, times
        self.controls, self.ledger = controls, ledger
        self.nt = len(times) - 1

    def h(self, k):
        return self.times[k + 1] - self.times[k]

    def step(self, k, y, keep, recompute=False):
        """Step ``k`` from ``y``; returns ``(y_{k+1}, tape_k)``.

        Raises :class:`NonFiniteError` naming the step if the result overflows.
        """
        led = self.ledger
        y1, tape = self.integ.step(self.field, y, self.times[k], self.h(k), self.controls[k], keep)
        led.rhs_evals += self.integ.stages
        if recompute:
            led.recomputed_steps += 1
        else:
            led.steps += 1
            if not np.all(np.isfinite(y1)):
                raise NonFiniteError(
                    f"ODE solution overflowed at step {k} (t = {self.times[k + 1]:.6g}); "
                    "reduce the step size or the parameter scale", step=k)
        return y1, tape

    def step_adjoint(self, k, tape, lam):
        lam0 = self.integ.step_adjoint(self.field, tape, self.times[k], self.h(k), self.controls[k], lam)
        self.ledger.vjp_evals += self.integ.stages
        return lam0

    def step_tangent(self, k, y, dy):
        out = self.integ.step_tangent(self.field, y, dy, self.times[k], self.h(k), self.controls[k])
        self.ledger.rhs_evals += self.integ.stages
        self.ledger.jvp_evals += self.integ.stages
        self.ledger.steps += 1
        return out

    def tape_floats(self, y):
        """Floats one step's tape holds: the integrator's stage states plus, for a field
        with residuals (``rhs_tape``/``aux_floats``, :mod:`ocp_learn.integrators.rk`),
        ``stages * aux_floats(n)``."""
        n = self.integ.tape_floats(*y.shape)
        aux = getattr(self.field, "aux_floats", None)
        if aux is not None and getattr(self.integ, "uses_residuals", False):
            n += self.integ.stages * int(aux(y.shape[0]))
        return n


class GradientStrategy:
    """Base class; see the module docstring for the contract."""

    name = "base"

    def forward(self, sweep, y0):  # pragma: no cover - contract
        raise NotImplementedError

    def backward(self, sweep, tape, lamN):  # pragma: no cover - contract
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}()"


class StoreAll(GradientStrategy):
    """Keep every stage state of every step: ``nt * s * n * D`` floats, no recomputation."""

    name = "store_all"

    def forward(self, sweep, y0):
        y, tapes = y0, []
        for k in range(sweep.nt):
            y, tape = sweep.step(k, y, keep=True)
            sweep.ledger.hold(sweep.tape_floats(y0))
            tapes.append(tape)
        return y, tapes

    def backward(self, sweep, tapes, lam):
        for k in range(sweep.nt - 1, -1, -1):
            lam = sweep.step_adjoint(k, tapes[k], lam)
            tapes[k] = None
            sweep.ledger.release(sweep.tape_floats(lam))
        return lam


class StoreStates(GradientStrategy):
    """Keep the states ``y_k`` only; recompute one step's stages in the backward
    pass: ``(nt + 1) n D + s n D`` floats, ``nt`` recomputed steps."""

    name = "store_states"

    def forward(self, sweep, y0):
        ys = [y0]
        sweep.ledger.hold(y0.size)
        y = y0
        for k in range(sweep.nt):
            y, _ = sweep.step(k, y, keep=False)
            ys.append(y)
            sweep.ledger.hold(y.size)
        return y, ys

    def backward(self, sweep, ys, lam):
        stage_floats = sweep.tape_floats(lam)
        for k in range(sweep.nt - 1, -1, -1):
            _, tape = sweep.step(k, ys[k], keep=True, recompute=True)
            sweep.ledger.hold(stage_floats)
            lam = sweep.step_adjoint(k, tape, lam)
            sweep.ledger.release(stage_floats + ys[k + 1].size)
            ys[k + 1] = None
        sweep.ledger.release(ys[0].size)
        return lam


STRATEGIES = {"store_all": StoreAll, "store_states": StoreStates}


def register_strategy(name, factory):
    """Make ``get_strategy(name)`` (or ``(name, arg)``) build ``factory(*args)``."""
    STRATEGIES[name] = factory


def get_strategy(spec):
    """A strategy from a name, a ``(name, arg)`` tuple (e.g. ``("checkpoint", 4)``)
    or a strategy object."""
    if isinstance(spec, GradientStrategy):
        return spec
    args = ()
    if isinstance(spec, (tuple, list)) and spec:
        spec, args = spec[0], tuple(spec[1:])
    if isinstance(spec, str) and spec in STRATEGIES:
        return STRATEGIES[spec](*args)
    raise ValueError(f"strategy must be one of {sorted(STRATEGIES)} (or a (name, arg) tuple, "
                     f"or a GradientStrategy), got {spec!r}")
