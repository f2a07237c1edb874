"""The Hutchinson Laplacian of the OT-Flow potential: unbiased, with the closed-form variance.

At a fixed ``(x, t, theta)`` the estimate ``1/k sum_j v_j^T H v_j`` is drawn 20000 times
(fresh probes per draw).  Its mean must lie within 4 standard errors of the exact
Laplacian ``tr H`` and its sample variance within 4 standard errors (of a sample
variance, from the fourth moment) of ``2/k sum_{i != j} H_ij^2`` (Rademacher) or
``2/k ||H||_F^2`` (Gaussian); ``H`` is CasADi's Hessian of the symbolic twin.
"""
import numpy as np
import pytest

from ocp_learn.models.potential import PotentialResNet
from ocp_learn.reference.hutchinson import (Z_TOL, hutchinson_check, hutchinson_variance,
                                            moment_z_scores)
from ocp_learn.reference.potential import potential_hessian


@pytest.fixture(scope="module")
def point():
    rng = np.random.default_rng(0)
    m = PotentialResNet(4, width=6, n_layers=2, trace="hutchinson")
    theta = m.init_params(0) + 0.3 * rng.standard_normal(m.n_params)
    return m, rng.standard_normal(4), 0.3, theta


def test_hessian_twin_matches_exact_laplacian(point):
    m, x, t, theta = point
    exact = PotentialResNet(4, width=6, n_layers=2)   # D3, hand-derived
    H = potential_hessian(m, x[None], t, theta)[0]
    np.testing.assert_allclose(H, H.T, rtol=0, atol=1e-13)
    assert np.trace(H) == pytest.approx(exact.derivatives(x[None], t, theta).lap[0], rel=1e-13)
    # the point has sizable off-diagonal curvature (else the variance check is vacuous)
    assert hutchinson_variance(H) > 1.0


@pytest.mark.parametrize("k,kind", [(1, "rademacher"), (3, "rademacher"), (1, "gaussian")])
def test_hutchinson_is_unbiased_with_closed_form_variance(point, k, kind):
    m, x, t, theta = point
    r = hutchinson_check(m, x, t, theta, n_draws=20000, k=k, kind=kind, seed=k)
    assert abs(r["z_mean"]) <= Z_TOL, r
    assert abs(r["z_var"]) <= Z_TOL, r
    assert r["passed"]


def test_variance_formula_distinguishes_probe_kinds(point):
    """Negative control: Gaussian probes do not have the Rademacher variance (the diagonal of H
    adds 2 sum_i H_ii^2 / k)."""
    m, x, t, theta = point
    H = potential_hessian(m, x[None], t, theta)[0]
    est = m.derivatives(np.repeat(x[None], 20000, 0), t, theta,
                        probes=m.sample_probes(20000, 5, 1, "gaussian")).lap
    z = moment_z_scores(est, np.trace(H), hutchinson_variance(H, 1, "rademacher"))
    assert abs(z["z_mean"]) <= Z_TOL and z["z_var"] > 5 * Z_TOL, z


def test_biased_probes_are_caught(point):
    """Negative control: probes scaled by 1.05 (E = 1.1025 tr H) fail both checks."""
    m, x, t, theta = point
    r = hutchinson_check(m, x, t, theta, n_draws=20000, probe_scale=1.05, seed=7)
    assert not r["passed"] and r["z_mean"] > Z_TOL and r["z_var"] > Z_TOL, r


def test_hutchinson_check_arguments(point):
    m, x, t, theta = point
    with pytest.raises(ValueError, match="trace='hutchinson'"):
        hutchinson_check(PotentialResNet(4, width=6, n_layers=2), x, t, theta)
    with pytest.raises(ValueError, match="x must have shape"):
        hutchinson_check(m, np.zeros(3), t, theta)
    with pytest.raises(ValueError, match="H must be square"):
        hutchinson_variance(np.zeros((2, 3)))
