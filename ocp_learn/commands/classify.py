"""``ocp-learn classify``: the article's Figure 1 (MATH C1, C2)."""
from __future__ import annotations

import argparse
import os

from ..recipes.classify import OPTIMIZERS, classify, parse_time_param
from .base import Subcommand

__all__ = ["COMMAND"]


def configure(p: argparse.ArgumentParser) -> None:
    """Add the options of ``ocp-learn classify`` to ``p``."""
    from ..datasets import DATASETS

    p.add_argument("--data", default="rings", choices=sorted(DATASETS), help="toy data set")
    p.add_argument("--augment", type=int, default=1, help="zero columns appended to the input, q")
    p.add_argument("--out", default="ocp_learn_classify", help="output folder")
    p.add_argument("--n-train", type=int, default=1000, help="training points")
    p.add_argument("--n-test", type=int, default=1000, help="held-out test points")
    p.add_argument("--optimizer", default="lbfgs", choices=OPTIMIZERS, help="optimizer")
    p.add_argument("--maxiter", "--iters", dest="maxiter", type=int, default=300,
                   help="iterations")
    p.add_argument("--loss", default="logistic", choices=["logistic", "softmax"],
                   help="classification loss")
    p.add_argument("--width", type=int, default=16, help="hidden width m")
    p.add_argument("--nt", type=int, default=8, help="time steps")
    p.add_argument("--T", type=float, default=1.0, help="horizon")
    p.add_argument("--integrator", default="rk4",
                   help="Runge-Kutta tableau (default: %(default)s; 'euler' with --viscosity)")
    p.add_argument("--time-param", default="constant",
                   help="theta(t): 'constant', 'pwc:N' (piecewise constant) or 'pwl:N' "
                        "(piecewise linear)")
    p.add_argument("--tikhonov", type=float, default=1e-4, help="Tikhonov weight")
    p.add_argument("--smoothness", type=float, default=0.0, help="smoothness-in-time weight")
    p.add_argument("--viscosity", type=float, default=0.0,
                   help="noise level nu of the viscous variant")
    p.add_argument("--no-baseline", action="store_true",
                   help="do not train the unaugmented model for comparison")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--progress", action="store_true", help="show progress bars")


def run(args: argparse.Namespace) -> int:
    """Run :func:`ocp_learn.recipes.classify.classify` and print its main metrics."""
    kw = dict(width=args.width, nt=args.nt, T=args.T, integrator=args.integrator,
              time_param=parse_time_param(args.time_param), tikhonov=args.tikhonov,
              smoothness=args.smoothness, loss=args.loss)
    m = classify(args.data, augment=args.augment, n_train=args.n_train, n_test=args.n_test,
                 out=args.out, seed=args.seed, optimizer=args.optimizer, maxiter=args.maxiter,
                 baseline=not args.no_baseline, viscosity=args.viscosity, progress=args.progress,
                 **kw)
    for tag, mm in [("model", m)] + ([("baseline q=0", m["baseline"])] if "baseline" in m else []):
        print(f"{tag}: augment={mm['augment']} train_accuracy={mm['train_accuracy']:.4f} "
              f"test_accuracy={mm['test_accuracy']:.4f} objective={mm['objective']:.4e} "
              f"iterations={mm['iterations']} seconds={mm['seconds']:.2f}")
    if "perturbed_accuracy" in m:
        pa = m["perturbed_accuracy"]
        print("perturbed accuracy: " + ", ".join(
            f"{r:g}: {a:.3f}" for r, a in zip(pa["radius"], pa["accuracy"])))
    print(f"figure and metrics written to {os.path.abspath(args.out)}")
    return 0


COMMAND = Subcommand("classify", "train a neural-ODE classifier on a 2-D toy set (article "
                     "Figure 1)", configure, run)
