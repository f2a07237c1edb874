"""Real data: density estimation on the digits with OT-Flow against classical density
estimators, and neural-ODE classifiers against classical classifiers.

Density (:func:`~ocp_learn.datasets.real.digits_density_data`, :func:`density_baselines`,
:func:`train_digits_flow`, :func:`density_table`): the digits are dequantized and mapped by
:class:`~ocp_learn.datasets.real.LogitPreprocessing` (and
:class:`~ocp_learn.datasets.real.Whitening`); every model is fitted to the
preprocessed training split and scored by ``log p_x(x) = log p_y(T(x)) + log |det T'(x)|``,
the log-density of the dequantized test digits in the original pixel scale (nats).

Classification (:func:`classification_runs`): the neural-ODE classifier
(:class:`~ocp_learn.problems.NeuralODEClassifier`, trained with L-BFGS and with
Gauss--Newton--CG) and ``LogisticRegression``, ``MLPClassifier`` (about the neural ODE's
parameter count) and an RBF ``SVC``, each with its regularization chosen on the validation
split, over several stratified splits.
"""
from __future__ import annotations

import time
import warnings
from typing import Any, Sequence

import numpy as np

from ..datasets.real import DensityData, digits_density_data
from ..problems import NeuralODEClassifier
from ..problems.classification import GaussNewtonOperator

__all__ = ["DensityData", "digits_density_data", "density_baselines", "train_digits_flow",
           "flow_log_density", "paired_gap", "density_table", "mlp_hidden_for",
           "tune_classifier", "classification_runs", "CLASSIFIERS", "HeadDecayClassifier"]


def density_baselines(data: DensityData, *, components: Sequence[int] = (1, 2, 3, 5, 8, 10, 15),
                      covariance_types: Sequence[str] = ("full", "diag"),
                      reg_covars: Sequence[float] = (1e-2, 1e-1, 0.3, 0.5, 1.0),
                      bandwidths: Sequence[float] = (0.3, 0.5, 0.7, 0.8, 0.9, 1.0, 1.2),
                      seed: int = 0) -> dict[str, dict[str, Any]]:
    """Full-covariance Gaussian, Gaussian mixture and kernel density estimate on ``data``.

    The mixture's number of components, covariance type and covariance regularization and
    the kernel's bandwidth are chosen by the validation NLL; the models are fitted to the
    training split.

    Parameters
    ----------
    data : DensityData
    components, covariance_types, reg_covars : sequences
        The mixture's grid (``sklearn.mixture.GaussianMixture``).
    bandwidths : sequence of float
        The Gaussian kernel's bandwidths (``sklearn.neighbors.KernelDensity``).
    seed : int
        Seed of the mixtures' initialization.

    Returns
    -------
    dict
        ``{"gaussian": ..., "gmm": ..., "kde": ...}``, each with ``params`` (the chosen
        settings), ``val_nll`` (nats, pixel scale), ``log_density_test`` (per test sample,
        pixel scale) and ``seconds`` (the whole selection).
    """
    from sklearn.mixture import GaussianMixture
    from sklearn.neighbors import KernelDensity

    def score(model, y, ld):
        return model.score_samples(y) + ld

    out = {}
    t0 = time.perf_counter()
    mean = data.y_train.mean(axis=0)
    cov = np.cov(data.y_train, rowvar=False, bias=True)
    from scipy.stats import multivariate_normal

    g = multivariate_normal(mean, cov)
    out["gaussian"] = {"params": {}, "val_nll": float(-np.mean(g.logpdf(data.y_val)
                                                               + data.log_det_val)),
                       "log_density_test": g.logpdf(data.y_test) + data.log_det_test,
                       "seconds": time.perf_counter() - t0}
    t0 = time.perf_counter()
    best = None
    for k in components:
        for ct in covariance_types:
            for reg in reg_covars:
                m = GaussianMixture(k, covariance_type=ct, reg_covar=reg, random_state=seed,
                                    max_iter=300).fit(data.y_train)
                v = float(-np.mean(score(m, data.y_val, data.log_det_val)))
                if best is None or v < best[0]:
                    best = (v, m, {"n_components": k, "covariance_type": ct, "reg_covar": reg})
    out["gmm"] = {"params": best[2], "val_nll": best[0],
                  "log_density_test": score(best[1], data.y_test, data.log_det_test),
                  "seconds": time.perf_counter() - t0}
    t0 = time.perf_counter()
    best = None
    for bw in bandwidths:
        m = KernelDensity(bandwidth=bw).fit(data.y_train)
        v = float(-np.mean(score(m, data.y_val, data.log_det_val)))
        if best is None or v < best[0]:
            best = (v, m, {"bandwidth": bw})
    out["kde"] = {"params": best[2], "val_nll": best[0],
                  "log_density_test": score(best[1], data.y_test, data.log_det_test),
                  "seconds": time.perf_counter() - t0}
    return out


