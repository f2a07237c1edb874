"""CasADi reference layer: gradients, IPOPT optima, analytic references, ``ocp-learn verify``."""
import json

import casadi as ca
import numpy as np
import pytest

import ocp_learn as ol
from ocp_learn.models.controlled_linear import ControlEnergy, ControlledLinearModel
from ocp_learn.reference import analytic as an
from ocp_learn.reference import (build_reference, compare_gradient, compare_potential,
                                 ipopt_solve, reference_objective_and_gradient)
from ocp_learn.reference.suite import APPROXIMATE_STRATEGIES, GRAD_TOL, OPT_TOL, run_suite
from ocp_learn.verify import check_gradient, dot_product_test, taylor_test


@pytest.fixture(scope="module")
def suite():
    """The quick suite, run once for the tests that read its rows."""
    return run_suite(quick=True)


# ------------------------------------------------------------------ gradients
def test_every_model_integrator_time_param_strategy_matches_casadi(suite):
    rows = suite["gradients"]
    exact = [r for r in rows if r["rel_grad_diff"] is not None
             and r["strategy"] not in APPROXIMATE_STRATEGIES]
    assert all(r["rel_grad_diff"] <= GRAD_TOL for r in exact), \
        [r for r in exact if r["rel_grad_diff"] > GRAD_TOL]
    # every problem x integrator x theta(t) has store_all, store_states and checkpointing rows
    combos = {(r["problem"], r["integrator"], r["theta(t)"]) for r in rows}
    for c in combos:
        got = {r["strategy"] for r in exact if (r["problem"], r["integrator"], r["theta(t)"]) == c}
        assert {"store_all", "store_states"} <= got, (c, got)
    models = {r["model"] for r in exact}
    assert {"SingleLayerNet", "LinearModel", "ControlledLinearModel"} <= models
    integrators = {r["integrator"] for r in exact}
    assert {"euler", "heun", "rk4"} <= integrators
    assert len({r["theta(t)"] for r in exact}) == 3
    # the continuous adjoint (B3) is measured and differs by its discretization error
    approx = [r["rel_grad_diff"] for r in rows if r["strategy"] in APPROXIMATE_STRATEGIES
              and r["rel_grad_diff"] is not None]
    assert not approx or max(approx) > 1e-8
    assert suite["summary"]["gradient_failures"] == 0


def test_continuous_adjoint_errors_are_reported_in_full(suite):
    rows = [r for r in suite["gradients"] if r["strategy"] in APPROXIMATE_STRATEGIES
            and r["rel_grad_diff"] is not None]
    assert rows
    for r in rows:
        # the figure is in the row and in its status; CasADi's AD and the discrete adjoint agree
        assert r["status"] == f"B3: {r['rel_grad_diff']:.2e} vs discrete adjoint"
        assert r["rel_to_discrete_adjoint"] == pytest.approx(r["rel_grad_diff"], rel=1e-6, abs=1e-14)
    summ = {r["integrator"]: r for r in suite["continuous_adjoint"]}
    errs = np.array([r["rel_grad_diff"] for r in rows])
    assert summ["all"]["cases"] == len(rows) == suite["summary"]["continuous_adjoint_cases"]
    assert summ["all"]["min"] == errs.min() == suite["summary"]["continuous_adjoint_min_rel_err"]
    assert summ["all"]["median"] == np.median(errs)
    assert summ["all"]["max"] == errs.max() == suite["summary"]["continuous_adjoint_max_rel_err"]
    assert sum(v["cases"] for k, v in summ.items() if k != "all") == len(rows)
    # RK4's continuous adjoint is closer to the discrete one than Euler's (higher order)
    assert summ["rk4"]["median"] < summ["euler"]["median"]


def test_messages_are_not_cut_mid_word(suite):
    """An ``n/a`` reason is the whole first line of the error, or shortened at a word boundary."""
    from ocp_learn.reference.suite import MESSAGE_WIDTH, _message

    na = [r["status"] for part in ("gradients", "potential", "optima", "analytic")
          for r in suite[part] if r.get("status", "").startswith(("n/a", "error"))]
    assert na
    for msg in na:
        assert len(msg) <= MESSAGE_WIDTH + len("n/a: ")
    long = "strategy 'reversible' needs an invertible integrator " * 5
    short = _message(long + "\nsecond line")
    assert short.endswith(" ...") and len(short) <= MESSAGE_WIDTH
    assert long.startswith(short[:-4]) and long[len(short) - 4] == " "
    assert _message("one line\nsecond") == "one line"


