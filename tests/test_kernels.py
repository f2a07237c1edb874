"""Compute backends: numba == numpy to 1e-12 on every quantity, fused CNF field,
MLP kernels, the automatic fused/BLAS choice, the registries and thread settings."""
import copy

import numpy as np
import pytest

from ocp_learn import kernels
from ocp_learn.kernels import (activation_numba, mlp_numba, potential_gram_numba,
                               potential_jacobian_numba, potential_numba)
from ocp_learn.kernels.potential_backend import (FusedFlowBackend, PotentialBackend,
                                                 potential_backends, register_potential_backend)
from ocp_learn.kernels.potential_numpy import NumpyPotentialBackend
from ocp_learn.models import PotentialResNet
from ocp_learn.models.mlp import SingleLayerNet
from ocp_learn.models.potential import log_cosh
from ocp_learn.problems.cnf import ContinuousNormalizingFlow
from ocp_learn.verify import check_gradient, dot_product_test

TOL = 1e-12


def rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


def pair(d, M, width, trace, path, seed=0):
    ref = PotentialResNet(d, width=width, n_layers=M, trace=trace, backend="numpy")
    fast = PotentialResNet(d, width=width, n_layers=M, trace=trace, backend="numba", path=path)
    theta = ref.init_params(seed) + 0.3 * np.random.default_rng(seed).standard_normal(ref.n_params)
    return ref, fast, theta


# ----------------------------------------------------------------------------- potential
@pytest.mark.parametrize("path", ["fused", "blas"])
@pytest.mark.parametrize("trace", ["exact", "hutchinson"])
@pytest.mark.parametrize("d,M", [(1, 1), (2, 2), (5, 1)])
def test_potential_numba_equals_numpy(d, M, trace, path):
    check_numba_equals_numpy(d, M, 6, trace, path)


def test_potential_numba_equals_numpy_with_blas_inside_the_kernels():
    """From width BLAS_INNER_M and BLAS_INNER_C columns (exact trace: c = d) the Jacobian
    path's per-sample products call BLAS."""
    check_numba_equals_numpy(potential_jacobian_numba.BLAS_INNER_C, 2,
                             potential_jacobian_numba.BLAS_INNER_M,
                             "exact", "fused")


def check_numba_equals_numpy(d, M, width, trace, path):
    rng = np.random.default_rng(d + M)
    ref, fast, theta = pair(d, M, width, trace, path)
    n = 7
    x, t = rng.standard_normal((n, d)), rng.standard_normal(n)
    pr = ref.sample_probes(n, rng, k=2) if trace == "hutchinson" else None
    A, B = ref.derivatives(x, t, theta, probes=pr), fast.derivatives(x, t, theta, probes=pr)
    for a, b in zip(A, B):
        assert rel(b, a) <= TOL
    bars = dict(phi_bar=rng.standard_normal(n), grad_bar=rng.standard_normal((n, d)),
                dt_bar=rng.standard_normal(n), lap_bar=rng.standard_normal(n), probes=pr)
    for a, b in zip(ref.derivatives_vjp(x, t, theta, **bars), fast.derivatives_vjp(x, t, theta, **bars)):
        assert rel(b, a) <= TOL
    tang = dict(dx=rng.standard_normal((n, d)), dt=rng.standard_normal(n),
                dtheta=rng.standard_normal(ref.n_params), probes=pr)
    for a, b in zip(ref.derivatives_jvp(x, t, theta, **tang), fast.derivatives_jvp(x, t, theta, **tang)):
        assert rel(b, a) <= TOL


def test_potential_kernels_independent_of_the_block_split():
    ref, _, theta = pair(3, 2, 5, "exact", "fused")
    rng = np.random.default_rng(3)
    n = 11
    S = rng.standard_normal((n, 4))
    P = ref.unpack(theta)
    args = (rng.standard_normal(n), rng.standard_normal((n, 4)), rng.standard_normal(n))
    s1, B1 = potential_numba.derivatives_vjp(P, S, None, ref.h, *args, nblocks=1)
    s5, B5 = potential_numba.derivatives_vjp(P, S, None, ref.h, *args, nblocks=5)
    assert rel(s5, s1) <= TOL
    for k in B1:
        assert rel(B5[k], B1[k]) <= TOL


