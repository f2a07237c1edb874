"""Shared pieces of the optimizers: the per-iteration history, the counted objective and the
sweep count."""
from __future__ import annotations

import time
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import NonFiniteError
from ..ledger import Ledger

__all__ = ["History", "Objective", "Swept", "count_sweeps", "sweep_unit"]


class History:
    """Per-iteration record: iteration, objective, gradient norm, seconds since start."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.iteration: list[int] = []
        self.objective: list[float] = []
        self.grad_norm: list[float] = []
        self.time: list[float] = []
        self.extra: dict[str, list] = {}

    def record(self, it: int, f: float, g: np.ndarray, **extra: Any) -> None:
        """Append one row.

        Parameters
        ----------
        it : int
            The iteration.
        f : float
            The objective.
        g : ndarray
            The gradient (its norm is kept).
        **extra
            Further columns (e.g. ``sweeps=...``), kept by name.
        """
        self.iteration.append(int(it))
        self.objective.append(float(f))
        self.grad_norm.append(float(np.linalg.norm(g)))
        self.time.append(time.perf_counter() - self.t0)
        for k, v in extra.items():
            self.extra.setdefault(k, []).append(v)

    def as_dict(self) -> dict:
        """The columns by name (JSON-serializable).

        Returns
        -------
        dict
            Column name -> list of values.
        """
        d = {"iteration": self.iteration, "objective": self.objective,
             "grad_norm": self.grad_norm, "time": self.time}
        for k, v in self.extra.items():
            d.setdefault(k, v)
        return d

    @classmethod
    def from_dict(cls, d: dict, elapsed: float = 0.0) -> History:
        """The history of :meth:`as_dict`, its clock started ``elapsed`` seconds ago.

        Parameters
        ----------
        d : dict
            The columns, as :meth:`as_dict` returns them.
        elapsed : float, optional
            Seconds the run had taken.

        Returns
        -------
        History
            The history.
        """
        h = cls()
        h.iteration, h.objective = list(d["iteration"]), list(d["objective"])
        h.grad_norm, h.time = list(d["grad_norm"]), list(d["time"])
        h.extra = {k: list(v) for k, v in d.items()
                   if k not in ("iteration", "objective", "grad_norm", "time")}
        h.t0 -= elapsed
        return h


class Objective:
    """``problem.evaluate(theta, batch)`` with counters, the summed ledger, a cache of the
    last point and the best finite iterate.

    A :class:`~ocp_learn.errors.NonFiniteError` becomes ``(inf, 0)`` so that line searches
    backtrack; its message is kept in ``failure``.  Non-finite parameters are never
    evaluated.
    """

    def __init__(self, problem: Any, batch: Any = None) -> None:
        self.problem, self.batch = problem, batch
        self.nfev = 0
        self.ledger = Ledger()
        self.last_x = self.last_f = self.last_g = None
        self.best_x, self.best_f, self.best_g = None, np.inf, None
        self.failure: str | None = None

    def count(self, evaluation: Any) -> Any:
        """Count one evaluation made outside ``__call__`` and add its ledger."""
        self.nfev += 1
        self.ledger += evaluation.ledger
        return evaluation

    def offer(self, x: np.ndarray, f: float, g: np.ndarray | None) -> None:
        """Keep ``(x, f, g)`` as the best iterate if ``f`` is finite and lower."""
        if np.isfinite(f) and f < self.best_f:
            self.best_x, self.best_f = np.array(x, dtype=np.float64), float(f)
            self.best_g = None if g is None else np.array(g, dtype=np.float64)

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        x = np.array(x, dtype=np.float64)
        if self.last_x is not None and np.array_equal(x, self.last_x):
            return self.last_f, self.last_g.copy()
        self.nfev += 1
        if not np.all(np.isfinite(x)):
            # e.g. scipy's line search extrapolating from an infinite value: never evaluate
            # (or return) NaN parameters; report an infinite objective instead
            self.failure = self.failure or "the optimizer proposed non-finite parameters"
            self.last_x, self.last_f, self.last_g = x, np.inf, np.zeros_like(x)
            return np.inf, np.zeros_like(x)
        try:
            ev = self.problem.evaluate(x, self.batch, gradient=True)
            self.ledger += ev.ledger
            f, g = ev.value, ev.gradient
            if not (np.isfinite(f) and np.all(np.isfinite(g))):
                raise NonFiniteError(f"objective or gradient is not finite ({f})")
        except NonFiniteError as exc:
            self.failure = str(exc)
            f, g = np.inf, np.zeros_like(x)
        self.last_x, self.last_f, self.last_g = x, f, g
        self.offer(x, f, g)
        return f, g.copy()


@runtime_checkable
class Swept(Protocol):
    """A problem solved by time stepping: ``nt`` steps of an integrator with ``stages``."""

    nt: int
    integrator: Any


def sweep_unit(problem: Any) -> tuple[int, int] | None:
    """``(nt, stages)`` of a :class:`Swept` problem (``None`` for other problems)."""
    if not isinstance(problem, Swept):
        return None
    nt, stages = problem.nt, problem.integrator.stages
    return (int(nt), int(stages)) if nt and stages else None


def count_sweeps(ledger: Ledger, unit: tuple[int, int] | None) -> float | None:
    """Full-horizon passes in a ledger: forward and tangent sweeps (``steps / nt``) plus
    adjoint sweeps (``vjp_evals / (stages nt)``); ``None`` without a unit
    (:func:`sweep_unit`)."""
    if unit is None:
        return None
    nt, stages = unit
    return (ledger.steps + ledger.recomputed_steps) / nt + ledger.vjp_evals / (stages * nt)
