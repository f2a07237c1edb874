"""OT-Flow potential (MATH D1-D3, D6): every hand-derived derivative, both traces, both backends."""
import numpy as np
import pytest

from ocp_learn.models import PotentialDerivatives, PotentialResNet
from ocp_learn.models import potential as pot
from ocp_learn.verify import dot_product_test, taylor_test

DIMS = [1, 2, 5, 20]
LAYERS = [1, 2, 3]
OUTS = ["phi", "grad", "dt", "lap"]


def setup(d, M, n=3, width=5, trace="exact", backend="numpy", seed=0, k=3):
    rng = np.random.default_rng(seed + 10 * d + M)
    mod = PotentialResNet(d, width=width, n_layers=M, trace=trace, backend=backend)
    theta = mod.init_params(seed) + 0.3 * rng.standard_normal(mod.n_params)
    x = rng.standard_normal((n, d))
    t = rng.standard_normal(n)
    probes = mod.sample_probes(n, rng, k=k) if trace == "hutchinson" else None
    return mod, theta, x, t, probes, rng


def unit(rng, shape):
    v = rng.standard_normal(shape)
    return v / np.linalg.norm(v)


def fd_grad_and_lap(mod, x, t, theta, e=1e-4):
    """Central differences: grad of Phi, and the trace of the Hessian as differences of grad."""
    n, d = x.shape
    gfd, lap = np.zeros((n, d)), np.zeros(n)
    for k in range(d):
        E = np.zeros((n, d))
        E[:, k] = e
        gfd[:, k] = (mod.phi(x + E, t, theta) - mod.phi(x - E, t, theta)) / (2 * e)
        lap += (mod.derivatives(x + E, t, theta).grad[:, k]
                - mod.derivatives(x - E, t, theta).grad[:, k]) / (2 * e)
    dtfd = (mod.phi(x, t + e, theta) - mod.phi(x, t - e, theta)) / (2 * e)
    return gfd, dtfd, lap


# --------------------------------------------------------------------------- forward quantities
@pytest.mark.parametrize("M", LAYERS)
@pytest.mark.parametrize("d", DIMS)
def test_grad_dt_and_exact_laplacian_against_finite_differences(d, M):
    mod, theta, x, t, _, _ = setup(d, M)
    D = mod.derivatives(x, t, theta)
    assert isinstance(D, PotentialDerivatives)
    assert D.phi.shape == (3,) and D.grad.shape == (3, d) and D.dt.shape == (3,) and D.lap.shape == (3,)
    np.testing.assert_allclose(D.phi, mod.phi(x, t, theta), rtol=1e-14, atol=0)
    gfd, dtfd, lapfd = fd_grad_and_lap(mod, x, t, theta)
    assert np.max(np.abs(gfd - D.grad)) <= 1e-6 * max(1.0, np.max(np.abs(D.grad)))
    assert np.max(np.abs(dtfd - D.dt)) <= 1e-6 * max(1.0, np.max(np.abs(D.dt)))
    assert np.max(np.abs(lapfd - D.lap)) <= 1e-6 * np.max(np.abs(D.lap))


def test_scalar_time_equals_broadcast_time():
    mod, theta, x, _, _, _ = setup(2, 2)
    a = mod.derivatives(x, 0.3, theta)
    b = mod.derivatives(x, np.full(3, 0.3), theta)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


def test_chunking_gives_the_same_numbers():
    mod, theta, x, t, _, _ = setup(5, 2, n=7)
    mod1 = PotentialResNet(5, width=5, n_layers=2, chunk=2)
    for u, v in zip(mod.derivatives(x, t, theta), mod1.derivatives(x, t, theta)):
        np.testing.assert_allclose(u, v, rtol=1e-14, atol=1e-14)
    bars = dict(phi_bar=t, lap_bar=t ** 2, dt_bar=np.ones(7), grad_bar=x)
    for u, v in zip(mod.derivatives_vjp(x, t, theta, **bars), mod1.derivatives_vjp(x, t, theta, **bars)):
        np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-13)


# --------------------------------------------------------------------------- vjp (D6)
def _scalar(mod, x, t, theta, bars, probes):
    D = mod.derivatives(x, t, theta, probes=probes)
    return sum(float(np.sum(getattr(D, o) * bars[o])) for o in bars)


