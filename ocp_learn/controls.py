"""Time parameterizations of ``theta(t)`` (MATH A3) and per-step controls.

The dynamics parameters are stored as ``n_nodes`` rows of ``p`` local
parameters, ``nodes.shape == (n_nodes, p)``.  A time parameterization says which
rows, with which weights, make ``theta`` at a stage time:

* :class:`ConstantInTime` -- one row for all ``t``;
* :class:`PiecewiseConstant` -- ``n`` intervals of a control grid that may be
  coarser than the state grid; a whole time step uses the interval holding its
  midpoint (ResNet-like: ``theta_j`` per layer when ``n == nt``);
* :class:`PiecewiseLinear` -- ``n >= 2`` equispaced nodes, linear interpolation
  at every stage time.

Because ``theta(t) = sum_j w_j(t) theta_j`` is linear in the rows, the gradient
with respect to row ``j`` is ``w_j(t)`` times the local gradient.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .arrays import namespace, scalar
from .errors import check_positive_int

__all__ = ["TimeParameterization", "ConstantInTime", "PiecewiseConstant", "PiecewiseLinear",
           "StepControl", "get_time_param", "combine_rows"]


class TimeParameterization:
    """Base: ``n_nodes`` and ``weights(s_mid, s_stage)`` with ``s`` in ``[0, 1]``
    the time scaled to the horizon."""

    n_nodes = 1

    def weights(self, s_mid, s_stage):  # pragma: no cover - contract
        raise NotImplementedError

    def node_times(self):
        """Scaled times (in [0, 1]) the rows refer to, for plotting."""
        raise NotImplementedError


class ConstantInTime(TimeParameterization):
    """``theta(t) = theta_0``."""

    n_nodes = 1

    def weights(self, s_mid, s_stage):
        return ((0, 1.0),)

    def node_times(self):
        return np.array([0.0])

    def __repr__(self):
        return "ConstantInTime()"


class PiecewiseConstant(TimeParameterization):
    """``theta(t) = theta_j`` on the ``j``-th of ``n`` equal control intervals.

    Parameters
    ----------
    n : int
        Number of control intervals (and of parameter vectors), at least 1.
    """

    def __init__(self, n):
        self.n_nodes = check_positive_int("n", n)

    def weights(self, s_mid, s_stage):
        j = min(max(int(np.floor(s_mid * self.n_nodes)), 0), self.n_nodes - 1)
        return ((j, 1.0),)

    def node_times(self):
        return (np.arange(self.n_nodes) + 0.5) / self.n_nodes

    def __repr__(self):
        return f"PiecewiseConstant({self.n_nodes})"


class PiecewiseLinear(TimeParameterization):
    """Linear interpolation between ``n >= 2`` equispaced nodes on ``[0, T]``.

    Parameters
    ----------
    n : int
        Number of nodes (and of parameter vectors), at least 2.
    """

    def __init__(self, n):
        n = check_positive_int("n", n)
        if n < 2:
            raise ValueError(f"n must be at least 2 for a piecewise linear theta(t), got {n}")
        self.n_nodes = n

    def weights(self, s_mid, s_stage):
        x = min(max(s_stage, 0.0), 1.0) * (self.n_nodes - 1)
        j = min(int(np.floor(x)), self.n_nodes - 2)
        w = x - j
        if w == 0.0:
            return ((j, 1.0),)
        return ((j, 1.0 - w), (j + 1, w))

    def node_times(self):
        return np.linspace(0.0, 1.0, self.n_nodes)

    def __repr__(self):
        return f"PiecewiseLinear({self.n_nodes})"


def get_time_param(spec: Any) -> TimeParameterization:
    """``None``/``"constant"`` -> constant; ``("piecewise_constant", n)``,
    ``("piecewise_linear", n)`` or an object -> that parameterization."""
    if spec is None or spec == "constant":
        return ConstantInTime()
    if isinstance(spec, TimeParameterization):
        return spec
    if isinstance(spec, (tuple, list)) and len(spec) == 2:
        kind, n = spec
        if kind == "piecewise_constant":
            return PiecewiseConstant(n)
        if kind == "piecewise_linear":
            return PiecewiseLinear(n)
    raise ValueError("time_param must be 'constant', ('piecewise_constant', n), "
                     f"('piecewise_linear', n) or a TimeParameterization, got {spec!r}")


def combine_rows(rows: Any, weights: Any) -> Any:
    """``sum_j w_j rows[j]`` for the ``(j, w_j)`` pairs of a time parameterization
    (the row itself when a single weight is 1: a view, no copy).  Works on any
    objects with ``+`` and scalar ``*`` (array rows, CasADi symbols); the weights enter
    as :func:`ocp_learn.arrays.scalar` hands them to the rows' namespace."""
    first = rows[weights[0][0]]
    if len(weights) == 1 and weights[0][1] == 1.0:
        return first
    xp = namespace(first)
    out = scalar(weights[0][1], xp) * first
    for j, wj in weights[1:]:
        out = out + scalar(wj, xp) * rows[j]
    return out


