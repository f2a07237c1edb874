"""Optimizers on the exact discrete gradient, returning ``OptimizeResult``."""
from .lbfgs import lbfgs
from .history import History

__all__ = ["lbfgs", "History"]
