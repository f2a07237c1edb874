"""Densities with exact log-density and score: Gaussians and Gaussian mixtures in any dimension.

They serve as initial and target densities of flows and mean field games
(MATH D5, E5, F) and make the entropy -- the floor of the expected NLL --
computable by Monte Carlo.
"""
from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from ..arrays import concat, namespace
from ..errors import as_array, check_positive_int, check_rng

__all__ = ["GaussianMixture", "gaussian", "eight_gaussians_mixture"]


class GaussianMixture:
    """``rho(x) = sum_k w_k N(x; mu_k, s_k^2 I)`` (isotropic components).

    Parameters
    ----------
    means : array_like, shape (K, d)
    variances : float or array_like, shape (K,)
        Component variances ``s_k^2``.
    weights : array_like, shape (K,), optional
        Positive, normalized internally (uniform by default).
    """

    def __init__(self, means, variances=1.0, weights=None):
        self.means = as_array("means", means, ndim=2, min_rows=1)
        K, self.dim = self.means.shape
        var = np.broadcast_to(np.asarray(variances, dtype=np.float64), (K,)).copy()
        if not np.all(np.isfinite(var)) or np.any(var <= 0):
            raise ValueError(f"variances must be positive, got {var}")
        self.variances = var
        w = np.full(K, 1.0 / K) if weights is None else as_array("weights", weights, shape=(K,))
        if np.any(w <= 0):
            raise ValueError("weights must be positive")
        self.weights = w / w.sum()

    def sample(self, n, seed=None):
        """``n`` samples (rows), from a seed or a Generator."""
        n = check_positive_int("n", n)
        rng = check_rng(seed)
        k = rng.choice(self.weights.size, size=n, p=self.weights)
        return self.means[k] + np.sqrt(self.variances[k])[:, None] * rng.standard_normal((n, self.dim))

    def _log_components(self, x):
        xp = namespace(x)
        if xp is not np:
            return self._log_components_xp(xp, x)
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (n, {self.dim}), got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("x contains non-finite values (inf or NaN)")
        d2 = np.empty((x.shape[0], self.weights.size))  # |x - mu_k|^2, one pass per component
        for k, mu in enumerate(self.means):
            diff = x - mu
            d2[:, k] = np.einsum("nd,nd->n", diff, diff)
        return (np.log(self.weights) - 0.5 * d2 / self.variances
                - 0.5 * self.dim * np.log(2 * np.pi * self.variances))

    def _log_components_xp(self, xp, x):
        """:meth:`_log_components` in the array namespace ``xp`` of ``x`` (a device)."""
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (n, {self.dim}), got {tuple(x.shape)}")
        if not bool(xp.all(xp.isfinite(x))):
            raise ValueError("x contains non-finite values (inf or NaN)")
        means = xp.asarray(self.means, dtype=x.dtype)
        cols = [xp.sum((x - means[k, :]) ** 2, axis=1)[:, None] for k in range(self.weights.size)]
        d2 = concat(cols, axis=1)
        c = np.log(self.weights) - 0.5 * self.dim * np.log(2 * np.pi * self.variances)
        return xp.asarray(c, dtype=x.dtype) - 0.5 * d2 / xp.asarray(self.variances, dtype=x.dtype)

    @staticmethod
    def _logsumexp(lc):
        """``log sum_k exp(lc[:, k])`` (scipy's on NumPy; the max-shifted sum elsewhere)."""
        xp = namespace(lc)
        if xp is np:
            return logsumexp(lc, axis=1)
        m = xp.max(lc, axis=1)
        return m + xp.log(xp.sum(xp.exp(lc - m[:, None]), axis=1))

    def logpdf(self, x):
        """``log rho(x)``, shape ``(n,)``, in the array namespace of ``x``."""
        return self._logsumexp(self._log_components(x))

    def score(self, x):
        """``grad_x log rho(x)``, shape ``(n, d)``."""
        return self.logpdf_and_score(x)[1]

    def logpdf_and_score(self, x):
        """``(log rho(x), grad_x log rho(x))`` from one pass over the components:
        ``grad log rho = sum_k r_k (mu_k - x) / s_k^2`` with the responsibilities ``r_k``."""
        lc = self._log_components(x)
        lp = self._logsumexp(lc)
        xp = namespace(lc)
        if xp is not np:
            r = xp.exp(lc - lp[:, None]) / xp.asarray(self.variances, dtype=lc.dtype)
            return lp, r @ xp.asarray(self.means, dtype=lc.dtype) - xp.sum(r, axis=1)[:, None] * x
        r = np.exp(lc - lp[:, None]) / self.variances
        return lp, r @ self.means - r.sum(1)[:, None] * np.asarray(x, dtype=np.float64)

    def entropy(self, n=200_000, seed=0):
        """Monte Carlo estimate of ``-E log rho`` and its standard error."""
        lp = self.logpdf(self.sample(n, seed))
        return float(-lp.mean()), float(lp.std() / np.sqrt(n))

    def __repr__(self):
        return f"GaussianMixture(K={self.weights.size}, dim={self.dim})"


def gaussian(mean, variance=1.0):
    """A single isotropic Gaussian ``N(mean, variance I)``."""
    mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
    return GaussianMixture(mean[None, :], variance)


def eight_gaussians_mixture(dim=2, radius=4.0, variance=0.3):
    """Eight Gaussians on a circle in the first two coordinates (MATH F, OT preset)."""
    dim = check_positive_int("dim", dim)
    if dim < 2:
        raise ValueError(f"dim must be at least 2 for eight Gaussians on a circle, got {dim}")
    a = 2 * np.pi * np.arange(8) / 8
    means = np.zeros((8, dim))
    means[:, 0], means[:, 1] = radius * np.cos(a), radius * np.sin(a)
    return GaussianMixture(means, variance)
