"""Sample-based evaluation metrics: MMD and Wasserstein distances (POT)."""
from __future__ import annotations

import numpy as np

from .errors import as_array

__all__ = ["mmd", "wasserstein2"]


def _sqdist(a, b):
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0.0)


def mmd(x, y, bandwidths=(0.25, 0.5, 1.0, 2.0)):
    """Unbiased squared maximum mean discrepancy with a sum of Gaussian kernels.

    ``MMD^2 = E k(x, x') + E k(y, y') - 2 E k(x, y)``, ``k(a, b) = sum_s exp(-|a - b|^2 / (2 s^2))``,
    diagonal terms excluded from the within-sample means.
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


def wasserstein2(x, y):
    """Exact ``W2`` between two equal-weight point clouds (POT's ``ot.emd2``)."""
    import ot

    x = as_array("x", x, ndim=2, min_rows=1)
    y = as_array("y", y, ndim=2, shape=(None, x.shape[1]), min_rows=1)
    a = np.full(x.shape[0], 1.0 / x.shape[0])
    b = np.full(y.shape[0], 1.0 / y.shape[0])
    return float(np.sqrt(ot.emd2(a, b, _sqdist(x, y), numItermax=10**7)))
