"""``ocp-learn flow``: continuous normalizing flows, the article's Figure 2 (MATH D4, D5)."""
from __future__ import annotations

import json
import os
import time

import numpy as np
from scipy.optimize import OptimizeResult

from ..cli import print_metrics, register_demo, subcommand

__all__ = ["train_flow", "flow_data", "run_flow"]


def flow_data(name, n, seed, dim=2):
    """Samples and the known entropy (NLL floor, or None) of a flow data set.

    ``name`` is a 2-D toy (see :data:`ocp_learn.datasets.toy2d.TOY2D`) or
    ``"gmm"``: a Gaussian mixture in ``dim`` dimensions with exact log-density
    (8 components, means on a scaled hypercube corner pattern, variance 0.3).
    """
    from ..datasets.densities import GaussianMixture
    from ..datasets.toy2d import TOY2D, nll_floor, toy_sample

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


def train_flow(x, *, optimizer="lbfgs", maxiter=300, seed=0, progress=False, batch_size=1024,
               lr=0.02, checkpoint=None, checkpoint_every=50, resume=False, callback=None,
               resample_every=None, draw=None, n_val=None, keep_pairs=False, **problem_kwargs):
    """Build and train a :class:`~ocp_learn.problems.cnf.ContinuousNormalizingFlow`.

    L-BFGS on the fixed training set; or, with ``resample_every`` and a sampler
    ``draw(n, rng)``, L-BFGS on ``len(x)`` fresh samples redrawn every ``resample_every``
    iterations (:func:`~ocp_learn.optim.lbfgs_resampled`; ``x`` is then only the first
    draw's size; ``n_val`` validation samples, default ``len(x)``; ``keep_pairs``: L-BFGS keeps
    its correction pairs across redraws; ``draw`` gives data coordinates, mapped by the
    flow's fixed input map ``shift``, ``scale``); or Adam on seeded mini-batches with a cosine step-size schedule
    (Hutchinson probes redrawn every step).  Under ``mpiexec -n K`` the samples are
    sharded over the ranks (:func:`ocp_learn.distributed.minimize`).
    Returns ``(problem, result, seconds)`` (a resampled run's seconds summed over resumes).
    """
    from ..distributed import minimize
    from ..optim import adam, lbfgs, lbfgs_resampled
    from ..problems.cnf import ContinuousNormalizingFlow

    prob = ContinuousNormalizingFlow(x, seed=seed, **problem_kwargs)
    theta0 = prob.init_params(seed)
    t0 = time.perf_counter()
    if resample_every is not None:
        if optimizer != "lbfgs" or draw is None:
            raise ValueError("resample_every needs optimizer='lbfgs' and a sampler draw(n, rng)")
        # a stream of its own: the first draw (validation) must not repeat the training set x
        r = lbfgs_resampled(prob, lambda n, rng: prob.to_latent(draw(n, rng)), theta0,
                            stages=((len(x), maxiter),),
                            resample_every=resample_every, n_val=n_val,
                            seed=np.random.default_rng([seed, 1]),
                            progress=progress,
                            checkpoint=checkpoint, resume=resume, keep_pairs=keep_pairs,
                            callback=None if callback is None else
                            (lambda k, th, f, val: callback(k, th, f, None)))
        res = OptimizeResult(x=r["theta"], fun=r["validation"], nit=r["iterations"],
                             nfev=r["nfev"], success=True,
                             method="L-BFGS, resampled, pairs kept" if keep_pairs else
                             "L-BFGS-B, resampled",
                             history=r["history"], seconds=r["seconds"])
    elif optimizer == "lbfgs":
        res = minimize(prob, lbfgs, theta0, maxiter=maxiter, progress=progress, callback=callback,
                       checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume)
    elif optimizer == "adam":
        def cb(k, th, f, g):
            if prob.trace == "hutchinson":
                prob.resample_probes()
            return callback(k, th, f, g) if callback else False
        res = minimize(prob, adam, theta0, maxiter=maxiter, lr=lr, batch_size=batch_size,
                       schedule="cosine", seed=seed, progress=progress, callback=cb,
                       checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume)
    else:
        raise ValueError(f"optimizer must be 'lbfgs' or 'adam', got {optimizer!r}")
    # a resampled run's seconds add up over its resumes (kept in the checkpoint)
    return prob, res, res.get("seconds", time.perf_counter() - t0)


