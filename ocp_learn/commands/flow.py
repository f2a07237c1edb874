"""``ocp-learn flow``: continuous normalizing flows, the article's Figure 2 (MATH D4, D5), and
the density of the scikit-learn digits (``--data digits``)."""
from __future__ import annotations

import argparse
import os

from ..distributed import Parallel, auto_comm, bind_device
from ..errors import check_positive_float, check_positive_int
from ..recipes.flow import run_flow
from .base import (Subcommand, add_output_options, check_memory, check_out_of, format_table,
                   print_metrics, run_info_of, show_progress, warn_option)

__all__ = ["COMMAND", "estimate_bytes"]

#: Samples of the Gaussian mixture's entropy estimate (the NLL floor of ``--data gmm``).
GMM_ENTROPY_SAMPLES = 200_000

#: Defaults of the sampled data sets (the digits have a fixed split).
TOY_DEFAULTS = {"dim": 2, "n": 2048, "n_test": 10000}

#: Training images and dimension of ``--data digits`` (60 % of 1797 images, 8 x 8 pixels).
DIGITS_SIZE = (1077, 64)


def _data_names() -> list[str]:
    from ..datasets.toy2d import TOY2D

    return sorted(TOY2D) + ["gmm", "digits"]


def configure(p: argparse.ArgumentParser) -> None:
    """Add the options of ``ocp-learn flow`` to ``p``."""
    names = _data_names()
    p.add_argument("--data", default="8gaussians", choices=names, metavar="NAME",
                   help="data set: " + ", ".join(names) + " (gmm: a Gaussian mixture in --dim "
                        "dimensions; digits: scikit-learn's 8 x 8 digits, dequantized, on a "
                        "fixed train / validation / test split)")
    p.add_argument("--dim", type=int, default=None,
                   help="dimension (--data gmm only; default: 2)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--n-train", "--n", dest="n", type=int, default=None,
                   help="training samples (per draw with --resample-every; default: 2048; "
                        "not with --data digits)")
    p.add_argument("--n-test", type=int, default=None,
                   help="test samples, at least 2 (default: 10000; not with --data digits)")
    p.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs", help="optimizer")
    p.add_argument("--iters", "--maxiter", dest="iters", type=int, default=300,
                   help="iterations")
    p.add_argument("--batch-size", type=int, default=None,
                   help="Adam mini-batch size (default: 1024; Adam only)")
    p.add_argument("--lr", type=float, default=None,
                   help="Adam step size, cosine schedule (default: 0.02; Adam only: L-BFGS "
                        "takes its steps from a line search)")
    p.add_argument("--width", type=int, default=32, help="hidden width m of the potential")
    p.add_argument("--layers", type=int, default=1, help="residual layers M")
    p.add_argument("--rank", type=int, default=None,
                   help="rank of the potential's quadratic part (default: 64 with --data "
                        "digits, else min(10, d + 1))")
    p.add_argument("--nt", type=int, default=8, help="time steps")
    p.add_argument("--integrator", default="rk4", help="Runge-Kutta tableau")
    p.add_argument("--alpha-L", dest="alpha_L", type=float, default=0.01,
                   help="weight of the transport cost L")
    p.add_argument("--alpha-R", dest="alpha_R", type=float, default=0.05,
                   help="weight of the HJB penalty R")
    p.add_argument("--trace", choices=["exact", "hutchinson"], default="exact",
                   help="trace of the Hessian: exact or Hutchinson's estimator")
    p.add_argument("--backend", choices=["numpy", "numba", "cupy"], default="numba",
                   help="kernel backend: numpy (reference), numba (CPU kernels) or cupy (the "
                        "whole solve on a CUDA GPU; needs the gpu extra)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--checkpoint-every", type=int, default=None,
                   help="iterations between checkpoints (default: 50; fixed-batch L-BFGS and "
                        "Adam: a run with --resample-every writes one after every redraw)")
    p.add_argument("--resample-every", type=int, default=None,
                   help="L-BFGS on --n-train fresh samples redrawn every this many iterations "
                        "(checkpointed after each redraw; default: a fixed training set); "
                        "--data digits: the training images' dequantization noise is redrawn "
                        "(default: 10)")
    p.add_argument("--patience", type=int, default=None,
                   help="--data digits: stop after this many validation checks (one every 10 "
                        "iterations) without a lower validation NLL (default: 20)")
    p.add_argument("--n-val", dest="n_val", type=int, default=None,
                   help="validation samples of --resample-every (default: --n-train; a resume "
                        "keeps the checkpoint's)")
    p.add_argument("--keep-pairs", action="store_true",
                   help="with --resample-every: L-BFGS keeps its correction pairs across redraws "
                        "(default: scipy's L-BFGS-B restarted on every redraw)")
    p.add_argument("--scale", type=float, default=None,
                   help="fixed input map u = (x - shift) / SCALE before the flow (default: 1)")
    p.add_argument("--center", nargs="?", type=int, const=True, default=False, metavar="N",
                   help="shift = the training samples' mean, or that of N samples drawn with "
                        "the training seed (fixed input map; default: no shift)")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.npz (an error if there is none)")
    add_output_options(p)


