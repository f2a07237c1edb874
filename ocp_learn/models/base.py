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

The contract is stated once in :class:`ocp_learn.protocols.Field` and checked by
:class:`~ocp_learn.OCP` when it is built.  Derivatives are derived by hand; the test
suite checks each with a Taylor test, a jvp/vjp dot-product test and CasADi's AD of the
same computation.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import check_rng
from ..params import ParamLayout

__all__ = ["Model"]


class Model:
    """Base class of models: a field with hand-derived derivatives (:class:`ocp_learn.protocols.Field`).

    A subclass sets ``layout`` and ``state_dim`` and implements ``init_params``
    and items 5--7 of the contract (``rhs``, ``jvp``, ``vjp``); the base class provides
    :attr:`n_params`, :meth:`unpack` and the identity :meth:`initial_state`.

    Attributes
    ----------
    layout : ParamLayout
        Layout of ``theta`` at one time instant.
    state_dim : int
        ``D``, the columns of the state.
    """

    layout: ParamLayout | None = None
    state_dim: int | None = None

    @property
    def n_params(self) -> int:
        """``layout.size``."""
        return self.layout.size

    def unpack(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Named views of a local parameter vector (see :class:`ParamLayout`)."""
        return self.layout.unpack(theta)

    def init_params(self, rng: Any = None) -> np.ndarray:
        """A float64 vector of :attr:`n_params` entries (item 3).

        Parameters
        ----------
        rng : int, Generator or None
        """
        raise NotImplementedError

    def initial_state(self, x: np.ndarray) -> np.ndarray:
        """``y(0)`` from data ``x`` of shape ``(n, state_dim)`` (item 4): ``x`` itself.

        Raises
        ------
        ValueError
            If ``x`` does not have ``state_dim`` columns.
        """
        if x.shape[1] != self.state_dim:
            raise ValueError(f"x must have {self.state_dim} columns for this model, got shape {x.shape}")
        return x

    def rhs(self, y: np.ndarray, t: float, theta: np.ndarray) -> np.ndarray:  # pragma: no cover
        """``F(y, t; theta)``, shape ``(n, D)`` (item 5)."""
        raise NotImplementedError

    def jvp(self, y: np.ndarray, t: float, theta: np.ndarray, dy: np.ndarray | None,
            dtheta: np.ndarray | None) -> np.ndarray:  # pragma: no cover
        """``dF/dy dy + dF/dtheta dtheta`` (item 6); ``None`` stands for a zero direction."""
        raise NotImplementedError

    def vjp(self, y: np.ndarray, t: float, theta: np.ndarray,
            ybar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
        """``((dF/dy)^T ybar, (dF/dtheta)^T ybar)`` (item 7), the second summed over samples."""
        raise NotImplementedError

    def _rng(self, rng):
        return check_rng(rng, "rng")
