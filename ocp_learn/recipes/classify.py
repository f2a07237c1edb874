"""Neural-ODE classifiers (MATH C1, C2): training, and a run that writes its metrics and the
article's Figure 1 to a folder (``ocp-learn classify``)."""
from __future__ import annotations

import contextlib
import time
from typing import Any, Sequence

import numpy as np
from scipy.optimize import OptimizeResult

from ._common import UNITS, RunFolder, write_results
from .bundle import save_bundle

__all__ = ["OPTIMIZERS", "parse_time_param", "train_classifier", "classify", "demo_classifier"]

#: The optimizers ``train_classifier`` accepts.
OPTIMIZERS = ("lbfgs", "gauss-newton", "adam")


def parse_time_param(spec: str | None) -> tuple[str, int] | None:
    """The ``time_param`` of a classifier from its short form.

    Parameters
    ----------
    spec : str or None
        ``"constant"`` (or None), ``"pwc:N"`` (piecewise constant in time, N pieces) or
        ``"pwl:N"`` (piecewise linear, N pieces).

    Returns
    -------
    tuple or None
        ``("piecewise_constant", N)``, ``("piecewise_linear", N)``, or None (constant).
    """
    if spec in (None, "constant"):
        return None
    kind, _, n = str(spec).partition(":")
    names = {"pwc": "piecewise_constant", "pwl": "piecewise_linear"}
    if kind not in names or not n.isdigit():
        raise ValueError(f"time-param must be 'constant', 'pwc:N' or 'pwl:N', got {spec!r}")
    return (names[kind], int(n))


