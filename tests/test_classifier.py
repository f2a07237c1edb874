"""Neural-ODE classifier (MATH C1), data sets, Figure 1 command, viscous variant (C2)."""
import json

import numpy as np
import pytest

import ocp_learn as ol
from ocp_learn.cli import main
from ocp_learn.datasets import get_dataset, moons, rings, spirals, train_test_split
from ocp_learn.optim import lbfgs
from ocp_learn.problems import NeuralODEClassifier, ViscousClassifier
from ocp_learn.problems.viscous import robustness_curve
from ocp_learn.verify import check_gradient, taylor_test


# --- data sets ------------------------------------------------------------------
@pytest.mark.parametrize("fn", [rings, moons, spirals])
def test_datasets_are_seeded_balanced_and_validated(fn):
    x, y = fn(101, seed=4)
    assert x.shape == (101, 2) and y.shape == (101,) and x.dtype == np.float64
    assert set(np.unique(y)) == {0, 1} and abs(np.sum(y == 1) - np.sum(y == 0)) <= 1
    x2, y2 = fn(101, seed=4)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(x, fn(101, seed=5)[0])
    assert np.max(np.abs(x)) < 3.5
    with pytest.raises(ValueError, match="n must be"):
        fn(0)
    with pytest.raises(TypeError, match="seed"):
        fn(10, seed="a")


def test_rings_geometry_and_split():
    x, y = rings(400, seed=0)
    r = np.linalg.norm(x, axis=1)
    assert r[y == 0].max() <= 1.0 and r[y == 1].min() >= 1.3
    xtr, ytr, xte, yte = train_test_split(x, y, 0.5, seed=1)
    assert len(ytr) == len(yte) == 200
    assert not set(map(tuple, xtr)) & set(map(tuple, xte))
    with pytest.raises(ValueError, match="data must be one of"):
        get_dataset("circles")


# --- the classifier problem ------------------------------------------------------
def small(loss="logistic", augment=1, time_param=None, n=14, seed=0, **kw):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2))
    y = {"logistic": rng.integers(0, 2, n), "softmax": rng.integers(0, 3, n),
         "squares": rng.standard_normal(n)}[loss]
    return NeuralODEClassifier(x, y, augment=augment, loss=loss, width=5, nt=4,
                               time_param=time_param, smoothness=1e-2, **kw), x, y


@pytest.mark.parametrize("loss", ["logistic", "softmax", "squares"])
@pytest.mark.parametrize("time_param", [None, ("piecewise_constant", 2), ("piecewise_linear", 3)],
                         ids=["const", "pwc", "pwl"])
def test_classifier_gradient_taylor(loss, time_param):
    prob, _, _ = small(loss, time_param=time_param)
    theta = prob.init_params(1) + 0.2 * np.random.default_rng(2).standard_normal(prob.n_params)
    res = check_gradient(prob.objective_and_gradient, theta, seed=3)
    assert res.passed and res.usable >= 4, str(res)


def test_classifier_layout_padding_and_helpers():
    prob, x, y = small("softmax", augment=2)
    assert prob.dim == 4 and prob.x0.shape == (14, 4) and np.all(prob.x0[:, 2:] == 0)
    theta = prob.init_params(0)
    P = prob.unpack(theta)
    assert P["W"].shape == (3, 4) and P["mu"].shape == (3,)
    assert prob.n_params == 1 * ol.SingleLayerNet(4, 5).n_params + 3 * 4 + 3
    z = prob.propagate(theta, x)
    np.testing.assert_allclose(z, prob.trajectory(theta)[-1][:, :4], rtol=1e-14)
    r = prob.decision_function(theta, x)
    np.testing.assert_allclose(r, prob.residuals(theta), rtol=1e-14)
    pr = prob.predict_proba(theta, x)
    np.testing.assert_allclose(pr.sum(axis=1), 1.0)
    np.testing.assert_array_equal(prob.predict(theta, x), np.argmax(pr, axis=1))
    assert prob.accuracy(theta) == prob.accuracy(theta, x, y)
    assert "augment=2" in repr(prob)