def test_vectorized_activation_row_matches_numpy_to_a_few_ulp():
    rng = np.random.default_rng(0)
    a = np.concatenate([rng.standard_normal(2000) * sc for sc in (1e-9, 1e-3, 0.3, 1.0, 4.0, 12.0, 40.0)]
                       + [np.array([0.0, -0.0, 1e-300, -1e-12, 3e-8, 19.0, -700.0, 17.7, -26.4])])
    sg, g, q = np.empty_like(a), np.empty_like(a), np.empty_like(a)
    activation_numba.act_row(a, sg, g, q)
    th = np.tanh(a)
    assert np.max(np.abs(sg - log_cosh(a)) / log_cosh(a)) <= 1e-15
    nz = th != 0
    assert np.max(np.abs(g[nz] - th[nz]) / np.abs(th[nz])) <= 1e-15 and np.all(g[~nz] == 0)
    assert np.max(np.abs(q - (1.0 - th * th))) <= 1e-15
    # non-finite inputs: inf gives (inf, +-1, 0); NaN propagates
    b = np.array([np.inf, -np.inf, np.nan])
    sb, gb, qb = np.empty(3), np.empty(3), np.empty(3)
    activation_numba.act_row(b, sb, gb, qb)
    assert np.all(sb[:2] == np.inf) and list(gb[:2]) == [1.0, -1.0] and np.all(qb[:2] == 0.0)
    assert np.isnan(sb[2]) and np.isnan(gb[2])


def test_auto_path_is_fused_blas_on_request_and_bad_path_is_rejected():
    small = PotentialResNet(2, width=8, backend="numba")
    wide = PotentialResNet(2, width=128, backend="numba")
    assert small.backend.fused_flow and wide.backend.fused_flow
    blas = PotentialResNet(2, width=8, backend="numba", path="blas").backend
    assert not blas.fused_flow and isinstance(blas, NumpyPotentialBackend) and blas.name == "numba"
    assert not PotentialResNet(2, width=8, backend="numpy").backend.fused_flow
    with pytest.raises(ValueError, match="path"):
        PotentialResNet(2, path="gemm")


def test_potential_backend_registry():
    """A name resolves to a backend object once; a registered factory or a backend object
    serves as well; an unknown name or a non-backend is refused with its name."""
    assert isinstance(PotentialResNet(2).backend, PotentialBackend)
    assert isinstance(PotentialResNet(2, backend="numba").backend, FusedFlowBackend)
    with pytest.raises(ValueError, match="backend"):
        PotentialResNet(2, backend="jax")
    with pytest.raises(TypeError, match="backend"):
        PotentialResNet(2, backend=object())
    register_potential_backend("numpy_chunked", lambda chunk=None, **options:
                               NumpyPotentialBackend(chunk=3))
    mod = PotentialResNet(2, width=4, backend="numpy_chunked")
    ref = PotentialResNet(2, width=4, backend=NumpyPotentialBackend())
    assert mod.backend.chunk == 3 and "numpy_chunked" in potential_backends()
    rng = np.random.default_rng(0)
    x, th = rng.standard_normal((7, 2)), ref.init_params(0)
    for a, b in zip(ref.derivatives(x, 0.3, th), mod.derivatives(x, 0.3, th)):
        assert rel(b, a) <= TOL
    register_potential_backend("broken", lambda **options: object())
    with pytest.raises(TypeError, match="PotentialBackend"):
        PotentialResNet(2, backend="broken")


# ----------------------------------------------------------------------------- fused CNF field
def _cnf(trace, backend="numba", hjb=5.0, n=9, d=2):
    x = np.random.default_rng(7).standard_normal((n, d))
    return ContinuousNormalizingFlow(x, width=5, n_layers=2, nt=2, trace=trace, backend=backend,
                                     alpha_R=hjb, seed=1)


@pytest.mark.parametrize("hjb", [5.0, 0.0])
@pytest.mark.parametrize("trace", ["exact", "hutchinson"])
def test_cnf_objective_and_gradient_fused_numba_numpy_agree(trace, hjb):
    ref = _cnf(trace, "numpy", hjb)
    theta = ref.init_params(0)
    theta = theta + 0.2 * np.random.default_rng(0).standard_normal(theta.size)
    J0, g0 = ref.objective_and_gradient(theta)
    p = _cnf(trace, "numba", hjb)
    assert p.field.fused
    J, g = p.objective_and_gradient(theta)
    assert abs(J - J0) <= TOL * abs(J0)
    assert rel(g, g0) <= TOL


