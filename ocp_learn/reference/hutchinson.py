"""The Hutchinson Laplacian of the potential model against its exact moments (MATH D3, D4).

With ``trace="hutchinson"`` the model's ``lap`` is ``1/k sum_j v_j^T H v_j`` for
``k`` probes ``v_j`` per sample, ``H = Hess_x Phi(x, t; theta)``.  For probes with
``E[v v^T] = I`` the estimate is unbiased; its variance is known in closed form:

* Rademacher probes (``v_i = +-1``): ``Var = 2/k sum_{i != j} H_ij^2``;
* standard Gaussian probes: ``Var = 2/k ||H||_F^2``.

:func:`hutchinson_check` draws many independent estimates at one fixed ``(x, t,
theta)`` (the point repeated as rows, fresh probes per row) and compares their mean
with the exact Laplacian and their variance with the closed form, both in units of
their own standard errors.  ``H`` is CasADi's Hessian of the symbolic twin of ``Phi``
(:func:`.potential.potential_hessian`), independent of the hand-derived D3.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import as_array, check_choice, check_positive_int, check_rng

__all__ = ["hutchinson_variance", "moment_z_scores", "hutchinson_check", "hutchinson_rows",
           "HUTCHINSON_CHECK", "Z_TOL"]

Z_TOL = 4.0
"""A check passes when both ``|z|`` are at most this many standard errors."""


def hutchinson_variance(H: np.ndarray, k: int = 1, kind: str = "rademacher") -> float:
    """Closed-form variance of the ``k``-probe Hutchinson estimate of ``tr(H)``.

    Parameters
    ----------
    H : ndarray, shape (d, d)
        Symmetric matrix.
    k : int
        Probes averaged per estimate.
    kind : {"rademacher", "gaussian"}
        Probe distribution.

    Returns
    -------
    float
        ``2/k sum_{i != j} H_ij^2`` (Rademacher) or ``2/k ||H||_F^2`` (Gaussian).
    """
    H = as_array("H", H, ndim=2)
    if H.shape[0] != H.shape[1]:
        raise ValueError(f"H must be square, got shape {H.shape}")
    k = check_positive_int("k", k)
    check_choice("kind", kind, {"rademacher", "gaussian"})
    F2 = float(np.sum(H * H))
    if kind == "rademacher":
        F2 -= float(np.sum(np.diag(H) ** 2))
    return 2.0 * F2 / k


def moment_z_scores(estimates: np.ndarray, mean: float, variance: float) -> dict[str, float]:
    """How many standard errors the sample mean and variance of ``estimates`` lie off.

    Parameters
    ----------
    estimates : ndarray, shape (N,)
        Independent draws of an estimator.
    mean, variance : float
        Their claimed expectation and variance.

    Returns
    -------
    dict
        ``mean_hat``, ``se_mean = s / sqrt(N)``, ``z_mean = (mean_hat - mean) / se_mean``,
        ``var_hat`` (unbiased sample variance), ``se_var = sqrt((m4 - var_hat^2) / N)``
        (``m4`` the sample fourth central moment: the large-``N`` standard error of a
        sample variance), ``z_var = (var_hat - variance) / se_var``, ``n_draws``.
    """
    e = as_array("estimates", estimates, ndim=1)
    N = e.size
    if N < 10:
        raise ValueError(f"estimates must hold at least 10 draws, got {N}")
    mu = float(np.mean(e))
    c = e - mu
    var_hat = float(np.sum(c * c) / (N - 1))
    m4 = float(np.mean(c ** 4))
    se_mean = np.sqrt(var_hat / N)
    se_var = np.sqrt(max(m4 - var_hat ** 2, 1e-300) / N)
    return {"mean_hat": mu, "se_mean": float(se_mean), "z_mean": float((mu - mean) / se_mean),
            "var_hat": var_hat, "se_var": float(se_var),
            "z_var": float((var_hat - variance) / se_var), "n_draws": N}


def hutchinson_check(model: Any, x: Any, t: float, theta: Any, *, n_draws: int = 20000,
                     k: int = 1, kind: str = "rademacher", probe_scale: float = 1.0,
                     seed: Any = 0) -> dict[str, Any]:
    """Unbiasedness and variance of the model's Hutchinson Laplacian at one point.

    Parameters
    ----------
    model : PotentialResNet
        Built with ``trace="hutchinson"``.
    x : array_like, shape (d,)
        The point.
    t : float
        The time.
    theta : ndarray, shape (n_params,)
        The parameters.
    n_draws : int
        Independent estimates drawn (rows of the repeated point, fresh probes each).
    k : int
        Probes per estimate (``model.sample_probes(n, rng, k, kind)``).
    kind : {"rademacher", "gaussian"}
        Probe distribution.
    probe_scale : float
        Multiplies the probes (1 for the estimator itself; anything else makes a
        deliberately biased estimator, ``E = probe_scale^2 tr(H)``, for negative controls).
    seed : int or Generator
        For the probes.

    Returns
    -------
    dict
        ``exact`` (``tr H`` from CasADi), ``variance`` (closed form, :func:`hutchinson_variance`),
        the fields of :func:`moment_z_scores`, ``k``, ``kind``, ``d`` and ``passed``
        (``|z_mean| <= Z_TOL`` and ``|z_var| <= Z_TOL``).
    """
    from .potential import potential_hessian

    if model.trace != "hutchinson":
        raise ValueError("hutchinson_check needs a model built with trace='hutchinson', got "
                         f"trace={model.trace!r}")
    x = as_array("x", x, ndim=1, shape=(model.dim,))
    n_draws = check_positive_int("n_draws", n_draws)
    rng = check_rng(seed)
    H = potential_hessian(model, x[None], t, theta)[0]
    exact = float(np.trace(H))
    variance = hutchinson_variance(H, k, kind)
    probes = probe_scale * model.sample_probes(n_draws, rng, k, kind)
    X = np.repeat(x[None], n_draws, axis=0)
    est = np.asarray(model.derivatives(X, t, theta, probes=probes).lap, dtype=np.float64)
    z = moment_z_scores(est, exact, variance)
    passed = abs(z["z_mean"]) <= Z_TOL and abs(z["z_var"]) <= Z_TOL
    return {"exact": exact, "variance": variance, **z, "k": k, "kind": kind, "d": model.dim,
            "passed": bool(passed)}


HUTCHINSON_CHECK = "Hutchinson trace (D3)"


def hutchinson_rows(seed: int = 0, n_draws: int = 20000) -> list[dict[str, Any]]:
    """Rows of the reference suite: :func:`hutchinson_check` of a ``PotentialResNet(d=4, m=6,
    M=2)`` at a random point for Rademacher (``k = 1, 3``) and Gaussian probes, and the
    negative control (probes scaled by 1.05, ``E = 1.1025 tr H``).

    Returns
    -------
    list of dict
        ``check``, ``case``, ``reference`` (exact ``tr H``), ``value`` (mean of the draws),
        ``z_mean``, ``variance`` (closed form), ``var_hat``, ``z_var``, ``n_draws``,
        ``status`` (``ok``/``FAIL``; ``caught``/``NOT CAUGHT`` for the control).
    """
    from ..models.potential import PotentialResNet

    rng = np.random.default_rng(seed)
    m = PotentialResNet(4, width=6, n_layers=2, trace="hutchinson")
    theta = m.init_params(seed) + 0.3 * rng.standard_normal(m.n_params)
    x = rng.standard_normal(4)
    rows = []
    for j, (k, kind, scale) in enumerate(((1, "rademacher", 1.0), (3, "rademacher", 1.0),
                                          (1, "gaussian", 1.0), (1, "rademacher", 1.05))):
        r = hutchinson_check(m, x, 0.3, theta, n_draws=n_draws, k=k, kind=kind,
                             probe_scale=scale, seed=seed + 1 + j)
        control = scale != 1.0
        case = f"{kind}, k={k}" + (f", probes x{scale} (negative control)" if control else "")
        status = (("caught" if not r["passed"] else "NOT CAUGHT") if control
                  else ("ok" if r["passed"] else "FAIL"))
        rows.append({"check": HUTCHINSON_CHECK, "case": case, "reference": r["exact"],
                     "value": r["mean_hat"], "z_mean": r["z_mean"], "variance": r["variance"],
                     "var_hat": r["var_hat"], "z_var": r["z_var"], "n_draws": r["n_draws"],
                     "status": status})
    return rows
