"""The sweep machinery calls nothing but the array API on the states it is handed.

Every explicit tableau x every strategy (and leapfrog x its strategies), forward, adjoint and
tangent sweeps, on ``array_api_strict`` arrays (which refuse NumPy functions, NumPy scalars
and implicit conversions), equal the NumPy run to 1e-12 and keep their results in the
strict namespace."""
import numpy as np
import pytest

from ocp_learn.arrays import Workspace, namespace
from ocp_learn.controls import PiecewiseLinear, StepControl
from ocp_learn.gradients import Sweep, get_strategy
from ocp_learn.integrators import TABLEAUX, get_integrator
from ocp_learn.ledger import Ledger
from ocp_learn.protocols import FieldWithResiduals, PartitionedField

xps = pytest.importorskip("array_api_strict")

N_NODES, NT, T = 3, 5, 1.0


def _mat(xp, theta, start, m, k):
    return xp.reshape(theta[start:start + m * k], (m, k))


class TanhField:
    """``F(y; theta) = tanh(y A + b)``, ``theta = [A.ravel(), b]``: array-API calls only."""

    def __init__(self, D):
        self.state_dim = D
        self.size = D * D + D

    def _Ab(self, theta):
        xp = namespace(theta)
        D = self.state_dim
        return _mat(xp, theta, 0, D, D), theta[D * D:]

    def rhs(self, y, t, theta):
        A, b = self._Ab(theta)
        return namespace(y).tanh(y @ A + b)

    def jvp(self, y, t, theta, dy, dtheta):
        xp = namespace(y)
        A, b = self._Ab(theta)
        f = xp.tanh(y @ A + b)
        u = dy @ A if dy is not None else xp.zeros_like(y)
        if dtheta is not None:
            dA, db = self._Ab(dtheta)
            u = u + y @ dA + db
        return (1.0 - f * f) * u

    def vjp(self, y, t, theta, ybar, aux=None):
        xp = namespace(y)
        A, b = self._Ab(theta)
        f = xp.tanh(y @ A + b) if aux is None else aux
        u = ybar * (1.0 - f * f)
        g = xp.concat([xp.reshape(xp.matrix_transpose(y) @ u, (-1,)), xp.sum(u, axis=0)])
        return u @ xp.matrix_transpose(A), g


class TanhFieldWithResiduals(TanhField):
    """:class:`TanhField` that hands its vjp the activations (``rhs_tape``)."""

    layout = None

    def init_params(self, rng=None):  # pragma: no cover - the contract's item, unused here
        raise NotImplementedError

    def initial_state(self, x):  # pragma: no cover
        return x

    def rhs_tape(self, y, t, theta, keep=True):
        f = self.rhs(y, t, theta)
        return f, (f if keep else None)

    def aux_floats(self, n):
        return n * self.state_dim


class SplitField:
    """``dy/dt = tanh(z A + a)``, ``dz/dt = -y B``, ``theta = [A.ravel(), a, B.ravel()]``."""

    def __init__(self, d):
        self.partition = d
        self.size = 2 * d * d + d

    def _p(self, theta):
        xp, d = namespace(theta), self.partition
        return _mat(xp, theta, 0, d, d), theta[d * d:d * d + d], _mat(xp, theta, d * d + d, d, d)

    def _cat(self, xp, gA=None, ga=None, gB=None):
        d = self.partition
        z2, z1 = xp.zeros(d * d, dtype=xp.float64), xp.zeros(d, dtype=xp.float64)
        parts = [z2 if gA is None else xp.reshape(gA, (-1,)), z1 if ga is None else ga,
                 z2 if gB is None else xp.reshape(gB, (-1,))]
        return xp.concat(parts)

    def rhs_y(self, z, t, theta):
        A, a, _ = self._p(theta)
        return namespace(z).tanh(z @ A + a)

    def rhs_z(self, y, t, theta):
        _, _, B = self._p(theta)
        return -(y @ B)

    def jvp_y(self, z, t, theta, dz, dtheta):
        A, a, _ = self._p(theta)
        f = namespace(z).tanh(z @ A + a)
        u = dz @ A
        if dtheta is not None:
            dA, da, _ = self._p(dtheta)
            u = u + z @ dA + da
        return (1.0 - f * f) * u

    def jvp_z(self, y, t, theta, dy, dtheta):
        _, _, B = self._p(theta)
        out = -(dy @ B)
        if dtheta is not None:
            out = out - y @ self._p(dtheta)[2]
        return out

    def vjp_y(self, z, t, theta, vbar):
        xp = namespace(z)
        A, a, _ = self._p(theta)
        f = xp.tanh(z @ A + a)
        u = vbar * (1.0 - f * f)
        return u @ xp.matrix_transpose(A), self._cat(xp, gA=xp.matrix_transpose(z) @ u,
                                                     ga=xp.sum(u, axis=0))

    def vjp_z(self, y, t, theta, vbar):
        xp = namespace(y)
        _, _, B = self._p(theta)
        return -(vbar @ xp.matrix_transpose(B)), self._cat(xp, gB=-(xp.matrix_transpose(y) @ vbar))


