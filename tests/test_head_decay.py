"""The L2 penalty on the weights of the classifier's affine head (``weight_decay`` of
:class:`~ocp_learn.costs.LinearHeadLoss`): value, gradient (Taylor test) and Hessian."""
import numpy as np
import pytest

from ocp_learn.costs import LinearHeadLoss
from ocp_learn.problems import NeuralODEClassifier
from ocp_learn.verify import check_gradient, taylor_test


@pytest.mark.parametrize("loss", ["logistic", "softmax", "squares"])
def test_decay_value_and_gradient(loss):
    rng = np.random.default_rng(0)
    n, d = 9, 4
    labels = {"logistic": rng.integers(0, 2, n), "softmax": rng.integers(0, 3, n),
              "squares": rng.standard_normal(n)}[loss]
    plain = LinearHeadLoss(labels, d, loss)
    lam = 0.37
    term = LinearHeadLoss(labels, d, loss, weight_decay=lam)
    y = rng.standard_normal((n, d + 2))
    p = term.init_params(1) + 0.3 * rng.standard_normal(term.n_params)
    a, b = plain.value_and_grad(y, p), term.value_and_grad(y, p)
    W = term.head(p)[0]
    assert b.value == pytest.approx(a.value + 0.5 * lam * np.sum(W * W), rel=1e-14)
    np.testing.assert_array_equal(b.ybar, a.ybar)  # the penalty does not read the states
    diff = b.pbar - a.pbar
    np.testing.assert_allclose(diff[:W.size], lam * W.ravel(), rtol=1e-14)
    assert np.all(diff[W.size:] == 0)  # the bias is not penalized

    def f(q):
        r = term.value_and_grad(y, q)
        return r.value, r.pbar
    res = check_gradient(f, p, seed=2)
    assert res.passed and res.usable >= 4, str(res)
    # the Hessian of the penalty: the gradient's change is linear with slope penalty_hvp
    v = rng.standard_normal(p.size)
    hv = term.penalty_hvp(p, v)
    np.testing.assert_allclose(hv[:W.size], lam * v[:W.size], rtol=1e-14)
    assert np.all(hv[W.size:] == 0)
    assert taylor_test(lambda q: 0.5 * lam * np.sum(term.head(q)[0] ** 2), p, v,
                       float(diff @ v)).passed


def test_decay_in_the_classifier_gradient():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((12, 3)), rng.integers(0, 3, 12)
    prob = NeuralODEClassifier(x, y, augment=1, loss="softmax", width=4, nt=3)
    theta = prob.init_params(0) + 0.2 * rng.standard_normal(prob.n_params)
    j0 = prob.objective(theta)
    prob.terminal.weight_decay = 0.5
    W = prob.unpack(theta)["W"]
    assert prob.objective(theta) == pytest.approx(j0 + 0.25 * np.sum(W * W), rel=1e-13)
    res = check_gradient(prob.objective_and_gradient, theta, seed=4)
    assert res.passed and res.usable >= 4, str(res)


def test_decay_default_and_arguments():
    labels = np.array([0, 1, 2, 1])
    term = LinearHeadLoss(labels, 3)
    assert term.weight_decay == 0.0
    p = term.init_params(0)
    assert np.all(term.penalty_hvp(p, np.ones_like(p)) == 0)
    with pytest.raises(ValueError, match="weight_decay"):
        LinearHeadLoss(labels, 3, weight_decay=-1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        LinearHeadLoss(labels, 3, fit_head=False, weight_decay=0.1)
