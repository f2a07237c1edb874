"""Closed-form oracles: the Gaussian OT-MFG optimum, and trained MFGs against it.

The trained checks (d = 2 and d = 10) train ``PotentialMFG`` with L-BFGS on the relaxed
OT problem ``N(0, 0.5 I) -> N(e1, 0.25 I)`` (KL terminal, ``a1 = a3 = 1``, RK4 with 4
steps, width 4) and re-evaluate the result on 20000 fresh agents: the gap to the
closed-form optimum must be within three standard errors plus the discretization
tolerance ``DISC_TOL`` (1e-3), and the discretization error itself, measured by the
same agents on a 16-step grid, must be below that tolerance.  Measured (seed 0):
d = 2: gap 2.5e-3, se 4.2e-3, disc 2e-7, train 6 s; d = 10: gap 6.2e-3, se 4.6e-3,
disc 1e-6, train 5 s.  The d = 100 check (target variance 0.35, fresh agents every 10
iterations) is marked slow: gap -8e-4, se 5.1e-3, bound 1.6e-2, paired excess
1.6e-3 +- 1.7e-4, disc 3e-7, train 70 to 130 s (one core, by load).
"""
import numpy as np
import pytest

from ocp_learn.reference.gaussian_mfg import (gaussian_mfg_objective, gaussian_mfg_optimum,
                                              terminal_std_numeric)
from ocp_learn.reference.mfg_oracle import (DISC_TOL, ORACLE_CASE_100, ORACLE_CASES,
                                            moment_matched_samples, oracle_gap, quadratic_floor,
                                            run_oracle)

CASES = [(0.5, 0.3, 1.0, 5.0, 1.0), (0.3, 0.3, 1.0, 5.0, 1.0), (0.5, 0.25, 1.0, 1.0, 1.0),
         (0.1, 2.0, 1.0, 0.3, 2.0), (4.0, 0.2, 2.0, 7.0, 0.5)]


# ------------------------------------------------------------------ the closed form
@pytest.mark.parametrize("s0,s1,a1,a3,T", CASES)
def test_closed_form_terminal_variance_matches_numerical_root(s0, s1, a1, a3, T):
    ref = gaussian_mfg_optimum(np.zeros(3), s0, np.ones(3), s1, a1=a1, a3=a3, T=T)
    sig = terminal_std_numeric(s0, s1, a1, a3, T)
    assert np.sqrt(ref["sT"]) == pytest.approx(sig, rel=1e-12, abs=0)
    # the objective is the sum of its parts, and the parts separate into mean + d * variance
    L, G = gaussian_mfg_objective(np.zeros(3), s0, np.ones(3), s1, ref["mT"], ref["sT"], a1, a3, T)
    assert ref["J"] == pytest.approx(L + a3 * G, rel=1e-14)
    assert ref["J"] == pytest.approx(ref["J_mean"] + 3 * ref["J_var_per_dim"], rel=1e-12)


@pytest.mark.parametrize("s0,s1,a1,a3,T", CASES)
def test_closed_form_is_the_minimum(s0, s1, a1, a3, T):
    m0, m1 = np.array([0.0, 1.0]), np.array([2.0, -1.0])
    ref = gaussian_mfg_optimum(m0, s0, m1, s1, a1=a1, a3=a3, T=T)

    def J(mT, sT):
        L, G = gaussian_mfg_objective(m0, s0, m1, s1, mT, sT, a1, a3, T)
        return L + a3 * G

    for dm in (np.array([1e-3, 0]), np.array([0, -1e-3])):
        assert J(ref["mT"] + dm, ref["sT"]) > ref["J"]
    for f in (1 - 1e-4, 1 + 1e-4):
        assert J(ref["mT"], ref["sT"] * f) > ref["J"]


def test_optimum_scaling_with_dimension():
    """Crowd-motion endpoints: terminal mean and variance per coordinate do not depend on d;
    J*(d) = J_mean + d J_var_per_dim."""
    out = []
    for d in (2, 10, 100):
        m0, m1 = np.zeros(d), np.zeros(d)
        m0[1], m1[1] = 3.0, -3.0
        out.append(gaussian_mfg_optimum(m0, 0.5, m1, 0.3, a1=1.0, a3=5.0))
    assert all(r["sT"] == out[0]["sT"] and r["mT"][1] == out[0]["mT"][1] for r in out)
    assert all(r["J_mean"] == pytest.approx(out[0]["J_mean"], rel=1e-15) for r in out)
    assert out[2]["J"] - out[1]["J"] == pytest.approx(90 * out[0]["J_var_per_dim"], rel=1e-12)


