"""L-BFGS on redrawn samples: the training schedule of the MFG experiments (MATH F), for any
problem whose data can be drawn afresh (MFG agents, CNF toy densities).

A fixed batch is overfit once the optimizer has exhausted it (a CNF on 4096 checkerboard
samples reaches a training NLL 0.08 nats below its test NLL); redrawing the samples every
``resample_every`` iterations optimizes the expectation instead.  L-BFGS restarts on each new
sample (its curvature pairs belong to the old one), the stages grow the sample count
(warm-started), and the iterate with the best objective on a fixed validation sample is
returned.  Checkpointed after every chunk (atomic, :mod:`ocp_learn.optim.checkpoint`), resumable.
"""
from __future__ import annotations

import time

import numpy as np

from ..errors import check_positive_int, check_rng
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state

__all__ = ["lbfgs_resampled", "objective_on"]


def objective_on(problem, theta, x, comm=None):
    """``J(theta)`` with the samples ``x`` in place of ``problem.x0`` (no gradient work).

    Under ``mpiexec -n K`` (``comm``, default :func:`~ocp_learn.distributed.auto_comm`, of
    more than one rank) this is a collective call: each rank evaluates its shard of ``x`` and
    every rank receives the same reduced value (:class:`~ocp_learn.distributed.DistributedProblem`,
    equal to the serial value up to rounding), so that the ranks agree on the model selection.
    """
    from ..distributed import DistributedProblem, auto_comm

    comm = auto_comm() if comm is None else comm
    x_old, problem.x0 = problem.x0, x
    try:
        if comm.Get_size() > 1:
            return float(DistributedProblem(problem, comm).objective(theta))
        return float(problem.evaluate(theta, gradient=False).value)
    finally:
        problem.x0 = x_old


