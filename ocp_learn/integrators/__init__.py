"""Time integrators: explicit Runge--Kutta tableaux (and leapfrog, see issue notes)."""
from .tableau import ButcherTableau, EULER, HEUN, MIDPOINT, RK3, RK4, TABLEAUX
from .rk import ExplicitRK

__all__ = ["ButcherTableau", "ExplicitRK", "EULER", "HEUN", "MIDPOINT", "RK3", "RK4", "TABLEAUX",
           "get_integrator", "INTEGRATORS"]

INTEGRATORS = {}


def register_integrator(name, factory):
    """Make ``get_integrator(name)`` build ``factory()`` (e.g. leapfrog)."""
    INTEGRATORS[name] = factory


def get_integrator(spec):
    """An integrator object from a name (``"euler"``, ``"heun"``, ``"rk4"``, ...),
    a :class:`ButcherTableau`, or an integrator object (returned as is)."""
    if isinstance(spec, ButcherTableau):
        return ExplicitRK(spec)
    if isinstance(spec, str):
        if spec in TABLEAUX:
            return ExplicitRK(TABLEAUX[spec])
        if spec in INTEGRATORS:
            return INTEGRATORS[spec]()
        raise ValueError(f"integrator must be one of {sorted(set(TABLEAUX) | set(INTEGRATORS))}, "
                         f"a ButcherTableau or an integrator object, got {spec!r}")
    if hasattr(spec, "step") and hasattr(spec, "step_adjoint"):
        return spec
    raise TypeError(f"integrator must be a name, a ButcherTableau or an integrator object, got {spec!r}")


from .leapfrog import Leapfrog  # noqa: E402

register_integrator("leapfrog", Leapfrog)
__all__ += ["Leapfrog"]
