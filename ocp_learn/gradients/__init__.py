"""Gradient strategies: what the forward sweep stores for the discrete adjoint."""
from .base import (Sweep, GradientStrategy, StoreAll, StoreStates, get_strategy,
                   register_strategy, STRATEGIES)

__all__ = ["Sweep", "GradientStrategy", "StoreAll", "StoreStates", "get_strategy",
           "register_strategy", "STRATEGIES"]
