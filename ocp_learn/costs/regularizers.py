"""Regularizers of the parameters (MATH C1: ``regularization(theta)``).

Contract: ``value_grad(nodes) -> (R, dR/dnodes)`` and ``hvp(nodes, v)`` on the
dynamics parameters ``nodes`` of shape ``(n_nodes, p)``; they are quadratic, so
the Gauss--Newton method uses their exact Hessian.
"""
from __future__ import annotations

import numpy as np

from ..errors import check_positive_float

__all__ = ["Tikhonov", "TimeSmoothness"]


class Tikhonov:
    """``R = alpha/2 * (1/n_nodes) sum_j |theta_j|^2`` (weight decay, a mean over nodes).

    Parameters
    ----------
    alpha : float
        The weight, ``>= 0``.
    """

    def __init__(self, alpha):
        self.alpha = check_positive_float("alpha", alpha, allow_zero=True)

    def value_grad(self, nodes):
        s = self.alpha / nodes.shape[0]
        return 0.5 * s * float(np.sum(nodes * nodes)), s * nodes

    def hvp(self, nodes, v):
        return (self.alpha / nodes.shape[0]) * v


class TimeSmoothness:
    """``R = alpha/2 sum_j |theta_{j+1} - theta_j|^2 / dt``, ``dt = 1/(n_nodes-1)``.

    A discretization of ``alpha/2 int |theta'(s)|^2 ds`` on scaled time ``s in [0,1]``.

    Parameters
    ----------
    alpha : float
        The weight, ``>= 0``.
    """

    def __init__(self, alpha):
        self.alpha = check_positive_float("alpha", alpha, allow_zero=True)

    def _dtd(self, v):
        n = v.shape[0]
        if n < 2:
            return np.zeros_like(v)
        dv = np.diff(v, axis=0) * (n - 1)
        g = np.zeros_like(v)
        g[:-1] -= dv
        g[1:] += dv
        return self.alpha * g

    def value_grad(self, nodes):
        n = nodes.shape[0]
        if n < 2:
            return 0.0, np.zeros_like(nodes)
        dv = np.diff(nodes, axis=0)
        return 0.5 * self.alpha * (n - 1) * float(np.sum(dv * dv)), self._dtd(nodes)

    def hvp(self, nodes, v):
        return self._dtd(v)