def estimate_bytes(args: argparse.Namespace) -> float:
    """A lower bound of the bytes a ``flow`` run holds at once: the training and test samples
    (and the Gaussian mixture's entropy sample), the states of every stage of every time step
    with their adjoints, and L-BFGS's pairs."""
    if args.data == "digits":
        n, d = DIGITS_SIZE
        n_test = n
    else:
        d = args.dim if args.data == "gmm" else 2
        n, n_test = args.n, args.n_test
    data = (n + n_test + (args.n_val or 0)) * d
    if args.data == "gmm":
        data += GMM_ENTROPY_SAMPLES * d
    if not isinstance(args.center, bool):
        data += args.center * d
    states = 2 * n * (d + 1) * (4 * args.nt + 1)
    n_params = args.width * (d + 1) + args.layers * args.width ** 2 + 10 * (d + 1)
    return 8.0 * (data + states + 25 * n_params)


def _check_digits(args: argparse.Namespace) -> None:
    """The options that do not apply to the digits (one-line errors naming them)."""
    fixed = "the digits have a fixed train / validation / test split"
    refused = [("--dim", args.dim is not None, "the digits are 64-dimensional (8 x 8 pixels); "
                "--dim is for --data gmm"),
               ("--n-train", args.n is not None, fixed),
               ("--n-test", args.n_test is not None, fixed),
               ("--n-val", args.n_val is not None, fixed),
               ("--optimizer adam", args.optimizer != "lbfgs", "the digits flow is trained with "
                "L-BFGS and early stopping on the validation NLL"),
               ("--lr", args.lr is not None, "an Adam setting; the digits flow is trained with "
                "L-BFGS"),
               ("--batch-size", args.batch_size is not None, "an Adam setting; the digits "
                "flow is trained with L-BFGS"),
               ("--scale", args.scale is not None, "the digits flow standardizes its input "
                "with the training split"),
               ("--center", args.center is not False, "the digits flow standardizes its input "
                "with the training split"),
               ("--resume", args.resume, "a digits run keeps the parameters of the lowest "
                "validation NLL in memory and is not checkpointed"),
               ("--checkpoint-every", args.checkpoint_every is not None, "a digits run is not "
                "checkpointed"),
               ("--keep-pairs", args.keep_pairs, "not with --data digits"),
               ("--backend cupy", args.backend == "cupy", "the digits flow runs on the CPU "
                "(--backend numba or numpy)")]
    for opt, bad, why in refused:
        if bad:
            raise ValueError(f"{opt} does not apply to --data digits: {why}")
    from ..distributed import auto_comm

    size = auto_comm().Get_size()
    if size > 1:
        raise ValueError(f"--data digits trains on one process; launched on {size} ranks")
    for name in ("resample_every", "patience"):
        if vars(args)[name] is not None:
            check_positive_int("--" + name.replace("_", "-"), vars(args)[name])


def _check(args: argparse.Namespace) -> None:
    """Every option, before any work (a one-line error naming the option)."""
    from ..errors import check_nonneg_int
    from ..integrators import get_integrator

    if args.rank is not None:
        check_positive_int("--rank", args.rank)
    if args.data == "digits":
        _check_digits(args)
        for name in ("iters", "width", "layers", "nt"):
            check_positive_int("--" + name, vars(args)[name])
        check_nonneg_int("--seed", args.seed)
        get_integrator(args.integrator)
        check_positive_float("--alpha-L", args.alpha_L, allow_zero=True)
        check_positive_float("--alpha-R", args.alpha_R, allow_zero=True)
        check_memory(estimate_bytes(args), "--data digits", "samples, states of every time "
                     "step, L-BFGS pairs")
        return
    if args.patience is not None:
        raise ValueError("--patience: early stopping on a validation split is for --data "
                         "digits")
    if args.dim is not None and args.data != "gmm":
        raise ValueError(f"--dim: the toy data set {args.data!r} is 2-D; --dim {args.dim} "
                         "needs --data gmm")
    for name, value in TOY_DEFAULTS.items():
        if vars(args)[name] is None:
            setattr(args, name, value)
    for name in ("n", "n_test", "iters", "width", "layers", "nt", "dim"):
        check_positive_int("--" + {"n": "n-train"}.get(name, name.replace("_", "-")),
                           vars(args)[name])
    check_nonneg_int("--seed", args.seed)
    if args.n_test < 2:
        raise ValueError(f"--n-test must be at least 2 (the MMD compares pairs of test "
                         f"samples), got {args.n_test}")
    get_integrator(args.integrator)  # a one-line error for an unknown tableau
    check_positive_float("--alpha-L", args.alpha_L, allow_zero=True)
    check_positive_float("--alpha-R", args.alpha_R, allow_zero=True)
    if args.optimizer != "adam":
        for opt, v in (("--lr", args.lr), ("--batch-size", args.batch_size)):
            if v is not None:
                raise ValueError(f"{opt} is an Adam setting; L-BFGS takes its steps from a "
                                 "line search on the full batch (use --optimizer adam)")
    if args.lr is not None:
        check_positive_float("--lr", args.lr)
    if args.batch_size is not None:
        check_positive_int("--batch-size", args.batch_size)
    if args.checkpoint_every is not None:
        check_positive_int("--checkpoint-every", args.checkpoint_every)
    if not isinstance(args.center, bool):
        check_positive_int("--center", args.center)
    if args.scale is not None:
        check_positive_float("--scale", args.scale)
    if args.resample_every is not None:
        check_positive_int("--resample-every", args.resample_every)
        if args.optimizer != "lbfgs":
            raise ValueError("--resample-every redraws the samples of L-BFGS; Adam draws "
                             "mini-batches (use --optimizer lbfgs)")
        if args.n_val is not None:
            check_positive_int("--n-val", args.n_val)
        if args.checkpoint_every is not None:
            warn_option("--checkpoint-every: a run with --resample-every writes its checkpoint "
                        "after every redraw")
    elif args.n_val is not None:
        raise ValueError("--n-val: validation samples are used with --resample-every only")
    elif args.keep_pairs:
        raise ValueError("--keep-pairs: correction pairs are kept across redraws, with "
                         "--resample-every only")
    sizes = f"--data {args.data} --dim {args.dim} --n-train {args.n} --n-test {args.n_test}"
    check_memory(estimate_bytes(args), sizes, "samples, states of every time step, L-BFGS "
                 "pairs" + (", and 200000 samples of the mixture's entropy" if args.data == "gmm"
                            else ""))