def flow_log_density(prob: Any, theta: np.ndarray, y: np.ndarray, log_det: np.ndarray,
                     nt: int | None = None) -> np.ndarray:
    """``log p_x(x) = log p_y(y) + log |det T'(x)|`` of a trained flow, per sample (nats).

    Parameters
    ----------
    prob : ContinuousNormalizingFlow
    theta : ndarray
    y : ndarray, shape (n, d)
        Preprocessed samples ``T(x)``.
    log_det : ndarray, shape (n,)
        ``log |det T'(x)|``.
    nt : int, optional
        Time steps (the training grid by default).
    """
    return prob.log_density(theta, y, nt=nt) + log_det


def train_digits_flow(data: DensityData, *, width: int = 32, nt: int = 8, maxiter: int = 500,
                      alpha_L: float = 0.01, alpha_R: float = 0.05, seed: int = 0,
                      backend: str = "numba", val_every: int = 10, patience: int = 5,
                      input_scale: float = 1.0, redraw_every: int | None = None,
                      progress: bool = False,
                      **problem_kwargs: Any) -> tuple[Any, np.ndarray, dict[str, Any]]:
    """Train OT-Flow with L-BFGS on the preprocessed digits, stopping on the validation NLL.

    The flow standardizes its input with the training split's mean and ``input_scale`` times
    its deviation (its fixed affine map, exact log-determinant); ``input_scale < 1`` widens
    the data beyond the Gaussian's unit scale, which the convex quadratic part of the OT
    potential can contract.  Every ``val_every`` iterations the validation NLL is
    computed; the parameters with the lowest one are returned, and training stops after
    ``patience`` checks without improvement.

    Parameters
    ----------
    data : DensityData
    width, nt, alpha_L, alpha_R : int, int, float, float
        The flow (:class:`~ocp_learn.problems.cnf.ContinuousNormalizingFlow`).
    maxiter : int
        L-BFGS iteration limit.
    seed : int
        Seed of the initial parameters.
    backend : {"numba", "numpy"}
    val_every, patience : int
        Validation cadence and patience (in checks).
    input_scale : float
        Factor on the training deviation in the flow's input scale.
    redraw_every : int, optional
        Redraw the dequantization noise of the training images every ``redraw_every``
        iterations (:func:`~ocp_learn.optim.lbfgs_resampled`; needs ``data.pixels_train``);
        None: one fixed draw.
    progress : bool
        Show a progress bar.
    **problem_kwargs
        Further flow arguments (``n_layers``, ``rank``, ...).

    Returns
    -------
    problem : ContinuousNormalizingFlow
    theta : ndarray
        The parameters of lowest validation NLL.
    info : dict
        ``seconds`` (training, validation checks included), ``iterations``, ``nfev``,
        ``best_iteration``, ``val_nll`` (best), ``val_curve`` (``[iteration, val NLL]``),
        ``n_params``.
    """
    from .flow import train_flow

    y = data.y_train
    state = {"best": np.inf, "theta": None, "it": 0, "bad": 0, "curve": [], "next": val_every}

    def check(k, theta, prob_):
        v = float(-np.mean(flow_log_density(prob_, theta, data.y_val, data.log_det_val)))
        state["curve"].append([int(k), v])
        if v < state["best"]:
            state.update(best=v, theta=np.array(theta), it=int(k), bad=0)
        else:
            state["bad"] += 1
        return state["bad"] >= patience

    from ..problems.cnf import ContinuousNormalizingFlow

    kw = dict(width=width, nt=nt, alpha_L=alpha_L, alpha_R=alpha_R, backend=backend,
              shift=y.mean(axis=0), scale=input_scale * y.std(axis=0), **problem_kwargs)
    # the flow train_flow builds, on one validation row: the checks only need its field
    checker = ContinuousNormalizingFlow(data.y_val[:1], seed=seed, **kw)

    done = 0 if redraw_every else 1  # iterations done at callback(k): k (redraws), k + 1

    def callback(k, theta, f, g):
        if k + done < state["next"]:
            return False
        state["next"] = k + done + val_every
        return check(k + done, theta, checker)

    draw = None
    if redraw_every is not None:
        from ..datasets.real import dequantize

        if data.pixels_train is None:
            raise ValueError("redraw_every needs data.pixels_train (the integer images)")

        def draw(n, rng):
            if n != len(data.pixels_train):
                raise ValueError(f"each draw is the whole training split "
                                 f"({len(data.pixels_train)} images), asked for {n}")
            return data.preprocess(dequantize(data.pixels_train, rng))[0]
    prob, res, secs = train_flow(y, optimizer="lbfgs", maxiter=maxiter, seed=seed,
                                 progress=progress, callback=callback,
                                 resample_every=redraw_every, draw=draw, **kw)
    if not state["curve"] or state["curve"][-1][0] != int(res.nit):
        check(int(res.nit), res.x, prob)
    return prob, state["theta"], {
        "seconds": float(secs), "iterations": int(res.nit), "nfev": int(res.nfev),
        "best_iteration": state["it"], "val_nll": state["best"], "val_curve": state["curve"],
        "n_params": int(prob.n_params), "width": width, "nt": nt,
        "rank": int(prob.potential.rank), "input_scale": input_scale, "alpha_L": alpha_L,
        "alpha_R": alpha_R, "redraw_every": redraw_every,
        "message": str(res.get("message", ""))}