def _generic(field):
    """The same field on the generic code (``derivatives`` then ``derivatives_vjp``)."""
    generic = copy.copy(field)
    generic.fused = False
    return generic


def test_fused_field_rhs_and_vjp_equal_the_generic_field():
    p = _cnf("exact")
    fused = p.field
    generic = _generic(fused)
    theta = p.init_params(0)[:generic.n_params]
    rng = np.random.default_rng(2)
    y = rng.standard_normal((9, generic.state_dim))
    ybar = rng.standard_normal(y.shape)
    assert rel(fused.rhs(y, 0.3, theta), generic.rhs(y, 0.3, theta)) <= TOL
    for a, b in zip(generic.vjp(y, 0.3, theta, ybar), fused.vjp(y, 0.3, theta, ybar)):
        assert rel(b, a) <= TOL
    # the fused gradient is also a true gradient of the discrete objective (Taylor, order 2)
    q = _cnf("exact")
    th = q.init_params(0)
    check_gradient(q.objective_and_gradient, th, seed=3)


def test_fused_field_dropped_hjb_term_is_caught():
    """Leaving out the HJB residual's cotangent in the fused vjp changes the gradient."""
    p = _cnf("exact")
    theta = p.init_params(0)
    J, g = p.objective_and_gradient(theta)
    f = p.field
    vjp = f.vjp

    def vjp_without_hjb(y, t, th, ybar, aux=None):
        yb = ybar.copy()
        yb[:, f.c_R] = 0.0
        return vjp(y, t, th, yb, aux)

    f.vjp = vjp_without_hjb
    _, g_bad = p.objective_and_gradient(theta)
    assert rel(g_bad, g) > 1e-4


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_with_probes_is_a_copy_with_other_probes(backend):
    """``with_probes`` shares everything but the probes, and the copy evaluates with them."""
    from ocp_learn.models.potential_flow import PotentialFlowField
    pot = PotentialResNet(2, width=4, trace="hutchinson", backend=backend)
    field = PotentialFlowField(pot)
    rng = np.random.default_rng(0)
    y = field.initial_state(rng.standard_normal((5, 2)))
    theta = field.init_params(0)
    pr1, pr2 = pot.sample_probes(5, 1, k=2), pot.sample_probes(5, 2, k=2)
    f1, f2 = field.with_probes(pr1), field.with_probes(pr2)
    assert field.probes is None and f1.probes is pr1 and type(f1) is PotentialFlowField
    assert f1.potential is pot and f1.interactions is field.interactions
    D1 = pot.derivatives(y[:, :2], 0.3, theta, probes=pr1)
    assert rel(f1.rhs(y, 0.3, theta)[:, 2], -D1.lap) <= TOL
    assert not np.allclose(f1.rhs(y, 0.3, theta), f2.rhs(y, 0.3, theta))
    with pytest.raises(ValueError, match="probes"):
        field.rhs(y, 0.3, theta)


def test_fused_field_only_where_the_backend_offers_it():
    from ocp_learn.models.potential_flow import PotentialFlowField
    p = _cnf("exact", backend="numpy")
    assert not p.field.fused and p.field.aux_floats(9) == 0
    with pytest.raises(ValueError, match="fused"):
        PotentialFlowField(p.potential, fused=True)
    assert not PotentialFlowField(PotentialResNet(2, backend="numba"), fused=False).fused


# ----------------------------------------------------------------------------- MLP (A1)
def test_mlp_numba_equals_numpy_and_is_adjoint_consistent():
    rng = np.random.default_rng(5)
    a, b = SingleLayerNet(3, 7), SingleLayerNet(3, 7, backend="numba")
    th = a.init_params(0)
    z, dz, fb = (rng.standard_normal((13, 3)) for _ in range(3))
    dth = rng.standard_normal(th.size)
    assert rel(b.rhs(z, 0.0, th), a.rhs(z, 0.0, th)) <= TOL
    for v, w in [(dz, dth), (None, dth), (dz, None)]:
        assert rel(b.jvp(z, 0.0, th, v, w), a.jvp(z, 0.0, th, v, w)) <= TOL
    for x, y in zip(a.vjp(z, 0.0, th, fb), b.vjp(z, 0.0, th, fb)):
        assert rel(y, x) <= TOL
    err = dot_product_test(lambda v: b.jvp(z, 0.0, th, v[0], v[1]),
                           lambda w: b.vjp(z, 0.0, th, w), (dz, dth), fb)
    assert err <= 1e-12
    # a dropped term (the tanh' factor on the K1 block) is caught by the same test
    def vjp_dropped(w):
        zb, g = b.vjp(z, 0.0, th, w)
        G = b.unpack(g.copy())
        G["K1"][...] *= 1.5
        return zb, b.layout.pack(G)

    assert dot_product_test(lambda v: b.jvp(z, 0.0, th, v[0], v[1]), vjp_dropped, (dz, dth), fb) > 1e-6
    with pytest.raises(ValueError, match="backend"):
        SingleLayerNet(3, 7, backend="torch")
    zb, B = mlp_numba.vjp(a.unpack(th), z, fb)
    assert set(B) == {"K1", "b1", "K2", "b2"} and zb.shape == z.shape


