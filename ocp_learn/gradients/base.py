"""Gradient (memory) strategies for the discrete adjoint (MATH B2, B4).

A strategy decides what the forward sweep keeps and how the backward sweep
gets the stage states it needs.  Strategies never touch a model: they call a
:class:`Sweep`, which binds field, integrator, time grid and controls.  Arrays
stay in the namespace of the states (:mod:`ocp_learn.arrays`).
"""
from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence, runtime_checkable

from ..arrays import Workspace, namespace
from ..errors import NonFiniteError
from ..ledger import Ledger
from ..protocols import FieldWithResiduals

__all__ = ["Sweep", "Strategy", "GradientStrategy", "StoreAll", "StoreStates", "get_strategy",
           "register_strategy", "STRATEGIES"]


class Sweep:
    """Field + integrator + time grid + controls, with the ledger.

    Parameters
    ----------
    field : Field
        The vector field (:class:`~ocp_learn.protocols.Field`).
    integrator : Integrator
        :class:`~ocp_learn.integrators.base.Integrator`.
    times : sequence of float
        The grid ``t_0 < ... < t_N`` (or decreasing, for backward integration).
    controls : sequence
        One step control per step (:mod:`ocp_learn.controls`).
    ledger : Ledger
        Counts evaluations, steps and stored floats.
    work : Workspace, optional
        Scratch arrays to reuse (see the attribute ``work``).

    Attributes
    ----------
    nt : int
        Number of steps; ``times[k]`` is the start of step ``k``.
    residuals : bool
        Whether kept steps store the field's residuals: the integrator uses them and the
        field is a :class:`~ocp_learn.protocols.FieldWithResiduals` (decided here, once).
    work : Workspace
        Scratch arrays of the integrator's steps, reused from step to step; pass one
        ``work`` to reuse them from sweep to sweep as well (an :class:`~ocp_learn.ocp.OCP`
        does), so that repeated evaluations touch the same memory.
    """

    def __init__(self, field: Any, integrator: Any, times: Sequence[float], controls: Sequence[Any],
                 ledger: Ledger, work: Workspace | None = None) -> None:
        self.field, self.integ, self.times = field, integrator, times
        self.controls, self.ledger = controls, ledger
        self.nt = len(times) - 1
        self.residuals = bool(integrator.uses_residuals) and isinstance(field, FieldWithResiduals)
        self.work = Workspace() if work is None else work

    def h(self, k: int) -> float:
        """Size of step ``k``.

        Parameters
        ----------
        k : int
            The step.

        Returns
        -------
        float
            ``times[k + 1] - times[k]``.
        """
        return self.times[k + 1] - self.times[k]

    def step(self, k: int, y: Any, keep: bool, recompute: bool = False) -> tuple[Any, Any]:
        """Step ``k`` from ``y``.

        Parameters
        ----------
        k : int
            The step.
        y : array
            The state ``y_k``.
        keep : bool
            Whether to return the step's tape.
        recompute : bool, optional
            Count the step as a repeated one (a memory strategy's recomputation).

        Returns
        -------
        y1 : array
            The state ``y_{k+1}``.
        tape : object or None
            What the step's adjoint needs (None unless ``keep``).

        Raises
        ------
        NonFiniteError
            Naming the step, if the result overflows.
        """
        led = self.ledger
        y1, tape = self.integ.step(self.field, y, self.times[k], self.h(k), self.controls[k], keep,
                                   work=self.work, residuals=self.residuals)
        led.rhs_evals += self.integ.stages
        if recompute:
            led.recomputed_steps += 1
        else:
            led.steps += 1
            xp = namespace(y1)
            if not xp.all(xp.isfinite(y1)):
                raise NonFiniteError(
                    f"ODE solution overflowed at step {k} (t = {self.times[k + 1]:.6g}); "
                    "reduce the step size or the parameter scale", step=k)
        return y1, tape

    def step_adjoint(self, k: int, tape: Any, lam: Any) -> Any:
        """``dJ/dy_k`` from ``lam = dJ/dy_{k+1}`` and step ``k``'s tape (MATH B2).

        Parameters
        ----------
        k : int
            The step.
        tape : object
            The step's tape (from :meth:`step` with ``keep``).
        lam : array
            The adjoint ``dJ/dy_{k+1}``.

        Returns
        -------
        array
            The adjoint ``dJ/dy_k``; parameter gradients accumulate in the controls.
        """
        lam0 = self.integ.step_adjoint(self.field, tape, self.times[k], self.h(k), self.controls[k],
                                       lam, work=self.work)
        self.ledger.vjp_evals += self.integ.stages
        return lam0

    def step_tangent(self, k: int, y: Any, dy: Any) -> tuple[Any, Any]:
        """``(y_{k+1}, dy_{k+1})``: step ``k`` and its tangent.

        Parameters
        ----------
        k : int
            The step.
        y : array
            The state ``y_k``.
        dy : array or None
            Its tangent.

        Returns
        -------
        y1, dy1 : array
            The state and its tangent at step ``k + 1``.
        """
        out = self.integ.step_tangent(self.field, y, dy, self.times[k], self.h(k), self.controls[k],
                                      work=self.work)
        self.ledger.rhs_evals += self.integ.stages
        self.ledger.jvp_evals += self.integ.stages
        self.ledger.steps += 1
        return out

    def tape_floats(self, y: Any) -> int:
        """Floats one step's tape holds for states shaped like ``y``.

        The integrator's stage states plus, when ``residuals``, ``stages *
        aux_floats(n)``.

        Parameters
        ----------
        y : array, shape (n, D)
            A state.

        Returns
        -------
        int
            The number of floats.
        """
        n = self.integ.tape_floats(*y.shape)
        if self.residuals:
            n += self.integ.stages * int(self.field.aux_floats(y.shape[0]))
        return n


