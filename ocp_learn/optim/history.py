"""Shared pieces of the optimizers: evaluation wrapper, history, results."""
from __future__ import annotations

import time

import numpy as np
from scipy.optimize import OptimizeResult

from ..errors import NonFiniteError
from ..ledger import Ledger

__all__ = ["History", "Objective", "make_result", "count_sweeps"]


class History:
    """Per-iteration record: iteration, objective, gradient norm, seconds since start."""

    def __init__(self):
        self.t0 = time.perf_counter()
        self.iteration, self.objective, self.grad_norm, self.time = [], [], [], []
        self.extra = {}

    def record(self, it, f, g, **extra):
        """Append one row; ``extra`` columns (e.g. ``sweeps=...``) are kept by name."""
        self.iteration.append(int(it))
        self.objective.append(float(f))
        self.grad_norm.append(float(np.linalg.norm(g)))
        self.time.append(time.perf_counter() - self.t0)
        for k, v in extra.items():
            self.extra.setdefault(k, []).append(v)

    def as_dict(self):
        d = {"iteration": self.iteration, "objective": self.objective,
             "grad_norm": self.grad_norm, "time": self.time}
        for k, v in self.extra.items():
            d.setdefault(k, v)
        return d

    @classmethod
    def from_dict(cls, d, elapsed=0.0):
        h = cls()
        h.iteration, h.objective = list(d["iteration"]), list(d["objective"])
        h.grad_norm, h.time = list(d["grad_norm"]), list(d["time"])
        h.extra = {k: list(v) for k, v in d.items()
                   if k not in ("iteration", "objective", "grad_norm", "time")}
        h.t0 -= elapsed
        return h


class Objective:
    """``problem.objective_and_gradient`` with counters, a cache of the last
    point, and the best finite iterate; a :class:`NonFiniteError` becomes
    ``(inf, 0)`` so that line searches backtrack, and its message is kept."""

    def __init__(self, problem, batch=None):
        self.problem, self.batch = problem, batch
        self.nfev = 0
        self.ledger = Ledger()
        self.last_x = self.last_f = self.last_g = None
        self.best_x, self.best_f, self.best_g = None, np.inf, None
        self.failure = None

    def __call__(self, x):
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
            f, g = self.problem.objective_and_gradient(x, self.batch)
            ev = getattr(self.problem, "last_evaluation", None)
            if ev is not None:
                self.ledger += ev.ledger
        except NonFiniteError as exc:
            self.failure = str(exc)
            f, g = np.inf, np.zeros_like(x)
        self.last_x, self.last_f, self.last_g = x, f, g
        if np.isfinite(f) and f < self.best_f:
            self.best_x, self.best_f, self.best_g = x.copy(), f, g.copy()
        return f, g.copy()


def count_sweeps(ledger, problem):
    """Full-horizon passes in a ledger: forward and tangent sweeps (``steps / nt``)
    plus adjoint sweeps (``vjp_evals / (stages nt)``); ``None`` if ``problem``
    has no ``nt``/``integrator``."""
    nt = getattr(problem, "nt", None)
    stages = getattr(getattr(problem, "integrator", None), "stages", None)
    if not nt or not stages:
        return None
    return (ledger.steps + ledger.recomputed_steps) / nt + ledger.vjp_evals / (stages * nt)


def make_result(obj, x, success, message, nit, history, method, **extra):
    """An ``OptimizeResult`` whose ``x`` is always a finite iterate."""
    f, g = obj(x) if np.all(np.isfinite(x)) else (np.inf, None)
    if not np.isfinite(f) and obj.best_x is not None:
        x, f, g = obj.best_x, obj.best_f, obj.best_g
        success = False
        message = f"stopped at the last finite iterate: {obj.failure or message}"
    elif not success and obj.failure and obj.failure not in str(message):
        message = f"{message}; cause: non-finite evaluation ({obj.failure})"
    res = OptimizeResult(x=x, fun=float(f), jac=g, success=bool(success), message=str(message),
                         nit=int(nit), nfev=obj.nfev, njev=obj.nfev, method=method,
                         history=history.as_dict(), ledger=obj.ledger.as_dict(),
                         seconds=time.perf_counter() - history.t0)
    res.update(extra)
    return res
