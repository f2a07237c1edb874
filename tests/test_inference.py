"""Inference on new data under one name (push_forward), seeds (None = fresh entropy), the
flow's input map, and the scikit-learn estimator."""
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import ocp_learn as ol
from ocp_learn.datasets import rings
from ocp_learn.errors import check_rng
from ocp_learn.problems import (ContinuousNormalizingFlow, NeuralODEClassifier,
                                ViscousClassifier, mfg_preset)
from ocp_learn.problems.estimator import NeuralODEClassifierEstimator

X, Y = rings(30, seed=0)
XNEW = np.random.default_rng(3).standard_normal((6, 2))


def point(prob, seed=1, scale=0.3):
    return prob.init_params(0) + scale * np.random.default_rng(seed).standard_normal(prob.n_params)


# --- seeds ---------------------------------------------------------------------------------
def test_check_rng_none_is_fresh_entropy():
    a, b = check_rng(None).standard_normal(4), check_rng(None).standard_normal(4)
    assert not np.array_equal(a, b)
    assert np.array_equal(check_rng(3).standard_normal(4), check_rng(3).standard_normal(4))
    g = np.random.default_rng(0)
    assert check_rng(g) is g
    with pytest.raises(TypeError, match=r"seed must be a non-negative int, a numpy.random"):
        check_rng(-1)


def test_flow_and_game_samples_are_fresh_unless_seeded():
    flow = ContinuousNormalizingFlow(X, width=4, nt=2)
    th = point(flow, scale=0.1)
    assert not np.array_equal(flow.sample(th, 4), flow.sample(th, 4))
    assert np.array_equal(flow.sample(th, 4, seed=2), flow.sample(th, 4, seed=2))
    game = mfg_preset("ot", n_samples=8, nt=2)
    th = point(game, scale=0.1)
    assert not np.array_equal(game.sample(th, 4), game.sample(th, 4))
    s = game.sample(th, 4, seed=5, trajectory=True)
    assert s.shape == (3, 4, 2) and np.array_equal(s[-1], game.sample(th, 4, seed=5))
    assert np.array_equal(s, game.push_forward(th, game.rho0.sample(4, 5), trajectory=True))


# --- one verb: push_forward ------------------------------------------------------------------
def test_ocp_push_forward_is_the_trajectory_without_running_cost_columns():
    prob = ol.OCP(ol.LinearModel(2), X, ol.LinearHeadLoss(Y, 2, "logistic"), nt=4,
                  running=[ol.QuadraticState(np.eye(2))])
    th = point(prob)
    path = prob.push_forward(th, XNEW, trajectory=True)
    assert path.shape == (5, 6, 2)
    np.testing.assert_array_equal(path, prob.trajectory(th, XNEW)[..., :2])
    np.testing.assert_array_equal(prob.push_forward(th, XNEW), path[-1])
    np.testing.assert_array_equal(prob.push_forward(th)[:3], prob.push_forward(th, X[:3]))
    fine = prob.push_forward(th, XNEW, nt=8, trajectory=True)
    np.testing.assert_array_equal(fine, prob.trajectory(th, XNEW, prob.time_grid(8))[..., :2])


def test_classifier_aliases():
    prob = NeuralODEClassifier(X, Y, augment=1, width=4, nt=3)
    th = point(prob)
    z = prob.push_forward(th, XNEW)
    assert z.shape == (6, 3)
    np.testing.assert_array_equal(prob.propagate(th, XNEW), z)
    np.testing.assert_array_equal(prob.propagate(th), prob.push_forward(th))
    p = prob.predict_proba(th, XNEW)
    assert p.shape == (6, 2) and np.allclose(p.sum(1), 1.0)


