"""Potential mean field games (MATH E, F): the staged training schedule of the PNAS 2020
experiments, a run that writes its results to a folder (``ocp-learn mfg``, Table 1), and the
article's 1-D Figure 3.

The schedule: the agents are redrawn every ``resample_every`` iterations (the optimizer
restarts on the new sample), in stages with growing sample counts (warm-started), and the
iterate with the best objective on a fixed validation sample is kept.
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Callable, Sequence

import numpy as np
from scipy.optimize import OptimizeResult

from ..metrics import SE_NOTE
from ._common import UNITS, Parallel, RunFolder, serial_or, write_results
from .bundle import BUNDLE, save_bundle

__all__ = ["train_mfg", "mfg_estimates", "run_mfg", "figure3", "demo_mfg", "MFG_TERMS",
           "VALIDATION_NOTE"]

#: The objective and its terms as reported (each with ``_se`` and ``_n``).
MFG_TERMS = ("objective", "L", "F", "G", "hjb", "hjb_terminal")

VALIDATION_NOTE = ("validation_best_selected: the lowest objective over the checkpoints of the "
                   "run on one fixed validation sample, the figure the parameters were selected "
                   "by; biased low, not the objective reached (that is 'objective', on fresh "
                   "agents, with its standard error)")


def train_mfg(prob: Any, theta0: np.ndarray | None = None, *,
              stages: Sequence[tuple[int, int]] = ((1024, 100),), resample_every: int = 25,
              n_val: int | None = None, optimizer: str = "lbfgs", seed: int = 0,
              progress: bool = False, callback: Callable[..., Any] | None = None,
              checkpoint: str | None = None, resume: bool = False, keep_pairs: bool = False,
              parallel: Parallel | None = None) -> OptimizeResult:
    """Staged training with resampling and validation-based model selection
    (:func:`ocp_learn.optim.lbfgs_resampled` with the agents drawn from ``rho_0``).

    Parameters
    ----------
    prob : PotentialMFG
        The game; its agents are replaced by each draw.
    theta0 : ndarray, optional
        Start (default: ``prob.init_params(seed)``).
    stages : sequence of (n_samples, iterations)
        The sample schedule (MATH F: two stages, more samples in the second).
    resample_every : int
        Iterations between redraws of the agents.
    n_val : int, optional
        Validation agents (fixed, drawn once; default: the first stage's count).
    optimizer : {"lbfgs"}
        The optimizer (the MFG has no Gauss--Newton structure).
    seed : int
        Seed of the draws (every process draws the same agents).
    progress : bool
        Show a progress bar.
    callback : callable, optional
        ``callback(iteration, theta, objective, validation)`` after every redraw.
    checkpoint : str, optional
        File written after every redraw; with ``resume`` training continues from it.
    resume : bool
        Continue from ``checkpoint``.
    keep_pairs : bool
        L-BFGS keeps its correction pairs across redraws instead of restarting on each.
    parallel : ocp_learn.optim.Parallel, optional
        Runs each L-BFGS data-parallel and agrees on the validation objective
        (:class:`ocp_learn.distributed.Parallel`); None: one process.

    Returns
    -------
    scipy.optimize.OptimizeResult
        :func:`~ocp_learn.optim.lbfgs_resampled`'s: ``theta`` (best on validation),
        ``validation`` (the best objective over the checkpoints on one fixed validation
        sample: the selection figure, biased low; evaluate ``theta`` on fresh agents,
        :func:`mfg_estimates`, for the objective reached), ``history`` (per chunk:
        iteration, stage, train objective, validation objective, seconds), ``iterations``,
        ``nfev``, ``seconds``.
    """
    from ..optim.resampled import lbfgs_resampled

    if optimizer != "lbfgs":
        raise ValueError("optimizer must be 'lbfgs' for the MFG (no Gauss-Newton structure), "
                         f"got {optimizer!r}")
    return lbfgs_resampled(prob, prob.rho0.sample, theta0, stages=stages,
                           resample_every=resample_every, n_val=n_val, seed=seed,
                           progress=progress, callback=callback, checkpoint=checkpoint,
                           resume=resume, keep_pairs=keep_pairs, parallel=parallel)


def _obstacle(prob: Any) -> Callable[[np.ndarray], np.ndarray] | None:
    from ..costs.interactions import ObstacleCost

    return next((F.Q for F in prob.field.interactions if isinstance(F, ObstacleCost)), None)


def mfg_estimates(prob: Any, theta: np.ndarray, x_eval: np.ndarray, *, n_batches: int = 20,
                  grid_factor: int = 4, grid_rtol: float = 1e-2) -> dict[str, Any]:
    """The objective and its terms on fresh agents with standard errors, and the
    discretization check on a finer time grid.

    Each term is a mean over independent agents; its standard error comes from the means
    of ``n_batches`` equal batches of ``x_eval`` (:func:`ocp_learn.metrics.batch_means`).
    The same parameters and agents are evaluated on a grid of ``grid_factor * nt`` steps:
    ``objective_fine`` and the paired difference ``objective_fine_diff = objective -
    objective_fine`` with its standard error.  A :class:`RuntimeWarning` says when
    ``|objective_fine_diff|`` exceeds ``max(3 se, objective_fine_tol)``, the tolerance
    ``objective_fine_tol = grid_rtol * max(1, |objective|)`` (train with a larger ``nt``).

    Parameters
    ----------
    prob : PotentialMFG
        The game (its time grid is the training one).
    theta : ndarray
        The parameters.
    x_eval : ndarray, shape (n, d)
        Fresh agents from ``rho_0`` (not the training or validation draws).
    n_batches : int
        Batches of the standard errors.
    grid_factor : int
        Refinement of the time grid of the check.
    grid_rtol : float
        Relative tolerance of the check.

    Returns
    -------
    dict
        ``objective``, ``L``, ``F``, ``G``, ``hjb``, ``hjb_terminal`` (:data:`MFG_TERMS`),
        ``objective_fine``, ``objective_fine_diff``, each with ``_se`` and ``_n``;
        ``nt_fine`` and ``objective_fine_tol``.
    """
    from ..metrics import batch_means, combine_batches, put_estimate

    fine = prob.with_steps(grid_factor * prob.nt)
    sizes, coarse = batch_means(lambda b: prob.evaluate_on(theta, b), x_eval, n_batches)
    _, refined = batch_means(lambda b: fine.evaluate_on(theta, b), x_eval, n_batches)
    m: dict[str, Any] = {}
    for key in MFG_TERMS:
        put_estimate(m, key, *combine_batches(sizes, coarse.get(key, np.zeros(len(sizes)))))
    put_estimate(m, "objective_fine", *combine_batches(sizes, refined["objective"]))
    put_estimate(m, "objective_fine_diff",
                 *combine_batches(sizes, coarse["objective"] - refined["objective"]))
    tol = grid_rtol * max(1.0, abs(m["objective"]))
    m.update(nt_fine=int(fine.nt), objective_fine_tol=float(tol))
    diff, se = m["objective_fine_diff"], m["objective_fine_diff_se"]
    if abs(diff) > max(3.0 * se, tol):
        warnings.warn(f"the objective moves from {m['objective']:.4f} to "
                      f"{m['objective_fine']:.4f} (difference {diff:.3g} +- {se:.1e}, paired) on "
                      f"a {grid_factor} times finer time grid, above max(3 se, {tol:.3g}): the "
                      f"{prob.nt}-step game is not resolved in time (train with a larger nt)",
                      RuntimeWarning, stacklevel=2)
    return m


def run_mfg(problem: str = "crowd", dim: int = 2, *, out: str,
            stages: Sequence[tuple[int, int]] | None = None, resample_every: int = 25,
            seed: int = 0, backend: str = "numba", n_eval: int | None = None, n_plot: int = 60,
            progress: bool = False, figure: bool = True, resume: bool = False,
            keep_pairs: bool = False, parallel: Parallel | None = None,
            info: dict[str, Any] | None = None) -> tuple[dict[str, Any], Any, np.ndarray]:
    """Train a Table 1 preset, evaluate every term on fresh agents, and write
    ``out/theta.npy``, ``out/model.npz`` (the bundle, :mod:`.bundle`), ``out/metrics.json``,
    then the optional ``w2_to_rho1`` metric and
    ``out/trajectories.png``.

    Training is checkpointed to ``out/checkpoint.npz`` after every redraw of the agents.
    The optional metric needs POT (the ``ot`` package); without it the run still writes
    its results, and ``metrics["skipped"]`` names the metric and the reason.

    Parameters
    ----------
    problem : {"ot", "crowd", "crowd-avoid", "nf", "nf-ot"}
        The preset (:func:`ocp_learn.problems.mfg.mfg_preset`).
    dim : int
        Dimension.
    out : str
        Output folder (created).
    stages : sequence of (n_samples, iterations), optional
        The schedule (default: the preset's, MATH F).
    resample_every : int
        Iterations between redraws of the agents.
    seed : int
        Seed of the parameters and the draws; the evaluation agents use ``seed + 999``.
    backend : {"numpy", "numba"}
        Kernel backend.
    n_eval : int, optional
        Evaluation agents (default: the last stage's count).
    n_plot : int
        Agents drawn in the figure.
    progress : bool
        Show a progress bar.
    figure : bool
        Write ``trajectories.png``.
    resume : bool
        Continue from ``out/checkpoint.npz``.
    keep_pairs : bool
        L-BFGS keeps its correction pairs across redraws.
    parallel : ocp_learn.optim.Parallel, optional
        Trains data-parallel; only its writing process evaluates and writes.
    info : dict, optional
        The run's description (:func:`~.rundir.run_info`), stored with the metrics and in
        ``out/run.json``; the folder is a :class:`~.rundir.RunFolder`.

    Returns
    -------
    metrics : dict
        :func:`mfg_estimates` on the evaluation agents (the objective and its terms with
        standard errors and sample counts, the finer-grid check),
        ``validation_best_selected`` (the selection figure, biased low: see
        ``VALIDATION_NOTE``), and the run's statistics (empty on a non-root process).
    problem : PotentialMFG
        The trained game.
    theta : ndarray
        The selected parameters.
    """
    from ..problems.mfg import PRESETS, mfg_preset

    p = PRESETS[problem]
    with RunFolder(out, info, active=serial_or(parallel).is_writer) as folder:
        prob = mfg_preset(problem, dim, stage=1, backend=backend, seed=seed)
        if stages is None:
            ns = p["samples"].get(dim, p["samples"][2])
            stages = tuple(zip(ns, p["iters"]))
        r = train_mfg(prob, stages=stages, resample_every=resample_every, seed=seed,
                      progress=progress, checkpoint=os.path.join(out, "checkpoint.npz"),
                      resume=resume, keep_pairs=keep_pairs, parallel=parallel)
        theta = r["theta"]
        if not folder.active:  # one process evaluates and writes
            return {}, prob, theta
        write_results(folder, theta, None)  # the parameters first: the evaluation may fail
        unsaved = save_bundle(folder, prob, theta)
        n_eval = int(n_eval or stages[-1][0])
        x_eval = prob.rho0.sample(n_eval, seed + 999)
        m = {"problem": problem, "dim": int(dim), **mfg_estimates(prob, theta, x_eval),
             "iterations": int(r["iterations"]), "seconds": float(r["seconds"]),
             "n_params": int(prob.n_params), "stages": [list(s) for s in stages],
             "validation_best_selected": float(r["validation"]),
             "validation_note": VALIDATION_NOTE, "se_note": SE_NOTE, "nfev": int(r["nfev"]),
             "optimizer": "L-BFGS, pairs kept across redraws" if keep_pairs else
             "L-BFGS-B, restarted on every redraw",
             "resample_every": int(resample_every), "seed": int(seed), "backend": backend,
             "n_eval": n_eval, "message": str(r.get("message", "")), "units": UNITS}
        if unsaved:
            m["skipped"] = {BUNDLE: unsaved}
        write_results(folder, None, m)
        if problem == "ot" and prob.rho1 is not None:
            try:
                from ..metrics import wasserstein2

                zT = prob.trajectories(theta, x_eval[:1000])[-1]
                m["w2_to_rho1"] = wasserstein2(zT, prob.rho1.sample(1000, seed + 5))
                m["w2_to_rho1_n"] = int(len(zT))
                m["w2_to_rho1_se"] = None
                m["w2_to_rho1_se_note"] = (
                    "not available: the empirical W2 between two samples is biased upward at "
                    "finite n (it stays positive for two samples of one law), so a standard "
                    "error would not bound its error")
            except ImportError as exc:
                m.setdefault("skipped", {})["w2_to_rho1"] = (
                    f'needs POT (pip install "ocp_learn[test]" or pip install pot): {exc}')
            write_results(folder, None, m)
        if figure:
            from ..plotting.mfg import crowd_2d_figure

            paths = prob.trajectories(theta, x_eval[:n_plot], nt=4 * prob.nt)
            with folder.writing("trajectories.png") as tmp:
                crowd_2d_figure(paths, tmp, _obstacle(prob),
                                title=f"{problem}, d = {dim} (first two coordinates)")
    return m, prob, theta


def figure3(out: str, *, iters: int = 150, n: int = 256, seed: int = 0,
            backend: str = "numba", progress: bool = False,
            info: dict[str, Any] | None = None) -> dict[str, dict[str, float]]:
    """The article's Figure 3 in 1-D: OT against crowd motion with an obstacle.

    OT gives straight trajectories; crowd motion with an obstacle in the middle of the domain
    keeps the agents out of it (in 1-D they stop short of it), for the same Gaussian-mixture
    density and the standard Gaussian reference.  The article gives no constants; ours
    (shared with the gallery example ``examples/plot_mfg.py``): ``rho_0 = 0.5 N(-2, 0.15) + 0.5 N(2, 0.15)``,
    ``rho_1 = N(0, 1)``, obstacle ``Q = 10 N(x; 0, 0.2)`` plus entropy ``0.01``,
    ``alpha = (2, 1, 5, 3, 3)`` (OT) and ``(1, 1, 5, 20, 1)`` (crowd motion) as in the 2-D
    presets, RK4 with 4 steps, L-BFGS.  Writes ``out/figure3.json`` (first), then
    ``out/figure3.png`` and ``out/figure3.pdf`` (the obstacle shaded in the crowd-motion
    panel only).

    Parameters
    ----------
    out : str
        Output folder (created).
    iters : int
        L-BFGS iterations per game.
    n : int
        Training agents.
    seed : int
        Seed of the agents and the parameters.
    backend : {"numpy", "numba"}
        Kernel backend.
    progress : bool
        Show a progress bar per game.
    info : dict, optional
        The run's description (:func:`~.rundir.run_info`), written to ``out/run.json``.

    Returns
    -------
    dict
        Per game (``"OT"``, ``"crowd motion"``): the objective's terms on 4000 fresh agents
        with their standard errors and the finer-grid check (:func:`mfg_estimates`), and
        ``max_deviation_from_chord``, the largest deviation of a path from the chord
        between its end points.
    """
    from ..costs.interactions import EntropyCost, ObstacleCost
    from ..datasets.densities import GaussianMixture, gaussian
    from ..optim import lbfgs
    from ..problems.mfg import PotentialMFG

    rho0 = GaussianMixture([[-2.0], [2.0]], 0.15)
    rho1 = gaussian([0.0], 1.0)
    obst = ObstacleCost(10.0, center=(0.0,), var=(0.2,))
    games = (("OT", [], (2, 1, 5, 3, 3)),
             ("crowd motion", [obst, EntropyCost(0.01)], (1, 1, 5, 20, 1)))
    x = np.linspace(-2.6, 2.6, 27)
    x = x[np.abs(x) > 1.3][:, None]  # agents from both bumps
    panels, res = [], {}
    with RunFolder(out, info) as folder:
        for name, inter, alpha in games:
            prob = PotentialMFG(rho0, rho1, n_samples=n, interactions=inter, alpha=alpha, nt=4,
                                backend=backend, seed=seed)
            r = lbfgs(prob, prob.init_params(seed), maxiter=iters, progress=progress)
            paths = prob.trajectories(r.x, x, nt=32)[..., 0]
            times = np.linspace(0, 1, paths.shape[0])
            panels.append((name, times, paths, obst.Q if inter else None))  # Q where it acts
            ev = mfg_estimates(prob, r.x, rho0.sample(4000, seed + 4))
            # straightness: the largest deviation of a path from the chord between its ends
            chord = paths[0] + times[:, None] * (paths[-1] - paths[0])
            ev["max_deviation_from_chord"] = float(np.max(np.abs(paths - chord)))
            res[name] = ev
        write_results(folder, None, res, metrics_name="figure3.json")
        from ..plotting.mfg import trajectories_1d_figure

        for ext in ("png", "pdf"):
            with folder.writing(f"figure3.{ext}") as tmp:
                trajectories_1d_figure(panels, tmp)
    return res


def demo_mfg(out: str, seed: int = 0, progress: bool = False) -> dict[str, Any]:
    """The MFG part of ``ocp-learn demo``: a small 2-D crowd-motion run (seconds).

    Parameters
    ----------
    out : str
        The demo's folder; this part writes into ``out/mfg``.
    seed : int
        Seed of the run.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        ``problem`` (a label) and the run's main metrics.
    """
    m, _, _ = run_mfg("crowd", 2, out=os.path.join(out, "mfg"), stages=((256, 40),),
                      resample_every=20, seed=seed, n_eval=1000, progress=progress)
    keep = ("objective", "objective_se", "objective_n", "L", "F", "G", "hjb", "hjb_terminal",
            "iterations", "seconds")
    return {"problem": "mfg (crowd motion, d=2, short)", **{k: m[k] for k in keep}}
