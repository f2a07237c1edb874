"""Neural-ODE classifiers (MATH C1, C2): training, and a run that writes its metrics and the
article's Figure 1 to a folder (``ocp-learn classify``); on the real data sets of
scikit-learn, a run that writes its metrics with logistic regression's on the same split
(``ocp-learn classify --data digits|breast_cancer|wine``)."""
from __future__ import annotations

import contextlib
import time
from typing import Any, Sequence

import numpy as np
from scipy.optimize import OptimizeResult

from ._common import UNITS, RunFolder, write_results
from .bundle import save_bundle

__all__ = ["OPTIMIZERS", "parse_time_param", "train_classifier", "classify", "classify_real",
           "demo_classifier", "LOGREG_GRID"]

#: The optimizers ``train_classifier`` accepts.
OPTIMIZERS = ("lbfgs", "gauss-newton", "adam")

#: Inverse regularization weights ``C`` of the logistic regression of :func:`classify_real`
#: (the one of best validation accuracy is kept).
LOGREG_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)


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
                     head_decay: float = 0.0,
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
    head_decay : float
        L2 weight ``(head_decay / 2) |W|_F^2`` on the head's weights in training
        (:class:`~ocp_learn.recipes.real_classification.HeadDecayClassifier`; deterministic models
        only); 0: none.
    **problem_kwargs
        Passed to the problem (``width``, ``nt``, ``T``, ``integrator``, ``time_param``,
        ``tikhonov``, ``smoothness``, ``kinetic``, ``loss``, ...).

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
    head_decay = check_positive_float("head_decay", head_decay, allow_zero=True)
    if viscosity > 0 and head_decay > 0:
        raise ValueError("head_decay applies to the deterministic classifier (viscosity 0)")
    if head_decay > 0:
        from .real_classification import HeadDecayClassifier

        prob = HeadDecayClassifier(x_train, y_train, augment=augment, head_decay=head_decay,
                                   **problem_kwargs)
    elif viscosity > 0:
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


def _saved(prob: Any, x_train: np.ndarray, y_train: np.ndarray, augment: int,
           problem_kwargs: dict[str, Any]) -> Any:
    """The problem a bundle stores: a classifier trained with a head penalty is saved as the
    plain classifier of the same settings (the penalty shapes training only)."""
    from .real_classification import HeadDecayClassifier

    if not isinstance(prob, HeadDecayClassifier):
        return prob
    from ..problems import NeuralODEClassifier

    kw = {k: v for k, v in problem_kwargs.items() if k != "head_decay"}
    return NeuralODEClassifier(x_train, y_train, augment=augment, **kw)


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
        Toy data set (``ocp_learn.datasets.DATASETS``), or a real one
        (``ocp_learn.datasets.real.REAL_DATASETS``): :func:`classify_real` on its fixed
        split (``n_train``, ``n_test``, ``grid_n`` and ``figure_name`` do not apply).
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
    from ..datasets.real import REAL_DATASETS
    from ..errors import check_nonneg_int, check_positive_float, check_positive_int, check_rng
    from ..problems.viscous import robustness_curve

    if data in REAL_DATASETS:
        return classify_real(data, augment=augment, out=out, seed=seed, optimizer=optimizer,
                             maxiter=maxiter, baseline=baseline, viscosity=viscosity,
                             radii=radii, progress=progress, metrics_name=metrics_name,
                             theta_name=theta_name, bundle_name=bundle_name, info=info,
                             **problem_kwargs)
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
        unsaved = save_bundle(folder, _saved(trained[augment][0], x_train, y_train, augment,
                                             problem_kwargs),
                              trained[augment][1].x, name=bundle_name)
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


def _logreg(split: Any, seed: int) -> dict[str, Any]:
    """Logistic regression on ``split``, ``C`` of :data:`LOGREG_GRID` chosen on validation."""
    from .real_classification import tune_classifier

    r = tune_classifier("logreg", split, LOGREG_GRID, seed=seed)
    n = len(split.y_test)
    acc = r["test_accuracy"]
    return {"C": float(r["param"]), "val_accuracy": r["val_accuracy"], "test_accuracy": acc,
            "test_accuracy_se": float(np.sqrt(acc * (1.0 - acc) / n)), "test_accuracy_n": n,
            "n_params": r["n_params"], "seconds": float(r["seconds"])}


