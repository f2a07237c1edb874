"""The training recipes run with the samples, states and adjoints on a device namespace.

A potential backend computing on ``array_api_strict`` arrays stands in for the GPU: the
flow and MFG recipes (training with resampling, validation, checkpoints, metrics, the bundle)
run end to end with it and give the NumPy backend's numbers, so the training loop holds
no hidden host-only step on the device path.
"""
import json

import numpy as np
import pytest

xps = pytest.importorskip("array_api_strict")

NAME = "array-api-strict"


@pytest.fixture(scope="module", autouse=True)
def strict_backend():
    from ocp_learn.kernels.potential_backend import REGISTRY, register_potential_backend
    from ocp_learn.kernels.potential_cupy import CupyPotentialBackend
    from ocp_learn.kernels import mlp_backend
    from ocp_learn.kernels.mlp_array import ArrayMLPBackend
    register_potential_backend(NAME, lambda **options: CupyPotentialBackend(xp=xps))
    mlp_backend.register_mlp_backend(NAME, lambda **options: ArrayMLPBackend(xp=xps))
    yield
    REGISTRY._entries.pop(NAME, None)
    mlp_backend.REGISTRY._entries.pop(NAME, None)


def test_train_flow_on_a_device_namespace():
    from ocp_learn.recipes.flow import train_flow
    x = np.random.default_rng(0).standard_normal((24, 2))
    runs = {b: train_flow(x, maxiter=4, seed=1, width=6, nt=2, backend=b)
            for b in ("numpy", NAME)}
    (pa, ra, _), (pb, rb, _) = runs["numpy"], runs[NAME]
    assert pb.xp is xps and pa.xp is np
    np.testing.assert_allclose(rb.x, ra.x, rtol=1e-9, atol=1e-11)
    assert abs(rb.fun - ra.fun) <= 1e-10 * abs(ra.fun)
    xt = np.random.default_rng(2).standard_normal((9, 2))
    assert abs(pb.nll(rb.x, xt) - pa.nll(ra.x, xt)) <= 1e-9


def test_run_mfg_on_a_device_namespace(tmp_path):
    from ocp_learn.recipes.mfg import run_mfg
    out = {}
    for b in ("numpy", NAME):
        d = tmp_path / b
        metrics, prob, theta = run_mfg("crowd", 2, out=str(d), stages=((16, 3),),
                                       resample_every=2, seed=0, backend=b, n_eval=32,
                                       figure=False)
        out[b] = (metrics, theta, json.loads((d / "metrics.json").read_text()))
    (_, ta, ja), (_, tb, jb) = out["numpy"], out[NAME]
    np.testing.assert_allclose(tb, ta, rtol=1e-9, atol=1e-11)
    assert set(jb) == set(ja)


@pytest.mark.parametrize("optimizer", ["lbfgs", "gauss-newton"])
def test_train_classifier_on_a_device_namespace(optimizer):
    from ocp_learn.datasets import get_dataset
    from ocp_learn.recipes.classify import train_classifier
    x, y = get_dataset("rings", 40, seed=0)
    runs = {b: train_classifier(x, y, augment=1, optimizer=optimizer, maxiter=3, seed=0,
                                width=5, nt=3, backend=b) for b in ("numpy", NAME)}
    (pa, ra, _), (pb, rb, _) = runs["numpy"], runs[NAME]
    assert pb.xp is xps
    np.testing.assert_allclose(rb.x, ra.x, rtol=1e-9, atol=1e-11)
    np.testing.assert_array_equal(pb.predict(rb.x, x), pa.predict(ra.x, x))


def test_command_line_names_a_missing_device(tmp_path):
    from ocp_learn.cli import main
    from ocp_learn.kernels import cupy_available
    if cupy_available():
        pytest.skip("a device is present")
    for cmd in (["flow", "--maxiter", "1"], ["mfg", "--iters", "1"], ["classify", "--iters", "1"]):
        assert main([*cmd, "--backend", "cupy", "--out", str(tmp_path / cmd[0])]) == 2


def test_each_rank_binds_its_own_device(monkeypatch):
    """bind_device: the local rank (launcher variable, else the communicator's rank) modulo
    the node's device count is made current; no CuPy: nothing happens."""
    import sys
    import types

    from ocp_learn.distributed import SerialComm, bind_device, local_rank
    used = []
    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDeviceCount=lambda: 4),
        Device=lambda i: types.SimpleNamespace(use=lambda: used.append(i)))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    for var in ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "MV2_COMM_WORLD_LOCAL_RANK",
                "SLURM_LOCALID"):
        monkeypatch.delenv(var, raising=False)
    assert local_rank(SerialComm()) == 0 and bind_device(SerialComm()) == 0
    monkeypatch.setenv("OMPI_COMM_WORLD_LOCAL_RANK", "6")
    assert bind_device(SerialComm()) == 2 and used == [0, 2]
    assert bind_device(SerialComm(), count=0) is None
    monkeypatch.setitem(sys.modules, "cupy", None)  # import fails: no CuPy
    assert bind_device(SerialComm()) is None