def test_potential_laplacian_terms_match_casadi(suite):
    rows = suite["potential"]
    assert rows and all(r["status"] == "ok" for r in rows)
    for r in rows:
        for k in ("phi", "grad", "dt", "lap", "vjp_x", "vjp_t", "vjp_theta", "jvp"):
            assert r[k] <= GRAD_TOL, (k, r)
    flow = [r for r in suite["gradients"] if r["model"] == "PotentialResNet" and r["status"] == "ok"]
    assert len(flow) >= 9  # OT-Flow objective (Laplacian in ell) for 3 integrators x 3 theta(t)


def test_sx_and_mx_graphs_agree(rng):
    m = ol.SingleLayerNet(2, width=4)
    x = rng.standard_normal((9, 2))
    prob = ol.OCP(m, x, ol.LinearHeadLoss(rng.integers(0, 2, 9), 2, "logistic"), nt=3,
                  integrator="heun", running=[ol.KineticEnergy(m, 0.3)])
    theta = prob.init_params(1)
    J1, g1 = reference_objective_and_gradient(prob, theta, mode="sx")
    J2, g2 = reference_objective_and_gradient(prob, theta, mode="mx")
    assert abs(J1 - J2) <= 1e-14 * abs(J1)
    np.testing.assert_allclose(g1, g2, rtol=1e-12, atol=1e-15)
    # a batch selects the same rows on both sides
    r = compare_gradient(prob, theta, batch=np.array([0, 3, 5]))
    assert r["rel_diff"] <= GRAD_TOL


class _DroppedTerm(ol.SingleLayerNet):
    """A deliberately wrong vjp: the b1 gradient is dropped."""

    def vjp(self, z, t, theta, fbar):
        zbar, g = super().vjp(z, t, theta, fbar)
        g = g.copy()
        g[self.layout.slice("b1")] = 0.0
        return zbar, g


def test_dropped_term_is_caught(rng):
    x = rng.standard_normal((8, 2))
    y = rng.integers(0, 2, 8)
    good = ol.OCP(ol.SingleLayerNet(2, width=3), x, ol.LinearHeadLoss(y, 2, "logistic"), nt=3)
    bad = ol.OCP(_DroppedTerm(2, width=3), x, ol.LinearHeadLoss(y, 2, "logistic"), nt=3)
    theta = good.init_params(0) + 0.3 * rng.standard_normal(good.n_params)
    assert compare_gradient(good, theta)["rel_diff"] <= GRAD_TOL
    assert compare_gradient(bad, theta)["rel_diff"] > 1e-4


def test_dropped_laplacian_term_is_caught(rng, monkeypatch):
    from ocp_learn.models import potential as pmod

    m = pmod.PotentialResNet(2, width=4, n_layers=2)
    th = m.init_params(0) + 0.3 * rng.standard_normal(m.n_params)
    x = rng.standard_normal((5, 2))
    assert max(compare_potential(m, x, 0.2, th).values()) <= GRAD_TOL
    orig = pmod.PotentialResNet.derivatives

    def no_A_trace(self, x, t, theta, probes=None):  # drop tr(E^T A^T A E) of (D3)
        D = orig(self, x, t, theta, probes)
        Ax = self.unpack(theta)["A"][:, :self.dim]
        return D._replace(lap=D.lap - np.sum(Ax * Ax))

    monkeypatch.setattr(pmod.PotentialResNet, "derivatives", no_A_trace)
    assert compare_potential(m, x, 0.2, th)["lap"] > 1e-3