def _bars(rng, n, d, outs):
    shapes = {"phi": (n,), "grad": (n, d), "dt": (n,), "lap": (n,)}
    return {o: rng.standard_normal(shapes[o]) for o in outs}


def _check_vjp_taylor(mod, theta, x, t, probes, rng, outs):
    n, d = x.shape
    bars = _bars(rng, n, d, outs)
    xb, tb, thb = mod.derivatives_vjp(x, t, theta, probes=probes,
                                      **{f"{o}_bar": v for o, v in bars.items()})
    vx, vt, vth = unit(rng, x.shape), unit(rng, t.shape), unit(rng, theta.shape)
    res = [taylor_test(lambda y: _scalar(mod, y, t, theta, bars, probes), x, vx, np.sum(xb * vx)),
           taylor_test(lambda y: _scalar(mod, x, y, theta, bars, probes), t, vt, np.sum(tb * vt)),
           taylor_test(lambda y: _scalar(mod, x, t, y, bars, probes), theta, vth, thb @ vth)]
    return res


@pytest.mark.parametrize("M", LAYERS)
@pytest.mark.parametrize("d", DIMS)
def test_vjp_taylor_each_output_wrt_x_t_theta(d, M):
    mod, theta, x, t, _, rng = setup(d, M)
    for o in OUTS:
        for name, r in zip(["x", "t", "theta"], _check_vjp_taylor(mod, theta, x, t, None, rng, [o])):
            assert r.passed, f"vjp of {o} wrt {name}, d={d}, M={M}\n{r}"


#: terms of the reference vjp to leave out (old line -> new line, count): the third
#: derivative sigma''' = -2 g q, the trace's dependence on z, the chain Jbar_{i-1} += K_i^T Pbar_i
_DROPS = {
    "sigma3": [("(gbar[i] - 2.0 * g[i] * qbar[i])", "gbar[i]"),
               ("(gbar[0] - 2.0 * g[0] * qbar[0])", "gbar[0]")],
    "zbar_trace": [("zbar[i + 1] += h * lb * q[i] * Psq", "pass"),
                   ("zbar[1] += lb * q[0] * C0sq", "pass")],
    "Jbar_chain": [("Jbar = Jbar + K[i - 1, ...].T @ Pbar", "pass")],
}


def _mutant(func, edits):
    """``func`` recompiled from its source with each ``(old, new)`` edit made once."""
    import inspect
    import textwrap
    src = textwrap.dedent(inspect.getsource(func))
    for old, new in edits:
        assert src.count(old) == 1, old
        src = src.replace(old, new)
    ns = {}
    exec(compile(src, f"<{func.__name__} mutant>", "exec"), dict(func.__globals__), ns)
    return ns[func.__name__]


@pytest.mark.parametrize("drop", sorted(_DROPS))
def test_dropped_term_in_laplacian_vjp_is_caught(drop, monkeypatch):
    """On purpose: the vjp of lap with one term left out must fail the Taylor test."""
    from ocp_learn.kernels import potential_reference as ref
    mod, theta, x, t, _, rng = setup(2, 2)
    # sigma''' enters in the forward pass's adjoint, shared by both trace paths
    name = "_vjp_sweep" if drop == "sigma3" else "vjp"
    full = getattr(ref, name)
    monkeypatch.setattr(ref, name, _mutant(full, _DROPS[drop]))
    res = _check_vjp_taylor(mod, theta, x, t, None, np.random.default_rng(1), ["lap"])
    orders = [r.order for r in res]
    assert not all(r.passed for r in res), orders
    assert min(orders) < 1.2, orders          # a wrong derivative leaves O(eps)
    monkeypatch.setattr(ref, name, full)
    res = _check_vjp_taylor(mod, theta, x, t, None, np.random.default_rng(1), ["lap"])
    assert all(r.passed for r in res), [r.order for r in res]


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("M", LAYERS)
@pytest.mark.parametrize("d", [1, 5])
def test_phi_vjp_taylor_dot_product_and_full_vjp(d, M, backend):
    """The value-only pullback (plain backprop through D1): Taylor in x, t, theta, the dot
    product against the jvp of Phi, and the numbers of derivatives_vjp with phi_bar alone."""
    mod, theta, x, t, _, rng = setup(d, M, n=4, backend=backend)
    phi, pull = mod.phi_vjp(x, t, theta)
    assert np.allclose(phi, mod.phi(x, t, theta), rtol=1e-14, atol=1e-14)
    pb = rng.standard_normal(x.shape[0])
    xb, tb, thb = pull(pb)
    vx, vt, vth = unit(rng, x.shape), unit(rng, t.shape), unit(rng, theta.shape)
    for name, r in (("x", taylor_test(lambda y: pb @ mod.phi(y, t, theta), x, vx, np.sum(xb * vx))),
                    ("t", taylor_test(lambda y: pb @ mod.phi(x, y, theta), t, vt, tb @ vt)),
                    ("theta", taylor_test(lambda y: pb @ mod.phi(x, t, y), theta, vth, thb @ vth))):
        assert r.passed, f"phi_vjp wrt {name}, d={d}, M={M}\n{r}"
    v = (rng.standard_normal(x.shape), rng.standard_normal(t.shape), rng.standard_normal(theta.size))
    err = dot_product_test(lambda v: mod.derivatives_jvp(x, t, theta, *v).phi,
                           lambda w: pull(w), v, pb)
    assert err <= 1e-12
    for a, b in zip((xb, tb, thb), mod.derivatives_vjp(x, t, theta, phi_bar=pb)):
        assert np.allclose(a, b, rtol=1e-12, atol=1e-13)
    with pytest.raises(ValueError, match="phi_bar"):
        pull(np.ones(x.shape[0] + 1))


