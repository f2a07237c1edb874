"""The one optimizer driver (:mod:`ocp_learn.optim.driver`): every method returns the same
``OptimizeResult`` fields, is found by name, and keeps its iterate finite."""
import numpy as np
import pytest
from scipy.optimize import OptimizeResult

from ocp_learn.optim import (RESULT_FIELDS, Serial, adam, gauss_newton, get_optimizer, lbfgs,
                             lbfgs_memory, lbfgs_resampled)
from ocp_learn.optim.checkpoint import load_checkpoint

from toy_problems import BareToy, Quadratic, Wall


def _draw(n, rng):
    return rng.standard_normal((n, 1))


RUNS = {
    "lbfgs": lambda p, **kw: lbfgs(p, maxiter=20, progress=False, **kw),
    "gauss_newton": lambda p, **kw: gauss_newton(p, maxiter=20, progress=False, **kw),
    "adam": lambda p, **kw: adam(p, maxiter=20, lr=1.0, progress=False, **kw),
    "lbfgs_memory": lambda p, **kw: lbfgs_memory(p, maxiter=20, progress=False, **kw),
    "lbfgs_resampled": lambda p, **kw: lbfgs_resampled(p, _draw, stages=((4, 20),),
                                                       resample_every=5, **kw),
}


@pytest.mark.parametrize("name", list(RUNS))
def test_every_optimizer_returns_an_optimize_result_with_the_same_fields(name):
    res = RUNS[name](Quadratic(p=4, seed=2))
    assert isinstance(res, OptimizeResult)
    assert set(RESULT_FIELDS) <= set(res), set(RESULT_FIELDS) - set(res)
    assert np.all(np.isfinite(res.x)) and np.isfinite(res.fun) and res.success, res.message
    assert res.nit >= 1 and res.nfev >= res.nit and isinstance(res.history, dict)
    assert get_optimizer(name) is {"lbfgs": lbfgs, "gauss_newton": gauss_newton, "adam": adam,
                                   "lbfgs_memory": lbfgs_memory,
                                   "lbfgs_resampled": lbfgs_resampled}[name]


def test_resampled_result_keeps_its_dictionary_keys():
    res = RUNS["lbfgs_resampled"](Quadratic(p=4, seed=2))
    for key in ("theta", "validation", "history", "iterations", "nfev", "seconds"):
        assert key in res
    assert np.array_equal(res["theta"], res.x) and res["validation"] == res.fun
    assert res["iterations"] == res.nit


def test_get_optimizer_names_the_known_ones():
    with pytest.raises(ValueError, match="'lbfgs'.*'gauss_newton'.*'adam'.*newton"):
        get_optimizer("newton")


@pytest.mark.parametrize("name", list(RUNS))
def test_the_iterate_stays_finite_when_the_problem_overflows(name):
    """``J`` "overflows" outside a box around the start: each method stops (or backtracks)
    with a finite iterate whose objective is finite and the one reported."""
    prob = Wall(p=3, R=5.0)
    res = RUNS[name](prob)
    assert np.all(np.isfinite(res.x)) and np.max(np.abs(res.x)) <= prob.R
    assert np.isfinite(res.fun)
    if name != "lbfgs_resampled":  # its fun is the validation objective, here the same J
        assert res.fun == prob.objective(res.x)
    assert res.fun < prob.objective(np.zeros(3))  # progress before the wall
    if not res.success:
        assert "overflowed at step" in res.message, res.message
    if name == "adam":
        assert not res.success


def test_adam_that_diverges_returns_its_best_finite_iterate():
    prob = Wall(p=2, R=5.0)
    res = adam(prob, maxiter=50, lr=1.0, progress=False)
    assert not res.success and "iterate" in res.message
    # the best iterate seen is the last one inside the wall (the objective decreases)
    assert res.fun == min(res.history["objective"])


def test_a_callback_stops_every_method(tmp_path):
    for name, run in RUNS.items():
        res = run(Quadratic(p=4, seed=2), callback=lambda k, *a: k >= 2)
        assert res.success and res.message == "stopped by callback", name


def test_start_is_validated_by_the_problem():
    with pytest.raises(ValueError, match="theta0"):
        lbfgs(Quadratic(p=4), np.ones(3), progress=False)
    with pytest.raises(ValueError, match="theta0"):
        adam(Quadratic(p=4), [np.nan] * 4, progress=False)
    with pytest.raises(TypeError, match="problem must follow the Problem contract"):
        lbfgs(object(), progress=False)
    with pytest.raises(TypeError, match="set_samples"):
        lbfgs_resampled(BareToy(2), _draw)


def test_a_finished_resampled_run_resumes_to_its_own_best(tmp_path):
    ck = str(tmp_path / "ck.npz")
    kw = dict(stages=((4, 10),), resample_every=5, n_val=6, seed=3, checkpoint=ck)
    full = lbfgs_resampled(Quadratic(p=4, seed=1), _draw, **kw)
    again = lbfgs_resampled(Quadratic(p=4, seed=1), _draw, resume=True, **kw)
    assert np.array_equal(again.x, full.x) and again.fun == full.fun
    assert again.nit == full.nit and again.history == full.history


def test_a_finished_fixed_batch_checkpoint_warm_starts_the_resampled_run(tmp_path):
    """A finished L-BFGS checkpoint handed to the resampled driver: nothing is left to
    train, and the result is the checkpoint's iterate (not the start point)."""
    ck = str(tmp_path / "ck.npz")
    first = lbfgs(Quadratic(p=4, seed=1), maxiter=3, progress=False, checkpoint=ck)
    assert load_checkpoint(ck)[1]["nit"] == first.nit == 3
    res = lbfgs_resampled(Quadratic(p=4, seed=1), _draw, stages=((4, 3),), seed=3,
                          checkpoint=ck, resume=True)
    assert np.array_equal(res.x, first.x) and np.isfinite(res.fun) and res.nit == 3


class _Recording(Serial):
    """A one-process Parallel that records its calls and is not the checkpoint writer."""

    is_writer = False

    def __init__(self):
        self.calls = []

    def minimize(self, problem, optimizer, theta0, **kwargs):
        self.calls.append(optimizer.__name__)
        return super().minimize(problem, optimizer, theta0, **kwargs)

    def objective_on(self, problem, theta, x):
        self.calls.append("objective_on")
        return super().objective_on(problem, theta, x)


def test_resampled_runs_through_the_parallel_it_is_given(tmp_path):
    ck = tmp_path / "ck.npz"
    par = _Recording()
    kw = dict(stages=((4, 10),), resample_every=5, seed=3)
    res = lbfgs_resampled(Quadratic(p=4, seed=1), _draw, checkpoint=ck, parallel=par, **kw)
    assert par.calls == ["lbfgs", "objective_on"] * 2
    assert not ck.exists()  # not the writer
    serial = lbfgs_resampled(Quadratic(p=4, seed=1), _draw, **kw)
    assert np.array_equal(res.x, serial.x)
    kept = _Recording()
    lbfgs_resampled(Quadratic(p=4, seed=1), _draw, keep_pairs=True, parallel=kept, **kw)
    assert kept.calls[0] == "lbfgs_memory"
    with pytest.raises(TypeError, match="parallel.*objective_on"):
        lbfgs_resampled(Quadratic(p=4, seed=1), _draw, parallel=object(), **kw)
