"""Small problems that follow the optimizers' contract (:class:`ocp_learn.protocols.Problem`)
without an ODE: a quadratic with a known minimizer and a linear objective that "overflows"
outside a box (each evaluation there raises the sweep's :class:`NonFiniteError`)."""
import numpy as np

from ocp_learn.errors import NonFiniteError
from ocp_learn.ledger import Ledger
from ocp_learn.ocp import Evaluation


class BareToy:
    """The Problem contract (only) around ``_value_grad(theta) -> (f, g)``."""

    n_samples = 1

    def __init__(self, p):
        self.n_params = p
        self.x0 = np.zeros((1, 1))

    def check_theta(self, theta, name="theta"):
        theta = np.asarray(theta, dtype=np.float64)
        if theta.shape != (self.n_params,):
            raise ValueError(f"{name} must have shape ({self.n_params},), got {theta.shape}")
        if not np.all(np.isfinite(theta)):
            raise ValueError(f"{name} contains non-finite values")
        return theta

    def init_params(self, seed=0):
        return np.zeros(self.n_params)

    def evaluate(self, theta, batch=None, gradient=True, *, x=None):
        f, g = self._value_grad(self.check_theta(theta))
        return Evaluation(float(f), g if gradient else None, Ledger(steps=1))

    def objective(self, theta, batch=None):
        return self.evaluate(theta, batch, gradient=False).value

    def objective_and_gradient(self, theta, batch=None):
        ev = self.evaluate(theta, batch)
        return ev.value, ev.gradient



class Toy(BareToy):
    """:class:`BareToy` with ``set_samples`` and ``gauss_newton_operator`` (the Gauss--Newton
    matrix ``curvature I``)."""

    curvature = 0.0

    def set_samples(self, x):
        self.x0 = np.asarray(x)

    def gauss_newton_operator(self, theta, batch=None):
        ev = self.evaluate(theta, batch)
        return _Operator(ev, self.curvature)


class _Operator:
    def __init__(self, ev, curvature):
        self.evaluation, self.value, self.gradient = ev, ev.value, ev.gradient
        self.ledger, self.curvature = Ledger(), curvature

    def matvec(self, v):
        return self.curvature * np.asarray(v)


class Quadratic(Toy):
    """``J = 1/2 theta^T Q theta - c^T theta`` with a known minimizer."""

    def __init__(self, p=6, seed=0):
        super().__init__(p)
        rng = np.random.default_rng(seed)
        B = rng.standard_normal((p, p))
        self.Q = B @ B.T + p * np.eye(p)
        self.c = rng.standard_normal(p)

    def _value_grad(self, theta):
        return 0.5 * theta @ self.Q @ theta - self.c @ theta, self.Q @ theta - self.c


class Wall(Toy):
    """``J = -sum(theta) + |theta|^2 / 20``, whose minimizer ``theta_i = 10`` lies outside
    ``max |theta_i| <= R`` (``R < 10``), where every evaluation raises ``NonFiniteError``
    ("overflowed at step 0"): a descent method runs into the wall."""

    curvature = 0.1

    def __init__(self, p=3, R=5.0):
        super().__init__(p)
        self.R = R

    def _value_grad(self, theta):
        if np.max(np.abs(theta)) > self.R:
            raise NonFiniteError("ODE solution overflowed at step 0 (outside the wall)", step=0)
        return -float(np.sum(theta)) + 0.05 * float(theta @ theta), -1.0 + 0.1 * theta
