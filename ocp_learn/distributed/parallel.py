"""Data parallelism handed to the optimizers from above (:class:`ocp_learn.optim.Parallel`)."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
from scipy.optimize import OptimizeResult

from ..protocols import Problem
from .comm import auto_comm, check_comm
from .problem import DistributedProblem

__all__ = ["Parallel", "minimize"]


def minimize(problem: Problem, optimizer: Callable[..., OptimizeResult] | str, *args: Any,
             comm: Any = None, **kwargs: Any) -> OptimizeResult:
    """Run ``optimizer(problem, *args, **kwargs)``, data-parallel under MPI.

    Serial runs call the optimizer directly.  Under ``mpiexec -n K`` every rank
    calls this with the same (identically seeded) ``problem``; rank 0 drives the
    optimizer on a :class:`DistributedProblem` over the ranks' shards and every
    rank returns rank 0's result.  Progress bars are shown on rank 0 only.

    Parameters
    ----------
    problem : Problem
        The problem on all samples, the same on every rank.
    optimizer : callable or str
        An optimizer of :mod:`ocp_learn.optim` or its name (``"lbfgs"``, ...).
    *args
        Positional arguments of the optimizer after the problem (``theta0``).
    comm : mpi4py communicator or SerialComm, optional
        The ranks (default: :func:`~ocp_learn.distributed.auto_comm`).
    **kwargs
        Keyword arguments of the optimizer.

    Returns
    -------
    scipy.optimize.OptimizeResult
        The optimizer's result, the same on every rank.
    """
    comm = check_comm(auto_comm() if comm is None else comm)
    if comm.Get_size() == 1:
        from ..optim import get_optimizer
        opt = optimizer if callable(optimizer) else get_optimizer(optimizer)
        return opt(problem, *args, **kwargs)
    dist = DistributedProblem(problem, comm)
    kwargs["progress"] = bool(kwargs.get("progress", False)) and dist.is_root
    return dist.minimize(optimizer, *args, **kwargs)


class Parallel:
    """The optimizers' :class:`~ocp_learn.optim.parallel.Parallel` contract over a
    communicator: optimizer runs and validation objectives sharded over its ranks.

    Parameters
    ----------
    comm : mpi4py communicator or SerialComm, optional
        :func:`~ocp_learn.distributed.auto_comm` by default (``COMM_WORLD`` under
        ``mpiexec``/``srun``, one process otherwise).

    Examples
    --------
    >>> from ocp_learn.distributed import Parallel, auto_comm
    >>> res = lbfgs_resampled(problem, draw, parallel=Parallel(auto_comm()))  # doctest: +SKIP
    """

    def __init__(self, comm: Any = None) -> None:
        self.comm = check_comm(auto_comm() if comm is None else comm)

    @property
    def is_writer(self) -> bool:
        """True on rank 0, the one process that writes checkpoints and files."""
        return self.comm.Get_rank() == 0

    def minimize(self, problem: Problem, optimizer: Callable[..., OptimizeResult],
                 theta0: np.ndarray, **kwargs: Any) -> OptimizeResult:
        """:func:`minimize` on this communicator (every rank receives rank 0's result).

        Parameters
        ----------
        problem : Problem
            The problem on all samples.
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
        return minimize(problem, optimizer, theta0, comm=self.comm, **kwargs)

    def objective_on(self, problem: Problem, theta: np.ndarray, x: np.ndarray) -> float:
        """``J(theta)`` on the samples ``x`` (collective).

        Each rank evaluates its shard of the rows; every rank receives the same
        value, equal to the serial one up to rounding.

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
            The objective.
        """
        if self.comm.Get_size() == 1:
            return float(problem.evaluate(theta, gradient=False, x=x).value)
        return float(DistributedProblem(problem, self.comm).evaluate(theta, gradient=False,
                                                                     x=x).value)

    def __repr__(self) -> str:
        return f"Parallel({self.comm!r})"
