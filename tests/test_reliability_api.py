"""Reliability of the library's API: checkpoints know their run, damaged checkpoints are
named, inputs outside a function's domain are refused with the argument's name, and the
potential's adjoint needs no (d+1) x (d+1) matrix."""
import json
import os
import tracemalloc

import numpy as np
import pytest

import ocp_learn as ol
from ocp_learn.costs.terminal import MeanOfColumns
from ocp_learn.datasets import rings
from ocp_learn.datasets.densities import GaussianMixture, gaussian
from ocp_learn.errors import CheckpointError
from ocp_learn.models import PotentialResNet
from ocp_learn.optim import adam, gauss_newton, lbfgs, lbfgs_resampled
from ocp_learn.optim import checkpoint as ckpt
from ocp_learn.optim.checkpoint import load_checkpoint, save_checkpoint
from ocp_learn.problems import NeuralODEClassifier
from ocp_learn.problems.cnf import ContinuousNormalizingFlow
from ocp_learn.problems.mfg import mfg_preset
from ocp_learn.verify import convergence_order

from toy_problems import Quadratic


def classifier(seed=5, nt=3, width=4):
    x, y = rings(24, seed=seed)
    return NeuralODEClassifier(x, y, augment=1, width=width, nt=nt, tikhonov=1e-3)


OPTIMIZERS = {
    "lbfgs": lambda p, **kw: lbfgs(p, progress=False, **{"maxiter": 2, **kw}),
    "gauss_newton": lambda p, **kw: gauss_newton(p, progress=False, **{"maxiter": 2, **kw}),
    "adam": lambda p, **kw: adam(p, progress=False, **{"maxiter": 2, **kw}),
}


# --- 1. a checkpoint knows its problem and run ----------------------------------------------
@pytest.mark.parametrize("make", [classifier,
                                  lambda: ContinuousNormalizingFlow(np.ones((6, 2)), width=4,
                                                                    nt=2),
                                  lambda: mfg_preset("ot", dim=2, n_samples=8)])
def test_problem_fingerprint_is_json_and_names_the_settings(make):
    fp = make().fingerprint()
    assert json.loads(json.dumps(fp)) == fp
    for key in ("kind", "class", "settings", "n_params", "nt", "T", "integrator", "strategy",
                "dtype", "samples"):
        assert key in fp
    assert fp == make().fingerprint()  # deterministic


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_resume_refuses_another_data_set_of_the_same_size(tmp_path, name):
    ck = tmp_path / "ck.npz"
    OPTIMIZERS[name](classifier(), checkpoint=ck, checkpoint_every=1)
    other = classifier(seed=6)  # same sizes, other samples
    with pytest.raises(CheckpointError, match=r"problem\.samples: saved array") as info:
        OPTIMIZERS[name](other, maxiter=4, checkpoint=ck, resume=True)
    assert str(ck) in str(info.value)
    assert any(k == "problem.labels" for k, _, _ in info.value.differences)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_resume_refuses_another_time_grid_with_the_same_parameter_count(tmp_path, name):
    ck = tmp_path / "ck.npz"
    OPTIMIZERS[name](classifier(nt=3), checkpoint=ck, checkpoint_every=1)
    with pytest.raises(CheckpointError, match=r"problem\.nt: saved 3, current 4"):
        OPTIMIZERS[name](classifier(nt=4), maxiter=4, checkpoint=ck, resume=True)


@pytest.mark.parametrize("name, setting", [("lbfgs", {"gtol": 1e-3}),
                                           ("gauss_newton", {"cg_maxiter": 7}),
                                           ("adam", {"lr": 0.5})])
def test_resume_refuses_other_optimizer_settings(tmp_path, name, setting):
    ck = tmp_path / "ck.npz"
    OPTIMIZERS[name](classifier(), checkpoint=ck, checkpoint_every=1)
    (key, value), = setting.items()
    with pytest.raises(CheckpointError, match=rf"optimizer\.{key}: saved .*, current {value}"):
        OPTIMIZERS[name](classifier(), maxiter=4, checkpoint=ck, resume=True, **setting)