# --------------------------------------------------------------------------- jvp (G1)
def _jvp_taylor(mod, theta, x, t, probes, rng):
    vx, vt, vth = unit(rng, x.shape), unit(rng, t.shape), unit(rng, theta.shape)
    J = mod.derivatives_jvp(x, t, theta, dx=vx, dt=vt, dtheta=vth, probes=probes)
    out = {}
    for o in OUTS:
        def f(e, o=o):
            return getattr(mod.derivatives(x + e[0] * vx, t + e[0] * vt, theta + e[0] * vth,
                                           probes=probes), o)
        out[o] = taylor_test(f, np.zeros(1), np.ones(1), getattr(J, o))
    return out


@pytest.mark.parametrize("M", LAYERS)
@pytest.mark.parametrize("d", DIMS)
def test_jvp_taylor_and_dot_product(d, M):
    mod, theta, x, t, _, rng = setup(d, M)
    for o, r in _jvp_taylor(mod, theta, x, t, None, rng).items():
        assert r.passed, f"jvp of {o}, d={d}, M={M}\n{r}"
    n = x.shape[0]
    v = (rng.standard_normal(x.shape), rng.standard_normal(n), rng.standard_normal(theta.size))
    w = (rng.standard_normal(n), rng.standard_normal((n, d)), rng.standard_normal(n),
         rng.standard_normal(n))
    err = dot_product_test(lambda v: tuple(mod.derivatives_jvp(x, t, theta, *v)),
                           lambda w: mod.derivatives_vjp(x, t, theta, *w), v, w)
    assert err <= 1e-12


def test_jvp_scalar_dt_is_shared_time_direction():
    mod, theta, x, t, _, rng = setup(2, 1)
    a = mod.derivatives_jvp(x, t, theta, dt=0.7)
    b = mod.derivatives_jvp(x, t, theta, dt=np.full(3, 0.7))
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


# --------------------------------------------------------------------------- Hutchinson
@pytest.mark.parametrize("kind", ["rademacher", "gaussian"])
def test_hutchinson_mean_matches_exact_trace_within_three_standard_errors(kind):
    d, M, n, K = 5, 2, 3, 4000
    ex, theta, x, t, _, _ = setup(d, M, n=n)
    hu = PotentialResNet(d, width=5, n_layers=M, trace="hutchinson")
    exact = ex.derivatives(x, t, theta).lap
    probes = hu.sample_probes(n, np.random.default_rng(42), k=K, kind=kind)
    # one probe per row: the per-probe estimates, to get the standard error
    xr, tr = np.tile(x, (K, 1)), np.tile(t, K)
    single = hu.derivatives(xr, tr, theta, probes=probes.reshape(1, K * n, d)).lap.reshape(K, n)
    mean, se = single.mean(axis=0), single.std(axis=0, ddof=1) / np.sqrt(K)
    assert np.all(se > 0)
    assert np.all(np.abs(mean - exact) <= 3 * se), (mean, exact, se)
    # the k-probe call returns the mean over its probes
    np.testing.assert_allclose(hu.derivatives(x, t, theta, probes=probes).lap, mean,
                               rtol=1e-12, atol=1e-12 * np.max(np.abs(mean)))
    # the other outputs do not depend on the trace
    for u, v in zip(ex.derivatives(x, t, theta)[:3], hu.derivatives(x, t, theta, probes=probes[:2])[:3]):
        np.testing.assert_array_equal(u, v)