@pytest.mark.parametrize("n,d,m", [(600, 3, 7), (257, 20, 33)])
def test_mlp_numba_tiles_equal_numpy_over_several_tiles(n, d, m):
    """More samples than one tile (``mlp_numba.TILE``), a partial last tile included."""
    assert n > mlp_numba.TILE
    rng = np.random.default_rng(n)
    a, b = SingleLayerNet(d, m), SingleLayerNet(d, m, backend="numba")
    th = a.init_params(0) + 0.3 * rng.standard_normal(a.n_params)
    z, dz, fb = (rng.standard_normal((n, d)) for _ in range(3))
    dth = rng.standard_normal(th.size)
    assert rel(b.rhs(z, 0.0, th), a.rhs(z, 0.0, th)) <= TOL
    assert rel(b.jvp(z, 0.0, th, dz, dth), a.jvp(z, 0.0, th, dz, dth)) <= TOL
    for x, y in zip(a.vjp(z, 0.0, th, fb), b.vjp(z, 0.0, th, fb)):
        assert rel(y, x) <= TOL


# ----------------------------------------------------------------------------- registry
def test_backend_registry_and_threads():
    assert kernels.available_backends()[:2] == ["numpy", "numba"]
    assert kernels.default_backend() == "numba"
    assert kernels.check_backend(None) == "numba"
    with pytest.raises(ValueError, match="backend"):
        kernels.check_backend("jax")
    if not kernels.cupy_available():
        with pytest.raises(RuntimeError, match="cupy"):
            kernels.check_backend("cupy")
        with pytest.raises(RuntimeError, match="cupy"):
            PotentialResNet(2, backend="cupy")
    old = kernels.get_num_threads()
    try:
        kernels.set_num_threads(1)
        assert kernels.get_num_threads() == 1
    finally:
        kernels.set_num_threads(old)
    with pytest.raises(ValueError, match="n"):
        kernels.set_num_threads(0)
    import numba
    with pytest.raises(ValueError, match="NUMBA_NUM_THREADS"):
        kernels.set_num_threads(numba.config.NUMBA_NUM_THREADS + 1)


# ----------------------------------------------------------------------------- fused MFG with interactions
def _crowd(backend, d=2, n=11):
    from ocp_learn.problems.mfg import mfg_preset
    return mfg_preset("crowd", d, n_samples=n, nt=2, backend=backend)


def test_fused_field_with_interactions_equals_the_generic_field():
    from ocp_learn.problems.potential_flow import PotentialFlowField
    p = _crowd("numba")
    fused = p.field
    assert isinstance(fused, PotentialFlowField) and fused.interactions and fused.fused
    generic = _generic(fused)
    theta = p.init_params(0)[:fused.n_params]
    theta = theta + 0.3 * np.random.default_rng(1).standard_normal(theta.size)
    rng = np.random.default_rng(4)
    y = p.field.initial_state(p.x0)
    y[:, :fused.dim] += 0.5 * rng.standard_normal((y.shape[0], fused.dim))
    y[:, fused.c_ell] = rng.standard_normal(y.shape[0])
    ybar = rng.standard_normal(y.shape)
    assert rel(fused.rhs(y, 0.3, theta), generic.rhs(y, 0.3, theta)) <= TOL
    for a, b in zip(generic.vjp(y, 0.3, theta, ybar), fused.vjp(y, 0.3, theta, ybar)):
        assert rel(b, a) <= TOL
    # the whole crowd objective and gradient: fused numba == numpy reference
    ref = _crowd("numpy")
    th = ref.init_params(0)
    J0, g0 = ref.objective_and_gradient(th)
    J, g = p.objective_and_gradient(th)
    assert abs(J - J0) <= TOL * abs(J0) and rel(g, g0) <= TOL