def classify_real(data: str, *, augment: int = 1, out: str | None = None, seed: int = 0,
                  optimizer: str = "lbfgs", maxiter: int = 300, baseline: bool = True,
                  viscosity: float = 0.0, radii: Sequence[float] | None = None,
                  progress: bool = False, metrics_name: str = "metrics.json",
                  theta_name: str = "theta.npy", bundle_name: str = "model.npz",
                  info: dict[str, Any] | None = None, **problem_kwargs: Any) -> dict[str, Any]:
    """Train a classifier on a real data set of scikit-learn; write its parameters and metrics.

    The set is split by ``seed`` into training, validation and test parts (60 / 20 / 20 %,
    stratified by class, :func:`~ocp_learn.datasets.real.load_real`) and every part is
    standardized with the training part's mean and deviation
    (:func:`~ocp_learn.datasets.real.standardize`).  The neural ODE is trained on the
    training part with the settings given; with ``baseline``, logistic regression is fitted
    to the same standardized training part, its ``C`` chosen on the validation part.

    Parameters
    ----------
    data : {"digits", "breast_cancer", "wine"}
        The data set.
    augment : int
        Zero columns appended to the input (``q``).
    out : str, optional
        Output folder (a :class:`~.rundir.RunFolder`): ``theta_name``, ``bundle_name`` (the
        classifier of standardized inputs) and ``metrics_name``; None writes nothing.
    seed : int
        Seed of the split and of the training.
    optimizer : {"lbfgs", "gauss-newton", "adam"}
        The optimizer.
    maxiter : int
        Iterations.
    baseline : bool
        Also fit logistic regression on the same split.
    viscosity : float
        Noise level ``nu`` of the viscous variant (0: deterministic).
    radii : sequence of float, optional
        Perturbation sizes of the robustness curve (viscous only; standardized units).
    progress : bool
        Show a progress bar.
    metrics_name, theta_name, bundle_name : str
        File names in ``out``.
    info : dict, optional
        The run's description (:func:`~.rundir.run_info`).
    **problem_kwargs
        Passed to :func:`train_classifier` (``width``, ``nt``, ``loss``: the logistic loss
        for two classes and softmax for more by default, ...).

    Returns
    -------
    dict
        Accuracies (``test_accuracy`` with its binomial standard error, ``val_accuracy``,
        ``train_accuracy``), the confusion matrix on the test part (rows: true class), the
        objective, sizes, optimizer statistics, the standardization (``input_mean``,
        ``input_std``) and, with ``baseline``, ``logistic_regression``.
    """
    from ..datasets.real import REAL_DATASETS, load_real, standardize
    from ..errors import check_nonneg_int, check_positive_float, check_positive_int
    from ..problems.viscous import robustness_curve

    if data not in REAL_DATASETS:
        raise ValueError(f"data must be one of {list(REAL_DATASETS)}, got {data!r}")
    check_nonneg_int("augment", augment)
    check_positive_int("maxiter", maxiter)
    check_positive_float("viscosity", viscosity, allow_zero=True)
    check_nonneg_int("seed", seed)
    split, mean, std = standardize(load_real(data, seed))
    k = split.n_classes
    loss = problem_kwargs.setdefault("loss", "logistic" if k == 2 else "softmax")
    if loss == "logistic" and k > 2:
        raise ValueError(f"loss 'logistic' separates two classes; {data!r} has {k} (use "
                         "'softmax')")
    with contextlib.nullcontext(None) if out is None else RunFolder(out, info) as folder:
        prob, res, secs = train_classifier(split.x_train, split.y_train, augment=augment,
                                           optimizer=optimizer, maxiter=maxiter, seed=seed,
                                           viscosity=viscosity, progress=progress,
                                           **problem_kwargs)
        unsaved = None
        if folder is not None:  # the parameters first: the evaluation may fail
            write_results(folder, res.x, None, theta_name=theta_name)
            unsaved = save_bundle(folder, _saved(prob, split.x_train, split.y_train, augment,
                                                 problem_kwargs), res.x, name=bundle_name)
        m = _metrics(prob, res, secs, optimizer, split.x_test, split.y_test)
        pred = np.asarray(prob.predict(res.x, split.x_test))
        confusion = np.zeros((k, k), dtype=int)
        np.add.at(confusion, (split.y_test, pred.astype(int)), 1)
        m.update({"val_accuracy": prob.accuracy(res.x, split.x_val, split.y_val),
                  "data": data, "dim": split.dim, "n_classes": k, "augment": int(augment),
                  "n_train": int(len(split.y_train)), "n_val": int(len(split.y_val)),
                  "n_test": int(len(split.y_test)), "seed": int(seed),
                  "viscosity": float(viscosity), "loss": prob.loss_name,
                  "tikhonov": problem_kwargs.get("tikhonov"),
                  "head_decay": float(problem_kwargs.get("head_decay", 0.0)),
                  "kinetic": float(problem_kwargs.get("kinetic", 0.0)),
                  "success": bool(res.success), "message": str(res.get("message", "")),
                  "confusion_test": confusion.tolist(),
                  "input_mean": mean.tolist(), "input_std": std.tolist(),
                  "input_note": "the model takes inputs standardized with input_mean and "
                                "input_std, the training split's statistics"})
        if viscosity > 0:
            m["perturbed_accuracy"] = robustness_curve(
                prob, res.x, split.x_test, split.y_test,
                radii=radii if radii is not None else (0.0, 0.05, 0.1, 0.15, 0.2, 0.3),
                seed=seed)
        if baseline:
            m["logistic_regression"] = _logreg(split, seed)
        if folder is None:
            return m
        m["units"] = {**UNITS, "val_accuracy": "fraction of points"}
        if unsaved:
            m["skipped"] = {bundle_name: unsaved}
        write_results(folder, None, m, metrics_name=metrics_name)
    return m


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
