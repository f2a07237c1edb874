"""L-BFGS on the exact discrete gradient (scipy's L-BFGS-B, ``jac=True``)."""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from tqdm.auto import tqdm

from ..errors import check_positive_int, check_positive_float
from .checkpoint import resume_from, save_checkpoint
from .history import History, Objective, count_sweeps, make_result

__all__ = ["lbfgs"]


def checked_start(problem, theta0, seed, maxiter, gtol, ftol, memory):
    """The checked options and start of the L-BFGS drivers: ``(maxiter, memory, theta0)``
    (``problem.init_params(seed)`` when ``theta0`` is None)."""
    maxiter = check_positive_int("maxiter", maxiter)
    check_positive_float("gtol", gtol, allow_zero=True)
    check_positive_float("ftol", ftol, allow_zero=True)
    memory = check_positive_int("memory", memory)
    if not hasattr(problem, "objective_and_gradient"):
        raise TypeError(f"problem must provide objective_and_gradient(theta, batch), "
                        f"got {type(problem).__name__}")
    x0 = problem.init_params(seed) if theta0 is None else problem.check_theta(theta0, "theta0") \
        if hasattr(problem, "check_theta") else np.asarray(theta0, dtype=np.float64)
    return maxiter, memory, x0


def lbfgs(problem, theta0=None, *, maxiter=200, gtol=1e-6, ftol=1e-12, memory=10, batch=None,
          progress=True, callback=None, seed=0, checkpoint=None, checkpoint_every=10,
          resume=False):
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
    checkpoint : str, optional
        File that receives the iterate, the history and the counters every
        ``checkpoint_every`` iterations (atomic write).
    resume : bool
        Continue from ``checkpoint`` if it exists, for the remaining
        ``maxiter - done`` iterations.  scipy's L-BFGS memory (the correction
        pairs) cannot be restored, so the resumed run restarts it: its first
        step is a scaled gradient step, and the iterates differ from an
        uninterrupted run's after the restart point (both are descent runs
        from the same iterate; they agree only up to the optimization
        tolerance ``gtol``/``ftol``).  Adam and Gauss--Newton resume bitwise.

    Returns
    -------
    scipy.optimize.OptimizeResult
        ``x, fun, jac, success, message, nit, nfev, njev`` plus ``history``
        (per-iteration objective, gradient norm, time) and ``ledger``.
        A solve that runs into non-finite values stops with ``success=False``
        at the last finite iterate.
    """
    maxiter, memory, x0 = checked_start(problem, theta0, seed, maxiter, gtol, ftol, memory)
    checkpoint_every = check_positive_int("checkpoint_every", checkpoint_every)
    obj = Objective(problem, batch)
    hist = History()
    done = 0
    restored = resume_from(checkpoint, resume, "L-BFGS-B", np.size(x0))
    if restored is not None:
        arrays, meta, hist = restored
        x0 = arrays["x"]
        done = int(meta["nit"])
        obj.nfev = int(meta["nfev"])
        for k, v in meta["ledger"].items():
            setattr(obj.ledger, k, v)
    f0, g0 = obj(x0)
    if not np.isfinite(f0):
        raise ValueError(f"theta0: the objective is not finite at the start ({obj.failure})")
    if not hist.iteration:
        hist.record(0, f0, g0, sweeps=count_sweeps(obj.ledger, problem))
    if done >= maxiter:
        return make_result(obj, x0, True, "maximum number of iterations reached (checkpoint)",
                           done, hist, "L-BFGS-B")
    bar = tqdm(total=maxiter, initial=done, disable=not progress, desc="L-BFGS", leave=False)
    stop = {"user": False}

    def save(x, it):
        save_checkpoint(checkpoint, {"x": x},
                        {"method": "L-BFGS-B", "n_params": int(np.size(x)), "nit": it,
                         "nfev": obj.nfev, "history": hist.as_dict(),
                         "ledger": obj.ledger.as_dict()})

    def cb(intermediate_result):
        x = intermediate_result.x
        f, g = obj(x)
        it = hist.iteration[-1] + 1
        hist.record(it, f, g, sweeps=count_sweeps(obj.ledger, problem))
        if checkpoint is not None and it % checkpoint_every == 0:
            save(x, it)
        bar.update(1)
        bar.set_postfix(f=f"{f:.4e}", g=f"{np.linalg.norm(g):.2e}")
        if callback is not None and callback(it, x, f, g):
            stop["user"] = True
            raise StopIteration

    try:
        res = minimize(obj, x0, jac=True, method="L-BFGS-B", callback=cb,
                       options={"maxiter": maxiter - done, "gtol": gtol, "ftol": ftol, "maxcor": memory})
    finally:
        bar.close()
    success = res.success or stop["user"]
    message = "stopped by callback" if stop["user"] else res.message
    if checkpoint is not None:
        save(res.x, done + res.nit)
    out = make_result(obj, res.x, success, message, done + res.nit, hist, "L-BFGS-B")
    out.sweeps = count_sweeps(obj.ledger, problem)
    return out