def test_resampled_resume_refuses_other_settings(tmp_path):
    ck = tmp_path / "ck.npz"
    kw = dict(stages=((4, 6),), seed=3, checkpoint=ck)
    draw = lambda n, rng: rng.standard_normal((n, 1))  # noqa: E731
    lbfgs_resampled(Quadratic(p=4, seed=1), draw, resample_every=3, **kw)
    with pytest.raises(CheckpointError, match=r"optimizer\.resample_every: saved 3, current 2"):
        lbfgs_resampled(Quadratic(p=4, seed=1), draw, resample_every=2, resume=True, **kw)


def test_a_resumed_run_of_the_same_problem_continues(tmp_path):
    ck = tmp_path / "ck.npz"
    lbfgs(classifier(), maxiter=2, checkpoint=ck, checkpoint_every=1, progress=False)
    res = lbfgs(classifier(), maxiter=4, checkpoint=ck, resume=True, progress=False)
    assert res.nit >= 2 and np.all(np.isfinite(res.x))


@pytest.mark.parametrize("name", ["lbfgs", "adam", "gauss_newton"])
def test_a_finished_checkpoint_resumes_to_its_own_result(tmp_path, name):
    ck = tmp_path / "ck.npz"
    kw = {"lbfgs": dict(maxiter=200, gtol=1e-3), "adam": dict(maxiter=5),
          "gauss_newton": dict(maxiter=30, gtol=1e-3)}[name]
    full = OPTIMIZERS[name](classifier(), checkpoint=ck, checkpoint_every=1, **kw)
    again = OPTIMIZERS[name](classifier(), checkpoint=ck, resume=True, **kw)
    np.testing.assert_array_equal(again.x, full.x)
    assert again.nit == full.nit and again.success == full.success
    assert again.fun == full.fun


def test_a_converged_lbfgs_checkpoint_keeps_its_result_with_a_larger_maxiter(tmp_path):
    ck = tmp_path / "ck.npz"
    full = lbfgs(classifier(), maxiter=200, gtol=1e-3, checkpoint=ck, progress=False)
    assert full.success and full.nit < 200
    again = lbfgs(classifier(), maxiter=400, gtol=1e-3, checkpoint=ck, resume=True,
                  progress=False)
    np.testing.assert_array_equal(again.x, full.x)
    assert again.message == full.message and again.nit == full.nit


# --- damaged checkpoint files ---------------------------------------------------------------
def _valid(path):
    save_checkpoint(path, {"x": np.arange(5.0)}, {"method": "m", "n_params": 5, "nit": 1})
    return path


def _truncate(path):
    data = open(_valid(path), "rb").read()
    with open(path, "wb") as fh:
        fh.write(data[:200])


@pytest.mark.parametrize("damage, words", [
    (lambda p: open(p, "wb").close(), "empty"),
    (_truncate, "truncated or corrupt"),
    (lambda p: open(p, "wb").write(b"not a zip file at all"), "truncated or corrupt"),
    (lambda p: np.savez(open(p, "wb"), x=np.ones(3)), "missing key '__meta__'"),
    (lambda p: np.savez(open(p, "wb"), x=np.array([{"a": 1}], dtype=object),
                        __meta__=np.frombuffer(b"{}", dtype=np.uint8)), "truncated or corrupt"),
])
def test_a_damaged_checkpoint_raises_checkpoint_error_naming_the_file(tmp_path, damage, words):
    path = str(tmp_path / "ck.npz")
    damage(path)
    with pytest.raises(CheckpointError, match=words) as info:
        load_checkpoint(path)
    assert path in str(info.value) and "allow_pickle" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_a_required_key_is_named(tmp_path):
    path = _valid(str(tmp_path / "ck.npz"))
    with pytest.raises(CheckpointError, match="missing key 'history'"):
        load_checkpoint(path, require=("history",))
    lbfgs(Quadratic(p=5, seed=1), maxiter=2, checkpoint=path, progress=False)
    arrays, meta = load_checkpoint(path)
    del meta["fingerprint"]
    save_checkpoint(path, arrays, meta)
    with pytest.raises(CheckpointError, match="missing key 'fingerprint'"):
        lbfgs(Quadratic(p=5, seed=1), maxiter=4, checkpoint=path, resume=True, progress=False)


