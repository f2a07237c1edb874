"""Models: vector fields with hand-derived jvp and vjp (see :mod:`ocp_learn.models.base`)."""
from .base import Model
from .linear import LinearModel
from .mlp import SingleLayerNet
from .hamiltonian import HamiltonianNet

__all__ = ["Model", "LinearModel", "SingleLayerNet", "HamiltonianNet"]

from .potential import PotentialResNet, PotentialDerivatives  # noqa: E402

__all__ += ["PotentialResNet", "PotentialDerivatives"]
