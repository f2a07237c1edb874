"""Device-resident solves on a GPU (CuPy): the whole objective and gradient on the device.

Each test carries ``@pytest.mark.gpu`` and skips without CuPy and a CUDA device.  CuPy
refuses implicit conversions to NumPy, so an evaluation that completes has made only the
explicit transfers the problem makes (``theta`` in, the gradient out); the transfer test
counts those.  The same code paths are checked on the CPU with ``array_api_strict``
(``tests/test_array_api_flows.py``, ``tests/test_device_recipes.py``).
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from ocp_learn.kernels import cupy_available

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not cupy_available(), reason="needs cupy and a CUDA device")]


def _cnf(backend, trace="exact", dtype=np.float64, n=40):
    from ocp_learn.problems.cnf import ContinuousNormalizingFlow
    x = np.random.default_rng(1).standard_normal((n, 2))
    return ContinuousNormalizingFlow(x, width=8, n_layers=2, nt=3, trace=trace, n_probes=2,
                                     backend=backend, seed=3, dtype=dtype)


def _mfg(backend, name):
    from ocp_learn.problems.mfg import mfg_preset
    return mfg_preset(name, dim=3, backend=backend, n_samples=30, nt=2)


CASES = {"cnf-exact": lambda b: _cnf(b), "cnf-hutchinson": lambda b: _cnf(b, "hutchinson"),
         "mfg-crowd": lambda b: _mfg(b, "crowd"), "mfg-ot": lambda b: _mfg(b, "ot")}


@pytest.mark.parametrize("strategy", ["store_all", "checkpoint"])
@pytest.mark.parametrize("case", list(CASES))
def test_device_objective_and_gradient_equal_numpy(case, strategy):
    import cupy as cp
    ref = CASES[case]("numpy").with_strategy(strategy)
    dev = CASES[case]("cupy").with_strategy(strategy)
    assert dev.xp is cp
    theta = ref.init_params(0)
    a, b = ref.evaluate(theta), dev.evaluate(theta)
    assert isinstance(b.state, cp.ndarray) and isinstance(b.gradient, np.ndarray)
    assert abs(b.value - a.value) <= 1e-12 * max(1.0, abs(a.value))
    np.testing.assert_allclose(b.gradient, a.gradient, rtol=1e-10, atol=1e-12)
    rows = np.array([3, 1, 7])
    np.testing.assert_allclose(dev.evaluate(theta, rows).gradient,
                               ref.evaluate(theta, rows).gradient, rtol=1e-10, atol=1e-12)


def test_only_theta_and_the_gradient_cross(monkeypatch):
    """The explicit device-to-host copies of one evaluation are the gradient's blocks."""
    import ocp_learn.ocp as ocp_mod
    dev = _cnf("cupy", n=500)
    theta = dev.init_params(0)
    dev.evaluate(theta)  # the samples go to the device once, here
    sizes = []
    real = ocp_mod.to_host

    def counting(x):
        out = real(x)
        sizes.append(0 if out is None else out.size)
        return out

    monkeypatch.setattr(ocp_mod, "to_host", counting)
    dev.evaluate(theta)
    assert sum(sizes) <= dev.n_params, sizes


def test_device_float32():
    import cupy as cp
    ref = _cnf("numpy")
    dev = _cnf("cupy", dtype=np.float32)
    theta = ref.init_params(0)
    a, b = ref.evaluate(theta), dev.evaluate(theta)
    assert b.state.dtype == cp.float32 and b.gradient.dtype == np.float32
    assert abs(b.value - a.value) <= 1e-5 * abs(a.value)
    assert np.linalg.norm(b.gradient - a.gradient) <= 1e-4 * np.linalg.norm(a.gradient)


def test_device_density_sampling_and_state_maps():
    ref, dev = _cnf("numpy"), _cnf("cupy")
    theta = ref.init_params(2)
    x = np.random.default_rng(5).standard_normal((6, 2))
    for f in (lambda p: p.log_density(theta, x), lambda p: p.sample(theta, 4, seed=1),
              lambda p: p.push_forward(theta, x, trajectory=True)):
        a, b = f(ref), f(dev)
        assert isinstance(b, np.ndarray)
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)


def test_train_on_the_device_equals_numpy():
    from ocp_learn.recipes.flow import train_flow
    x = np.random.default_rng(0).standard_normal((64, 2))
    (_, ra, _), (_, rb, _) = (train_flow(x, maxiter=5, seed=1, width=6, nt=2, backend=b)
                              for b in ("numpy", "cupy"))
    np.testing.assert_allclose(rb.x, ra.x, rtol=1e-7, atol=1e-9)


def test_command_line_with_the_cupy_backend(tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    for cmd in (["flow", "--data", "8gaussians", "--n", "512", "--maxiter", "3", "--n-test", "2000"],
                ["mfg", "--problem", "crowd", "--dim", "2", "--iters", "3", "--samples", "64", "64"],
                ["classify", "--n-train", "64", "--n-test", "64", "--iters", "3"]):
        out = tmp_path / cmd[0]
        r = subprocess.run([sys.executable, "-m", "ocp_learn.cli", *cmd, "--backend", "cupy",
                            "--out", str(out)], env=env, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        assert (out / "metrics.json").is_file()
