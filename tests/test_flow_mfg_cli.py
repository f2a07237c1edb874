"""The `flow` and `mfg` commands end to end at tiny sizes, and the MFG/flow helpers."""
import json

import numpy as np
import pytest

from ocp_learn.cli import main
from ocp_learn.recipes.flow import flow_data
from ocp_learn.metrics import mmd
from ocp_learn.reference.gaussian_mfg import gaussian_mfg_optimum

FLOW_KEYS = {"test_nll", "nll_floor", "inverse_error", "mmd", "transport_cost", "hjb_penalty",
             "iterations", "seconds", "n_params"}
MFG_KEYS = {"objective", "L", "F", "G", "hjb", "hjb_terminal", "iterations", "seconds", "n_params",
            "dim"}


def test_flow_command_writes_metrics_and_figure(tmp_path, capsys):
    out = tmp_path / "flow"
    rc = main(["flow", "--data", "8gaussians", "--out", str(out), "--n", "128", "--n-test", "300",
               "--iters", "4", "--width", "6", "--nt", "2", "--backend", "numpy"])
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    assert FLOW_KEYS <= set(m)
    assert np.isfinite(m["test_nll"]) and m["iterations"] >= 1
    assert (out / "figure.png").stat().st_size > 5000
    # the standard error of the test NLL is that of the mean of -log p over the test samples
    from ocp_learn.problems.cnf import ContinuousNormalizingFlow
    x_test, _ = flow_data("8gaussians", 300, 1000)
    prob = ContinuousNormalizingFlow(x_test, width=6, nt=2)
    lp = prob.log_density(np.load(out / "theta.npy"), x_test)
    assert np.isclose(m["test_nll"], -lp.mean(), rtol=1e-12)
    assert np.isclose(m["test_nll_se"], lp.std() / np.sqrt(300), rtol=1e-12) and m["test_nll_se"] > 0
    # resume continues from the checkpoint to the new iteration budget
    rc = main(["flow", "--data", "8gaussians", "--out", str(out), "--n", "128", "--n-test", "300",
               "--iters", "6", "--width", "6", "--nt", "2", "--backend", "numpy", "--resume",
               "--checkpoint-every", "1"])
    assert rc == 0
    # --n-val: only with --resample-every, and positive (one-line error, status 2)
    for extra in (["--n-val", "50"], ["--n-val", "0", "--resample-every", "2"]):
        assert main(["flow", "--out", str(out), "--iters", "1"] + extra) == 2
        assert "--n-val" in capsys.readouterr().err
    assert main(["flow", "--out", str(out), "--iters", "1", "--keep-pairs"]) == 2
    assert "--keep-pairs" in capsys.readouterr().err


def test_flow_command_fixed_input_map_with_resampling(tmp_path):
    """``--scale --center``: the metrics are those of the data-coordinate density."""
    from ocp_learn.problems.cnf import ContinuousNormalizingFlow
    out = tmp_path / "gmm"
    rc = main(["flow", "--data", "gmm", "--dim", "3", "--out", str(out), "--n", "96",
               "--n-test", "200", "--iters", "4", "--width", "6", "--nt", "2", "--backend", "numpy",
               "--scale", "0.55", "--center", "--resample-every", "2", "--keep-pairs"])
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    x, _ = flow_data("gmm", 96, 0, 3)
    assert m["input_scale"] == 0.55 and np.allclose(m["input_shift"], x.mean(0), rtol=1e-15)
    x_test, _ = flow_data("gmm", 200, 1000, 3)
    prob = ContinuousNormalizingFlow(x, width=6, nt=2, shift=x.mean(0), scale=0.55)
    assert np.isclose(m["test_nll"], prob.nll(np.load(out / "theta.npy"), x_test), rtol=1e-12)
    # --center N: the mean of N samples drawn with the training seed, whatever --n is
    rc = main(["flow", "--data", "gmm", "--dim", "3", "--out", str(tmp_path / "c"), "--n", "50",
               "--n-test", "100", "--iters", "1", "--width", "6", "--nt", "2", "--backend",
               "numpy", "--scale", "0.55", "--center", "96"])
    m2 = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert rc == 0 and m2["input_shift"] == m["input_shift"]
    assert main(["flow", "--out", str(tmp_path / "c"), "--iters", "1", "--center", "0"]) == 2