def test_fused_crowd_gradient_taylor_and_dropped_interaction_term_is_caught():
    p = _crowd("numba")
    th = p.init_params(0)
    check_gradient(p.objective_and_gradient, th, seed=5)
    # dropping the interactions' HJB partials (-a2 w d(dF/drho)/dz) changes the gradient
    J, g = p.objective_and_gradient(th)
    F0 = p.field.interactions[0]
    orig = F0.drho_partials
    try:
        F0.drho_partials = lambda z, lr: (np.zeros_like(z), np.zeros(z.shape[0]))
        _, g_bad = p.objective_and_gradient(th)
    finally:
        F0.drho_partials = orig
    assert rel(g_bad, g) > 1e-6


# ----------------------------------------------------------------------------- exact trace by Gram matrices
@pytest.mark.parametrize("d,m,M", [(7, 3, 1), (9, 3, 2), (11, 4, 3), (2, 4, 2)])
def test_gram_trace_path_equals_numpy(d, m, M):
    """The Gram path (Gamma_i = J_i J_i^T, O(M m^3)) gives the numpy reference's numbers,
    forward and vjp, also where ``auto`` would not pick it (d <= m)."""
    rng = np.random.default_rng(d * m + M)
    ref = PotentialResNet(d, width=m, n_layers=M, backend="numpy")
    gram = PotentialResNet(d, width=m, n_layers=M, backend="numba", path="fused", trace_path="gram")
    theta = ref.init_params(0) + 0.3 * rng.standard_normal(ref.n_params)
    n = 9
    x, t = rng.standard_normal((n, d)), rng.standard_normal(n)
    for a, b in zip(ref.derivatives(x, t, theta), gram.derivatives(x, t, theta)):
        assert rel(b, a) <= TOL
    bars = dict(phi_bar=rng.standard_normal(n), grad_bar=rng.standard_normal((n, d)),
                dt_bar=rng.standard_normal(n), lap_bar=rng.standard_normal(n))
    for a, b in zip(ref.derivatives_vjp(x, t, theta, **bars), gram.derivatives_vjp(x, t, theta, **bars)):
        assert rel(b, a) <= TOL


@pytest.mark.parametrize("M", [1, 2])
def test_gram_trace_vjp_taylor_and_auto_choice(M):
    """Taylor test of the Gram-path vjp of the Laplacian alone (wrt theta; M = 1 is the
    packed-H program, M = 2 the Gamma_i recursion), the same cotangents for any split of
    the samples into blocks, and the automatic choice: Gram when d > m (M = 1) or d > 2m,
    never for Hutchinson."""
    from ocp_learn.kernels import potential_gram_numba as gram
    from ocp_learn.verify import taylor_test
    rng = np.random.default_rng(2)
    d, m, n = 9, 3, 5
    mod = PotentialResNet(d, width=m, n_layers=M, backend="numba", path="fused", trace_path="gram")
    theta = mod.init_params(0) + 0.3 * rng.standard_normal(mod.n_params)
    x, t, lb = rng.standard_normal((n, d)), rng.standard_normal(n), rng.standard_normal(n)
    _, _, thb = mod.derivatives_vjp(x, t, theta, lap_bar=lb)
    v = rng.standard_normal(theta.size)
    res = taylor_test(lambda th: float(mod.derivatives(x, t, th).lap @ lb), theta, v, thb @ v)
    assert res.passed, res
    P = mod.unpack(theta)
    S = np.column_stack([x, t])
    G0 = potential_gram_numba.gram0(P["K0"], d)
    Gb = rng.standard_normal((n, d + 1))
    one = gram.vjp(P, S, mod.h, G0, np.array([0, n]), None, Gb, lb)
    three = gram.vjp(P, S, mod.h, G0, np.array([0, 2, 3, n]), None, Gb, lb)
    assert rel(three[0], one[0]) <= TOL
    for k in one[1]:
        assert rel(three[1][k], one[1][k]) <= TOL
    assert potential_gram_numba.trace_gram(P, d, True, "auto").shape == (m, m)       # 9 > 2*3
    assert potential_gram_numba.trace_gram(P, d, False, "auto").size == 0            # Hutchinson
    assert potential_gram_numba.trace_gram(P, d, True, "jacobian").size == 0
    assert potential_gram_numba.use_gram(5, 4, 1) and not potential_gram_numba.use_gram(5, 4, 2)
    with pytest.raises(ValueError, match="trace_path"):
        PotentialResNet(2, trace_path="fast")


