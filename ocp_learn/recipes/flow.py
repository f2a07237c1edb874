"""Continuous normalizing flows (OT-Flow, MATH D4, D5): data, training, metrics, and a run that
writes its results to a folder (``ocp-learn flow``, the article's Figure 2)."""
from __future__ import annotations

import os
import time
import warnings
from typing import Any, Callable

import numpy as np
from scipy.optimize import OptimizeResult

from ._common import UNITS, Parallel, RunFolder, serial_or, write_results
from .bundle import BUNDLE, save_bundle

__all__ = ["flow_data", "train_flow", "flow_estimates", "flow_metrics", "run_flow", "demo_flow"]


def flow_data(name: str, n: int, seed: int | np.random.Generator,
              dim: int = 2) -> tuple[np.ndarray, float | None]:
    """Samples of a flow data set and its known entropy (the NLL floor).

    Parameters
    ----------
    name : str
        A 2-D toy set (see ``ocp_learn.datasets.toy2d.TOY2D``) or ``"gmm"``: a Gaussian
        mixture in ``dim`` dimensions with exact log-density (8 components, means on a scaled
        hypercube corner pattern, variance 0.3; the mixture is fixed, the samples follow
        ``seed``).
    n : int
        Number of samples.
    seed : int or numpy.random.Generator
        Seed of the samples.
    dim : int
        Dimension (``"gmm"`` only; the toy sets are 2-D).

    Returns
    -------
    x : ndarray, shape (n, dim)
        The samples.
    floor : float or None
        The entropy of the density, the lowest expected NLL (None where unknown).
    """
    from ..datasets.densities import GaussianMixture
    from ..datasets.toy2d import TOY2D, nll_floor, toy_sample

    if name == "digits":
        raise ValueError("the digits have a fixed split and no sampler: "
                         "ocp_learn.datasets.real.digits_density_data gives its parts "
                         "(ocp-learn flow --data digits)")
    if name == "gmm":
        rng = np.random.default_rng(12345)  # the mixture itself is fixed; samples follow `seed`
        means = 2.0 * rng.choice([-1.0, 1.0], size=(8, dim))
        gm = GaussianMixture(means, 0.3)
        return gm.sample(n, seed), gm.entropy(200_000, 0)[0]
    if name not in TOY2D:
        raise ValueError(f"data must be one of {sorted(TOY2D) + ['gmm']}, got {name!r}")
    if dim != 2:
        raise ValueError(f"dim must be 2 for the toy data set {name!r}, got {dim}")
    return toy_sample(name, n, seed), nll_floor(name)