def lbfgs_resampled(problem, draw, theta0=None, *, stages=((1024, 100),), resample_every=25,
                    n_val=None, seed=0, progress=False, callback=None, checkpoint=None,
                    resume=False, keep_pairs=False, memory=10):
    """Staged L-BFGS with resampling and validation-based model selection.

    Under ``mpiexec -n K`` every rank draws the same samples (same seed) and each
    L-BFGS run is sharded over the ranks (:func:`ocp_learn.distributed.minimize`).

    Parameters
    ----------
    problem : OCP
        Its samples ``problem.x0`` are replaced by each draw.
    draw : callable
        ``draw(n, rng) -> (n, d)`` array of fresh samples.
    theta0 : ndarray, optional
        Start; ``problem.init_params(seed)`` by default.
    stages : sequence of (n_samples, iterations)
    resample_every : int
        Iterations between redraws.
    n_val : int, optional
        Validation samples (drawn once, first; default: the first stage's count).  The
        checkpoint records it, and a resume keeps it (the same validation sample), also when
        the stages change; a different ``n_val`` on resume is an error.
    seed : int or Generator
        The stream of the draws (validation first, then one draw per chunk); keep it
        apart from the one that drew ``problem.x0`` if that sample was trained on.
    checkpoint : str, optional
        File written after every chunk; with ``resume`` the run continues from it.  A
        checkpoint of :func:`~ocp_learn.optim.lbfgs` (a fixed-batch run) is accepted as a
        warm start: its iterate and iteration count.  A finished run resumed with more
        iterations in its last stage continues that stage.
    keep_pairs : bool
        Keep L-BFGS's correction pairs across redraws (:func:`~ocp_learn.optim.lbfgs_memory`)
        instead of restarting scipy's L-BFGS-B on every draw (the default): the first step
        on a new draw is then a quasi-Newton step rather than a unit gradient step and its
        line search.  The pairs are checkpointed, so such a run resumes bit for bit.
    memory : int
        Number of correction pairs.

    Returns
    -------
    dict with ``theta`` (best on validation), ``validation``, ``history`` (per chunk:
    iteration, stage, train objective, validation objective, seconds), ``iterations``,
    ``nfev``, ``seconds``.
    """
    from ..distributed import auto_comm, minimize
    from .lbfgs import lbfgs
    from .quasi_newton import LBFGSMemory, lbfgs_memory

    resample_every = check_positive_int("resample_every", resample_every)
    stages = [(check_positive_int("stage samples", n), check_positive_int("stage iterations", k))
              for n, k in stages]
    rng = check_rng(seed)
    theta = problem.init_params(seed) if theta0 is None else np.array(theta0, dtype=np.float64)
    hist = {"iteration": [], "stage": [], "objective": [], "validation": [], "seconds": []}
    it = nfev = 0
    stage0, done0, elapsed = 0, 0, 0.0
    arrays = meta = None
    if resume and checkpoint is not None:
        try:
            arrays, meta = load_checkpoint(checkpoint)
        except FileNotFoundError:
            pass
    saved = (meta or {}).get("resampled")
    if saved is not None and saved.get("n_val") is not None:
        # the validation sample is the first draw of the stream: the same size gives the
        # same sample, so the iterates before and after the resume are compared fairly
        if n_val is not None and int(n_val) != int(saved["n_val"]):
            raise ValueError(f"n_val: the checkpoint {checkpoint!r} selected its iterates on "
                             f"{saved['n_val']} validation samples; resume with n_val=None or "
                             f"{saved['n_val']}, got {n_val}")
        n_val = int(saved["n_val"])
    n_val = check_positive_int("n_val", n_val if n_val is not None else stages[0][0])
    x_val = draw(n_val, rng)
    best = (np.inf, theta.copy())
    pairs = LBFGSMemory(memory) if keep_pairs else None
    if meta is not None:
        theta = arrays["x"]
        if keep_pairs and "S" in arrays:
            pairs = LBFGSMemory.from_state(arrays, memory)
        it = int(meta.get("it", meta.get("nit", 0)))
        done0 = it  # a fixed-batch checkpoint: its iterations count toward the first stage
        if saved is not None:
            stage0, done0, nfev, elapsed = saved["stage"], saved["done"], saved["nfev"], \
                saved["seconds"]
            hist = saved["history"]
            best = (saved["best_val"], arrays["best"])
            set_rng_state(rng, saved["rng"])
    t0 = time.perf_counter() - elapsed
    for s in range(stage0, len(stages)):
        n_s, iters = stages[s]
        done = done0 if s == stage0 else 0
        while done < iters:
            problem.x0 = draw(n_s, rng)
            k = min(resample_every, iters - done)
            if keep_pairs:
                res = minimize(problem, lbfgs_memory, theta, maxiter=k, progress=progress,
                               memory=memory, pairs=pairs)
                pairs = res.memory
            else:
                res = minimize(problem, lbfgs, theta, maxiter=k, progress=progress,
                               memory=memory)
            theta = res.x
            done += k
            it += max(res.nit, 1)
            nfev += int(res.nfev)
            val = objective_on(problem, theta, x_val)
            for key, v in zip(hist, (it, s + 1, float(res.fun), val, time.perf_counter() - t0)):
                hist[key].append(v)
            if val < best[0]:
                best = (val, theta.copy())
            if res.nit < k and res.success:
                done = iters  # converged on this sample: next stage
            if checkpoint is not None and auto_comm().Get_rank() == 0:  # one writer under MPI
                save_checkpoint(checkpoint, {"x": theta, "best": best[1],
                                             **(pairs.state() if keep_pairs else {})},
                                {"it": it, "resampled": {
                                    "stage": s, "done": done, "n_val": n_val,
                                    "nfev": nfev, "seconds": time.perf_counter() - t0,
                                    "history": hist, "best_val": best[0], "rng": rng_state(rng)}})
            if callback is not None:
                callback(it, theta, res.fun, val)
    return {"theta": best[1], "validation": best[0], "history": hist, "iterations": it,
            "nfev": nfev, "seconds": time.perf_counter() - t0}