def test_unregistered_types_and_bad_arguments(rng):
    class Unknown(ol.LinearModel):
        pass

    assert ol.LinearModel in Unknown.__mro__  # subclasses inherit the twin of LinearModel
    prob = ol.OCP(Unknown(2), rng.standard_normal((3, 2)),
                  ol.LinearHeadLoss(rng.standard_normal(3), 2, "squares"), nt=2)
    assert compare_gradient(prob, prob.init_params(0))["rel_diff"] <= GRAD_TOL

    class Alien(ol.models.base.Model):
        state_dim = 2
        layout = ol.ParamLayout([("a", (1,))])

        def rhs(self, y, t, theta):
            return theta[0] * y

        def jvp(self, y, t, theta, dy, dtheta):
            return (0.0 if dy is None else theta[0] * dy) + \
                (0.0 if dtheta is None else dtheta[0] * y)

        def vjp(self, y, t, theta, ybar):
            return theta[0] * ybar, np.array([np.sum(y * ybar)])

        def init_params(self, rng=None):
            return np.ones(1)

    prob = ol.OCP(Alien(), rng.standard_normal((3, 2)),
                  ol.LinearHeadLoss(rng.standard_normal(3), 2, "squares"), nt=2)
    with pytest.raises(NotImplementedError, match="no CasADi twin for the field Alien"):
        build_reference(prob)
    with pytest.raises(ValueError, match="mode"):
        build_reference(prob, mode="symbolic")
    with pytest.raises(ValueError, match="hessian"):
        ipopt_solve(prob, np.ones(prob.n_params), hessian="bfgs")


# ------------------------------------------------------------------ optima
def test_ipopt_agrees_with_ocp_learn_optimizers(suite):
    rows = suite["optima"]
    ok = [r for r in rows if r.get("status") == "ok"]
    assert len({r["problem"] for r in ok}) >= 3
    for r in ok:
        assert r["relative_gap"] <= OPT_TOL
        assert r["ipopt_status"] in ("Solve_Succeeded", "Solved_To_Acceptable_Level")
        assert r["grad_norm"] <= 1e-6 and r["ipopt_grad_norm"] <= 1e-8
        # ocp_learn's gradient and CasADi's agree at ocp_learn's optimum too
        assert abs(r["grad_norm"] - r["grad_norm_casadi"]) <= 1e-6 * max(r["grad_norm"], 1e-12) + 1e-14
    assert any(r["optimizer"] == "lbfgs" for r in ok)


def test_ipopt_finds_lq_optimum_in_one_newton_step():
    A = np.array([[0.0, 1.0], [-1.0, 0.0]])
    prob = an.lq_problem(A, np.array([[0.0], [1.0]]), np.eye(2), np.eye(1), [[1.0, 0.0]], 1.0, 5)
    r = ipopt_solve(prob, np.zeros(prob.n_params), hessian="exact")
    assert r["success"] and r["iterations"] <= 2   # a convex quadratic: one Newton step
    assert prob.objective(r["x"]) == pytest.approx(r["fun"], rel=1e-13)
    lm = ipopt_solve(prob, np.zeros(prob.n_params), hessian="limited-memory")
    assert lm["fun"] == pytest.approx(r["fun"], rel=1e-10)


# ------------------------------------------------------------------ analytic references
def test_controlled_linear_model_derivatives(rng):
    A, B = rng.standard_normal((3, 3)), rng.standard_normal((3, 2))
    m = ControlledLinearModel(A, B)
    u = m.init_params(rng)
    c0 = ControlEnergy(np.array([[2.0, 0.3], [0.3, 1.0]]))
    z = rng.standard_normal((4, 3))
    dz, du, fbar = rng.standard_normal(z.shape), rng.standard_normal(2), rng.standard_normal(z.shape)
    assert dot_product_test(lambda v: m.jvp(z, 0.0, u, v[0], v[1]),
                            lambda w: m.vjp(z, 0.0, u, w), (dz, du), fbar) <= 1e-12
    # f is affine in (z, u): the tangent is the exact difference
    np.testing.assert_allclose(m.rhs(z + dz, 0.0, u + du) - m.rhs(z, 0.0, u), m.jvp(z, 0.0, u, dz, du),
                               rtol=1e-12, atol=1e-12)
    # the quadratic control energy: Taylor test of value and tangent
    res = taylor_test(lambda v: c0.value(z, 0.0, v), u, du, c0.jvp(z, 0.0, u, None, du))
    assert res.passed, str(res)
    R = np.array([[2.0, 0.3], [0.3, 1.0]])
    c = ControlEnergy(R)
    cbar = rng.standard_normal(4)
    assert dot_product_test(lambda v: c.jvp(z, 0.0, u, None, v), lambda w: c.vjp(z, 0.0, u, w)[1],
                            du, cbar) <= 1e-12
    prob = an.lq_problem(A * 0.3, B, np.eye(3), R, z, 1.0, 4, "heun", "piecewise_linear")
    assert check_gradient(prob.objective_and_gradient, prob.init_params(0) + 1.0).passed
    with pytest.raises(ValueError, match="B must have 3 rows"):
        ControlledLinearModel(A, B[:2])
    with pytest.raises(ValueError, match="R must be a symmetric"):
        ControlEnergy(np.array([[1.0, 2.0], [0.0, 1.0]]))


