"""GPU backend: CuPy + cuBLAS + numba-cuda.

The device tests skip cleanly when CuPy is missing or ``cupy.cuda.is_available()`` is
False.  The numba-cuda kernel is also run on the CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``) at tiny sizes in a subprocess, so that the simulator's
environment variable never leaks into the other tests.
"""
import importlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ocp_learn.kernels import cupy_available

_needs_device = pytest.mark.skipif(not cupy_available(), reason="needs cupy and a CUDA device")


def gpu(test):
    """Marks a device test: ``pytest -m gpu`` selects it; it skips without a device."""
    return pytest.mark.gpu(_needs_device(test))

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
        importlib.import_module("numba.cuda")
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


# ------------------------------------------------------------------ chunking, on the CPU
# The chunked drivers of potential_cupy are generic over the array module: with xp=numpy
# they run the same code on the host (reference activation instead of the CUDA kernel).

def test_chunk_size_follows_the_byte_budget():
    from ocp_learn.kernels.potential_cupy import bytes_per_sample, chunk_size, chunk_slices
    m, M, d = 128, 1, 64
    per = bytes_per_sample(m, M, d, d + 1)
    # at least the cache itself: M + 1 Jacobians and M products of m x d floats per sample
    assert per >= 8 * m * d * (2 * M + 1)
    # the full n = 2^20 problem does not fit one chunk of the default budget ...
    assert chunk_size(per) < 2 ** 20
    for budget in (1, per - 1, per, 3 * per + 7, 4 << 30):
        c = chunk_size(per, budget)
        assert c >= 1
        assert c == 1 or c * per <= budget < (c + 1) * per
    sl = chunk_slices(11, 4)
    assert [(s.start, s.stop) for s in sl] == [(0, 4), (4, 8), (8, 11)]
    with pytest.raises(ValueError, match="chunk"):
        chunk_slices(11, 0)
    with pytest.raises(ValueError, match="bytes_per"):
        chunk_size(0)
    with pytest.raises(TypeError, match="budget"):
        chunk_size(per, 1.5)


class _OtherModule:
    """NumPy under another name: the model then checks its arguments as it does device
    arrays (:func:`ocp_learn.kernels.potential_backend.checked_array`)."""

    __name__ = "other"

    def __getattr__(self, name):
        return getattr(np, name)


@pytest.mark.parametrize("xp", [np, _OtherModule()], ids=["numpy", "other"])
@pytest.mark.parametrize("trace", ["exact", "hutchinson"])
@pytest.mark.parametrize("chunk", [1, 5, 17])
def test_chunked_driver_on_the_host_equals_the_reference(trace, chunk, xp):
    from ocp_learn.kernels.potential_cupy import CupyPotentialBackend
    from ocp_learn.models import PotentialResNet
    rng = np.random.default_rng(3)
    n, d = 17, 3
    ref = PotentialResNet(d, width=6, n_layers=2, trace=trace, backend="numpy")
    host = PotentialResNet(d, width=6, n_layers=2, trace=trace,
                           backend=CupyPotentialBackend(chunk=chunk, xp=xp))
    theta = ref.init_params(0)
    x, t = rng.standard_normal((n, d)), rng.standard_normal(n)
    pr = ref.sample_probes(n, rng, k=2) if trace == "hutchinson" else None
    for a, b in zip(ref.derivatives(x, t, theta, probes=pr),
                    host.derivatives(x, t, theta, pr)):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
    bars = dict(phi_bar=rng.standard_normal(n), grad_bar=rng.standard_normal((n, d)),
                dt_bar=rng.standard_normal(n), lap_bar=rng.standard_normal(n), probes=pr)
    va = ref.derivatives_vjp(x, t, theta, **bars)
    vb = host.derivatives_vjp(x, t, theta, **bars)
    for a, b in zip(va, vb):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
    assert np.abs(va[2]).max() > 0
    tang = dict(dx=rng.standard_normal((n, d)), dt=0.25, dtheta=rng.standard_normal(ref.n_params),
                probes=pr)
    for a, b in zip(ref.derivatives_jvp(x, 0.5, theta, **tang),
                    host.derivatives_jvp(x, 0.5, theta, **tang)):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)


