"""``ocp-learn classify``: the article's Figure 1 (MATH C1, C2), and the real data sets of
scikit-learn (``--data digits|breast_cancer|wine``)."""
from __future__ import annotations

import argparse
import os

from ..errors import check_nonneg_int, check_positive_float, check_positive_int
from ..recipes.classify import OPTIMIZERS, classify, classify_real, parse_time_param
from .base import (Subcommand, add_output_options, check_memory, check_out_of, run_info_of,
                   show_progress, warn_option)

__all__ = ["COMMAND", "estimate_bytes"]

#: Grid points per axis of the decision-region plot.
GRID_N = 121

#: Defaults of the toy sets (the real sets have a fixed split).
TOY_DEFAULTS = {"n_train": 1000, "n_test": 1000, "loss": "logistic", "tikhonov": 1e-4,
                "head_decay": 0.0}

#: Regularization of the real sets: a stronger Tikhonov weight and an L2 weight on the
#: head's weights (without them the model fits the training part exactly and overfits).
REAL_DEFAULTS = {"tikhonov": 1e-2, "head_decay": 1e-3}


def _real_names() -> tuple[str, ...]:
    from ..datasets.real import REAL_DATASETS

    return REAL_DATASETS


def configure(p: argparse.ArgumentParser) -> None:
    """Add the options of ``ocp-learn classify`` to ``p``."""
    from ..datasets import DATASETS

    names, real = sorted(DATASETS), list(_real_names())
    p.add_argument("--data", default="rings", choices=names + real, metavar="NAME",
                   help="toy data set (" + ", ".join(names) + ") or real data set of "
                        "scikit-learn (" + ", ".join(real) + "; a fixed 60 / 20 / 20 %% "
                        "train / validation / test split by --seed, inputs standardized with "
                        "the training part)")
    p.add_argument("--augment", type=int, default=1, help="zero columns appended to the input, q")
    p.add_argument("--out", default="ocp_learn_classify", help="output folder")
    p.add_argument("--n-train", type=int, default=None,
                   help="training points (default: 1000; toy sets only)")
    p.add_argument("--n-test", type=int, default=None,
                   help="held-out test points (default: 1000; toy sets only)")
    p.add_argument("--optimizer", default="lbfgs", choices=OPTIMIZERS, help="optimizer")
    p.add_argument("--iters", "--maxiter", dest="maxiter", type=int, default=300,
                   help="iterations")
    p.add_argument("--loss", default=None, choices=["logistic", "softmax"],
                   help="classification loss (default: logistic for two classes, softmax "
                        "for more)")
    p.add_argument("--width", type=int, default=16, help="hidden width m")
    p.add_argument("--nt", type=int, default=8, help="time steps")
    p.add_argument("--T", type=float, default=1.0, help="horizon")
    p.add_argument("--integrator", default=None,
                   help="Runge-Kutta tableau (default: rk4; euler with --viscosity, which "
                        "needs it)")
    p.add_argument("--time-param", default="constant",
                   help="theta(t): 'constant', 'pwc:N' (piecewise constant) or 'pwl:N' "
                        "(piecewise linear)")
    p.add_argument("--tikhonov", type=float, default=None,
                   help="Tikhonov weight of the dynamics (default: 1e-4 for the toy sets, "
                        "1e-2 for the real sets)")
    p.add_argument("--head-decay", type=float, default=None,
                   help="L2 weight on the head's weights (default: 0 for the toy sets, 1e-3 "
                        "for the real sets; 0 with --viscosity)")
    p.add_argument("--smoothness", type=float, default=0.0, help="smoothness-in-time weight")
    p.add_argument("--kinetic", type=float, default=0.0,
                   help="weight kappa of the flow's kinetic energy (kappa/2) int |f|^2 dt in "
                        "the training objective (0: none; deterministic model only)")
    p.add_argument("--viscosity", type=float, default=0.0,
                   help="noise level nu of the viscous variant")
    p.add_argument("--no-baseline", action="store_true",
                   help="do not train the model of comparison: the unaugmented model (toy "
                        "sets), logistic regression (real sets)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--backend", default="numpy", choices=["numpy", "numba", "cupy"],
                   help="backend of the network: numpy (reference), numba (CPU kernels) or "
                        "cupy (the whole solve on a CUDA GPU; needs the gpu extra)")
    add_output_options(p)


def estimate_bytes(args: argparse.Namespace) -> float:
    """A lower bound of the bytes a ``classify`` run holds at once: the states of every stage
    of every time step for the training points with their adjoints, the test points, and the
    decision-region grid propagated for the figure."""
    if args.data in _real_names():
        n_train, n_test, dim = _real_sizes(args.data)[:3]
        grid = 0
    else:
        n_train, n_test, dim = args.n_train, args.n_test, 2
        grid = GRID_N ** 2 * (dim + args.augment) * (args.nt + 1)
    d = dim + args.augment
    states = 2 * n_train * d * (4 * args.nt + 1)
    n_params = args.width * (d + 1) * 2 + 2 * d
    return 8.0 * (states + n_test * d + grid + 25 * n_params)


def _real_sizes(name: str) -> tuple[int, int, int, int]:
    """Training points, test points, features and classes of a real data set's split."""
    from ..datasets.real import load_real

    split = load_real(name, 0)
    return len(split.y_train), len(split.y_test), split.dim, split.n_classes


