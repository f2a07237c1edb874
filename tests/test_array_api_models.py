"""The models, the classifier's losses and the running costs run in the array namespace of
their states: objective + gradient through the whole OCP on ``array_api_strict`` arrays
(which refuse NumPy functions, NumPy scalars, implicit conversions and fancy indexing)
equal the NumPy run to 1e-12, for every model x explicit integrator x memory strategy, and
the final state and the adjoint stay in the strict namespace.  The ``gpu`` tests run a
selection of the same cases on CuPy (skipped without a CUDA device)."""
import sys

import numpy as np
import pytest

from ocp_learn import OCP
from ocp_learn.arrays import namespace, to_host
from ocp_learn.costs import KineticEnergy, LinearHeadLoss, QuadraticState, TimeSmoothness
from ocp_learn.integrators import TABLEAUX
from ocp_learn.kernels import cupy_available
from ocp_learn.kernels.mlp_array import ArrayMLPBackend
from ocp_learn.models import HamiltonianNet, LinearModel, SingleLayerNet
from ocp_learn.models.base import Model, array_module
from ocp_learn.models.controlled_linear import ControlEnergy, ControlledLinearModel
from ocp_learn.problems.classification import NeuralODEClassifier

xps = pytest.importorskip("array_api_strict")
needs_device = pytest.mark.skipif(not cupy_available(), reason="needs cupy and a CUDA device")

RK = sorted(TABLEAUX)
RK_STRATEGIES = ["store_all", "store_states", ("checkpoint", 2), ("continuous", "backsolve"),
                 ("continuous", "interpolate")]
LEAPFROG_STRATEGIES = ["store_all", "store_states", ("checkpoint", 2), "reversible"]
BATCH = np.array([0, 2, 3, 5, 6])


