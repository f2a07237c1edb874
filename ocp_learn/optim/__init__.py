"""Optimizers on the exact discrete gradient, returning ``OptimizeResult``.

* :func:`lbfgs` -- scipy's L-BFGS-B (full batch);
* :func:`gauss_newton` -- generalized Gauss--Newton with inexact CG (MATH G1);
* :func:`adam` -- Adam with seeded mini-batches and step-size schedules;
* :func:`lbfgs_memory` -- L-BFGS (two-loop recursion, scipy's Wolfe line search) that starts
  from given correction pairs and returns them (:class:`LBFGSMemory`);
* :func:`lbfgs_resampled` -- L-BFGS on samples redrawn every few iterations, in stages.

All can save and resume their state (:mod:`.checkpoint`).
"""
from .lbfgs import lbfgs
from .gauss_newton import gauss_newton, conjugate_gradient
from .adam import adam
from .history import History
from .checkpoint import save_checkpoint, load_checkpoint
from .resampled import lbfgs_resampled
from .quasi_newton import LBFGSMemory, lbfgs_memory

__all__ = ["lbfgs", "gauss_newton", "conjugate_gradient", "adam", "History", "save_checkpoint",
           "load_checkpoint", "lbfgs_resampled", "lbfgs_memory", "LBFGSMemory"]
