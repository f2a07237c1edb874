"""CasADi witnesses the MFG objectives: interactions, log rho_0, KL terminal, terminal HJB."""
import numpy as np
import pytest

from ocp_learn import get_integrator
from ocp_learn.problems.mfg import mfg_preset
from ocp_learn.reference import compare_gradient


@pytest.mark.parametrize("name", ["ot", "crowd", "nf", "nf-ot"])
@pytest.mark.parametrize("integrator", ["euler", "heun", "rk4"])
def test_mfg_gradient_matches_casadi(name, integrator):
    p = mfg_preset(name, 3, n_samples=5, backend="numpy")
    p.integrator = get_integrator(integrator)
    th = p.init_params(0) + 0.2 * np.random.default_rng(0).standard_normal(p.n_params)
    r = compare_gradient(p, th)
    assert r["rel_diff"] <= 1e-10 and r["value_rel_diff"] <= 1e-12, r
