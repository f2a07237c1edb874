"""Gauss--Newton--CG (MATH G1): the GGN product against finite differences of J^T H J."""
import numpy as np
import pytest

from ocp_learn.datasets import rings, spirals
from ocp_learn.optim import conjugate_gradient, gauss_newton, lbfgs
from ocp_learn.problems import NeuralODEClassifier

LOSSES = ["logistic", "softmax", "squares"]


def make(loss="logistic", n=10, time_param=None, integrator="rk4", seed=0, **kw):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2))
    if loss == "logistic":
        y = rng.integers(0, 2, n)
    elif loss == "softmax":
        y = rng.integers(0, 3, n)
    else:
        y = rng.standard_normal((n, 2))
    prob = NeuralODEClassifier(x, y, augment=1, loss=loss, width=4, nt=3, T=1.0,
                               integrator=integrator, time_param=time_param, tikhonov=1e-2,
                               smoothness=1e-2, **kw)
    theta = prob.init_params(seed) + 0.3 * rng.standard_normal(prob.n_params)
    return prob, theta


def fd_ggn(prob, theta, eps=1e-5):
    """``J_r^T H J_r + R''`` with ``J_r`` by central differences of the residuals."""
    r0 = prob.residuals(theta)
    n, k = r0.shape
    J = np.empty((n * k, theta.size))
    for j in range(theta.size):
        e = np.zeros_like(theta)
        e[j] = eps
        J[:, j] = ((prob.residuals(theta + e) - prob.residuals(theta - e)) / (2 * eps)).ravel()
    yN = prob.final_state(theta)
    p = prob.unpack(theta)["terminal"]
    H = np.empty((n * k, n * k))
    for j in range(n * k):
        dr = np.zeros(n * k)
        dr[j] = 1.0
        H[:, j] = prob.terminal.loss_hvp(yN, p, dr.reshape(n, k)).ravel()
    # regularizer Hessian by differences of the regularization gradient (exact: quadratic)
    nodes = prob.unpack(theta)["dynamics"]
    R = np.zeros((theta.size, theta.size))
    sl = prob.layout.slice("dynamics")
    for j in range(nodes.size):
        v = np.zeros(nodes.size)
        v[j] = 1.0
        col = sum(reg.hvp(nodes, v.reshape(nodes.shape)) for reg in prob.regularizers)
        R[sl, sl.start + j] = col.ravel()
    return J.T @ H @ J + R


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("time_param", [None, ("piecewise_linear", 3)], ids=["const", "pwl"])
def test_ggn_product_equals_finite_difference_JtHJ(loss, time_param):
    prob, theta = make(loss, time_param=time_param)
    G = fd_ggn(prob, theta)
    op = prob.gauss_newton_operator(theta)
    rng = np.random.default_rng(1)
    for _ in range(3):
        v = rng.standard_normal(theta.size)
        Gv = op.matvec(v)
        ref = G @ v
        assert np.linalg.norm(Gv - ref) <= 1e-7 * np.linalg.norm(ref), (np.linalg.norm(Gv - ref),
                                                                        np.linalg.norm(ref))
    assert op.n_products == 3


def test_ggn_is_symmetric_psd_and_matches_one_off_product():
    prob, theta = make("softmax", integrator="heun")
    op = prob.gauss_newton_operator(theta)
    rng = np.random.default_rng(2)
    u, v = rng.standard_normal((2, theta.size))
    a, b = u @ op.matvec(v), v @ op.matvec(u)
    assert abs(a - b) <= 1e-12 * max(abs(a), 1.0)
    assert v @ op.matvec(v) >= 0.0
    np.testing.assert_allclose(prob.gauss_newton_product(theta, v), op.matvec(v), rtol=1e-13, atol=1e-15)
    # value and gradient of the operator are the problem's
    f, g = prob.objective_and_gradient(theta)
    assert op.value == f
    np.testing.assert_array_equal(op.gradient, g)


def test_ggn_with_store_states_strategy_and_batch():
    prob, theta = make("logistic", strategy="store_states", n=12)
    ref, _ = make("logistic", n=12)
    v = np.random.default_rng(3).standard_normal(theta.size)
    batch = np.array([0, 3, 5, 7])
    np.testing.assert_allclose(prob.gauss_newton_operator(theta, batch).matvec(v),
                               ref.gauss_newton_operator(theta, batch).matvec(v), rtol=1e-12, atol=1e-14)


