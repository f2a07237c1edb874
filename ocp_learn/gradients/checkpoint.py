"""Binomial checkpointing (Griewank & Walther's revolve) for the discrete adjoint (MATH B4).

With ``s`` checkpoints (counting the one that holds the initial state) and
``N`` steps known in advance, the reversal of the ``N`` steps needs

    ``t(N, s) = r N - binom(s + r, r - 1)``,   ``r`` the smallest integer with
    ``binom(s + r, s) >= N``,

forward steps besides the ``N`` taping steps (MATH B4).  In this code the first
forward sweep takes the ``N`` steps of the objective and keeps the last step's
stage tape, so the ledger's ``recomputed_steps`` equals ``t(N, s)`` exactly
(advances to rebuild states, plus the re-taping of steps ``0..N-2``).

Schedule (recursive, optimal).  ``reverse(a, l, s)`` reverses steps
``a .. a+l-1`` given ``y_a`` in a checkpoint and ``s`` checkpoints available
(that one included):

* ``l == 1``: tape step ``a`` from ``y_a`` and apply its adjoint;
* ``s == 1``: for ``j = l-1 .. 0``: advance ``j`` steps from ``y_a``, tape step
  ``a + j``, adjoint (``l (l - 1) / 2`` advances);
* else advance ``m`` steps to ``y_{a+m}``, store it, ``reverse(a+m, l-m, s-1)``,
  free it, ``reverse(a, m, s)``; cost ``m + t(l-m, s-1) + t(m, s)``.

Because ``t(., s)`` is convex and piecewise linear with slope ``r`` on
``[beta(s, r-1), beta(s, r)]`` (``beta(s, r) = binom(s + r, s)``), the split is
optimal iff ``m`` lies on the slope ``r - 1`` piece of ``t(., s)`` and ``l - m``
on the slope ``r`` piece of ``t(., s - 1)``:
``max(beta(s, r-2), l - beta(s-1, r)) <= m <= min(beta(s, r-1), l - beta(s-1, r-1))``;
:func:`revolve_split` returns the largest such ``m``.

Stored floats (exact): at most ``min(s, N)`` checkpoints of ``n D`` floats plus
one step's stage tape.
"""
from __future__ import annotations

from math import comb
from typing import Any

from ..errors import check_positive_int
from .base import GradientStrategy, Sweep

__all__ = ["Checkpoint", "repetition_number", "revolve_cost", "revolve_split"]


def _beta(s, r):
    return comb(s + r, s) if r >= 0 else 0


def repetition_number(N: int, s: int) -> int:
    """Smallest ``r >= 0`` with ``binom(s + r, s) >= N`` (MATH B4).

    Parameters
    ----------
    N : int
        Number of steps.
    s : int
        Number of checkpoints.

    Returns
    -------
    int
        The repetition number ``r``.
    """
    N = check_positive_int("N", N)
    s = check_positive_int("s", s)
    r = 0
    while _beta(s, r) < N:
        r += 1
    return r


def revolve_cost(N: int, s: int) -> int:
    """Griewank's ``t(N, s) = r N - binom(s + r, r - 1)`` (MATH B4).

    Parameters
    ----------
    N : int
        Number of steps.
    s : int
        Number of checkpoints.

    Returns
    -------
    int
        The number of forward steps the reversal recomputes.
    """
    r = repetition_number(N, s)
    return r * N - (comb(s + r, r - 1) if r >= 1 else 0)


def revolve_split(l: int, s: int) -> int:
    """An optimal first advance ``m`` for reversing ``l >= 2`` steps with ``s >= 2`` checkpoints.

    Parameters
    ----------
    l : int
        Number of steps to reverse.
    s : int
        Number of checkpoints.

    Returns
    -------
    int
        The number of steps to advance before the next checkpoint.
    """
    r = repetition_number(l, s)
    lo = max(_beta(s, r - 2), l - _beta(s - 1, r), 1)
    hi = min(_beta(s, r - 1), l - _beta(s - 1, r - 1), l - 1)
    if lo > hi:  # pragma: no cover - excluded by the analysis above; kept as a guard
        raise RuntimeError(f"no optimal revolve split for l={l}, s={s}")
    return hi


