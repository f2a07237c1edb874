"""Symbolic twins of ocp_learn's building blocks, in CasADi, keyed by type.

The reference layer rebuilds an :class:`~ocp_learn.OCP`'s *discrete*
objective in CasADi (MATH B1 with the costs of C1) and lets CasADi's
algorithmic differentiation produce the gradient that the hand-derived
discrete adjoint (MATH B2) must match.  CasADi code is kept out of the model
classes: each block has a *symbolic twin* registered here by its Python type.

Registries (look-up walks the type's MRO, so subclasses inherit a twin):

``SYMBOLIC_RHS[type(field)] = fn(field, y, t, theta) -> F``
    ``y`` a ``(D, 1)`` CasADi column (one sample), ``t`` a float, ``theta``
    the ``(p, 1)`` local parameters at that stage; returns ``(D, 1)``.
``SYMBOLIC_RUNNING[type(cost)] = fn(cost, z, t, theta) -> scalar``
    One running cost ``r(z, t; theta)`` of one sample.
``SYMBOLIC_TERMINAL[type(cost)] = TerminalTwin(data, value)``
    ``data(cost, idx) -> ndarray (n, k)`` per-sample numbers (labels, one-hot
    classes; ``k`` may be 0) and ``value(cost, y, p, data_row, **kw) -> scalar``
    the per-sample terminal cost (the OCP takes the mean).  For terminal costs
    with ``reads_theta_T`` the keywords ``theta_T`` and ``t_T`` are passed.
``SYMBOLIC_REGULARIZER[type(reg)] = fn(reg, rows) -> scalar``
    ``rows`` is the list of ``(p, 1)`` node parameters ``theta_j``.
``SYMBOLIC_STEP[type(integrator)] = fn(integrator, field, y, t, h, theta_at) -> y_next``
    One time step of one sample; ``theta_at(c)`` is ``theta`` at the stage
    time ``t + c h`` (MATH B1 for :class:`ExplicitRK`; leapfrog for A4).
``SYMBOLIC_PARTITIONED[type(field)] = (rhs_y, rhs_z)``
    The half-fields ``dy/dt = F(z, t; theta)``, ``dz/dt = G(y, t; theta)`` of a
    partitioned field (leapfrog).
``SYMBOLIC_POTENTIAL[type(model)] = fn(model, x, t, theta) -> Phi``
    A scalar potential ``Phi(x, t; theta)``; its ``grad_x``, ``d_t`` and
    Laplacian come from CasADi's AD (:func:`potential_derivatives`).

Extending
---------
A worker who adds a model, field, cost or regularizer adds a twin with the
decorators below (in ``ocp_learn/reference/``, e.g. a module per family,
imported from ``ocp_learn/reference/__init__.py``)::

    @register_rhs(MyField)
    def _my_field(field, y, t, theta):
        P = unpack_sym(field.layout, theta)
        return ...

The twin must compute the *same function* as the numpy code; derivatives are
never written by hand here -- that is the point of the witness.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import casadi as ca
import numpy as np

from ..costs.regularizers import Tikhonov, TimeSmoothness
from ..costs.running import AugmentedDynamics, KineticEnergy, QuadraticState
from ..costs.terminal import LinearHeadLoss, MeanOfColumns
from ..integrators.rk import ExplicitRK
from ..models.linear import LinearModel
from ..models.mlp import SingleLayerNet

__all__ = ["SYMBOLIC_STEP", "SYMBOLIC_PARTITIONED", "register_step", "register_partitioned",
           "SYMBOLIC_RHS", "SYMBOLIC_RUNNING", "SYMBOLIC_TERMINAL", "SYMBOLIC_REGULARIZER",
           "SYMBOLIC_POTENTIAL", "TerminalTwin", "register_rhs", "register_running",
           "register_terminal", "register_regularizer", "register_potential", "lookup",
           "unpack_sym", "symbolic_rhs", "symbolic_running", "symbolic_regularizer",
           "potential_derivatives", "log_cosh_sym"]

SYMBOLIC_RHS: dict = {}
SYMBOLIC_RUNNING: dict = {}
SYMBOLIC_TERMINAL: dict = {}
SYMBOLIC_REGULARIZER: dict = {}
SYMBOLIC_POTENTIAL: dict = {}
SYMBOLIC_STEP: dict = {}
SYMBOLIC_PARTITIONED: dict = {}


class TerminalTwin(NamedTuple):
    """Symbolic twin of a terminal cost: per-sample data and per-sample value."""

    data: Callable
    value: Callable


def _register(registry, cls):
    def deco(fn):
        registry[cls] = fn
        return fn
    return deco


def register_rhs(cls):
    """Decorator: ``fn(field, y, t, theta) -> (D, 1)`` is the twin of ``cls.rhs``.

    Parameters
    ----------
    cls : type
        The class whose ``rhs`` the decorated function mirrors in CasADi.

    Returns
    -------
    callable
        The decorator; it registers the function and returns it unchanged.
    """
    return _register(SYMBOLIC_RHS, cls)


def register_running(cls):
    """Decorator: ``fn(cost, z, t, theta) -> scalar`` is the twin of ``cls.value``.

    Parameters
    ----------
    cls : type
        The class whose ``value`` the decorated function mirrors in CasADi.

    Returns
    -------
    callable
        The decorator; it registers the function and returns it unchanged.
    """
    return _register(SYMBOLIC_RUNNING, cls)


def register_terminal(cls, data):
    """Decorator: ``fn(cost, y, p, data_row, **kw)`` is the twin of a terminal cost.

    Parameters
    ----------
    cls : type
        The class whose terminal cost the decorated function mirrors in CasADi.
    data : callable
        ``data(cost, idx) -> (n, k)``: the per-sample data rows the twin reads.

    Returns
    -------
    callable
        The decorator; it registers the function and returns it unchanged.
    """
    def deco(fn):
        SYMBOLIC_TERMINAL[cls] = TerminalTwin(data, fn)
        return fn
    return deco


def register_regularizer(cls):
    """Decorator: ``fn(reg, rows) -> scalar`` is the twin of ``cls.value_grad(...)[0]``.

    Parameters
    ----------
    cls : type
        The class whose value the decorated function mirrors in CasADi.

    Returns
    -------
    callable
        The decorator; it registers the function and returns it unchanged.
    """
    return _register(SYMBOLIC_REGULARIZER, cls)


def register_potential(cls):
    """Decorator: ``fn(model, x, t, theta) -> Phi`` (scalar) is the twin of a potential.

    Parameters
    ----------
    cls : type
        The class whose potential ``Phi`` the decorated function mirrors in CasADi.

    Returns
    -------
    callable
        The decorator; it registers the function and returns it unchanged.
    """
    return _register(SYMBOLIC_POTENTIAL, cls)


def register_step(cls):
    """Decorator: ``fn(integrator, field, y, t, h, theta_at) -> y_next`` is the twin of ``cls.step``."""
    return _register(SYMBOLIC_STEP, cls)


def register_partitioned(cls, rhs_y, rhs_z):
    """The half-fields ``rhs_y(field, z, t, theta)``, ``rhs_z(field, y, t, theta)`` of ``cls``."""
    SYMBOLIC_PARTITIONED[cls] = (rhs_y, rhs_z)


def lookup(registry, obj, what):
    """The twin of ``obj`` (walking its type's MRO), or a ``NotImplementedError``
    saying which registry needs an entry."""
    for cls in type(obj).__mro__:
        if cls in registry:
            return registry[cls]
    raise NotImplementedError(
        f"no CasADi twin for the {what} {type(obj).__name__}; register one in "
        f"ocp_learn/reference/ (see ocp_learn.reference.symbolic, 'Extending')")


def unpack_sym(layout, v):
    """Named blocks of a symbolic column ``v`` laid out by ``layout``.

    Row-major, as :meth:`.ParamLayout.unpack`; 1-D blocks are columns, 2-D blocks
    matrices, 3-D blocks lists of matrices.

    Parameters
    ----------
    layout : ParamLayout
        The blocks.
    v : casadi.SX or casadi.MX
        The symbolic column of ``layout.size`` entries.

    Returns
    -------
    dict
        Block name -> symbolic block.
    """
    out = {}
    for name, (a, b, shp) in layout.offsets.items():
        blk = v[a:b]
        if len(shp) <= 1:
            out[name] = blk
        elif len(shp) == 2:
            out[name] = ca.reshape(blk, shp[1], shp[0]).T
        elif len(shp) == 3:
            step = shp[1] * shp[2]
            out[name] = [ca.reshape(blk[i * step:(i + 1) * step], shp[2], shp[1]).T
                         for i in range(shp[0])]
        else:  # pragma: no cover - no such blocks yet
            raise NotImplementedError(f"unpack_sym: block {name!r} has {len(shp)} axes")
    return out


def symbolic_rhs(field, y, t, theta):
    """``F(y, t; theta)`` of one sample through the registry."""
    return lookup(SYMBOLIC_RHS, field, "field")(field, y, t, theta)


def symbolic_running(cost, z, t, theta):
    return lookup(SYMBOLIC_RUNNING, cost, "running cost")(cost, z, t, theta)


def symbolic_regularizer(reg, rows):
    return lookup(SYMBOLIC_REGULARIZER, reg, "regularizer")(reg, rows)


def log_cosh_sym(a):
    """``sigma(a) = log(exp(a) + exp(-a))`` (MATH D1), written from its definition."""
    return ca.log(ca.exp(a) + ca.exp(-a))


# ------------------------------------------------------------------------------ models
@register_rhs(SingleLayerNet)
def _single_layer(model, z, t, theta):
    """MATH A1: ``K2 tanh(K1 z + b1) + b2``."""
    P = unpack_sym(model.layout, theta)
    return ca.mtimes(P["K2"], ca.tanh(ca.mtimes(P["K1"], z) + P["b1"])) + P["b2"]


@register_rhs(LinearModel)
def _linear(model, z, t, theta):
    return ca.mtimes(unpack_sym(model.layout, theta)["A"], z)


@register_rhs(AugmentedDynamics)
def _augmented(field, y, t, theta):
    """``[f(z); r_1(z); ...]`` (MATH B1, running costs as state columns)."""
    z = y[:field.dim]
    parts = [symbolic_rhs(field.model, z, t, theta)]
    parts += [symbolic_running(rc, z, t, theta) for rc in field.running]
    return ca.vertcat(*parts)


# ------------------------------------------------------------------------------ running costs
@register_running(KineticEnergy)
def _kinetic(cost, z, t, theta):
    f = symbolic_rhs(cost.model, z, t, theta)
    return 0.5 * cost.alpha * ca.sumsqr(f)


@register_running(QuadraticState)
def _quadratic_state(cost, z, t, theta):
    return 0.5 * ca.mtimes(z.T, ca.mtimes(ca.DM(cost.Q), z))


# ------------------------------------------------------------------------------ terminal costs
def _head_data(cost, idx):
    lab = cost.labels if idx is None else cost.labels[idx]
    name = cost.loss.name
    if name == "softmax":
        onehot = np.zeros((lab.shape[0], cost.n_outputs))
        onehot[np.arange(lab.shape[0]), lab] = 1.0
        return onehot
    if name == "logistic":
        return np.asarray(lab, dtype=np.float64)[:, None]
    if name == "squares":
        return np.asarray(lab, dtype=np.float64).reshape(lab.shape[0], -1)
    raise NotImplementedError(f"no CasADi twin for the loss {name!r}")


@register_terminal(LinearHeadLoss, _head_data)
def _linear_head(cost, y, p, lab, **kw):
    """MATH C1: ``loss(W z(T) + mu, y)`` for one sample."""
    if cost.fit_head:
        P = unpack_sym(cost.layout, p)
        W, mu = P["W"], P["mu"]
    else:
        W, mu = ca.DM(cost._W), ca.DM(cost._mu)
    r = ca.mtimes(W, y[:cost.dim]) + mu
    name = cost.loss.name
    if name == "softmax":
        return ca.logsumexp(r) - ca.dot(lab, r)
    if name == "logistic":
        return ca.logsumexp(ca.vertcat(0, r[0])) - lab[0] * r[0]
    return 0.5 * ca.sumsqr(r - lab)


@register_terminal(MeanOfColumns, lambda cost, idx: None)
def _mean_of_columns(cost, y, p, lab, **kw):
    return sum(float(w) * y[int(c)] for c, w in zip(cost.cols, cost.weights))


# ------------------------------------------------------------------------------ regularizers
@register_regularizer(Tikhonov)
def _tikhonov(reg, rows):
    return 0.5 * reg.alpha / len(rows) * sum(ca.sumsqr(r) for r in rows)


@register_regularizer(TimeSmoothness)
def _time_smoothness(reg, rows):
    n = len(rows)
    if n < 2:
        return 0.0
    return 0.5 * reg.alpha * (n - 1) * sum(ca.sumsqr(rows[j + 1] - rows[j]) for j in range(n - 1))


# ------------------------------------------------------------------------------ potentials
def potential_derivatives(model, x, t, theta):
    """``(Phi, grad_x Phi, d_t Phi, lap_x Phi)`` of one sample by CasADi's AD.

    ``x`` a ``(d, 1)`` symbol, ``t`` a ``(1, 1)`` symbol (or number),
    ``theta`` the parameters; the potential comes from ``SYMBOLIC_POTENTIAL``
    and is differentiated by CasADi (``gradient`` and ``hessian``): the
    independent witness of the hand-derived MATH D2 and D3.

    Parameters
    ----------
    model : PotentialResNet
        The potential (a class registered in ``SYMBOLIC_POTENTIAL``).
    x : casadi.SX or casadi.MX, shape (d, 1)
        The point.
    t : casadi.SX, casadi.MX or float
        The time.
    theta : casadi.SX or casadi.MX
        The parameters.

    Returns
    -------
    tuple
        ``(Phi, grad_x Phi, d_t Phi, lap_x Phi)`` as CasADi expressions (``d_t Phi``
        is None when ``t`` is a number).
    """
    phi = lookup(SYMBOLIC_POTENTIAL, model, "potential")(model, x, t, theta)
    grad = ca.gradient(phi, x)
    dt = ca.gradient(phi, t) if isinstance(t, (ca.SX, ca.MX)) else None
    H, _ = ca.hessian(phi, x)
    return phi, grad, dt, ca.trace(H)


def _register_potential_resnet():
    try:
        from ..models.potential import PotentialResNet
    except ImportError:  # pragma: no cover - the potential model is optional
        return

    @register_potential(PotentialResNet)
    def _potential_resnet(model, x, t, theta):
        """MATH D1: ``w^T N(s) + 1/2 |A s|^2 + b^T s + c``, ``s = (x, t)``."""
        P = unpack_sym(model.layout, theta)
        s = ca.vertcat(x, t)
        u = log_cosh_sym(ca.mtimes(P["K0"], s) + P["b0"])
        K, bK = P["K"], P["bK"]
        for i in range(model.n_layers):
            u = u + model.h * log_cosh_sym(ca.mtimes(K[i], u) + bK[i, :].T)
        As = ca.mtimes(P["A"], s)
        return ca.dot(P["w"], u) + 0.5 * ca.sumsqr(As) + ca.dot(P["b"], s) + P["c"][0]


_register_potential_resnet()


# ------------------------------------------------------------------------------ LQ pieces
def _register_controlled_linear():
    from ..models.controlled_linear import ControlEnergy, ControlledLinearModel

    @register_rhs(ControlledLinearModel)
    def _controlled_linear(model, z, t, theta):
        return ca.mtimes(ca.DM(model.A), z) + ca.mtimes(ca.DM(model.B), theta)

    @register_running(ControlEnergy)
    def _control_energy(cost, z, t, theta):
        return 0.5 * ca.mtimes(theta.T, ca.mtimes(ca.DM(cost.R), theta))


_register_controlled_linear()


# ------------------------------------------------------------------------------ integrators
@register_step(ExplicitRK)
def _rk_step(integ, field, y, t, h, theta_at):
    """MATH B1 with the tableau ``(a, b, c)`` of ``integ``."""
    tab = integ.tableau
    a, b, c = tab.a, tab.b, tab.c
    K = []
    acc = y
    for i in range(tab.stages):
        Yi = y
        for j in range(i):
            if a[i, j] != 0.0:
                Yi = Yi + (h * a[i, j]) * K[j]
        K.append(symbolic_rhs(field, Yi, t + c[i] * h, theta_at(c[i])))
        if b[i] != 0.0:
            acc = acc + (h * b[i]) * K[i]
    return acc


def _register_leapfrog():
    try:
        from ..integrators.leapfrog import Leapfrog
    except ImportError:  # pragma: no cover - optional
        return

    @register_step(Leapfrog)
    def _leapfrog_step(integ, field, Y, t, h, theta_at):
        """Kick--drift--kick (MATH A4) with theta at fractions 0, 1/2, 1."""
        F, G = lookup(SYMBOLIC_PARTITIONED, field, "partitioned field")
        d = field.partition
        y, z = Y[:d], Y[d:]
        z_h = z + (0.5 * h) * G(field, y, t, theta_at(0.0))
        y1 = y + h * F(field, z_h, t + 0.5 * h, theta_at(0.5))
        z1 = z_h + (0.5 * h) * G(field, y1, t + h, theta_at(1.0))
        return ca.vertcat(y1, z1)


_register_leapfrog()


def _register_hamiltonian():
    try:
        from ..models.hamiltonian import HamiltonianNet
    except ImportError:  # pragma: no cover - optional
        return

    def rhs_y(model, z, t, theta):
        P = unpack_sym(model.layout, theta)
        return ca.tanh(ca.mtimes(P["K"], z) + P["b"])

    def rhs_z(model, y, t, theta):
        P = unpack_sym(model.layout, theta)
        return -ca.tanh(ca.mtimes(P["K"].T, y) + P["b"])

    register_partitioned(HamiltonianNet, rhs_y, rhs_z)

    @register_rhs(HamiltonianNet)
    def _hamiltonian(model, Y, t, theta):
        """MATH A4 as one field ``[F(z); G(y)]`` (for RK integrators)."""
        d = model.dim
        return ca.vertcat(rhs_y(model, Y[d:], t, theta), rhs_z(model, Y[:d], t, theta))


_register_hamiltonian()
