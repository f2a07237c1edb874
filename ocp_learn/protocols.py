"""The written contracts of ocp_learn: one :class:`typing.Protocol` per role.

Every role an object can play in an :class:`~ocp_learn.OCP` (a field the integrators sweep,
a terminal cost, a running cost, a regularizer, a problem the optimizers drive) is stated
here once, with numbered items; :class:`~ocp_learn.OCP` checks them when it is built
(:func:`check_protocol`) and names the missing method.  Optional abilities are separate
protocols, tested once with ``isinstance`` (the protocols are ``runtime_checkable``), never
guessed from attribute names inside a hot loop.

This module sits at the bottom of the import graph: it imports nothing from the package
except for type checking.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .params import ParamLayout

__all__ = ["Field", "FieldWithResiduals", "PartitionedField", "TerminalCost", "TerminalResult",
           "PerSampleTerminal", "RunningCost", "Regularizer", "Loss", "Interaction", "Density",
           "ScoredDensity", "Problem", "GaussNewtonProblem", "ResamplableProblem",
           "ShardableProblem", "check_protocol", "check_initial_state", "check_field_shapes"]


@runtime_checkable
class Field(Protocol):
    """A vector field with hand-derived derivatives (what the integrators sweep over).

    1. ``state_dim`` -- ``D``, the columns of the (augmented) state.
    2. ``layout`` -- :class:`~ocp_learn.params.ParamLayout` of ``theta`` at one time instant.
    3. ``init_params(rng)`` -- a float64 vector of ``layout.size`` entries.
    4. ``initial_state(x)`` -- ``y(0)`` from data ``x`` of shape ``(n, d)``.
    5. ``rhs(y, t, theta)`` -- ``F(y, t; theta)``, shape ``(n, D)``.
    6. ``jvp(y, t, theta, dy, dtheta)`` -- ``dF/dy dy + dF/dtheta dtheta`` (``None`` = zero).
    7. ``vjp(y, t, theta, ybar)`` -- ``((dF/dy)^T ybar, (dF/dtheta)^T ybar)``, the second
       summed over samples, shape ``(layout.size,)``.
    """

    state_dim: int
    layout: ParamLayout

    def init_params(self, rng: Any = None) -> np.ndarray: ...

    def initial_state(self, x: np.ndarray) -> np.ndarray: ...

    def rhs(self, y: np.ndarray, t: float, theta: np.ndarray) -> np.ndarray: ...

    def jvp(self, y: np.ndarray, t: float, theta: np.ndarray, dy: np.ndarray | None,
            dtheta: np.ndarray | None) -> np.ndarray: ...

    def vjp(self, y: np.ndarray, t: float, theta: np.ndarray,
            ybar: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


@runtime_checkable
class FieldWithResiduals(Field, Protocol):
    """A field that hands its adjoint the intermediate values of its forward pass.

    8. ``rhs_tape(y, t, theta, keep=True)`` -> ``(F, aux)``; ``aux`` may be ``None``.
    9. ``aux_floats(n)`` -- floats ``aux`` holds for ``n`` samples (for the ledger).
    10. ``vjp(y, t, theta, ybar, aux=None)`` accepts the ``aux`` of item 8.
    """

    def rhs_tape(self, y: np.ndarray, t: float, theta: np.ndarray,
                 keep: bool = True) -> tuple[np.ndarray, Any]: ...

    def aux_floats(self, n: int) -> int: ...


@runtime_checkable
class PartitionedField(Protocol):
    """A separable field ``dy/dt = F(z)``, ``dz/dt = G(y)`` for the leapfrog integrator.

    1. ``partition`` -- the column split of the state.
    2. ``rhs_y``, ``rhs_z`` -- the two halves of the field.
    3. ``jvp_y``, ``jvp_z``, ``vjp_y``, ``vjp_z`` -- their tangents and adjoints.
    """

    partition: Any

    def rhs_y(self, *args: Any) -> Any: ...

    def rhs_z(self, *args: Any) -> Any: ...

    def jvp_y(self, *args: Any) -> Any: ...

    def jvp_z(self, *args: Any) -> Any: ...

    def vjp_y(self, *args: Any) -> Any: ...

    def vjp_z(self, *args: Any) -> Any: ...


@dataclass
class TerminalResult:
    """What a terminal cost returns.

    The parameters are kept as attributes of the same names.

    Parameters
    ----------
    value : float
        ``G``, the mean over the batch.
    ybar : ndarray
        ``dG/dy(T)``, shape of ``y``.
    pbar : ndarray
        ``dG/dp``, the gradient of the terminal's own parameters.
    theta_T_bar : ndarray or None
        ``dG/dtheta(T)`` when the cost reads the dynamics parameters at the final time
        (e.g. a terminal HJB penalty); ``None`` otherwise.
    terms : dict
        Named parts of ``value`` (floats), for reporting.
    """

    value: float
    ybar: np.ndarray
    pbar: np.ndarray
    theta_T_bar: np.ndarray | None = None
    terms: dict = field(default_factory=dict)


@runtime_checkable
class TerminalCost(Protocol):
    """``G(y(T); p)`` with its own parameters ``p``.

    1. ``layout`` -- :class:`~ocp_learn.params.ParamLayout` of ``p`` (may be empty).
    2. ``init_params(rng)``.
    3. ``reads_theta_T`` -- whether ``G`` also depends on ``theta(T)`` (declared, bool).
    4. ``value_and_grad(y, p, idx=None, theta_T=None, t_T=None)`` -> :class:`TerminalResult`;
       ``idx`` are the batch rows (``None``: all); ``theta_T``, ``t_T`` are given when item 3
       is true.
    """

    layout: ParamLayout
    reads_theta_T: bool

    def init_params(self, rng: Any = None) -> np.ndarray: ...

    def value_and_grad(self, y: np.ndarray, p: np.ndarray, idx: Any = None,
                       theta_T: np.ndarray | None = None,
                       t_T: float | None = None) -> TerminalResult: ...


@runtime_checkable
class PerSampleTerminal(TerminalCost, Protocol):
    """A terminal cost that holds data of its own per sample (e.g. the labels of a classifier).

    5. ``take(rows)`` -- the same cost on the sample rows ``rows`` (an index array): its
       per-sample data follow the rows, its settings are shared.

    A terminal cost whose ``value_and_grad`` reads its argument ``idx`` holds per-sample
    data and must provide item 5: :meth:`~ocp_learn.OCP.take` hands the rows on to it, and
    :meth:`~ocp_learn.OCP.evaluate` refuses samples ``x`` of its own for such a cost (their
    labels are not known).
    """

    def take(self, rows: np.ndarray) -> TerminalCost: ...


@runtime_checkable
class RunningCost(Protocol):
    """An integrand ``c(z, t; theta)`` integrated as an extra state column (MATH B1).

    1. ``value(z, t, theta)`` -> ``(n,)``.
    2. ``jvp(z, t, theta, dz, dtheta)`` -> ``(n,)``.
    3. ``vjp(z, t, theta, cbar)`` -> ``(zbar, thetabar)``.
    """

    def value(self, z: np.ndarray, t: float, theta: np.ndarray) -> np.ndarray: ...

    def jvp(self, z: np.ndarray, t: float, theta: np.ndarray, dz: Any, dtheta: Any) -> np.ndarray: ...

    def vjp(self, z: np.ndarray, t: float, theta: np.ndarray,
            cbar: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


@runtime_checkable
class Regularizer(Protocol):
    """A function ``R(nodes)`` of the dynamics parameters at the time nodes.

    1. ``value_grad(nodes)`` -> ``(R, dR/dnodes)``.
    2. ``hvp(nodes, v)`` -> the Hessian applied to ``v`` (Gauss--Newton).
    """

    def value_grad(self, nodes: np.ndarray) -> tuple[float, np.ndarray]: ...

    def hvp(self, nodes: np.ndarray, v: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class Loss(Protocol):
    """A per-sample loss ``l(r, y)`` of the output ``r = W z(T) + mu`` (MATH C1, G1).

    1. ``name`` -- a short name (reports, errors).
    2. ``check_labels(labels)`` -> the validated targets.
    3. ``n_outputs(labels)`` -- the rows of ``W`` the targets need.
    4. ``value(r, y)`` -> ``(n,)``; ``grad(r, y)`` -> ``dl/dr``, shape of ``r``.
    5. ``hvp(r, y, dr)`` -> ``(d^2 l / dr^2) dr`` per sample (positive semidefinite).
    6. ``predict(r)`` -> the predicted labels (or values).
    """

    name: str

    def check_labels(self, labels: Any) -> np.ndarray: ...

    def n_outputs(self, labels: np.ndarray) -> int: ...

    def value(self, r: np.ndarray, y: np.ndarray) -> np.ndarray: ...

    def grad(self, r: np.ndarray, y: np.ndarray) -> np.ndarray: ...

    def hvp(self, r: np.ndarray, y: np.ndarray, dr: np.ndarray) -> np.ndarray: ...

    def predict(self, r: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class Interaction(Protocol):
    """An interaction cost ``F(rho)`` of a mean field game in Lagrangian form (MATH E1, E2, F).

    1. ``uses_logrho`` -- whether the term reads ``log rho`` along the trajectories (declared,
       bool); a field with such a term needs ``log rho_0`` of the initial samples.
    2. ``value(z, logrho)`` -> the integrand per agent, ``(n,)``.
    3. ``value_partials(z, logrho)`` -> ``(d value/dz[:, :k], d value/dlogrho)``, shapes
       ``(n, k)`` (``k <= d`` leading columns) and ``(n,)``.
    4. ``drho(z, logrho)`` -> ``dF/drho`` per agent (the HJB term, E4), ``(n,)``.
    5. ``drho_partials(z, logrho)`` -> its partials, as item 3.
    """

    uses_logrho: bool

    def value(self, z: np.ndarray, logrho: np.ndarray | None) -> np.ndarray: ...

    def value_partials(self, z: np.ndarray,
                       logrho: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]: ...

    def drho(self, z: np.ndarray, logrho: np.ndarray | None) -> np.ndarray: ...

    def drho_partials(self, z: np.ndarray,
                      logrho: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]: ...


@runtime_checkable
class Density(Protocol):
    """A probability density on ``R^d`` that can be sampled (initial densities, MATH E5, F).

    1. ``dim`` -- ``d``.
    2. ``sample(n, seed=None)`` -> ``n`` samples in rows, ``(n, d)``.
    3. ``logpdf(x)`` -> ``log rho(x)``, ``(n,)``.
    """

    dim: int

    def sample(self, n: int, seed: Any = None) -> np.ndarray: ...

    def logpdf(self, x: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class ScoredDensity(Density, Protocol):
    """A density with its score (target densities of the KL terminal cost, MATH F).

    4. ``logpdf_and_score(x)`` -> ``(log rho(x), grad_x log rho(x))``, shapes ``(n,)`` and
       ``(n, d)``, from one pass where the density allows.
    """

    def logpdf_and_score(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


@runtime_checkable
class Problem(Protocol):
    """What the optimizers (:mod:`ocp_learn.optim`) and :mod:`ocp_learn.distributed` may call.

    1. ``n_params``, ``n_samples``.
    2. ``check_theta(theta, name="theta")`` -> a validated float64 vector (errors name it).
    3. ``init_params(seed)``.
    4. ``evaluate(theta, batch=None, gradient=True, *, x=None)`` ->
       :class:`~ocp_learn.ocp.Evaluation` (value, gradient, ledger, terms): everything an
       optimizer needs from one call; with ``x`` the objective is that of the samples ``x``
       in place of the problem's own (``batch`` must then be ``None``), nothing is swapped.
    5. ``objective(theta, batch=None)``, ``objective_and_gradient(theta, batch=None)``.
    """

    @property
    def n_params(self) -> int: ...

    @property
    def n_samples(self) -> int: ...

    def check_theta(self, theta: Any, name: str = "theta") -> np.ndarray: ...

    def init_params(self, seed: Any = None) -> np.ndarray: ...

    def evaluate(self, theta: np.ndarray, batch: Any = None, gradient: bool = True, *,
                 x: np.ndarray | None = None) -> Any: ...

    def objective(self, theta: np.ndarray, batch: Any = None) -> float: ...

    def objective_and_gradient(self, theta: np.ndarray,
                               batch: Any = None) -> tuple[float, np.ndarray]: ...


@runtime_checkable
class GaussNewtonProblem(Problem, Protocol):
    """A problem with a Gauss--Newton operator (MATH G1).

    6. ``gauss_newton_operator(theta, batch=None)`` -> an object with ``value``, ``gradient``,
       ``matvec(v)``, ``ledger`` (the work of the products) and ``evaluation`` (the
       :class:`~ocp_learn.ocp.Evaluation` at ``theta``).
    """

    def gauss_newton_operator(self, theta: np.ndarray, batch: Any = None) -> Any: ...


@runtime_checkable
class ResamplableProblem(Problem, Protocol):
    """A problem whose training samples can be replaced (MFG agents, flow batches).

    6. ``set_samples(x)`` -- train on the samples ``x`` (shape ``(n, d)``, any ``n``) from
       now on; the settings (network, time grid, costs) stay.  Drawing the samples is the
       caller's business (e.g. :func:`~ocp_learn.optim.lbfgs_resampled`).
    """

    def set_samples(self, x: np.ndarray) -> None: ...


@runtime_checkable
class ShardableProblem(Problem, Protocol):
    """A problem that can hand out a subset of its samples (data parallelism).

    6. ``take(rows)`` -> a problem of the same kind on the sample rows ``rows`` (an index
       array), sharing the settings; the mean objective of the shards, weighted by their
       sizes, is the objective of the whole.
    """

    def take(self, rows: np.ndarray) -> Problem: ...


def check_protocol(obj: Any, protocol: type, name: str) -> Any:
    """Return ``obj`` if it provides every member of ``protocol``.

    Parameters
    ----------
    obj : object
        The object to check.
    protocol : type
        A protocol of this module.
    name : str
        The argument's name, for the error.

    Returns
    -------
    object
        ``obj`` itself.

    Raises
    ------
    TypeError
        Naming the argument ``name``, the role and the missing members.
    """
    members = [m for m in _members(protocol) if not hasattr(obj, m)]
    if members:
        raise TypeError(f"{name} must follow the {protocol.__name__} contract "
                        f"(ocp_learn.protocols.{protocol.__name__}); {type(obj).__name__} "
                        f"lacks {', '.join(repr(m) for m in members)}")
    return obj


def check_initial_state(field: Field, x: np.ndarray, name: str) -> None:
    """Check that ``field.initial_state(x)`` has ``state_dim`` columns (``x``: sample rows)."""
    y = field.initial_state(x)  # the field validates the number of columns of x
    D = field.state_dim
    if np.shape(y) != (x.shape[0], D):
        raise ValueError(f"dynamics.initial_state({name}) must have shape ({x.shape[0]}, "
                         f"state_dim = {D}), got {np.shape(y)}")


def check_field_shapes(field: Field, y: np.ndarray, t: float, theta: np.ndarray, *,
                       running: Any = (), point_dim: int | None = None) -> None:
    """Evaluate ``rhs``, ``vjp`` and each running cost's ``value`` once at the state rows ``y``
    and check that their outputs have the shapes the contracts state.

    Parameters
    ----------
    field : Field
    y : ndarray, shape (n, state_dim)
        A few state rows (one is enough).
    t : float
        A time.
    theta : ndarray, shape (layout.size,)
        Parameters at one time instant (e.g. zeros).
    running : sequence of RunningCost
        Checked on ``z = y[:, :point_dim]``.
    point_dim : int, optional
        Columns of the model's own state (default: all of ``y``).

    Raises
    ------
    ValueError, TypeError
        Naming the method, the expected shape and the shape returned.
    """
    p = theta.shape[0]
    F = field.rhs(y, t, theta)
    if np.shape(F) != y.shape:
        raise ValueError(f"dynamics.rhs(y, t, theta) must return shape (n, state_dim) = "
                         f"{y.shape} for y of shape {y.shape}, got {np.shape(F)}")
    out = field.vjp(y, t, theta, y * 0.0 + 1.0)  # ones in the namespace of y
    if not isinstance(out, tuple) or len(out) != 2:
        raise TypeError("dynamics.vjp(y, t, theta, ybar) must return a pair (ybar_y, "
                        f"ybar_theta), got {type(out).__name__}")
    if np.shape(out[0]) != y.shape:
        raise ValueError(f"dynamics.vjp(y, t, theta, ybar)[0] (dF/dy^T ybar) must have the "
                         f"shape of y, (n, state_dim) = {y.shape}, got {np.shape(out[0])}")
    if np.shape(out[1]) != (p,):
        raise ValueError(f"dynamics.vjp(y, t, theta, ybar)[1] (dF/dtheta^T ybar, summed over "
                         f"samples) must have shape (layout.size,) = ({p},), got "
                         f"{np.shape(out[1])}")
    z = y if point_dim is None else y[:, :point_dim]
    for j, rc in enumerate(running):
        c = rc.value(z, t, theta)
        if np.shape(c) != (y.shape[0],):
            raise ValueError(f"running[{j}].value(z, t, theta) must return shape (n,) = "
                             f"({y.shape[0]},), got {np.shape(c)}")


def _members(protocol: type) -> list[str]:
    names: list[str] = []
    for klass in reversed(protocol.__mro__):
        if klass in (object, Protocol, Any) or not vars(klass).get("_is_protocol", False):
            continue
        for k in list(vars(klass).get("__annotations__", {})) + list(vars(klass)):
            if not k.startswith("_") and k not in names:
                names.append(k)
    return names
