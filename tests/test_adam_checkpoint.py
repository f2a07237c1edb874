"""Adam and checkpoint/resume of Adam, Gauss--Newton--CG and L-BFGS."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from ocp_learn.optim import adam, gauss_newton, lbfgs
from ocp_learn.optim.adam import get_schedule
from ocp_learn.optim.checkpoint import load_checkpoint, save_checkpoint

PROBLEM = textwrap.dedent("""
    from ocp_learn.datasets import rings
    from ocp_learn.problems import NeuralODEClassifier

    def problem():
        x, y = rings(64, seed=3)
        return NeuralODEClassifier(x, y, augment=1, width=5, nt=3)
""")
_ns = {}
exec(PROBLEM, _ns)
problem = _ns["problem"]

ADAM = dict(lr=0.05, batch_size=10, schedule="cosine", seed=7, progress=False)


def test_adam_decreases_and_is_reproducible():
    a = adam(problem(), maxiter=150, **ADAM)
    b = adam(problem(), maxiter=150, **ADAM)
    np.testing.assert_array_equal(a.x, b.x)
    h = a.history
    assert len(h["objective"]) == 150 and a.nit == 150
    prob = problem()
    assert a.fun < 0.7 * prob.objective(prob.init_params(7))
    assert a.fun == pytest.approx(prob.objective(a.x))
    assert h["lr"][0] == pytest.approx(0.05) and h["lr"][-1] < 0.01  # cosine decay
    c = adam(problem(), maxiter=150, **{**ADAM, "seed": 8})
    assert not np.array_equal(a.x, c.x)  # the seed drives batches and init


def test_adam_full_batch_matches_hand_computed_first_step():
    prob = problem()
    th0 = prob.init_params(0)
    _, g = prob.objective_and_gradient(th0)
    res = adam(prob, th0, maxiter=1, lr=0.1, progress=False, final_objective=False)
    # first Adam step: m_hat = g, v_hat = g^2 -> step = lr * g / (|g| + eps)
    np.testing.assert_allclose(res.x, th0 - 0.1 * g / (np.abs(g) + 1e-8), rtol=1e-14, atol=1e-15)


def test_schedules():
    assert get_schedule("constant", 10, 0.1)(7) == 0.1
    assert get_schedule(("step", 3, 0.5), 10, 1.0)(7) == 0.25
    assert get_schedule(("exponential", 0.9), 10, 1.0)(3) == pytest.approx(0.81)
    assert get_schedule("cosine", 10, 1.0)(1) == 1.0
    with pytest.raises(ValueError, match="schedule"):
        get_schedule("linear", 10, 1.0)


def test_adam_validates_input():
    prob = problem()
    with pytest.raises(ValueError, match="lr"):
        adam(prob, lr=-1.0, progress=False)
    with pytest.raises(ValueError, match="betas"):
        adam(prob, betas=(1.0, 0.9), progress=False)
    with pytest.raises(TypeError, match="batch_size"):
        adam(prob, batch_size=2.5, progress=False)


def test_adam_resume_is_bitwise(tmp_path):
    ck = tmp_path / "adam.npz"
    full = adam(problem(), maxiter=40, **ADAM)
    # interrupt at step 17 (the cosine schedule's horizon is maxiter, so stop by callback)
    part = adam(problem(), maxiter=40, checkpoint=ck, checkpoint_every=5,
                callback=lambda k, *a: k == 17, **ADAM)
    assert part.nit == 17 and ck.exists() and load_checkpoint(ck)[1]["nit"] == 17
    res = adam(problem(), maxiter=40, checkpoint=ck, checkpoint_every=100, resume=True, **ADAM)
    np.testing.assert_array_equal(res.x, full.x)
    assert res.history["objective"] == full.history["objective"]
    assert res.nit == 40 and res.nfev == full.nfev


def test_gauss_newton_resume_is_bitwise(tmp_path):
    ck = tmp_path / "gn.npz"
    full = gauss_newton(problem(), maxiter=8, progress=False, gtol=0.0, ftol=0.0)
    part = gauss_newton(problem(), maxiter=8, progress=False, gtol=0.0, ftol=0.0, checkpoint=ck,
                        checkpoint_every=2, callback=lambda k, *a: k == 3)
    assert part.nit == 3 and part.message == "stopped by callback"
    res = gauss_newton(problem(), maxiter=8, progress=False, gtol=0.0, ftol=0.0, checkpoint=ck,
                       resume=True)
    np.testing.assert_array_equal(res.x, full.x)
    assert res.history["objective"] == full.history["objective"]
    assert res.n_products == full.n_products and res.sweeps == full.sweeps


def test_lbfgs_resume_continues_from_saved_iterate(tmp_path):
    """L-BFGS's memory restarts on resume (documented): the run continues from the
    saved iterate and history, with the iteration count carried over."""
    ck = tmp_path / "lb.npz"
    a = lbfgs(problem(), maxiter=10, progress=False, checkpoint=ck, checkpoint_every=5)
    arrays, meta = load_checkpoint(ck)
    np.testing.assert_array_equal(arrays["x"], a.x)
    res = lbfgs(problem(), maxiter=25, progress=False, checkpoint=ck, resume=True)
    assert res.nit > 10 and res.history["iteration"][:11] == list(range(11))
    assert res.history["objective"][:11] == a.history["objective"]
    assert res.fun < a.fun
    # resuming a finished run returns its iterate
    again = lbfgs(problem(), maxiter=res.nit, progress=False, checkpoint=ck, resume=True)
    np.testing.assert_array_equal(again.x, res.x)


def test_resume_rejects_foreign_checkpoint(tmp_path):
    ck = tmp_path / "c.npz"
    adam(problem(), maxiter=2, checkpoint=ck, checkpoint_every=1, **ADAM)
    with pytest.raises(ValueError, match="written by 'adam'"):
        gauss_newton(problem(), maxiter=2, progress=False, checkpoint=ck, resume=True)
    with pytest.raises(ValueError, match="batch_size"):
        adam(problem(), maxiter=4, checkpoint=ck, resume=True, **{**ADAM, "batch_size": 5})


def test_checkpoint_write_is_atomic_and_exact(tmp_path):
    ck = tmp_path / "sub" / "x.npz"
    x = np.random.default_rng(0).standard_normal(5)
    save_checkpoint(ck, {"x": x}, {"big": 2 ** 100, "method": "m"})
    arrays, meta = load_checkpoint(ck)
    assert arrays["x"].tobytes() == x.tobytes() and meta["big"] == 2 ** 100
    assert os.listdir(ck.parent) == ["x.npz"]  # no temporary file left behind
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(ck, {"__meta__": x}, {})
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.npz")


def test_adam_survives_sigkill_and_resumes_bitwise(tmp_path):
    ck = tmp_path / "killed.npz"
    N = 300
    script = PROBLEM + textwrap.dedent(f"""
        import time
        from ocp_learn.optim import adam
        slow = lambda *a: time.sleep(0.01)
        adam(problem(), maxiter={N}, checkpoint={str(ck)!r}, checkpoint_every=4,
             callback=slow, **{ADAM!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        step = 0
        while time.time() < deadline and proc.poll() is None:
            if ck.exists():
                step = load_checkpoint(ck)[1]["nit"]
                if step >= 20:
                    break
            time.sleep(0.05)
        assert proc.poll() is None, f"the run ended before it was killed: {proc.stderr.read()}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    step = load_checkpoint(ck)[1]["nit"]
    assert 20 <= step < N
    res = adam(problem(), maxiter=N, checkpoint=ck, resume=True, **ADAM)
    full = adam(problem(), maxiter=N, **ADAM)
    np.testing.assert_array_equal(res.x, full.x)
