"""Models: vector fields with hand-derived jvp and vjp (see :mod:`ocp_learn.models.base`).

Models with more than one way to compute hold a backend object chosen when they are
built (:mod:`ocp_learn.kernels.potential_backend`, :mod:`ocp_learn.kernels.mlp_backend`).
"""
from .base import Model
from .hamiltonian import HamiltonianNet
from .linear import LinearModel
from .mlp import SingleLayerNet
from .potential import PotentialDerivatives, PotentialResNet
from .potential_flow import PotentialFlowField

__all__ = ["Model", "LinearModel", "SingleLayerNet", "HamiltonianNet", "PotentialResNet",
           "PotentialDerivatives", "PotentialFlowField"]
