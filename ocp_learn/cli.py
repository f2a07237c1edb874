"""The ``ocp-learn`` command."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

__all__ = ["main"]

SUBCOMMANDS = {}


def subcommand(name, help):
    """Register ``fn(args)`` as ``ocp-learn name``; ``fn.configure(parser)`` adds options."""
    def deco(fn):
        SUBCOMMANDS[name] = (fn, help)
        return fn
    return deco


def _table(rows, headers):
    w = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(str(h).ljust(w[i]) for i, h in enumerate(headers)) + " |"
    sep = "|" + "|".join("-" * (x + 2) for x in w) + "|"
    body = ["| " + " | ".join(str(r[i]).ljust(w[i]) for i in range(len(headers))) + " |" for r in rows]
    return "\n".join([line, sep, *body])


def run_demo_classifier(out, seed=0, progress=False, maxiter=150):
    """Neural-ODE classifier on the disk-in-ring data with one augmented dimension."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import OCP, SingleLayerNet, LinearHeadLoss, Tikhonov
    from .datasets import rings, train_test_split
    from .optim import lbfgs

    x, y = rings(400, seed=seed)
    xtr, ytr, xte, yte = train_test_split(x, y, 0.25, seed=seed)
    pad = lambda a: np.hstack([a, np.zeros((a.shape[0], 1))])  # noqa: E731  augmentation q = 1
    model = SingleLayerNet(3, width=8)
    prob = OCP(model, pad(xtr), LinearHeadLoss(ytr, 3, "logistic"), T=1.0, nt=8,
               integrator="rk4", regularizers=[Tikhonov(1e-4)])
    t0 = time.perf_counter()
    res = lbfgs(prob, prob.init_params(seed), maxiter=maxiter, progress=progress)
    secs = time.perf_counter() - t0
    p = prob.unpack(res.x)["terminal"]

    def acc(xs, ys):
        z = prob.trajectory(res.x, pad(xs))[-1]
        return float(np.mean(prob.terminal.predict(z, p) == ys))

    metrics = {"problem": "classifier (rings, augment 1)", "train_accuracy": acc(xtr, ytr),
               "test_accuracy": acc(xte, yte), "objective": res.fun, "n_params": prob.n_params,
               "iterations": res.nit, "nfev": res.nfev, "seconds": secs, "optimizer": "L-BFGS"}
    g = np.linspace(-2.2, 2.2, 121)
    G = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    zg = prob.trajectory(res.x, pad(G))[-1]
    lab = prob.terminal.predict(zg, p).reshape(g.size, g.size)
    fig, ax = plt.subplots(1, 2, figsize=(9, 4.2))
    ax[0].scatter(*xtr.T, c=ytr, cmap="coolwarm", s=8)
    ax[0].set_title("training data")
    ax[1].contourf(g, g, lab, levels=[-0.5, 0.5, 1.5], cmap="coolwarm", alpha=0.35)
    ax[1].scatter(*xte.T, c=yte, cmap="coolwarm", s=8, edgecolors="k", linewidths=0.2)
    ax[1].set_title(f"predicted labels (test acc {metrics['test_accuracy']:.2f})")
    for a in ax:
        a.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "demo_classifier.png"), dpi=110)
    plt.close(fig)
    return metrics


DEMO_PARTS = [run_demo_classifier]


def register_demo(fn):
    """Add ``fn(out, seed, progress) -> metrics dict`` to ``ocp-learn demo``."""
    if fn not in DEMO_PARTS:
        DEMO_PARTS.append(fn)
    return fn


@subcommand("demo", "train small problems on built-in data; print a summary and write figures")
def cmd_demo(args):
    os.makedirs(args.out, exist_ok=True)
    allm = []
    for part in DEMO_PARTS:
        allm.append(part(args.out, seed=args.seed, progress=args.progress))
    rows = []
    for m in allm:
        for k, v in m.items():
            if k != "problem":
                rows.append([m["problem"], k, f"{v:.4g}" if isinstance(v, float) else v])
    print(_table(rows, ["problem", "metric", "value"]))
    with open(os.path.join(args.out, "demo_metrics.json"), "w") as fh:
        json.dump(allm, fh, indent=2)
    print(f"figures and metrics written to {os.path.abspath(args.out)}")
    return 0


def _configure_demo(p):
    p.add_argument("--out", default="ocp_learn_demo", help="output folder (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--progress", action="store_true", help="show progress bars")


cmd_demo.configure = _configure_demo


def _load_commands():
    """Import every module of :mod:`ocp_learn.commands`; each registers its
    subcommands with :func:`subcommand` (and demo parts with :func:`register_demo`)."""
    import importlib
    import pkgutil

    from . import commands

    for mod in pkgutil.iter_modules(commands.__path__):
        importlib.import_module(f"{commands.__name__}.{mod.name}")


def build_parser():
    from . import __version__

    _load_commands()

    parser = argparse.ArgumentParser(
        prog="ocp-learn",
        description="Continuous-time deep learning as optimal control (exact discrete gradients).")
    parser.add_argument("--version", action="version", version=f"ocp-learn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (fn, help_) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if hasattr(fn, "configure"):
            fn.configure(p)
        p.set_defaults(_fn=fn)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    return args._fn(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
