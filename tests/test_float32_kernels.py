"""float32 kernels of the fused CNF path: ``ContinuousNormalizingFlow(backend="numba",
dtype=numpy.float32)`` runs the Jacobian-path kernels on float32 arrays (samples, probes,
parameters, per-sample scratch); objective and gradient agree with float64 to float32
tolerance, float64 is untouched.  Accuracy notes: :mod:`ocp_learn.kernels.potential_net_numba`."""
import numpy as np
import pytest

from ocp_learn.kernels import activation_numba, potential_flow_numba, potential_gram_numba
from ocp_learn.models.potential import log_cosh
from ocp_learn.problems.cnf import ContinuousNormalizingFlow
from ocp_learn.verify import dot_product_test

VALUE_RTOL = 1e-5   # objective vs float64 (the OCP float32 contract, tests/test_float32.py)
GRAD_RTOL = 1e-4    # gradient vs float64, 2-norm relative
DOT_RTOL = 1e-4     # jvp/vjp dot-product identity


def flows(d, M, trace, width=8, n=16, nt=2):
    x = np.random.default_rng(d + M).standard_normal((n, d))

    def make(dtype):
        return ContinuousNormalizingFlow(x, width=width, n_layers=M, nt=nt, trace=trace,
                                         backend="numba", n_probes=2, seed=1, dtype=dtype)

    p64, p32 = make(np.float64), make(np.float32)
    theta = p64.init_params(0) + 0.2 * np.random.default_rng(0).standard_normal(p64.n_params)
    return p64, p32, theta


@pytest.fixture
def spy(monkeypatch):
    """Record the dtypes every fused kernel call receives (samples, probes, h, parameters,
    ybar): the per-sample kernels and the tiles of the exact trace."""
    seen = []

    def wrap(name, i_S, i_W, i_h, i_P, i_ybar):
        kern = getattr(potential_flow_numba, name)

        def call(*args):
            W = args[i_W].dtype if i_W is not None else args[i_S].dtype
            seen.append((name, args[i_S].dtype, W, type(args[i_h]),
                         {p.dtype for p in args[i_P] if isinstance(p, np.ndarray)},
                         args[i_ybar].dtype if i_ybar is not None else None))
            return kern(*args)
        monkeypatch.setattr(potential_flow_numba, name, call)

    wrap("_rhs_kernel", 0, 1, 4, 5, None)
    wrap("_vjp_kernel", 0, 1, 4, 5, 9)
    wrap("_rhs_soa", 0, None, 2, 3, None)
    wrap("_vjp_soa", 0, None, 2, 3, 7)
    return seen


@pytest.mark.parametrize("trace", ["exact", "hutchinson"])
@pytest.mark.parametrize("M", [1, 2])
@pytest.mark.parametrize("d", [2, 5])
def test_fused_float32_cnf_matches_float64(d, M, trace, spy):
    p64, p32, theta = flows(d, M, trace)
    assert p32.dtype == np.float32 and p32.x0.dtype == np.float32
    e64 = p64.evaluate(theta)
    spy.clear()
    e32 = p32.evaluate(theta)
    # the Jacobian-path kernels really ran (in tiles for the exact trace), on float32 only
    names = {s[0] for s in spy}
    assert names == ({"_rhs_soa", "_vjp_soa"} if trace == "exact"
                     else {"_rhs_kernel", "_vjp_kernel"})
    for _, S, W, h, prm, ybar in spy:
        assert S == np.float32 and W == np.float32 and h is np.float32
        assert prm == {np.dtype(np.float32)}
        assert ybar in (None, np.float32)
    assert e32.state.dtype == np.float32 and e32.lam0.dtype == np.float32
    assert e32.gradient.dtype == np.float32 and e64.gradient.dtype == np.float64
    assert abs(e32.value - e64.value) <= VALUE_RTOL * abs(e64.value)
    rel = np.linalg.norm(e32.gradient - e64.gradient) / np.linalg.norm(e64.gradient)
    assert rel <= GRAD_RTOL, rel
    assert rel > 1e-12  # single precision, not float64 numbers cast at the end
    # float64 still runs the float64 kernels
    spy.clear()
    p64.objective_and_gradient(theta)
    assert {s[1] for s in spy} == {np.dtype(np.float64)}