def paired_gap(log_p_a: np.ndarray, log_p_b: np.ndarray) -> tuple[float, float]:
    """NLL of model ``a`` minus NLL of model ``b`` on the same samples, with its standard
    error from the per-sample differences.

    Returns
    -------
    gap, se : float
        ``mean(log p_b - log p_a)`` (nats; negative: ``a`` is better) and
        ``std(log p_b - log p_a) / sqrt(n)``.
    """
    d = np.asarray(log_p_b) - np.asarray(log_p_a)
    return float(np.mean(d)), float(np.std(d, ddof=1) / np.sqrt(d.size))


def density_table(log_densities: dict[str, np.ndarray], dim: int) -> list[dict[str, Any]]:
    """Rows of the density comparison: test NLL (nats) with its standard error, bits per
    dimension, and the paired gap to the best other model.

    Parameters
    ----------
    log_densities : dict
        Model name to per-test-sample log-densities (pixel scale).
    dim : int
        Dimension, for bits per dimension.
    """
    from ..datasets.real import bits_per_dim

    nll = {k: float(-np.mean(v)) for k, v in log_densities.items()}
    rows = []
    for k, lp in log_densities.items():
        others = [o for o in nll if o != k]
        best = min(others, key=nll.get) if others else None
        gap, se = paired_gap(lp, log_densities[best]) if best else (np.nan, np.nan)
        rows.append({"model": k, "test_nll": nll[k],
                     "test_nll_se": float(np.std(lp, ddof=1) / np.sqrt(len(lp))),
                     "bits_per_dim": float(bits_per_dim(nll[k], dim)),
                     "vs": best, "gap_nats": gap, "gap_se": se})
    return rows


