"""Single-hidden-layer network (MATH A1), the neural-ODE right-hand side."""
from __future__ import annotations

import numpy as np

from ..errors import check_choice, check_positive_float, check_positive_int
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
    backend : {"numpy", "numba"}
        numpy (BLAS, the reference) or fused per-sample Numba kernels
        (:mod:`ocp_learn.kernels.mlp_numba`, same numbers to rounding).

    Notes
    -----
    With ``a = K1 z + b1`` and ``s = tanh(a)`` (rows are samples):

    * tangent: ``da = K1 dz + dK1 z + db1``, ``df = K2 ((1 - s^2) da) + dK2 s + db2``;
    * adjoint: ``sbar = K2^T fbar``, ``abar = (1 - s^2) sbar``,
      ``K2bar = fbar s^T``, ``b2bar = fbar``, ``K1bar = abar z^T``,
      ``b1bar = abar``, ``zbar = K1^T abar`` (parameter terms summed over samples).
    """

    def __init__(self, dim, width=16, init_scale=0.1, activation="tanh", backend="numpy"):
        self.dim = self.state_dim = check_positive_int("dim", dim)
        self.width = check_positive_int("width", width)
        check_choice("activation", activation, {"tanh"})
        self.init_scale = check_positive_float("init_scale", init_scale, allow_zero=True)
        self.backend = check_choice("backend", backend, {"numpy", "numba"})
        m, d = self.width, self.dim
        self.layout = ParamLayout([("K1", (m, d)), ("b1", (m,)), ("K2", (d, m)), ("b2", (d,))])

    def init_params(self, rng=None):
        rng = self._rng(rng)
        m, d = self.width, self.dim
        p = {"K1": rng.standard_normal((m, d)) / np.sqrt(d),
             "b1": 0.1 * rng.standard_normal(m),
             "K2": self.init_scale * rng.standard_normal((d, m)) / np.sqrt(m),
             "b2": np.zeros(d)}
        return self.layout.pack(p)

    def _hidden(self, z, P):
        return np.tanh(z @ P["K1"].T + P["b1"])

    def _kernels(self):
        if self.backend != "numba":
            return None
        from ..kernels import mlp_numba
        return mlp_numba

    def rhs(self, z, t, theta):
        P = self.unpack(theta)
        if self._kernels():
            return self._kernels().rhs(P, z)
        return self._hidden(z, P) @ P["K2"].T + P["b2"]

    def jvp(self, z, t, theta, dz, dtheta):
        P = self.unpack(theta)
        if self._kernels():
            return self._kernels().jvp(P, None if dtheta is None else self.unpack(dtheta), z, dz)
        s = self._hidden(z, P)
        da = 0.0
        if dz is not None:
            da = dz @ P["K1"].T
        out = 0.0
        if dtheta is not None:
            D = self.unpack(dtheta)
            da = da + z @ D["K1"].T + D["b1"]
            out = s @ D["K2"].T + D["b2"]
        return ((1.0 - s * s) * da) @ P["K2"].T + out

    def vjp(self, z, t, theta, fbar):
        P = self.unpack(theta)
        if self._kernels():
            zbar, B = self._kernels().vjp(P, z, fbar)
            return zbar, self.layout.pack(B)
        s = self._hidden(z, P)
        abar = (fbar @ P["K2"]) * (1.0 - s * s)
        g = np.empty(self.n_params)
        G = self.unpack(g)
        G["K2"][...] = fbar.T @ s
        G["b2"][...] = fbar.sum(axis=0)
        G["K1"][...] = abar.T @ z
        G["b1"][...] = abar.sum(axis=0)
        return abar @ P["K1"], g