def train_flow(x: np.ndarray, *, optimizer: str = "lbfgs", maxiter: int = 300, seed: int = 0,
               progress: bool = False, batch_size: int = 1024, lr: float = 0.02,
               checkpoint: str | None = None, checkpoint_every: int = 50, resume: bool = False,
               callback: Callable[..., Any] | None = None, resample_every: int | None = None,
               draw: Callable[[int, Any], np.ndarray] | None = None, n_val: int | None = None,
               keep_pairs: bool = False, parallel: Parallel | None = None,
               **problem_kwargs: Any) -> tuple[Any, OptimizeResult, float]:
    """Build and train a :class:`~ocp_learn.problems.cnf.ContinuousNormalizingFlow`.

    Three schedules: L-BFGS on the fixed training set ``x``; with ``resample_every`` and a
    sampler ``draw``, L-BFGS on ``len(x)`` fresh samples redrawn every ``resample_every``
    iterations (:func:`~ocp_learn.optim.lbfgs_resampled`); or Adam on seeded mini-batches
    with a cosine step-size schedule (Hutchinson probes redrawn every step).

    Parameters
    ----------
    x : ndarray, shape (n, d)
        Training samples (with ``resample_every``: only the size of each draw is used).
    optimizer : {"lbfgs", "adam"}
        The optimizer.
    maxiter : int
        Iterations.
    seed : int
        Seed of the initial parameters, the mini-batches and the draws.
    progress : bool
        Show a progress bar.
    batch_size, lr : int, float
        Adam's mini-batch size and step size.
    checkpoint : str, optional
        Checkpoint file; with ``resume`` training continues from it.
    checkpoint_every : int
        Iterations between checkpoints (fixed-batch L-BFGS, Adam; a resampled run writes one
        after every redraw).
    resume : bool
        Continue from ``checkpoint``.
    callback : callable, optional
        ``callback(k, theta, f, g)`` after every iteration (``g`` is None in a resampled run).
    resample_every : int, optional
        Iterations between redraws of the training samples (L-BFGS only).
    draw : callable, optional
        ``draw(n, rng)``: ``n`` fresh samples in data coordinates (mapped by the flow's fixed
        input map ``shift``, ``scale``); required with ``resample_every``.
    n_val : int, optional
        Validation samples of a resampled run (default ``len(x)``).
    keep_pairs : bool
        A resampled run keeps L-BFGS's correction pairs across redraws.
    parallel : ocp_learn.optim.Parallel, optional
        Runs the optimizer data-parallel (:class:`ocp_learn.distributed.Parallel`); None:
        one process.
    **problem_kwargs
        Passed to :class:`~ocp_learn.problems.cnf.ContinuousNormalizingFlow` (``width``,
        ``n_layers``, ``nt``, ``integrator``, ``alpha_L``, ``alpha_R``, ``trace``,
        ``backend``, ``shift``, ``scale``, ...).

    Returns
    -------
    problem : ContinuousNormalizingFlow
        The trained flow's problem (the samples of its last draw).
    result : scipy.optimize.OptimizeResult
        ``x`` (the parameters), ``fun`` (in a resampled run: the validation objective),
        ``nit``, ``nfev``, ``method``, ``success``, ``history``.
    seconds : float
        Training time (a resampled run's seconds summed over its resumes).
    """
    from ..optim import adam, lbfgs, lbfgs_resampled
    from ..problems.cnf import ContinuousNormalizingFlow

    prob = ContinuousNormalizingFlow(x, seed=seed, **problem_kwargs)
    theta0 = prob.init_params(seed)
    t0 = time.perf_counter()
    if resample_every is not None:
        if optimizer != "lbfgs" or draw is None:
            raise ValueError("resample_every needs optimizer='lbfgs' and a sampler draw(n, rng)")
        # a stream of its own: the first draw (validation) must not repeat the training set x
        res = lbfgs_resampled(prob, draw, theta0,
                              stages=((len(x), maxiter),),
                              resample_every=resample_every, n_val=n_val,
                              seed=np.random.default_rng([seed, 1]),
                              progress=progress,
                              checkpoint=checkpoint, resume=resume, keep_pairs=keep_pairs,
                              callback=None if callback is None else
                              (lambda k, th, f, val: callback(k, th, f, None)),
                              parallel=parallel)
    elif optimizer == "lbfgs":
        res = serial_or(parallel).minimize(
            prob, lbfgs, theta0, maxiter=maxiter, progress=progress, callback=callback,
            checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume)
    elif optimizer == "adam":
        def cb(k, th, f, g):
            if prob.trace == "hutchinson":
                prob.resample_probes()
            return callback(k, th, f, g) if callback else False
        res = serial_or(parallel).minimize(
            prob, adam, theta0, maxiter=maxiter, lr=lr, batch_size=batch_size,
            schedule="cosine", seed=seed, progress=progress, callback=cb, checkpoint=checkpoint,
            checkpoint_every=checkpoint_every, resume=resume)
    else:
        raise ValueError(f"optimizer must be 'lbfgs' or 'adam', got {optimizer!r}")
    # a resampled run's seconds add up over its resumes (kept in the checkpoint)
    return prob, res, res.get("seconds", time.perf_counter() - t0)