def _data(n=7, d=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng, rng.standard_normal((n, d))


# --- the problems: build(xp, integrator, strategy) -> OCP -----------------------------------
def _backend(xp):
    """The network's backend for the namespace ``xp`` (a module, or the name ``"cupy"``)."""
    if xp is np or isinstance(xp, str):
        return "numpy" if xp is np else xp
    return ArrayMLPBackend(xp=xp)


def _classifier(loss, fit_head, running):
    def build(xp, integrator, strategy):
        rng, x = _data()
        labels = {"softmax": rng.integers(0, 3, 7), "logistic": rng.integers(0, 2, 7),
                  "squares": rng.standard_normal((7, 2))}[loss]
        model = SingleLayerNet(3, width=4, backend=_backend(xp))
        costs = {"kinetic": [KineticEnergy(model, 0.5)],
                 "quadratic": [QuadraticState(0.3 * np.eye(3))], None: []}[running]
        return NeuralODEClassifier(x, labels, augment=1, loss=loss, model=model, nt=3,
                                   integrator=integrator, strategy=strategy, fit_head=fit_head,
                                   time_param=("piecewise_linear", 2), smoothness=0.1,
                                   running=costs)
    return build


def _hamiltonian(xp, integrator, strategy):
    rng, x = _data()
    return NeuralODEClassifier(x, rng.integers(0, 2, 7), augment=2, loss="softmax",
                               model=HamiltonianNet(2, xp=xp), nt=3, integrator=integrator,
                               strategy=strategy, time_param=("piecewise_constant", 2))


def _controlled_linear(xp, integrator, strategy):
    rng, x = _data()
    A = np.array([[0.0, 1.0], [-1.0, -0.2]])
    B = np.array([[0.0], [1.0]])
    return OCP(ControlledLinearModel(A, B, xp=xp), x,
               LinearHeadLoss(np.zeros((7, 2)), 2, "squares", fit_head=False), T=2.0, nt=3,
               integrator=integrator, time_param=("piecewise_linear", 4), strategy=strategy,
               running=[QuadraticState(np.eye(2)), ControlEnergy(np.eye(1))])


def _linear(xp, integrator, strategy):
    rng, x = _data()
    return OCP(LinearModel(2, xp=xp), x, LinearHeadLoss(rng.standard_normal((7, 2)), 2,
                                                        "squares"),
               nt=3, integrator=integrator, strategy=strategy, regularizers=[TimeSmoothness(0.1)],
               time_param=("piecewise_linear", 2))


PROBLEMS = {
    "mlp-softmax-kinetic": _classifier("softmax", True, "kinetic"),
    "mlp-logistic-fixed-head": _classifier("logistic", False, None),
    "mlp-squares-quadratic": _classifier("squares", True, "quadratic"),
    "hamiltonian": _hamiltonian,
    "controlled-linear": _controlled_linear,
    "linear": _linear,
}
CASES = ([(p, i, s) for p in PROBLEMS for i in RK for s in RK_STRATEGIES]
         + [("hamiltonian", "leapfrog", s) for s in LEAPFROG_STRATEGIES])


def _evaluate(build, xp, integrator, strategy):
    prob = build(xp, integrator, strategy)
    assert prob.xp is array_module(xp)
    theta = prob.init_params(3)
    ev = prob.evaluate(theta, BATCH)
    return prob, theta, ev


def _close(got, ref, what):
    got, ref = np.asarray(to_host(got), dtype=float), np.asarray(ref, dtype=float)
    err = np.max(np.abs(got - ref)) / max(float(np.max(np.abs(ref))), 1e-300)
    assert err <= 1e-12, (what, err)


@pytest.mark.parametrize("problem,integrator,strategy", CASES, ids=str)
def test_objective_and_gradient_on_strict_arrays_equal_numpy(problem, integrator, strategy):
    build = PROBLEMS[problem]
    _, _, ref = _evaluate(build, np, integrator, strategy)
    _, _, got = _evaluate(build, xps, integrator, strategy)
    assert namespace(got.state) is xps and namespace(got.lam0) is xps
    assert isinstance(got.gradient, np.ndarray) and isinstance(got.value, float)
    _close(got.value, ref.value, "objective")
    _close(got.gradient, ref.gradient, "gradient")
    _close(got.state, ref.state, "y(T)")
    _close(got.lam0, ref.lam0, "lambda(0)")
    assert got.ledger.as_dict() == ref.ledger.as_dict()


@pytest.mark.parametrize("problem,strategy", [("mlp-softmax-kinetic", "store_all"),
                                              ("mlp-logistic-fixed-head", ("checkpoint", 2)),
                                              ("mlp-squares-quadratic", "store_states"),
                                              ("hamiltonian", "store_all")], ids=str)
def test_gauss_newton_products_on_strict_arrays_equal_numpy(problem, strategy):
    build = PROBLEMS[problem]
    ref_prob, theta, _ = _evaluate(build, np, "rk4", strategy)
    prob, _, _ = _evaluate(build, xps, "rk4", strategy)
    v = np.random.default_rng(1).standard_normal(prob.n_params)
    ref = ref_prob.gauss_newton_operator(theta, BATCH)
    got = prob.gauss_newton_operator(theta, BATCH)
    _close(got.matvec(v), ref.matvec(v), "G v")
    _close(got.gradient, ref.gradient, "gradient")


def test_classifier_predictions_on_strict_arrays_equal_numpy():
    build = PROBLEMS["mlp-softmax-kinetic"]
    ref, theta, _ = _evaluate(build, np, "rk4", "store_all")
    prob, _, _ = _evaluate(build, xps, "rk4", "store_all")
    x = np.random.default_rng(2).standard_normal((4, 2))
    _close(prob.decision_function(theta, x), ref.decision_function(theta, x), "r")
    _close(prob.predict_proba(theta), ref.predict_proba(theta), "probabilities")
    assert np.array_equal(prob.predict(theta), ref.predict(theta))
    assert prob.accuracy(theta) == ref.accuracy(theta)


@pytest.mark.parametrize("problem", ["mlp", "hamiltonian", "controlled-linear"])
def test_float32_stays_float32_on_strict_arrays(problem):
    """A float32 problem computes in float32 in the strict namespace (constants and labels
    follow the states' dtype there) and agrees with NumPy's float32 run to its rounding."""
    def build(xp):
        rng, x = _data(d=3)
        if problem == "mlp":
            model = SingleLayerNet(3, 4, backend=_backend(xp))
            return OCP(model, x, LinearHeadLoss(rng.integers(0, 2, 7), 3, "logistic"), nt=3,
                       running=[KineticEnergy(model, 0.5), QuadraticState(np.eye(3))],
                       dtype=np.float32)
        if problem == "hamiltonian":
            return OCP(HamiltonianNet(3, xp=xp), x, LinearHeadLoss(rng.integers(0, 3, 7), 6),
                       nt=3, integrator="leapfrog", strategy="reversible", dtype=np.float32)
        return OCP(ControlledLinearModel(np.eye(3), np.ones((3, 1)), xp=xp), x,
                   LinearHeadLoss(np.zeros((7, 3)), 3, "squares", fit_head=False), nt=3,
                   running=[QuadraticState(np.eye(3)), ControlEnergy(np.eye(1))],
                   time_param=("piecewise_linear", 2), dtype=np.float32)

    ref, got = (b.evaluate(b.init_params(0)) for b in (build(np), build(xps)))
    assert got.state.dtype == xps.float32 and got.lam0.dtype == xps.float32
    assert got.gradient.dtype == np.float32
    assert abs(got.value - ref.value) <= 1e-5 * abs(ref.value)
    assert np.max(np.abs(got.gradient - ref.gradient)) <= 1e-5 * np.max(np.abs(ref.gradient))


def test_classifier_backend_option():
    rng, x = _data()
    prob = NeuralODEClassifier(x, rng.integers(0, 2, 7), backend="numpy", width=4, nt=2)
    assert prob.model.backend.name == "numpy" and prob.settings["backend"] == "numpy"
    assert "backend" not in NeuralODEClassifier(x, rng.integers(0, 2, 7), nt=2).settings
    with pytest.raises(ValueError, match="not both"):
        NeuralODEClassifier(x, rng.integers(0, 2, 7), backend="numpy", model=SingleLayerNet(2))
    with pytest.raises(TypeError, match="backend must be a backend name"):
        NeuralODEClassifier(x, rng.integers(0, 2, 7), backend=ArrayMLPBackend(xp=xps))


def test_labels_go_to_the_namespace_once_and_follow_take():
    prob = PROBLEMS["mlp-softmax-kinetic"](xps, "euler", "store_all")
    theta = prob.init_params(0)
    prob.evaluate(theta, BATCH)
    copies = dict(prob.terminal._resident)
    prob.evaluate(theta, BATCH[::-1])
    assert all(prob.terminal._resident[k][1] is copies[k][1] for k in copies)
    part = prob.take(BATCH)
    ref = PROBLEMS["mlp-softmax-kinetic"](np, "euler", "store_all").take(BATCH)
    _close(part.evaluate(theta).gradient, ref.evaluate(theta).gradient, "part gradient")
    assert prob.terminal._resident[("labels", xps.__name__, "None")][0] is prob.terminal.labels


def test_namespaces_of_models():
    assert Model().array_namespace is np
    assert SingleLayerNet(2).array_namespace is np
    assert SingleLayerNet(2, backend=ArrayMLPBackend(xp=xps)).array_namespace is xps
    assert HamiltonianNet(2, xp=xps).array_namespace is xps
    assert LinearModel(2, xp="numpy").array_namespace is np
    assert array_module(None) is np and array_module(xps) is xps
    with pytest.raises(TypeError, match="xp must be"):
        HamiltonianNet(2, xp="torch")


@pytest.mark.skipif(cupy_available(), reason="a CUDA device is present")
def test_cupy_backend_without_a_device_says_so():
    with pytest.raises(RuntimeError):
        SingleLayerNet(2, backend="cupy")
    with pytest.raises(RuntimeError):
        ControlledLinearModel(np.eye(2), np.ones((2, 1)), xp="cupy")


def test_cupy_is_imported_only_when_asked_for():
    if "cupy" in sys.modules:
        pytest.skip("cupy was imported before this test")
    SingleLayerNet(2, backend=ArrayMLPBackend(xp=xps))
    _evaluate(PROBLEMS["hamiltonian"], xps, "leapfrog", "reversible")
    assert "cupy" not in sys.modules


def test_strict_namespace_catches_a_numpy_call():
    """Negative control: a model that calls NumPy on its states fails on strict arrays."""

    class Leaky(LinearModel):
        def rhs(self, z, t, theta):
            return np.tanh(z @ self.unpack(theta)["A"].T)

    rng, x = _data()
    with pytest.raises((TypeError, ValueError, RuntimeError)):
        prob = OCP(Leaky(2, xp=xps), x, LinearHeadLoss(rng.standard_normal((7, 2)), 2, "squares"))
        prob.evaluate(prob.init_params(0))


# --- the same on a GPU (CuPy), where one is present ------------------------------------------
GPU_CASES = ([(p, "rk4", "store_all") for p in PROBLEMS]
             + [(p, "heun", ("checkpoint", 2)) for p in PROBLEMS]
             + [("mlp-softmax-kinetic", "euler", ("continuous", "backsolve")),
                ("hamiltonian", "leapfrog", "reversible")])


@pytest.mark.gpu
@needs_device
@pytest.mark.parametrize("problem,integrator,strategy", GPU_CASES, ids=str)
def test_objective_and_gradient_on_cupy_equal_numpy(problem, integrator, strategy):
    import cupy

    build = PROBLEMS[problem]
    _, _, ref = _evaluate(build, np, integrator, strategy)
    prob, _, got = _evaluate(build, "cupy", integrator, strategy)
    assert isinstance(got.state, cupy.ndarray) and isinstance(got.lam0, cupy.ndarray)
    _close(got.value, ref.value, "objective")
    _close(got.gradient, ref.gradient, "gradient")
    _close(got.state, ref.state, "y(T)")
    terminal = prob.terminal
    if problem.startswith("mlp"):
        assert all(isinstance(v[1], cupy.ndarray) for v in terminal._resident.values())


@pytest.mark.gpu
@needs_device
@pytest.mark.parametrize("problem", ["mlp-softmax-kinetic", "mlp-logistic-fixed-head"])
def test_gauss_newton_products_on_cupy_equal_numpy(problem):
    build = PROBLEMS[problem]
    ref_prob, theta, _ = _evaluate(build, np, "rk4", "store_all")
    prob, _, _ = _evaluate(build, "cupy", "rk4", "store_all")
    v = np.random.default_rng(1).standard_normal(prob.n_params)
    _close(prob.gauss_newton_product(theta, v, BATCH),
           ref_prob.gauss_newton_product(theta, v, BATCH), "G v")
    _close(prob.predict_proba(theta), ref_prob.predict_proba(theta), "probabilities")


@pytest.mark.gpu
@needs_device
def test_float32_classifier_on_cupy():
    import cupy

    rng, x = _data(d=3)
    labels = rng.integers(0, 3, 7)
    probs = [OCP(model, x, LinearHeadLoss(labels, 3, "softmax"), nt=3,
                 running=[KineticEnergy(model, 0.5)], dtype=np.float32)
             for model in (SingleLayerNet(3, 4), SingleLayerNet(3, 4, backend="cupy"))]
    ref, got = (p.evaluate(p.init_params(0)) for p in probs)
    assert got.state.dtype == cupy.float32 and got.gradient.dtype == np.float32
    assert abs(got.value - ref.value) <= 1e-5 * abs(ref.value)
    assert np.max(np.abs(got.gradient - ref.gradient)) <= 1e-5 * np.max(np.abs(ref.gradient))