class _Rows:
    """Row ``j`` of a 2-D array as ``rows[j]`` (``a[j, ...]``: the array API indexes
    every axis)."""

    __slots__ = ("a",)

    def __init__(self, a):
        self.a = a

    def __getitem__(self, j):
        return self.a[j, ...]


class StepControl:
    """Parameters of one time step ``[t, t + h]`` at its stage fractions ``c``.

    Parameters
    ----------
    tp : TimeParameterization
    nodes : array, shape (n_nodes, p)
        The parameter rows, in the namespace of the states (:mod:`ocp_learn.arrays`).
    t, h, t0, T : float
        Step start, step size, horizon start and length.
    grad : ndarray, shape (n_nodes, p), optional
        Accumulator for parameter gradients.
    dnodes : ndarray, shape (n_nodes, p), optional
        Parameter tangent (for the tangent sweep).
    """

    __slots__ = ("tp", "nodes", "grad", "dnodes", "_rows", "_drows", "_s_mid", "_s0", "_ds", "_w")

    def __init__(self, tp: TimeParameterization, nodes: Any, t: float, h: float, t0: float,
                 T: float, grad: Any = None, dnodes: Any = None) -> None:
        self.tp, self.nodes, self.grad, self.dnodes = tp, nodes, grad, dnodes
        self._rows = _Rows(nodes)
        self._drows = None if dnodes is None else _Rows(dnodes)
        self._s0 = (t - t0) / T
        self._ds = h / T
        self._s_mid = self._s0 + 0.5 * self._ds
        self._w = {}

    def _weights(self, c):
        w = self._w.get(c)
        if w is None:
            w = self._w[c] = self.tp.weights(self._s_mid, self._s0 + c * self._ds)
        return w

    def theta(self, c: float) -> Any:
        """``theta`` at the stage time ``t + c h``."""
        return combine_rows(self._rows, self._weights(c))

    def dtheta(self, c: float) -> Any:
        """The parameter tangent at ``t + c h`` (``None`` without ``dnodes``)."""
        return None if self._drows is None else combine_rows(self._drows, self._weights(c))

    def add_grad(self, c: float, g: Any) -> None:
        """Add the local gradient ``g`` at ``t + c h`` to the rows it came from."""
        for j, wj in self._weights(c):
            if wj == 1.0:
                self.grad[j, ...] += g
            else:
                self.grad[j, ...] += scalar(wj, namespace(g)) * g


class FixedControl:
    """A control with the same local ``theta`` at every stage; the gradients of all stages
    are summed in ``grad`` (for checks of a single step, e.g. ``verify``)."""

    def __init__(self, theta: Any, dtheta: Any = None) -> None:
        self._theta, self._dtheta = theta, dtheta
        self.grad = namespace(theta).zeros_like(theta)

    def theta(self, c: float) -> Any:
        return self._theta

    def dtheta(self, c: float) -> Any:
        return self._dtheta

    def add_grad(self, c: float, g: Any) -> None:
        self.grad += g
