"""Adam with seeded mini-batches, step-size schedules and exact checkpoint/resume.

Generic over any :class:`~ocp_learn.protocols.Problem`: every iteration draws the next
mini-batch of an epoch-wise random permutation (seeded generator), evaluates
the exact gradient of the discrete objective on it and takes the Adam step
(Kingma & Ba 2015)

    ``m = b1 m + (1 - b1) g``,  ``v = b2 v + (1 - b2) g^2``,
    ``theta -= lr_k (m / (1 - b1^k)) / (sqrt(v / (1 - b2^k)) + eps)``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import OptimizeResult

from ..errors import NonFiniteError, check_positive_float, check_positive_int, check_rng
from ..protocols import Problem
from .checkpoint import check_fingerprint, rng_state, run_fingerprint, set_rng_state
from .driver import Callback, Driver

__all__ = ["adam", "get_schedule"]


def get_schedule(schedule, maxiter, lr):
    """``lr_k`` for iteration ``k = 1..maxiter``.

    ``"constant"``; ``"cosine"`` (``lr (1 + cos(pi (k-1)/maxiter)) / 2``);
    ``("step", every, factor)`` (multiply by ``factor`` every ``every``
    iterations); ``("exponential", rate)`` (``lr rate^(k-1)``); or a callable
    ``schedule(k) -> lr_k``.
    """
    if callable(schedule):
        return schedule
    if schedule in (None, "constant"):
        return lambda k: lr
    if schedule == "cosine":
        return lambda k: 0.5 * lr * (1.0 + math.cos(math.pi * (k - 1) / maxiter))
    if isinstance(schedule, (tuple, list)) and len(schedule) == 3 and schedule[0] == "step":
        every = check_positive_int("schedule every", schedule[1])
        factor = check_positive_float("schedule factor", schedule[2])
        return lambda k: lr * factor ** ((k - 1) // every)
    if isinstance(schedule, (tuple, list)) and len(schedule) == 2 and schedule[0] == "exponential":
        rate = check_positive_float("schedule rate", schedule[1])
        return lambda k: lr * rate ** (k - 1)
    raise ValueError("schedule must be 'constant', 'cosine', ('step', every, factor), "
                     f"('exponential', rate) or a callable, got {schedule!r}")


def adam(problem: Problem, theta0: Any = None, *, maxiter: int = 1000, lr: float = 1e-2,
         betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
         batch_size: int | None = None, schedule: Any = "constant", seed: Any = 0,
         progress: bool = True, callback: Callback | None = None, checkpoint: Any = None,
         checkpoint_every: int = 100, resume: bool = False,
         final_objective: bool = True) -> OptimizeResult:
    """Minimize ``problem``'s objective with Adam on seeded mini-batches.

    Parameters
    ----------
    problem : Problem
        :class:`~ocp_learn.protocols.Problem`; ``evaluate(theta, batch)`` with ``batch`` an
        index array or ``None``.
    theta0 : ndarray, optional
        Start; ``problem.init_params(seed)`` by default.
    maxiter : int
        Number of Adam steps (the total, also when resuming).
    lr : float
        Base step size.
    betas : (float, float)
        Moment decay rates in ``[0, 1)``.
    eps : float
        Denominator guard.
    batch_size : int, optional
        Mini-batch size; ``None`` (or ``>= n_samples``) is full batch.
    schedule : str, tuple or callable
        The step sizes ``lr_k`` (see ``get_schedule``): ``"constant"``, ``"cosine"``,
        ``("step", every, factor)``, ``("exponential", rate)`` or ``schedule(k) -> lr_k``.
    seed : int or Generator
        Seeds the batch generator (and ``init_params`` when ``theta0`` is None).
    progress : bool
        tqdm progress bar.
    callback : callable, optional
        ``callback(iteration, theta, f_batch, g_batch)`` after each step;
        returning True stops the run.
    checkpoint : str, optional
        File to save the state to every ``checkpoint_every`` steps (atomic):
        iterate, moments, step, batch permutation and position, generator
        state, history and counters.
    checkpoint_every : int
        Steps between checkpoints.
    resume : bool
        Continue from ``checkpoint`` if it exists, up to ``maxiter``; the result
        is bitwise that of an uninterrupted run with the same arguments (the
        schedule's horizon is ``maxiter``, so interrupt a run by its callback or
        a signal, not by a smaller ``maxiter``).  A checkpoint of another problem or of
        other settings is refused (:class:`~ocp_learn.errors.CheckpointError` naming what
        differs).
    final_objective : bool
        Evaluate the full-batch objective at the last iterate for ``fun``/``jac``
        (otherwise the last mini-batch values are reported).

    Returns
    -------
    scipy.optimize.OptimizeResult
        ``x, fun, jac, nit, nfev, history`` (per step: mini-batch objective,
        gradient norm, time, ``lr``, ``sweeps``), ``ledger``, ``sweeps``.
        An iterate whose objective or gradient is not finite (e.g. the ODE
        solution overflowed) stops the run with ``success=False``, a message
        naming the step, and ``x`` the best finite iterate seen (lowest
        mini-batch objective); parameters are never NaN.  A non-finite objective
        at ``theta0`` raises ``ValueError``.
    """
    lr = check_positive_float("lr", lr)
    eps = check_positive_float("eps", eps)
    try:
        b1, b2 = (float(b) for b in betas)
    except (TypeError, ValueError):
        raise TypeError(f"betas must be a pair of floats, got {betas!r}") from None
    if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
        raise ValueError(f"betas must lie in [0, 1), got {betas!r}")
    run = Driver(problem, "adam", theta0=theta0, seed=seed, maxiter=maxiter, progress=progress,
                 callback=callback, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                 resume=resume, label="Adam")
    n = int(problem.n_samples)
    if batch_size is not None:
        batch_size = check_positive_int("batch_size", batch_size)
        if batch_size >= n:
            batch_size = None
    lr_of = get_schedule(schedule, run.maxiter, lr)
    rng = check_rng(seed)
    x = run.x0
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    perm = rng.permutation(n) if batch_size else np.arange(0)
    pos = 0
    fp = run_fingerprint(problem, run.method, lr=lr, betas=[b1, b2], eps=eps,
                         batch_size=batch_size, schedule=schedule,
                         horizon=None if schedule in (None, "constant") else run.maxiter)
    restored = run.restore()
    if restored is not None:
        arrays, meta = restored
        check_fingerprint(checkpoint, meta, fp)
        if meta["batch_size"] != batch_size or meta["n_samples"] != n:
            raise ValueError(f"checkpoint {checkpoint!r} used batch_size={meta['batch_size']} "
                             f"on {meta['n_samples']} samples; this run: {batch_size} on {n}")
        x, m, v, perm = arrays["x"], arrays["m"], arrays["v"], arrays["perm"]
        pos = int(meta["pos"])
        set_rng_state(rng, meta["rng"])
    k = run.nit

    def state():
        return ({"m": m, "v": v, "perm": perm},
                {"pos": pos, "batch_size": batch_size, "n_samples": n, "fingerprint": fp,
                 "rng": rng_state(rng)})

    def next_batch():
        nonlocal perm, pos
        if batch_size is None:
            return None
        if pos + batch_size > n:
            perm = rng.permutation(n)
            pos = 0
        b = perm[pos:pos + batch_size]
        pos += batch_size
        return b

    failure = None
    best = None  # (f, k, x): the evaluated iterate with the lowest objective
    with run.progress("Adam"):
        while k < run.maxiter and not run.stopped:
            batch = next_batch()
            try:
                ev = problem.evaluate(x, batch, gradient=True)
                f, g = ev.value, ev.gradient
                if not (np.isfinite(f) and np.all(np.isfinite(g))):
                    raise NonFiniteError(f"objective or gradient is not finite ({f})")
            except NonFiniteError as exc:
                if best is None and k == 0:
                    raise ValueError(f"theta0: the objective is not finite at the start ({exc})") \
                        from exc
                failure = str(exc)
                break
            run.objective.count(ev)
            if batch is None:  # full batch: an objective value (the result's fallback)
                run.objective.offer(x, f, g)
            if best is None or f < best[0]:
                best = (f, k, x)
            k += 1
            lr_k = float(lr_of(k))
            m = b1 * m + (1.0 - b1) * g
            v = b2 * v + (1.0 - b2) * (g * g)
            mhat = m / (1.0 - b1 ** k)
            vhat = v / (1.0 - b2 ** k)
            x_new = x - lr_k * mhat / (np.sqrt(vhat) + eps)
            run.record(k - 1, f, g, lr=lr_k)
            x = x_new
            run.iteration(k, x, f, g, state=state, postfix={"f": f"{f:.4e}"})
    success, message = True, "maximum number of iterations reached"
    if failure is not None:
        success = False
        message = f"non-finite objective at iterate {k}: {failure}"
        if best is not None:
            x = best[2]
            message += (f"; returned iterate {best[1]}, the best finite one "
                        f"(mini-batch objective {best[0]:.6g})")
            run.nit = k - 1
    if final_objective:
        return run.result(x, success, message)
    return run.result(x, success, message, evaluate=False,
                      fun=run.history.objective[-1] if run.history.objective else np.nan)
