"""GPU backend (issue 9): CuPy + cuBLAS + numba-cuda.

The device tests skip cleanly when CuPy is missing or ``cupy.cuda.is_available()`` is
False.  The numba-cuda kernel is also run on the CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``) at tiny sizes in a subprocess, so that the simulator's
environment variable never leaks into the other tests.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ocp_learn.kernels import cupy_available

gpu = pytest.mark.skipif(not cupy_available(), reason="needs cupy and a CUDA device")

_SIM = textwrap.dedent(r"""
    import numpy as np
    from ocp_learn.kernels.potential_cupy import activation
    from ocp_learn.models.potential import log_cosh
    a = np.concatenate([np.array([0.0, 1e-12, -3e-8, 40.0, -40.0]),
                        np.random.default_rng(0).standard_normal(40)])
    u, g = activation(a, threads=16)
    eu = np.max(np.abs(u - log_cosh(a)) / np.abs(log_cosh(a)))
    eg = np.max(np.abs(g - np.tanh(a)) / np.maximum(np.abs(np.tanh(a)), 1e-300))
    print(eu, eg)
""")


def _simulator_importable():
    try:
        import numba.cuda  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _simulator_importable(), reason="numba.cuda (simulator) not importable")
def test_numba_cuda_activation_kernel_on_the_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    r = subprocess.run([sys.executable, "-c", _SIM], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    eu, eg = map(float, r.stdout.split()[-2:])
    assert eu <= 4e-16 and eg <= 4e-16


@gpu
@pytest.mark.parametrize("trace", ["exact", "hutchinson"])
def test_cupy_potential_equals_numpy(trace):
    from ocp_learn.models import PotentialResNet
    rng = np.random.default_rng(0)
    ref = PotentialResNet(3, width=6, n_layers=2, trace=trace, backend="numpy")
    gpu_mod = PotentialResNet(3, width=6, n_layers=2, trace=trace, backend="cupy")
    theta = ref.init_params(0)
    n = 17
    x, t = rng.standard_normal((n, 3)), rng.standard_normal(n)
    pr = ref.sample_probes(n, rng, k=2) if trace == "hutchinson" else None
    for a, b in zip(ref.derivatives(x, t, theta, probes=pr), gpu_mod.derivatives(x, t, theta, probes=pr)):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
    bars = dict(phi_bar=rng.standard_normal(n), grad_bar=rng.standard_normal((n, 3)),
                dt_bar=rng.standard_normal(n), lap_bar=rng.standard_normal(n), probes=pr)
    for a, b in zip(ref.derivatives_vjp(x, t, theta, **bars), gpu_mod.derivatives_vjp(x, t, theta, **bars)):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
    tang = dict(dx=rng.standard_normal((n, 3)), dtheta=rng.standard_normal(ref.n_params), probes=pr)
    for a, b in zip(ref.derivatives_jvp(x, t, theta, **tang), gpu_mod.derivatives_jvp(x, t, theta, **tang)):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)


@gpu
def test_cupy_cnf_gradient_equals_numpy():
    from ocp_learn.problems.cnf import ContinuousNormalizingFlow
    x = np.random.default_rng(1).standard_normal((33, 2))
    ref = ContinuousNormalizingFlow(x, width=8, nt=2, backend="numpy")
    dev = ContinuousNormalizingFlow(x, width=8, nt=2, backend="cupy")
    th = ref.init_params(0)
    (J0, g0), (J1, g1) = ref.objective_and_gradient(th), dev.objective_and_gradient(th)
    assert abs(J1 - J0) <= 1e-12 * abs(J0)
    np.testing.assert_allclose(g1, g0, rtol=1e-10, atol=1e-12)