def _print_digits(m: dict) -> None:
    """The digits run's metrics and the density table (nats of the pixel scale)."""
    print_metrics({k: v for k, v in m.items() if not isinstance(v, (list, dict))})
    rows = [[k, f"{b['test_nll']:.2f}", f"{b['test_nll_se']:.2f}",
             f"{b['bits_per_dim']:.4f}", f"{b['val_nll']:.2f}"]
            for k, b in m.get("baselines", {}).items()]
    rows.append(["ot_flow", f"{m['test_nll']:.2f}", f"{m['test_nll_se']:.2f}",
                 f"{m['test_bits_per_dim']:.4f}", f"{m['val_nll']:.2f}"])
    print(format_table(rows, ["model", "test NLL (nats)", "+- se", "bits/dim",
                              "validation NLL"]))


def _run_digits(args: argparse.Namespace) -> int:
    """``--data digits``: :func:`ocp_learn.recipes.flow.run_flow` on the fixed split."""
    from ..recipes.digits_flow import DIGITS_DEFAULTS

    for name, value in DIGITS_DEFAULTS.items():
        if vars(args)[name] is None:
            setattr(args, name, value)
    m, _, _ = run_flow("digits", out=args.out, seed=args.seed, info=run_info_of(args),
                       maxiter=args.iters, width=args.width, n_layers=args.layers, nt=args.nt,
                       rank=args.rank, integrator=args.integrator, alpha_L=args.alpha_L,
                       alpha_R=args.alpha_R, trace=args.trace, backend=args.backend,
                       resample_every=args.resample_every, patience=args.patience,
                       progress=show_progress(args))
    _print_digits(m)
    return 0


def run(args: argparse.Namespace) -> int:
    """Check the options, run :func:`ocp_learn.recipes.flow.run_flow`, print the metrics."""
    _check(args)
    check_out_of(args, resume=args.resume)
    if args.data == "digits":
        return _run_digits(args)
    if args.backend == "cupy":  # each MPI rank on its own device (local rank mod count)
        bind_device(auto_comm())
    batch_size = 1024 if args.batch_size is None else args.batch_size
    lr = 0.02 if args.lr is None else args.lr
    every = 50 if args.checkpoint_every is None else args.checkpoint_every
    kw = dict(optimizer=args.optimizer, maxiter=args.iters, width=args.width, n_layers=args.layers,
              nt=args.nt, integrator=args.integrator, alpha_L=args.alpha_L, alpha_R=args.alpha_R,
              trace=args.trace, backend=args.backend, batch_size=batch_size, lr=lr,
              progress=show_progress(args), checkpoint=os.path.join(args.out, "checkpoint.npz"),
              checkpoint_every=every, resume=args.resume,
              resample_every=args.resample_every)
    if args.scale is not None:
        kw["scale"] = args.scale
    if args.rank is not None:
        kw["rank"] = args.rank
    if args.resample_every is not None:
        kw["keep_pairs"] = args.keep_pairs
        if args.n_val is not None:
            kw["n_val"] = args.n_val
    info = run_info_of(args, batch_size=batch_size, lr=lr, checkpoint_every=every)
    m, _, _ = run_flow(args.data, out=args.out, n_train=args.n, n_test=args.n_test, dim=args.dim,
                       seed=args.seed, center=args.center, parallel=Parallel(auto_comm()),
                       info=info, **kw)
    print_metrics(m)  # empty on MPI ranks other than 0
    return 0


COMMAND = Subcommand("flow", "continuous normalizing flow with OT regularization (article "
                     "Figure 2; --data digits: the density of the 8 x 8 digits)", configure, run)