def flow_metrics(prob, res, secs, x_test, floor, seed=0, n_eval=2000, grid_tol=0.05):
    """Test NLL (training grid and 4x finer) with its Monte Carlo standard error
    ``std(log p) / sqrt(n_test)``, inverse error, MMD, transport and HJB terms.

    The discrete ``ell`` is the flow's log-determinant only up to the time-stepping error,
    and training can exploit that error (an NLL below the floor); when the NLL on the 4 times
    finer grid differs by more than ``grid_tol`` nats a :class:`RuntimeWarning` says so
    (train with more steps, ``nt``).
    """
    import warnings

    from ..metrics import mmd

    th = res.x
    terms = prob.terms(th, x_test[:n_eval])
    gen = prob.sample(th, n_eval, seed=seed + 7)
    lp = prob.log_density(th, x_test)
    nll = float(-np.mean(lp))
    fine = prob.nll(th, x_test, nt=4 * prob.nt)
    if abs(fine - nll) > grid_tol:
        warnings.warn(f"the test NLL moves from {nll:.4f} to {fine:.4f} nats on a 4 "
                      f"times finer time grid: the {prob.nt}-step flow's log-determinant is not "
                      "resolved (train with a larger nt)", RuntimeWarning, stacklevel=2)
    return {"test_nll": nll, "test_nll_se": float(np.std(lp) / np.sqrt(lp.size)),
            "nll_floor": floor, "test_nll_fine": fine,
            "inverse_error": prob.inverse_error(th, x_test[:n_eval]),
            "mmd": mmd(gen, x_test[:n_eval]), "transport_cost": terms["transport_cost"],
            "hjb_penalty": terms["hjb_penalty"], "iterations": int(res.nit),
            "seconds": float(secs), "n_params": int(prob.n_params), "nfev": int(res.nfev),
            "nt": int(prob.nt), "width": int(prob.potential.width),
            "layers": int(prob.potential.n_layers),
            "alpha_L": float(prob.alpha_L), "alpha_R": float(prob.alpha_R),
            "optimizer": res.method, "success": bool(res.success)}


def run_flow(data="8gaussians", *, out, n_train=2048, n_test=10000, dim=2, seed=0, figure=True,
             center=False, **kwargs):
    """Train, evaluate and plot; writes ``out/metrics.json`` and ``out/figure.png``.

    ``center``: the flow's input shift is the training samples' mean (``True``), or the mean
    of ``center`` samples drawn with the training seed (an int: the shift then stays the same
    when a resumed run changes ``n_train``); ``scale``, passed on, divides after it.
    """
    from ..plotting.flows import flow_figure

    os.makedirs(out, exist_ok=True)
    x, floor = flow_data(data, n_train, seed, dim)
    if center is True:
        kwargs["shift"] = x.mean(axis=0)
    elif center:
        from ..errors import check_positive_int
        kwargs["shift"] = flow_data(data, check_positive_int("center", center), seed,
                                    dim)[0].mean(axis=0)
    x_test, _ = flow_data(data, n_test, seed + 1000, dim)
    if kwargs.get("resample_every"):
        kwargs["draw"] = lambda n, rng: flow_data(data, n, rng, dim)[0]
    prob, res, secs = train_flow(x, seed=seed, **kwargs)
    from ..distributed import auto_comm
    if auto_comm().Get_rank() != 0:  # under MPI: rank 0 evaluates and writes
        return {}, prob, res
    m = flow_metrics(prob, res, secs, x_test, floor, seed)
    m.update({"data": data, "dim": int(x.shape[1]), "n_train": int(n_train),
              "input_scale": prob.scale.tolist() if np.ptp(prob.scale) else float(prob.scale[0]),
              "input_shift": prob.shift.tolist(), "seed": int(seed)})
    np.save(os.path.join(out, "theta.npy"), res.x)
    with open(os.path.join(out, "metrics.json"), "w") as fh:
        json.dump(m, fh, indent=2)
    if figure:
        flow_figure(prob, res.x, x_test, os.path.join(out, "figure.png"),
                    title=f"{data}: test NLL {m['test_nll']:.3f} (floor {floor if floor is None else round(floor, 3)})")
    return m, prob, res