def train_classifier(x_train: np.ndarray, y_train: np.ndarray, *, augment: int = 0,
                     optimizer: str = "lbfgs", maxiter: int = 300, seed: int = 0,
                     viscosity: float = 0.0, n_paths: int = 1, n_predict: int = 32,
                     progress: bool = False, batch_size: int = 64, lr: float = 0.02,
                     **problem_kwargs: Any) -> tuple[Any, OptimizeResult, float]:
    """Build and train a (viscous) neural-ODE classifier.

    Parameters
    ----------
    x_train : ndarray, shape (n, d)
        Training inputs.
    y_train : ndarray, shape (n,)
        Integer labels.
    augment : int
        Zero columns appended to the input (``q``).
    optimizer : {"lbfgs", "gauss-newton", "adam"}
        The optimizer (Adam: seeded mini-batches, cosine step-size schedule).
    maxiter : int
        Iterations.
    seed : int
        Seed of the initial parameters (and of the noise, ``seed + 1``, and mini-batches).
    viscosity : float
        ``nu > 0`` builds a :class:`~ocp_learn.problems.ViscousClassifier`
        (Euler--Maruyama, MATH C2) instead of a deterministic one.
    n_paths, n_predict : int
        Noise paths per sample in training and in prediction (viscous only).
    progress : bool
        Show a progress bar.
    batch_size, lr : int, float
        Adam's mini-batch size and step size.
    **problem_kwargs
        Passed to the problem (``width``, ``nt``, ``T``, ``integrator``, ``time_param``,
        ``tikhonov``, ``smoothness``, ``loss``, ...).

    Returns
    -------
    problem : NeuralODEClassifier or ViscousClassifier
        The trained problem.
    result : scipy.optimize.OptimizeResult
        The optimizer's result (``result.x`` the parameters).
    seconds : float
        Training time.
    """
    from ..errors import check_positive_float
    from ..optim import adam, gauss_newton, lbfgs
    from ..problems import NeuralODEClassifier
    from ..problems.viscous import ViscousClassifier

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
    """The run's metrics; the test accuracy with its binomial standard error
    ``sqrt(a (1 - a) / n_test)`` and sample count; ``objective`` is the training objective
    at the returned parameters (on the training samples, not a fresh-sample estimate)."""
    acc = prob.accuracy(res.x, x_test, y_test)
    n = int(len(y_test))
    return {"train_accuracy": prob.accuracy(res.x), "test_accuracy": acc,
            "test_accuracy_se": float(np.sqrt(acc * (1.0 - acc) / n)), "test_accuracy_n": n,
            "objective": float(res.fun),
            "objective_note": "training objective at the returned parameters, on the training "
                              "samples",
            "n_params": int(prob.n_params), "iterations": int(res.nit),
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


def classify(data: str = "rings", *, augment: int = 1, n_train: int = 1000, n_test: int = 1000,
             out: str | None = None, seed: int = 0, optimizer: str = "lbfgs", maxiter: int = 300,
             baseline: bool = True, viscosity: float = 0.0, radii: Sequence[float] | None = None,
             progress: bool = False, grid_n: int = 121, figure_name: str = "figure.png",
             metrics_name: str = "metrics.json", theta_name: str = "theta.npy",
             bundle_name: str = "model.npz", info: dict[str, Any] | None = None,
             **problem_kwargs: Any) -> dict[str, Any]:
    """Train a classifier on a toy set; write its parameters, metrics and Figure 1.

    With ``augment > 0`` and ``baseline`` the unaugmented model (``q = 0``) is trained with
    the same settings and shown in the first row of the figure, its metrics under the key
    ``"baseline"``.  With ``viscosity > 0`` the metrics get ``perturbed_accuracy`` (accuracy
    under Gaussian input perturbations of growing size,
    :func:`~ocp_learn.problems.viscous.robustness_curve`).

    Parameters
    ----------
    data : str
        Toy data set (``ocp_learn.datasets.DATASETS``).
    augment : int
        Zero columns appended to the input (``q``).
    n_train, n_test : int
        Training and held-out test points.
    out : str, optional
        Output folder: ``theta_name``, ``bundle_name`` and ``metrics_name`` are written
        first, then ``figure_name``; None writes nothing.
    seed : int
        Seed of the data, its split and the training.
    optimizer : {"lbfgs", "gauss-newton", "adam"}
        The optimizer.
    maxiter : int
        Iterations.
    baseline : bool
        Also train the unaugmented model (when ``augment > 0``).
    viscosity : float
        Noise level ``nu`` of the viscous variant (0: deterministic).
    radii : sequence of float, optional
        Perturbation sizes of the robustness curve (viscous only).
    progress : bool
        Show a progress bar.
    grid_n : int
        Grid points per axis of the decision-region plot.
    figure_name, metrics_name, theta_name, bundle_name : str
        File names in ``out`` (the bundle: :mod:`.bundle`).
    info : dict, optional
        The run's description (:func:`~.rundir.run_info`), stored with the metrics and in
        ``out/run.json``; ``out`` is a :class:`~.rundir.RunFolder`, opened before training.
    **problem_kwargs
        Passed to ``train_classifier``.

    Returns
    -------
    dict
        Accuracies, objective, sizes and optimizer statistics of the (augmented) model; the
        unaugmented model's under ``"baseline"``.
    """
    from ..datasets import get_dataset, train_test_split
    from ..errors import check_nonneg_int, check_positive_float, check_positive_int, check_rng
    from ..problems.viscous import robustness_curve

    # validate before any data is drawn or any model trained
    n_train = check_positive_int("n_train", n_train)
    n_test = check_positive_int("n_test", n_test)
    check_nonneg_int("augment", augment)
    check_positive_int("maxiter", maxiter)
    check_positive_float("viscosity", viscosity, allow_zero=True)
    check_rng(seed)
    with contextlib.nullcontext(None) if out is None else RunFolder(out, info) as folder:
        x, y = get_dataset(data, n_train + n_test, seed=seed)
        x_train, y_train, x_test, y_test = train_test_split(x, y, n_test / (n_train + n_test),
                                                            seed=seed)
        runs = [augment] if (augment == 0 or not baseline) else [0, augment]
        trained, all_metrics = {}, {}
        for q in runs:
            prob, res, secs = train_classifier(x_train, y_train, augment=q, optimizer=optimizer,
                                               maxiter=maxiter, seed=seed, viscosity=viscosity,
                                               progress=progress, **problem_kwargs)
            m = _metrics(prob, res, secs, optimizer, x_test, y_test)
            m.update({"data": data, "augment": q, "n_train": int(len(y_train)),
                      "n_test": int(len(y_test)), "viscosity": float(viscosity),
                      "loss": prob.loss_name, "success": bool(res.success),
                      "message": str(res.get("message", ""))})
            if viscosity > 0:
                m["perturbed_accuracy"] = robustness_curve(
                    prob, res.x, x_test, y_test,
                    radii=radii if radii is not None else (0.0, 0.05, 0.1, 0.15, 0.2, 0.3),
                    seed=seed)
            all_metrics[q] = m
            trained[q] = (prob, res)
        metrics = dict(all_metrics[augment])
        if len(runs) == 2:
            metrics["baseline"] = all_metrics[0]
        if folder is None:
            return metrics
        metrics["units"] = UNITS
        write_results(folder, trained[augment][1].x, None, theta_name=theta_name)
        unsaved = save_bundle(folder, trained[augment][0], trained[augment][1].x,
                              name=bundle_name)
        if unsaved:
            metrics["skipped"] = {bundle_name: unsaved}
        write_results(folder, None, metrics, metrics_name=metrics_name)
        import matplotlib.pyplot as plt

        from ..plotting import plot_classifier_figure

        lim = float(np.max(np.abs(x))) * 1.1
        rows = [_figure_row("original (q = 0)" if q == 0 else f"augmented (q = {q})",
                            *trained[q], x_train, y_train, x_test, y_test, lim, grid_n)
                for q in runs]
        with folder.writing(figure_name) as tmp:
            fig = plot_classifier_figure(
                rows, tmp,
                title=f"neural-ODE classifier on '{data}' ({optimizer}"
                      + (f", viscosity {viscosity}" if viscosity > 0 else "") + ")")
            plt.close(fig)
    return metrics


def demo_classifier(out: str, seed: int = 0, progress: bool = False,
                    maxiter: int = 150) -> dict[str, Any]:
    """The classifier part of ``ocp-learn demo``: disk-in-ring data, the original model
    against one augmented dimension (seconds).

    Writes ``demo_classifier_theta.npy``, ``demo_classifier_metrics.json`` and
    ``demo_classifier.png`` into ``out``.

    Parameters
    ----------
    out : str
        The demo's folder.
    seed : int
        Seed of the run.
    progress : bool
        Show a progress bar.
    maxiter : int
        L-BFGS iterations.

    Returns
    -------
    dict
        ``problem`` (a label), the augmented model's main metrics and
        ``test_accuracy_no_augmentation``.
    """
    m = classify("rings", augment=1, n_train=300, n_test=100, out=out, seed=seed, maxiter=maxiter,
                 progress=progress, width=8, nt=8, grid_n=81, figure_name="demo_classifier.png",
                 metrics_name="demo_classifier_metrics.json",
                 theta_name="demo_classifier_theta.npy", bundle_name="demo_classifier_model.npz")
    base = m.pop("baseline")
    keep = ("train_accuracy", "test_accuracy", "objective", "n_params", "iterations", "nfev",
            "seconds", "optimizer")
    out_m = {"problem": "classifier (rings, augment 1)", **{k: m[k] for k in keep}}
    out_m["test_accuracy_no_augmentation"] = base["test_accuracy"]
    return out_m
