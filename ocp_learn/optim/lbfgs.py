"""L-BFGS on the exact discrete gradient (scipy's L-BFGS-B, ``jac=True``)."""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from tqdm.auto import tqdm

from ..errors import check_positive_int, check_positive_float
from .history import History, Objective, make_result

__all__ = ["lbfgs"]


def lbfgs(problem, theta0=None, *, maxiter=200, gtol=1e-6, ftol=1e-12, memory=10, batch=None,
          progress=True, callback=None, seed=0):
    """Minimize ``problem.objective`` with L-BFGS.

    Parameters
    ----------
    problem : OCP-like
        Provides ``objective_and_gradient(theta, batch)`` and ``init_params(seed)``.
    theta0 : ndarray, optional
        Start; ``problem.init_params(seed)`` by default.
    maxiter : int
        Iteration limit.
    gtol, ftol : float
        scipy's projected-gradient and relative-reduction tolerances.
    memory : int
        Number of stored correction pairs.
    batch : index array, optional
        A fixed batch of samples (L-BFGS is a full-batch method).
    progress : bool
        Show a tqdm progress bar.
    callback : callable, optional
        ``callback(iteration, theta, f, g)`` after every iteration; returning
        True stops the run.

    Returns
    -------
    scipy.optimize.OptimizeResult
        ``x, fun, jac, success, message, nit, nfev, njev`` plus ``history``
        (per-iteration objective, gradient norm, time) and ``ledger``.
        A solve that runs into non-finite values stops with ``success=False``
        at the last finite iterate.
    """
    maxiter = check_positive_int("maxiter", maxiter)
    check_positive_float("gtol", gtol, allow_zero=True)
    memory = check_positive_int("memory", memory)
    x0 = problem.init_params(seed) if theta0 is None else problem._check_theta(theta0, "theta0") \
        if hasattr(problem, "_check_theta") else np.asarray(theta0, dtype=np.float64)
    obj = Objective(problem, batch)
    hist = History()
    f0, g0 = obj(x0)
    if not np.isfinite(f0):
        raise ValueError(f"theta0: the objective is not finite at the start ({obj.failure})")
    hist.record(0, f0, g0)
    bar = tqdm(total=maxiter, disable=not progress, desc="L-BFGS", leave=False)
    stop = {"user": False}

    def cb(intermediate_result):
        x = intermediate_result.x
        f, g = obj(x)
        it = len(hist.iteration)
        hist.record(it, f, g)
        bar.update(1)
        bar.set_postfix(f=f"{f:.4e}", g=f"{np.linalg.norm(g):.2e}")
        if callback is not None and callback(it, x, f, g):
            stop["user"] = True
            raise StopIteration

    try:
        res = minimize(obj, x0, jac=True, method="L-BFGS-B", callback=cb,
                       options={"maxiter": maxiter, "gtol": gtol, "ftol": ftol, "maxcor": memory})
    finally:
        bar.close()
    success = res.success or stop["user"]
    message = "stopped by callback" if stop["user"] else res.message
    return make_result(obj, res.x, success, message, res.nit, hist, "L-BFGS-B")
