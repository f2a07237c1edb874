"""Trained models as files: the bundle ``model.npz`` a training run writes next to
``theta.npy`` (:meth:`ocp_learn.problems.persistence.Persistable.save`), and what a user does
with it afterwards -- sample, predict, and recompute the run's metrics
(``ocp-learn sample | predict | evaluate``).
"""
from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from .rundir import RunError, RunFolder

__all__ = ["BUNDLE", "CLASSIFIERS", "FLOWS", "save_bundle", "load_bundle", "sample_model",
           "predict_model", "evaluate_model"]

#: The bundle's file name in a run folder.
BUNDLE = "model.npz"
#: Saved kinds that classify points (``predict`` gives probabilities and labels).
CLASSIFIERS = ("neural_ode_classifier", "viscous_classifier")
#: Saved kinds that move points (``predict`` gives the push-forward; ``sample`` draws).
FLOWS = ("continuous_normalizing_flow", "potential_mfg")


def save_bundle(folder: RunFolder, problem: Any, theta: np.ndarray,
                name: str = BUNDLE) -> str | None:
    """Write ``problem`` and ``theta`` to ``folder/name`` atomically.

    Parameters
    ----------
    folder : RunFolder
        The run's folder.
    problem : Persistable
        The trained problem.
    theta : ndarray
        Its parameters.
    name : str
        The file name.

    Returns
    -------
    str or None
        None when written; else why the problem cannot be saved (a setting that settings
        cannot describe), for the metrics' ``"skipped"`` entry.
    """
    if not folder.active:
        return None
    try:
        with folder.writing(name) as tmp:
            problem.save(tmp, theta)
    except TypeError as exc:
        return str(exc).splitlines()[0]
    return None


def _bundle_path(model: str) -> str:
    path = os.fspath(model)
    if os.path.isdir(path):
        path = os.path.join(path, BUNDLE)
    if not os.path.isfile(path):
        raise RunError(f"--model {model!r}: no {BUNDLE} there (a folder written by ocp-learn "
                       "classify, flow or mfg, or the bundle file itself)")
    return path


def load_bundle(model: str) -> Any:
    """The problem and parameters of a run folder's bundle (or of a bundle file).

    Parameters
    ----------
    model : str
        A run folder holding ``model.npz``, or the file.

    Returns
    -------
    ocp_learn.problems.Loaded
        ``problem, theta, info``.

    Raises
    ------
    RunError
        No bundle, or a file that is damaged or not a bundle.
    """
    from ..problems import load

    path = _bundle_path(model)
    try:
        return load(path)
    except ValueError as exc:
        raise RunError(f"--model {model!r}: {str(exc).splitlines()[0]}") from exc
    except Exception as exc:  # zipfile, numpy, json and OS errors of a damaged file
        raise RunError(f"--model {model!r}: {path!r} is corrupt or truncated, not an "
                       f"ocp_learn bundle ({type(exc).__name__})") from exc


def sample_model(model: str, n: int, seed: int | None = 0) -> np.ndarray:
    """``n`` samples of a trained flow (or agents of a game pushed to ``t = T``).

    Parameters
    ----------
    model : str
        Run folder or bundle file.
    n : int
        Number of samples.
    seed : int or None
        Seed of the draws.

    Returns
    -------
    ndarray, shape (n, d)
    """
    loaded = load_bundle(model)
    kind = loaded.info["kind"]
    if kind not in FLOWS:
        raise RunError(f"--model {model!r} is a {kind.replace('_', ' ')}: it does not draw "
                       "samples (a flow or a mean field game does)")
    return loaded.problem.sample(loaded.theta, n, seed=seed)


def predict_model(model: str, x: np.ndarray) -> dict[str, np.ndarray]:
    """What a trained model says about the points ``x``.

    Parameters
    ----------
    model : str
        Run folder or bundle file.
    x : ndarray, shape (m, d)
        Points in data coordinates.

    Returns
    -------
    dict
        A classifier: ``probabilities`` ``(m, classes)`` and ``labels`` ``(m,)``; a flow or a
        game: ``z``, the points pushed forward to ``t = T`` (a flow: to the Gaussian side).
    """
    from ..errors import as_array

    loaded = load_bundle(model)
    p, theta = loaded.problem, loaded.theta
    if loaded.info["kind"] in CLASSIFIERS:
        d = int(p.settings["input_dim"])  # before the zero columns of the augmentation
        x = as_array("--input", x, ndim=2, shape=(None, d), min_rows=1)
        return {"probabilities": p.predict_proba(theta, x), "labels": p.predict(theta, x)}
    x = as_array("--input", x, ndim=2, shape=(None, int(p.point_dim)), min_rows=1)
    return {"z": p.push_forward(theta, x)}


def _run_settings(model_dir: str) -> dict[str, Any]:
    path = os.path.join(model_dir, "metrics.json")
    try:
        with open(path) as fh:
            m = json.load(fh)
    except FileNotFoundError:
        raise RunError(f"--model {model_dir!r}: no metrics.json to compare with (a folder "
                       "written by ocp-learn classify, flow or mfg)") from None
    except (ValueError, OSError) as exc:
        raise RunError(f"--model {model_dir!r}: metrics.json is damaged ({exc})") from exc
    return m