def test_the_writer_uses_a_ckpt_temporary_and_leaves_nothing_on_failure(tmp_path, monkeypatch):
    seen = []
    real = ckpt.tempfile.mkstemp

    def spy(**kw):
        seen.append(kw["prefix"])
        return real(**kw)

    monkeypatch.setattr(ckpt.tempfile, "mkstemp", spy)
    monkeypatch.setattr(ckpt.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disk")))
    with pytest.raises(OSError, match="disk"):
        save_checkpoint(tmp_path / "ck.npz", {"x": np.ones(2)}, {})
    assert seen == [".ckpt-"] and os.listdir(tmp_path) == []


# --- 3. inputs outside the domain -----------------------------------------------------------
def test_accuracy_refuses_string_or_nan_labels():
    prob = classifier()
    theta = prob.init_params(0)
    x = prob.x0[:, :2]
    y = prob.labels
    assert 0.0 <= prob.accuracy(theta, x, y) <= 1.0
    with pytest.raises(TypeError, match="labels must be numbers"):
        prob.accuracy(theta, x, y.astype(int).astype(str))
    with pytest.raises(ValueError, match="labels must be .*nan"):
        prob.accuracy(theta, x, np.where(y == 0, np.nan, 1.0))


def test_mixture_logpdf_refuses_nan_naming_x():
    rho = gaussian([0.0, 0.0])
    with pytest.raises(ValueError, match="x contains non-finite"):
        rho.logpdf(np.array([[np.nan, 0.0]]))
    with pytest.raises(ValueError, match="x contains non-finite"):
        rho.score(np.array([[np.inf, 0.0]]))


@pytest.mark.parametrize("steps", [(8,), (16, 16), (), (0, 8)])
def test_convergence_order_needs_two_step_sizes(steps):
    with pytest.raises(ValueError, match="at least 2 different positive step counts"):
        convergence_order("rk4", steps=steps)
    assert convergence_order("rk4", steps=(8, 16))[0] == pytest.approx(4.0, abs=0.3)


def test_trajectory_needs_two_times():
    prob = classifier()
    with pytest.raises(ValueError, match="times"):
        prob.trajectory(prob.init_params(0), times=[])


@pytest.mark.parametrize("build", [
    lambda x: NeuralODEClassifier(x, np.zeros(5)),
    lambda x: ContinuousNormalizingFlow(x),
    lambda x: ol.OCP(ol.LinearModel(1), x, MeanOfColumns([0])),
    lambda x: GaussianMixture(x),
])
def test_data_without_columns_is_refused(build):
    with pytest.raises(ValueError, match="at least one column"):
        build(np.zeros((5, 0)))


def test_softmax_labels_must_be_class_indices():
    x, _ = rings(4, seed=1)
    with pytest.raises(ValueError, match="label 10000000 implies 10000001 classes"):
        NeuralODEClassifier(x[:3], [0, 1, 10 ** 7], loss="softmax")
    with pytest.raises(ValueError, match="below n_outputs = 2, got label 2"):
        NeuralODEClassifier(x[:3], [0, 1, 2], loss="softmax", n_outputs=2)
    with pytest.raises(ValueError, match="got 2.5"):
        NeuralODEClassifier(x[:3], [0, 1, 2.5], loss="softmax")
    ok = NeuralODEClassifier(x[:3], [0, 2, 2], loss="softmax", width=2)  # class 1 unseen
    assert ok.terminal.n_outputs == 3


def test_potential_vjp_forms_no_square_matrix_of_the_input_dimension():
    d = 2000  # a (d+1) x (d+1) float64 matrix is 32 MB
    pot = PotentialResNet(d, width=4, rank=2, backend="numpy")
    theta = pot.init_params(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, d))
    gbar = rng.standard_normal((3, d))
    tracemalloc.start()
    try:
        pot.derivatives_vjp(x, 0.5, theta, grad_bar=gbar, dt_bar=np.ones(3))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * (d + 1) ** 2 / 4, peak