def flow_estimates(prob: Any, theta: np.ndarray, x_test: np.ndarray, seed: int = 0,
                   n_eval: int = 2000, n_batches: int = 20,
                   log_det: np.ndarray | None = None) -> dict[str, Any]:
    """The Monte Carlo figures of a trained flow on test samples, each with its standard
    error and sample count (``key``, ``key_se``, ``key_n``; :mod:`ocp_learn.metrics`).

    Parameters
    ----------
    prob : ContinuousNormalizingFlow
        The trained problem.
    theta : ndarray
        Its parameters.
    x_test : ndarray, shape (n_test, d)
        Test samples (data coordinates), not used in training or selection.
    seed : int
        Seed of the generated samples (MMD: ``seed + 7``).
    n_eval : int
        Test samples (the first rows) of the inverse error, MMD and the transport/HJB terms,
        and generated samples of the MMD.
    n_batches : int
        Batches of the standard errors of the transport/HJB terms and the inverse error.
    log_det : ndarray, shape (n_test,), optional
        ``log |det T'(x)|`` per test sample of a fixed invertible preprocessing ``T`` that
        gave ``x_test = T(x)``: the NLL figures are then those of the data ``x`` before it,
        ``log p_x(x) = log p(T(x)) + log |det T'(x)|`` (the other figures stay in the
        coordinates of ``x_test``).

    Returns
    -------
    dict
        ``test_nll`` (training grid, ``se = std(log p) / sqrt(n_test)``), ``test_nll_fine``
        (4 times finer grid), ``test_nll_fine_diff`` (``test_nll - test_nll_fine``, paired
        standard error), ``inverse_error``, ``transport_cost``, ``hjb_penalty`` (batch
        standard errors), ``mmd`` (split-estimator standard error,
        :func:`~ocp_learn.metrics.mmd_se`; ``mmd_n`` test samples, ``mmd_n_generated``
        generated ones), each with ``_se`` and ``_n``.
    """
    from ..metrics import (batch_means, combine_batches, mean_se, mmd, mmd_se,
                           put_estimate)

    m: dict[str, Any] = {}
    ld = 0.0 if log_det is None else np.asarray(log_det, dtype=np.float64)
    lp = prob.log_density(theta, x_test) + ld
    lp_fine = prob.log_density(theta, x_test, nt=4 * prob.nt) + ld
    put_estimate(m, "test_nll", *mean_se(-lp))
    put_estimate(m, "test_nll_fine", *mean_se(-lp_fine))
    put_estimate(m, "test_nll_fine_diff", *mean_se(lp_fine - lp))
    xe = x_test[:n_eval]
    sizes, bm = batch_means(lambda b: {**prob.terms(theta, b),
                                       "inverse_error": prob.inverse_error(theta, b)},
                            xe, n_batches)
    for key in ("inverse_error", "transport_cost", "hjb_penalty"):
        put_estimate(m, key, *combine_batches(sizes, bm[key]))
    gen = prob.sample(theta, n_eval, seed=seed + 7)
    put_estimate(m, "mmd", mmd(gen, xe), mmd_se(gen, xe, min(10, len(xe) // 2)), len(xe))
    m["mmd_n_generated"] = int(len(gen))
    return m


def flow_metrics(prob: Any, res: OptimizeResult, secs: float, x_test: np.ndarray,
                 floor: float | None, seed: int = 0, n_eval: int = 2000,
                 grid_tol: float = 0.05, log_det: np.ndarray | None = None) -> dict[str, Any]:
    """Test NLL, inverse error, MMD, transport and HJB terms of a trained flow, each with
    its standard error and sample count (:func:`flow_estimates`).

    The discrete ``ell`` is the flow's log-determinant only up to the time-stepping error,
    and training can exploit that error (an NLL below the floor); when the NLL on the 4 times
    finer grid differs by more than ``grid_tol`` nats a :class:`RuntimeWarning` says so
    (train with more steps, ``nt``).

    Parameters
    ----------
    prob : ContinuousNormalizingFlow
        The trained problem.
    res : scipy.optimize.OptimizeResult
        Its training result (``x``, ``nit``, ``nfev``, ``method``, ``success``).
    secs : float
        Training time, copied into the metrics.
    x_test : ndarray, shape (n_test, d)
        Test samples (data coordinates).
    floor : float or None
        The data set's entropy, copied into the metrics.
    seed : int
        Seed of the generated samples (MMD).
    n_eval : int
        Test samples used for the inverse error, MMD and the transport/HJB terms.
    grid_tol : float
        Largest accepted change of the NLL on the 4 times finer grid, in nats.
    log_det : ndarray, shape (n_test,), optional
        ``log |det T'(x)|`` of a fixed preprocessing ``x_test = T(x)``
        (:func:`flow_estimates`).

    Returns
    -------
    dict
        :func:`flow_estimates`, ``nll_floor``, ``se_note``, and the run's size and optimizer
        statistics.
    """
    from ..metrics import SE_NOTE

    th = res.x
    m = flow_estimates(prob, th, x_test, seed, n_eval, log_det=log_det)
    nll, fine = m["test_nll"], m["test_nll_fine"]
    if abs(fine - nll) > grid_tol:
        warnings.warn(f"the test NLL moves from {nll:.4f} to {fine:.4f} nats "
                      f"(+- {m['test_nll_fine_diff_se']:.1e}, paired) on a 4 times finer time "
                      f"grid: the {prob.nt}-step flow's log-determinant is not resolved (train "
                      "with a larger nt)", RuntimeWarning, stacklevel=2)
    m.update({"nll_floor": floor, "se_note": SE_NOTE, "iterations": int(res.nit),
              "seconds": float(secs), "n_params": int(prob.n_params), "nfev": int(res.nfev),
              "nt": int(prob.nt), "width": int(prob.potential.width),
              "layers": int(prob.potential.n_layers),
              "alpha_L": float(prob.alpha_L), "alpha_R": float(prob.alpha_R),
              "optimizer": res.method, "success": bool(res.success)})
    return m


def run_flow(data: str = "8gaussians", *, out: str, n_train: int = 2048, n_test: int = 10000,
             dim: int = 2, seed: int = 0, figure: bool = True, center: bool | int = False,
             parallel: Parallel | None = None, info: dict[str, Any] | None = None,
             **kwargs: Any) -> tuple[dict[str, Any], Any, OptimizeResult]:
    """Train a flow, evaluate it and write ``out/theta.npy``, ``out/model.npz`` (the bundle,
    :mod:`.bundle`), ``out/metrics.json`` and ``out/figure.png`` (in that order: the figure
    is optional).

    Parameters
    ----------
    data : str
        Data set (:func:`flow_data`), or ``"digits"``: the 8 x 8 digits of scikit-learn on
        a fixed split, dequantized and preprocessed
        (:func:`~.digits_flow.run_digits_flow`, which takes ``out``, ``seed``, ``figure``,
        ``info`` and ``kwargs``; ``n_train``, ``n_test``, ``dim`` and ``center`` do not
        apply, and it trains on one process).
    out : str
        Output folder (created).
    n_train, n_test : int
        Training samples (per draw, with ``resample_every``) and test samples (seed
        ``seed + 1000``).
    dim : int
        Dimension (``"gmm"``).
    seed : int
        Seed of the training samples, the initial parameters and the optimizer.
    figure : bool
        Write ``figure.png``.
    center : bool or int
        The flow's input shift: none (False), the training samples' mean (True), or the mean
        of ``center`` samples drawn with the training seed (an int: the shift then stays the
        same when a resumed run changes ``n_train``); ``scale``, passed on, divides after it.
    parallel : ocp_learn.optim.Parallel, optional
        Trains data-parallel; only its writing process evaluates and writes.
    info : dict, optional
        The run's description (:func:`~.rundir.run_info`), stored with the metrics and in
        ``out/run.json``; the folder is a :class:`~.rundir.RunFolder` (locked, marked
        ``INCOMPLETE`` until the run has finished).
    **kwargs
        Passed to :func:`train_flow`.

    Returns
    -------
    metrics : dict
        :func:`flow_metrics` and the run's settings (empty on a non-root process).
    problem : ContinuousNormalizingFlow
        The trained flow's problem.
    result : scipy.optimize.OptimizeResult
        The optimizer's result (``result.x`` the parameters).
    """
    from ..errors import check_positive_int

    if data == "digits":
        if parallel is not None or center is not False:
            raise ValueError("parallel and center do not apply to the digits (one process; "
                             "the flow standardizes with the training split)")
        from .digits_flow import run_digits_flow

        return run_digits_flow(out=out, seed=seed, figure=figure, info=info, **kwargs)
    with RunFolder(out, info, active=serial_or(parallel).is_writer) as folder:
        x, floor = flow_data(data, n_train, seed, dim)
        if center is True:
            kwargs["shift"] = x.mean(axis=0)
        elif center:
            kwargs["shift"] = flow_data(data, check_positive_int("center", center), seed,
                                        dim)[0].mean(axis=0)
        x_test, _ = flow_data(data, n_test, seed + 1000, dim)
        if kwargs.get("resample_every"):
            kwargs["draw"] = lambda n, rng: flow_data(data, n, rng, dim)[0]
        prob, res, secs = train_flow(x, seed=seed, parallel=parallel, **kwargs)
        if not folder.active:  # one process evaluates and writes
            return {}, prob, res
        write_results(folder, res.x, None)  # the parameters first: the evaluation may fail
        unsaved = save_bundle(folder, prob, res.x)
        m = flow_metrics(prob, res, secs, x_test, floor, seed)
        if unsaved:
            m["skipped"] = {BUNDLE: unsaved}
        m.update({"data": data, "dim": int(x.shape[1]), "n_train": int(n_train),
                  "n_test": int(n_test),
                  "input_scale": prob.scale.tolist() if np.ptp(prob.scale)
                  else float(prob.scale[0]),
                  "input_shift": prob.shift.tolist(), "seed": int(seed),
                  "message": str(res.get("message", "")), "units": UNITS})
        write_results(folder, None, m)
        if figure:
            from ..plotting.flows import flow_figure

            floor_txt = floor if floor is None else round(floor, 3)
            with folder.writing("figure.png") as tmp:
                flow_figure(prob, res.x, x_test, tmp,
                            title=f"{data}: test NLL {m['test_nll']:.3f} (floor {floor_txt})")
    return m, prob, res


def demo_flow(out: str, seed: int = 0, progress: bool = False) -> dict[str, Any]:
    """The flow part of ``ocp-learn demo``: a short OT-Flow run on 8gaussians (seconds).

    Parameters
    ----------
    out : str
        The demo's folder; this part writes into ``out/flow``.
    seed : int
        Seed of the run.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        ``problem`` (a label) and the run's main metrics.
    """
    m, _, _ = run_flow("8gaussians", out=os.path.join(out, "flow"), n_train=512, n_test=2000,
                       seed=seed, optimizer="lbfgs", maxiter=40, width=16, nt=4,
                       backend="numba", progress=progress)
    keep = ("test_nll", "nll_floor", "inverse_error", "mmd", "transport_cost", "iterations",
            "seconds")
    return {"problem": "flow (8gaussians, short)", **{k: m[k] for k in keep}}
