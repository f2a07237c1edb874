"""Gradient strategies: what the forward sweep stores for the discrete adjoint.

Every strategy follows the :class:`Strategy` contract; :func:`get_strategy` builds one
from a name and :func:`register_strategy` adds a name.
"""
from .base import (STRATEGIES, GradientStrategy, StoreAll, StoreStates, Strategy, Sweep,
                   get_strategy, register_strategy)
from .checkpoint import Checkpoint, repetition_number, revolve_cost, revolve_split
from .continuous import ContinuousAdjoint
from .reversible import Reversible

register_strategy("checkpoint", Checkpoint)
register_strategy("reversible", Reversible)
register_strategy("continuous", ContinuousAdjoint)

__all__ = ["Sweep", "Strategy", "GradientStrategy", "StoreAll", "StoreStates", "Checkpoint",
           "Reversible", "ContinuousAdjoint", "get_strategy", "register_strategy", "STRATEGIES",
           "revolve_cost", "revolve_split", "repetition_number"]
