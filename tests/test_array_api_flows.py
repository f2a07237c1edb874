"""The potential flows (CNF and MFG) run end to end in the array namespace of their states.

Objective and gradient of the CNF (exact and Hutchinson trace) and of the mean field games
(crowd motion with obstacle, entropy and the terminal HJB penalty; optimal transport) for
every explicit tableau x every memory strategy, computed on ``array_api_strict`` arrays (which
refuse NumPy functions, NumPy scalars and implicit conversions), equal the NumPy run to 1e-12,
and the final state and the adjoint stay in the strict namespace.  This is the generic path
the GPU runs (CuPy in place of ``array_api_strict``): a hidden NumPy call on it fails here.
"""
import numpy as np
import pytest

from ocp_learn.arrays import namespace
from ocp_learn.integrators import TABLEAUX

xps = pytest.importorskip("array_api_strict")

STRATEGIES = ["store_all", "store_states", "checkpoint", "continuous"]


def _backend():
    from ocp_learn.kernels.potential_cupy import CupyPotentialBackend
    return CupyPotentialBackend(xp=xps)


def _cnf(backend, integrator, trace):
    from ocp_learn.problems.cnf import ContinuousNormalizingFlow
    x = np.random.default_rng(3).standard_normal((7, 2))
    return ContinuousNormalizingFlow(x, width=5, nt=2, integrator=integrator, trace=trace,
                                     n_probes=2, backend=backend, seed=4)


def _mfg(backend, integrator, name):
    from ocp_learn.problems.mfg import mfg_preset
    prob = mfg_preset(name, dim=2, backend=backend, n_samples=6, nt=2)
    return prob.with_integrator(integrator) if hasattr(prob, "with_integrator") else prob


CASES = {
    "cnf-exact": lambda b, i: _cnf(b, i, "exact"),
    "cnf-hutchinson": lambda b, i: _cnf(b, i, "hutchinson"),
    "mfg-crowd": lambda b, i: _mfg(b, i, "crowd"),
    "mfg-ot": lambda b, i: _mfg(b, i, "ot"),
}


def _pair(case, integrator, strategy):
    ref = CASES[case]("numpy", integrator).with_strategy(strategy)
    dev = CASES[case](_backend(), integrator).with_strategy(strategy)
    return ref, dev


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("integrator", list(TABLEAUX))
@pytest.mark.parametrize("case", list(CASES))
def test_flow_objective_and_gradient_on_strict_arrays(case, integrator, strategy):
    ref, dev = _pair(case, integrator, strategy)
    assert dev.xp is xps and ref.xp is np
    theta = ref.init_params(0) * 0.5
    a, b = ref.evaluate(theta), dev.evaluate(theta)
    assert namespace(b.state) is xps and namespace(b.lam0) is xps
    assert isinstance(b.gradient, np.ndarray) and b.gradient.dtype == np.float64
    assert abs(b.value - a.value) <= 1e-12 * max(1.0, abs(a.value))
    np.testing.assert_allclose(b.gradient, a.gradient, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(b.state), a.state, rtol=1e-12, atol=1e-12)
    for k, v in a.terms.items():
        if isinstance(v, float):
            assert abs(b.terms[k] - v) <= 1e-12 * max(1.0, abs(v)), k


def test_flow_batch_and_other_samples_on_strict_arrays():
    """Rows of the device copy of the samples, and outside samples, as on NumPy."""
    ref, dev = _pair("cnf-hutchinson", "rk4", "store_all")
    theta = ref.init_params(1)
    rows = np.array([4, 0, 2])
    np.testing.assert_allclose(dev.evaluate(theta, rows).gradient,
                               ref.evaluate(theta, rows).gradient, rtol=1e-12, atol=1e-12)
    x = np.random.default_rng(9).standard_normal((5, 2))
    assert abs(dev.evaluate(theta, gradient=False, x=x).value
               - ref.evaluate(theta, gradient=False, x=x).value) <= 1e-12


def test_the_strict_check_catches_a_numpy_call(monkeypatch):
    """Negative control: the flow field computing with NumPy functions on the strict states
    (its namespace lookup replaced by NumPy) is refused, so a hidden host call in the
    device path fails the test above."""
    import ocp_learn.models.potential_flow as pf
    _, dev = _pair("mfg-crowd", "rk4", "store_all")
    theta = dev.init_params(0)
    dev.evaluate(theta)
    monkeypatch.setattr(pf, "namespace", lambda *a: np)
    with pytest.raises((TypeError, ValueError)):
        dev.evaluate(theta)