def test_classifier_accepts_any_model_and_rejects_bad_input():
    x, y = rings(30, seed=0)
    prob = NeuralODEClassifier(x, y, augment=1, model=ol.LinearModel(3), nt=3, integrator="heun")
    assert check_gradient(prob.objective_and_gradient, prob.init_params(0) + 0.1, seed=1).passed
    with pytest.raises(ValueError, match="state_dim"):
        NeuralODEClassifier(x, y, augment=1, model=ol.LinearModel(2))
    with pytest.raises(ValueError, match="labels must have one entry"):
        NeuralODEClassifier(x, y[:-1])
    with pytest.raises(ValueError, match="augment"):
        NeuralODEClassifier(x, y, augment=-1)
    with pytest.raises(ValueError, match="tikhonov"):
        NeuralODEClassifier(x, y, tikhonov=-1.0)
    with pytest.raises(ValueError, match="0/1"):
        NeuralODEClassifier(x, y + 1, loss="logistic")
    prob = NeuralODEClassifier(x, y, width=3, nt=2)
    with pytest.raises(ValueError, match="2 columns"):
        prob.predict(prob.init_params(0), np.zeros((3, 3)))
    reg, _, _ = small("squares")
    with pytest.raises(ValueError, match="classification loss"):
        reg.accuracy(reg.init_params(0))


def test_augmentation_separates_enclosed_class_small():
    """Fast version of the Figure 1 claim: q = 1 separates the disk from the ring,
    q = 0 cannot (an ODE flow of the plane keeps the disk enclosed)."""
    x, y = rings(400, seed=0)
    xtr, ytr, xte, yte = train_test_split(x, y, 0.5, seed=0)
    acc = {}
    for q in (0, 1):
        prob = NeuralODEClassifier(xtr, ytr, augment=q, width=8, nt=6)
        res = lbfgs(prob, maxiter=120, progress=False)
        acc[q] = prob.accuracy(res.x, xte, yte)
    assert acc[1] >= 0.97
    assert acc[0] < acc[1]


@pytest.mark.slow
def test_figure1_acceptance_1000_train_1000_test(tmp_path):
    """Issue 4 acceptance: augmented model, >= 1000 train and >= 1000 test points, >= 99 %."""
    main(["classify", "--data", "rings", "--augment", "1", "--out", str(tmp_path)])
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["n_train"] >= 1000 and m["n_test"] >= 1000
    assert m["test_accuracy"] >= 0.99
    assert m["baseline"]["augment"] == 0 and m["baseline"]["test_accuracy"] < m["test_accuracy"]
    assert (tmp_path / "figure.png").stat().st_size > 10000


# --- command line ------------------------------------------------------------------
def test_cli_classify_writes_figure_and_metrics(tmp_path, capsys):
    rc = main(["classify", "--data", "moons", "--augment", "1", "--n-train", "60", "--n-test", "40",
               "--maxiter", "5", "--width", "4", "--nt", "2", "--optimizer", "gauss-newton",
               "--time-param", "pwl:2", "--smoothness", "0.01", "--out", str(tmp_path)])
    assert rc == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    for k in ("train_accuracy", "test_accuracy", "objective", "n_params", "iterations", "seconds",
              "optimizer"):
        assert k in m and k in m["baseline"]
    assert m["optimizer"] == "gauss-newton" and m["n_train"] == 60 and m["n_test"] == 40
    assert m["iterations"] <= 5 and 0 <= m["test_accuracy"] <= 1
    assert (tmp_path / "figure.png").stat().st_size > 1000
    assert "test_accuracy" in capsys.readouterr().out


def test_cli_classify_viscosity_adds_perturbed_accuracy(tmp_path):
    rc = main(["classify", "--data", "rings", "--augment", "1", "--n-train", "40", "--n-test", "30",
               "--maxiter", "3", "--width", "4", "--nt", "3", "--viscosity", "0.02",
               "--no-baseline", "--optimizer", "adam", "--out", str(tmp_path)])
    assert rc == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    pa = m["perturbed_accuracy"]
    assert pa["radius"][0] == 0.0 and len(pa["radius"]) == len(pa["accuracy"]) >= 4
    assert "baseline" not in m and m["viscosity"] == 0.02


