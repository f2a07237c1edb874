"""``ocp-learn classify``: the article's Figure 1 (MATH C1, C2)."""
from __future__ import annotations

import argparse
import os

from ..errors import check_nonneg_int, check_positive_float, check_positive_int
from ..recipes.classify import OPTIMIZERS, classify, parse_time_param
from .base import (Subcommand, add_output_options, check_memory, check_out_of, run_info_of,
                   show_progress, warn_option)

__all__ = ["COMMAND", "estimate_bytes"]

#: Grid points per axis of the decision-region plot.
GRID_N = 121


def configure(p: argparse.ArgumentParser) -> None:
    """Add the options of ``ocp-learn classify`` to ``p``."""
    from ..datasets import DATASETS

    names = sorted(DATASETS)
    p.add_argument("--data", default="rings", choices=names, metavar="NAME",
                   help="toy data set: " + ", ".join(names))
    p.add_argument("--augment", type=int, default=1, help="zero columns appended to the input, q")
    p.add_argument("--out", default="ocp_learn_classify", help="output folder")
    p.add_argument("--n-train", type=int, default=1000, help="training points")
    p.add_argument("--n-test", type=int, default=1000, help="held-out test points")
    p.add_argument("--optimizer", default="lbfgs", choices=OPTIMIZERS, help="optimizer")
    p.add_argument("--iters", "--maxiter", dest="maxiter", type=int, default=300,
                   help="iterations")
    p.add_argument("--loss", default="logistic", choices=["logistic", "softmax"],
                   help="classification loss")
    p.add_argument("--width", type=int, default=16, help="hidden width m")
    p.add_argument("--nt", type=int, default=8, help="time steps")
    p.add_argument("--T", type=float, default=1.0, help="horizon")
    p.add_argument("--integrator", default=None,
                   help="Runge-Kutta tableau (default: rk4; euler with --viscosity, which "
                        "needs it)")
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
    p.add_argument("--backend", default="numpy", choices=["numpy", "numba", "cupy"],
                   help="backend of the network: numpy (reference), numba (CPU kernels) or "
                        "cupy (the whole solve on a CUDA GPU; needs the gpu extra)")
    add_output_options(p)


def estimate_bytes(args: argparse.Namespace) -> float:
    """A lower bound of the bytes a ``classify`` run holds at once: the states of every stage
    of every time step for the training points with their adjoints, the test points, and the
    decision-region grid propagated for the figure."""
    d = 2 + args.augment
    states = 2 * args.n_train * d * (4 * args.nt + 1)
    grid = GRID_N ** 2 * d * (args.nt + 1)
    n_params = args.width * (d + 1) * 2 + 2 * d
    return 8.0 * (states + args.n_test * d + grid + 25 * n_params)


def _check(args: argparse.Namespace) -> tuple[str, object]:
    """Every option, before any work; returns the integrator and ``time_param``."""
    from ..integrators import get_integrator

    for name in ("n_train", "n_test", "maxiter", "width", "nt"):
        check_positive_int("--" + {"maxiter": "iters"}.get(name, name.replace("_", "-")),
                           vars(args)[name])
    check_nonneg_int("--augment", args.augment)
    check_nonneg_int("--seed", args.seed)
    check_positive_float("--T", args.T)
    for name in ("tikhonov", "smoothness", "viscosity"):
        check_positive_float("--" + name, vars(args)[name], allow_zero=True)
    integrator = args.integrator or ("euler" if args.viscosity > 0 else "rk4")
    if args.viscosity > 0 and integrator != "euler":
        raise ValueError(f"--integrator {integrator}: the viscous model (--viscosity > 0) is "
                         "integrated by Euler-Maruyama (use --integrator euler or leave it out)")
    get_integrator(integrator)
    if args.viscosity > 0 and args.backend != "numpy":
        raise ValueError(f"--backend {args.backend}: the viscous model (--viscosity > 0) runs "
                         "on the numpy backend only (leave --backend out)")
    if args.backend != "numpy":
        from ..kernels import check_backend
        check_backend(args.backend)
    time_param = parse_time_param(args.time_param)
    if args.no_baseline and args.augment == 0:
        warn_option("--no-baseline: with --augment 0 the model is the baseline")
    if args.smoothness > 0 and time_param is None:
        warn_option("--smoothness penalizes changes of theta(t) in time; with --time-param "
                    "constant there are none (use pwc:N or pwl:N)")
    check_memory(estimate_bytes(args), f"--augment {args.augment} --n-train {args.n_train} "
                 f"--nt {args.nt}", "states of every time step, the figure's decision grid")
    return integrator, time_param


def run(args: argparse.Namespace) -> int:
    """Run :func:`ocp_learn.recipes.classify.classify` and print its main metrics."""
    integrator, time_param = _check(args)
    check_out_of(args)
    kw = dict(width=args.width, nt=args.nt, T=args.T, integrator=integrator,
              time_param=time_param, tikhonov=args.tikhonov,
              smoothness=args.smoothness, loss=args.loss)
    if args.backend != "numpy":
        kw["backend"] = args.backend
    m = classify(args.data, augment=args.augment, n_train=args.n_train, n_test=args.n_test,
                 out=args.out, seed=args.seed, optimizer=args.optimizer, maxiter=args.maxiter,
                 baseline=not args.no_baseline, viscosity=args.viscosity,
                 progress=show_progress(args), grid_n=GRID_N,
                 info=run_info_of(args, integrator=integrator), **kw)
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
