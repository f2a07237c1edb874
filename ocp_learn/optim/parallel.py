"""How an optimizer that runs other optimizers is told to run them in parallel.

:func:`~ocp_learn.optim.lbfgs_resampled` runs an L-BFGS method on every new draw of the
samples and selects its iterates on a validation sample.  Whether those runs are spread over
MPI ranks is decided by the caller, who passes an object of the :class:`Parallel` contract
(:class:`ocp_learn.distributed.Parallel` over a communicator); ``None`` means
:data:`SERIAL`, one process.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np
from scipy.optimize import OptimizeResult

from ..protocols import Problem

__all__ = ["Parallel", "Serial", "SERIAL"]


@runtime_checkable
class Parallel(Protocol):
    """The operations a driver needs to run data-parallel.

    1. ``is_writer`` -- whether this process writes checkpoints and files (one per run).
    2. ``minimize(problem, optimizer, theta0, **kwargs)`` -- ``optimizer(problem, theta0,
       **kwargs)`` on the samples of ``problem`` spread over the processes; every process
       calls it with the same problem and arguments and receives the same
       :class:`~scipy.optimize.OptimizeResult`.
    3. ``objective_on(problem, theta, x)`` -- ``J(theta)`` on the samples ``x`` in place of
       the problem's own (``problem.evaluate(theta, gradient=False, x=x)``), collectively:
       every process receives the same float.
    """

    is_writer: bool

    def minimize(self, problem: Problem, optimizer: Callable[..., OptimizeResult],
                 theta0: np.ndarray, **kwargs: Any) -> OptimizeResult: ...

    def objective_on(self, problem: Problem, theta: np.ndarray, x: np.ndarray) -> float: ...


class Serial:
    """:class:`Parallel` on one process: the optimizer and the objective called directly."""

    is_writer = True

    def minimize(self, problem: Problem, optimizer: Callable[..., OptimizeResult],
                 theta0: np.ndarray, **kwargs: Any) -> OptimizeResult:
        """``optimizer(problem, theta0, **kwargs)``.

        Parameters
        ----------
        problem : Problem
            The problem.
        optimizer : callable
            An optimizer of :mod:`ocp_learn.optim`.
        theta0 : ndarray
            The starting point.
        **kwargs
            Keyword arguments of the optimizer.

        Returns
        -------
        scipy.optimize.OptimizeResult
            The optimizer's result.
        """
        return optimizer(problem, theta0, **kwargs)

    def objective_on(self, problem: Problem, theta: np.ndarray, x: np.ndarray) -> float:
        """``problem.evaluate(theta, gradient=False, x=x).value``.

        Parameters
        ----------
        problem : Problem
            The problem.
        theta : ndarray
            The parameters.
        x : ndarray
            The samples, one per row.

        Returns
        -------
        float
            The objective on ``x``.
        """
        return float(problem.evaluate(theta, gradient=False, x=x).value)

    def __repr__(self) -> str:
        return "Serial()"


#: The one-process :class:`Parallel` (the default of the optimizers that take one).
SERIAL = Serial()
