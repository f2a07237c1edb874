"""Refactors keep the numbers: objective and gradient of every preset equal the values
recorded on the reference commit (``tests/golden/golden.npz``) to 1e-14."""
import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "golden"))
from make_golden import cases

GOLD = np.load(pathlib.Path(__file__).resolve().parent / "golden" / "golden.npz")
CASES = cases()


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize("name", sorted(CASES))
def test_objective_and_gradient_equal_the_reference_commit(name):
    p, theta = CASES[name]
    np.testing.assert_array_equal(theta, GOLD[name + "/theta"])
    J, g = p.objective_and_gradient(theta)
    tol = 1e-14 if g.dtype == np.float64 else 1e-6  # float32: same program, rounding of 6e-8
    assert _rel(J, GOLD[name + "/J"]) <= tol
    assert _rel(g, GOLD[name + "/grad"]) <= tol


def test_the_check_fails_when_a_number_moves():
    p, theta = CASES["cnf_exact_M1"]
    J, g = p.objective_and_gradient(theta)
    g = g.copy()
    g[3] *= 1 + 1e-12
    assert _rel(g, GOLD["cnf_exact_M1/grad"]) > 1e-14