def _run(xp, field, integrator, strategy, D):
    """Forward + adjoint (the strategy) and a tangent sweep; results as NumPy arrays."""
    rng = np.random.default_rng(7)
    y0, lamN = rng.standard_normal((6, D)), rng.standard_normal((6, D))
    nodes, dnodes = (0.4 * rng.standard_normal((N_NODES, field.size)) for _ in range(2))
    y0, lamN, nodes, dnodes = (xp.asarray(a) for a in (y0, lamN, nodes, dnodes))
    times = np.linspace(0.0, T, NT + 1)
    tp = PiecewiseLinear(N_NODES)
    grad = xp.zeros_like(nodes)

    def sweep(ledger, **kw):
        ctrls = [StepControl(tp, nodes, times[k], times[k + 1] - times[k], 0.0, T, **kw)
                 for k in range(NT)]
        return Sweep(field, get_integrator(integrator), times, ctrls, ledger)

    led = Ledger()
    strat = get_strategy(strategy)
    sw = sweep(led, grad=grad)
    yN, tape = strat.forward(sw, y0)
    lam0 = strat.backward(sw, tape, lamN)
    st = sweep(Ledger(), dnodes=dnodes)
    y, dy = y0, xp.zeros_like(y0)
    for k in range(NT):
        y, dy = st.step_tangent(k, y, dy)
    out = {"yN": yN, "lam0": lam0, "grad": grad, "yT": y, "dyT": dy}
    for name, a in out.items():
        assert namespace(a) is xp, (name, type(a))
    return {k: np.from_dlpack(v) for k, v in out.items()}, led.as_dict()


RK_STRATEGIES = ["store_all", "store_states", ("checkpoint", 2), ("continuous", "backsolve"),
                 ("continuous", "interpolate")]
LEAPFROG_STRATEGIES = ["store_all", "store_states", ("checkpoint", 2), "reversible"]
CASES = ([(name, s, TanhField) for name in TABLEAUX for s in RK_STRATEGIES]
         + [("rk4", "store_all", TanhFieldWithResiduals), ("heun", "store_states",
                                                          TanhFieldWithResiduals)]
         + [("leapfrog", s, SplitField) for s in LEAPFROG_STRATEGIES])


@pytest.mark.parametrize("integrator,strategy,kind", CASES, ids=str)
def test_strict_array_api_run_equals_numpy(integrator, strategy, kind):
    field = kind(2) if kind is SplitField else kind(3)
    D = 4 if kind is SplitField else 3
    ref, led_ref = _run(np, field, integrator, strategy, D)
    got, led = _run(xps, field, integrator, strategy, D)
    assert led == led_ref
    for name in ref:
        err = np.max(np.abs(got[name] - ref[name])) / max(np.max(np.abs(ref[name])), 1e-300)
        assert err <= 1e-12, (name, err)


def test_the_fields_follow_their_contracts():
    assert isinstance(TanhFieldWithResiduals(3), FieldWithResiduals)
    assert not isinstance(TanhField(3), FieldWithResiduals)
    assert isinstance(SplitField(2), PartitionedField)


def test_residuals_are_decided_once_and_counted():
    """A field with residuals has them on its tape (and in the ledger) under an RK
    integrator, not under an integrator that does not use them."""
    ledger = Ledger()
    sw = Sweep(TanhFieldWithResiduals(3), get_integrator("rk4"), [0.0, 1.0], [], ledger)
    assert sw.residuals and sw.tape_floats(np.zeros((5, 3))) == 4 * 5 * 3 + 4 * 5 * 3
    assert not Sweep(TanhField(3), get_integrator("rk4"), [0.0, 1.0], [], ledger).residuals


def test_strict_namespace_catches_a_numpy_call():
    """Negative control: a field that calls NumPy on its input fails on strict arrays."""

    class Leaky(TanhField):
        def rhs(self, y, t, theta):
            A, b = self._Ab(theta)
            return np.tanh(y @ A + b)

    with pytest.raises((TypeError, ValueError, RuntimeError)):
        _run(xps, Leaky(3), "rk4", "store_all", 3)


def test_workspace_reuses_its_arrays_by_key():
    w = Workspace()
    x = np.zeros((4, 3))
    a = w.empty("Y", x)
    assert w.empty("Y", x) is a and w.empty("Z", x) is not a
    assert w.empty("Y", np.zeros((5, 3))) is not a
    assert w.empty("Y", x, np.float32).dtype == np.float32 and len(w) == 4
    s = xps.zeros((4, 3), dtype=xps.float64)
    assert namespace(w.empty("Y", s)) is xps