def _check_real(args: argparse.Namespace) -> None:
    """The options that do not apply to a real data set (one-line errors naming them)."""
    for opt, value in (("--n-train", args.n_train), ("--n-test", args.n_test)):
        if value is not None:
            raise ValueError(f"{opt} does not apply to --data {args.data}: the real data sets "
                             "have a fixed train / validation / test split (60 / 20 / 20 %)")
    k = _real_sizes(args.data)[3]
    for name, value in REAL_DEFAULTS.items():
        if vars(args)[name] is None:
            setattr(args, name, 0.0 if name == "head_decay" and args.viscosity > 0 else value)
    if args.loss is None:
        args.loss = "logistic" if k == 2 else "softmax"
    elif args.loss == "logistic" and k > 2:
        raise ValueError(f"--loss logistic separates two classes; --data {args.data} has {k} "
                         "(use --loss softmax)")


def _check(args: argparse.Namespace) -> tuple[str, object]:
    """Every option, before any work; returns the integrator and ``time_param``."""
    from ..integrators import get_integrator

    real = args.data in _real_names()
    if real:
        _check_real(args)
    else:
        for name, value in TOY_DEFAULTS.items():
            if vars(args)[name] is None:
                setattr(args, name, value)
    for name in (("maxiter", "width", "nt") if real else
                 ("n_train", "n_test", "maxiter", "width", "nt")):
        check_positive_int("--" + {"maxiter": "iters"}.get(name, name.replace("_", "-")),
                           vars(args)[name])
    check_nonneg_int("--augment", args.augment)
    check_nonneg_int("--seed", args.seed)
    check_positive_float("--T", args.T)
    for name in ("tikhonov", "head_decay", "smoothness", "viscosity", "kinetic"):
        check_positive_float("--" + name.replace("_", "-"), vars(args)[name], allow_zero=True)
    for name in ("head_decay", "kinetic"):
        if args.viscosity > 0 and vars(args)[name] > 0:
            opt = "--" + name.replace("_", "-")
            raise ValueError(f"{opt} applies to the deterministic model; with --viscosity "
                             "leave it out or set it to 0")
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
    sizes = f"--data {args.data}" if real else f"--n-train {args.n_train}"
    check_memory(estimate_bytes(args), f"--augment {args.augment} {sizes} --nt {args.nt}",
                 "states of every time step" + ("" if real else ", the figure's decision grid"))
    return integrator, time_param


def _run_real(args: argparse.Namespace, kw: dict) -> int:
    """A real data set: :func:`ocp_learn.recipes.classify.classify_real`, its main metrics."""
    m = classify_real(args.data, augment=args.augment, out=args.out, seed=args.seed,
                      optimizer=args.optimizer, maxiter=args.maxiter,
                      baseline=not args.no_baseline, viscosity=args.viscosity,
                      progress=show_progress(args),
                      info=run_info_of(args, integrator=kw["integrator"]), **kw)
    print(f"model: augment={m['augment']} train_accuracy={m['train_accuracy']:.4f} "
          f"val_accuracy={m['val_accuracy']:.4f} test_accuracy={m['test_accuracy']:.4f} "
          f"(+- {m['test_accuracy_se']:.4f}, n = {m['test_accuracy_n']}) "
          f"objective={m['objective']:.4e} iterations={m['iterations']} "
          f"seconds={m['seconds']:.2f}")
    if "logistic_regression" in m:
        lr = m["logistic_regression"]
        print(f"logistic regression: C={lr['C']:g} val_accuracy={lr['val_accuracy']:.4f} "
              f"test_accuracy={lr['test_accuracy']:.4f} seconds={lr['seconds']:.2f}")
    _print_perturbed(m)
    print(f"metrics written to {os.path.abspath(args.out)}")
    return 0


def _print_perturbed(m: dict) -> None:
    """Print the accuracies under input perturbations, when measured."""
    if "perturbed_accuracy" in m:
        pa = m["perturbed_accuracy"]
        print("perturbed accuracy: " + ", ".join(
            f"{r:g}: {a:.3f}" for r, a in zip(pa["radius"], pa["accuracy"])))


def run(args: argparse.Namespace) -> int:
    """Run :func:`ocp_learn.recipes.classify.classify` and print its main metrics."""
    integrator, time_param = _check(args)
    check_out_of(args)
    kw = dict(width=args.width, nt=args.nt, T=args.T, integrator=integrator,
              time_param=time_param, tikhonov=args.tikhonov,
              smoothness=args.smoothness, loss=args.loss)
    if args.backend != "numpy":
        kw["backend"] = args.backend
    if args.head_decay > 0:
        kw["head_decay"] = args.head_decay
    if args.kinetic > 0:
        kw["kinetic"] = args.kinetic
    if args.data in _real_names():
        return _run_real(args, kw)
    m = classify(args.data, augment=args.augment, n_train=args.n_train, n_test=args.n_test,
                 out=args.out, seed=args.seed, optimizer=args.optimizer, maxiter=args.maxiter,
                 baseline=not args.no_baseline, viscosity=args.viscosity,
                 progress=show_progress(args), grid_n=GRID_N,
                 info=run_info_of(args, integrator=integrator), **kw)
    for tag, mm in [("model", m)] + ([("baseline q=0", m["baseline"])] if "baseline" in m else []):
        print(f"{tag}: augment={mm['augment']} train_accuracy={mm['train_accuracy']:.4f} "
              f"test_accuracy={mm['test_accuracy']:.4f} objective={mm['objective']:.4e} "
              f"iterations={mm['iterations']} seconds={mm['seconds']:.2f}")
    _print_perturbed(m)
    print(f"figure and metrics written to {os.path.abspath(args.out)}")
    return 0


COMMAND = Subcommand("classify", "train a neural-ODE classifier on a 2-D toy set (article "
                     "Figure 1) or a real data set", configure, run)