# --- classification ----------------------------------------------------------------------

#: The classifiers :func:`classification_runs` compares.
CLASSIFIERS = ("node_lbfgs", "node_gn", "logreg", "mlp", "svc")


def mlp_hidden_for(n_params: int, d: int, n_classes: int) -> int:
    """Hidden width ``h`` of a one-hidden-layer MLP with about ``n_params`` parameters,
    ``(d + 1) h + (h + 1) c`` (``c`` outputs; one for two classes)."""
    c = 1 if n_classes == 2 else n_classes
    return max(1, int(round((n_params - c) / (d + 1 + c))))


class HeadDecayClassifier(NeuralODEClassifier):
    """A :class:`~ocp_learn.problems.NeuralODEClassifier` whose head's weights carry the L2
    penalty ``(head_decay / 2) |W|_F^2`` (``weight_decay`` of
    :class:`~ocp_learn.costs.LinearHeadLoss`): in the objective, its gradient and the
    Gauss--Newton product (the penalty's Hessian, ``head_decay`` on the entries of ``W``).

    The penalty shapes training only; predictions are those of the parent class, and a
    saved model is a plain classifier.

    Parameters
    ----------
    x, labels : array_like
        Training features and labels.
    head_decay : float
        Weight of the penalty (0: the plain classifier).
    **kwargs
        Further classifier arguments.
    """

    def __init__(self, x, labels, *, head_decay: float = 0.0, **kwargs: Any) -> None:
        from ..errors import check_positive_float

        super().__init__(x, labels, **kwargs)
        self.terminal.weight_decay = check_positive_float("head_decay", head_decay,
                                                          allow_zero=True)

    def gauss_newton_operator(self, theta, batch=None):
        """The parent's operator with ``head_decay`` added on the head's weights."""
        op = super().gauss_newton_operator(theta, batch)
        p = self._split(op.theta)[1]
        term, layout, inner = self.terminal, self.layout, op.matvec

        def matvec(v):
            out = inner(v)
            layout.unpack(out)["terminal"][...] += term.penalty_hvp(p, self._split(v)[1])
            return out
        return GaussNewtonOperator(op.theta, op.evaluation, matvec, op.ledger)


def _node(split, kwargs, tikhonov, optimizer, maxiter, seed, check_every, head_decay=0.0):
    """Train a neural-ODE classifier, checking the validation accuracy every ``check_every``
    iterations; the parameters of the best check (the first on ties) are kept."""
    from ..optim import gauss_newton, lbfgs

    loss = "logistic" if split.n_classes == 2 else "softmax"
    prob = HeadDecayClassifier(split.x_train, split.y_train, loss=loss, tikhonov=tikhonov,
                               head_decay=head_decay, **kwargs)
    best = {"val": -1.0, "theta": None, "it": 0}

    def check(k, theta):
        va = prob.accuracy(theta, split.x_val, split.y_val)
        if va > best["val"]:
            best.update(val=va, theta=np.array(theta), it=int(k))

    def callback(k, theta, f, g):
        if (k + 1) % check_every == 0:
            check(k + 1, theta)
        return False

    t0 = time.perf_counter()
    run = lbfgs if optimizer == "lbfgs" else gauss_newton
    res = run(prob, prob.init_params(seed), maxiter=maxiter, progress=False, callback=callback)
    check(res.nit, res.x)
    secs = time.perf_counter() - t0
    return (best["val"], prob.accuracy(best["theta"], split.x_test, split.y_test), secs,
            prob.n_params, best["it"])