def test_dropped_head_term_is_caught(monkeypatch):
    """A product that forgets ``dW z + dmu`` in ``J_r v`` fails the comparison."""
    prob, theta = make("logistic")
    G = fd_ggn(prob, theta)
    term = prob.terminal

    def bad_output_jvp(y, p, dy, dp):
        W, _ = term.head(p)
        return dy[:, :term.dim] @ W.T  # missing dW z + dmu

    monkeypatch.setattr(term, "output_jvp", bad_output_jvp)
    v = np.random.default_rng(4).standard_normal(theta.size)
    Gv = prob.gauss_newton_operator(theta).matvec(v)
    assert np.linalg.norm(Gv - G @ v) > 1e-3 * np.linalg.norm(G @ v)


def test_dropped_regularizer_hessian_is_caught(monkeypatch):
    prob, theta = make("softmax")
    G = fd_ggn(prob, theta)
    for reg in prob.regularizers:
        monkeypatch.setattr(reg, "hvp", lambda nodes, v: np.zeros_like(v))
    v = np.random.default_rng(5).standard_normal(theta.size)
    Gv = prob.gauss_newton_operator(theta).matvec(v)
    assert np.linalg.norm(Gv - G @ v) > 1e-7 * np.linalg.norm(G @ v)


def test_conjugate_gradient_solves_spd_system():
    rng = np.random.default_rng(0)
    B = rng.standard_normal((8, 8))
    A = B @ B.T + 0.1 * np.eye(8)
    b = rng.standard_normal(8)
    x, info = conjugate_gradient(lambda v: A @ v, b, rtol=1e-12, maxiter=50, shift=0.5)
    np.testing.assert_allclose((A + 0.5 * np.eye(8)) @ x, b, atol=1e-9)
    assert info["xAx"] == pytest.approx(x @ A @ x, rel=1e-10)
    x0, info0 = conjugate_gradient(lambda v: A @ v, np.zeros(8))
    assert np.all(x0 == 0) and info0["iterations"] == 0


def test_gauss_newton_trains_classifier_and_records_counters():
    x, y = rings(120, seed=1)
    prob = NeuralODEClassifier(x, y, augment=1, width=6, nt=4)
    res = gauss_newton(prob, maxiter=15, progress=False)
    h = res.history
    assert res.method == "Gauss-Newton-CG"
    assert h["objective"][-1] < 0.3 * h["objective"][0]
    assert np.all(np.diff(h["objective"]) <= 1e-12)  # Armijo: monotone
    assert res.fun == pytest.approx(prob.objective(res.x))
    assert res.n_products == res.cg_iterations > 0
    assert len(h["iteration"]) == res.nit + 1 and h["sweeps"][-1] == res.sweeps
    assert np.all(np.diff(h["sweeps"]) > 0)
    assert prob.accuracy(res.x) >= 0.9


def test_gauss_newton_validates_input():
    x, y = rings(20, seed=1)
    prob = NeuralODEClassifier(x, y, width=3, nt=2)
    with pytest.raises(ValueError, match="maxiter"):
        gauss_newton(prob, maxiter=0, progress=False)
    with pytest.raises(TypeError, match="gauss_newton_operator"):
        gauss_newton(object(), progress=False)
    with pytest.raises(ValueError, match="damping"):
        gauss_newton(prob, damping=-1.0, progress=False)
    with pytest.raises(ValueError, match="v must have shape"):
        prob.gauss_newton_product(prob.init_params(0), np.ones(3))


def test_gauss_newton_multiclass_reaches_lbfgs_objective():
    x, y = spirals(100, seed=0)
    prob = NeuralODEClassifier(x, y, augment=1, loss="softmax", width=8, nt=4)
    th0 = prob.init_params(2)
    gn = gauss_newton(prob, th0, maxiter=25, progress=False)
    lb = lbfgs(prob, th0, maxiter=25, progress=False)
    assert gn.fun < prob.objective(th0) and lb.fun < prob.objective(th0)
    assert gn.fun <= 1.5 * lb.fun
