"""Core: exact discrete gradients for every model x integrator x theta(t) x strategy."""
import numpy as np
import pytest

import ocp_learn as ol
from ocp_learn.verify import check_gradient, dot_product_test, taylor_test

MODELS = {
    "mlp": lambda d: ol.SingleLayerNet(d, width=5),
    "linear": lambda d: ol.LinearModel(d),
}
INTEGRATORS = ["euler", "heun", "rk4"]
TIME_PARAMS = [None, ("piecewise_constant", 2), ("piecewise_linear", 3)]


def make_problem(model="mlp", integrator="rk4", time_param=None, strategy="store_all", n=12, d=3,
                 running=True, seed=0, nt=6):
    rng = np.random.default_rng(seed)
    m = MODELS[model](d)
    x = rng.standard_normal((n, d))
    y = rng.integers(0, 3, n)
    prob = ol.OCP(m, x, ol.LinearHeadLoss(y, d, "softmax"), T=1.3, nt=nt, integrator=integrator,
                  time_param=time_param, running=[ol.KineticEnergy(m, 0.5)] if running else [],
                  regularizers=[ol.Tikhonov(1e-2), ol.TimeSmoothness(1e-2)], strategy=strategy)
    theta = prob.init_params(seed) + 0.3 * rng.standard_normal(prob.n_params)
    return prob, theta


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("integrator", INTEGRATORS)
@pytest.mark.parametrize("time_param", TIME_PARAMS, ids=["const", "pwc", "pwl"])
def test_gradient_taylor_and_central_differences(model, integrator, time_param):
    prob, theta = make_problem(model, integrator, time_param)
    res = check_gradient(prob.objective_and_gradient, theta, seed=3)
    assert res.passed and res.usable >= 4, str(res)
    # central differences in a few random directions, <= 1e-7 relative
    _, g = prob.objective_and_gradient(theta)
    rng = np.random.default_rng(7)
    for _ in range(3):
        v = rng.standard_normal(theta.size)
        eps = 1e-5
        fd = (prob.objective(theta + eps * v) - prob.objective(theta - eps * v)) / (2 * eps)
        assert abs(fd - g @ v) <= 1e-7 * max(abs(g @ v), 1e-3), (fd, g @ v)


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("integrator", INTEGRATORS)
@pytest.mark.parametrize("time_param", TIME_PARAMS, ids=["const", "pwc", "pwl"])
def test_tangent_adjoint_dot_product(model, integrator, time_param):
    prob, theta = make_problem(model, integrator, time_param)
    rng = np.random.default_rng(5)
    yT = prob.final_state(theta)
    dth = rng.standard_normal(theta.size)
    dth[prob.layout.slice("terminal")] = 0.0
    w = rng.standard_normal(yT.shape)
    err = dot_product_test(lambda v: prob.final_state_jvp(theta, v)[1],
                           lambda u: prob.final_state_vjp(theta, u)[0], dth, w)
    assert err <= 1e-12
    # the tangent sweep is the derivative of theta -> y(T)
    res = taylor_test(lambda th: prob.final_state(th), theta, dth, prob.final_state_jvp(theta, dth)[1])
    assert res.passed, str(res)


@pytest.mark.parametrize("model", list(MODELS))
def test_model_jvp_vjp(model, rng):
    m = MODELS[model](4)
    theta = m.init_params(rng) + 0.2 * rng.standard_normal(m.n_params)
    z = rng.standard_normal((7, 4))
    dz, dth = rng.standard_normal(z.shape), rng.standard_normal(theta.size)
    fbar = rng.standard_normal(z.shape)
    err = dot_product_test(lambda v: m.jvp(z, 0.0, theta, v[0], v[1]),
                           lambda u: m.vjp(z, 0.0, theta, u), (dz, dth), fbar)
    assert err <= 1e-12
    both = m.jvp(z, 0.0, theta, dz, dth)
    np.testing.assert_allclose(both, m.jvp(z, 0.0, theta, dz, None) + m.jvp(z, 0.0, theta, None, dth),
                               rtol=1e-13, atol=1e-13)
    f = lambda x: m.rhs(x[:z.size].reshape(z.shape), 0.0, x[z.size:])  # noqa: E731
    x = np.concatenate([z.ravel(), theta])
    v = np.concatenate([dz.ravel(), dth])
    assert taylor_test(f, x, v, both).passed


