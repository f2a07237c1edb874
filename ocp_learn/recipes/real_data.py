"""Real data: density estimation on the digits with OT-Flow against classical density
estimators (the classifiers are in :mod:`.real_classification`).

Density (:func:`~ocp_learn.datasets.real.digits_density_data`, :func:`density_baselines`,
:func:`train_digits_flow`, :func:`density_table`): the digits are dequantized and mapped by
:class:`~ocp_learn.datasets.real.LogitPreprocessing` (and
:class:`~ocp_learn.datasets.real.Whitening`); every model is fitted to the
preprocessed training split and scored by ``log p_x(x) = log p_y(T(x)) + log |det T'(x)|``,
the log-density of the dequantized test digits in the original pixel scale (nats).
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from ..datasets.real import DensityData, digits_density_data

__all__ = ["DensityData", "digits_density_data", "density_baselines", "train_digits_flow",
           "flow_log_density", "paired_gap", "density_table"]


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
