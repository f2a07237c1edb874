"""Derivative and integrator checks, offered to users as a feature.

* :func:`taylor_test` -- the first-order Taylor remainder
  ``E1(eps) = |F(x + eps v) - F(x) - eps dF(x)[v]|`` must fall as ``O(eps^2)``;
  a wrong derivative leaves it at ``O(eps)``.
* :func:`dot_product_test` -- a tangent map ``J`` (jvp) and an adjoint map
  ``J^T`` (vjp) must satisfy ``<J v, w> = <v, J^T w>`` to rounding.
* :func:`convergence_order` -- the observed order of an explicit Runge--Kutta
  tableau on ``dy/dt = A y`` against the exact ``expm(t A) y0``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import check_positive_int, check_positive_float, check_rng

__all__ = ["TaylorResult", "taylor_test", "dot_product_test", "convergence_order",
           "check_gradient"]


@dataclass
class TaylorResult:
    """Outcome of :func:`taylor_test`.

    The parameters are kept as attributes of the same names.

    Parameters
    ----------
    eps : ndarray
        The step sizes ``eps0 / 2**k``.
    e0, e1 : ndarray
        Zeroth- and first-order remainders.
    orders : ndarray
        ``log2(e1[k] / e1[k+1])`` for consecutive halvings.
    order : float
        The observed order: median of the orders on the halvings not spoiled by
        rounding (``e1`` above ``floor``).  ``nan`` if fewer than ``min_halvings``
        usable halvings remain.
    passed : bool
        ``order >= min_order``.
    usable : int
        Number of halvings above the rounding floor.
    """

    eps: np.ndarray
    e0: np.ndarray
    e1: np.ndarray
    orders: np.ndarray
    order: float
    passed: bool
    usable: int

    def __str__(self):
        rows = ["   eps          E0           E1      order"]
        for k, (e, a, b) in enumerate(zip(self.eps, self.e0, self.e1)):
            o = f"{self.orders[k - 1]:6.2f}" if k else "     -"
            rows.append(f"{e:9.2e}  {a:11.3e}  {b:11.3e}  {o}")
        rows.append(f"observed order {self.order:.3f} ({'passed' if self.passed else 'FAILED'})")
        return "\n".join(rows)


def _flat(a):
    return np.concatenate([np.ravel(np.asarray(p, dtype=np.float64)) for p in a]) \
        if isinstance(a, (tuple, list)) else np.ravel(np.asarray(a, dtype=np.float64))


def taylor_test(fun, x, v, directional, *, eps0=1e-1, halvings=8, min_order=1.9,
                min_halvings=4, floor_rel=1e-10):
    """Observed order of the first-order Taylor remainder.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> array`` (scalar or any shape).
    x, v : ndarray
        Point and direction (same shape).
    directional : array_like
        The derivative to test applied to ``v``: ``dF(x)[v]`` (a jvp), or for a
        scalar ``fun`` with gradient ``g``, ``g . v``.
    eps0 : float
        Largest step; the steps are ``eps0 / 2**k``, ``k = 0..halvings``.
    halvings : int
        Number of halvings of the step.
    min_order : float
        Order required to pass (2 is ideal; 1.9 by default).
    min_halvings : int
        Number of consecutive halvings that must be above the rounding floor.
    floor_rel : float
        ``e1`` below ``floor_rel * max(1, |F(x)|)`` counts as rounding noise.

    Returns
    -------
    TaylorResult
        The remainders and the observed order.
    """
    check_positive_int("halvings", halvings)
    check_positive_float("eps0", eps0)
    x = np.asarray(x, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    if x.shape != v.shape:
        raise ValueError(f"v must have the shape of x {x.shape}, got {v.shape}")
    f0 = _flat(fun(x))
    d = _flat(directional)
    if d.shape != f0.shape:
        raise ValueError(f"directional must have the shape of fun(x) {f0.shape}, got {d.shape}")
    eps = eps0 / 2.0 ** np.arange(halvings + 1)
    e0 = np.empty_like(eps)
    e1 = np.empty_like(eps)
    for k, e in enumerate(eps):
        fe = _flat(fun(x + e * v))
        e0[k] = np.linalg.norm(fe - f0)
        e1[k] = np.linalg.norm(fe - f0 - e * d)
    with np.errstate(divide="ignore", invalid="ignore"):
        orders = np.log2(e1[:-1] / e1[1:])
    floor = floor_rel * max(1.0, float(np.linalg.norm(f0)))
    good = (e1[1:] > floor) & (e1[:-1] > floor)
    usable = int(good.sum())
    order = float(np.median(orders[good])) if usable >= min_halvings else float("nan")
    passed = bool(np.isfinite(order) and order >= min_order)
    return TaylorResult(eps, e0, e1, orders, order, passed, usable)


def check_gradient(fun_and_grad, x, *, seed=0, **kwargs):
    """Taylor test of a scalar function's gradient in a random direction.

    Parameters
    ----------
    fun_and_grad : callable
        ``fun_and_grad(x) -> (value, gradient)``.
    x : ndarray
        The point.
    seed : int or numpy.random.Generator, optional
        The random direction.
    **kwargs
        Further arguments of :func:`taylor_test` (``eps0``, ``min_order``, ...).

    Returns
    -------
    TaylorResult
        The remainders and the observed order.

    Examples
    --------
    >>> import numpy as np
    >>> from ocp_learn.verify import check_gradient
    >>> check_gradient(lambda x: (0.5 * x @ x, x), np.ones(3)).passed
    True
    """
    rng = check_rng(seed)
    x = np.asarray(x, dtype=np.float64)
    v = rng.standard_normal(x.shape)
    v /= np.linalg.norm(v)
    _, g = fun_and_grad(x)
    return taylor_test(lambda y: fun_and_grad(y)[0], x, v, float(np.vdot(g, v)), **kwargs)


def dot_product_test(jvp, vjp, v, w):
    """Relative mismatch of ``<J v, w>`` and ``<v, J^T w>``.

    Parameters
    ----------
    jvp : callable
        ``jvp(v) -> J v`` (array, or tuple of arrays).
    vjp : callable
        ``vjp(w) -> J^T w`` (array, or tuple of arrays matching ``v``).
    v, w : array or tuple of arrays
        Input and output directions.

    Returns
    -------
    float
        ``|<Jv,w> - <v,J^T w>| / max(|Jv||w|, |v||J^T w|)``; a correct pair gives
        rounding level (about 1e-15).
    """
    jv, wv = _flat(jvp(v)), _flat(w)
    vv, jtw = _flat(v), _flat(vjp(w))
    if jv.shape != wv.shape:
        raise ValueError(f"jvp(v) has {jv.size} entries but w has {wv.size}")
    if jtw.shape != vv.shape:
        raise ValueError(f"vjp(w) has {jtw.size} entries but v has {vv.size}")
    a, b = float(jv @ wv), float(vv @ jtw)
    scale = max(np.linalg.norm(jv) * np.linalg.norm(wv), np.linalg.norm(vv) * np.linalg.norm(jtw), 1e-300)
    return abs(a - b) / scale


def convergence_order(tableau, *, dim=4, T=1.0, steps=(8, 16, 32, 64), seed=0):
    """Observed order of an explicit RK tableau on a linear ODE.

    Solves ``dy/dt = A y`` (``A`` random with spectrum in the left half plane,
    scaled to unit norm) with ``N`` steps for each ``N`` in ``steps`` and
    compares with the exact solution ``scipy.linalg.expm(T A) y0``.

    Parameters
    ----------
    tableau : str or ButcherTableau
        The integrator (:func:`~ocp_learn.integrators.get_integrator`).
    dim : int
        Dimension of the linear ODE.
    T : float
        Horizon.
    steps : sequence of int
        Step counts ``N``: at least two different positive integers.
    seed : int or Generator
        Draws ``A`` and ``y0``.

    Returns
    -------
    order : float
        Least-squares slope of ``-log2(error)`` against ``log2(N)``.
    errors : ndarray
        The errors for each ``N``.
    """
    from scipy.linalg import expm

    from .controls import FixedControl
    from .integrators import get_integrator
    from .models.linear import LinearModel

    steps = np.asarray(steps)
    if steps.ndim != 1 or np.unique(steps).size < 2 or steps.dtype.kind not in "iu" \
            or np.any(steps < 1):
        raise ValueError(f"steps must hold at least 2 different positive step counts (an order "
                         f"is the slope through several step sizes), got {steps.tolist()}")
    rng = check_rng(seed)
    integ = get_integrator(tableau)
    B = rng.standard_normal((dim, dim))
    A = (B - B.T) / 2 - 0.5 * np.eye(dim) + 0.2 * B
    A /= np.linalg.norm(A, 2)
    model = LinearModel(dim)
    theta = A.ravel().copy()
    y0 = rng.standard_normal((1, dim))
    exact = (expm(T * A) @ y0[0])[None, :]
    ctrl = FixedControl(theta)
    errors = []
    for N in steps:
        y = y0.copy()
        h = T / N
        for k in range(N):
            y, _ = integ.step(model, y, k * h, h, ctrl, keep=False)
        errors.append(np.linalg.norm(y - exact))
    errors = np.array(errors)
    slope = np.polyfit(np.log2(np.asarray(steps, float)), -np.log2(errors), 1)[0]
    return float(slope), errors
