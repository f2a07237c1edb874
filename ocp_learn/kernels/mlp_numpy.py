"""The ``numpy`` backend of the single-layer network ``f(z) = K2 tanh(K1 z + b1) + b2``
(MATH A1): the reference, matrix products by BLAS (rows are samples).

With ``a = K1 z + b1`` and ``s = tanh(a)``:

* tangent: ``da = K1 dz + dK1 z + db1``, ``df = K2 ((1 - s^2) da) + dK2 s + db2``;
* adjoint: ``sbar = K2^T fbar``, ``abar = (1 - s^2) sbar``,
  ``K2bar = fbar s^T``, ``b2bar = fbar``, ``K1bar = abar z^T``,
  ``b1bar = abar``, ``zbar = K1^T abar`` (parameter terms summed over samples).

The program calls only the array API on its inputs, so it runs in the namespace of ``z``
(NumPy, CuPy, ``array_api_strict``) unchanged: :class:`~.mlp_array.ArrayMLPBackend` is
this program on a device.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..arrays import namespace

__all__ = ["NumpyMLPBackend"]


class NumpyMLPBackend:
    """The reference backend of :class:`~ocp_learn.models.mlp.SingleLayerNet`."""

    name = "numpy"

    def __init__(self, **options: Any) -> None:
        pass

    @staticmethod
    def _hidden(z, P):
        return namespace(z).tanh(z @ P["K1"].T + P["b1"])

    def rhs(self, P: dict, z: np.ndarray) -> np.ndarray:
        return self._hidden(z, P) @ P["K2"].T + P["b2"]

    def jvp(self, P: dict, T: dict | None, z: np.ndarray, dz: np.ndarray | None) -> np.ndarray:
        s = self._hidden(z, P)
        da = 0.0
        if dz is not None:
            da = dz @ P["K1"].T
        out = 0.0
        if T is not None:
            da = da + z @ T["K1"].T + T["b1"]
            out = s @ T["K2"].T + T["b2"]
        return ((1.0 - s * s) * da) @ P["K2"].T + out

    def vjp(self, P: dict, z: np.ndarray, fbar: np.ndarray) -> tuple[np.ndarray, dict]:
        s = self._hidden(z, P)
        abar = (fbar @ P["K2"]) * (1.0 - s * s)
        xp = namespace(z)
        B = {"K1": abar.T @ z, "b1": xp.sum(abar, axis=0), "K2": fbar.T @ s,
             "b2": xp.sum(fbar, axis=0)}
        return abar @ P["K1"], B
