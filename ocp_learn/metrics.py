"""Sample-based evaluation metrics and their Monte Carlo standard errors.

Every Monte Carlo figure ``key`` a recipe reports comes with ``key_se`` (its standard
error) and ``key_n`` (the number of samples behind it), :func:`put_estimate`:

* a mean of independent per-sample values ``v_i``: ``se = std(v) / sqrt(n)``
  (:func:`mean_se`);
* a figure that is itself a mean over samples but computed by a routine that returns
  only the mean (an objective and its terms): the samples are split into ``K`` batches of
  (nearly) equal size, ``se^2 = sum_b n_b (m_b - m)^2 / ((K - 1) n)`` from the batch means
  ``m_b`` (:func:`batch_means`, :func:`combine_batches`); the mean is the full-sample mean
  exactly, and a difference of two figures on the same batches gets its paired error;
* the unbiased MMD: the standard error of the mean of ``K`` estimates on disjoint blocks
  (:func:`mmd_se`), an upper estimate for the full-sample estimator, whose variance is at
  most that of the block average (it averages over more pairs).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .errors import as_array, check_positive_int

__all__ = ["mmd", "mmd_se", "wasserstein2", "mean_se", "batch_means", "combine_batches",
           "put_estimate", "SE_NOTE"]

SE_NOTE = ("key_se: Monte Carlo standard error of key; key_n: samples behind it (per-sample "
           "means: std / sqrt(n); objective terms: from the means of equal batches of the same "
           "samples; differences on the same samples: paired)")


def _sqdist(a, b):
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0.0)


def mmd(x: Any, y: Any, bandwidths: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)) -> float:
    """Unbiased squared maximum mean discrepancy with a sum of Gaussian kernels.

    ``MMD^2 = E k(x, x') + E k(y, y') - 2 E k(x, y)``, ``k(a, b) = sum_s exp(-|a - b|^2 / (2 s^2))``,
    diagonal terms excluded from the within-sample means.

    Parameters
    ----------
    x, y : array_like, shape (n, d) and (m, d)
        The two samples (at least 2 rows each).
    bandwidths : tuple of float
        The kernel widths ``s``.

    Returns
    -------
    float
    """
    x = as_array("x", x, ndim=2, min_rows=2)
    y = as_array("y", y, ndim=2, shape=(None, x.shape[1]), min_rows=2)
    n, m = x.shape[0], y.shape[0]
    dxx, dyy, dxy = _sqdist(x, x), _sqdist(y, y), _sqdist(x, y)
    val = 0.0
    for s in bandwidths:
        kxx, kyy, kxy = (np.exp(-d / (2 * s * s)) for d in (dxx, dyy, dxy))
        val += ((kxx.sum() - n) / (n * (n - 1)) + (kyy.sum() - m) / (m * (m - 1))
                - 2 * kxy.mean())
    return float(val)


def mmd_se(x: Any, y: Any, n_blocks: int = 10,
           bandwidths: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)) -> float:
    """Standard error of :func:`mmd` by the split estimator.

    The rows of ``x`` and ``y`` are cut into ``n_blocks`` disjoint blocks, the unbiased
    ``MMD^2`` of each block pair is computed, and ``std(blocks) / sqrt(n_blocks)`` is
    returned: the standard error of the block average, an upper estimate for that of the
    full-sample :func:`mmd` (the same unbiased estimate averaged over more pairs).

    Parameters
    ----------
    x, y : array_like, shape (n, d) and (m, d)
        The two samples (at least 2 rows per block).
    n_blocks : int
        Number of blocks (at least 2).
    bandwidths : tuple of float
        As in :func:`mmd`.

    Returns
    -------
    float
    """
    x = as_array("x", x, ndim=2, min_rows=2)
    y = as_array("y", y, ndim=2, shape=(None, x.shape[1]), min_rows=2)
    K = check_positive_int("n_blocks", n_blocks)
    if K < 2 or min(x.shape[0], y.shape[0]) < 2 * K:
        raise ValueError(f"n_blocks must be >= 2 with at least 2 rows of x and y per block, got "
                         f"n_blocks={K} for {x.shape[0]} and {y.shape[0]} rows")
    est = [mmd(a, b, bandwidths) for a, b in zip(np.array_split(x, K), np.array_split(y, K))]
    return float(np.std(est, ddof=1) / np.sqrt(K))


def wasserstein2(x: Any, y: Any) -> float:
    """Exact ``W2`` between two equal-weight point clouds (POT's ``ot.emd2``).

    The empirical ``W2`` is biased upward at finite sample size (it does not vanish for two
    samples of the same law), so no standard error is attached to it: a standard error
    would not bound its error.

    Parameters
    ----------
    x, y : array_like, shape (n, d) and (m, d)

    Returns
    -------
    float
    """
    import ot

    x = as_array("x", x, ndim=2, min_rows=1)
    y = as_array("y", y, ndim=2, shape=(None, x.shape[1]), min_rows=1)
    a = np.full(x.shape[0], 1.0 / x.shape[0])
    b = np.full(y.shape[0], 1.0 / y.shape[0])
    return float(np.sqrt(ot.emd2(a, b, _sqdist(x, y), numItermax=10**7)))


def mean_se(values: Any) -> tuple[float, float, int]:
    """Mean of independent per-sample values, its standard error ``std / sqrt(n)``, and ``n``.

    Parameters
    ----------
    values : array_like, shape (n,)

    Returns
    -------
    mean, se : float
    n : int
    """
    v = np.asarray(values, dtype=float).ravel()
    if v.size == 0:
        raise ValueError("values must hold at least one sample, got none")
    return float(np.mean(v)), float(np.std(v) / np.sqrt(v.size)), int(v.size)


def batch_means(fn: Callable[[np.ndarray], dict[str, float]], x: Any,
                n_batches: int = 20) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The figures of ``fn`` (each a mean over the rows it is given) on batches of ``x``.

    Parameters
    ----------
    fn : callable
        ``fn(rows) -> {key: float}``, each value a mean over the rows (e.g. an objective
        and its terms, :meth:`ocp_learn.problems.mfg.PotentialMFG.evaluate_on`).
    x : array_like, shape (n, d)
        The samples, split into ``min(n_batches, n)`` consecutive batches of nearly equal
        size.
    n_batches : int
        Number of batches.

    Returns
    -------
    sizes : ndarray of int, shape (K,)
        Rows per batch.
    means : dict
        ``key -> ndarray (K,)``: the batch means (keys of the first batch).
    """
    x = np.asarray(x)
    K = min(check_positive_int("n_batches", n_batches), x.shape[0])
    parts = np.array_split(x, K)
    vals = [fn(b) for b in parts]
    return (np.array([len(b) for b in parts]),
            {k: np.array([float(v.get(k, 0.0)) for v in vals]) for k in vals[0]})


def combine_batches(sizes: Any, means: Any) -> tuple[float, float, int]:
    """The full-sample mean of batch means, its standard error, and the sample count.

    ``m = sum_b n_b m_b / n``, ``se^2 = sum_b n_b (m_b - m)^2 / ((K - 1) n)``: the
    per-sample variance estimated from the batch means (batches of independent samples).

    Parameters
    ----------
    sizes : array_like of int, shape (K,)
    means : array_like, shape (K,)

    Returns
    -------
    mean, se : float
        ``se`` is NaN for a single batch.
    n : int
    """
    w = np.asarray(sizes, dtype=float)
    mb = np.asarray(means, dtype=float)
    n = float(w.sum())
    m = float(np.sum(w * mb) / n)
    K = mb.size
    se = float(np.sqrt(np.sum(w * (mb - m) ** 2) / ((K - 1) * n))) if K > 1 else float("nan")
    return m, se, int(n)


def put_estimate(out: dict[str, Any], key: str, mean: float, se: float | None,
                 n: int) -> dict[str, Any]:
    """Write ``out[key]``, ``out[key + "_se"]`` and ``out[key + "_n"]``; returns ``out``."""
    out[key] = float(mean)
    out[key + "_se"] = None if se is None else float(se)
    out[key + "_n"] = int(n)
    return out