class Checkpoint(GradientStrategy):
    """Binomial checkpointing with ``s`` checkpoints (MATH B4).

    Parameters
    ----------
    s : int
        Number of checkpoints, the one holding ``y_0`` included.  ``N`` (the
        number of steps) is read from the sweep, so the schedule is the offline
        revolve schedule for ``N`` known in advance.

    Notes
    -----
    The tape is consumed by the backward sweep (``reusable_tape = False``): the
    checkpoints are freed as the reversal passes them, which is what keeps the memory at
    the count above.
    """

    name = "checkpoint"
    reusable_tape = False

    def __init__(self, s: int = 4) -> None:
        self.s = check_positive_int("s", s)

    def __repr__(self) -> str:
        return f"Checkpoint(s={self.s})"

    @staticmethod
    def analytic_stored_floats(N: int, s: int, nD: int, tape: int) -> int:
        """Peak stored floats: ``min(s, N)`` checkpoints of ``nD`` floats + one tape.

        The descent to the last step stores a checkpoint per split; it stops
        when ``s`` are used or one step remains.

        Parameters
        ----------
        N : int
            Number of steps.
        s : int
            Number of checkpoints.
        nD : int
            Floats of one state.
        tape : int
            Floats of one step's tape.

        Returns
        -------
        int
            The peak number of stored floats.
        """
        used, l, k = 1, N, s
        while l > 1 and k > 1:
            l -= revolve_split(l, k)
            k -= 1
            used += 1
        return used * nD + tape

    # The pending work of the schedule is a stack of tasks:
    #   ("rev", a, l, s)  reverse steps a..a+l-1 from checkpoint a with s checkpoints;
    #   ("one", a, j)     advance j steps from checkpoint a, tape step a+j, adjoint;
    #   ("free", a)       drop checkpoint a.
    def _descend(self, sweep, state, a, l, s, recompute):
        """Run ``reverse(a, l, s)`` up to its first taping; return ``(k, tape, y_{k+1})``."""
        slots, stack, led = state["slots"], state["stack"], sweep.ledger
        nD = slots[a].size
        while True:
            if l == 1:
                k, y = a, slots[a]
                break
            if s == 1:
                for j in range(l - 1):
                    stack.append(("one", a, j))
                y = slots[a]
                for k in range(a, a + l - 1):
                    y, _ = sweep.step(k, y, keep=False, recompute=recompute)
                k = a + l - 1
                break
            m = revolve_split(l, s)
            stack.append(("rev", a, m, s))
            stack.append(("free", a + m))
            y = slots[a]
            for k in range(a, a + m):
                y, _ = sweep.step(k, y, keep=False, recompute=recompute)
            slots[a + m] = y
            led.hold(nD)
            a, l, s = a + m, l - m, s - 1
        y1, tape = sweep.step(k, y, keep=True, recompute=recompute)
        led.hold(sweep.tape_floats(y))
        return k, tape, y1

    def forward(self, sweep: Sweep, y0: Any) -> tuple[Any, dict]:
        state = {"slots": {0: y0}, "stack": []}
        sweep.ledger.hold(y0.size)
        k, tape, yN = self._descend(sweep, state, 0, sweep.nt, self.s, recompute=False)
        state["pending"] = (k, tape)
        return yN, state

    def backward(self, sweep: Sweep, state: dict, lam: Any) -> Any:
        slots, stack, led = state["slots"], state["stack"], sweep.ledger
        k, tape = state.pop("pending")
        tape_floats = sweep.tape_floats(lam)
        while True:
            lam = sweep.step_adjoint(k, tape, lam)
            tape = None
            led.release(tape_floats)
            k = None
            while stack and k is None:
                task = stack.pop()
                if task[0] == "free":
                    del slots[task[1]]
                    led.release(lam.size)
                elif task[0] == "one":
                    _, a, j = task
                    y = slots[a]
                    for i in range(a, a + j):
                        y, _ = sweep.step(i, y, keep=False, recompute=True)
                    _, tape = sweep.step(a + j, y, keep=True, recompute=True)
                    led.hold(tape_floats)
                    k = a + j
                else:
                    _, a, l, s = task
                    k, tape, _ = self._descend(sweep, state, a, l, s, recompute=True)
            if k is None:
                break
        led.release(slots.pop(0).size)
        return lam
