"""Data-parallel training over MPI ranks (serial by default, no MPI needed).

Each rank holds a contiguous shard of the samples (agents); ``theta`` is
broadcast from rank 0; the objective, its exact gradient and Gauss--Newton
products -- sums over samples (MATH B1, B2, G1) -- are gathered, summed in
rank order and broadcast, so results are bitwise reproducible and equal to
the single-process ones up to rounding.

>>> from ocp_learn.distributed import DistributedProblem, auto_comm
>>> dist = DistributedProblem(problem, auto_comm())          # doctest: +SKIP
>>> res = dist.minimize("lbfgs", maxiter=100, progress=dist.is_root)  # doctest: +SKIP

Optimizers that run other optimizers (:func:`~ocp_learn.optim.lbfgs_resampled`) take a
:class:`Parallel` built from the communicator: ``parallel=Parallel(auto_comm())``.

Run with ``mpiexec -n 4 python script.py`` (or ``srun``); without a launcher
:func:`auto_comm` returns :class:`SerialComm` and nothing imports mpi4py.
"""
from .comm import (SerialComm, auto_comm, bind_device, is_root, launch_size, local_rank,
                   mpi_launched)
from .parallel import Parallel, minimize
from .problem import DistributedGaussNewtonOperator, DistributedProblem
from .reduce import ordered_sum
from .shards import Shard, local_rows, partition, shard_problem, shard_rng

__all__ = ["SerialComm", "auto_comm", "bind_device", "local_rank", "is_root", "launch_size",
           "mpi_launched",
           "DistributedProblem", "DistributedGaussNewtonOperator", "ordered_sum", "Shard",
           "local_rows", "partition", "shard_problem", "shard_rng", "distribute", "minimize",
           "Parallel"]


def distribute(problem, comm=None, **kwargs):
    """``problem`` itself on one process, else a :class:`DistributedProblem`.

    The helper for command-line tools: ``prob = distribute(prob)`` is a no-op
    in a serial run and shards the samples under ``mpiexec -n K``.

    Parameters
    ----------
    problem : ShardableProblem
        The problem on all samples.
    comm : mpi4py communicator or SerialComm, optional
        The ranks to share the samples (default: :func:`auto_comm`).
    **kwargs
        Further arguments of :class:`DistributedProblem`.

    Returns
    -------
    Problem
        ``problem`` on one rank, else its :class:`DistributedProblem`.
    """
    comm = auto_comm() if comm is None else comm
    if comm.Get_size() == 1 and kwargs.get("virtual_ranks", 1) == 1:
        return problem
    return DistributedProblem(problem, comm, **kwargs)
