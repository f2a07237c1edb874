"""L-BFGS on redrawn samples: the training schedule of the MFG experiments (MATH F), for any
problem whose data can be drawn afresh (MFG agents, CNF toy densities).

A fixed batch is overfit once the optimizer has exhausted it (a CNF on 4096 checkerboard
samples reaches a training NLL 0.08 nats below its test NLL); redrawing the samples every
``resample_every`` iterations optimizes the expectation instead.  L-BFGS restarts on each new
sample (its curvature pairs belong to the old one) unless the pairs are kept, the stages grow
the sample count (warm-started), and the iterate with the best objective on a fixed
validation sample is returned.  Checkpointed after every chunk (atomic,
:mod:`ocp_learn.optim.checkpoint`), resumable.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
from scipy.optimize import OptimizeResult

from ..errors import NonFiniteError, check_positive_int, check_rng
from ..ledger import Ledger
from ..protocols import ResamplableProblem, check_protocol
from .checkpoint import SAMPLE_KEYS, check_fingerprint, rng_state, run_fingerprint, set_rng_state
from .driver import Callback, Driver
from .lbfgs import lbfgs
from .parallel import SERIAL, Parallel
from .quasi_newton import LBFGSMemory, lbfgs_memory

__all__ = ["lbfgs_resampled", "objective_on"]

#: The tag of this driver's checkpoints.
METHOD = "lbfgs-resampled"


def objective_on(problem: ResamplableProblem, theta: np.ndarray, x: np.ndarray,
                 parallel: Parallel | None = None) -> float:
    """``J(theta)`` on the samples ``x`` in place of the problem's own (no gradient work).

    With a ``parallel`` over several processes this is a collective call: every process
    receives the same value (:class:`~ocp_learn.optim.parallel.Parallel`).
    """
    parallel = SERIAL if parallel is None else check_protocol(parallel, Parallel, "parallel")
    return parallel.objective_on(problem, theta, x)


def lbfgs_resampled(problem: ResamplableProblem, draw: Callable[[int, Any], np.ndarray],
                    theta0: Any = None, *, stages: Any = ((1024, 100),), resample_every: int = 25,
                    n_val: int | None = None, seed: Any = 0, progress: bool = False,
                    callback: Callback | None = None, checkpoint: Any = None,
                    resume: bool = False, keep_pairs: bool = False, memory: int = 10,
                    parallel: Parallel | None = None) -> OptimizeResult:
    """Staged L-BFGS with resampling and validation-based model selection.

    Parameters
    ----------
    problem : ResamplableProblem
        :class:`~ocp_learn.protocols.ResamplableProblem`: every draw becomes its training
        samples (``problem.set_samples``).
    draw : callable
        ``draw(n, rng) -> (n, d)`` array of fresh samples.
    theta0 : ndarray, optional
        Start; ``problem.init_params(seed)`` by default.
    stages : sequence of (n_samples, iterations)
        The sample schedule.
    resample_every : int
        Iterations between redraws.
    n_val : int, optional
        Validation samples (drawn once, first; default: the first stage's count).  The
        checkpoint records it, and a resume keeps it (the same validation sample), also when
        the stages change; a different ``n_val`` on resume is an error.
    seed : int or Generator
        The stream of the draws (validation first, then one draw per chunk); keep it
        apart from the one that drew the problem's samples if that sample was trained on.
    progress : bool
        Progress bars of the L-BFGS runs.
    callback : callable, optional
        ``callback(iteration, theta, f, validation)`` after every chunk (after its
        checkpoint); returning True stops the run.
    checkpoint : str, optional
        File written after every chunk; with ``resume`` the run continues from it.  A
        checkpoint of :func:`~ocp_learn.optim.lbfgs` (a fixed-batch run) of the same problem
        is accepted as a warm start: its iterate and iteration count.  A checkpoint of
        another problem or of other settings (``resample_every``, ``keep_pairs``,
        ``memory``) is refused (:class:`~ocp_learn.errors.CheckpointError` naming what
        differs).  A finished run resumed with more
        iterations in its last stage continues that stage.
    resume : bool
        Continue from ``checkpoint`` if it exists.
    keep_pairs : bool
        Keep L-BFGS's correction pairs across redraws (:func:`~ocp_learn.optim.lbfgs_memory`)
        instead of restarting scipy's L-BFGS-B on every draw (the default): the first step
        on a new draw is then a quasi-Newton step rather than a unit gradient step and its
        line search.  The pairs are checkpointed, so such a run resumes bit for bit.
    memory : int
        Number of correction pairs.
    parallel : Parallel, optional
        Runs each L-BFGS data-parallel and evaluates the validation objective collectively
        (:class:`ocp_learn.distributed.Parallel`); one process by default.  Every process
        calls this function with the same arguments and draws the same samples.

    Returns
    -------
    scipy.optimize.OptimizeResult
        ``x`` = ``theta`` (best on validation), ``fun`` = ``validation`` (its validation
        objective), ``success``, ``message``, ``nit`` = ``iterations``, ``nfev``,
        ``history`` (per chunk: iteration, stage, train objective, validation objective,
        seconds), ``ledger`` and ``sweeps`` of the L-BFGS runs, ``seconds`` (summed over
        resumes).  A non-finite validation objective stops the run with ``success=False``
        at the best iterate so far.
    """
    resample_every = check_positive_int("resample_every", resample_every)
    stages = [(check_positive_int("stage samples", n), check_positive_int("stage iterations", k))
              for n, k in stages]
    memory = check_positive_int("memory", memory)
    check_protocol(problem, ResamplableProblem, "problem")
    parallel = SERIAL if parallel is None else check_protocol(parallel, Parallel, "parallel")
    run = Driver(problem, METHOD, theta0=theta0, seed=seed,
                 maxiter=sum(k for _, k in stages), progress=False, callback=callback,
                 checkpoint=checkpoint, checkpoint_every=1, resume=resume,
                 writes=parallel.is_writer,
                 label="L-BFGS, resampled, pairs kept" if keep_pairs else "L-BFGS-B, resampled")
    rng = check_rng(seed)
    fp = run_fingerprint(problem, METHOD, samples=False, resample_every=resample_every,
                         keep_pairs=bool(keep_pairs), memory=memory)
    loaded = run.load(accept=("L-BFGS-B",))
    arrays, meta = loaded if loaded is not None else ({}, {})
    if loaded is not None:
        check_fingerprint(checkpoint, meta, fp, optimizer=meta.get("method") == METHOD,
                          ignore=SAMPLE_KEYS)
    saved = meta.get("resampled")
    if saved is not None:
        # the validation sample is the first draw of the stream: the same size gives the
        # same sample, so the iterates before and after the resume are compared fairly
        if n_val is not None and int(n_val) != int(saved["n_val"]):
            raise ValueError(f"n_val: the checkpoint {checkpoint!r} selected its iterates on "
                             f"{saved['n_val']} validation samples; resume with n_val=None or "
                             f"{saved['n_val']}, got {n_val}")
        n_val = int(saved["n_val"])
    n_val = check_positive_int("n_val", n_val if n_val is not None else stages[0][0])
    x_val = draw(n_val, rng)
    theta = arrays.get("x", run.x0)
    pairs = LBFGSMemory(memory) if keep_pairs else None
    if keep_pairs and "S" in arrays:
        pairs = LBFGSMemory.from_state(arrays, memory)
    hist = {"iteration": [], "stage": [], "objective": [], "validation": [], "seconds": []}
    it = done0 = int(meta.get("nit", 0))  # a fixed-batch run's iterations count toward stage 1
    stage0 = 0
    best = (np.inf, theta.copy())  # after loading: a resumed run starts from its own iterate
    if saved is not None:
        stage0, done0, hist = saved["stage"], saved["done"], saved["history"]
        run.objective.nfev = int(saved["nfev"])
        run.history.t0 -= saved["seconds"]
        best = (saved["best_val"], arrays["best"])
        set_rng_state(rng, saved["rng"])
    run.nit = it

    def seconds():
        return time.perf_counter() - run.history.t0

    def state():
        return ({"best": best[1], **(pairs.state() if keep_pairs else {})},
                {"history": hist, "fingerprint": fp, "resampled": {
                    "stage": s, "done": done, "n_val": n_val, "nfev": run.objective.nfev,
                    "seconds": seconds(), "history": hist, "best_val": best[0],
                    "rng": rng_state(rng)}})

    failure = None
    for s in range(stage0, len(stages)):
        n_s, iters = stages[s]
        done = done0 if s == stage0 else 0
        while done < iters and failure is None and not run.stopped:
            problem.set_samples(draw(n_s, rng))
            k = min(resample_every, iters - done)
            if keep_pairs:
                res = parallel.minimize(problem, lbfgs_memory, theta, maxiter=k,
                                        progress=progress, memory=memory, pairs=pairs)
                pairs = res.memory
            else:
                res = parallel.minimize(problem, lbfgs, theta, maxiter=k, progress=progress,
                                        memory=memory)
            theta = res.x
            done += k
            it += max(res.nit, 1)
            run.objective.nfev += int(res.nfev)
            run.objective.ledger += Ledger(**res.ledger)
            try:
                val = parallel.objective_on(problem, theta, x_val)
            except NonFiniteError as exc:
                val, failure = np.inf, f"non-finite validation objective at iteration {it}: {exc}"
            if not np.isfinite(val) and failure is None:
                failure = f"non-finite validation objective ({val}) at iteration {it}"
            for key, v in zip(hist, (it, s + 1, float(res.fun), val, seconds())):
                hist[key].append(v)
            if val < best[0]:
                best = (val, theta.copy())
            if res.nit < k and res.success:
                done = iters  # converged on this sample: next stage
            run.iteration(it, theta, res.fun, val, state=state)
        if failure is not None or run.stopped:
            break
    if not np.isfinite(best[0]) and failure is None:  # nothing left to train: validate it
        best = (parallel.objective_on(problem, best[1], x_val), best[1])
    run.nit = it
    success, message = failure is None, failure or "all stages done"
    if failure is not None:
        message += "; returned the best finite iterate"
    return run.result(best[1], success, message, evaluate=False, fun=best[0], history=hist,
                      theta=best[1],
                      validation=best[0], iterations=it, seconds=seconds())
