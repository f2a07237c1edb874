"""OT-Flow on the digits written to a run folder (``ocp-learn flow --data digits``): the
density of the dequantized 8 x 8 digits in nats of the pixel scale, against a Gaussian, a
Gaussian mixture and a kernel density estimate on the same split."""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import OptimizeResult

from ._common import UNITS, RunFolder, write_results
from .bundle import BUNDLE, save_bundle

__all__ = ["run_digits_flow", "digits_samples_figure", "DIGITS_DEFAULTS"]

#: Settings of :func:`run_digits_flow` that differ from the toy flows' (a few minutes on one
#: core): a full-rank quadratic part of the potential, the dequantization noise redrawn every
#: 10 L-BFGS iterations, early stopping after 20 validation checks without improvement.
DIGITS_DEFAULTS: dict[str, Any] = {"rank": 64, "resample_every": 10, "patience": 20}

#: Pixel values of the dequantized digits lie in ``[0, 17)``.
_LEVELS = 17


def digits_samples_figure(data: Any, prob: Any, theta: np.ndarray, path: str, n: int = 24,
                          seed: int = 0, title: str | None = None) -> None:
    """Test digits and samples of the flow as 8 x 8 images, written to ``path``.

    Parameters
    ----------
    data : DensityData
        The preprocessed digits (:func:`~ocp_learn.datasets.real.digits_density_data`); its
        ``to_pixels`` maps the flow's samples back to pixels.
    prob : ContinuousNormalizingFlow
        The trained flow (on ``data.y_train``).
    theta : ndarray
        Its parameters.
    path : str
        The image file.
    n : int
        Test digits shown, and samples drawn (an even number).
    seed : int
        Seed of the samples.
    title : str, optional
        The figure's title.
    """
    import matplotlib.pyplot as plt

    gen = np.clip(data.to_pixels(prob.sample(theta, n, seed=seed)), 0, _LEVELS)
    real = np.clip(data.to_pixels(data.y_test[:n]), 0, _LEVELS)
    cols = n // 2
    fig, axes = plt.subplots(4, cols, figsize=(cols * 0.8, 4 * 0.85 + (0.3 if title else 0)))
    for i, ax in enumerate(axes.ravel()):
        img = (real if i < n else gen)[i % n].reshape(8, 8)
        ax.imshow(img, cmap="gray_r", vmin=0, vmax=_LEVELS)
        ax.set_axis_off()
    axes[0, 0].set_title("test digits (dequantized)", loc="left", fontsize=9)
    axes[2, 0].set_title("OT-Flow samples", loc="left", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _baseline_metrics(data: Any, lp_flow: np.ndarray, seed: int,
                      alpha: float) -> dict[str, Any]:
    """The baselines' test NLL on the same split, and the flow's paired gap to the one of
    lowest validation NLL.

    The Gaussian, the mixture and the kernel estimate are fitted to the whitened data (the
    flow's); the mixture and the kernel estimate also to the logit data before whitening
    (``"(logit only)"``: the same images and noise; a mixture's covariance regularization is
    isotropic in the coordinates it is fitted in)."""
    from ..datasets.real import bits_per_dim, digits_density_data
    from .real_data import density_baselines, density_table, paired_gap

    base = density_baselines(data, seed=seed)
    plain = density_baselines(digits_density_data(seed, alpha=alpha, whiten=False), seed=seed)
    base.update({f"{k} (logit only)": plain[k] for k in ("gmm", "kde")})
    table = density_table({**{k: v["log_density_test"] for k, v in base.items()},
                           "ot_flow": lp_flow}, data.dim)
    rows = {r["model"]: r for r in table}
    out = {k: {"test_nll": rows[k]["test_nll"], "test_nll_se": rows[k]["test_nll_se"],
               "bits_per_dim": float(bits_per_dim(rows[k]["test_nll"], data.dim)),
               "val_nll": float(v["val_nll"]), "params": v["params"],
               "seconds": float(v["seconds"])} for k, v in base.items()}
    best = min(base, key=lambda k: base[k]["val_nll"])
    gap, se = paired_gap(lp_flow, base[best]["log_density_test"])
    return {"baselines": out, "best_baseline": best, "gap_to_best_baseline": gap,
            "gap_to_best_baseline_se": se, "gap_to_best_baseline_n": int(len(lp_flow)),
            "gap_note": "test NLL of OT-Flow minus that of the baseline of lowest validation "
                        "NLL, in nats, with the standard error of the per-image differences "
                        "(negative: OT-Flow is better)"}


def run_digits_flow(*, out: str, seed: int = 0, figure: bool = True,
                    info: dict[str, Any] | None = None, maxiter: int = 300, width: int = 32,
                    nt: int = 8, rank: int | None = DIGITS_DEFAULTS["rank"],
                    resample_every: int | None = DIGITS_DEFAULTS["resample_every"],
                    patience: int = DIGITS_DEFAULTS["patience"], val_every: int = 10,
                    alpha: float = 0.01, baselines: bool = True, optimizer: str = "lbfgs",
                    progress: bool = False,
                    **problem_kwargs: Any) -> tuple[dict[str, Any], Any, OptimizeResult]:
    """Train OT-Flow on the preprocessed digits and write the run's folder.

    The digits are split by ``seed`` (60 / 20 / 20 %, stratified), dequantized and mapped by
    the logit and the training split's whitening
    (:func:`~ocp_learn.datasets.real.digits_density_data`); the flow is trained with L-BFGS
    and early stopping on the validation NLL
    (:func:`~ocp_learn.recipes.real_data.train_digits_flow`).  The NLL figures are of the
    dequantized test digits in the pixel scale (nats, and bits per dimension); the
    transport, HJB, inverse-error and MMD figures are in the preprocessed coordinates.
    Writes ``out/theta.npy``, ``out/model.npz`` (the flow of the preprocessed digits),
    ``out/metrics.json`` and ``out/figure.png`` (test digits and samples as 8 x 8 images),
    in that order.

    Parameters
    ----------
    out : str
        Output folder (a :class:`~.rundir.RunFolder`).
    seed : int
        Seed of the split, the dequantization noise, the initial parameters and the samples.
    figure : bool
        Write ``figure.png``.
    info : dict, optional
        The run's description (:func:`~.rundir.run_info`).
    maxiter : int
        L-BFGS iteration limit.
    width, nt : int
        Hidden width of the potential and time steps.
    rank : int or None
        Rank of the potential's quadratic part (None: the flow's default).
    resample_every : int or None
        Iterations between redraws of the training images' dequantization noise (None:
        one fixed draw).
    patience : int
        Validation checks without a lower validation NLL before training stops.
    val_every : int
        Iterations between validation checks.
    alpha : float
        Margin of the logit map (:class:`~ocp_learn.datasets.real.LogitPreprocessing`).
    baselines : bool
        Also fit the Gaussian, Gaussian mixture and kernel density estimate (settings chosen
        on the validation NLL; the mixture and the kernel estimate both on the whitened and
        on the logit data, about 10 seconds) and report their test NLL and the flow's paired
        gap to the one of lowest validation NLL.
    optimizer : {"lbfgs"}
        The optimizer (early stopping is on L-BFGS iterations).
    progress : bool
        Show a progress bar.
    **problem_kwargs
        Further flow arguments (``n_layers``, ``integrator``, ``alpha_L``, ``alpha_R``,
        ``trace``, ``backend``).

    Returns
    -------
    metrics : dict
        :func:`~.flow.flow_metrics` of the test digits (pixel scale), ``test_bits_per_dim``,
        the validation curve, the baselines and the run's settings.
    problem : ContinuousNormalizingFlow
        The trained flow (preprocessed coordinates).
    result : scipy.optimize.OptimizeResult
        ``x`` (the parameters of lowest validation NLL), ``fun`` (that NLL), ``nit``,
        ``nfev``, ``message``.
    """
    from ..datasets.real import digits_density_data
    from ..errors import check_positive_int
    from ..metrics import put_estimate
    from .flow import flow_metrics
    from .real_data import flow_log_density, train_digits_flow

    if optimizer != "lbfgs":
        raise ValueError(f"optimizer: the digits flow is trained with L-BFGS and early "
                         f"stopping, got {optimizer!r}")
    for name, v in (("maxiter", maxiter), ("width", width), ("nt", nt),
                    ("patience", patience), ("val_every", val_every)):
        check_positive_int(name, v)
    if resample_every is not None:
        check_positive_int("resample_every", resample_every)
    with RunFolder(out, info) as folder:
        data = digits_density_data(seed, alpha=alpha)
        prob, theta, tr = train_digits_flow(
            data, width=width, nt=nt, maxiter=maxiter, seed=seed, val_every=val_every,
            patience=patience, redraw_every=resample_every, rank=rank, progress=progress,
            **problem_kwargs)
        res = OptimizeResult(x=theta, fun=tr["val_nll"], nit=tr["iterations"],
                             nfev=tr["nfev"], method="L-BFGS", success=True,
                             message=tr["message"])
        write_results(folder, theta, None)
        unsaved = save_bundle(folder, prob, theta)
        m = flow_metrics(prob, res, tr["seconds"], data.y_test, None, seed,
                         log_det=data.log_det_test)
        scale = data.dim * np.log(2.0)
        put_estimate(m, "test_bits_per_dim", m["test_nll"] / scale, m["test_nll_se"] / scale,
                     m["test_nll_n"])
        if unsaved:
            m["skipped"] = {BUNDLE: unsaved}
        m.update({"val_nll": tr["val_nll"], "best_iteration": tr["best_iteration"],
                  "val_curve": tr["val_curve"], "rank": tr["rank"],
                  "resample_every": resample_every, "patience": int(patience),
                  "data": "digits", "dim": data.dim, "n_train": len(data.y_train),
                  "n_val": len(data.y_val), "n_test": len(data.y_test), "seed": int(seed),
                  "alpha": float(alpha), "message": tr["message"],
                  "preprocessing": "uniform dequantization, logit (alpha), whitening with "
                                   "the training split",
                  "coordinates_note": "test_nll and test_bits_per_dim: the dequantized test "
                                      "digits in the pixel scale; inverse_error, mmd, "
                                      "transport_cost and hjb_penalty: the preprocessed "
                                      "coordinates",
                  "bundle_note": "model.npz is the flow of the preprocessed digits; "
                                 "ocp_learn.datasets.real.digits_density_data(seed, "
                                 "alpha).to_pixels maps its samples to pixels",
                  "units": {**UNITS, "test_bits_per_dim": "bits per pixel",
                            "val_nll": "nats per sample"}})
        write_results(folder, None, m)
        if baselines:
            lp = flow_log_density(prob, theta, data.y_test, data.log_det_test)
            m.update(_baseline_metrics(data, lp, seed, alpha))
            write_results(folder, None, m)
        if figure:
            with folder.writing("figure.png") as tmp:
                digits_samples_figure(data, prob, theta, tmp, seed=seed, title=(
                    f"digits: test NLL {m['test_nll']:.2f} nats "
                    f"({m['test_bits_per_dim']:.3f} bits/dim)"))
    return m, prob, res
