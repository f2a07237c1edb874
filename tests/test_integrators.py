import pytest

import ocp_learn as ol
from ocp_learn.integrators import (TABLEAUX, ButcherTableau, ExplicitRK, Integrator,
                                   InvertibleIntegrator, Leapfrog, get_integrator)
from ocp_learn.verify import convergence_order


@pytest.mark.parametrize("name,order", [("euler", 1), ("heun", 2), ("midpoint", 2), ("rk3", 3),
                                        ("rk4", 4)])
def test_observed_convergence_order(name, order):
    observed, errors = convergence_order(name)
    assert abs(observed - order) <= 0.1, (observed, errors)
    assert TABLEAUX[name].order == order


def test_user_tableau_ralston():
    ralston = ButcherTableau([[0, 0], [2 / 3, 0]], [1 / 4, 3 / 4], [0, 2 / 3], "ralston")
    assert ralston.order == 2
    observed, _ = convergence_order(ralston)
    assert abs(observed - 2) <= 0.1


@pytest.mark.parametrize("a,b,c,msg", [
    ([[0, 1], [0, 0]], [0.5, 0.5], [0, 0], "lower triangular"),
    ([[0, 0], [1, 0]], [0.5, 0.5], [0, 0.5], "sum to c"),
    ([[0, 0], [1, 0]], [0.4, 0.4], [0, 1], "consistent"),
    ([[0, 0], [1, 0]], [0.5, 0.5, 0.1], [0, 1], "shape"),
])
def test_bad_tableaux_are_rejected(a, b, c, msg):
    with pytest.raises(ValueError, match=msg):
        ButcherTableau(a, b, c)


def test_claimed_order_is_checked():
    with pytest.raises(ValueError, match="claims order 3"):
        ButcherTableau([[0, 0], [1, 0]], [0.5, 0.5], [0, 1], "heun-ish", 3)


def test_get_integrator_names():
    assert ol.get_integrator("rk4").order == 4
    with pytest.raises(ValueError, match="integrator must be one of"):
        ol.get_integrator("rk5")


def test_integrators_declare_their_capabilities():
    for name in TABLEAUX:
        rk = get_integrator(name)
        assert isinstance(rk, Integrator) and not isinstance(rk, InvertibleIntegrator)
        assert rk.tableau is TABLEAUX[name] and rk.uses_residuals and not rk.reversible
    lf = get_integrator("leapfrog")
    assert isinstance(lf, InvertibleIntegrator)
    assert lf.tableau is None and lf.reversible and not lf.uses_residuals


def test_integrator_objects_are_checked_against_the_contract():
    rk = ExplicitRK(TABLEAUX["heun"])
    assert get_integrator(rk) is rk and isinstance(get_integrator("leapfrog"), Leapfrog)

    class NoCapabilities:
        name, order, stages = "mine", 1, 1

        def step(self, *a, **k): ...

        def step_adjoint(self, *a, **k): ...

        def step_tangent(self, *a, **k): ...

        def tape_floats(self, n, D): ...

    with pytest.raises(TypeError, match="lacks 'tableau', 'reversible', 'uses_residuals'"):
        get_integrator(NoCapabilities())
    with pytest.raises(TypeError, match="integrator must be a name"):
        get_integrator(3)
