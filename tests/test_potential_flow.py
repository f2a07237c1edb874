"""CNF and MFG on the shared potential-flow field: exact gradients of the discrete objectives."""
import numpy as np
import pytest

from ocp_learn.costs.interactions import EntropyCost, ObstacleCost
from ocp_learn.datasets.densities import GaussianMixture, gaussian
from ocp_learn.problems.cnf import ContinuousNormalizingFlow
from ocp_learn.problems.mfg import PotentialMFG, mfg_preset
from ocp_learn.verify import check_gradient, dot_product_test, taylor_test


def perturbed(prob, seed=0, scale=0.3):
    rng = np.random.default_rng(seed)
    return prob.init_params(seed) + scale * rng.standard_normal(prob.n_params)


@pytest.mark.parametrize("trace", ["exact", "hutchinson"])
@pytest.mark.parametrize("integrator", ["euler", "rk4"])
def test_cnf_gradient_is_exact(trace, integrator):
    x = np.random.default_rng(0).standard_normal((9, 2)) * 1.5
    prob = ContinuousNormalizingFlow(x, width=6, n_layers=2, nt=3, integrator=integrator,
                                     alpha_L=3.0, alpha_R=2.0, trace=trace, n_probes=2)
    theta = perturbed(prob)
    res = check_gradient(prob.objective_and_gradient, theta, seed=1)
    assert res.passed, str(res)


def _mfg(kind, dim=3, n=8):
    m0, m1 = np.zeros(dim), np.zeros(dim)
    m0[1], m1[1] = 1.0, -1.0
    rho0 = GaussianMixture(np.stack([m0, m0 + 0.7]), 0.4)
    if kind == "crowd":
        inter = [ObstacleCost(5.0), EntropyCost(0.3)]
        return PotentialMFG(rho0, gaussian(m1, 0.5), n_samples=n, interactions=inter,
                            alpha=(1.3, 0.7, 2.0, 3.0, 1.5), nt=3, width=5, n_layers=2)
    return PotentialMFG(rho0, gaussian(m1, 0.5), n_samples=n, alpha=(2.0, 1.0, 5.0, 3.0, 3.0), nt=2,
                        width=5, n_layers=1)


@pytest.mark.parametrize("kind", ["ot", "crowd"])
def test_mfg_gradient_is_exact(kind):
    prob = _mfg(kind)
    theta = perturbed(prob, 2)
    res = check_gradient(prob.objective_and_gradient, theta, seed=4)
    assert res.passed, str(res)
    ev = prob.evaluate(theta)
    assert {"L", "G", "hjb", "hjb_terminal"} <= set(ev.terms)
    if kind == "crowd":
        assert "F" in ev.terms


@pytest.mark.parametrize("kind", ["ot", "crowd"])
def test_field_jvp_vjp_dot_product_and_taylor(kind):
    prob = _mfg(kind)
    field = prob.field
    theta = perturbed(prob, 3)[:field.layout.size]
    rng = np.random.default_rng(5)
    y = field.initial_state(prob.x0)
    y[:, field.c_ell] = 0.2 * rng.standard_normal(y.shape[0])
    dy = rng.standard_normal(y.shape)
    dth = rng.standard_normal(theta.size)
    w = rng.standard_normal(y.shape)
    err = dot_product_test(lambda v: field.jvp(y, 0.4, theta, v[0], v[1]),
                           lambda u: field.vjp(y, 0.4, theta, u), (dy, dth), w)
    assert err < 1e-12
    x = np.concatenate([y.ravel(), theta])
    v = np.concatenate([dy.ravel(), dth])
    f = lambda a: field.rhs(a[:y.size].reshape(y.shape), 0.4, a[y.size:])  # noqa: E731
    res = taylor_test(f, x, v, field.jvp(y, 0.4, theta, dy, dth), eps0=1e-2)
    assert res.passed, str(res)


def test_dropped_interaction_term_is_caught(monkeypatch):
    prob = _mfg("crowd")
    theta = perturbed(prob, 2)
    monkeypatch.setattr(ObstacleCost, "drho_partials",
                        lambda self, z, lr: (np.zeros_like(z), np.zeros(z.shape[0])))
    assert not check_gradient(prob.objective_and_gradient, theta, seed=4).passed


