"""L-BFGS whose correction pairs can be handed in and taken out: the two-loop recursion with
scipy's Wolfe line search (MINPACK ``dcsrch``, the line search of scipy's L-BFGS-B).

scipy's L-BFGS-B starts every run with an empty memory, so its first step is a gradient step
of unit length followed by a line search that may need several evaluations.  On samples
redrawn every few iterations (:func:`~ocp_learn.optim.lbfgs_resampled`, the MFG schedule of
MATH F) that restart happens at every redraw, although the objective is the same expectation
and the old pairs describe its curvature well.  :func:`lbfgs_memory` keeps them
(:class:`LBFGSMemory`), and a checkpoint that stores them resumes bit for bit.

With an empty memory the iterates are those of scipy's L-BFGS-B on an unconstrained problem
(same direction, same line search and constants; tested in ``tests/test_quasi_newton.py``).
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.optimize import OptimizeResult
from scipy.optimize import line_search as _wolfe2

from ..errors import check_positive_int
from ..protocols import Problem
from .driver import Callback, Driver
from .lbfgs import check_tolerances

try:  # MINPACK's dcsrch, as scipy's L-BFGS-B and BFGS use it; the public search otherwise
    from scipy.optimize._linesearch import line_search_wolfe1 as _wolfe1
except ImportError:  # pragma: no cover - older or newer scipy layouts
    _wolfe1 = None

__all__ = ["LBFGSMemory", "lbfgs_memory"]

#: Wolfe constants, relative step tolerance and largest step of scipy's L-BFGS-B (``dcsrch``'s
#: ``ftol``, ``gtol``, ``xtol``; ``stpmx`` without bounds)
C1, C2, XTOL, STPMAX = 1e-3, 0.9, 0.1, 1e10


class LBFGSMemory:
    """The last ``size`` correction pairs ``s_k = theta_{k+1} - theta_k``,
    ``y_k = g_{k+1} - g_k`` and the inverse-Hessian model they define.

    :meth:`direction` is the two-loop recursion (Nocedal & Wright, Alg. 7.4) with the initial
    matrix ``gamma I``, ``gamma = s^T y / y^T y`` of the newest pair; without pairs it is the
    unit-length steepest-descent direction (scipy's first step).  A pair is kept only if
    ``s^T y > eps y^T y`` (curvature condition, as L-BFGS-B).

    Parameters
    ----------
    size : int, optional
        Most pairs kept.
    """

    def __init__(self, size=10):
        self.size = check_positive_int("size", size)
        self.S, self.Y = [], []

    def __len__(self):
        return len(self.S)

    def direction(self, g):
        """``-H g`` for the gradient ``g``.

        Parameters
        ----------
        g : ndarray
            The gradient.

        Returns
        -------
        ndarray
            The search direction.
        """
        if not self.S:
            return -g / max(np.linalg.norm(g), np.finfo(float).tiny)
        q = np.array(g, dtype=np.float64)
        rho = [1.0 / (y @ s) for s, y in zip(self.S, self.Y)]
        alpha = []
        for s, y, r in zip(reversed(self.S), reversed(self.Y), reversed(rho)):
            a = r * (s @ q)
            alpha.append(a)
            q -= a * y
        s, y = self.S[-1], self.Y[-1]
        q *= (s @ y) / (y @ y)
        for (s, y, r), a in zip(zip(self.S, self.Y, rho), reversed(alpha)):
            q += (a - r * (y @ q)) * s
        return -q

    def update(self, s, y):
        """Add the pair ``(s, y)`` (dropping the oldest beyond ``size``).

        Parameters
        ----------
        s : ndarray
            The step ``theta_{k+1} - theta_k``.
        y : ndarray
            The change of the gradient ``g_{k+1} - g_k``.

        Returns
        -------
        bool
            Whether the pair was kept (curvature condition).
        """
        sy = float(s @ y)
        if not sy > np.finfo(float).eps * float(y @ y):
            return False
        self.S.append(np.array(s, dtype=np.float64))
        self.Y.append(np.array(y, dtype=np.float64))
        if len(self.S) > self.size:
            del self.S[0], self.Y[0]
        return True

    def state(self):
        """Arrays for a checkpoint.

        Returns
        -------
        dict
            ``{"S": (k, p), "Y": (k, p)}`` for ``k`` pairs of ``p`` parameters.
        """
        return {"S": np.array(self.S).reshape(len(self.S), -1),
                "Y": np.array(self.Y).reshape(len(self.Y), -1)}

    @classmethod
    def from_state(cls, state, size=10):
        """The memory of :meth:`state` (the last ``size`` pairs).

        Parameters
        ----------
        state : dict
            Arrays ``S`` and ``Y`` as :meth:`state` returns them.
        size : int, optional
            Most pairs kept.

        Returns
        -------
        LBFGSMemory
            The memory.
        """
        mem = cls(size)
        S, Y = np.asarray(state["S"], dtype=np.float64), np.asarray(state["Y"], dtype=np.float64)
        if S.shape != Y.shape or S.ndim != 2:
            raise ValueError(f"state: S and Y must be (k, p) arrays of one shape, got {S.shape} "
                             f"and {Y.shape}")
        mem.S, mem.Y = list(S[-mem.size:]), list(Y[-mem.size:])
        return mem


def _line_search(obj, x, d, f, g):
    """Step along ``d`` satisfying the strong Wolfe conditions, trying the unit step first (as
    L-BFGS-B; no previous objective is passed, which would shorten the first trial):
    ``(step, f, g)`` or ``None``."""
    fun = lambda z: obj(z)[0]      # noqa: E731 -- obj caches the last point: one evaluation
    grad = lambda z: obj(z)[1]     # noqa: E731
    if _wolfe1 is not None:
        stp, _, _, f_new, _, g_new = _wolfe1(fun, grad, x, d, g, f, None, c1=C1, c2=C2,
                                             amax=STPMAX, amin=0.0, xtol=XTOL)
        if stp is not None:
            return stp, f_new, g_new if g_new is not None else grad(x + stp * d)
    with warnings.catch_warnings():  # a failed search is reported in the result's message
        warnings.filterwarnings("ignore", "The line search algorithm did not converge")
        stp, _, _, f_new, _, g_new = _wolfe2(fun, grad, x, d, g, f, None, c1=C1, c2=C2)
    if stp is None:
        return None
    return stp, f_new, g_new if g_new is not None else grad(x + stp * d)


def lbfgs_memory(problem: Problem, theta0: Any = None, *, maxiter: int = 200, gtol: float = 1e-6,
                 ftol: float = 1e-12, memory: int = 10, pairs: LBFGSMemory | None = None,
                 batch: Any = None, progress: bool = True, callback: Callback | None = None,
                 seed: Any = 0) -> OptimizeResult:
    """Minimize ``problem``'s objective with L-BFGS, starting from the correction pairs ``pairs``.

    Parameters
    ----------
    problem : Problem
        :class:`~ocp_learn.protocols.Problem`.
    theta0 : ndarray, optional
        Start; ``problem.init_params(seed)`` by default.
    maxiter : int
        Iteration limit.
    gtol, ftol : float
        Stop when ``max |g_i| <= gtol`` or when the relative reduction
        ``(f_k - f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) <= ftol`` (scipy's L-BFGS-B tests).
    memory : int
        Number of stored correction pairs.
    pairs : LBFGSMemory, optional
        Pairs to start from (e.g. those of a run on an earlier draw of the samples); an
        empty memory by default.  The object is updated in place.
    batch : index array, optional
        A fixed batch of samples, as for :func:`~ocp_learn.optim.lbfgs`.
    progress : bool
        Show a tqdm progress bar.
    callback : callable, optional
        ``callback(iteration, theta, f, g)`` after every iteration; returning True
        stops the run.
    seed : int or Generator
        For ``problem.init_params`` when ``theta0`` is None.

    Returns
    -------
    scipy.optimize.OptimizeResult
        As :func:`~ocp_learn.optim.lbfgs`, plus ``memory`` (the :class:`LBFGSMemory` at the
        end).
    """
    memory = check_tolerances(gtol, ftol, memory)
    run = Driver(problem, "L-BFGS (two-loop, kept pairs)", theta0=theta0, seed=seed,
                 maxiter=maxiter, batch=batch, progress=progress, callback=callback)
    x = run.x0
    if pairs is None:
        pairs = LBFGSMemory(memory)
    elif not isinstance(pairs, LBFGSMemory):
        raise TypeError(f"pairs must be an LBFGSMemory, got {type(pairs).__name__}")
    if pairs.S and pairs.S[0].shape != np.shape(x):
        raise ValueError(f"pairs: stored pairs have {pairs.S[0].size} entries, theta0 has "
                         f"{np.size(x)}")
    f, g = run.start(x)
    message, success, it = "maximum number of iterations reached", True, 0
    with run.progress("L-BFGS"):
        while it < run.maxiter:
            if np.max(np.abs(g)) <= gtol:
                message = "projected gradient below gtol"
                break
            d = pairs.direction(g)
            if not g @ d < 0.0:  # a stale model from other samples: restart it
                pairs = LBFGSMemory(memory)
                d = pairs.direction(g)
            found = _line_search(run.objective, x, d, f, g)
            if found is None:
                message, success = "line search found no step satisfying the Wolfe conditions", False
                break
            stp, f_new, g_new = found
            x_new = x + stp * d
            pairs.update(x_new - x, g_new - g)
            it += 1
            f_old, x, f, g = f, x_new, f_new, np.array(g_new, dtype=np.float64)
            run.record(it, f, g)
            if run.iteration(it, x, f, g, postfix={"f": f"{f:.4e}", "g": f"{np.linalg.norm(g):.2e}"}):
                break
            if (f_old - f) <= ftol * max(abs(f_old), abs(f), 1.0):
                message = "relative reduction of f below ftol"
                break
    return run.result(x, success, message, memory=pairs)
