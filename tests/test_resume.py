"""Kill-and-resume of the training loops.

A training subprocess is killed with SIGKILL mid-run (no chance to clean up: the
checkpoint on disk is whatever the last atomic write left), then the run is
resumed from that file and compared with an uninterrupted run.

* Gauss--Newton--CG: the resumed final iterate is **bitwise** the uninterrupted one
  (its whole state -- iterate, damping, counters, history -- is in the checkpoint).
* L-BFGS: scipy's L-BFGS-B memory (the correction pairs and its line-search state)
  cannot be handed back to scipy, so the resumed run restarts the memory at the saved
  iterate.  Both runs are converged to ``gtol = 1e-7``; the documented tolerance is
  ``|f_resumed - f_full| <= 1e-8 max(1, |f_full|)`` and
  ``|x_resumed - x_full| <= 1e-3 |x_full|`` (same local minimum, optimization
  tolerance apart).
* Adam: see ``tests/test_adam_checkpoint.py::test_adam_survives_sigkill_and_resumes_bitwise``.
"""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from ocp_learn.optim import gauss_newton, lbfgs
from ocp_learn.optim.checkpoint import load_checkpoint

PROBLEM = textwrap.dedent("""
    from ocp_learn.datasets import rings
    from ocp_learn.problems import NeuralODEClassifier

    def problem():
        x, y = rings(48, seed=5)
        return NeuralODEClassifier(x, y, augment=1, width=4, nt=3, tikhonov=1e-3)

    def regression():
        # a smooth regression that L-BFGS converges on in ~40 iterations
        import numpy as np
        x = np.random.default_rng(5).uniform(-1, 1, (40, 2))
        y = np.sin(2 * x[:, 0]) * x[:, 1]
        return NeuralODEClassifier(x, y, loss="squares", width=3, nt=3, tikhonov=1e-2)
""")
_ns = {}
exec(PROBLEM, _ns)
problem, regression = _ns["problem"], _ns["regression"]

GN = dict(maxiter=14, gtol=0.0, ftol=0.0, progress=False, seed=3)
LB = dict(maxiter=400, gtol=1e-7, ftol=0.0, progress=False, seed=3)


def run_and_kill(ck, call, key, at_least, timeout=120):
    """Start ``call`` (source of one optimizer call, slowed by a callback) in a subprocess,
    SIGKILL it once the checkpoint's ``key`` reaches ``at_least``; return that value."""
    script = PROBLEM + textwrap.dedent("""
        import time
        from ocp_learn.optim import gauss_newton, lbfgs
        slow = lambda *a: time.sleep(0.05)
    """) + call
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None:
            if ck.exists():
                try:
                    if load_checkpoint(ck)[1][key] >= at_least:
                        break
                except (ValueError, OSError, KeyError):  # pragma: no cover - cannot be torn
                    raise
            time.sleep(0.02)
        assert proc.poll() is None, f"the run ended before it was killed: {proc.stderr.read()}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    # the file left by the killed process is a complete checkpoint (atomic writes)
    arrays, meta = load_checkpoint(ck)
    assert np.all(np.isfinite(arrays["x"]))
    return meta[key]


def test_gauss_newton_survives_sigkill_and_resumes_bitwise(tmp_path):
    ck = tmp_path / "gn.npz"
    call = (f"gauss_newton(problem(), checkpoint={str(ck)!r}, checkpoint_every=1, "
            f"callback=slow, **{GN!r})\n")
    it = run_and_kill(ck, call, "nit", 3)
    assert 3 <= it < GN["maxiter"]
    res = gauss_newton(problem(), checkpoint=ck, resume=True, **GN)
    full = gauss_newton(problem(), **GN)
    assert res.nit == full.nit == GN["maxiter"]
    np.testing.assert_array_equal(res.x, full.x)  # bitwise
    assert res.history["objective"] == full.history["objective"]
    assert res.damping == full.damping and res.n_products == full.n_products


def test_lbfgs_survives_sigkill_and_resumes_within_tolerance(tmp_path):
    ck = tmp_path / "lb.npz"
    call = (f"lbfgs(regression(), checkpoint={str(ck)!r}, checkpoint_every=2, callback=slow, "
            f"**{LB!r})\n")
    it = run_and_kill(ck, call, "nit", 6)
    assert it >= 6
    saved = load_checkpoint(ck)
    res = lbfgs(regression(), checkpoint=ck, resume=True, **LB)
    full = lbfgs(regression(), **LB)
    assert full.success and res.success, (full.message, res.message)
    # the resumed history starts with the killed run's rows, bitwise
    assert res.history["objective"][:it + 1] == saved[1]["history"]["objective"]
    assert res.history["objective"][:it + 1] == full.history["objective"][:it + 1]
    # documented tolerance (module docstring): same minimum to the optimization tolerance
    assert abs(res.fun - full.fun) <= 1e-8 * max(1.0, abs(full.fun))
    assert np.linalg.norm(res.x - full.x) <= 1e-3 * np.linalg.norm(full.x)


def test_resume_of_a_finished_gauss_newton_run_is_a_no_op(tmp_path):
    ck = tmp_path / "done.npz"
    full = gauss_newton(problem(), checkpoint=ck, checkpoint_every=5, **{**GN, "maxiter": 4})
    again = gauss_newton(problem(), checkpoint=ck, resume=True, **{**GN, "maxiter": 4})
    np.testing.assert_array_equal(again.x, full.x)
    assert again.nit == 4


@pytest.mark.parametrize("opt", [gauss_newton, lbfgs])
def test_resume_rejects_a_checkpoint_of_another_problem(tmp_path, opt):
    from ocp_learn.problems import NeuralODEClassifier
    from ocp_learn.datasets import rings

    ck = tmp_path / "other.npz"
    opt(problem(), maxiter=2, checkpoint=ck, checkpoint_every=1, progress=False)
    x, y = rings(48, seed=5)
    bigger = NeuralODEClassifier(x, y, augment=1, width=6, nt=3)
    with pytest.raises(ValueError, match="parameters"):
        opt(bigger, maxiter=4, checkpoint=ck, resume=True, progress=False)
