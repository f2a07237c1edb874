"""Non-finite objective or gradient during optimization.

Real blow-ups, no mocks: a linear ODE ``z' = a z`` with forward Euler on a long
horizon overflows for ``a`` beyond ~67 (``nt = 200``, ``h = 0.5``).  Each
optimizer must back off (line search) or stop with ``success=False``, a message
naming the cause ("ODE solution overflowed at step k") and a finite iterate
whose objective is finite -- never NaN parameters.
"""
import numpy as np
import pytest

import ocp_learn as ol
from ocp_learn.costs.terminal import MeanOfColumns
from ocp_learn.errors import NonFiniteError
from ocp_learn.optim import adam, gauss_newton, lbfgs
from ocp_learn.optim.history import Objective
from ocp_learn.problems import NeuralODEClassifier

# the overflows below are the point of these tests; the sweep turns them into NonFiniteError
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                                        "ignore:invalid value encountered:RuntimeWarning")


def unbounded():
    """``J(a) = -mean z(T)``, ``z(T) = (1 + h a)^nt``: unbounded below; its infimum lies in
    the overflow region, so a descent method must run into it."""
    return ol.OCP(ol.LinearModel(1), np.ones((4, 1)), MeanOfColumns([0], weights=[-1.0]),
                  T=100.0, nt=200, integrator="euler")


def far_target():
    """Least squares ``1/2 (z(T) - 1e150)^2``: optimum at ``a ~ 9.2``, overflow from ``a ~ 67``;
    Gauss--Newton steps from far below the target are astronomically long."""
    return NeuralODEClassifier(np.ones((4, 1)), np.full(4, 1e150), loss="squares",
                               model=ol.LinearModel(1), fit_head=False, T=100.0, nt=200,
                               integrator="euler", tikhonov=0.0)


class Counting:
    """Delegates to a problem; counts the NonFiniteErrors its objective raised."""

    def __init__(self, problem):
        self.problem, self.nonfinite = problem, 0

    def __getattr__(self, name):
        return getattr(self.problem, name)

    def objective(self, theta, batch=None):
        try:
            return self.problem.objective(theta, batch)
        except NonFiniteError:
            self.nonfinite += 1
            raise


def assert_finite_result(prob, res):
    assert np.all(np.isfinite(res.x)), res.x
    assert np.isfinite(res.fun)
    assert res.fun == pytest.approx(prob.objective(res.x), rel=1e-12)


def test_the_sweep_names_the_overflowing_step():
    prob = unbounded()
    with pytest.raises(NonFiniteError, match=r"ODE solution overflowed at step \d+") as e:
        prob.objective(np.array([100.0]))
    assert 0 < e.value.step < prob.nt


def test_lbfgs_stops_at_last_finite_iterate():
    prob = unbounded()
    res = lbfgs(prob, np.zeros(1), maxiter=100, progress=False)
    assert not res.success
    assert "ODE solution overflowed at step" in res.message
    assert_finite_result(prob, res)
    assert res.fun < prob.objective(np.zeros(1))  # it made progress before the wall


def test_adam_stops_and_returns_the_previous_iterate():
    prob = far_target()
    th0 = np.zeros(1)
    res = adam(prob, th0, maxiter=20, lr=100.0, progress=False)  # first step: a = 100, overflow
    assert not res.success
    assert "ODE solution overflowed at step" in res.message and "iterate 1" in res.message
    np.testing.assert_array_equal(res.x, th0)
    assert res.nit == 0
    assert_finite_result(prob, res)


def test_adam_objective_overflow_is_named_too():
    prob = far_target()
    res = adam(prob, np.zeros(1), maxiter=20, lr=20.0, progress=False)  # a = 20: J = inf
    assert not res.success and "objective is not finite" in res.message
    assert_finite_result(prob, res)


def test_adam_rejects_nonfinite_start():
    with pytest.raises(ValueError, match="theta0: the objective is not finite"):
        adam(far_target(), np.array([100.0]), maxiter=5, progress=False)