@subcommand("flow", "continuous normalizing flow with OT regularization (article Figure 2)")
def cmd_flow(args):
    from ..errors import check_positive_int
    for name in ("n", "n_test", "iters", "batch_size", "width", "layers", "nt", "checkpoint_every"):
        check_positive_int("--" + name.replace("_", "-"), getattr(args, name))
    kw = dict(optimizer=args.optimizer, maxiter=args.iters, width=args.width, n_layers=args.layers,
              nt=args.nt, integrator=args.integrator, alpha_L=args.alpha_L, alpha_R=args.alpha_R,
              trace=args.trace, backend=args.backend, batch_size=args.batch_size, lr=args.lr,
              progress=args.progress, checkpoint=os.path.join(args.out, "checkpoint.npz"),
              checkpoint_every=args.checkpoint_every, resume=args.resume,
              resample_every=args.resample_every)
    if not isinstance(args.center, bool):
        check_positive_int("--center", args.center)
    if args.scale is not None:
        from ..errors import check_positive_float
        kw["scale"] = check_positive_float("--scale", args.scale)
    if args.resample_every is not None:
        check_positive_int("--resample-every", args.resample_every)
        kw["keep_pairs"] = args.keep_pairs
        if args.n_val is not None:
            kw["n_val"] = check_positive_int("--n-val", args.n_val)
    elif args.n_val is not None:
        raise ValueError("--n-val: validation samples are used with --resample-every only")
    elif args.keep_pairs:
        raise ValueError("--keep-pairs: correction pairs are kept across redraws, with "
                         "--resample-every only")
    m, _, _ = run_flow(args.data, out=args.out, n_train=args.n, n_test=args.n_test, dim=args.dim,
                       seed=args.seed, center=args.center, **kw)
    print_metrics(m)  # empty on MPI ranks other than 0
    return 0


def _configure(p):
    p.add_argument("--data", default="8gaussians", help="2-D toy name or 'gmm' (default: %(default)s)")
    p.add_argument("--dim", type=int, default=2, help="dimension (for --data gmm)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--n", type=int, default=2048, help="training samples")
    p.add_argument("--n-test", type=int, default=10000, help="test samples")
    p.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs")
    p.add_argument("--iters", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=1024, help="Adam mini-batch size")
    p.add_argument("--lr", type=float, default=0.02, help="Adam step size (cosine schedule)")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--layers", type=int, default=1, help="residual layers M")
    p.add_argument("--nt", type=int, default=8, help="time steps")
    p.add_argument("--integrator", default="rk4")
    p.add_argument("--alpha-L", dest="alpha_L", type=float, default=0.01)
    p.add_argument("--alpha-R", dest="alpha_R", type=float, default=0.05)
    p.add_argument("--trace", choices=["exact", "hutchinson"], default="exact")
    p.add_argument("--backend", choices=["numpy", "numba"], default="numba")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=50,
                   help="iterations between checkpoints (fixed-batch L-BFGS, Adam)")
    p.add_argument("--resample-every", type=int, default=None,
                   help="L-BFGS on --n fresh samples redrawn every this many iterations "
                        "(checkpointed after each redraw)")
    p.add_argument("--n-val", dest="n_val", type=int, default=None,
                   help="validation samples of --resample-every (default: --n; a resume keeps "
                        "the checkpoint's)")
    p.add_argument("--keep-pairs", action="store_true",
                   help="with --resample-every: L-BFGS keeps its correction pairs across redraws "
                        "(default: scipy's L-BFGS-B restarted on every redraw)")
    p.add_argument("--scale", type=float, default=None,
                   help="fixed input map u = (x - shift) / SCALE before the flow (default 1)")
    p.add_argument("--center", nargs="?", type=int, const=True, default=False, metavar="N",
                   help="shift = the training samples' mean, or that of N samples drawn with "
                        "the training seed (fixed input map)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    p.add_argument("--progress", action="store_true")


cmd_flow.configure = _configure


@register_demo
def run_demo_flow(out, seed=0, progress=False):
    """A short OT-Flow run on 8gaussians (seconds)."""
    m, _, _ = run_flow("8gaussians", out=os.path.join(out, "flow"), n_train=512, n_test=2000,
                       seed=seed, optimizer="lbfgs", maxiter=40, width=16, nt=4,
                       backend="numba", progress=progress)
    keep = ("test_nll", "nll_floor", "inverse_error", "mmd", "transport_cost", "iterations", "seconds")
    return {"problem": "flow (8gaussians, short)", **{k: m[k] for k in keep}}
