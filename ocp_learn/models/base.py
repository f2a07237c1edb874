"""The model contract: a vector field with hand-derived derivatives.

A *model* (or any *field* the integrators sweep over) is an object that
provides, for a batch of states ``y`` of shape ``(n, D)`` (samples in rows):

1. ``state_dim`` -- ``D``, the number of columns of the (augmented) state.
2. ``layout`` -- a :class:`~ocp_learn.params.ParamLayout` of the parameters
   ``theta`` used at one time instant; ``n_params == layout.size``.
3. ``init_params(rng)`` -- a float64 vector of ``n_params`` entries.
4. ``initial_state(x)`` -- the state ``y(0)`` built from data ``x`` (identity
   for plain models; augmented fields append zero columns for running costs).
5. ``rhs(y, t, theta)`` -- ``F(y, t; theta)``, shape ``(n, D)``.
6. ``jvp(y, t, theta, dy, dtheta)`` -- the tangent
   ``dF/dy dy + dF/dtheta dtheta``; ``dy`` or ``dtheta`` may be ``None`` (zero).
7. ``vjp(y, t, theta, ybar)`` -- the adjoint ``((dF/dy)^T ybar, (dF/dtheta)^T ybar)``,
   the second summed over samples, shape ``(n_params,)``.

Derivatives are derived by hand; the test suite checks each with a Taylor
test, a jvp/vjp dot-product test and CasADi's AD of the same computation.
"""
from __future__ import annotations

from ..errors import check_rng

__all__ = ["Model"]


class Model:
    """Base class for models; subclasses implement items 5--7 of the contract."""

    layout = None
    state_dim = None

    @property
    def n_params(self):
        return self.layout.size

    def unpack(self, theta):
        """Named views of a local parameter vector (see :class:`ParamLayout`)."""
        return self.layout.unpack(theta)

    def init_params(self, rng=None):
        raise NotImplementedError

    def initial_state(self, x):
        if x.shape[1] != self.state_dim:
            raise ValueError(f"x must have {self.state_dim} columns for this model, got shape {x.shape}")
        return x

    def rhs(self, y, t, theta):  # pragma: no cover - contract
        raise NotImplementedError

    def jvp(self, y, t, theta, dy, dtheta):  # pragma: no cover - contract
        raise NotImplementedError

    def vjp(self, y, t, theta, ybar):  # pragma: no cover - contract
        raise NotImplementedError

    def _rng(self, rng):
        return check_rng(rng, "rng")
