"""The backend interface of the single-layer network ``f(z) = K2 tanh(K1 z + b1) + b2``
(MATH A1) and the registry of its implementations.

:class:`~ocp_learn.models.mlp.SingleLayerNet` resolves its ``backend`` name to one of these
objects when it is built and hands it the unpacked parameters ``P`` (a dict with ``K1``,
``b1``, ``K2``, ``b2``) and the states ``z`` (n, d).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .registry import BackendRegistry

__all__ = ["MLPBackend", "register_mlp_backend", "mlp_backend", "mlp_backends"]


@runtime_checkable
class MLPBackend(Protocol):
    """How a backend computes the single-layer network and its derivatives.

    1. ``name`` -- the registered name.
    2. ``rhs(P, z)`` -> ``f(z)``, shape ``(n, d)``.
    3. ``jvp(P, T, z, dz)`` -> the tangent ``df`` along the parameter tangents ``T`` (a dict
       like ``P``) and ``dz``; either may be ``None`` (zero).
    4. ``vjp(P, z, fbar)`` -> ``(zbar (n, d), B)``, ``B`` a dict of parameter cotangents
       summed over samples.
    """

    name: str

    def rhs(self, P: dict, z: np.ndarray) -> np.ndarray: ...

    def jvp(self, P: dict, T: dict | None, z: np.ndarray, dz: np.ndarray | None) -> np.ndarray: ...

    def vjp(self, P: dict, z: np.ndarray, fbar: np.ndarray) -> tuple[np.ndarray, dict]: ...


#: the network's backends: name -> factory ("module:attribute" is imported on first use)
REGISTRY = BackendRegistry("SingleLayerNet", MLPBackend, {
    "numpy": "ocp_learn.kernels.mlp_numpy:NumpyMLPBackend",
    "numba": "ocp_learn.kernels.mlp_numba:NumbaMLPBackend",
    "cupy": "ocp_learn.kernels.mlp_array:ArrayMLPBackend",
})


def register_mlp_backend(name: str, factory: Callable[..., MLPBackend] | str) -> None:
    """Make ``SingleLayerNet(backend=name)`` build its backend with ``factory()``
    (a callable or ``"package.module:attribute"``)."""
    REGISTRY.register(name, factory)


def mlp_backends() -> list[str]:
    """The registered backend names."""
    return REGISTRY.names()


def mlp_backend(name: str, **options: Any) -> MLPBackend:
    """The backend registered as ``name``."""
    return REGISTRY.create(name, **options)
