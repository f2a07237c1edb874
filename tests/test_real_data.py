"""Real data sets (scikit-learn's digits, breast cancer, wine): splits, the exact
log-determinant of the density preprocessing, and the density and classification recipes on
small subsets."""
import dataclasses

import numpy as np
import pytest
from scipy.stats import multivariate_normal, norm

from ocp_learn.datasets.real import (LogitPreprocessing, Whitening, bits_per_dim, dequantize,
                                     load_real, standardize)
from ocp_learn.problems import NeuralODEClassifier
from ocp_learn.recipes.real_classification import (HeadDecayClassifier, mlp_hidden_for,
                                                   tune_classifier)
from ocp_learn.recipes.real_data import (DensityData, density_baselines, density_table,
                                         digits_density_data, flow_log_density, paired_gap,
                                         train_digits_flow)
from ocp_learn.verify import check_gradient

SIZES = {"digits": (1797, 64, 10), "breast_cancer": (569, 30, 2), "wine": (178, 13, 3)}


@pytest.mark.parametrize("name", sorted(SIZES))
def test_split_stratified_disjoint_reproducible(name):
    n, d, k = SIZES[name]
    s = load_real(name, 3)
    idx = [s.idx_train, s.idx_val, s.idx_test]
    assert sum(len(i) for i in idx) == n
    assert len(np.unique(np.concatenate(idx))) == n  # disjoint, covering
    assert s.dim == d and s.n_classes == k
    assert abs(len(s.idx_test) - 0.2 * n) <= 1 and abs(len(s.idx_val) - 0.2 * n) <= 1
    y = np.concatenate([s.y_train, s.y_val, s.y_test])
    overall = np.bincount(y, minlength=k) / n
    for part in (s.y_train, s.y_val, s.y_test):
        frac = np.bincount(part, minlength=k) / len(part)
        assert np.all(np.abs(frac - overall) <= 1.0 / len(part) + 1e-12)  # stratified
    again = load_real(name, 3)
    for a, b in zip(idx, [again.idx_train, again.idx_val, again.idx_test]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(s.x_train, again.x_train)
    assert not np.array_equal(load_real(name, 4).idx_test, s.idx_test)


def test_split_arguments_checked():
    with pytest.raises(ValueError, match="name"):
        load_real("iris")
    with pytest.raises(ValueError, match="val_size"):
        load_real("wine", val_size=0.5, test_size=0.5)
    fresh = [load_real("wine", None).idx_test for _ in range(2)]  # fresh entropy
    assert all(len(f) == len(fresh[0]) for f in fresh)


def test_standardize_uses_training_statistics():
    s, mean, std = standardize(load_real("wine", 0))
    np.testing.assert_allclose(s.x_train.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(s.x_train.std(0), 1, atol=1e-12)
    raw = load_real("wine", 0)
    np.testing.assert_allclose(s.x_test, (raw.x_test - mean) / std)


def test_dequantize_seeded():
    x = np.arange(12.0).reshape(3, 4)
    a, b = dequantize(x, 1), dequantize(x, 1)
    np.testing.assert_array_equal(a, b)
    assert np.all((a >= x) & (a < x + 1))


def test_logit_log_det_matches_finite_differences():
    T = LogitPreprocessing(0.05, levels=17)
    x = np.random.default_rng(0).uniform(0, 17, (5, 4))
    y, ld = T.forward(x)
    np.testing.assert_allclose(T.inverse(y), x, rtol=1e-12, atol=1e-12)
    h = 1e-6
    for i in range(len(x)):
        J = np.empty((4, 4))
        for j in range(4):
            e = np.zeros(4)
            e[j] = h
            J[:, j] = (T(x[i:i + 1] + e)[0] - T(x[i:i + 1] - e)[0]) / (2 * h)
        assert abs(np.linalg.slogdet(J)[1] - ld[i]) < 1e-6


def test_logit_transformed_gaussian_is_a_density_on_pixels():
    """``N(T(x)) |T'(x)|`` integrates to one over the pixel range ``[0, levels]``."""
    T = LogitPreprocessing(0.01, levels=17)
    x = np.linspace(0, 17, 200_001)[:, None]
    y, ld = T.forward(x)
    p = np.exp(norm.logpdf(y[:, 0], 0.3, 1.7) + ld)
    mass = np.sum((p[1:] + p[:-1]) / 2 * np.diff(x[:, 0]))
    # the Gaussian's mass outside T([0, levels]) is lost
    lo, hi = T(np.array([[0.0], [17.0]]))[:, 0]
    assert abs(mass - (norm.cdf(hi, 0.3, 1.7) - norm.cdf(lo, 0.3, 1.7))) < 1e-8


def test_whitening_log_det_and_preprocessing_chain():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((3, 3))
    y = rng.standard_normal((400, 3)) @ A.T + 2.0
    W = Whitening(y, ridge=0.0)
    u, ld = W.forward(y)
    np.testing.assert_allclose(np.cov(u, rowvar=False, bias=True), np.eye(3), atol=1e-10)
    np.testing.assert_allclose(W.inverse(u), y, atol=1e-10)
    # N(0, I) in u is the Gaussian fitted to y: the log-determinant is exact
    direct = multivariate_normal(y.mean(0), np.cov(y, rowvar=False, bias=True)).logpdf(y)
    np.testing.assert_allclose(norm.logpdf(u).sum(1) + ld, direct, rtol=1e-10)


def test_density_data_log_det_is_that_of_the_whole_map():
    data = digits_density_data(0, whiten=True)
    T, W = data.preprocessing
    x = data.to_pixels(data.y_test[:3])
    assert np.all((x >= 0) & (x < 17))
    y1, ld1 = T.forward(x)
    _, ld2 = W.forward(y1)
    np.testing.assert_allclose(ld1 + ld2, data.log_det_test[:3], rtol=1e-10)
    assert bits_per_dim(64 * np.log(2), 64) == pytest.approx(1.0)


def _small(data, n=120):
    return DensityData(data.y_train[:n], data.y_val[:60], data.y_test[:60],
                       data.log_det_train[:n], data.log_det_val[:60], data.log_det_test[:60],
                       data.preprocessing, data.labels_test[:60], data.pixels_train[:n])


def test_density_baselines_and_table_on_a_subset():
    data = _small(digits_density_data(0))
    base = density_baselines(data, components=(1, 2), covariance_types=("diag",),
                             reg_covars=(0.1,), bandwidths=(0.5, 1.0))
    assert set(base) == {"gaussian", "gmm", "kde"}
    assert base["kde"]["params"]["bandwidth"] in (0.5, 1.0)
    rows = density_table({k: v["log_density_test"] for k, v in base.items()}, data.dim)
    assert {r["model"] for r in rows} == set(base)
    assert all(np.isfinite(r["test_nll"]) and r["test_nll_se"] > 0 for r in rows)
    gap, se = paired_gap(base["gmm"]["log_density_test"], base["kde"]["log_density_test"])
    assert gap == pytest.approx(np.mean(-base["gmm"]["log_density_test"])
                                - np.mean(-base["kde"]["log_density_test"]))
    assert se > 0


def test_tiny_flow_trains_on_digits():
    data = _small(digits_density_data(0), n=64)
    prob, theta, info = train_digits_flow(data, width=4, nt=2, maxiter=3, backend="numpy",
                                          val_every=1)
    assert info["iterations"] <= 3 and np.isfinite(info["val_nll"])
    lp = flow_log_density(prob, theta, data.y_test, data.log_det_test)
    assert lp.shape == (60,) and np.all(np.isfinite(lp))
    assert float(-lp.mean()) == pytest.approx(
        -np.mean(prob.log_density(theta, data.y_test) + data.log_det_test))


def test_tiny_flow_with_redrawn_noise():
    data = _small(digits_density_data(1), n=48)
    y, ld = data.preprocess(data.to_pixels(data.y_train[:2]))
    np.testing.assert_allclose(y, data.y_train[:2], atol=1e-8)
    np.testing.assert_allclose(ld, data.log_det_train[:2], rtol=1e-10)
    prob, theta, info = train_digits_flow(data, width=4, nt=2, maxiter=2, backend="numpy",
                                          redraw_every=1, val_every=1)
    assert info["redraw_every"] == 1 and np.isfinite(info["val_nll"])
    with pytest.raises(ValueError, match="pixels_train"):
        train_digits_flow(dataclasses.replace(data, pixels_train=None), width=4, nt=2,
                          maxiter=1, backend="numpy", redraw_every=1)


@pytest.mark.parametrize("method,grid", [
    ("logreg", (0.1, 1.0)), ("mlp", ((1e-2, 50),)), ("svc", ((1.0, "scale"),)),
    ("node_lbfgs", (1e-3,)), ("node_gn", (1e-3,)), ("node_lbfgs", ((1e-3, 1e-2),)),
    ("node_gn", ((1e-3, 1e-2),))])
def test_classifier_selection_on_a_subset(method, grid):
    s, _, _ = standardize(load_real("wine", 0))
    r = tune_classifier(method, s, grid, node_kwargs=dict(augment=1, width=4, nt=2), maxiter=3,
                        check_every=1, mlp_hidden=mlp_hidden_for(100, s.dim, s.n_classes))
    assert 0 <= r["test_accuracy"] <= 1 and r["val_accuracy"] >= 0
    assert r["n_params"] > 0
    if method.startswith("node"):  # (tikhonov, head decay, iterations)
        assert r["param"][:2] == ((grid[0], 0.0) if np.isscalar(grid[0]) else grid[0])


def test_kinetic_grid_entries_and_listed_checks():
    """``(tikhonov, head_decay, kinetic)`` entries add the transport cost to the objective
    (a larger kinetic weight gives a larger objective at the same parameters) and report
    the weight; ``check_every`` as a list checks at those iteration counts only."""
    from ocp_learn.problems import NeuralODEClassifier
    s, _, _ = standardize(load_real("wine", 0))
    r = tune_classifier("node_lbfgs", s, ((1e-3, 1e-3, 0.1),),
                        node_kwargs=dict(augment=1, width=4, nt=2), maxiter=4, check_every=[2])
    assert r["param"][:3] == (1e-3, 1e-3, 0.1) and r["param"][3] in (2, 4)
    J = []
    for kin in (0.0, 1.0):
        p = NeuralODEClassifier(s.x_train, s.y_train, loss="softmax", augment=1, width=4,
                                nt=2, kinetic=kin)
        J.append(p.objective(p.init_params(0) + 0.5))
    assert J[1] > J[0]


def test_the_kinetic_option_is_the_kinetic_energy_running_cost_of_the_field():
    """``kinetic=kappa`` is :class:`KineticEnergy` of the classifier's own field after the
    given running costs: objective and gradient equal the explicit construction to
    rounding; the gradient passes the Taylor test (and fails it with the cost's gradient
    left out); predictions do not depend on the weight; the weight is saved and reloaded;
    a negative weight and the viscous classifier are refused by name."""
    from ocp_learn.costs import KineticEnergy
    from ocp_learn.models import SingleLayerNet
    from ocp_learn.problems import NeuralODEClassifier, ViscousClassifier
    from ocp_learn.verify import taylor_test

    s, _, _ = standardize(load_real("wine", 1))
    kw = dict(loss="softmax", augment=2, width=5, nt=3, T=2.0, tikhonov=1e-3)
    p = NeuralODEClassifier(s.x_train, s.y_train, kinetic=0.3, **kw)
    m = SingleLayerNet(s.dim + 2, 5, init_scale=0.1)
    q = NeuralODEClassifier(s.x_train, s.y_train, model=m, running=[KineticEnergy(m, 0.3)],
                            **kw)
    th = p.init_params(0) + 0.3 * np.random.default_rng(1).standard_normal(p.n_params)
    (f, g), (fq, gq) = p.objective_and_gradient(th), q.objective_and_gradient(th)
    assert abs(f - fq) <= 1e-14 * abs(f)
    np.testing.assert_allclose(g, gq, rtol=0, atol=1e-14 * np.abs(g).max())
    v = np.random.default_rng(2).standard_normal(p.n_params)
    assert taylor_test(p.objective, th, v, g @ v).passed
    plain = NeuralODEClassifier(s.x_train, s.y_train, **kw)
    g_without = plain.objective_and_gradient(th)[1]
    assert not taylor_test(p.objective, th, v, g_without @ v).passed
    np.testing.assert_array_equal(p.predict(th, s.x_test), plain.predict(th, s.x_test))
    assert p.settings["kinetic"] == 0.3 and "kinetic" not in plain.settings
    again = NeuralODEClassifier.from_settings(p.settings)
    assert again.settings["kinetic"] == 0.3
    with pytest.raises(ValueError, match="kinetic"):
        NeuralODEClassifier(s.x_train, s.y_train, kinetic=-1.0, **kw)
    with pytest.raises(ValueError, match="kinetic"):
        ViscousClassifier(s.x_train, s.y_train, kinetic=0.1, loss="softmax", width=4, nt=2)


def test_cv_folds_partition_the_pooled_parts_and_standardize_each_fold():
    from ocp_learn.recipes.real_classification import cv_folds, pooled, refit_split
    raw = load_real("wine", 3)
    x, y = pooled(raw)
    parts = cv_folds(raw, 3)
    assert len(parts) == 3
    # the validation parts partition the pooled rows, class proportions kept (stratified)
    sizes = [len(f.y_val) for f in parts]
    assert sum(sizes) == len(y) and max(sizes) - min(sizes) <= 1
    for f in parts:
        assert len(f.y_train) + len(f.y_val) == len(y)
        np.testing.assert_allclose(f.x_train.mean(axis=0), 0.0, atol=1e-12)
        np.testing.assert_allclose(f.x_train.std(axis=0), 1.0, atol=1e-12)
        assert abs(np.mean(f.y_val == 0) - np.mean(y == 0)) < 0.05
        np.testing.assert_array_equal(f.y_test, raw.y_test)
    # every pooled row is validated exactly once: compare the raw rows via the labels' counts
    assert sum(np.bincount(f.y_val, minlength=3) for f in parts).tolist() == \
        np.bincount(y, minlength=3).tolist()
    r = refit_split(raw)
    assert len(r.y_train) == len(y) and len(r.y_val) == 0
    np.testing.assert_allclose(r.x_train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(r.x_test, (raw.x_test - x.mean(0)) / x.std(0), rtol=1e-12)
    with pytest.raises(ValueError, match="folds"):
        cv_folds(raw, 1)


def test_cross_validated_choice_equals_scikit_learn_and_refits_on_the_pooled_parts():
    """``folds=k``: the chosen ``C`` is the one of best mean fold accuracy (each fold
    standardized with its own training statistics, computed here independently with a
    scikit-learn pipeline), and the reported test accuracy is that of the refit on the
    training and validation parts pooled."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from ocp_learn.recipes.real_classification import pooled
    raw = load_real("breast_cancer", 2)
    grid = (0.001, 0.1, 10.0)
    r = tune_classifier("logreg", raw, grid, folds=3)
    x, y = pooled(raw)
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=raw.seed)
    means = [cross_val_score(make_pipeline(StandardScaler(),
                                           LogisticRegression(C=c, max_iter=5000)),
                             x, y, cv=cv).mean() for c in grid]
    assert r["param"] == grid[int(np.argmax(means))]
    assert r["val_accuracy"] == pytest.approx(max(means), abs=1e-12)
    final = make_pipeline(StandardScaler(), LogisticRegression(C=r["param"], max_iter=5000))
    assert r["test_accuracy"] == pytest.approx(final.fit(x, y).score(raw.x_test, raw.y_test))
    # the neural ODE: the chosen iteration count is a planned check point every fold has
    r = tune_classifier("node_lbfgs", raw, ((1e-3, 1e-2),), folds=2, maxiter=4,
                        check_every=[2], node_kwargs=dict(augment=1, width=4, nt=2))
    assert r["param"][:2] == (1e-3, 1e-2) and r["param"][2] in (2, 4)
    assert 0.5 <= r["test_accuracy"] <= 1


def test_head_decay_classifier_objective_and_gauss_newton_product():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((15, 3)), rng.integers(0, 3, 15)
    kw = dict(augment=1, loss="softmax", width=4, nt=3, tikhonov=1e-2)
    plain, lam = NeuralODEClassifier(x, y, **kw), 0.3
    prob = HeadDecayClassifier(x, y, head_decay=lam, **kw)
    theta = prob.init_params(0) + 0.2 * rng.standard_normal(prob.n_params)
    W = prob.unpack(theta)["W"]
    assert prob.objective(theta) == pytest.approx(plain.objective(theta)
                                                  + 0.5 * lam * np.sum(W * W), rel=1e-13)
    res = check_gradient(prob.objective_and_gradient, theta, seed=1)
    assert res.passed and res.usable >= 4, str(res)
    v = rng.standard_normal(prob.n_params)
    extra = np.zeros(prob.n_params)
    prob.layout.unpack(extra)["terminal"][:W.size] = lam * prob.unpack(v)["W"].ravel()
    np.testing.assert_allclose(prob.gauss_newton_product(theta, v),
                               plain.gauss_newton_product(theta, v) + extra, rtol=1e-12,
                               atol=1e-14)
    # the GGN model is symmetric positive semidefinite with the penalty too
    w = rng.standard_normal(prob.n_params)
    op = prob.gauss_newton_operator(theta)
    assert op.matvec(v) @ w == pytest.approx(v @ op.matvec(w), rel=1e-10)
    assert v @ op.matvec(v) > 0
    assert HeadDecayClassifier(x, y, **kw).objective(theta) == plain.objective(theta)
    with pytest.raises(ValueError, match="head_decay"):
        HeadDecayClassifier(x, y, head_decay=-1.0, **kw)


def test_mlp_hidden_matches_parameter_count():
    h = mlp_hidden_for(2950, 64, 10)
    assert abs((64 + 1) * h + (h + 1) * 10 - 2950) <= 75
    with pytest.raises(ValueError, match="method"):
        tune_classifier("forest", load_real("wine", 0), (1,))


def test_grid_presets_cover_every_method_and_unknown_keys_are_refused():
    """Both grid presets give every classifier a grid whose values
    :func:`tune_classifier` takes; a grid for an unknown method is an error naming it."""
    from ocp_learn.recipes.real_classification import (CLASSIFIERS, _node_setting,
                                                       classification_runs, default_grids,
                                                       fine_grids)
    for g in (default_grids(), fine_grids()):
        assert set(g) == set(CLASSIFIERS) and all(len(v) > 0 for v in g.values())
        for p in g["node_lbfgs"]:
            (tik, decay, kin), n = _node_setting(p)
            assert n in (2, 3) and min(tik, decay, kin) >= 0
        assert all(len(p) == 2 for m in ("mlp", "svc") for p in g[m])
    with pytest.raises(ValueError, match="grids has keys \\['node'\\]"):
        classification_runs("wine", seeds=(0,), grids={"node": (1e-3,)})
