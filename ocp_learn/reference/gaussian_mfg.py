"""Closed-form optimum of the Gaussian OT mean field game (MATH E1, E5, F).

The relaxed optimal transport problem between isotropic Gaussians -- kinetic
energy plus a KL terminal cost, no interaction (``F = 0``) -- has an optimum in
closed form.  It is the analytic oracle of trained MFGs
(:mod:`ocp_learn.reference.mfg_oracle`, ``benchmarks/bench_mfg.py``).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import brentq

from ..errors import check_positive_float

__all__ = ["gaussian_mfg_optimum", "gaussian_mfg_objective", "terminal_std_numeric"]


def _check(s0: float, s1: float, a1: float, a3: float, T: float) -> None:
    for name, v in (("s0", s0), ("s1", s1), ("a1", a1), ("a3", a3), ("T", T)):
        check_positive_float(name, v)


def gaussian_mfg_objective(m0: ArrayLike, s0: float, m1: ArrayLike, s1: float, mT: ArrayLike,
                           sT: float, a1: float = 1.0, a3: float = 1.0,
                           T: float = 1.0) -> tuple[float, float]:
    """Kinetic energy and KL of the straight flow from ``N(m0, s0 I)`` to ``N(mT, sT I)``.

    Parameters
    ----------
    m0, m1, mT : array_like
        Means (length ``d``) of the initial, target and terminal densities.
    s0, s1, sT : float
        Their variances per coordinate.
    a1, a3 : float
        Weight of the kinetic energy (inside ``L``) and of the KL.
    T : float
        Horizon.

    Returns
    -------
    L : float
        ``a1/(2T) (|mT - m0|^2 + d (sqrt(sT) - sqrt(s0))^2)``, the kinetic energy
        ``E int a1/2 |v|^2 dt`` of the displacement interpolation (``a1/(2T) W2^2``).
    G : float
        ``KL(N(mT, sT I) || N(m1, s1 I)) = 1/2 (d sT/s1 + |m1 - mT|^2/s1 - d + d log(s1/sT))``.
    """
    m0, m1, mT = (np.atleast_1d(np.asarray(v, float)) for v in (m0, m1, mT))
    d = m0.size
    L = a1 / (2 * T) * (np.sum((mT - m0) ** 2) + d * (np.sqrt(sT) - np.sqrt(s0)) ** 2)
    G = 0.5 * (d * sT / s1 + np.sum((m1 - mT) ** 2) / s1 - d + d * np.log(s1 / sT))
    return float(L), float(G)


def gaussian_mfg_optimum(m0: ArrayLike, s0: float, m1: ArrayLike, s1: float, a1: float = 1.0,
                         a3: float = 1.0, T: float = 1.0) -> dict[str, Any]:
    r"""Closed-form optimum of the Gaussian OT-MFG with a soft KL terminal cost.

    The problem (MATH E1 with ``F = 0``, E5 "OT", the weights of MATH F and
    :class:`~ocp_learn.problems.mfg.PotentialMFG`):

    ``min_v  J = E int_0^T a1/2 |v|^2 dt + a3 KL(rho(., T) || rho_1)``,
    ``rho_0 = N(m0, s0 I)``, ``rho_1 = N(m1, s1 I)`` in ``d`` dimensions
    (``s0, s1`` are *variances*).

    For a fixed terminal law ``N(mT, sT I)`` the cheapest flow is the displacement
    interpolation, of kinetic energy ``a1/(2T) W2^2 = a1/(2T) (|mT - m0|^2 + d (sigma_T -
    sigma_0)^2)`` with ``sigma = sqrt(s)``; the KL is that of
    :func:`gaussian_mfg_objective`.  The objective separates into a mean part and
    ``d`` identical variance parts:

    * mean: ``a1/(2T) |mT - m0|^2 + a3/(2 s1) |mT - m1|^2`` is minimal at
      ``mT = (a1 m0 / T + a3 m1 / s1) / (a1 / T + a3 / s1)``;
    * variance, per coordinate: ``f(sigma) = a1/(2T) (sigma - sigma_0)^2 + a3/2 (sigma^2/s1 - 1
      + log s1 - 2 log sigma)``, strictly convex on ``sigma > 0``
      (``f'' = a1/T + a3/s1 + a3/sigma^2``).  ``sigma f'(sigma) = 0`` is the quadratic
      ``(a1/T + a3/s1) sigma^2 - (a1/T) sigma_0 sigma - a3 = 0``, whose roots have the
      product ``-a3 / (a1/T + a3/s1) < 0``: exactly one is positive,

      .. math::

         \sigma_T = \frac{(a_1/T)\,\sigma_0 + \sqrt{(a_1/T)^2 \sigma_0^2
                    + 4 a_3 (a_1/T + a_3/s_1)}}{2 (a_1/T + a_3/s_1)},
         \qquad s_T = \sigma_T^2 .

    The optimal value is ``J* = 1/2 (a1/T)(a3/s1)/(a1/T + a3/s1) |m1 - m0|^2 + d f(sigma_T)``:
    the mean part depends on ``|m1 - m0|`` only, the variance part grows linearly in
    ``d``: ``J*(d) = J_mean + d f(sigma_T)``, with a terminal mean and a per-coordinate
    terminal variance that do not depend on ``d`` when ``m1 - m0`` does not.  For the
    crowd-motion endpoints (means ``+-3 e2``, equal variances ``s0 = s1``) the variance
    part vanishes (``sT = s0``, ``f(sigma_T) = 0``) and ``J*`` does not depend on ``d``
    at all (``16.98`` for ``s = 0.3``, ``a1 = 1``, ``a3 = 5``, without the obstacle).
    The optimal flow is affine in ``x``: ``z(t) = m(t) + (sigma(t)/sigma_0) (x - m0)``
    with ``m, sigma`` linear in ``t``.

    Parameters
    ----------
    m0, m1 : array_like
        Means of the initial and target densities (length ``d``).
    s0, s1 : float
        Variances (per coordinate) of the initial and target densities.
    a1, a3 : float
        Weights of the kinetic energy and of the KL terminal cost (``alpha[0]``,
        ``alpha[2]`` of :class:`~ocp_learn.problems.mfg.PotentialMFG`).
    T : float
        Horizon.

    Returns
    -------
    dict
        ``J`` (the optimal objective ``L + a3 G``), ``L`` (kinetic part), ``G`` (the KL),
        ``mT`` (terminal mean, ndarray), ``sT`` (terminal variance), ``J_mean`` and
        ``J_var_per_dim`` (``J = J_mean + d J_var_per_dim``).

    Raises
    ------
    ValueError
        If ``m0`` and ``m1`` differ in length or a variance, weight or ``T`` is not positive.
    """
    _check(s0, s1, a1, a3, T)
    m0, m1 = np.atleast_1d(np.asarray(m0, float)), np.atleast_1d(np.asarray(m1, float))
    if m0.shape != m1.shape or m0.ndim != 1:
        raise ValueError(f"m0 and m1 must be vectors of one length, got shapes {m0.shape} "
                         f"and {m1.shape}")
    k1, k3 = a1 / T, a3 / s1
    mT = (k1 * m0 + k3 * m1) / (k1 + k3)
    sig0 = np.sqrt(s0)
    sigT = (k1 * sig0 + np.sqrt((k1 * sig0) ** 2 + 4.0 * a3 * (k1 + k3))) / (2.0 * (k1 + k3))
    sT = float(sigT * sigT)
    L, G = gaussian_mfg_objective(m0, s0, m1, s1, mT, sT, a1, a3, T)
    J_mean = 0.5 * k1 * k3 / (k1 + k3) * float(np.sum((m1 - m0) ** 2))
    J_var = 0.5 * k1 * (sigT - sig0) ** 2 + 0.5 * a3 * (sT / s1 - 1.0 + np.log(s1 / sT))
    return {"J": L + a3 * G, "L": L, "G": G, "mT": mT, "sT": sT, "J_mean": J_mean,
            "J_var_per_dim": float(J_var)}


def terminal_std_numeric(s0: float, s1: float, a1: float = 1.0, a3: float = 1.0,
                         T: float = 1.0) -> float:
    """The optimal terminal standard deviation ``sigma_T`` as a numerical root.

    The cross-check of the closed form in :func:`gaussian_mfg_optimum`: Brent's
    root finder (:func:`scipy.optimize.brentq`) on the stationarity condition
    ``f'(sigma) = (a1/T) (sigma - sigma_0) + a3 (sigma/s1 - 1/sigma) = 0`` of the
    per-coordinate variance part, bracketed by ``sigma_0`` and ``sigma_1 = sqrt(s1)``
    (``f'`` has opposite signs there).

    Parameters
    ----------
    s0, s1 : float
        Initial and target variances.
    a1, a3, T : float
        Weights and horizon, as in :func:`gaussian_mfg_optimum`.

    Returns
    -------
    float
        ``sigma_T = sqrt(sT)``.
    """
    _check(s0, s1, a1, a3, T)
    sig0, sig1 = np.sqrt(s0), np.sqrt(s1)
    if sig0 == sig1:
        return float(sig0)

    def fprime(sig):
        return a1 / T * (sig - sig0) + a3 * (sig / s1 - 1.0 / sig)

    return float(brentq(fprime, min(sig0, sig1), max(sig0, sig1), xtol=1e-300, rtol=8.9e-16,
                        maxiter=500))
