"""``ocp-learn sample | predict | evaluate``: use a trained model's bundle (``model.npz`` in a
run folder, :mod:`ocp_learn.recipes.bundle`) without its training data."""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from ..errors import check_nonneg_int, check_positive_int
from ..recipes.bundle import evaluate_model, predict_model, sample_model
from ..recipes.rundir import RunError
from .base import Subcommand, format_table

__all__ = ["SAMPLE", "PREDICT", "EVALUATE", "COMMANDS"]


def _model_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="DIR",
                   help="run folder of ocp-learn classify, flow or mfg (or its model.npz)")


def _write(path: str | None, arrays: dict[str, np.ndarray]) -> None:
    """``arrays`` to ``path`` (``.npy``: the first array; ``.npz``: all), or as text to
    stdout (columns side by side)."""
    if path is None:
        cols = [a.reshape(len(a), -1) for a in arrays.values()]
        np.savetxt(sys.stdout, np.hstack(cols), fmt="%.8g",
                   header=" ".join(f"{k}[{c.shape[1]}]" for k, c in zip(arrays, cols)))
        return
    if os.path.isdir(path):
        raise RunError(f"--out {path!r} is a folder, expected a file name (.npy or .npz)")
    if path.endswith(".npz"):
        np.savez(path, **arrays)
    elif path.endswith(".npy"):
        np.save(path, next(iter(arrays.values())) if len(arrays) == 1 else
                np.hstack([a.reshape(len(a), -1) for a in arrays.values()]))
    else:
        raise ValueError(f"--out must end in .npy or .npz, got {path!r}")
    print(f"written {os.path.abspath(path)}", file=sys.stderr)


def _read_input(path: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--input {path!r} does not exist")
    try:
        if path.endswith((".txt", ".csv")):
            return np.loadtxt(path, delimiter="," if path.endswith(".csv") else None, ndmin=2)
        return np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy's errors for damaged or pickled files
        raise RunError(f"--input {path!r} is not an array file (.npy, or .txt/.csv of "
                       f"numbers): {type(exc).__name__}") from exc


def configure_sample(p: argparse.ArgumentParser) -> None:
    """Add the options of ``ocp-learn sample`` to ``p``."""
    _model_option(p)
    p.add_argument("--n", type=int, default=1000, help="number of samples")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--out", default=None, help="file .npy (default: text to stdout)")


def run_sample(args: argparse.Namespace) -> int:
    """Draw ``--n`` samples of a trained flow (or agents of a game at ``t = T``)."""
    check_positive_int("--n", args.n)
    check_nonneg_int("--seed", args.seed)
    _write(args.out, {"x": sample_model(args.model, args.n, seed=args.seed)})
    return 0


def configure_predict(p: argparse.ArgumentParser) -> None:
    """Add the options of ``ocp-learn predict`` to ``p``."""
    _model_option(p)
    p.add_argument("--input", required=True, metavar="FILE",
                   help="points, one per row (.npy, or .txt/.csv of numbers)")
    p.add_argument("--out", default=None,
                   help="file .npz (all outputs) or .npy (default: text to stdout)")


def run_predict(args: argparse.Namespace) -> int:
    """Class probabilities and labels (a classifier) or the push-forward (a flow, a game)."""
    _write(args.out, predict_model(args.model, _read_input(args.input)))
    return 0


def configure_evaluate(p: argparse.ArgumentParser) -> None:
    """Add the options of ``ocp-learn evaluate`` to ``p``."""
    _model_option(p)


def run_evaluate(args: argparse.Namespace) -> int:
    """Recompute the run's metrics from its bundle and print them beside the saved ones, with
    the Monte Carlo standard error and sample count of each."""
    res = evaluate_model(args.model)
    rows = []
    for k, v in res.items():
        s, r, se = v["saved"], v["recomputed"], v.get("se")
        diff = abs(r - s) / max(abs(s), 1e-300) if isinstance(s, (int, float)) else None
        rows.append([k, "-" if s is None else f"{s:.6g}", f"{r:.6g}",
                     "-" if se is None else f"{se:.2g}", "-" if v.get("n") is None else
                     str(v["n"]), "-" if diff is None else f"{diff:.1e}"])
    print(format_table(rows, ["metric", "saved", "recomputed", "std. error", "samples",
                              "rel. diff"]))
    return 0


SAMPLE = Subcommand("sample", "draw samples from a trained flow or game (its model.npz)",
                    configure_sample, run_sample)
PREDICT = Subcommand("predict", "class probabilities, or the push-forward of points, of a "
                     "trained model", configure_predict, run_predict)
EVALUATE = Subcommand("evaluate", "recompute a run's metrics from its model.npz",
                      configure_evaluate, run_evaluate)
COMMANDS = (SAMPLE, PREDICT, EVALUATE)