def test_closed_form_rejects_bad_arguments():
    with pytest.raises(ValueError, match="s1"):
        gaussian_mfg_optimum([0.0], 0.5, [1.0], -0.3)
    with pytest.raises(ValueError, match="m0 and m1"):
        gaussian_mfg_optimum([0.0, 1.0], 0.5, [1.0], 0.3)


def test_moment_matched_samples():
    x = moment_matched_samples(np.array([1.0, -2.0, 0.5]), 0.7, 50, seed=1)
    np.testing.assert_allclose(x.mean(0), [1.0, -2.0, 0.5], atol=1e-14)
    c = x - x.mean(0)
    np.testing.assert_allclose(c.T @ c / 50, 0.7 * np.eye(3), atol=1e-14)


# ------------------------------------------------------------------ trained against the oracle
@pytest.fixture(scope="module", params=[2, 10], ids=["d2", "d10"])
def trained(request):
    return ORACLE_CASES[request.param], run_oracle(ORACLE_CASES[request.param], seed=0)


def test_trained_mfg_reaches_closed_form_optimum(trained):
    case, r = trained
    assert r["n_eval"] == 20000 and r["disc_tol"] == DISC_TOL
    # the discretization error of the trained flow is below the stated tolerance
    assert abs(r["disc"]) <= DISC_TOL, r
    # fresh-sample objective within 3 standard errors + the discretization tolerance
    assert abs(r["gap"]) <= 3 * r["se"] + DISC_TOL, r
    assert r["passed"]
    # the paired estimate of the excess over the exact optimal flow is small and not negative
    assert -4 * r["excess_se"] <= r["excess"] <= 3 * r["se"], r


def test_suboptimal_parameters_fail_the_oracle(trained):
    """Negative control: the trained flow with a constant velocity 0.15 e1 added
    (b_x -= 0.15 a1 e1 in Phi = ... + b^T s) misses the optimal terminal mean by 0.15."""
    case, r = trained
    prob = case.problem()
    theta = r["theta"].copy()
    prob.unpack(theta)["b"][0, 0] -= 0.15 * case.a1
    bad = oracle_gap(case, theta)
    assert not bad["passed"] and bad["gap"] > bad["bound"], bad
    assert bad["excess"] > 10 * bad["excess_se"]


def test_quadratic_floor():
    """The best time-constant linear feedback: zero when the variance need not change,
    linear in d, 1.26e-4 per coordinate for s1 = 0.25, 8.9e-6 for s1 = 0.35 (d = 100); each
    case's floor below a third of the standard error of its check (4.2e-3 to 5.1e-3)."""
    from dataclasses import replace

    assert quadratic_floor(replace(ORACLE_CASES[2], s1=ORACLE_CASES[2].s0)) == pytest.approx(
        0.0, abs=1e-15)
    per_dim = [quadratic_floor(replace(ORACLE_CASE_100, d=d, s1=0.25)) / d for d in (2, 10, 100)]
    assert per_dim == pytest.approx([per_dim[0]] * 3, rel=1e-9)
    assert 1.25e-4 < per_dim[0] < 1.27e-4
    assert [quadratic_floor(c) for c in ORACLE_CASES.values()] == pytest.approx(
        [2 * per_dim[0], 10 * per_dim[0]], rel=1e-9)
    assert 8.9e-4 < quadratic_floor(ORACLE_CASE_100) < 9.0e-4


@pytest.mark.slow
def test_trained_mfg_reaches_closed_form_optimum_d100():
    """d = 100 (target variance 0.35): a fresh moment-matched batch of 8192 agents every 10
    of 80 L-BFGS iterations (70 to 130 s on one core); the same check as d = 2 and 10."""
    r = run_oracle(ORACLE_CASE_100, seed=0)
    assert r["n_eval"] == 20000 and r["disc_tol"] == DISC_TOL
    assert abs(r["disc"]) <= DISC_TOL, r
    assert abs(r["gap"]) <= 3 * r["se"] + DISC_TOL, r
    assert r["passed"]
    # the paired excess is not negative and within 3 se of the gap's scale
    assert -4 * r["excess_se"] <= r["excess"] <= 3 * r["se"], r
    theta = r["theta"].copy()
    ORACLE_CASE_100.problem().unpack(theta)["b"][0, 0] -= 0.15 * ORACLE_CASE_100.a1
    bad = oracle_gap(ORACLE_CASE_100, theta)
    assert not bad["passed"] and bad["gap"] > bad["bound"], bad
