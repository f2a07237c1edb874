"""``ocp-learn mfg``: potential mean field games (article Table 1, Figure 3; MATH E, F)."""
from __future__ import annotations

import json
import os

import numpy as np

from ..cli import print_metrics, register_demo, subcommand

__all__ = ["run_mfg", "figure3"]


def run_mfg(problem="crowd", dim=2, *, out, stages=None, resample_every=25, seed=0, backend="numba",
            n_eval=None, n_plot=60, progress=False, figure=True, resume=False, keep_pairs=False):
    """Train a preset, evaluate every term on fresh samples, plot; writes ``out/metrics.json``.

    Training is checkpointed to ``out/checkpoint.npz`` after every redraw of the agents;
    ``resume`` continues from it.  ``keep_pairs``: L-BFGS keeps its correction pairs across
    redraws (:func:`ocp_learn.optim.lbfgs_resampled`)."""
    from ..problems.mfg import PRESETS, mfg_preset
    from ..problems.mfg_train import train_mfg
    from ..plotting.mfg import crowd_2d_figure

    os.makedirs(out, exist_ok=True)
    p = PRESETS[problem]
    prob = mfg_preset(problem, dim, stage=1, backend=backend, seed=seed)
    if stages is None:
        ns = p["samples"].get(dim, p["samples"][2])
        stages = tuple(zip(ns, p["iters"]))
    r = train_mfg(prob, stages=stages, resample_every=resample_every, seed=seed, progress=progress,
                  checkpoint=os.path.join(out, "checkpoint.npz"), resume=resume,
                  keep_pairs=keep_pairs)
    theta = r["theta"]
    from ..distributed import auto_comm
    if auto_comm().Get_rank() != 0:  # under MPI: rank 0 evaluates and writes
        return {}, prob, theta
    x_eval = prob.rho0.sample(n_eval or stages[-1][0], seed + 999)
    terms = prob.evaluate_on(theta, x_eval)
    m = {"problem": problem, "dim": int(dim), "objective": terms["objective"],
         "L": terms.get("L"), "F": terms.get("F", 0.0), "G": terms.get("G"),
         "hjb": terms.get("hjb", 0.0), "hjb_terminal": terms.get("hjb_terminal", 0.0),
         "iterations": int(r["iterations"]), "seconds": float(r["seconds"]),
         "n_params": int(prob.n_params), "stages": [list(s) for s in stages],
         "validation": float(r["validation"]), "nfev": int(r["nfev"]),
         "optimizer": "L-BFGS, pairs kept across redraws" if keep_pairs else
         "L-BFGS-B, restarted on every redraw"}
    if problem == "ot" and prob.rho1 is not None:
        from ..metrics import wasserstein2
        zT = prob.trajectories(theta, x_eval[:1000])[-1]
        m["w2_to_rho1"] = wasserstein2(zT, prob.rho1.sample(1000, seed + 5))
    np.save(os.path.join(out, "theta.npy"), theta)
    with open(os.path.join(out, "metrics.json"), "w") as fh:
        json.dump(m, fh, indent=2, default=float)
    if figure:
        paths = prob.trajectories(theta, x_eval[:n_plot], nt=4 * prob.nt)
        obstacle = None
        if prob.field.interactions and hasattr(prob.field.interactions[0], "Q"):
            obstacle = prob.field.interactions[0].Q
        crowd_2d_figure(paths, os.path.join(out, "trajectories.png"), obstacle,
                        title=f"{problem}, d = {dim} (first two coordinates)")
    return m, prob, theta


