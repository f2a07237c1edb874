"""Closed-form optimum of the Gaussian OT mean field game (MATH E, F): an analytic oracle
for trained MFGs (``benchmarks/bench_mfg.py``, the tests)."""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize_scalar

__all__ = ["gaussian_mfg_optimum"]


def gaussian_mfg_optimum(m0: ArrayLike, s0: float, m1: ArrayLike, s1: float, a1: float = 1.0,
                         a3: float = 1.0, T: float = 1.0) -> dict[str, Any]:
    """Closed-form optimum of the Gaussian OT-MFG with a soft KL terminal cost.

    For ``rho_0 = N(m0, s0 I)``, ``rho_1 = N(m1, s1 I)`` in ``d`` dimensions, ``F = 0`` and
    ``J = E int a1/2 |v|^2 dt + a3 KL(rho(T) || rho_1)``, the optimal flow is the affine
    displacement interpolation to ``N(mT, sT I)`` with kinetic cost
    ``a1/(2T) (|mT - m0|^2 + d (sqrt(sT) - sqrt(s0))^2)``.  Stationarity in ``mT`` gives
    ``mT = (a1 m0 / T + a3 m1 / s1) / (a1 / T + a3 / s1)``; ``sT`` minimizes a scalar
    function (solved by :func:`scipy.optimize.minimize_scalar`).

    Parameters
    ----------
    m0, m1 : array_like
        Means of the initial and target densities (length ``d``).
    s0, s1 : float
        Variances (per coordinate) of the initial and target densities.
    a1, a3 : float
        Weights of the kinetic energy and of the KL terminal cost.
    T : float
        Horizon.

    Returns
    -------
    dict
        ``J`` (the optimal objective), ``L`` (kinetic part), ``G`` (the KL), ``mT`` (terminal
        mean, ndarray) and ``sT`` (terminal variance).
    """
    m0, m1 = np.atleast_1d(np.asarray(m0, float)), np.atleast_1d(np.asarray(m1, float))
    d = m0.size
    mT = (a1 * m0 / T + a3 * m1 / s1) / (a1 / T + a3 / s1)

    def parts(sT):
        L = a1 / (2 * T) * (np.sum((mT - m0) ** 2) + d * (np.sqrt(sT) - np.sqrt(s0)) ** 2)
        G = 0.5 * (d * sT / s1 + np.sum((m1 - mT) ** 2) / s1 - d + d * np.log(s1 / sT))
        return L, G

    r = minimize_scalar(lambda u: sum(w * p for w, p in zip((1.0, a3), parts(np.exp(u)))),
                        bracket=(np.log(min(s0, s1)), np.log(max(s0, s1)) + 1e-3), tol=1e-12)
    sT = float(np.exp(r.x))
    L, G = parts(sT)
    return {"J": float(L + a3 * G), "L": float(L), "G": float(G), "mT": mT, "sT": sT}
