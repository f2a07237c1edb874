"""problem.save(path, theta) and ocp_learn.problems.load(path): a trained problem of each
family, saved, loaded in a fresh process without its training data, gives the same theta
and the same predictions, log-densities and seeded samples."""
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from scipy.optimize import minimize

from ocp_learn import SingleLayerNet
from ocp_learn.datasets import rings
from ocp_learn.datasets.densities import gaussian
from ocp_learn.problems import (ContinuousNormalizingFlow, NeuralODEClassifier, PotentialMFG,
                                ViscousClassifier, load, mfg_preset)
from ocp_learn.problems.persistence import FORMAT_VERSION

X, Y = rings(40, seed=0)
XNEW = np.random.default_rng(5).standard_normal((7, 2))


def _train(prob, iters=3):
    theta0 = prob.init_params(0)
    return minimize(prob.objective_and_gradient, theta0, jac=True, method="L-BFGS-B",
                    options={"maxiter": iters}).x


def _classifier():
    return NeuralODEClassifier(X, Y, augment=1, width=4, nt=3,
                               time_param=("piecewise_linear", 2), smoothness=1e-3)


def _softmax():
    y3 = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    return NeuralODEClassifier(X, y3, loss="softmax", width=3, nt=2, integrator="heun",
                               model=SingleLayerNet(2, width=3, init_scale=0.5))


def _viscous():
    return ViscousClassifier(X, Y, augment=1, width=4, nt=3, nu=0.05, n_paths=2, n_predict=4,
                             predict_seed=7)


def _flow():
    return ContinuousNormalizingFlow(X * 2.0, width=4, nt=2, trace="hutchinson", n_probes=2,
                                     shift=np.array([0.1, -0.2]), scale=[1.5, 2.0], seed=3)


def _mfg_preset():
    return mfg_preset("crowd", n_samples=12, nt=2, seed=3)


def _mfg():
    return PotentialMFG(gaussian(np.zeros(2), 0.5), gaussian(np.ones(2)), n_samples=10,
                        nt=2, width=4, seed=2, alpha=(1.0, 1.0, 2.0, 0.5, 0.5))


FAMILIES = {"classifier": _classifier, "classifier_softmax": _softmax, "viscous": _viscous,
            "flow": _flow, "mfg_preset": _mfg_preset, "mfg": _mfg}

# what a loaded problem computes; run here and in a fresh process
OUTPUTS = """
import numpy as np
from ocp_learn.problems import load

def outputs(prob, theta, x):
    out = {"push_forward": prob.push_forward(theta, x)}
    if hasattr(prob, "predict_proba"):
        out["proba"] = prob.predict_proba(theta, x)
        out["predict"] = prob.predict(theta, x)
    if hasattr(prob, "log_density"):
        out["log_density"] = prob.log_density(theta, x)
    if hasattr(prob, "sample"):
        out["sample"] = prob.sample(theta, 5, seed=11)
    return out
"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("saved")
    ns = {}
    exec(OUTPUTS, ns)
    here = {}
    for name, make in FAMILIES.items():
        prob = make()
        theta = _train(prob)
        prob.save(root / f"{name}.npz", theta)
        here[name] = (theta, ns["outputs"](prob, theta, XNEW))
    np.save(root / "xnew.npy", XNEW)
    script = OUTPUTS + f"""
root = {str(root)!r}
x = np.load(root + "/xnew.npy")
for name in {list(FAMILIES)!r}:
    prob, theta, info = load(root + "/" + name + ".npz")
    # classifiers and flows hold no samples; a game draws its agents from rho_0 again
    assert (prob.n_samples == 0) != name.startswith("mfg")
    np.savez(root + "/" + name + "_out.npz", theta=theta, **outputs(prob, theta, x))
