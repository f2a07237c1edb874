"""L-BFGS on the exact discrete gradient (scipy's L-BFGS-B, ``jac=True``)."""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import OptimizeResult, minimize

from ..errors import check_positive_float, check_positive_int
from ..protocols import Problem
from .checkpoint import check_fingerprint, run_fingerprint
from .driver import Callback, Driver

__all__ = ["lbfgs", "check_tolerances"]


def check_tolerances(gtol: float, ftol: float, memory: int) -> int:
    """Validate the L-BFGS options; returns ``memory`` as an int."""
    check_positive_float("gtol", gtol, allow_zero=True)
    check_positive_float("ftol", ftol, allow_zero=True)
    return check_positive_int("memory", memory)


def lbfgs(problem: Problem, theta0: Any = None, *, maxiter: int = 200, gtol: float = 1e-6,
          ftol: float = 1e-12, memory: int = 10, batch: Any = None, progress: bool = True,
          callback: Callback | None = None, seed: Any = 0, checkpoint: Any = None,
          checkpoint_every: int = 10, resume: bool = False) -> OptimizeResult:
    """Minimize ``problem``'s objective with L-BFGS.

    Parameters
    ----------
    problem : Problem
        :class:`~ocp_learn.protocols.Problem` (``evaluate``, ``check_theta``,
        ``init_params``, ...).
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
    seed : int or Generator
        For ``problem.init_params`` when ``theta0`` is None.
    checkpoint : str, optional
        File that receives the iterate, the history and the counters every
        ``checkpoint_every`` iterations (atomic write).
    checkpoint_every : int
        Iterations between checkpoints.
    resume : bool
        Continue from ``checkpoint`` if it exists, for the remaining
        ``maxiter - done`` iterations.  scipy's L-BFGS memory (the correction
        pairs) cannot be restored, so the resumed run restarts it: its first
        step is a scaled gradient step, and the iterates differ from an
        uninterrupted run's after the restart point (both are descent runs
        from the same iterate; they agree only up to the optimization
        tolerance ``gtol``/``ftol``).  Adam and Gauss--Newton resume bitwise.  A finished
        run resumes to its own result (unless ``maxiter`` grew past the limit it stopped
        at).  A checkpoint of another problem or of other settings is refused
        (:class:`~ocp_learn.errors.CheckpointError` naming what differs).

    Returns
    -------
    scipy.optimize.OptimizeResult
        ``x, fun, jac, success, message, nit, nfev, njev, method, history``
        (per-iteration objective, gradient norm, time, sweeps), ``ledger``, ``seconds``,
        ``sweeps``.  A solve that runs into non-finite values stops with
        ``success=False`` at the best finite iterate.
    """
    memory = check_tolerances(gtol, ftol, memory)
    run = Driver(problem, "L-BFGS-B", theta0=theta0, seed=seed, maxiter=maxiter, batch=batch,
                 progress=progress, callback=callback, checkpoint=checkpoint,
                 checkpoint_every=checkpoint_every, resume=resume)
    fp = run_fingerprint(problem, run.method, gtol=gtol, ftol=ftol, memory=memory,
                         batch=None if batch is None else np.asarray(batch))
    restored = run.restore()
    finished = None
    if restored is not None:
        check_fingerprint(checkpoint, restored[1], fp)
        finished = restored[1].get("finished")
    x0 = run.x0 if restored is None else restored[0]["x"]
    done = run.nit
    run.start(x0)
    if finished is not None and (done < finished["maxiter"] or done >= run.maxiter):
        return run.result(x0, finished["success"], finished["message"])
    if done >= run.maxiter:
        return run.result(x0, True, "maximum number of iterations reached (checkpoint)")

    def state():
        return {}, {"fingerprint": fp}

    def cb(intermediate_result):
        x = intermediate_result.x
        f, g = run.objective(x)
        it = run.history.iteration[-1] + 1
        run.record(it, f, g)
        postfix = {"f": f"{f:.4e}", "g": f"{np.linalg.norm(g):.2e}"}
        if run.iteration(it, x, f, g, state=state, postfix=postfix):
            raise StopIteration

    with run.progress("L-BFGS"):
        res = minimize(run.objective, x0, jac=True, method="L-BFGS-B", callback=cb,
                       options={"maxiter": run.maxiter - done, "gtol": gtol, "ftol": ftol,
                                "maxcor": memory})
    run.nit = done + res.nit
    result = run.result(res.x, res.success, res.message)
    run.save(result.x, fingerprint=fp, finished=None if run.stopped else {
        "success": bool(result.success), "message": str(result.message),
        "maxiter": run.maxiter})
    return result
