"""Time integrators: explicit Runge--Kutta tableaux and the leapfrog scheme.

Every integrator follows the :class:`~ocp_learn.integrators.base.Integrator` contract;
:func:`get_integrator` builds one from a name or a tableau, and
:func:`register_integrator` adds a name.
"""
from __future__ import annotations

from typing import Any, Callable

from ..protocols import check_protocol
from .base import Integrator, InvertibleIntegrator
from .leapfrog import Leapfrog
from .rk import ExplicitRK, StageTape
from .tableau import EULER, HEUN, MIDPOINT, RK3, RK4, TABLEAUX, ButcherTableau

__all__ = ["ButcherTableau", "ExplicitRK", "EULER", "HEUN", "MIDPOINT", "RK3", "RK4", "TABLEAUX",
           "Integrator", "InvertibleIntegrator", "Leapfrog", "StageTape", "get_integrator",
           "register_integrator", "INTEGRATORS"]

#: integrators other than the tableaux, by name: ``name -> factory()``
INTEGRATORS: dict[str, Callable[[], Integrator]] = {"leapfrog": Leapfrog}


def register_integrator(name: str, factory: Callable[[], Integrator]) -> None:
    """Make ``get_integrator(name)`` build ``factory()``.

    Parameters
    ----------
    name : str
        The registry name.
    factory : callable
        Builds the integrator without arguments.
    """
    INTEGRATORS[name] = factory


def get_integrator(spec: Any) -> Integrator:
    """An integrator from a name, a tableau or an integrator object.

    Parameters
    ----------
    spec : str, ButcherTableau or Integrator
        A name of ``TABLEAUX`` (``"euler"``, ``"heun"``, ``"midpoint"``, ``"rk3"``,
        ``"rk4"``) or of :data:`INTEGRATORS` (``"leapfrog"``), a :class:`ButcherTableau`
        (an :class:`ExplicitRK` of it), or an object following the
        :class:`~ocp_learn.integrators.base.Integrator` contract (returned as it is).

    Returns
    -------
    Integrator
        The integrator.
    """
    if isinstance(spec, ButcherTableau):
        return ExplicitRK(spec)
    if isinstance(spec, str):
        if spec in TABLEAUX:
            return ExplicitRK(TABLEAUX[spec])
        if spec in INTEGRATORS:
            return INTEGRATORS[spec]()
        raise ValueError(f"integrator must be one of {sorted(set(TABLEAUX) | set(INTEGRATORS))}, "
                         f"a ButcherTableau or an integrator object, got {spec!r}")
    try:
        return check_protocol(spec, Integrator, "integrator")
    except TypeError as err:
        raise TypeError(f"integrator must be a name, a ButcherTableau or an integrator object: "
                        f"{err}") from None
