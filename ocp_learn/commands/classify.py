"""``ocp-learn classify``: the article's Figure 1 (MATH C1, C2) and the classifier demo part."""
from __future__ import annotations

import json
import os
import time

import numpy as np

from ..cli import register_demo, subcommand

__all__ = ["train_classifier", "cmd_classify", "run_demo_classifier", "OPTIMIZERS"]

OPTIMIZERS = ("lbfgs", "gauss-newton", "adam")


def _time_param(spec):
    if spec in (None, "constant"):
        return None
    kind, _, n = str(spec).partition(":")
    names = {"pwc": "piecewise_constant", "pwl": "piecewise_linear"}
    if kind not in names or not n.isdigit():
        raise ValueError(f"time-param must be 'constant', 'pwc:N' or 'pwl:N', got {spec!r}")
    return (names[kind], int(n))


def train_classifier(x_train, y_train, *, augment=0, optimizer="lbfgs", maxiter=300, seed=0,
                     viscosity=0.0, n_paths=1, n_predict=32, progress=False, batch_size=64,
                     lr=0.02, **problem_kwargs):
    """Build and train a (viscous) neural-ODE classifier; returns ``(problem, result, seconds)``.

    ``viscosity > 0`` builds a :class:`~ocp_learn.problems.ViscousClassifier`
    (Euler--Maruyama, MATH C2) instead of a deterministic one.
    """
    from ..optim import adam, gauss_newton, lbfgs
    from ..problems import NeuralODEClassifier
    from ..problems.viscous import ViscousClassifier

    from ..errors import check_positive_float

    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {optimizer!r}")
    viscosity = check_positive_float("viscosity", viscosity, allow_zero=True)
    if viscosity > 0:
        problem_kwargs["integrator"] = "euler"
        prob = ViscousClassifier(x_train, y_train, augment=augment, nu=viscosity, n_paths=n_paths,
                                 n_predict=n_predict, noise_seed=seed + 1, **problem_kwargs)
    else:
        prob = NeuralODEClassifier(x_train, y_train, augment=augment, **problem_kwargs)
    theta0 = prob.init_params(seed)
    t0 = time.perf_counter()
    if optimizer == "lbfgs":
        res = lbfgs(prob, theta0, maxiter=maxiter, progress=progress)
    elif optimizer == "gauss-newton":
        res = gauss_newton(prob, theta0, maxiter=maxiter, progress=progress)
    else:
        res = adam(prob, theta0, maxiter=maxiter, batch_size=batch_size, lr=lr, schedule="cosine",
                   seed=seed, progress=progress)
    return prob, res, time.perf_counter() - t0


def _metrics(prob, res, secs, optimizer, x_test, y_test):
    return {"train_accuracy": prob.accuracy(res.x),
            "test_accuracy": prob.accuracy(res.x, x_test, y_test),
            "objective": float(res.fun), "n_params": int(prob.n_params), "iterations": int(res.nit),
            "seconds": float(secs), "optimizer": optimizer, "nfev": int(res.nfev),
            "sweeps": res.get("sweeps")}


def _figure_row(name, prob, res, x_train, y_train, x_test, y_test, lim, grid_n):
    from ..plotting.classification import grid_predictions

    P = prob.unpack(res.x)
    W, mu = prob.terminal.head(P["terminal"])
    pred = prob.predict(res.x, x_test)
    return {"name": name, "x": x_train, "y": y_train, "z": prob.propagate(res.x, x_train),
            "W": W, "mu": mu, "grid": grid_predictions(prob, res.x, lim, grid_n), "x_test": x_test,
            "y_test": y_test, "pred_test": pred, "test_accuracy": float(np.mean(pred == y_test))}


