"""Models: vector fields with hand-derived jvp and vjp (see :mod:`.base`)."""
from .base import Model
from .linear import LinearModel
from .mlp import SingleLayerNet

__all__ = ["Model", "LinearModel", "SingleLayerNet"]