def test_device_entry_points_name_bad_arguments():
    from ocp_learn.kernels.potential_backend import checked_array, checked_vector
    from ocp_learn.kernels.potential_cupy import CupyPotentialBackend
    from ocp_learn.models import PotentialResNet
    mod = PotentialResNet(2, width=4, backend=CupyPotentialBackend(chunk=3, xp=np))
    theta = mod.init_params(0)
    x = np.zeros((5, 2))
    with pytest.raises(ValueError, match="x must have shape"):
        mod.derivatives(np.zeros((5, 3)), 0.0, theta)
    with pytest.raises(ValueError, match="theta"):
        mod.derivatives(x, 0.0, theta[:-1])
    with pytest.raises(ValueError, match="t must have shape"):
        mod.derivatives(x, np.zeros(4), theta)
    with pytest.raises(ValueError, match="non-finite"):
        mod.derivatives(x, float("nan"), theta)
    with pytest.raises(TypeError, match="x must be real"):
        mod.derivatives(x.astype(complex), 0.0, theta)
    with pytest.raises(ValueError, match="probes"):
        mod.derivatives(x, 0.0, theta, probes=np.ones((5, 2)))
    with pytest.raises(ValueError, match="lap_bar"):
        mod.derivatives_vjp(x, 0.0, theta, lap_bar=np.ones(4))
    with pytest.raises(ValueError, match="dtheta"):
        mod.derivatives_jvp(x, 0.0, theta, dtheta=np.ones(3))
    hut = PotentialResNet(2, width=4, trace="hutchinson", backend=CupyPotentialBackend(xp=np))
    with pytest.raises(ValueError, match="probes must have shape"):
        hut.derivatives(x, 0.0, theta, probes=np.ones((2, 4, 2)))
    # the checks of device arguments, run here on numpy arrays
    with pytest.raises(ValueError, match="x must have shape"):
        checked_array(np, "x", np.zeros((5, 3)), (None, 2))
    with pytest.raises(TypeError, match="x must hold real numbers"):
        checked_array(np, "x", x.astype(complex))
    with pytest.raises(ValueError, match="non-finite"):
        checked_vector(np, "t", float("nan"), 5)
    with pytest.raises(ValueError, match="t must have shape"):
        checked_vector(np, "t", np.zeros(4), 5)
    assert checked_vector(np, "t", 0.5, 3).tolist() == [0.5] * 3


# ------------------------------------------------------------------ chunking, on the GPU

def _case(trace, n=37, d=3, seed=4):
    from ocp_learn.models import PotentialResNet
    rng = np.random.default_rng(seed)
    ref = PotentialResNet(d, width=6, n_layers=2, trace=trace, backend="numpy")
    theta = ref.init_params(0)
    x, t = rng.standard_normal((n, d)), rng.standard_normal(n)
    pr = ref.sample_probes(n, rng, k=3) if trace == "hutchinson" else None
    bars = dict(phi_bar=rng.standard_normal(n), grad_bar=rng.standard_normal((n, d)),
                dt_bar=rng.standard_normal(n), lap_bar=rng.standard_normal(n), probes=pr)
    tang = dict(dx=rng.standard_normal((n, d)), dt=rng.standard_normal(n),
                dtheta=rng.standard_normal(ref.n_params), probes=pr)
    return ref, theta, x, t, pr, bars, tang


def _all_outputs(mod, theta, x, t, pr, bars, tang):
    return (list(mod.derivatives(x, t, theta, probes=pr))
            + list(mod.derivatives_vjp(x, t, theta, **bars))
            + list(mod.derivatives_jvp(x, t, theta, **tang)))