class Fenced(Counting):
    """A classifier whose ODE "overflows" outside the ball ``|theta - center| <= R``: every
    evaluation there raises the sweep's NonFiniteError (the brief's fenced problem)."""

    def __init__(self, problem, center, R):
        super().__init__(problem)
        self.center, self.R = center, R

    def _check(self, theta):
        if np.linalg.norm(theta - self.center) > self.R:
            self.nonfinite += 1
            raise NonFiniteError("ODE solution overflowed at step 0 (outside the fence)", step=0)

    def objective(self, theta, batch=None):
        self._check(theta)
        return self.problem.objective(theta, batch)

    def objective_and_gradient(self, theta, batch=None):
        self._check(theta)
        return self.problem.objective_and_gradient(theta, batch)

    def evaluate(self, theta, batch=None, gradient=True, **kw):
        self._check(theta)
        return self.problem.evaluate(theta, batch, gradient, **kw)

    def gauss_newton_operator(self, theta, batch=None):
        self._check(theta)
        return self.problem.gauss_newton_operator(theta, batch)


def test_gauss_newton_line_search_backtracks_through_overflow():
    x, y = ol.datasets.rings(40, seed=1)
    base = NeuralODEClassifier(x, y, augment=1, width=4, nt=3)
    th0 = base.init_params(0)
    first = gauss_newton(base, th0, maxiter=1, progress=False)
    step = np.linalg.norm(first.x - th0)
    prob = Fenced(base, th0, 0.3 * step)  # the first full step leaves the fence
    res = gauss_newton(prob, th0, maxiter=6, progress=False)
    assert prob.nonfinite > 0  # the line search met the "overflow" ...
    assert np.linalg.norm(res.x - th0) <= prob.R  # ... and backtracked inside
    assert_finite_result(base, res)
    f = res.history["objective"]
    assert all(b <= a for a, b in zip(f, f[1:])) and f[-1] < f[0]
    assert len(f) >= 3  # it went on after the first backtracking


def test_gauss_newton_stops_when_overflow_persists():
    prob = far_target()
    th0 = np.zeros(1)
    res = gauss_newton(prob, th0, maxiter=30, progress=False)
    assert not res.success
    assert "ODE solution overflowed at step" in res.message
    assert "last finite iterate" in res.message
    np.testing.assert_array_equal(res.x, th0)
    assert_finite_result(prob, res)


def test_objective_wrapper_never_evaluates_nan_parameters():
    class Boom:
        def objective_and_gradient(self, x, batch=None):  # pragma: no cover - must not run
            raise AssertionError("called with non-finite parameters")

    obj = Objective(Boom())
    f, g = obj(np.array([np.nan, 1.0]))
    assert f == np.inf and np.all(g == 0.0)
    assert "non-finite parameters" in obj.failure


# --- the potential flow (CNF, MFG): an overflow inside a stage, every backend ---------------
def _flows(backend):
    from ocp_learn.problems.cnf import ContinuousNormalizingFlow
    from ocp_learn.problems.mfg import mfg_preset

    x = np.random.default_rng(0).standard_normal((16, 2))
    return {"cnf": ContinuousNormalizingFlow(x, width=4, nt=2, backend=backend),
            "cnf-hjb": ContinuousNormalizingFlow(x, width=4, nt=2, backend=backend, alpha_R=1.0),
            "mfg-ot": mfg_preset("ot", dim=2, n_samples=16, backend=backend),
            "mfg-crowd": mfg_preset("crowd", dim=2, n_samples=16, backend=backend)}


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("scale", [1e100, 1e200, 1e300])
def test_a_diverging_flow_raises_nonfinite_error_on_every_backend(backend, scale):
    for prob in _flows(backend).values():
        theta = prob.init_params(0) * scale
        for gradient in (False, True):
            with pytest.raises(NonFiniteError, match="overflowed"):
                prob.evaluate(theta, None, gradient=gradient)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_adam_on_a_diverging_flow_returns_a_finite_iterate(backend):
    prob = _flows(backend)["cnf"]
    res = adam(prob, maxiter=5, lr=1e150, progress=False)
    assert not res.success and "non-finite" in res.message
    assert_finite_result(prob, res)