def test_cli_classify_rejects_bad_time_param(tmp_path):
    with pytest.raises(ValueError, match="time-param"):
        main(["--debug", "classify", "--time-param", "spline", "--out", str(tmp_path)])


# --- viscous variant (MATH C2) -------------------------------------------------------------
def viscous(nu=0.1, n=12, **kw):
    x, y = rings(n, seed=2)
    return ViscousClassifier(x, y, nu=nu, augment=1, width=4, nt=4, n_paths=2, **kw), x, y


def test_viscous_zero_noise_equals_euler_classifier():
    prob, x, y = viscous(nu=0.0)
    det = NeuralODEClassifier(np.tile(x, (2, 1)), np.tile(y, 2), augment=1, width=4, nt=4,
                              integrator="euler")
    theta = det.init_params(0)
    f1, g1 = prob.objective_and_gradient(theta)
    f2, g2 = det.objective_and_gradient(theta)
    assert f1 == f2
    np.testing.assert_array_equal(g1, g2)


def test_viscous_is_euler_maruyama():
    prob, x, _ = viscous(nu=0.3)
    theta = prob.init_params(0)
    z = prob.pad(np.tile(x, (2, 1)))
    xi, h = prob.model.noise, prob.T / prob.nt
    nodes = prob.unpack(theta)["dynamics"]
    for k in range(prob.nt):
        z = z + h * prob.drift.rhs(z, k * h, nodes[0]) + np.sqrt(2 * 0.3 * h) * xi[k]
    np.testing.assert_allclose(prob.propagate(theta), z, rtol=1e-13, atol=1e-14)


def test_viscous_gradient_exact_for_fixed_noise_and_dropped_noise_caught():
    prob, _, _ = viscous(nu=0.2)
    theta = prob.init_params(1) + 0.2 * np.random.default_rng(0).standard_normal(prob.n_params)
    res = check_gradient(prob.objective_and_gradient, theta, seed=4)
    assert res.passed, str(res)
    # a mini-batch gradient uses the noise rows of the batch
    batch = np.array([1, 4, 7, 20])
    v = np.random.default_rng(1).standard_normal(theta.size)
    _, g = prob.objective_and_gradient(theta, batch)
    assert taylor_test(lambda t: prob.objective(t, batch), theta, v, g @ v).passed
    # the deterministic path's gradient is NOT the gradient of the noisy objective
    det, _, _ = viscous(nu=0.0)
    _, gdet = det.objective_and_gradient(theta)
    bad = taylor_test(lambda t: prob.objective(t), theta, v, gdet @ v)
    assert not bad.passed


def test_viscous_ensemble_prediction_is_seeded_and_averaged():
    prob, x, y = viscous(nu=0.1, n_predict=16)
    theta = prob.init_params(0)
    p1, p2 = prob.predict_proba(theta, x), prob.predict_proba(theta, x)
    np.testing.assert_array_equal(p1, p2)
    np.testing.assert_allclose(p1.sum(axis=1), 1.0)
    Z = prob.ensemble(theta, x)
    assert Z.shape == (16, len(x), 3) and np.std(Z[:, 0, 0]) > 0
    np.testing.assert_array_equal(prob.predict(theta, x), np.argmax(p1, axis=1))
    other = prob.ensemble(theta, x, seed=5)
    assert not np.array_equal(Z, other)
    curve = robustness_curve(prob, theta, x, y, radii=(0.0, 0.5), n_draws=2, seed=0)
    assert curve["radius"] == [0.0, 0.5] and all(0 <= a <= 1 for a in curve["accuracy"])
    # the training noise is restored after prediction
    f = prob.objective(theta)
    prob.predict(theta, x)
    assert prob.objective(theta) == f


def test_viscous_rejects_other_integrators_and_bad_nu():
    x, y = rings(10, seed=0)
    with pytest.raises(ValueError, match="euler"):
        ViscousClassifier(x, y, nu=0.1, integrator="rk4")
    with pytest.raises(ValueError, match="nu"):
        ViscousClassifier(x, y, nu=-0.1)
    with pytest.raises(ValueError, match="n_paths"):
        ViscousClassifier(x, y, n_paths=0)
