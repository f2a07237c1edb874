"""The integrator contract: what the sweeps and the gradient strategies may call and read."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    from ..arrays import Workspace
    from .tableau import ButcherTableau

__all__ = ["Integrator", "InvertibleIntegrator"]


@runtime_checkable
class Integrator(Protocol):
    """A one-step time integrator with its discrete tangent and adjoint (MATH B1, B2).

    1. ``name``, ``order`` -- its registry name and order of accuracy.
    2. ``stages`` -- field evaluations per step (what the ledger counts).
    3. ``tableau`` -- the :class:`~ocp_learn.integrators.ButcherTableau` of an explicit
       Runge--Kutta method, ``None`` for other schemes (the continuous adjoint integrates
       its equations with it, MATH B3).
    4. ``reversible`` -- whether ``step_inverse`` rebuilds ``y_k`` from ``y_{k+1}``
       (:class:`InvertibleIntegrator`, the ``reversible`` strategy, MATH B4).
    5. ``uses_residuals`` -- whether a kept step stores a field's residuals
       (:class:`~ocp_learn.protocols.FieldWithResiduals`) when the sweep asks for them.
    6. ``tape_floats(n, D)`` -- floats one kept step holds for ``n`` samples of ``D``
       columns, the field's residuals excluded.
    7. ``step(field, y, t, h, ctrl, keep=True, *, work=None, residuals=False)`` ->
       ``(y_next, tape)``: ``tape`` (``None`` unless ``keep``) is what item 8 needs and owns
       its arrays; with ``residuals`` the field's ``rhs_tape`` is called on kept steps.
    8. ``step_adjoint(field, tape, t, h, ctrl, lam, *, work=None)`` -> ``lam_prev``: for
       ``lam = dJ/dy_{k+1}``, returns ``dJ/dy_k`` and adds the parameter gradient to
       ``ctrl`` (MATH B2).
    9. ``step_tangent(field, y, dy, t, h, ctrl, *, work=None)`` -> ``(y_next, dy_next)``.

    ``ctrl`` is a step control (:mod:`ocp_learn.controls`); ``work`` a
    :class:`~ocp_learn.arrays.Workspace` for the step's temporaries (a fresh one when
    ``None``).  Every array is created in the namespace of the state it comes from.
    """

    name: str
    order: int
    stages: int
    tableau: ButcherTableau | None
    reversible: bool
    uses_residuals: bool

    def tape_floats(self, n: int, D: int) -> int: ...

    def step(self, field: Any, y: Any, t: float, h: float, ctrl: Any, keep: bool = True, *,
             work: Workspace | None = None, residuals: bool = False) -> tuple[Any, Any]: ...

    def step_adjoint(self, field: Any, tape: Any, t: float, h: float, ctrl: Any, lam: Any, *,
                     work: Workspace | None = None) -> Any: ...

    def step_tangent(self, field: Any, y: Any, dy: Any, t: float, h: float, ctrl: Any, *,
                     work: Workspace | None = None) -> tuple[Any, Any]: ...


@runtime_checkable
class InvertibleIntegrator(Integrator, Protocol):
    """An integrator whose step can be undone (``reversible = True``).

    10. ``step_inverse(field, y_next, t, h, ctrl, keep=True)`` -> ``(y, tape)``: the state
        ``y_k`` rebuilt from ``y_{k+1}`` and, when ``keep``, the tape ``step`` would have
        kept from it (so the adjoint needs no further evaluation).
    """

    def step_inverse(self, field: Any, y_next: Any, t: float, h: float, ctrl: Any,
                     keep: bool = True) -> tuple[Any, Any]: ...