def test_hutchinson_with_identity_probes_is_exact():
    d, M = 5, 2
    ex, theta, x, t, _, _ = setup(d, M)
    hu = PotentialResNet(d, width=5, n_layers=M, trace="hutchinson")
    probes = np.broadcast_to(np.eye(d)[:, None, :], (d, 3, d)) * np.sqrt(d)  # mean of d e_k^T H e_k
    np.testing.assert_allclose(hu.derivatives(x, t, theta, probes=probes).lap,
                               ex.derivatives(x, t, theta).lap, rtol=1e-12)
    bars = dict(lap_bar=np.arange(3.0) + 1)
    for u, v in zip(hu.derivatives_vjp(x, t, theta, probes=probes, **bars),
                    ex.derivatives_vjp(x, t, theta, **bars)):
        np.testing.assert_allclose(u, v, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("M", [1, 3])
@pytest.mark.parametrize("d", [1, 5])
def test_hutchinson_vjp_and_jvp(d, M):
    mod, theta, x, t, probes, rng = setup(d, M, trace="hutchinson")
    for name, r in zip(["x", "t", "theta"], _check_vjp_taylor(mod, theta, x, t, probes, rng, OUTS)):
        assert r.passed, f"hutchinson vjp wrt {name}\n{r}"
    for o, r in _jvp_taylor(mod, theta, x, t, probes, rng).items():
        assert r.passed, f"hutchinson jvp of {o}\n{r}"
    v = (rng.standard_normal(x.shape), rng.standard_normal(3), rng.standard_normal(theta.size))
    w = tuple(rng.standard_normal(s) for s in [(3,), (3, d), (3,), (3,)])
    err = dot_product_test(lambda v: tuple(mod.derivatives_jvp(x, t, theta, *v, probes=probes)),
                           lambda w: mod.derivatives_vjp(x, t, theta, *w, probes=probes), v, w)
    assert err <= 1e-12


def test_sample_probes_seeded_and_shaped():
    mod = PotentialResNet(3, trace="hutchinson")
    a = mod.sample_probes(4, 7, k=2)
    assert a.shape == (2, 4, 3) and set(np.unique(a)) == {-1.0, 1.0}
    np.testing.assert_array_equal(a, mod.sample_probes(4, 7, k=2))
    assert mod.sample_probes(4, np.random.default_rng(0), kind="gaussian").shape == (1, 4, 3)


# --------------------------------------------------------------------------- numba backend
@pytest.mark.parametrize("trace", ["exact", "hutchinson"])
@pytest.mark.parametrize("d,M", [(1, 1), (2, 3), (20, 2)])
def test_numba_agrees_with_numpy(d, M, trace):
    pytest.importorskip("numba")
    ref, theta, x, t, probes, rng = setup(d, M, n=5, width=6, trace=trace)
    nb = PotentialResNet(d, width=6, n_layers=M, trace=trace, backend="numba")

    def close(u, v):
        assert np.max(np.abs(u - v)) <= 1e-12 * max(1.0, np.max(np.abs(v)))

    for u, v in zip(nb.derivatives(x, t, theta, probes=probes), ref.derivatives(x, t, theta, probes=probes)):
        close(u, v)
    bars = dict(phi_bar=rng.standard_normal(5), grad_bar=rng.standard_normal((5, d)),
                dt_bar=rng.standard_normal(5), lap_bar=rng.standard_normal(5))
    for u, v in zip(nb.derivatives_vjp(x, t, theta, probes=probes, **bars),
                    ref.derivatives_vjp(x, t, theta, probes=probes, **bars)):
        close(u, v)
    tang = dict(dx=rng.standard_normal((5, d)), dt=rng.standard_normal(5),
                dtheta=rng.standard_normal(theta.size))
    for u, v in zip(nb.derivatives_jvp(x, t, theta, probes=probes, **tang),
                    ref.derivatives_jvp(x, t, theta, probes=probes, **tang)):
        close(u, v)


# --------------------------------------------------------------------------- init and inputs
def test_init_is_ot_flow_and_seeded():
    mod = PotentialResNet(3, width=7, n_layers=2)
    th = mod.init_params(5)
    P = mod.unpack(th)
    assert mod.rank == 4 and PotentialResNet(30).rank == 10 and PotentialResNet(3, rank=2).rank == 2
    np.testing.assert_array_equal(P["w"], 1.0)
    np.testing.assert_array_equal(P["b"], 0.0)
    np.testing.assert_array_equal(P["c"], 0.0)
    assert np.all(P["K"] != 0) and P["K"].shape == (2, 7, 7) and P["A"].shape == (4, 4)
    np.testing.assert_array_equal(th, mod.init_params(5))
    assert not np.array_equal(th, mod.init_params(6))
    assert th.dtype == np.float64 and th.shape == (mod.n_params,)


def test_log_cosh_is_stable():
    a = np.array([-1e4, -30.0, 0.0, 1e-3, 30.0, 1e4])
    v = pot.log_cosh(a)
    assert np.all(np.isfinite(v))
    np.testing.assert_allclose(v[1:5], np.log(2 * np.cosh(a[1:5])), rtol=1e-14)
    np.testing.assert_allclose(v[[0, 5]], 1e4 + np.log1p(np.exp(-2e4)), rtol=1e-15)


def test_bad_inputs_raise_naming_the_argument():
    mod = PotentialResNet(2, width=3)
    th = mod.init_params(0)
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match="x"):
        mod.derivatives(np.zeros((4, 3)), 0.0, th)
    with pytest.raises(ValueError, match="t"):
        mod.derivatives(x, np.zeros(3), th)
    with pytest.raises(ValueError, match="theta"):
        mod.derivatives(x, 0.0, th[:-1])
    with pytest.raises(ValueError, match="grad_bar"):
        mod.derivatives_vjp(x, 0.0, th, grad_bar=np.zeros((4, 3)))
    with pytest.raises(ValueError, match="probes"):
        mod.derivatives(x, 0.0, th, probes=np.ones((1, 4, 2)))
    with pytest.raises(ValueError, match="trace"):
        PotentialResNet(2, trace="hutch")
    with pytest.raises(ValueError, match="backend"):
        PotentialResNet(2, backend="torch")
    with pytest.raises(TypeError, match="n_layers"):
        PotentialResNet(2, n_layers=1.5)
    hu = PotentialResNet(2, width=3, trace="hutchinson")
    with pytest.raises(ValueError, match="probes"):
        hu.derivatives(x, 0.0, th)
    with pytest.raises(ValueError, match="probes"):
        hu.derivatives(x, 0.0, th, probes=np.ones((2, 3, 2)))
    with pytest.raises(ValueError, match="x"):
        mod.derivatives(np.full((4, 2), np.nan), 0.0, th)