def test_fused_crowd_field_on_the_gram_path_equals_the_generic_field():
    """Crowd motion at d = 18 > m = 16 (the d = 50, 100 presets take this path)."""
    p = _crowd("numba", d=18, n=7)
    assert p.field.potential.width < 18
    ref = _crowd("numpy", d=18, n=7)
    th = ref.init_params(0)
    th = th + 0.1 * np.random.default_rng(3).standard_normal(th.size)
    J0, g0 = ref.objective_and_gradient(th)
    J, g = p.objective_and_gradient(th)
    assert abs(J - J0) <= TOL * abs(J0) and rel(g, g0) <= TOL


def test_gram_path_residuals_are_reused_exactly_and_counted_in_the_ledger():
    """``rhs_tape`` keeps the forward products of the Gram path on the RK tape; the vjp
    that reuses them gives the same numbers as the one that recomputes them, the ledger
    counts them, and a checkpointing strategy (which recomputes its tapes) agrees."""
    p = _crowd("numba", d=18, n=7)
    f = p.field
    th = p.init_params(0)
    th = th + 0.1 * np.random.default_rng(5).standard_normal(th.size)
    y = f.initial_state(np.random.default_rng(6).standard_normal((7, 18)))
    F, aux = f.rhs_tape(y, 0.3, th)
    assert aux is not None and sum(a.size for a in aux) == f.aux_floats(7) > 0
    assert np.array_equal(F, f.rhs(y, 0.3, th))
    ybar = np.random.default_rng(7).standard_normal(y.shape)
    z0, g0 = f.vjp(y, 0.3, th, ybar)
    z1, g1 = f.vjp(y, 0.3, th, ybar, aux=aux)
    assert np.array_equal(z0, z1) and np.array_equal(g0, g1)
    # a residual taken at another point must not be silently equivalent: it changes the result
    _, aux2 = f.rhs_tape(y + 0.1, 0.3, th)
    assert not np.allclose(f.vjp(y, 0.3, th, ybar, aux=aux2)[1], g0)
    ev = p.evaluate(th)
    D = f.state_dim
    assert ev.ledger.stored_floats == p.nt * 4 * (7 * D + f.aux_floats(7))
    # no residuals off the Gram path (Jacobian path: d <= m)
    assert _crowd("numba", d=4, n=7).field.aux_floats(7) == 0
    from ocp_learn.gradients import get_strategy
    ck = _crowd("numba", d=18, n=7)
    ck.strategy = get_strategy(("checkpoint", 1))
    J1, g1 = ck.objective_and_gradient(th)
    assert abs(J1 - ev.value) <= TOL * abs(ev.value) and rel(g1, ev.gradient) <= TOL