def tune_classifier(method: str, split: Any, grid: Sequence[Any], *, seed: int = 0,
                    node_kwargs: dict[str, Any] | None = None, maxiter: int = 200,
                    check_every: int = 10, mlp_hidden: int = 32) -> dict[str, Any]:
    """Fit ``method`` for every value of ``grid`` on the training split, keep the value of
    best validation accuracy (the first on ties), report its test accuracy.

    Parameters
    ----------
    method : str
        One of :data:`CLASSIFIERS`: the neural ODE with L-BFGS (``node_lbfgs``) or
        Gauss--Newton--CG (``node_gn``), grid over the Tikhonov weight of the dynamics or
        ``(tikhonov, head_decay)`` pairs (``head_decay``: L2 weight on the head's weights,
        :class:`HeadDecayClassifier`), with the iteration count chosen on the validation
        split too (early stopping: the validation accuracy is checked every
        ``check_every`` iterations); ``logreg`` (grid over ``C``), ``mlp``
        (``(alpha, max_iter)`` pairs: L2 weight and L-BFGS iterations; hidden width
        ``mlp_hidden``), ``svc`` (RBF, ``(C, gamma)`` pairs).
    split : Split
        Standardized data.
    grid : sequence
        The values tried.
    seed : int
        Seed of the initial parameters (neural ODE, MLP).
    node_kwargs : dict, optional
        Classifier arguments (``augment``, ``width``, ``nt``, ...).
    maxiter : int
        Iterations of the neural ODE's optimizer.
    check_every : int
        Iterations between validation checks of the neural ODE.
    mlp_hidden : int
        Hidden width of the MLP.

    Returns
    -------
    dict
        ``param`` (the neural ODE's: ``(tikhonov, head_decay, iterations)``), ``val_accuracy``,
        ``test_accuracy``, ``seconds`` (whole grid), ``n_params`` (of the chosen model).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC

    if method not in CLASSIFIERS:
        raise ValueError(f"method must be one of {list(CLASSIFIERS)}, got {method!r}")
    t0 = time.perf_counter()
    best = None
    for p in grid:
        if method.startswith("node"):
            opt = "lbfgs" if method == "node_lbfgs" else "gauss-newton"
            tik, decay = (p, 0.0) if np.isscalar(p) else p
            va, te, _, npar, it = _node(split, node_kwargs or {}, tik, opt, maxiter, seed,
                                        check_every, decay)
            p = (tik, decay, it)
        else:
            if method == "logreg":
                m = LogisticRegression(C=p, max_iter=5000)
            elif method == "mlp":
                m = MLPClassifier((mlp_hidden,), alpha=p[0], max_iter=p[1], random_state=seed,
                                  solver="lbfgs")
            else:
                m = SVC(C=p[0], gamma=p[1])
            with warnings.catch_warnings():  # a capped MLP run is one of the settings
                warnings.simplefilter("ignore", ConvergenceWarning)
                m.fit(split.x_train, split.y_train)
            va, te = m.score(split.x_val, split.y_val), m.score(split.x_test, split.y_test)
            npar = _sk_params(m)
        if best is None or va > best["val_accuracy"]:
            best = {"param": p, "val_accuracy": float(va), "test_accuracy": float(te),
                    "n_params": npar}
    best["seconds"] = time.perf_counter() - t0
    return best


def _sk_params(m):
    """Fitted parameters of a scikit-learn classifier (an SVC's: its support vectors, dual
    coefficients and intercepts)."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC

    if isinstance(m, MLPClassifier):
        return int(sum(w.size for w in m.coefs_) + sum(b.size for b in m.intercepts_))
    if isinstance(m, SVC):
        return int(m.support_vectors_.size + m.dual_coef_.size + m.intercept_.size)
    return int(m.coef_.size + m.intercept_.size)


