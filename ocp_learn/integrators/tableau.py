"""Butcher tableaux of explicit Runge--Kutta methods (MATH B1), validated."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ButcherTableau", "EULER", "HEUN", "MIDPOINT", "RK3", "RK4", "TABLEAUX"]


def _order_conditions(a, b, c):
    """Residuals of the order conditions up to order 4, grouped by order."""
    ac = a @ c
    return {
        1: [b.sum() - 1.0],
        2: [b @ c - 1 / 2],
        3: [b @ c**2 - 1 / 3, b @ ac - 1 / 6],
        4: [b @ c**3 - 1 / 4, b @ (c * ac) - 1 / 8, b @ (a @ c**2) - 1 / 12, b @ (a @ ac) - 1 / 24],
    }


@dataclass(frozen=True)
class ButcherTableau:
    """An explicit Runge--Kutta method ``(a, b, c)`` with ``s`` stages.

    On construction the tableau is checked: ``a`` strictly lower triangular
    (explicit), row sums of ``a`` equal ``c``, and the order conditions hold up
    to the claimed ``order`` (at most 4 are checked).

    Parameters
    ----------
    a : array_like, shape (s, s)
        Stage coefficients, strictly lower triangular.
    b : array_like, shape (s,)
        Weights of the stages in the step.
    c : array_like, shape (s,)
        Stage times as fractions of the step (the row sums of ``a``).
    name : str, optional
        Name shown in ``repr`` and tables.
    order : int or None, optional
        The claimed order, checked; None computes the highest order (<= 4) whose
        conditions hold.
    """

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    name: str = "custom"
    order: int | None = None

    def __post_init__(self):
        a = np.atleast_2d(np.asarray(self.a, dtype=np.float64))
        b = np.atleast_1d(np.asarray(self.b, dtype=np.float64))
        c = np.atleast_1d(np.asarray(self.c, dtype=np.float64))
        s = b.size
        if a.shape != (s, s) or c.shape != (s,):
            raise ValueError(f"tableau needs a of shape ({s}, {s}) and c of shape ({s},), "
                             f"got a {a.shape}, b {b.shape}, c {c.shape}")
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b)) and np.all(np.isfinite(c))):
            raise ValueError("tableau entries must be finite")
        if np.any(np.triu(a) != 0):
            raise ValueError("tableau a must be strictly lower triangular (explicit method)")
        if not np.allclose(a.sum(axis=1), c, atol=1e-14):
            raise ValueError(f"tableau rows of a must sum to c: {a.sum(axis=1)} != {c}")
        conds = _order_conditions(a, b, c)
        reached = 0
        for p in range(1, 5):
            if max(abs(r) for r in conds[p]) < 1e-12:
                reached = p
            else:
                break
        if reached == 0:
            raise ValueError("tableau is not consistent: the weights b must sum to 1")
        order = self.order
        if order is None:
            order = reached
        elif order <= 4 and order > reached:
            raise ValueError(f"tableau {self.name!r} claims order {order} but satisfies the "
                             f"order conditions only up to {reached}")
        for k, v in (("a", a), ("b", b), ("c", c)):
            v.setflags(write=False)
            object.__setattr__(self, k, v)
        object.__setattr__(self, "order", int(order))

    @property
    def stages(self):
        return self.b.size


EULER = ButcherTableau([[0.0]], [1.0], [0.0], "euler", 1)
HEUN = ButcherTableau([[0, 0], [1, 0]], [0.5, 0.5], [0, 1], "heun", 2)
MIDPOINT = ButcherTableau([[0, 0], [0.5, 0]], [0, 1], [0, 0.5], "midpoint", 2)
RK3 = ButcherTableau([[0, 0, 0], [0.5, 0, 0], [-1, 2, 0]], [1 / 6, 2 / 3, 1 / 6], [0, 0.5, 1], "rk3", 3)
RK4 = ButcherTableau([[0, 0, 0, 0], [0.5, 0, 0, 0], [0, 0.5, 0, 0], [0, 0, 1, 0]],
                     [1 / 6, 1 / 3, 1 / 3, 1 / 6], [0, 0.5, 0.5, 1], "rk4", 4)

TABLEAUX = {t.name: t for t in (EULER, HEUN, MIDPOINT, RK3, RK4)}