"""
    subprocess.run([sys.executable, "-c", script], check=True, cwd=root)
    return root, here


@pytest.mark.parametrize("name", list(FAMILIES))
def test_a_loaded_problem_reproduces_theta_and_outputs_in_a_fresh_process(saved, name):
    root, here = saved
    theta, out = here[name]
    with np.load(root / f"{name}_out.npz", allow_pickle=False) as got:
        np.testing.assert_allclose(got["theta"], theta, rtol=1e-12, atol=0)
        assert set(got.files) == set(out) | {"theta"}
        for key, ref in out.items():
            np.testing.assert_allclose(got[key], ref, rtol=1e-12, atol=1e-13, err_msg=key)


def test_the_file_holds_arrays_and_a_json_string_with_versions(saved):
    root, _ = saved
    with np.load(root / "flow.npz", allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        assert all(data[k].dtype != object for k in data.files)
    assert meta["format"] == "ocp_learn.problem" and meta["format_version"] == FORMAT_VERSION
    assert meta["kind"] == "continuous_normalizing_flow" and meta["package_version"]
    assert "x" not in json.dumps(meta["settings"]).split('"')  # no training data


def test_a_loaded_problem_holds_no_samples_but_evaluates_given_ones(tmp_path):
    prob = _flow()
    theta = prob.init_params(0)
    prob.save(tmp_path / "f.npz", theta)
    loaded = load(tmp_path / "f.npz").problem
    with pytest.raises(ValueError, match="holds no samples"):
        loaded.objective(theta)
    ev, ref = loaded.evaluate(theta, x=X, gradient=False), prob.evaluate(theta, x=X,
                                                                          gradient=False)
    assert ev.value == ref.value


class _MyField(SingleLayerNet):
    """A user's own model (a subclass is not described by the library's settings)."""


def test_objects_that_settings_cannot_describe_are_named(tmp_path):
    prob = NeuralODEClassifier(X, Y, augment=1, model=_MyField(3, width=3))
    with pytest.raises(TypeError, match=r"cannot save the setting settings.model: a _MyField"):
        prob.save(tmp_path / "c.npz", prob.init_params(0))

    class MyDensity:
        dim = 2

        def sample(self, n, seed=None):
            return np.zeros((n, 2))

        def logpdf(self, x):
            return np.zeros(x.shape[0])

    mfg = PotentialMFG(MyDensity(), None, terminal="nll", n_samples=4, nt=1, width=3)
    with pytest.raises(TypeError, match=r"settings.rho0: a MyDensity"):
        mfg.save(tmp_path / "m.npz", mfg.init_params(0))
    assert not (tmp_path / "m.npz").exists()  # nothing is written

    class MyClassifier(NeuralODEClassifier):
        pass

    mine = MyClassifier(X, Y)
    with pytest.raises(TypeError, match=r"cannot save a MyClassifier: it is not registered"):
        mine.save(tmp_path / "mine.npz", mine.init_params(0))


def test_files_of_a_later_format_or_of_another_kind_are_refused(tmp_path):
    prob = _classifier()
    theta = prob.init_params(0)
    prob.save(tmp_path / "c.npz", theta)
    with np.load(tmp_path / "c.npz") as data:
        arrays = dict(data)
    meta = json.loads(str(arrays["meta"]))
    meta["format_version"] = FORMAT_VERSION + 1
    np.savez(tmp_path / "later.npz", **{**arrays, "meta": np.array(json.dumps(meta))})
    with pytest.raises(ValueError, match="format version"):
        load(tmp_path / "later.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not a problem saved by ocp_learn"):
        load(tmp_path / "other.npz")
    with pytest.raises(ValueError, match=r"theta must have shape"):
        prob.save(tmp_path / "bad.npz", theta[:-1])


def test_path_objects_and_strings(tmp_path):
    prob = _classifier()
    theta = prob.init_params(1)
    prob.save(str(tmp_path / "c.npz"), theta)
    problem, th, info = load(pathlib.Path(tmp_path / "c.npz"))
    assert isinstance(problem, NeuralODEClassifier) and info["kind"] == "neural_ode_classifier"
    assert np.array_equal(th, theta) and problem.settings["time_param"] == ("piecewise_linear", 2)