@gpu
@pytest.mark.parametrize("trace", ["exact", "hutchinson"])
def test_cupy_chunks_equal_one_chunk(trace, monkeypatch):
    from ocp_learn.kernels import potential_cupy
    from ocp_learn.models import PotentialResNet
    ref, theta, x, t, pr, bars, tang = _case(trace)
    kw = dict(width=6, n_layers=2, trace=trace, backend="cupy")
    one = _all_outputs(PotentialResNet(3, chunk=x.shape[0], **kw), theta, x, t, pr, bars, tang)
    want = _all_outputs(ref, theta, x, t, pr, bars, tang)
    for chunk in (1, 5):
        got = _all_outputs(PotentialResNet(3, chunk=chunk, **kw), theta, x, t, pr, bars, tang)
        for a, b, c in zip(one, got, want):
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(b, c, rtol=1e-12, atol=1e-12)
    # the default chunk from the byte budget: a budget of 4 samples' worth splits n = 37
    per = potential_cupy.bytes_per_sample(6, 2, 3, 4)   # m, M, c (d = 3 or k = 3 probes), D
    monkeypatch.setattr(potential_cupy, "CHUNK_BYTES", 4 * per)
    got = _all_outputs(PotentialResNet(3, **kw), theta, x, t, pr, bars, tang)
    for a, b in zip(one, got):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)


@gpu
@pytest.mark.parametrize("trace", ["exact", "hutchinson"])
def test_cupy_inputs_give_cupy_outputs(trace):
    import cupy as cp

    from ocp_learn.models import PotentialResNet
    ref, theta, x, t, pr, bars, tang = _case(trace)
    mod = PotentialResNet(3, width=6, n_layers=2, trace=trace, backend="cupy", chunk=8)
    dev = lambda v: None if v is None else cp.asarray(v)  # noqa: E731
    got = _all_outputs(mod, dev(theta), dev(x), dev(t), dev(pr),
                       {k: dev(v) for k, v in bars.items()}, {k: dev(v) for k, v in tang.items()})
    want = _all_outputs(ref, theta, x, t, pr, bars, tang)
    host = _all_outputs(mod, theta, x, t, pr, bars, tang)
    assert len(got) == len(want) == 11
    for a, b, c in zip(want, got, host):
        assert isinstance(b, cp.ndarray) and isinstance(c, np.ndarray)
        assert b.shape == a.shape == c.shape
        np.testing.assert_allclose(cp.asnumpy(b), a, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(c, a, rtol=1e-12, atol=1e-12)
    # a device-resident x alone is enough; a scalar t broadcasts on the device
    phi = mod.derivatives(dev(x), 0.5, theta, probes=pr).phi
    assert isinstance(phi, cp.ndarray)
    np.testing.assert_allclose(cp.asnumpy(phi), ref.derivatives(x, 0.5, theta, probes=pr).phi,
                               rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="x must have shape"):
        mod.derivatives(dev(x[:, :2]), t, theta, probes=pr)


@gpu
def test_cupy_activation_kernel_on_device():
    import cupy as cp

    from ocp_learn.kernels.potential_cupy import activation
    from ocp_learn.models.potential import log_cosh
    a = np.concatenate([np.array([0.0, 1e-12, -3e-8, 40.0, -40.0]),
                        np.random.default_rng(0).standard_normal(3000)]).reshape(-1, 5)
    u, g = activation(cp.asarray(a), strict=True)   # the numba-cuda kernel, no fallback
    assert isinstance(u, cp.ndarray) and u.shape == a.shape
    # libdevice expm1/log against numpy's log1p/exp/tanh: a few ulp
    np.testing.assert_allclose(cp.asnumpy(u), log_cosh(a), rtol=1e-15, atol=0)
    np.testing.assert_allclose(cp.asnumpy(g), np.tanh(a), rtol=1e-15, atol=1e-300)