def test_input_gradient_lam0(rng):
    """lam0 = dJ/dy(0) is exact too (the gradient w.r.t. the inputs)."""
    prob, theta = make_problem()
    ev = prob.evaluate(theta)
    v = rng.standard_normal(prob.x0.shape)
    x0 = prob.x0.copy()

    def J(x):
        prob.x0 = x.reshape(x0.shape)
        return prob.objective(theta)

    res = taylor_test(J, x0.ravel(), v.ravel(), float(np.sum(ev.lam0[:, :3] * v)))
    prob.x0 = x0
    assert res.passed, str(res)


def test_taylor_test_catches_a_dropped_vjp_term(monkeypatch):
    """Dropping the b1 term of the model's vjp must fail the Taylor test."""
    prob, theta = make_problem(running=False)
    good = check_gradient(prob.objective_and_gradient, theta)
    assert good.passed
    orig = ol.SingleLayerNet.vjp

    def broken(self, z, t, th, fbar):
        zb, g = orig(self, z, t, th, fbar)
        self.unpack(g)["b1"][...] = 0.0
        return zb, g

    monkeypatch.setattr(ol.SingleLayerNet, "vjp", broken)
    bad = check_gradient(prob.objective_and_gradient, theta)
    assert not bad.passed, str(bad)
    assert bad.order < 1.2


def test_taylor_test_catches_a_dropped_adjoint_stage_coupling(monkeypatch):
    """An adjoint sweep missing the a_ji coupling of the stages fails."""
    prob, theta = make_problem(integrator="rk4", running=False)
    integ = prob.integrator
    monkeypatch.setattr(integ, "_a_cols", [[] for _ in integ._a_cols])
    assert not check_gradient(prob.objective_and_gradient, theta).passed


@pytest.mark.parametrize("strategy", ["store_all", "store_states"])
def test_strategies_give_identical_gradients(strategy):
    p1, theta = make_problem(strategy="store_all")
    p2, _ = make_problem(strategy=strategy)
    g1 = p1.objective_and_gradient(theta)[1]
    g2 = p2.objective_and_gradient(theta)[1]
    np.testing.assert_allclose(g2, g1, rtol=1e-14, atol=1e-15)


def test_ledger_counts():
    n, d, nt = 12, 3, 6
    p1, theta = make_problem(strategy="store_all", n=n, d=d, nt=nt)
    led = p1.evaluate(theta).ledger
    D = d + 1  # one running-cost column
    assert led.steps == nt and led.rhs_evals == 4 * nt and led.vjp_evals == 4 * nt
    assert led.stored_floats == nt * 4 * n * D and led.recomputed_steps == 0
    p2, _ = make_problem(strategy="store_states", n=n, d=d, nt=nt)
    led = p2.evaluate(theta).ledger
    assert led.recomputed_steps == nt and led.rhs_evals == 8 * nt
    assert led.stored_floats == (nt + 1) * n * D + 4 * n * D


def test_batch_gradient_matches_subproblem():
    prob, theta = make_problem()
    idx = np.array([0, 3, 5, 7])
    Jb, gb = prob.objective_and_gradient(theta, batch=idx)
    sub = ol.OCP(prob.model, prob.x0[idx], ol.LinearHeadLoss(prob.terminal.labels[idx], 3, "softmax",
                                                             n_outputs=3),
                 T=1.3, nt=6, running=[ol.KineticEnergy(prob.model, 0.5)],
                 regularizers=prob.regularizers)
    Js, gs = sub.objective_and_gradient(theta)
    assert abs(Jb - Js) < 1e-13
    np.testing.assert_allclose(gb, gs, rtol=1e-12, atol=1e-14)


def test_unpack_gives_views():
    prob, theta = make_problem(time_param=("piecewise_linear", 3))
    P = prob.unpack(theta)
    assert P["K1"].shape == (3, 5, 3) and P["W"].shape == (3, 3)
    for k in ("K1", "b1", "K2", "b2", "W", "mu", "dynamics"):
        assert np.shares_memory(P[k], theta), k
    P["b2"][1, 2] = 42.0
    assert 42.0 in theta
