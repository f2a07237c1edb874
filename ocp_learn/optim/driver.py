"""The one optimizer driver: start point, resume, progress, callback, checkpoints, the
finite-iterate guarantee and the :class:`scipy.optimize.OptimizeResult` of every method.

A method (:func:`~ocp_learn.optim.lbfgs`, :func:`~ocp_learn.optim.gauss_newton`,
:func:`~ocp_learn.optim.adam`, :func:`~ocp_learn.optim.lbfgs_memory`,
:func:`~ocp_learn.optim.lbfgs_resampled`) is its update rule only; around it a
:class:`Driver`

1. validates the start (``problem.check_theta``; ``problem.init_params(seed)`` by default);
   for an :class:`~ocp_learn.OCP` whose memory strategy declares an inexact gradient
   (``exact = False``: the continuous adjoint, MATH B3), measures that gradient's error
   against the discrete adjoint at the start (:meth:`~ocp_learn.OCP.gradient_error`) and
   warns (``RuntimeWarning``) when it exceeds ``gradient_tol``,
2. restores the run from a checkpoint written by the same method and problem size,
3. counts every evaluation and adds up its ledger (:class:`~.history.Objective`),
4. after each iteration: advances the progress bar, writes the checkpoint every
   ``checkpoint_every`` iterations (atomic, :mod:`ocp_learn.optim.checkpoint`), calls
   ``callback(iteration, theta, f, g)`` (a true return value stops the run),
5. returns an ``OptimizeResult`` whose ``x`` is finite: when the objective at the last
   iterate is not finite, the best finite iterate seen, with ``success=False`` and a message
   naming the cause.
"""
from __future__ import annotations

import time
import warnings
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np
from scipy.optimize import OptimizeResult
from tqdm.auto import tqdm

from ..errors import CheckpointError, check_positive_int
from ..ledger import Ledger
from ..ocp import OCP
from ..protocols import Problem, check_protocol
from .checkpoint import load_checkpoint, save_checkpoint
from .history import History, Objective, count_sweeps, sweep_unit

__all__ = ["Driver", "Callback", "RESULT_FIELDS", "GRADIENT_TOL"]

#: Largest accepted relative error of an inexact gradient at the start point (see
#: :meth:`Driver.start`).
GRADIENT_TOL = 1e-2

#: ``callback(iteration, theta, f, g) -> bool`` (true: stop the run).
Callback = Callable[[int, np.ndarray, float, Any], Any]

#: The fields of every optimizer's result.
RESULT_FIELDS = ("x", "fun", "jac", "success", "message", "nit", "nfev", "njev", "method",
                 "history", "ledger", "seconds", "sweeps")