def _unknown_data(model_dir: str, name: Any, known: Any) -> RunError:
    """The error of a run whose data set evaluate cannot draw again (``known``: those it can)."""
    return RunError(f"--model {model_dir!r}: metrics.json names the data {name!r}; evaluate "
                    f"redraws one of {sorted(known)}")


def _flow_rows(model_dir: str, p: Any, theta: np.ndarray, m: dict[str, Any],
               seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The figures of a flow run: a toy or mixture set redrawn from ``seed + 1000``, or the
    digits' test part rebuilt from ``seed`` and the logit margin ``alpha`` (the NLL of the
    dequantized test digits in the pixel scale)."""
    from ..datasets.toy2d import TOY2D
    from .flow import flow_data, flow_estimates

    keys = ("test_nll", "inverse_error", "mmd", "transport_cost", "hjb_penalty")
    name = m.get("data")
    if name == "digits":
        from ..datasets.real import bits_per_dim, digits_density_data

        alpha = m.get("alpha", m.get("run", {}).get("hyperparameters", {}).get("alpha"))
        if alpha is None:
            raise RunError(f"--model {model_dir!r}: metrics.json of a digits flow has no "
                           "'alpha' (the logit margin of the preprocessing)")
        d = digits_density_data(seed, alpha=float(alpha))
        est = flow_estimates(p, theta, d.y_test, seed, log_det=d.log_det_test)
        est.update({"test_bits_per_dim": bits_per_dim(est["test_nll"], d.dim),
                    "test_bits_per_dim_se": bits_per_dim(est["test_nll_se"], d.dim),
                    "test_bits_per_dim_n": est["test_nll_n"]})
        return est, {k: est[k] for k in ("test_nll", "test_bits_per_dim") + keys[1:]}
    if name not in (*TOY2D, "gmm"):
        raise _unknown_data(model_dir, name, (*TOY2D, "gmm", "digits"))
    x_test, _ = flow_data(name, int(m["n_test"]), seed + 1000, int(m["dim"]))
    est = flow_estimates(p, theta, x_test, seed)
    return est, {k: est[k] for k in keys}


def _classifier_rows(model_dir: str, p: Any, theta: np.ndarray, m: dict[str, Any],
                     seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The test accuracy of a classifier run: a toy set redrawn from ``seed``, or a real set's
    test part split by ``seed`` and standardized with the training part's statistics."""
    from ..datasets import DATASETS, REAL_DATASETS, get_dataset, train_test_split

    name = m.get("data")
    if name in REAL_DATASETS:
        from ..datasets.real import load_real, standardize

        split = standardize(load_real(name, seed))[0]
        x_test, y_test = split.x_test, split.y_test
    elif name in DATASETS:
        n_train, n_test = int(m["n_train"]), int(m["n_test"])
        x, y = get_dataset(name, n_train + n_test, seed=seed)
        *_, x_test, y_test = train_test_split(x, y, n_test / (n_train + n_test), seed=seed)
    else:
        raise _unknown_data(model_dir, name, (*DATASETS, *REAL_DATASETS))
    acc = float(np.mean(p.predict(theta, x_test) == y_test))
    n = int(len(y_test))
    est = {"test_accuracy": acc, "test_accuracy_se": float(np.sqrt(acc * (1 - acc) / n)),
           "test_accuracy_n": n}
    return est, {"test_accuracy": acc}


def evaluate_model(model_dir: str) -> dict[str, dict[str, Any]]:
    """Recompute a run's metrics from its bundle.

    The data are drawn again from the seed in ``metrics.json`` (the training samples are not
    used): a toy set from its sampler; a real set of scikit-learn
    (``ocp_learn.datasets.real``) split by the seed, a classifier's inputs standardized with
    the training part's statistics, the digits of a flow dequantized and preprocessed with
    the run's ``alpha`` (its test NLL in the pixel scale).

    Parameters
    ----------
    model_dir : str
        A run folder of ``ocp-learn classify``, ``flow`` or ``mfg``.

    Returns
    -------
    dict
        ``metric -> {"saved": value in metrics.json, "recomputed": value, "se": its Monte
        Carlo standard error, "n": the samples behind it}``.

    Raises
    ------
    RunError
        No folder, bundle or ``metrics.json``, or data that evaluate cannot draw again.
    """
    if not os.path.isdir(model_dir):
        raise RunError(f"--model {model_dir!r} is not a folder (a run folder of ocp-learn "
                       "classify, flow or mfg)")
    loaded = load_bundle(model_dir)
    m = _run_settings(model_dir)
    p, theta, kind = loaded.problem, loaded.theta, loaded.info["kind"]
    seed = int(m.get("seed", m.get("run", {}).get("hyperparameters", {}).get("seed", 0)))
    new: dict[str, Any] = {}
    est: dict[str, Any] = {}
    if kind == "continuous_normalizing_flow":
        est, new = _flow_rows(model_dir, p, theta, m, seed)
    elif kind in CLASSIFIERS:
        est, new = _classifier_rows(model_dir, p, theta, m, seed)
    elif kind == "potential_mfg":
        from .mfg import MFG_TERMS, mfg_estimates

        n_eval = int(m.get("n_eval") or m["stages"][-1][0])
        est = mfg_estimates(p, theta, p.rho0.sample(n_eval, seed + 999))
        new = {k: est[k] for k in MFG_TERMS if k in m}
    return {k: {"saved": m.get(k), "recomputed": float(v), "se": est.get(k + "_se"),
                "n": est.get(k + "_n")} for k, v in new.items()}
