"""Hamiltonian network (MATH A4) and the leapfrog / Stoermer--Verlet integrator."""
import numpy as np
import pytest

import ocp_learn as ol
from ocp_learn.integrators import Leapfrog, get_integrator
from ocp_learn.models import HamiltonianNet
from ocp_learn.controls import FixedControl
from ocp_learn.verify import check_gradient, dot_product_test, taylor_test


def make_problem(integrator="leapfrog", strategy="store_all", time_param=("piecewise_linear", 3),
                 n=10, d=2, nt=12, seed=0, running=()):
    rng = np.random.default_rng(seed)
    m = HamiltonianNet(d)
    x = rng.standard_normal((n, d))
    y = rng.integers(0, 3, n)
    prob = ol.OCP(m, x, ol.LinearHeadLoss(y, 2 * d, "softmax"), T=2.0, nt=nt, integrator=integrator,
                  time_param=time_param, running=running,
                  regularizers=[ol.Tikhonov(1e-2), ol.TimeSmoothness(1e-2)], strategy=strategy)
    theta = prob.init_params(seed) + 0.3 * rng.standard_normal(prob.n_params)
    return prob, theta


def test_model_jvp_vjp_dot_product_and_taylor(rng):
    m = HamiltonianNet(3)
    theta = m.init_params(rng) + 0.2 * rng.standard_normal(m.n_params)
    Y = rng.standard_normal((7, 6))
    dY, dth = rng.standard_normal(Y.shape), rng.standard_normal(theta.size)
    Ybar = rng.standard_normal(Y.shape)
    err = dot_product_test(lambda v: m.jvp(Y, 0.0, theta, v[0], v[1]),
                           lambda u: m.vjp(Y, 0.0, theta, u), (dY, dth), Ybar)
    assert err <= 1e-12
    both = m.jvp(Y, 0.0, theta, dY, dth)
    f = lambda x: m.rhs(x[:Y.size].reshape(Y.shape), 0.0, x[Y.size:])  # noqa: E731
    res = taylor_test(f, np.concatenate([Y.ravel(), theta]), np.concatenate([dY.ravel(), dth]), both)
    assert res.passed, str(res)


@pytest.mark.parametrize("part", ["y", "z"])
def test_half_fields_dot_product_and_taylor(part, rng):
    m = HamiltonianNet(3)
    theta = m.init_params(rng) + 0.2 * rng.standard_normal(m.n_params)
    u, du, vbar = (rng.standard_normal((5, 3)) for _ in range(3))
    dth = rng.standard_normal(theta.size)
    rhs, jvp, vjp = (getattr(m, f"{k}_{part}") for k in ("rhs", "jvp", "vjp"))
    assert dot_product_test(lambda v: jvp(u, 0.0, theta, v[0], v[1]),
                            lambda w: vjp(u, 0.0, theta, w), (du, dth), vbar) <= 1e-12
    f = lambda x: rhs(x[:u.size].reshape(u.shape), 0.0, x[u.size:])  # noqa: E731
    res = taylor_test(f, np.concatenate([u.ravel(), theta]), np.concatenate([du.ravel(), dth]),
                      jvp(u, 0.0, theta, du, dth))
    assert res.passed, str(res)


def test_field_is_the_hamiltonian_structure(rng):
    """dy/dt depends on z only, dz/dt on y only, with the signs of MATH A4."""
    m = HamiltonianNet(2)
    theta = m.init_params(rng)
    P = m.unpack(theta)
    Y = rng.standard_normal((4, 4))
    F = m.rhs(Y, 0.0, theta)
    np.testing.assert_allclose(F[:, :2], np.tanh(Y[:, 2:] @ P["K"].T + P["b"]), rtol=1e-15)
    np.testing.assert_allclose(F[:, 2:], -np.tanh(Y[:, :2] @ P["K"] + P["b"]), rtol=1e-15)


@pytest.mark.parametrize("integrator", ["leapfrog", "rk4"])
@pytest.mark.parametrize("time_param", [None, ("piecewise_linear", 3)], ids=["const", "pwl"])
def test_ocp_gradient_taylor(integrator, time_param):
    prob, theta = make_problem(integrator, time_param=time_param)
    res = check_gradient(prob.objective_and_gradient, theta, seed=2)
    assert res.passed and res.usable >= 4, str(res)