def test_mfg_command_writes_metrics_and_figure(tmp_path):
    out = tmp_path / "mfg"
    rc = main(["mfg", "--problem", "crowd", "--dim", "3", "--out", str(out), "--samples", "64",
               "--iters", "3", "--backend", "numpy"])
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    assert MFG_KEYS <= set(m) and m["dim"] == 3
    assert (out / "trajectories.png").stat().st_size > 5000
    # checkpointed after every redraw: --resume of the finished run trains nothing more
    assert (out / "checkpoint.npz").exists()
    rc = main(["mfg", "--problem", "crowd", "--dim", "3", "--out", str(out), "--samples", "64",
               "--iters", "3", "--backend", "numpy", "--resume"])
    assert rc == 0 and json.loads((out / "metrics.json").read_text())["iterations"] == m["iterations"]
    assert m["optimizer"].startswith("L-BFGS-B")
    # --keep-pairs: L-BFGS keeps its correction pairs across the redraws
    rc = main(["mfg", "--problem", "crowd", "--dim", "3", "--out", str(tmp_path / "kp"),
               "--samples", "64", "--iters", "4", "--resample-every", "2", "--backend", "numpy",
               "--keep-pairs"])
    k = json.loads((tmp_path / "kp" / "metrics.json").read_text())
    assert rc == 0 and k["optimizer"].startswith("L-BFGS, pairs kept") and k["iterations"] == 4


def test_flow_data_sets_and_floors():
    x, floor = flow_data("checkerboard", 100, 0)
    assert x.shape == (100, 2) and abs(floor - np.log(32)) < 1e-12
    x, floor = flow_data("gmm", 50, 0, dim=16)
    assert x.shape == (50, 16) and np.isfinite(floor)
    with pytest.raises(ValueError, match="data must be one of"):
        flow_data("nope", 10, 0)


def test_mmd_separates_distributions():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((300, 2)), rng.standard_normal((300, 2))
    c = rng.standard_normal((300, 2)) + 1.0
    assert abs(mmd(a, b)) < 0.02 < mmd(a, c)


def test_gaussian_mfg_optimum_is_stationary():
    ref = gaussian_mfg_optimum([0.0, 0.0], 0.5, [2.0, 0.0], 0.3, a1=1.0, a3=5.0)
    # perturbing the terminal mean or variance increases L + a3 KL
    m0, s0, m1, s1 = np.zeros(2), 0.5, np.array([2.0, 0.0]), 0.3

    def J(mT, sT):
        L = 0.5 * (np.sum((mT - m0) ** 2) + 2 * (np.sqrt(sT) - np.sqrt(s0)) ** 2)
        G = 0.5 * (2 * sT / s1 + np.sum((m1 - mT) ** 2) / s1 - 2 + 2 * np.log(s1 / sT))
        return L + 5.0 * G

    assert J(ref["mT"], ref["sT"]) == pytest.approx(ref["J"], rel=1e-12)
    for dm, ds in ((0.01, 0), (0, 0.01), (-0.01, 0), (0, -0.01)):
        assert J(ref["mT"] + dm, ref["sT"] + ds) > ref["J"]