class Driver:
    """Everything of one optimizer run except the update rule.

    Parameters
    ----------
    problem : Problem
        :class:`~ocp_learn.protocols.Problem`, checked here (the missing members are named).
    method : str
        The tag of the method's checkpoints (and its name, unless ``label``).
    theta0 : array_like, optional
        Start, validated by ``problem.check_theta(theta0, "theta0")``;
        ``problem.init_params(seed)`` by default.
    seed : int or Generator
        For ``init_params``.
    maxiter : int
        Iteration limit (the total, also when resuming).
    batch : index array, optional
        The rows the counted objective (``objective``) evaluates.
    progress : bool
        Show a tqdm bar (:meth:`progress`).
    callback : callable, optional
        ``callback(iteration, theta, f, g)``; a true return value stops the run.
    checkpoint : str, optional
        File for :meth:`save`.
    checkpoint_every : int
        Iterations between checkpoints.
    resume : bool
        Whether :meth:`restore` reads ``checkpoint`` (if it exists).
    writes : bool
        Whether this process writes the checkpoint (one writer among parallel processes).
    label : str, optional
        ``OptimizeResult.method``; ``method`` by default.
    gradient_tol : float
        Largest accepted relative error of an inexact gradient (a strategy with
        ``exact = False``) against the discrete adjoint at the start (:meth:`start`).
    """

    def __init__(self, problem: Problem, method: str, *, theta0: Any = None, seed: Any = 0,
                 maxiter: int, batch: Any = None, progress: bool = True,
                 callback: Callback | None = None, checkpoint: Any = None,
                 checkpoint_every: int = 10, resume: bool = False, writes: bool = True,
                 label: str | None = None, gradient_tol: float = GRADIENT_TOL) -> None:
        self.problem = check_protocol(problem, Problem, "problem")
        self.method, self.label = method, method if label is None else label
        self.maxiter = check_positive_int("maxiter", maxiter)
        self.checkpoint_every = check_positive_int("checkpoint_every", checkpoint_every)
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        self.callback, self.checkpoint, self.resume = callback, checkpoint, bool(resume)
        self.show_progress, self.writes = bool(progress), bool(writes)
        self.x0 = (np.array(problem.init_params(seed), dtype=np.float64) if theta0 is None
                   else problem.check_theta(theta0, "theta0").copy())
        self.objective = Objective(problem, batch)
        self.batch, self.gradient_tol = batch, float(gradient_tol)
        self.history = History()
        self.nit = 0
        self.stopped = False  # the callback asked to stop
        self.unit = sweep_unit(problem)
        self._bar = None
        self._unsaved: Callable[[], None] | None = None  # checkpoint of the last iterate, if due

    # --- state -------------------------------------------------------------------------
    @property
    def ledger(self) -> Ledger:
        """The summed :class:`~ocp_learn.ledger.Ledger` of the run's evaluations."""
        return self.objective.ledger

    def sweeps(self) -> float | None:
        """Full-horizon passes so far (:func:`~.history.count_sweeps`).

        Returns
        -------
        float or None
            The number of sweeps (None when the problem does not count them).
        """
        return count_sweeps(self.objective.ledger, self.unit)

    def record(self, it: int, f: float, g: np.ndarray, **columns: Any) -> None:
        """One history row (with the ``sweeps`` column).

        Parameters
        ----------
        it : int
            The iteration.
        f : float
            The objective.
        g : ndarray
            The gradient.
        **columns
            Further columns of the row.
        """
        self.history.record(it, f, g, sweeps=self.sweeps(), **columns)

    def start(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """``(f, g)`` at the start ``x``.

        Records row 0 of a fresh history, and there checks an inexact gradient
        (:meth:`check_gradient`).

        Parameters
        ----------
        x : ndarray
            The starting point.

        Returns
        -------
        f : float
            The objective at ``x``.
        g : ndarray
            Its gradient.

        Raises
        ------
        ValueError
            Naming ``theta0``, if the objective is not finite at ``x``.
        """
        f, g = self.objective(x)
        if not np.isfinite(f):
            raise ValueError(f"theta0: the objective is not finite at the start "
                             f"({self.objective.failure})")
        if not self.history.iteration:
            self.check_gradient(x)
            self.record(0, f, g)
        return f, g

    def check_gradient(self, x: np.ndarray) -> float | None:
        """For an :class:`~ocp_learn.OCP` whose gradient is not that of the discrete objective
        (``problem.exact_gradient`` false), its relative error against the discrete adjoint
        at ``x`` (:meth:`~ocp_learn.OCP.gradient_error`); a ``RuntimeWarning`` names it when
        it exceeds ``gradient_tol``.

        Parameters
        ----------
        x : ndarray
            The point.

        Returns
        -------
        float or None
            The relative error; None for an exact gradient (nothing computed).
        """
        prob = self.problem
        if not isinstance(prob, OCP) or prob.exact_gradient:
            return None
        err = prob.gradient_error(x, batch=self.batch)
        if err > self.gradient_tol:
            warnings.warn(
                f"the gradient of strategy {prob.strategy.name!r} differs from the gradient of "
                f"the discrete objective (discrete adjoint 'store_all') by a relative error of "
                f"{err:.3g} at the start point, above the tolerance {self.gradient_tol:.1e}: the "
                "optimizer follows an inexact gradient (use an exact strategy such as "
                "'store_all', or more time steps)", RuntimeWarning, stacklevel=3)
        return err

    # --- checkpoints -------------------------------------------------------------------
    def load(self, accept: tuple[str, ...] = (),
             require: tuple[str, ...] = ()) -> tuple[dict, dict] | None:
        """``(arrays, meta)`` of the checkpoint to resume from.

        The checkpoint must be of this method (or one of ``accept``), of
        ``problem.n_params`` parameters and hold the ``require`` keys.

        Parameters
        ----------
        accept : tuple of str, optional
            Other methods whose checkpoints this one resumes from.
        require : tuple of str, optional
            Keys the checkpoint's metadata must hold.

        Returns
        -------
        tuple of (dict, dict) or None
            The checkpoint's arrays and metadata; None when resuming is off or there
            is no file yet.

        Raises
        ------
        CheckpointError
            When the checkpoint is of another method or size, or lacks a key.
        """
        if not self.resume or self.checkpoint is None:
            return None
        try:
            arrays, meta = load_checkpoint(self.checkpoint, require=require)
        except FileNotFoundError:
            return None
        if meta.get("method") not in (self.method, *accept):
            raise CheckpointError(f"checkpoint {self.checkpoint!r} was written by "
                             f"{meta.get('method')!r}, not {self.method!r}")
        n = int(self.problem.n_params)
        if meta.get("n_params") != n:
            raise CheckpointError(f"checkpoint {self.checkpoint!r} holds {meta.get('n_params')} "
                             f"parameters, the problem has {n}")
        return arrays, meta

    def restore(self) -> tuple[dict, dict] | None:
        """:meth:`load`, then continue its history, iteration count, evaluation count and ledger.

        The elapsed time carries over.

        Returns
        -------
        tuple of (dict, dict) or None
            The checkpoint's arrays and metadata, as :meth:`load`.
        """
        loaded = self.load(require=("nit", "nfev", "history", "ledger"))
        if loaded is None:
            return None
        arrays, meta = loaded
        times = meta["history"]["time"]
        self.history = History.from_dict(meta["history"], elapsed=times[-1] if times else 0.0)
        self.nit = int(meta["nit"])
        self.objective.nfev = int(meta["nfev"])
        for k, v in meta["ledger"].items():
            setattr(self.objective.ledger, k, v)
        return arrays, meta

    def save(self, x: np.ndarray, arrays: dict | None = None, **meta: Any) -> None:
        """Write the checkpoint (if any).

        It holds ``x`` and ``arrays``; the method, ``n_params``, ``nit``, ``nfev``,
        history and ledger, and ``meta`` (which may replace them).

        Parameters
        ----------
        x : ndarray
            The iterate.
        arrays : dict, optional
            Further arrays of the method's state.
        **meta
            Further metadata.
        """
        if self.checkpoint is None or not self.writes:
            return
        save_checkpoint(self.checkpoint, {"x": x, **(arrays or {})},
                        {"method": self.method, "n_params": int(np.size(x)), "nit": self.nit,
                         "nfev": self.objective.nfev, "history": self.history.as_dict(),
                         "ledger": self.objective.ledger.as_dict(), **meta})

    # --- the iteration loop ----------------------------------------------------------------
    @contextmanager
    def progress(self, desc: str) -> Iterator[Driver]:
        """The tqdm bar of the run (closed on exit, also on errors).

        An interruption (``KeyboardInterrupt``: Ctrl-C, or SIGTERM as the command line
        maps it) first writes the checkpoint of the last completed iteration, so that
        ``resume`` loses no work.

        Parameters
        ----------
        desc : str
            The bar's label.

        Yields
        ------
        Driver
            This driver.
        """
        self._bar = tqdm(total=self.maxiter, initial=self.nit, disable=not self.show_progress,
                         desc=desc, leave=False)
        try:
            yield self
        except KeyboardInterrupt:
            if self._unsaved is not None:
                self._unsaved()
                self._unsaved = None
            raise
        finally:
            self._bar.close()
            self._bar = None

    def iteration(self, it: int, x: np.ndarray, f: float, g: Any,
                  state: Callable[[], tuple[dict, dict]] | None = None, final: bool = False,
                  postfix: dict | None = None) -> bool:
        """After iteration ``it``: progress, the checkpoint when due (or ``final``), the callback.

        Parameters
        ----------
        it : int
            The iteration.
        x : ndarray
            The iterate.
        f : float
            The objective at ``x``.
        g : ndarray
            Its gradient.
        state : callable, optional
            ``state() -> (arrays, meta)``: the method's state for the checkpoint.
        final : bool, optional
            Write the checkpoint whether due or not.
        postfix : dict, optional
            The progress bar's figures.

        Returns
        -------
        bool
            True when the callback stops the run (then ``stopped`` is set and the
            checkpoint written).
        """
        self.nit = int(it)
        if self._bar is not None:
            self._bar.update(1)
            if postfix:
                self._bar.set_postfix(**postfix)

        def save():
            arrays, meta = state() if state is not None else ({}, {})
            self.save(x, arrays, **meta)

        due = self.checkpoint is not None and (self.nit % self.checkpoint_every == 0 or final)
        if due:
            save()
        self._unsaved = None if due or self.checkpoint is None else save
        if self.callback is not None and self.callback(self.nit, x, f, g):
            self.stopped = True
            if self._unsaved is not None:
                save()
                self._unsaved = None
        return self.stopped

    # --- the result ----------------------------------------------------------------------
    def result(self, x: np.ndarray, success: bool, message: str, *, evaluate: bool = True,
               fun: float | None = None, jac: Any = None, **extra: Any) -> OptimizeResult:
        """The run's ``OptimizeResult`` (fields :data:`RESULT_FIELDS` plus ``extra``).

        With ``evaluate`` the objective at ``x`` gives ``fun``/``jac`` (a cached point costs
        nothing); if it is not finite, ``x`` becomes the best finite iterate seen, with
        ``success=False`` and the cause in the message.  Without, ``fun``/``jac`` are as given.

        Parameters
        ----------
        x : ndarray
            The final iterate.
        success : bool
            Whether the method converged.
        message : str
            The cause of termination.
        evaluate : bool, optional
            Evaluate the objective at ``x`` for ``fun`` and ``jac``.
        fun : float, optional
            The objective at ``x`` (without ``evaluate``).
        jac : ndarray, optional
            Its gradient (without ``evaluate``).
        **extra
            Further fields of the result.

        Returns
        -------
        scipy.optimize.OptimizeResult
            The result.
        """
        obj = self.objective
        if self.stopped:
            success, message = True, "stopped by callback"
        if evaluate:
            fun, jac = obj(x) if np.all(np.isfinite(x)) else (np.inf, None)
            if not np.isfinite(fun) and obj.best_x is not None:
                x, fun, jac = obj.best_x, obj.best_f, obj.best_g
                success = False
                message = (f"stopped at the best finite iterate after {self.nit} iterations: "
                           f"{obj.failure or message}")
            elif not success and obj.failure and obj.failure not in str(message):
                message = f"{message}; cause: non-finite evaluation ({obj.failure})"
        res = OptimizeResult(x=x, fun=np.nan if fun is None else float(fun), jac=jac,
                             success=bool(success), message=str(message), nit=int(self.nit),
                             nfev=obj.nfev, njev=obj.nfev, method=self.label,
                             history=self.history.as_dict(), ledger=obj.ledger.as_dict(),
                             seconds=time.perf_counter() - self.history.t0, sweeps=self.sweeps())
        res.update(extra)
        return res
