"""Gaussian mixtures (ocp_learn.datasets.densities): log-density against scipy, score by Taylor."""
import numpy as np
import pytest
from scipy.stats import multivariate_normal

from ocp_learn.datasets.densities import GaussianMixture, eight_gaussians_mixture, gaussian
from ocp_learn.verify import taylor_test


@pytest.mark.parametrize("rho", [gaussian([0.5, -3.0, 1.0], 0.3),
                                 GaussianMixture([[0.0, 1.0], [2.0, -1.0], [-1.0, 0.0]],
                                                 [0.2, 0.5, 1.0], [1.0, 2.0, 3.0]),
                                 eight_gaussians_mixture(4)])
def test_logpdf_and_score(rho):
    rng = np.random.default_rng(0)
    x = rho.sample(7, rng) + 0.5 * rng.standard_normal((7, rho.dim))
    ref = np.log(sum(w * multivariate_normal(mu, v * np.eye(rho.dim)).pdf(x)
                     for w, mu, v in zip(rho.weights, rho.means, rho.variances)))
    lp, sc = rho.logpdf_and_score(x)
    assert np.allclose(rho.logpdf(x), ref, rtol=1e-12, atol=1e-12)
    assert np.array_equal(lp, rho.logpdf(x)) and np.array_equal(sc, rho.score(x))
    w = rng.standard_normal(7)
    v = rng.standard_normal(x.shape)
    r = taylor_test(lambda y: w @ rho.logpdf(y), x, v, np.sum(w[:, None] * sc * v))
    assert r.passed, r