def test_numba_block_split_does_not_change_results():
    """theta_bar is accumulated per block of samples (one per thread); any split agrees."""
    pytest.importorskip("numba")
    from ocp_learn.kernels import potential_numba as pn
    from ocp_learn.kernels.potential_reference import forward as _forward
    mod, theta, x, t, _, rng = setup(3, 2, n=7, width=4)
    s = np.column_stack([x, t])
    P = mod.unpack(theta)
    bars = (rng.standard_normal(7), rng.standard_normal((7, 4)), rng.standard_normal(7))
    s1, B1 = pn.derivatives_vjp(P, s, None, mod.h, *bars, nblocks=1)
    s3, B3 = pn.derivatives_vjp(P, s, None, mod.h, *bars, nblocks=3)
    np.testing.assert_allclose(s1, s3, rtol=1e-14, atol=0)
    for k in B1:
        np.testing.assert_allclose(B1[k], B3[k], rtol=1e-12, atol=1e-13)
    phi, G, lap = pn.derivatives(P, s, None, mod.h, nblocks=4)
    ref = _forward(P, s, None, mod.h, 3)
    np.testing.assert_allclose(lap, ref[2], rtol=1e-12)
    np.testing.assert_allclose(G, ref[1], rtol=1e-12, atol=1e-14)