@pytest.mark.parametrize("n,nblk", [(1, 1), (70, 3), (64, 2)])
def test_one_layer_tile_kernels_equal_the_per_sample_kernels(n, nblk):
    """The M = 1 Gram-path kernels process tiles of samples (``_TILE`` per tile, padded
    columns with zero cotangents); they equal the per-sample kernels to rounding, for a
    partial last tile and any block split."""
    from ocp_learn.kernels import potential_gram_numba as gram
    from ocp_learn.kernels import potential_tiles_numba as tiles
    rng = np.random.default_rng(11)
    m, d = 5, 9
    P = {"w": rng.standard_normal(m), "A": rng.standard_normal((3, d + 1)),
         "b": rng.standard_normal(d + 1), "c": rng.standard_normal(1),
         "K0": rng.standard_normal((m, d + 1)), "b0": rng.standard_normal(m),
         "K": rng.standard_normal((1, m, m)), "bK": rng.standard_normal((1, m))}
    G0 = potential_gram_numba.gram0(P["K0"], d)
    prm, _, H = gram._setup(P, G0)
    assert H.shape[0] == m
    P0 = rng.standard_normal((m, n))      # one column per sample
    edges = np.linspace(0, n, nblk + 1).round().astype(np.int64)
    args = (P0, 0.5, prm["w"], prm["K"], prm["bK"], G0, H)
    out = [(np.empty((m, n)), np.empty(n), np.empty(n)) for _ in range(3)]
    NT = np.full((tiles.tape_floats(n, m, 1) // (tiles.NT_ARRAYS * m * tiles.TILE), tiles.NT_ARRAYS, m,
                  tiles.TILE), np.nan)
    tiles.fwd_tiles(*args, True, nblk, *out[0], NT)         # with the tape of the tiles
    tiles.fwd_tiles(*args, True, nblk, *out[1], tiles.no_tape(m))
    gram.fwd_kernel(*args, True, edges, *out[2])
    assert np.isfinite(NT).all() and NT.size == tiles.tape_floats(n, m, 1) >= n * tiles.NT_ARRAYS * m
    for a, b, c in zip(*out):
        assert np.array_equal(a, b) and rel(a, c) <= 1e-13
    Yb, phib, lb = rng.standard_normal((m, n)), rng.standard_normal(n), rng.standard_normal(n)
    res = []
    for mode in ("tape", "recompute", "per-sample"):
        acc = (np.zeros((nblk, m)), np.zeros((nblk, 1, m, m)), np.zeros((nblk, 1, m)),
               np.zeros((nblk, m, m)), np.zeros((nblk,) + H.shape))
        A0 = np.empty((m, n))
        if mode == "per-sample":
            gram.vjp_kernel(*args, Yb, phib, lb, edges, A0, *acc)
        else:
            tiles.vjp_tiles(*args, Yb, phib, lb, nblk, A0, *acc,
                            NT if mode == "tape" else tiles.no_tape(m))
        res.append([A0] + [x.sum(0) for x in acc])
    for a, b, c in zip(*res):
        assert rel(a, c) <= 1e-13 and rel(b, c) <= 1e-13
    # a tape from other inputs is read, not silently recomputed
    acc = [np.zeros_like(x) for x in (np.zeros((nblk, m)), np.zeros((nblk, 1, m, m)),
                                      np.zeros((nblk, 1, m)), np.zeros((nblk, m, m)),
                                      np.zeros((nblk,) + H.shape))]
    A0 = np.empty((m, n))
    tiles.vjp_tiles(*args, Yb, phib, lb, nblk, A0, *acc, 1.1 * NT)
    assert rel(A0, res[0][0]) > 1e-3


def test_float32_activation_row_is_float32_and_matches_to_a_few_ulp():
    """:func:`act_row32` (float32 arithmetic, shorter series) against float64 numpy, in
    float32 ulp, and really float32 (its error is above float64 rounding); ``act``
    dispatches float32 rows to it."""
    from numba import njit
    rng = np.random.default_rng(0)
    a = np.concatenate([rng.standard_normal(2000) * sc for sc in (1e-9, 1e-3, 0.3, 1.0, 4.0, 9.0, 40.0)]
                       + [np.array([0.0, -0.0, 1e-30, -1e-12, 3e-8, 19.0, -700.0, 17.7])]
                       ).astype(np.float32)
    sg, g, q = np.empty_like(a), np.empty_like(a), np.empty_like(a)
    activation_numba.act_row32(a, sg, g, q)
    a64 = a.astype(np.float64)
    th, lc = np.tanh(a64), log_cosh(a64)
    eps = float(np.finfo(np.float32).eps)
    assert np.max(np.abs(sg - lc) / lc) <= 3 * eps
    nz = th != 0
    assert np.max(np.abs(g[nz] - th[nz]) / np.abs(th[nz])) <= 3 * eps and np.all(g[~nz] == 0)
    assert np.max(np.abs(q - (1.0 - th * th))) <= 3 * eps
    assert np.max(np.abs(g[nz] - th[nz]) / np.abs(th[nz])) > 1e-15  # float32, not float64

    @njit
    def via_act(a, sg, g, q):
        activation_numba.act(a, sg, g, q)

    s2, g2, q2 = np.empty_like(a), np.empty_like(a), np.empty_like(a)
    via_act(a, s2, g2, q2)
    assert np.array_equal(s2, sg) and np.array_equal(g2, g) and np.array_equal(q2, q)
    b = np.array([np.inf, -np.inf, np.nan], np.float32)
    sb, gb, qb = np.empty_like(b), np.empty_like(b), np.empty_like(b)
    activation_numba.act_row32(b, sb, gb, qb)
    assert np.all(sb[:2] == np.inf) and list(gb[:2]) == [1.0, -1.0] and np.all(qb[:2] == 0.0)
    assert np.isnan(sb[2]) and np.isnan(gb[2])