def test_viscous_push_forward_is_one_seeded_path_per_point():
    prob = ViscousClassifier(X, Y, width=4, nt=3, nu=0.1, n_predict=3)
    th = point(prob)
    np.testing.assert_array_equal(prob.push_forward(th, XNEW),
                                  prob.ensemble(th, XNEW, n_predict=1)[0])
    np.testing.assert_array_equal(prob.propagate(th, XNEW), prob.push_forward(th, XNEW))
    assert prob.push_forward(th, XNEW, trajectory=True).shape == (4, 6, 2)
    with pytest.raises(ValueError, match="nt must be None or 3"):
        prob.push_forward(th, XNEW, nt=6)


def test_flow_push_forward_transport_and_input_map():
    flow = ContinuousNormalizingFlow(X, width=4, nt=2, shift=[0.5, 0.0], scale=2.0)
    th = point(flow, scale=0.1)
    path = flow.push_forward(th, XNEW, nt=4, trajectory=True)
    np.testing.assert_array_equal(path, flow.transport(th, XNEW, nt=4))
    np.testing.assert_array_equal(path[0], (XNEW - [0.5, 0.0]) / 2.0)
    np.testing.assert_array_equal(flow.push_forward(th, XNEW, nt=4), path[-1])
    np.testing.assert_array_equal(flow.input_map(XNEW), flow.to_latent(XNEW))
    np.testing.assert_array_equal(flow.inverse_input_map(flow.input_map(XNEW)),
                                  flow.from_latent(flow.to_latent(XNEW)))
    np.testing.assert_allclose(flow.inverse_input_map(flow.input_map(XNEW)), XNEW, rtol=1e-15)


def test_game_trajectories_alias():
    game = mfg_preset("crowd", n_samples=8, nt=2, seed=1)
    th = point(game, scale=0.1)
    np.testing.assert_array_equal(game.trajectories(th, XNEW, nt=4),
                                  game.push_forward(th, XNEW, nt=4, trajectory=True))


def test_problem_without_samples_pushes_new_points_only():
    prob = NeuralODEClassifier(X, Y, augment=1, width=4, nt=3)
    th = point(prob)
    bare = prob.without_samples()
    assert bare.n_samples == 0 and prob.n_samples == 30 and bare.labels.shape == (0,)
    np.testing.assert_array_equal(bare.predict_proba(th, XNEW), prob.predict_proba(th, XNEW))
    for call in (lambda: bare.push_forward(th), lambda: bare.objective(th),
                 lambda: bare.trajectory(th)):
        with pytest.raises(ValueError, match="holds no samples"):
            call()


# --- the scikit-learn estimator --------------------------------------------------------------
def test_estimator_in_a_pipeline_and_cross_validation():
    x, y = rings(60, seed=1)
    labels = np.array(["disk", "ring"])[y.astype(int)]
    est = NeuralODEClassifierEstimator(width=4, nt=3, maxiter=25)
    pipe = make_pipeline(StandardScaler(), est).fit(x, labels)
    assert pipe.score(x, labels) > 0.9
    assert set(pipe.predict(x)) <= {"disk", "ring"}
    proba = pipe.predict_proba(x[:4])
    assert proba.shape == (4, 2) and np.allclose(proba.sum(1), 1.0)
    scores = cross_val_score(NeuralODEClassifierEstimator(width=4, nt=3, maxiter=25), x, labels,
                             cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.8
    assert clone(est).get_params()["width"] == 4 and not hasattr(clone(est), "theta_")


def test_estimator_three_classes_and_errors():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((45, 2))
    y = np.digitize(x[:, 0], [-0.4, 0.4]) * 10
    est = NeuralODEClassifierEstimator(width=4, nt=2, maxiter=30).fit(x, y)
    assert list(est.classes_) == [0, 10, 20] and est.predict_proba(x).shape == (45, 3)
    assert est.score(x, y) > 0.8 and est.decision_function(x).shape == (45, 3)
    assert est.problem_.n_samples == 0 and est.n_features_in_ == 2
    with pytest.raises(ValueError, match="at least two classes"):
        NeuralODEClassifierEstimator().fit(x, np.zeros(45))
    with pytest.raises(ValueError, match=r"y must have shape \(45,\)"):
        NeuralODEClassifierEstimator().fit(x, y[:3])
