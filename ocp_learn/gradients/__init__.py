"""Gradient strategies: what the forward sweep stores for the discrete adjoint."""
from .base import (Sweep, GradientStrategy, StoreAll, StoreStates, get_strategy,
                   register_strategy, STRATEGIES)

__all__ = ["Sweep", "GradientStrategy", "StoreAll", "StoreStates", "get_strategy",
           "register_strategy", "STRATEGIES"]

from .checkpoint import Checkpoint, revolve_cost, revolve_split, repetition_number  # noqa: E402
from .reversible import Reversible  # noqa: E402
from .continuous import ContinuousAdjoint  # noqa: E402

register_strategy("checkpoint", Checkpoint)
register_strategy("reversible", Reversible)
register_strategy("continuous", ContinuousAdjoint)
__all__ += ["Checkpoint", "Reversible", "ContinuousAdjoint", "revolve_cost", "revolve_split",
            "repetition_number"]