@runtime_checkable
class Strategy(Protocol):
    """The contract of a gradient (memory) strategy.

    1. ``name`` -- its registry name.
    2. ``reusable_tape`` -- whether the tape of item 3 stays valid after item 4, so that
       one forward sweep serves several backward sweeps (and tangent sweeps) at the same
       parameters (e.g. the products of a Gauss--Newton operator).
    3. ``forward(sweep, y0)`` -> ``(yN, tape)``.
    4. ``backward(sweep, tape, lamN)`` -> ``lam0``; parameter gradients accumulate in the
       sweep's controls.
    5. ``exact`` -- whether the gradient is the exact gradient of the discrete objective
       (True for the discrete adjoint in any memory strategy; False for the continuous
       adjoint, an approximation that converges with the time grid).
    """

    name: str
    reusable_tape: bool
    exact: bool

    def forward(self, sweep: Sweep, y0: Any) -> tuple[Any, Any]: ...

    def backward(self, sweep: Sweep, tape: Any, lamN: Any) -> Any: ...


class GradientStrategy:
    """Base class of the strategies (:class:`Strategy`)."""

    name = "base"
    #: a strategy keeps a tape valid after its backward sweep only when it says so
    reusable_tape = False
    #: the discrete adjoint: the exact gradient of the discrete objective
    exact = True

    def forward(self, sweep: Sweep, y0: Any) -> tuple[Any, Any]:  # pragma: no cover - contract
        raise NotImplementedError

    def backward(self, sweep: Sweep, tape: Any, lamN: Any) -> Any:  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class StoreAll(GradientStrategy):
    """Keep every stage state of every step: ``nt * s * n * D`` floats, no recomputation.

    The tape is reusable: the backward sweep reads it and leaves it as it is.
    """

    name = "store_all"
    reusable_tape = True

    def forward(self, sweep: Sweep, y0: Any) -> tuple[Any, list]:
        y, tapes = y0, []
        for k in range(sweep.nt):
            y, tape = sweep.step(k, y, keep=True)
            sweep.ledger.hold(sweep.tape_floats(y0))
            tapes.append(tape)
        return y, tapes

    def backward(self, sweep: Sweep, tapes: list, lam: Any) -> Any:
        for k in range(sweep.nt - 1, -1, -1):
            lam = sweep.step_adjoint(k, tapes[k], lam)
            sweep.ledger.release(sweep.tape_floats(lam))
        return lam


class StoreStates(GradientStrategy):
    """Keep the states ``y_k`` only; recompute one step's stages in the backward
    pass: ``(nt + 1) n D + s n D`` floats, ``nt`` recomputed steps.

    The tape (the states) is reusable: the backward sweep leaves it as it is.
    """

    name = "store_states"
    reusable_tape = True

    def forward(self, sweep: Sweep, y0: Any) -> tuple[Any, list]:
        ys = [y0]
        sweep.ledger.hold(y0.size)
        y = y0
        for k in range(sweep.nt):
            y, _ = sweep.step(k, y, keep=False)
            ys.append(y)
            sweep.ledger.hold(y.size)
        return y, ys

    def backward(self, sweep: Sweep, ys: list, lam: Any) -> Any:
        stage_floats = sweep.tape_floats(lam)
        for k in range(sweep.nt - 1, -1, -1):
            _, tape = sweep.step(k, ys[k], keep=True, recompute=True)
            sweep.ledger.hold(stage_floats)
            lam = sweep.step_adjoint(k, tape, lam)
            sweep.ledger.release(stage_floats + ys[k + 1].size)
        sweep.ledger.release(ys[0].size)
        return lam


#: strategies by name: ``name -> factory(*args)``
STRATEGIES: dict[str, Callable[..., Strategy]] = {"store_all": StoreAll,
                                                   "store_states": StoreStates}


def register_strategy(name: str, factory: Callable[..., Strategy]) -> None:
    """Make ``get_strategy(name)`` (or ``(name, arg)``) build ``factory(*args)``.

    Parameters
    ----------
    name : str
        The registry name.
    factory : callable
        Builds the strategy from the arguments that follow the name.
    """
    STRATEGIES[name] = factory


def get_strategy(spec: Any) -> Strategy:
    """A strategy from a name, a ``(name, arg, ...)`` tuple or a strategy object.

    Parameters
    ----------
    spec : str, tuple or Strategy
        A name of :data:`STRATEGIES` (``"store_all"``, ``"store_states"``,
        ``"checkpoint"``, ``"reversible"``, ``"continuous"``), the name with the
        factory's arguments (e.g. ``("checkpoint", 4)``), or an object following the
        :class:`Strategy` contract (returned as it is).

    Returns
    -------
    Strategy
        The strategy.
    """
    if isinstance(spec, (tuple, list)) and spec:
        name, args = spec[0], tuple(spec[1:])
    else:
        name, args = spec, ()
    if isinstance(name, str):
        if name in STRATEGIES:
            return STRATEGIES[name](*args)
    elif isinstance(spec, Strategy):
        return spec
    raise ValueError(f"strategy must be one of {sorted(STRATEGIES)} (or a (name, arg) tuple, "
                     f"or an object following ocp_learn.gradients.Strategy), got {spec!r}")
