"""Optimizers on the exact discrete gradient, returning ``OptimizeResult``.

* :func:`lbfgs` -- scipy's L-BFGS-B (full batch);
* :func:`gauss_newton` -- generalized Gauss--Newton with inexact CG (MATH G1);
* :func:`adam` -- Adam with seeded mini-batches and step-size schedules;
* :func:`lbfgs_memory` -- L-BFGS (two-loop recursion, scipy's Wolfe line search) that starts
  from given correction pairs and returns them (:class:`LBFGSMemory`);
* :func:`lbfgs_resampled` -- L-BFGS on samples redrawn every few iterations, in stages.

Each is an update rule on one :class:`~.driver.Driver` (start, resume, progress, callback,
checkpoints, finite iterate, result); :func:`get_optimizer` finds them by name.
"""
from __future__ import annotations

from typing import Callable

from .adam import adam
from .checkpoint import load_checkpoint, save_checkpoint
from .driver import RESULT_FIELDS, Driver
from .gauss_newton import conjugate_gradient, gauss_newton
from .history import History
from .lbfgs import lbfgs
from .parallel import SERIAL, Parallel, Serial
from .quasi_newton import LBFGSMemory, lbfgs_memory
from .resampled import lbfgs_resampled

__all__ = ["lbfgs", "gauss_newton", "conjugate_gradient", "adam", "History", "save_checkpoint",
           "load_checkpoint", "lbfgs_resampled", "lbfgs_memory", "LBFGSMemory", "Driver",
           "RESULT_FIELDS", "Parallel", "Serial", "SERIAL", "OPTIMIZERS", "get_optimizer"]

#: The optimizers by name.
OPTIMIZERS: dict[str, Callable] = {"lbfgs": lbfgs, "gauss_newton": gauss_newton, "adam": adam,
                                   "lbfgs_memory": lbfgs_memory,
                                   "lbfgs_resampled": lbfgs_resampled}


def get_optimizer(name: str) -> Callable:
    """The optimizer function called ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`OPTIMIZERS`: ``"lbfgs"``, ``"gauss_newton"``, ``"adam"``, ``"lbfgs_memory"`` or
        ``"lbfgs_resampled"``.

    Returns
    -------
    callable
        The optimizer, ``optimizer(problem, theta0, **options) -> OptimizeResult``.

    Raises
    ------
    ValueError
        For an unknown name; the message lists the known ones.
    """
    try:
        return OPTIMIZERS[name]
    except (KeyError, TypeError):
        raise ValueError(f"optimizer must be one of {', '.join(repr(k) for k in OPTIMIZERS)}, "
                         f"got {name!r}") from None