def test_leapfrog_tangent_adjoint_dot_product():
    prob, theta = make_problem()
    rng = np.random.default_rng(5)
    yT = prob.final_state(theta)
    dth = rng.standard_normal(theta.size)
    dth[prob.layout.slice("terminal")] = 0.0
    w = rng.standard_normal(yT.shape)
    err = dot_product_test(lambda v: prob.final_state_jvp(theta, v)[1],
                           lambda u: prob.final_state_vjp(theta, u)[0], dth, w)
    assert err <= 1e-12
    res = taylor_test(lambda th: prob.final_state(th), theta, dth, prob.final_state_jvp(theta, dth)[1])
    assert res.passed, str(res)


def test_dropped_half_field_vjp_term_is_caught(monkeypatch):
    prob, theta = make_problem()
    assert check_gradient(prob.objective_and_gradient, theta).passed
    orig = HamiltonianNet.vjp_z

    def broken(self, y, t, th, vbar):
        yb, g = orig(self, y, t, th, vbar)
        self.unpack(g)["b"][...] = 0.0
        return yb, g

    monkeypatch.setattr(HamiltonianNet, "vjp_z", broken)
    bad = check_gradient(prob.objective_and_gradient, theta)
    assert not bad.passed and bad.order < 1.2, str(bad)


def test_dropped_leapfrog_adjoint_kick_is_caught(monkeypatch):
    """An adjoint that forgets the last kick's contribution to ly fails the Taylor test."""
    prob, theta = make_problem()
    orig = Leapfrog.step_adjoint

    def broken(self, field, tape, t, h, ctrl, lam, **kw):
        d = field.partition
        out = orig(self, field, tape, t, h, ctrl, lam, **kw)
        y, z_h, y1 = tape
        yb, _ = field.vjp_z(y1, t + h, ctrl.theta(1.0), (0.5 * h) * lam[:, d:])
        out[:, :d] -= yb  # drop only the state term of the last kick
        return out

    monkeypatch.setattr(Leapfrog, "step_adjoint", broken)
    bad = check_gradient(prob.objective_and_gradient, theta)
    assert not bad.passed, str(bad)


def test_leapfrog_step_inverse_is_rounding_level(rng):
    m = HamiltonianNet(3, init_scale=2.0)
    lf = get_integrator("leapfrog")
    ctrl = FixedControl(m.init_params(rng))
    Y = rng.standard_normal((20, 6))
    Y1, tape = lf.step(m, Y, 0.0, 0.1, ctrl, keep=True)
    Y0, tape2 = lf.step_inverse(m, Y1, 0.0, 0.1, ctrl)
    assert np.max(np.abs(Y0 - Y)) <= 1e-14
    for a, b in zip(tape, tape2):
        assert np.max(np.abs(a - b)) <= 1e-14
    # a whole trajectory of 500 steps rebuilt backwards: rounding-level, not O(h^p)
    y = Y
    for k in range(500):
        y, _ = lf.step(m, y, 0.01 * k, 0.01, ctrl, keep=False)
    for k in range(499, -1, -1):
        y, _ = lf.step_inverse(m, y, 0.01 * k, 0.01, ctrl, keep=False)
    assert np.max(np.abs(y - Y)) <= 1e-12


def test_leapfrog_is_second_order():
    prob, theta = make_problem(time_param=None, nt=8)
    errs = []
    ref = None
    for nt in (1024, 16, 32, 64):
        p, _ = make_problem(time_param=None, nt=nt)
        yT = p.final_state(theta)
        if ref is None:
            ref = yT
            continue
        errs.append(np.max(np.abs(yT - ref)))
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(np.abs(orders - 2.0) < 0.2), orders


def test_leapfrog_input_errors():
    prob, theta = make_problem()
    with pytest.raises(TypeError, match="partitioned field"):
        p, th = make_problem(running=[ol.KineticEnergy(HamiltonianNet(2))])
        p.objective(th)
    with pytest.raises(ValueError, match="columns"):
        HamiltonianNet(2).initial_state(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="dim"):
        HamiltonianNet(0)


def test_hamiltonian_classifier_trains():
    """Usable as the classifier's dynamics: L-BFGS lowers the loss, x with d columns is padded."""
    from ocp_learn.datasets import rings
    from ocp_learn.optim import lbfgs

    x, y = rings(120, seed=0)
    prob = ol.OCP(HamiltonianNet(2), x, ol.LinearHeadLoss(y, 4, "logistic"), T=2.0, nt=8,
                  integrator="leapfrog", strategy="reversible", regularizers=[ol.Tikhonov(1e-4)])
    th0 = prob.init_params(0)
    res = lbfgs(prob, th0, maxiter=40)
    assert res.fun < 0.8 * prob.objective(th0)