def test_state_maps_on_strict_arrays():
    """Push-forward, density, sampling (NumPy results) and the Gauss-Newton state maps
    (results in the problem's namespace) of a device flow equal NumPy's."""
    ref, dev = _pair("cnf-exact", "rk4", "store_all")
    theta = ref.init_params(2)
    x = np.random.default_rng(5).standard_normal((4, 2))
    for f in (lambda p: p.push_forward(theta, x, trajectory=True),
              lambda p: p.log_density(theta, x),
              lambda p: p.sample(theta, 3, seed=1),
              lambda p: p.final_state(theta)):
        a, b = f(ref), f(dev)
        assert isinstance(b, np.ndarray)
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
    dth = np.random.default_rng(6).standard_normal(ref.n_params)
    (ya, dya), (_, dyb) = ref.final_state_jvp(theta, dth), dev.final_state_jvp(theta, dth)
    assert namespace(dyb) is xps
    np.testing.assert_allclose(np.asarray(dyb), dya, rtol=1e-12, atol=1e-12)
    ybar = np.random.default_rng(7).standard_normal(ya.shape)
    (ga, la), (gb, lb) = ref.final_state_vjp(theta, ybar), dev.final_state_vjp(theta, ybar)
    np.testing.assert_allclose(gb, ga, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(lb), la, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("trace_path", ["auto", "jacobian"])
def test_gram_path_of_the_device_program(trace_path):
    """One residual layer with d > m: the device program's trace by Gram matrices (auto)
    gives the numbers of the Jacobian path and of the NumPy reference, derivatives and vjp."""
    from ocp_learn.kernels.potential_cupy import CupyPotentialBackend
    from ocp_learn.models import PotentialResNet
    rng = np.random.default_rng(4)
    d, n = 9, 11
    ref = PotentialResNet(d, width=4, n_layers=1, backend="numpy")
    dev = PotentialResNet(d, width=4, n_layers=1,
                          backend=CupyPotentialBackend(xp=xps, chunk=4, trace_path=trace_path))
    theta = ref.init_params(0)
    x, t = rng.standard_normal((n, d)), rng.standard_normal(n)
    for a, b in zip(ref.derivatives(x, t, theta), dev.derivatives(x, t, theta)):
        np.testing.assert_allclose(np.asarray(b), a, rtol=1e-12, atol=1e-12)
    bars = dict(phi_bar=rng.standard_normal(n), grad_bar=rng.standard_normal((n, d)),
                dt_bar=rng.standard_normal(n), lap_bar=rng.standard_normal(n))
    for a, b in zip(ref.derivatives_vjp(x, t, theta, **bars),
                    dev.derivatives_vjp(x, t, theta, **bars)):
        np.testing.assert_allclose(np.asarray(b), a, rtol=1e-12, atol=1e-12)


def test_gram_path_negative_control():
    """The comparison catches a dropped term: the Gram path's adjoint without the cotangent
    of G_0 = K_0x K_0x^T (a mutant compiled from its source) misses the reference's K_0 bar."""
    import inspect
    import textwrap

    from ocp_learn.kernels import potential_reference as R
    from ocp_learn.models import PotentialResNet
    rng = np.random.default_rng(5)
    d, n = 9, 6
    pot = PotentialResNet(d, width=4, n_layers=1)
    P = pot.unpack(pot.init_params(1))
    s = rng.standard_normal((n, d + 1))
    bars = (rng.standard_normal(n), rng.standard_normal((n, d + 1)), rng.standard_normal(n))
    ref = R.vjp(P, R.forward(P, s, None, 1.0, d)[3], 1.0, d, *bars)[1]["K0"]
    cache = R.forward_gram(P, s, 1.0, d)[3]
    np.testing.assert_allclose(R.vjp_gram(P, cache, 1.0, d, *bars)[1]["K0"], ref,
                               rtol=1e-12, atol=1e-12)
    src = textwrap.dedent(inspect.getsource(R.vjp_gram))
    old = "+ (G0bar + G0bar.T) @ K0x"
    assert src.count(old) == 1
    ns = {}
    exec(compile(src.replace(old, ""), "<vjp_gram mutant>", "exec"), dict(vars(R)), ns)
    bad = ns["vjp_gram"](P, cache, 1.0, d, *bars)[1]["K0"]
    assert np.max(np.abs(bad - ref)) > 1e-3 * np.max(np.abs(ref))


def test_mfg_in_high_dimension_takes_the_gram_path_on_a_device():
    """The crowd game in d = 20 (width 16: the Gram path) on strict arrays equals NumPy."""
    from ocp_learn.problems.mfg import mfg_preset
    ref = mfg_preset("crowd", dim=20, backend="numpy", n_samples=5, nt=2)
    dev = mfg_preset("crowd", dim=20, backend=_backend(), n_samples=5, nt=2)
    theta = ref.init_params(0)
    a, b = ref.evaluate(theta), dev.evaluate(theta)
    assert abs(b.value - a.value) <= 1e-12 * abs(a.value)
    np.testing.assert_allclose(b.gradient, a.gradient, rtol=1e-11, atol=1e-12)