def classification_runs(name: str, seeds: Sequence[int] = (0, 1, 2, 3, 4), *,
                        node_kwargs: dict[str, Any] | None = None,
                        grids: dict[str, Sequence[Any]] | None = None,
                        node_maxiter: int = 200, gn_maxiter: int = 30,
                        methods: Sequence[str] = CLASSIFIERS) -> dict[str, Any]:
    """Test accuracy of every classifier over stratified splits of a real data set.

    Inputs are standardized with each training split's statistics; each method's
    regularization is chosen on that split's validation part (:func:`tune_classifier`).
    The MLP's hidden width gives it about the neural ODE's parameter count
    (:func:`mlp_hidden_for`).

    Parameters
    ----------
    name : {"digits", "breast_cancer", "wine"}
    seeds : sequence of int
        Seeds of the splits (and of the initial parameters).
    node_kwargs : dict, optional
        Neural-ODE settings (default ``augment=4, width=16, nt=4``).
    grids : dict, optional
        Grids per method, replacing the defaults: ``(tikhonov, head_decay)`` pairs, the
        Tikhonov weight in ``(1e-4, 1e-2, 1e-1)`` times the head's weight decay in
        ``(1e-3, 1e-2)``, for both neural-ODE optimizers; ``C`` in
        ``(0.01, 0.1, 1, 10, 100)`` (logistic regression); ``alpha`` in
        ``(1e-4, 1e-2, 1, 10)`` times ``max_iter`` in ``(50, 200, 500)`` (MLP); ``C`` in
        ``(1, 10, 100)`` times ``gamma`` in ``("scale", 0.01)`` (SVC).
    node_maxiter, gn_maxiter : int
        Iterations of L-BFGS (validation checks every 10) and Gauss--Newton (checks every
        iteration).
    methods : sequence of str
        Subset of :data:`CLASSIFIERS`.

    Returns
    -------
    dict
        Per method: ``test_accuracy`` (one per split), ``mean``, ``std``, ``params``
        (chosen), ``seconds`` (per split), ``n_params``; and ``mlp_hidden``.
    """
    from ..datasets.real import load_real, standardize

    node_kwargs = dict(augment=4, width=16, nt=4) if node_kwargs is None else dict(node_kwargs)
    node = tuple((t, w) for t in (1e-4, 1e-2, 1e-1) for w in (1e-3, 1e-2))
    g = {"node_lbfgs": node, "node_gn": node,
         "logreg": (0.01, 0.1, 1.0, 10.0, 100.0),
         "mlp": tuple((a, it) for a in (1e-4, 1e-2, 1.0, 10.0) for it in (50, 200, 500)),
         "svc": tuple((c, gm) for c in (1.0, 10.0, 100.0) for gm in ("scale", 0.01))}
    g.update(grids or {})
    out: dict[str, Any] = {m: {"test_accuracy": [], "params": [], "seconds": [],
                               "val_accuracy": []} for m in methods}
    hidden = None
    for s in seeds:
        split, _, _ = standardize(load_real(name, s))
        if hidden is None:
            loss = "logistic" if split.n_classes == 2 else "softmax"
            n_node = NeuralODEClassifier(split.x_train[:2], split.y_train[:2] * 0, loss=loss,
                                         n_outputs=1 if loss == "logistic" else split.n_classes,
                                         **node_kwargs).n_params
            hidden = mlp_hidden_for(n_node, split.dim, split.n_classes)
            out["mlp_hidden"] = hidden
            out["n_params_node"] = int(n_node)
        for m in methods:
            it = gn_maxiter if m == "node_gn" else node_maxiter
            r = tune_classifier(m, split, g[m], seed=s, node_kwargs=node_kwargs, maxiter=it,
                                check_every=1 if m == "node_gn" else 10, mlp_hidden=hidden)
            for k in ("test_accuracy", "val_accuracy", "seconds"):
                out[m][k].append(r[k])
            out[m]["params"].append(r["param"])
            out[m]["n_params"] = r["n_params"]
    for m in methods:
        acc = np.asarray(out[m]["test_accuracy"])
        out[m]["mean"] = float(acc.mean())
        out[m]["std"] = float(acc.std(ddof=1)) if acc.size > 1 else 0.0
    out["node_kwargs"] = node_kwargs
    return out