def test_riccati_matches_algebraic_riccati_for_long_horizons():
    from scipy.linalg import solve_continuous_are

    A = np.array([[0.0, 1.0], [-1.0, -0.2]])
    B = np.array([[0.0], [1.0]])
    Q = np.eye(2)
    P = an.riccati(A, B, Q, np.eye(1), 30.0)
    np.testing.assert_allclose(P(0.0), solve_continuous_are(A, B, Q, np.eye(1)), rtol=1e-8)


def test_riccati_gap_decays_at_the_expected_order(suite):
    rows = {r["case"]: r for r in suite["analytic"] if r["check"] == "LQ vs Riccati"}
    gaps = rows["rk4, u piecewise linear"]["gaps"]
    assert all(g1 < g0 for g0, g1 in zip(gaps, gaps[1:]))
    assert rows["rk4, u piecewise linear"]["observed order"] > 3.5
    assert rows["rk4, u piecewise constant"]["observed order"] == pytest.approx(2.0, abs=0.2)
    assert rows["euler, u piecewise constant"]["observed order"] == pytest.approx(1.0, abs=0.2)


def test_gaussian_ot_closed_form(rng):
    ot = pytest.importorskip("ot")
    d = 3
    L0, L1 = rng.standard_normal((d, d)), rng.standard_normal((d, d))
    S0, S1 = L0 @ L0.T + 0.2 * np.eye(d), L1 @ L1.T + 0.2 * np.eye(d)
    m0, m1 = rng.standard_normal(d), rng.standard_normal(d)
    w2 = an.gaussian_w2(m0, S0, m1, S1)
    assert w2 == pytest.approx(float(ot.gaussian.bures_wasserstein_distance(m0, m1, S0, S1)), rel=1e-8)
    M, b = an.gaussian_ot_map(m0, S0, m1, S1)
    np.testing.assert_allclose(M @ S0 @ M, S1, rtol=1e-10, atol=1e-10)     # pushes forward
    assert np.all(np.linalg.eigvalsh(M) > 0)                                # Brenier: SPD
    np.testing.assert_allclose(M @ m0 + b, m1)
    # 1-D: W2^2 = (m0 - m1)^2 + (s0 - s1)^2
    assert an.gaussian_w2([0.0], [[4.0]], [1.0], [[1.0]], squared=True) == pytest.approx(2.0)
    # the optimal velocity transports the interpolation: x(1) = T(x0) along v
    from scipy.integrate import solve_ivp
    x0 = rng.standard_normal(d)
    sol = solve_ivp(lambda t, x: an.gaussian_ot_velocity(x[None], t, m0, S0, m1, S1)[0], (0, 1), x0,
                    rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(sol.y[:, -1], M @ x0 + b, rtol=1e-8, atol=1e-8)
    ms, Ss = an.gaussian_interpolation(m0, S0, m1, S1, 0.5)
    assert an.gaussian_w2(m0, S0, ms, Ss) == pytest.approx(0.5 * w2, rel=1e-8)  # geodesic
    with pytest.raises(ValueError, match="S0 must be symmetric positive definite"):
        an.gaussian_w2(m0, -S0, m1, S1)


def test_suite_oracle_and_hutchinson_rows(suite):
    from ocp_learn.reference.hutchinson import HUTCHINSON_CHECK
    from ocp_learn.reference.mfg_oracle import ORACLE_CHECK

    oracle = [r for r in suite["analytic"] if r["check"] == ORACLE_CHECK]
    assert [r["status"] for r in oracle] == ["ok", "ok", "caught", "ok", "caught"]
    assert oracle[0]["value"] <= 1e-12                      # closed form vs numerical root
    assert {"d=2", "d=10"} == {r["case"].split(",")[0] for r in oracle[1:]}
    for r in oracle[1:]:
        assert (abs(r["gap"]) <= r["bound"]) == (r["status"] == "ok")
    hutch = [r for r in suite["analytic"] if r["check"] == HUTCHINSON_CHECK]
    assert [r["status"] for r in hutch] == ["ok", "ok", "ok", "caught"]
    assert suite["summary"]["analytic_failures"] == 0


def test_single_agent_check(suite):
    rows = {r["case"]: r for r in suite["analytic"] if r["check"].startswith("MFG")}
    assert rows["exact value function"]["status"] == "ok"
    assert abs(rows["exact value function"]["improvement"]) <= 1e-8
    assert rows["perturbed (0.7 grad Phi)"]["status"] == "caught"
    assert rows["perturbed (0.7 grad Phi)"]["improvement"] > 1e-2


def test_single_agent_check_value_consistency():
    """OT between points: Phi(x, t) = -c.x + |c|^2 t/2 moves agents straight at speed c."""
    c = np.array([1.0, -2.0])
    T = 1.0
    term = lambda x: -ca.dot(ca.DM(c), x) + 0.5 * float(c @ c) * T  # noqa: E731  G = Phi(., T)
    r = an.single_agent_check(lambda x, t: -x @ c + 0.5 * (c @ c) * t,
                              lambda x, t: np.broadcast_to(-c, x.shape), [0.2, 0.1], T, 4,
                              None, term)
    assert r["passed"] and abs(r["improvement"][0]) <= 1e-10
    assert abs(r["value_gap"][0]) <= 1e-10
    with pytest.raises(ValueError, match="x0 must have shape"):
        an.single_agent_check(None, lambda x, t: x, np.zeros((1, 1, 2)), 1.0, 4)


# ------------------------------------------------------------------ CLI
def test_verify_command_writes_json_and_markdown(suite, tmp_path, monkeypatch, capsys):
    from ocp_learn.cli import main
    from ocp_learn.recipes.verify import format_value
    from ocp_learn.reference import suite as suite_mod

    monkeypatch.setattr(suite_mod, "run_suite", lambda quick, seed, progress: suite)
    assert main(["verify", "--quick", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "verify.json").read_text())
    assert data["summary"]["gradient_failures"] == 0
    assert len(data["gradients"]) == len(suite["gradients"])
    md = (tmp_path / "verify.md").read_text()
    assert "| problem | model | integrator | theta(t) | strategy | rel_grad_diff" in md
    assert md.count("\n| ") >= len(suite["gradients"])
    # the continuous adjoint's error figures, in full
    assert "rel. to discrete adjoint" in md
    assert "## Continuous adjoint (optimize-then-discretize) against the discrete adjoint" in md
    assert "| integrator | cases | min | median | max | worst case |" in md
    for r in suite["continuous_adjoint"]:
        assert (f"| {r['integrator']} | {r['cases']} | {format_value(r['min'])} | "
                f"{format_value(r['median'])} | {format_value(r['max'])} | {r['worst case']} |") in md
    for r in suite["gradients"]:
        if r.get("rel_to_discrete_adjoint") is not None:
            assert f"| {format_value(r['rel_to_discrete_adjoint'])} |" in md
    # the analytic tables: oracle and Hutchinson rows with their figures and status
    from ocp_learn.reference.hutchinson import HUTCHINSON_CHECK
    from ocp_learn.reference.mfg_oracle import ORACLE_CHECK

    assert "| case | J* | J_hat | gap | se | bound | disc | excess | excess se |" in md
    assert "| case | tr H | mean of draws | z_mean | variance | var_hat | z_var | draws |" in md
    for r in suite["analytic"]:
        if r["check"] == ORACLE_CHECK and "gap" not in r:      # closed form vs numerical root
            assert (f"{r['case']}: largest relative difference {format_value(r['value'])} "
                    f"({r['status']}).") in md
        elif r["check"] in (ORACLE_CHECK, HUTCHINSON_CHECK):
            assert f"| {r['case']} |" in md and f"{r['status']} |" in md
    out = capsys.readouterr().out
    s = suite["summary"]
    assert (f"continuous adjoint vs discrete adjoint: {s['continuous_adjoint_cases']} cases, "
            f"rel. gradient error min {format_value(s['continuous_adjoint_min_rel_err'])}, "
            f"median {format_value(s['continuous_adjoint_median_rel_err'])}, "
            f"max {format_value(s['continuous_adjoint_max_rel_err'])}") in out
    bad = dict(suite, summary=dict(suite["summary"], gradient_failures=1))
    monkeypatch.setattr(suite_mod, "run_suite", lambda quick, seed, progress: bad)
    assert main(["verify", "--quick", "--out", str(tmp_path)]) == 1
