"""An optimizer warns when it starts with the continuous adjoint (MATH B3) far from the
discrete gradient, and names the error; exact strategies are not measured."""
import warnings

import numpy as np
import pytest

from ocp_learn.costs import Tikhonov
from ocp_learn.ocp import OCP
from ocp_learn.optim import lbfgs
from ocp_learn.optim.driver import GRADIENT_TOL
from ocp_learn.problems.mfg import mfg_preset


def _crowd(strategy, integrator="heun", nt=4):
    p = mfg_preset("crowd", 3, n_samples=6, backend="numpy", seed=6)
    return OCP(p.field, p.x0, p.terminal, T=1.0, nt=nt, integrator=integrator,
               regularizers=[Tikhonov(1e-2)], strategy=strategy)


def test_gradient_error_against_the_discrete_adjoint():
    prob = _crowd("continuous")
    theta = prob.init_params(0) + 0.2 * np.random.default_rng(0).standard_normal(prob.n_params)
    assert not prob.exact_gradient
    err = prob.gradient_error(theta)
    g = prob.objective_and_gradient(theta)[1]
    g_ref = _crowd("store_all").objective_and_gradient(theta)[1]
    assert err == pytest.approx(np.linalg.norm(g - g_ref) / np.linalg.norm(g_ref), rel=1e-12)
    assert err > GRADIENT_TOL
    exact = _crowd("store_states")
    assert exact.exact_gradient and exact.gradient_error(theta) <= 1e-12


def test_training_with_the_continuous_adjoint_warns_with_the_error():
    prob = _crowd("continuous")
    theta0 = prob.init_params(0) + 0.2 * np.random.default_rng(0).standard_normal(prob.n_params)
    err = prob.gradient_error(theta0)
    with pytest.warns(RuntimeWarning, match="relative error of") as rec:
        lbfgs(prob, theta0, maxiter=1, progress=False)
    msgs = [str(w.message) for w in rec if "inexact gradient" in str(w.message)]
    assert len(msgs) == 1 and f"{err:.3g}" in msgs[0] and "'continuous'" in msgs[0]


def test_training_with_the_discrete_adjoint_does_not_warn():
    prob = _crowd("store_all")
    theta0 = prob.init_params(0) + 0.2 * np.random.default_rng(0).standard_normal(prob.n_params)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        lbfgs(prob, theta0, maxiter=1, progress=False)


def test_a_small_error_does_not_warn():
    prob = _crowd("continuous", integrator="rk4", nt=64)
    theta0 = prob.init_params(0)
    err = prob.gradient_error(theta0)
    assert err < GRADIENT_TOL, err
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        lbfgs(prob, theta0, maxiter=1, progress=False)
