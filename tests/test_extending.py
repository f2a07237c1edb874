"""Users' own parts: contract violations are named at construction (method and expected
shape), and the four gallery examples of docs/extending.rst run and pass their checks."""
import pathlib
import runpy

import numpy as np
import pytest

import ocp_learn as ol
from ocp_learn.datasets import rings

X, Y = rings(12, seed=0)
EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def ocp(dynamics, **kw):
    return ol.OCP(dynamics, X, ol.LinearHeadLoss(Y, 2, "logistic"), nt=2, **kw)


class _WideRhs(ol.LinearModel):
    def rhs(self, y, t, theta):
        return np.hstack([y, y])


class _MatrixGradient(ol.LinearModel):
    def vjp(self, y, t, theta, ybar):
        ybar_y, g = super().vjp(y, t, theta, ybar)
        return ybar_y, g.reshape(2, 2)


class _TransposedAdjoint(ol.LinearModel):
    def vjp(self, y, t, theta, ybar):
        ybar_y, g = super().vjp(y, t, theta, ybar)
        return ybar_y.T, g


class _Triple(ol.LinearModel):
    def vjp(self, y, t, theta, ybar):
        return (*super().vjp(y, t, theta, ybar), None)


class _ColumnCost(ol.QuadraticState):
    def value(self, z, t, theta):
        return super().value(z, t, theta)[:, None]


@pytest.mark.parametrize("make, error, pattern", [
    (lambda: ocp(_WideRhs(2)), ValueError,
     r"dynamics.rhs\(y, t, theta\) must return shape \(n, state_dim\) = \(1, 2\) for y of "
     r"shape \(1, 2\), got \(1, 4\)"),
    (lambda: ocp(_MatrixGradient(2)), ValueError,
     r"dynamics.vjp\(y, t, theta, ybar\)\[1\] .* must have shape \(layout.size,\) = \(4,\), "
     r"got \(2, 2\)"),
    (lambda: ocp(_TransposedAdjoint(2)), ValueError,
     r"dynamics.vjp\(y, t, theta, ybar\)\[0\] .* must have the shape of y, \(n, state_dim\) "
     r"= \(1, 2\), got \(2, 1\)"),
    (lambda: ocp(_Triple(2)), TypeError, r"dynamics.vjp\(y, t, theta, ybar\) must return a "
                                         r"pair"),
    (lambda: ocp(ol.LinearModel(2), running=[_ColumnCost(np.eye(2))]), ValueError,
     r"running\[0\].value\(z, t, theta\) must return shape \(n,\) = \(1,\), got \(1, 1\)"),
])
def test_wrong_shapes_are_named_at_construction(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


def test_the_shape_check_leaves_the_numbers_alone():
    prob = ocp(ol.LinearModel(2), running=[ol.QuadraticState(np.eye(2))])
    theta = prob.init_params(0)
    assert prob.ledger.rhs_evals == 0 and prob.ledger.vjp_evals == 0  # not counted
    J1 = prob.objective(theta)
    assert J1 == ocp(ol.LinearModel(2), running=[ol.QuadraticState(np.eye(2))]).objective(theta)


@pytest.mark.parametrize("name", ["plot_extend_field", "plot_extend_terminal",
                                  "plot_extend_running", "plot_extend_interaction"])
def test_gallery_example_runs_and_passes_its_checks(name, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    import matplotlib

    matplotlib.use("Agg")
    runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="__main__")
    assert any(tmp_path.glob("*.png"))
