"""``ocp-learn flow``: continuous normalizing flows, the article's Figure 2 (MATH D4, D5)."""
from __future__ import annotations

import argparse
import os

from ..distributed import Parallel, auto_comm
from ..errors import check_positive_float, check_positive_int
from ..recipes.flow import run_flow
from .base import Subcommand, print_metrics

__all__ = ["COMMAND"]


def configure(p: argparse.ArgumentParser) -> None:
    """Add the options of ``ocp-learn flow`` to ``p``."""
    p.add_argument("--data", default="8gaussians", help="2-D toy name or 'gmm'")
    p.add_argument("--dim", type=int, default=2, help="dimension (for --data gmm)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--n", "--n-train", dest="n", type=int, default=2048,
                   help="training samples (per draw with --resample-every)")
    p.add_argument("--n-test", type=int, default=10000, help="test samples")
    p.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs", help="optimizer")
    p.add_argument("--iters", "--maxiter", dest="iters", type=int, default=300,
                   help="iterations")
    p.add_argument("--batch-size", type=int, default=1024, help="Adam mini-batch size")
    p.add_argument("--lr", type=float, default=0.02, help="Adam step size (cosine schedule)")
    p.add_argument("--width", type=int, default=32, help="hidden width m of the potential")
    p.add_argument("--layers", type=int, default=1, help="residual layers M")
    p.add_argument("--nt", type=int, default=8, help="time steps")
    p.add_argument("--integrator", default="rk4", help="Runge-Kutta tableau")
    p.add_argument("--alpha-L", dest="alpha_L", type=float, default=0.01,
                   help="weight of the transport cost L")
    p.add_argument("--alpha-R", dest="alpha_R", type=float, default=0.05,
                   help="weight of the HJB penalty R")
    p.add_argument("--trace", choices=["exact", "hutchinson"], default="exact",
                   help="trace of the Hessian: exact or Hutchinson's estimator")
    p.add_argument("--backend", choices=["numpy", "numba"], default="numba",
                   help="kernel backend")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--checkpoint-every", type=int, default=50,
                   help="iterations between checkpoints (fixed-batch L-BFGS, Adam)")
    p.add_argument("--resample-every", type=int, default=None,
                   help="L-BFGS on --n fresh samples redrawn every this many iterations "
                        "(checkpointed after each redraw; default: a fixed training set)")
    p.add_argument("--n-val", dest="n_val", type=int, default=None,
                   help="validation samples of --resample-every (default: --n; a resume keeps "
                        "the checkpoint's)")
    p.add_argument("--keep-pairs", action="store_true",
                   help="with --resample-every: L-BFGS keeps its correction pairs across redraws "
                        "(default: scipy's L-BFGS-B restarted on every redraw)")
    p.add_argument("--scale", type=float, default=None,
                   help="fixed input map u = (x - shift) / SCALE before the flow (default: 1)")
    p.add_argument("--center", nargs="?", type=int, const=True, default=False, metavar="N",
                   help="shift = the training samples' mean, or that of N samples drawn with "
                        "the training seed (fixed input map; default: no shift)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    p.add_argument("--progress", action="store_true", help="show a progress bar")


def run(args: argparse.Namespace) -> int:
    """Check the options, run :func:`ocp_learn.recipes.flow.run_flow`, print the metrics."""
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
                       seed=args.seed, center=args.center, parallel=Parallel(auto_comm()), **kw)
    print_metrics(m)  # empty on MPI ranks other than 0
    return 0


COMMAND = Subcommand("flow", "continuous normalizing flow with OT regularization (article "
                     "Figure 2)", configure, run)
