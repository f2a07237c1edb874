"""float32 mode of the OCP (issue 12, item 4): states, stages, adjoints and the gradient in
single precision, with the tolerances documented in the ``OCP`` docstring."""
import numpy as np
import pytest

import ocp_learn as ol
from ocp_learn.optim import lbfgs
from ocp_learn.verify import dot_product_test, taylor_test

# documented tolerances (OCP docstring, "float32 mode")
VALUE_RTOL = 1e-5      # objective vs the float64 objective
GRAD_RTOL = 1e-4       # gradient vs the float64 gradient (2-norm, relative)
DOT_RTOL = 1e-4        # jvp/vjp dot-product identity
TAYLOR = dict(eps0=0.5, halvings=6, min_order=1.8, floor_rel=1e-5)  # steps >= 0.5/2^6

MODELS = {"mlp": lambda d: ol.SingleLayerNet(d, width=5),
          "linear": lambda d: ol.LinearModel(d)}


def pair(model="mlp", integrator="rk4", time_param=None, n=12, d=3, nt=6, seed=0):
    rng = np.random.default_rng(seed)
    m = MODELS[model](d)
    x = rng.standard_normal((n, d))
    y = rng.integers(0, 3, n)

    def make(dtype):
        return ol.OCP(m, x, ol.LinearHeadLoss(y, d, "softmax"), T=1.3, nt=nt, integrator=integrator,
                      time_param=time_param, running=[ol.KineticEnergy(m, 0.5)],
                      regularizers=[ol.Tikhonov(1e-2), ol.TimeSmoothness(1e-2)], dtype=dtype)

    p64, p32 = make(np.float64), make(np.float32)
    theta = p64.init_params(seed) + 0.3 * rng.standard_normal(p64.n_params)
    return p64, p32, theta


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("integrator", ["euler", "rk4"])
@pytest.mark.parametrize("time_param", [None, ("piecewise_linear", 3)], ids=["const", "pwl"])
def test_float32_end_to_end_and_close_to_float64(model, integrator, time_param):
    p64, p32, theta = pair(model, integrator, time_param)
    assert p32.x0.dtype == np.float32 and p64.x0.dtype == np.float64
    e64, e32 = p64.evaluate(theta), p32.evaluate(theta)
    assert e32.state.dtype == np.float32 and e32.lam0.dtype == np.float32
    assert e32.gradient.dtype == np.float32 and e64.gradient.dtype == np.float64
    assert p32.trajectory(theta).dtype == np.float32
    assert abs(e32.value - e64.value) <= VALUE_RTOL * abs(e64.value)
    rel = np.linalg.norm(e32.gradient - e64.gradient) / np.linalg.norm(e64.gradient)
    assert rel <= GRAD_RTOL, rel
    # but it really is single precision: not bitwise the float64 numbers
    assert rel > 1e-12


@pytest.mark.parametrize("model", list(MODELS))
def test_float32_taylor_test(model):
    _, p32, theta = pair(model)
    v = np.random.default_rng(5).standard_normal(theta.size)
    v /= np.linalg.norm(v)
    f, g = p32.objective_and_gradient(theta)
    res = taylor_test(p32.objective, theta, v, float(np.dot(g.astype(np.float64), v)), **TAYLOR)
    assert res.passed and res.usable >= 4, str(res)


def test_float32_taylor_test_catches_a_wrong_gradient():
    _, p32, theta = pair("mlp")
    v = np.random.default_rng(5).standard_normal(theta.size)
    v /= np.linalg.norm(v)
    _, g = p32.objective_and_gradient(theta)
    g = g.astype(np.float64)
    g[0] *= 1.01  # a 1% error in one entry
    g[: g.size // 2] *= 0.9
    res = taylor_test(p32.objective, theta, v, float(g @ v), **TAYLOR)
    assert not res.passed


def test_float32_dot_product_identity_of_final_state_maps():
    _, p32, theta = pair("mlp")
    rng = np.random.default_rng(3)
    dth = rng.standard_normal(theta.size)
    dth[-p32.layout.unpack(dth)["terminal"].size:] = 0.0  # terminal block does not act on y(T)
    yT = p32.final_state(theta)
    ybar = rng.standard_normal(yT.shape)
    assert p32.final_state_jvp(theta, dth)[1].dtype == np.float32
    assert p32.final_state_vjp(theta, ybar)[0].dtype == np.float32
    mismatch = dot_product_test(lambda v: p32.final_state_jvp(theta, v)[1],
                                lambda w: p32.final_state_vjp(theta, w)[0], dth, ybar)
    assert mismatch <= DOT_RTOL, mismatch


def test_float32_training_runs_and_matches_float64_objective():
    p64, p32, theta = pair("mlp")
    r32 = lbfgs(p32, theta, maxiter=15, progress=False)
    r64 = lbfgs(p64, theta, maxiter=15, progress=False)
    assert np.all(np.isfinite(r32.x)) and r32.fun < p32.objective(theta)
    # both reach about the same objective (the runs diverge slowly: different rounding)
    assert abs(r32.fun - r64.fun) <= 1e-2 * abs(r64.fun)


def test_float64_default_is_unchanged():
    p64, _, theta = pair("mlp")
    assert p64.dtype == np.float64
    ref = ol.OCP(p64.model, p64.x0, p64.terminal, T=1.3, nt=6, integrator="rk4",
                 running=p64.running, regularizers=p64.regularizers)
    f1, g1 = p64.objective_and_gradient(theta)
    f2, g2 = ref.objective_and_gradient(theta)
    assert f1 == f2 and g1.tobytes() == g2.tobytes()


@pytest.mark.parametrize("dtype", [np.int64, np.float16, "complex128"])
def test_dtype_rejected(dtype):
    p64, _, _ = pair("mlp")
    with pytest.raises(ValueError, match="dtype must be numpy.float64 or numpy.float32"):
        ol.OCP(p64.model, p64.x0, p64.terminal, dtype=dtype)
