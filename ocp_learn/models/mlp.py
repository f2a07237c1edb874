"""Single-hidden-layer network (MATH A1), the neural-ODE right-hand side."""
from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from ..errors import check_choice, check_positive_float, check_positive_int
from ..kernels.mlp_backend import MLPBackend, mlp_backend
from ..kernels.potential_backend import DeviceBackend
from ..params import ParamLayout
from .base import Model

__all__ = ["SingleLayerNet"]


class SingleLayerNet(Model):
    r"""``f(z; theta) = K2 tanh(K1 z + b1) + b2`` (MATH A1).

    Parameters
    ----------
    dim : int
        State dimension ``d`` (after augmentation).
    width : int
        Hidden width ``m``.
    init_scale : float
        Scale of the output weights ``K2`` at initialization (small values
        start the flow near the identity map).
    activation : {"tanh"}
        The activation ``sigma``.
    backend : {"numpy", "numba", "cupy"} or MLPBackend
        numpy (BLAS, the reference: :mod:`ocp_learn.kernels.mlp_numpy`), Numba kernels
        over tiles of samples (:mod:`ocp_learn.kernels.mlp_numba`, same numbers to
        rounding), the reference on the GPU (:mod:`ocp_learn.kernels.mlp_array`: the
        OCP then keeps its whole sweep on the device), or a name registered with
        :func:`~ocp_learn.kernels.mlp_backend.register_mlp_backend`, or a backend object;
        resolved to ``self.backend`` once, here.

    Notes
    -----
    With ``a = K1 z + b1`` and ``s = tanh(a)`` (rows are samples):

    * tangent: ``da = K1 dz + dK1 z + db1``, ``df = K2 ((1 - s^2) da) + dK2 s + db2``;
    * adjoint: ``sbar = K2^T fbar``, ``abar = (1 - s^2) sbar``,
      ``K2bar = fbar s^T``, ``b2bar = fbar``, ``K1bar = abar z^T``,
      ``b1bar = abar``, ``zbar = K1^T abar`` (parameter terms summed over samples).
    """

    def __init__(self, dim: int, width: int = 16, init_scale: float = 0.1,
                 activation: str = "tanh", backend: str | MLPBackend = "numpy") -> None:
        self.dim = self.state_dim = check_positive_int("dim", dim)
        self.width = check_positive_int("width", width)
        check_choice("activation", activation, {"tanh"})
        self.init_scale = check_positive_float("init_scale", init_scale, allow_zero=True)
        if isinstance(backend, str):
            backend = mlp_backend(backend)
        elif not isinstance(backend, MLPBackend):
            raise TypeError(f"backend must be a backend name or an MLPBackend, got "
                            f"{type(backend).__name__}")
        self.backend: MLPBackend = backend
        m, d = self.width, self.dim
        self.layout = ParamLayout([("K1", (m, d)), ("b1", (m,)), ("K2", (d, m)), ("b2", (d,))])

    @property
    def array_namespace(self) -> ModuleType:
        """The backend's device namespace (CuPy for ``"cupy"``; a
        :class:`~ocp_learn.kernels.potential_backend.DeviceBackend`), else NumPy."""
        return self.backend.namespace if isinstance(self.backend, DeviceBackend) else np

    def init_params(self, rng: Any = None) -> np.ndarray:
        rng = self._rng(rng)
        m, d = self.width, self.dim
        p = {"K1": rng.standard_normal((m, d)) / np.sqrt(d),
             "b1": 0.1 * rng.standard_normal(m),
             "K2": self.init_scale * rng.standard_normal((d, m)) / np.sqrt(m),
             "b2": np.zeros(d)}
        return self.layout.pack(p)

    def rhs(self, z: np.ndarray, t: Any, theta: np.ndarray) -> np.ndarray:
        return self.backend.rhs(self.unpack(theta), z)

    def jvp(self, z: np.ndarray, t: Any, theta: np.ndarray, dz: np.ndarray | None,
            dtheta: np.ndarray | None) -> np.ndarray:
        T = None if dtheta is None else self.unpack(dtheta)
        return self.backend.jvp(self.unpack(theta), T, z, dz)

    def vjp(self, z: np.ndarray, t: Any, theta: np.ndarray,
            fbar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        zbar, B = self.backend.vjp(self.unpack(theta), z, fbar)
        return zbar, self.layout.pack(B)
