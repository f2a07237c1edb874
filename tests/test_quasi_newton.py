"""L-BFGS with kept correction pairs (:mod:`ocp_learn.optim.quasi_newton`)."""
import numpy as np
import pytest

from ocp_learn.optim import LBFGSMemory, lbfgs, lbfgs_memory, lbfgs_resampled
from ocp_learn.optim.checkpoint import load_checkpoint
from ocp_learn.problems.mfg import mfg_preset

from toy_problems import Quadratic


def test_two_loop_is_the_bfgs_inverse_hessian_of_its_pairs():
    """The direction equals ``-H g`` with ``H`` built by the BFGS update from ``gamma I``."""
    rng = np.random.default_rng(0)
    p, k = 7, 4
    A = rng.standard_normal((p, p))
    A = A @ A.T + np.eye(p)
    mem = LBFGSMemory(k)
    pairs = [(s, A @ s) for s in rng.standard_normal((k + 2, p))]
    for s, y in pairs:
        assert mem.update(s, y)
    assert len(mem) == k
    kept = pairs[-k:]
    s, y = kept[-1]
    H = (s @ y) / (y @ y) * np.eye(p)
    for s, y in kept:
        r = 1.0 / (y @ s)
        V = np.eye(p) - r * np.outer(y, s)
        H = V.T @ H @ V + r * np.outer(s, s)
    g = rng.standard_normal(p)
    assert np.allclose(mem.direction(g), -H @ g, rtol=1e-12, atol=1e-14)
    assert not mem.update(np.ones(p), -np.ones(p))         # negative curvature: skipped
    st = mem.state()
    back = LBFGSMemory.from_state(st, k)
    assert np.array_equal(back.direction(g), mem.direction(g))
    assert np.allclose(LBFGSMemory().direction(g), -g / np.linalg.norm(g))


def test_empty_memory_follows_scipys_lbfgsb_and_converges():
    q = Quadratic()
    ours = lbfgs_memory(q, maxiter=50, gtol=1e-10, progress=False)
    ref = lbfgs(q, maxiter=50, gtol=1e-10, progress=False)
    x_star = np.linalg.solve(q.Q, q.c)
    assert ours.success and np.allclose(ours.x, x_star, rtol=1e-8, atol=1e-9)
    assert abs(ours.nit - ref.nit) <= 1
    # a real problem: the MFG, the first iterations as scipy's
    prob = mfg_preset("crowd", dim=2, n_samples=64, seed=0, nt=2)
    th = prob.init_params(0)
    a = lbfgs_memory(prob, th, maxiter=5, progress=False)
    b = lbfgs(prob, th, maxiter=5, progress=False)
    assert a.nit == b.nit == 5 and a.nfev == b.nfev
    assert np.allclose(a.x, b.x, rtol=1e-6, atol=1e-9)
    assert len(a.memory) == 5


def test_kept_pairs_start_a_new_run_with_a_quasi_newton_step():
    q = Quadratic(p=8, seed=1)
    first = lbfgs_memory(q, maxiter=4, progress=False)
    cold = lbfgs_memory(q, first.x, maxiter=1, progress=False)
    warm = lbfgs_memory(q, first.x, maxiter=1, progress=False, pairs=first.memory)
    assert warm.fun < cold.fun
    with pytest.raises(TypeError, match="pairs"):
        lbfgs_memory(q, maxiter=1, progress=False, pairs=[])
    with pytest.raises(ValueError, match="pairs"):
        lbfgs_memory(Quadratic(p=3), maxiter=1, progress=False, pairs=first.memory)


def _draw(n, rng):
    return mfg_preset("crowd", dim=2, n_samples=8, seed=0, nt=2).rho0.sample(n, rng)


def _mfg():
    return mfg_preset("crowd", dim=2, n_samples=48, seed=0, nt=2)


def test_resampled_with_kept_pairs_resumes_bit_for_bit(tmp_path):
    kw = dict(stages=((48, 6),), resample_every=2, n_val=40, seed=3, keep_pairs=True)
    full = lbfgs_resampled(_mfg(), _draw, **kw)
    ck = str(tmp_path / "ck.npz")

    def stop(it, theta, f, val):
        if it >= 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lbfgs_resampled(_mfg(), _draw, checkpoint=ck, callback=stop, **kw)
    arrays, meta = load_checkpoint(ck)
    assert meta["nit"] == 4 and arrays["S"].shape == arrays["Y"].shape and arrays["S"].shape[0] >= 3
    resumed = lbfgs_resampled(_mfg(), _draw, checkpoint=ck, resume=True, **kw)
    assert np.array_equal(resumed["theta"], full["theta"])
    assert resumed["history"]["objective"] == full["history"]["objective"]
    # restarting scipy on every draw is the default, and a different run
    plain = lbfgs_resampled(_mfg(), _draw, **{**kw, "keep_pairs": False})
    assert not np.array_equal(plain["theta"], full["theta"])


def test_train_flow_keeps_pairs_with_resampling():
    from ocp_learn.recipes.flow import flow_data, train_flow

    def draw(n, rng):
        return flow_data("8gaussians", n, rng)[0]

    _, res, _ = train_flow(draw(32, 0), maxiter=4, resample_every=2, draw=draw, keep_pairs=True,
                           width=4, nt=2, backend="numpy")
    assert res.method == "L-BFGS, resampled, pairs kept" and res.nit == 4
