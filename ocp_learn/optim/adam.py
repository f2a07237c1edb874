"""Adam with seeded mini-batches, step-size schedules and exact checkpoint/resume.

Generic over any problem with ``objective_and_gradient(theta, batch)``,
``n_samples`` and ``init_params(seed)``: every iteration draws the next
mini-batch of an epoch-wise random permutation (seeded generator), evaluates
the exact gradient of the discrete objective on it and takes the Adam step
(Kingma & Ba 2015)

    ``m = b1 m + (1 - b1) g``,  ``v = b2 v + (1 - b2) g^2``,
    ``theta -= lr_k (m / (1 - b1^k)) / (sqrt(v / (1 - b2^k)) + eps)``.
"""
from __future__ import annotations

import math

import numpy as np
from tqdm.auto import tqdm

from ..errors import NonFiniteError, check_positive_float, check_positive_int, check_rng
from ..ledger import Ledger
from .checkpoint import (resume_from, rng_state, save_checkpoint,
                         set_rng_state)
from .history import History, Objective, count_sweeps, make_result

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


def adam(problem, theta0=None, *, maxiter=1000, lr=1e-2, betas=(0.9, 0.999), eps=1e-8,
         batch_size=None, schedule="constant", seed=0, progress=True, callback=None,
         checkpoint=None, checkpoint_every=100, resume=False, final_objective=True):
    """Minimize ``problem``'s objective with Adam on seeded mini-batches.

    Parameters
    ----------
    problem : object
        Provides ``objective_and_gradient(theta, batch)`` (``batch`` an index
        array or ``None``), ``n_samples`` and ``init_params(seed)``.
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
    schedule : see :func:`get_schedule`
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
    resume : bool
        Continue from ``checkpoint`` if it exists, up to ``maxiter``; the result
        is bitwise that of an uninterrupted run with the same arguments (the
        schedule's horizon is ``maxiter``, so interrupt a run by its callback or
        a signal, not by a smaller ``maxiter``).
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
        naming the cause, and ``x`` the previous iterate (the last with a
        finite objective); parameters are never NaN.  A non-finite objective
        at ``theta0`` raises ``ValueError``.
    """
    maxiter = check_positive_int("maxiter", maxiter)
    lr = check_positive_float("lr", lr)
    eps = check_positive_float("eps", eps)
    checkpoint_every = check_positive_int("checkpoint_every", checkpoint_every)
    try:
        b1, b2 = (float(b) for b in betas)
    except (TypeError, ValueError):
        raise TypeError(f"betas must be a pair of floats, got {betas!r}") from None
    if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
        raise ValueError(f"betas must lie in [0, 1), got {betas!r}")
    if not hasattr(problem, "objective_and_gradient"):
        raise TypeError(f"problem must provide objective_and_gradient(theta, batch), "
                        f"got {type(problem).__name__}")
    n = int(getattr(problem, "n_samples"))
    if batch_size is not None:
        batch_size = check_positive_int("batch_size", batch_size)
        if batch_size >= n:
            batch_size = None
    lr_of = get_schedule(schedule, maxiter, lr)
    rng = check_rng(seed)
    if theta0 is None:
        x = np.asarray(problem.init_params(seed), dtype=np.float64).copy()
    elif hasattr(problem, "check_theta"):
        x = problem.check_theta(theta0, "theta0").copy()
    else:
        x = np.array(theta0, dtype=np.float64)
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    k = 0
    perm = rng.permutation(n) if batch_size else np.arange(0)
    pos = 0
    hist = History()
    ledger = Ledger()
    nfev = 0
    message = None
    restored = resume_from(checkpoint, resume, "adam", x.size)
    if restored is not None:
        arrays, meta, hist = restored
        if meta["batch_size"] != batch_size or meta["n_samples"] != n:
            raise ValueError(f"checkpoint {checkpoint!r} used batch_size={meta['batch_size']} "
                             f"on {meta['n_samples']} samples; this run: {batch_size} on {n}")
        x, m, v, perm = arrays["x"], arrays["m"], arrays["v"], arrays["perm"]
        k, pos, nfev = int(meta["step"]), int(meta["pos"]), int(meta["nfev"])
        set_rng_state(rng, meta["rng"])
        for key, val in meta["ledger"].items():
            setattr(ledger, key, val)

    def save():
        save_checkpoint(checkpoint, {"x": x, "m": m, "v": v, "perm": perm},
                        {"method": "adam", "n_params": int(x.size), "step": k, "pos": pos,
                         "nfev": nfev, "batch_size": batch_size, "n_samples": n,
                         "rng": rng_state(rng), "history": hist.as_dict(),
                         "ledger": ledger.as_dict()})

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

    bar = tqdm(total=maxiter, initial=k, disable=not progress, desc="Adam", leave=False)
    failure = None
    x_prev = None  # the last iterate whose objective was finite
    try:
        while k < maxiter and message is None:
            batch = next_batch()
            try:
                f, g = problem.objective_and_gradient(x, batch)
                if not (np.isfinite(f) and np.all(np.isfinite(g))):
                    raise NonFiniteError(f"objective or gradient is not finite ({f})")
            except NonFiniteError as exc:
                if x_prev is None and k == 0:
                    raise ValueError(f"theta0: the objective is not finite at the start ({exc})") \
                        from exc
                failure = str(exc)
                if x_prev is not None:
                    x = x_prev
                break
            nfev += 1
            ev = getattr(problem, "last_evaluation", None)
            if ev is not None:
                ledger += ev.ledger
            k += 1
            lr_k = float(lr_of(k))
            m = b1 * m + (1.0 - b1) * g
            v = b2 * v + (1.0 - b2) * (g * g)
            mhat = m / (1.0 - b1 ** k)
            vhat = v / (1.0 - b2 ** k)
            x_new = x - lr_k * mhat / (np.sqrt(vhat) + eps)
            hist.record(k - 1, f, g, lr=lr_k, sweeps=count_sweeps(ledger, problem))
            x_prev, x = x, x_new
            bar.update(1)
            bar.set_postfix(f=f"{f:.4e}")
            if callback is not None and callback(k, x, f, g):
                message = "stopped by callback"
            if checkpoint is not None and (k % checkpoint_every == 0 or message is not None):
                save()
    finally:
        bar.close()
    obj = Objective(problem, None)
    obj.nfev, obj.ledger = nfev, ledger
    if failure is not None:
        success = False
        if x_prev is not None:
            message = (f"non-finite objective at iterate {k}: {failure}; returned iterate "
                       f"{k - 1}, the last with a finite objective")
            k -= 1
        else:
            message = f"non-finite objective at iterate {k}: {failure}"
    else:
        success = True
        message = message or "maximum number of iterations reached"
    if final_objective:
        res = make_result(obj, x, success, message, k, hist, "Adam")
    else:
        from scipy.optimize import OptimizeResult
        res = OptimizeResult(x=x, fun=hist.objective[-1] if hist.objective else np.nan, jac=None,
                             success=success, message=message, nit=k, nfev=nfev, njev=nfev,
                             method="Adam", history=hist.as_dict(), ledger=ledger.as_dict(),
                             seconds=hist.time[-1] if hist.time else 0.0)
    res.sweeps = count_sweeps(ledger, problem)
    return res