def test_float32_dtype_survives_with_steps():
    _, p32, _ = flows(2, 1, "exact")
    assert p32.with_steps(3).dtype == np.float32
    assert ContinuousNormalizingFlow(p32.x0, width=4).dtype == np.float64


def test_float32_jvp_vjp_dot_product_and_a_wrong_vjp_is_caught(monkeypatch):
    _, p32, theta = flows(2, 2, "exact")
    rng = np.random.default_rng(3)
    dth = rng.standard_normal(theta.size)
    ybar = rng.standard_normal(p32.final_state(theta).shape)
    assert p32.final_state_vjp(theta, ybar)[0].dtype == np.float32

    def mismatch():
        return dot_product_test(lambda v: p32.final_state_jvp(theta, v)[1],
                                lambda w: p32.final_state_vjp(theta, w)[0], dth, ybar)

    assert mismatch() <= DOT_RTOL
    # the test can fail: drop the lap cotangent (-ybar_ell / a1) of the float32 kernel
    # (the exact trace runs in tiles, :func:`potential_flow_numba._vjp_soa`)
    kern = potential_flow_numba._vjp_soa

    def broken(*args):
        args = list(args)
        args[7] = args[7].copy()  # ybar
        args[7][:, p32.field.c_ell] = 0
        return kern(*args)
    monkeypatch.setattr(potential_flow_numba, "_vjp_soa", broken)
    assert mismatch() > 1e-3


def test_float32_on_the_gram_path_computes_in_float64_and_agrees():
    """d > m: the exact trace takes the Gram path, which casts to float64 inside
    (potential_gram_numba); the float32 problem still returns float32 and agrees."""
    p64, p32, theta = flows(10, 1, "exact", width=4)
    assert potential_gram_numba.use_gram(10, 4, 1)
    J64, g64 = p64.objective_and_gradient(theta)
    J32, g32 = p32.objective_and_gradient(theta)
    assert g32.dtype == np.float32
    assert abs(J32 - J64) <= VALUE_RTOL * abs(J64)
    assert np.linalg.norm(g32 - g64) <= GRAD_RTOL * np.linalg.norm(g64)


def test_vectorized_activation_row_in_float32_is_correctly_rounded():
    """act_row on float32 rows evaluates in float64 (its constants are float64) and rounds
    once: sigma and tanh within 0.5 ulp of float32 (numpy's own float32 tanh: ~1.4 ulp)."""
    rng = np.random.default_rng(0)
    a = np.concatenate([rng.standard_normal(2000) * sc for sc in (1e-9, 1e-3, 0.3, 1.0, 4.0, 12.0, 40.0)]
                       + [np.array([0.0, -0.0, 1e-30, -1e-12, 3e-8, 19.0, -80.0, 17.7, -26.4])])
    a = a.astype(np.float32)
    sg, g, q = np.empty_like(a), np.empty_like(a), np.empty_like(a)
    activation_numba.act_row(a, sg, g, q)
    assert sg.dtype == g.dtype == q.dtype == np.float32
    a64 = a.astype(np.float64)
    th = np.tanh(a64)
    for v, ref in ((sg, log_cosh(a64)), (g, th)):
        ulp = np.spacing(np.abs(ref.astype(np.float32))).astype(np.float64)
        assert np.max(np.abs(v - ref) / ulp) <= 0.5 + 1e-6
    assert np.max(np.abs(q - (1.0 - th * th))) <= 2.0 ** -24
    b = np.array([np.inf, -np.inf, np.nan], np.float32)
    sb, gb, qb = np.empty_like(b), np.empty_like(b), np.empty_like(b)
    activation_numba.act_row(b, sb, gb, qb)
    assert np.all(sb[:2] == np.inf) and list(gb[:2]) == [1.0, -1.0] and np.all(qb[:2] == 0.0)
    assert np.isnan(sb[2]) and np.isnan(gb[2])