def figure3(out, *, iters=150, n=256, seed=0, backend="numba"):
    """Article Figure 3 in 1-D: OT (straight trajectories) against crowd motion with an
    obstacle in the middle of the domain (trajectories bend away from it), for the same
    Gaussian-mixture density and the standard Gaussian reference.  The article gives no
    constants; ours (shared with the gallery example ``examples/plot_mfg.py``):
    ``rho_0 = 0.5 N(-2, 0.15) + 0.5 N(2, 0.15)``, ``rho_1 = N(0, 1)``, obstacle
    ``Q = 10 N(x; 0, 0.2)`` plus entropy ``0.01``, ``alpha = (2, 1, 5, 3, 3)`` (OT) and
    ``(1, 1, 5, 20, 1)`` (crowd motion) as in the 2-D presets, RK4 with 4 steps, L-BFGS."""
    from ..costs.interactions import EntropyCost, ObstacleCost
    from ..datasets.densities import GaussianMixture, gaussian
    from ..optim import lbfgs
    from ..plotting.mfg import trajectories_1d_figure
    from ..problems.mfg import PotentialMFG

    rho0 = GaussianMixture([[-2.0], [2.0]], 0.15)
    rho1 = gaussian([0.0], 1.0)
    obst = ObstacleCost(10.0, center=(0.0,), var=(0.2,))
    games = (("OT", [], (2, 1, 5, 3, 3)),
             ("crowd motion", [obst, EntropyCost(0.01)], (1, 1, 5, 20, 1)))
    x = np.linspace(-2.6, 2.6, 27)
    x = x[np.abs(x) > 1.3][:, None]  # agents from both bumps
    panels, res = [], {}
    for name, inter, alpha in games:
        prob = PotentialMFG(rho0, rho1, n_samples=n, interactions=inter, alpha=alpha, nt=4,
                            backend=backend, seed=seed)
        r = lbfgs(prob, prob.init_params(seed), maxiter=iters, progress=False)
        paths = prob.trajectories(r.x, x, nt=32)[..., 0]
        times = np.linspace(0, 1, paths.shape[0])
        panels.append((name, times, paths))
        ev = prob.evaluate_on(r.x, rho0.sample(4000, seed + 4))
        # straightness: the largest deviation of a path from the chord between its end points
        chord = paths[0] + times[:, None] * (paths[-1] - paths[0])
        ev["max_deviation_from_chord"] = float(np.max(np.abs(paths - chord)))
        res[name] = ev
    os.makedirs(out, exist_ok=True)
    trajectories_1d_figure(panels, os.path.join(out, "figure3.png"), obstacle=obst.Q)
    with open(os.path.join(out, "figure3.json"), "w") as fh:
        json.dump(res, fh, indent=2, default=float)
    return res


@subcommand("mfg", "potential mean field games: ot | crowd | nf | nf-ot in any dimension (Table 1)")
def cmd_mfg(args):
    if args.figure3:
        res = figure3(args.out, iters=args.iters or 150, seed=args.seed, backend=args.backend)
        print(json.dumps(res, indent=2, default=float))
        return 0
    from ..errors import check_positive_int
    for name in ("samples", "iters_stages"):
        for v in getattr(args, name) or []:
            check_positive_int("--" + name.replace("_", "-"), v)
    if args.iters is not None:
        check_positive_int("--iters", args.iters)
    check_positive_int("--dim", args.dim)
    check_positive_int("--resample-every", args.resample_every)
    stages = None
    if args.samples or args.iters or args.iters_stages:
        from ..problems.mfg import PRESETS
        p = PRESETS[args.problem]
        ns = args.samples or p["samples"].get(args.dim, p["samples"][2])
        its = args.iters_stages or ([args.iters] * len(ns) if args.iters else p["iters"])
        if len(its) != len(ns):
            raise ValueError(f"--iters-stages must give one count per stage ({len(ns)}), got {len(its)}")
        stages = tuple(zip(ns, its))
    m, _, _ = run_mfg(args.problem, args.dim, out=args.out, stages=stages,
                      resample_every=args.resample_every, seed=args.seed, backend=args.backend,
                      progress=args.progress, resume=args.resume, keep_pairs=args.keep_pairs)
    print_metrics(m)
    return 0


def _configure(p):
    p.add_argument("--problem", choices=["ot", "crowd", "nf", "nf-ot"], default="crowd")
    p.add_argument("--dim", type=int, default=2)
    p.add_argument("--out", required=True)
    p.add_argument("--samples", type=int, nargs="+", help="agents per stage (default: MATH F)")
    p.add_argument("--iters", type=int, help="iterations per stage (default: MATH F)")
    p.add_argument("--iters-stages", type=int, nargs="+", help="iterations of each stage")
    p.add_argument("--resample-every", type=int, default=25)
    p.add_argument("--backend", choices=["numpy", "numba"], default="numba")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--figure3", action="store_true", help="the article's 1-D Figure 3 instead")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--keep-pairs", action="store_true",
                   help="L-BFGS keeps its correction pairs across redraws of the agents "
                        "(default: scipy's L-BFGS-B restarted on every redraw)")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.npz (written after every redraw of the agents)")


cmd_mfg.configure = _configure


@register_demo
def run_demo_mfg(out, seed=0, progress=False):
    """A small 2-D crowd-motion run (seconds)."""
    m, _, _ = run_mfg("crowd", 2, out=os.path.join(out, "mfg"), stages=((256, 40),),
                      resample_every=20, seed=seed, n_eval=1000, progress=progress)
    keep = ("objective", "L", "F", "G", "hjb", "hjb_terminal", "iterations", "seconds")
    return {"problem": "mfg (crowd motion, d=2, short)", **{k: m[k] for k in keep}}