def test_cnf_density_and_sampling_round_trip():
    x = np.random.default_rng(0).standard_normal((50, 2))
    prob = ContinuousNormalizingFlow(x, width=8, nt=8)
    theta = perturbed(prob, 0, 0.1)
    # the model density (change of variables with the integrated log-determinant) has mass one;
    # the initial flow contracts, so the box must be wide
    g = np.linspace(-24, 24, 241)
    G = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    mass = np.exp(prob.log_density(theta, G)).sum() * (g[1] - g[0]) ** 2
    assert abs(mass - 1) < 0.02
    assert prob.inverse_error(theta, x) < 1e-3
    assert prob.inverse_error(theta, x, nt=32) < prob.inverse_error(theta, x, nt=4)
    s = prob.sample(theta, 20, seed=1)
    assert s.shape == (20, 2) and np.all(np.isfinite(s))
    np.testing.assert_array_equal(s, prob.sample(theta, 20, seed=1))


def test_cnf_fixed_affine_input_map():
    """``u = (x - shift) / scale``: density by change of variables, samples and round trip in
    data coordinates, training objective and gradient those of the flow on ``u``."""
    rng = np.random.default_rng(0)
    x = 3.0 + 0.5 * rng.standard_normal((40, 3))
    shift, scale = np.array([3.0, 2.5, 3.5]), np.array([0.5, 0.4, 0.7])
    prob = ContinuousNormalizingFlow(x, width=8, nt=4, shift=shift, scale=scale)
    base = ContinuousNormalizingFlow((x - shift) / scale, width=8, nt=4)
    theta = perturbed(prob, 0, 0.1)
    np.testing.assert_allclose(prob.x0, base.x0)
    np.testing.assert_allclose(prob.log_density(theta, x),
                               base.log_density(theta, (x - shift) / scale) - np.log(scale).sum(),
                               rtol=1e-13)
    f, g = prob.objective_and_gradient(theta)
    fb, gb = base.objective_and_gradient(theta)
    assert f == fb and np.array_equal(g, gb)
    assert prob.terms(theta)["nll"] == pytest.approx(prob.nll(theta, x), rel=1e-12)
    np.testing.assert_allclose(prob.sample(theta, 7, seed=2),
                               shift + scale * base.sample(theta, 7, seed=2), rtol=1e-13)
    u = (x - shift) / scale
    ur = base._integrate(theta, base.transport(theta, u)[-1], 1.0, 0.0, None)[-1][:, :3]
    assert prob.inverse_error(theta, x) == pytest.approx(
        np.mean(np.linalg.norm(scale * (ur - u), axis=1)), rel=1e-12)
    assert prob.inverse_error(theta, x, nt=32) < 1e-4
    assert prob.with_steps(8).log_det_input == prob.log_det_input
    # a scalar scale broadcasts; bad maps are named
    p1 = ContinuousNormalizingFlow(x, width=8, nt=4, scale=0.5)
    assert p1.log_det_input == pytest.approx(-3 * np.log(0.5))
    with pytest.raises(ValueError, match="scale must be positive"):
        ContinuousNormalizingFlow(x, width=8, scale=[1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="shift"):
        ContinuousNormalizingFlow(x, width=8, shift=[1.0, 2.0])


def test_presets_build_in_any_dimension():
    for name in ("ot", "crowd", "nf", "nf-ot"):
        for d in (2, 5):
            p = mfg_preset(name, d, n_samples=16)
            th = p.init_params(0)
            J, g = p.objective_and_gradient(th)
            assert np.isfinite(J) and g.shape == (p.n_params,)
    with pytest.raises(ValueError, match="name"):
        mfg_preset("nope", 2)


@pytest.mark.parametrize("name", ["ot", "crowd", "nf-ot"])
def test_numba_fused_field_matches_numpy(name):
    a = mfg_preset(name, 3, n_samples=24, backend="numba")
    b = mfg_preset(name, 3, n_samples=24, backend="numpy")
    th = perturbed(a, 1, 0.2)
    Ja, ga = a.objective_and_gradient(th)
    Jb, gb = b.objective_and_gradient(th)
    assert abs(Ja - Jb) <= 1e-12 * abs(Jb)
    assert np.linalg.norm(ga - gb) <= 1e-12 * np.linalg.norm(gb)


def test_same_method_shares_one_call_only_where_the_term_defines_it_so():
    """The obstacle's ``drho`` is its ``value`` (one call serves both); the entropy's are
    different; an instance override is never taken for the class's method."""
    from ocp_learn.costs.interactions import EntropyCost, ObstacleCost
    ob, en = ObstacleCost(), EntropyCost()
    # the field shares one call where the bound methods are equal (same function, same object)
    assert ob.drho == ob.value and ob.drho_partials == ob.value_partials
    assert en.drho != en.value
    ob.drho = lambda z, lr: 0.0 * ob.Q(z)
    assert ob.drho != ob.value