@pytest.mark.parametrize("argv,needle", [
    (["mfg", "--iters", "0"], "--iters"),
    (["mfg", "--iters-stages", "0", "1"], "--iters-stages"),
    (["mfg", "--samples", "0"], "--samples"),
    (["mfg", "--samples", "64", "128", "--iters-stages", "3"], "one count per stage"),
    (["flow", "--n-test", "0"], "--n-test"),
    (["flow", "--iters", "0"], "--iters"),
    (["flow", "--scale", "0"], "--scale"),
])
def test_flow_mfg_cli_reject_bad_options(argv, needle, tmp_path, capsys):
    assert main(argv + ["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_mfg_rejects_non_density_and_bad_stage():
    from ocp_learn.problems.mfg import PotentialMFG
    with pytest.raises(TypeError, match="rho0"):
        PotentialMFG("gauss")
    from ocp_learn.problems.mfg import mfg_preset
    with pytest.raises(ValueError, match="stage"):
        mfg_preset("crowd", stage=0)


def test_mfg_figure3_command(tmp_path):
    assert main(["mfg", "--figure3", "--out", str(tmp_path), "--iters", "3", "--backend", "numpy"]) == 0
    res = json.loads((tmp_path / "figure3.json").read_text())
    assert set(res) == {"OT", "crowd motion"} and "F" in res["crowd motion"]
    assert (tmp_path / "figure3.png").stat().st_size > 5000


def test_flow_metrics_warn_when_the_time_grid_does_not_resolve_the_log_det():
    import warnings

    from scipy.optimize import OptimizeResult

    from ocp_learn.recipes.flow import flow_metrics
    from ocp_learn.problems.cnf import ContinuousNormalizingFlow
    x, floor = flow_data("8gaussians", 64, 0)
    x_test, _ = flow_data("8gaussians", 200, 1000)
    for nt, amp, warns in ((1, 3.0, True), (8, 0.05, False)):
        prob = ContinuousNormalizingFlow(x, width=6, nt=nt)
        th = prob.init_params(0) + amp * np.random.default_rng(1).standard_normal(prob.n_params)
        res = OptimizeResult(x=th, nit=0, nfev=0, method="none", success=True)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            m = flow_metrics(prob, res, 0.0, x_test, floor, n_eval=50)
        hit = [v for v in w if "finer time grid" in str(v.message)]
        assert bool(hit) == warns, (nt, m["test_nll"], m["test_nll_fine"])
        assert (abs(m["test_nll"] - m["test_nll_fine"]) > 0.05) == warns


def test_mfg_writes_its_results_without_pot(tmp_path, monkeypatch):
    """Without POT (``import ot`` fails) the OT run still writes theta.npy and metrics.json,
    and the metrics name the skipped W2 metric and why."""
    import sys

    monkeypatch.setitem(sys.modules, "ot", None)  # `import ot` raises ImportError
    out = tmp_path / "ot"
    rc = main(["mfg", "--problem", "ot", "--out", str(out), "--samples", "32", "--iters", "2",
               "--backend", "numpy"])
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    assert MFG_KEYS <= set(m) and "w2_to_rho1" not in m
    assert "POT" in m["skipped"]["w2_to_rho1"]
    assert np.load(out / "theta.npy").shape == (m["n_params"],)
    assert (out / "trajectories.png").stat().st_size > 5000


def test_recipes_import_no_command_layer():
    """The recipes are a library: importing them loads neither the CLI nor MPI."""
    import subprocess
    import sys

    code = ("import sys, ocp_learn.recipes, ocp_learn.recipes.demo, ocp_learn.recipes.verify; "
            "bad = [m for m in sys.modules if m.startswith(('ocp_learn.cli', "
            "'ocp_learn.commands', 'ocp_learn.distributed', 'mpi4py'))]; print(bad)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


class _SpyParallel:
    """A :class:`ocp_learn.optim.Parallel` that runs serially, records the optimizer runs and
    plays a process that does not write."""

    is_writer = False

    def __init__(self):
        from ocp_learn.optim import SERIAL
        self.serial, self.runs = SERIAL, []

    def minimize(self, problem, optimizer, theta0, **kwargs):
        self.runs.append(optimizer.__name__)
        return self.serial.minimize(problem, optimizer, theta0, **kwargs)

    def objective_on(self, problem, theta, x):
        return self.serial.objective_on(problem, theta, x)


@pytest.mark.parametrize("resample_every", [None, 2])
def test_flow_recipe_runs_through_the_parallel_it_is_given(tmp_path, resample_every):
    """The recipe's optimizer runs go through ``parallel``; a process that is not the writer
    trains the same parameters and writes nothing."""
    from ocp_learn.recipes.flow import run_flow

    kw = dict(n_train=64, n_test=100, maxiter=3, width=4, nt=2, backend="numpy",
              resample_every=resample_every)
    spy = _SpyParallel()
    m, _, res = run_flow(out=str(tmp_path / "spy"), parallel=spy, **kw)
    assert m == {} and spy.runs and not (tmp_path / "spy" / "metrics.json").exists()
    m0, _, res0 = run_flow(out=str(tmp_path / "serial"), **kw)
    assert np.array_equal(res.x, res0.x) and (tmp_path / "serial" / "metrics.json").exists()
