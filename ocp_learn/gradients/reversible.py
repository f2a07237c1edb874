"""Reversible strategy: rebuild states backwards with an exactly invertible integrator (MATH A4, B4).

The forward sweep keeps only the running state; the backward sweep rebuilds
``y_k`` from ``y_{k+1}`` with the integrator's ``step_inverse`` (leapfrog /
Stoermer--Verlet for the Hamiltonian network of MATH A4), which also returns
the step's stage tape, and applies the step's discrete adjoint (MATH B2).

Stored floats: one state (``n D``) plus one step's tape -- independent of the
number of steps ``N``.  Work: ``N`` forward steps, ``N`` inverse steps (counted
as recomputed steps), ``N`` adjoint steps.

Floating point: the inverse undoes each shear by subtracting an increment
re-evaluated at a rounded argument, so the rebuilt ``y_0`` differs from the
true one by rounding that grows with ``N`` (linearly for the well-conditioned
Hamiltonian flow; faster if the flow is expansive).  The gradient is the exact
discrete gradient up to that rounding; :attr:`Ledger.reconstruction_error <ocp_learn.ledger.Ledger>`
records ``max |y_0(rebuilt) - y_0|`` of the last backward sweep so users (and the
tests and benchmarks) can see it.
"""
from __future__ import annotations

from typing import Any

from ..arrays import namespace
from .base import GradientStrategy, Sweep

__all__ = ["Reversible"]


class Reversible(GradientStrategy):
    """O(1)-memory gradient for reversible integrators (``step_inverse``, MATH B4).

    The tape ``{"y0", "yN"}`` is reusable: the backward sweep rebuilds the states from
    ``yN`` and leaves the tape as it is.

    The backward sweep records ``max |y_0(rebuilt) - y_0|`` in the ledger
    (``reconstruction_error``).
    """

    name = "reversible"
    reusable_tape = True

    def forward(self, sweep: Sweep, y0: Any) -> tuple[Any, dict]:
        if not sweep.integ.reversible:
            raise TypeError(f"strategy 'reversible' needs an invertible integrator (with "
                            f"step_inverse), such as 'leapfrog'; got {sweep.integ!r}")
        led = sweep.ledger
        led.hold(y0.size)  # the running state
        y = y0
        for k in range(sweep.nt):
            y, _ = sweep.step(k, y, keep=False)
        return y, {"y0": y0, "yN": y}

    def backward(self, sweep: Sweep, tape: dict, lam: Any) -> Any:
        led = sweep.ledger
        y = tape["yN"]
        tape_floats = sweep.tape_floats(y)
        for k in range(sweep.nt - 1, -1, -1):
            y, stages = sweep.integ.step_inverse(sweep.field, y, sweep.times[k], sweep.h(k),
                                                 sweep.controls[k], True)
            led.rhs_evals += sweep.integ.stages
            led.recomputed_steps += 1
            led.hold(tape_floats)
            lam = sweep.step_adjoint(k, stages, lam)
            led.release(tape_floats)
        xp = namespace(y)
        led.reconstruction_error = max(led.reconstruction_error,
                                       float(xp.max(xp.abs(y - tape["y0"]))))
        led.release(y.size)
        return lam