def classify(data="rings", *, augment=1, n_train=1000, n_test=1000, out=None, seed=0,
             optimizer="lbfgs", maxiter=300, baseline=True, viscosity=0.0, radii=None,
             progress=False, grid_n=121, figure_name="figure.png", **problem_kwargs):
    """Train on a toy set and write Figure 1 and the metrics; returns the metrics dict.

    With ``augment > 0`` and ``baseline`` the unaugmented model (``q = 0``) is
    trained with the same settings and shown in the first row of the figure,
    its metrics under the key ``"baseline"``.  With ``viscosity > 0`` the
    metrics get ``perturbed_accuracy`` (accuracy under Gaussian input
    perturbations of growing size, :func:`~ocp_learn.problems.viscous.robustness_curve`).
    """
    from ..datasets import get_dataset, train_test_split
    from ..errors import check_nonneg_int, check_positive_float, check_positive_int, check_rng
    from ..plotting import plot_classifier_figure
    from ..problems.viscous import robustness_curve

    # validate before any data is drawn or any model trained
    n_train = check_positive_int("n_train", n_train)
    n_test = check_positive_int("n_test", n_test)
    check_nonneg_int("augment", augment)
    check_positive_int("maxiter", maxiter)
    check_positive_float("viscosity", viscosity, allow_zero=True)
    check_rng(seed)
    x, y = get_dataset(data, n_train + n_test, seed=seed)
    x_train, y_train, x_test, y_test = train_test_split(x, y, n_test / (n_train + n_test), seed=seed)
    lim = float(np.max(np.abs(x))) * 1.1
    runs = [augment] if (augment == 0 or not baseline) else [0, augment]
    rows, all_metrics = [], {}
    for q in runs:
        prob, res, secs = train_classifier(x_train, y_train, augment=q, optimizer=optimizer,
                                           maxiter=maxiter, seed=seed, viscosity=viscosity,
                                           progress=progress, **problem_kwargs)
        m = _metrics(prob, res, secs, optimizer, x_test, y_test)
        m.update({"data": data, "augment": q, "n_train": int(len(y_train)),
                  "n_test": int(len(y_test)), "viscosity": float(viscosity),
                  "loss": prob.loss_name, "success": bool(res.success)})
        if viscosity > 0:
            m["perturbed_accuracy"] = robustness_curve(
                prob, res.x, x_test, y_test,
                radii=radii if radii is not None else (0.0, 0.05, 0.1, 0.15, 0.2, 0.3), seed=seed)
        all_metrics[q] = m
        name = "original (q = 0)" if q == 0 else f"augmented (q = {q})"
        rows.append(_figure_row(name, prob, res, x_train, y_train, x_test, y_test, lim, grid_n))
    metrics = dict(all_metrics[augment])
    if len(runs) == 2:
        metrics["baseline"] = all_metrics[0]
    if out is not None:
        import matplotlib.pyplot as plt

        os.makedirs(out, exist_ok=True)
        fig = plot_classifier_figure(
            rows, os.path.join(out, figure_name),
            title=f"neural-ODE classifier on '{data}' ({optimizer}"
                  + (f", viscosity {viscosity}" if viscosity > 0 else "") + ")")
        plt.close(fig)
        with open(os.path.join(out, "metrics.json"), "w") as fh:
            json.dump(metrics, fh, indent=2)
    return metrics


@subcommand("classify", "train a neural-ODE classifier on a 2-D toy set (article Figure 1)")
def cmd_classify(args):
    kw = dict(width=args.width, nt=args.nt, T=args.T, integrator=args.integrator,
              time_param=_time_param(args.time_param), tikhonov=args.tikhonov,
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


def _configure(p):
    from ..datasets import DATASETS

    p.add_argument("--data", default="rings", choices=sorted(DATASETS),
                   help="toy data set (default: %(default)s)")
    p.add_argument("--augment", type=int, default=1,
                   help="zero columns appended to the input, q (default: %(default)s)")
    p.add_argument("--out", default="ocp_learn_classify", help="output folder (default: %(default)s)")
    p.add_argument("--n-train", type=int, default=1000, help="training points (default: %(default)s)")
    p.add_argument("--n-test", type=int, default=1000, help="held-out test points (default: %(default)s)")
    p.add_argument("--optimizer", default="lbfgs", choices=OPTIMIZERS, help="(default: %(default)s)")
    p.add_argument("--maxiter", type=int, default=300, help="iterations (default: %(default)s)")
    p.add_argument("--loss", default="logistic", choices=["logistic", "softmax"],
                   help="(default: %(default)s)")
    p.add_argument("--width", type=int, default=16, help="hidden width m (default: %(default)s)")
    p.add_argument("--nt", type=int, default=8, help="time steps (default: %(default)s)")
    p.add_argument("--T", type=float, default=1.0, help="horizon (default: %(default)s)")
    p.add_argument("--integrator", default="rk4",
                   help="RK tableau (default: %(default)s; 'euler' with --viscosity)")
    p.add_argument("--time-param", default="constant",
                   help="'constant', 'pwc:N' or 'pwl:N' (default: %(default)s)")
    p.add_argument("--tikhonov", type=float, default=1e-4, help="Tikhonov weight (default: %(default)s)")
    p.add_argument("--smoothness", type=float, default=0.0,
                   help="smoothness-in-time weight (default: %(default)s)")
    p.add_argument("--viscosity", type=float, default=0.0,
                   help="noise level nu of the viscous variant (default: %(default)s)")
    p.add_argument("--no-baseline", action="store_true",
                   help="do not train the unaugmented model for comparison")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--progress", action="store_true", help="show progress bars")


cmd_classify.configure = _configure


def run_demo_classifier(out, seed=0, progress=False, maxiter=150):
    """Demo part: disk-in-ring data, original vs one augmented dimension (seconds)."""
    m = classify("rings", augment=1, n_train=300, n_test=100, out=out, seed=seed, maxiter=maxiter,
                 progress=progress, width=8, nt=8, grid_n=81, figure_name="demo_classifier.png")
    os.replace(os.path.join(out, "metrics.json"), os.path.join(out, "demo_classifier_metrics.json"))
    base = m.pop("baseline")
    keep = ("train_accuracy", "test_accuracy", "objective", "n_params", "iterations", "nfev",
            "seconds", "optimizer")
    out_m = {"problem": "classifier (rings, augment 1)", **{k: m[k] for k in keep}}
    out_m["test_accuracy_no_augmentation"] = base["test_accuracy"]
    return out_m


register_demo(run_demo_classifier)
