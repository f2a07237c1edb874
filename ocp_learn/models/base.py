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

A model computes in the array namespace of the states it is handed (NumPy arrays on the
host, CuPy arrays on a GPU); its :attr:`Model.array_namespace` tells the OCP where to keep
the states, stages, tapes and adjoints of its sweeps.  :func:`array_module` resolves a
namespace argument and :func:`~ocp_learn.arrays.resident` keeps a model's constant arrays (fixed matrices,
labels) in the namespace of its states.
"""
from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from ..errors import check_rng
from ..params import ParamLayout

__all__ = ["Model", "array_module"]


def array_module(spec: Any) -> ModuleType:
    """The array namespace named by ``spec``.

    Parameters
    ----------
    spec : None, str or module
        ``None`` or ``"numpy"``: NumPy (the host); ``"cupy"``: CuPy (imported here, and
        only here; a ``RuntimeError`` when CuPy or a CUDA device is missing); a module
        following the array API standard (e.g. ``array_api_strict``): itself.

    Returns
    -------
    module
    """
    if spec is None or (isinstance(spec, str) and spec == "numpy"):
        return np
    if isinstance(spec, str) and spec == "cupy":
        from ..kernels import check_backend
        check_backend("cupy")
        import cupy
        return cupy
    if isinstance(spec, ModuleType) and hasattr(spec, "asarray"):
        return spec
    raise TypeError(f"xp must be None, 'numpy', 'cupy' or an array namespace module, got {spec!r}")


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
    def array_namespace(self) -> ModuleType:
        """The array namespace of the model's computation: NumPy (the host) by default.

        :class:`~ocp_learn.OCP` keeps the samples, states, stages, tapes and adjoints of
        its sweeps in this namespace (CuPy: on the GPU); only ``theta``, the gradient and
        scalars cross to the host.  Models built for another namespace (a ``cupy``
        backend, or an ``xp`` argument) return that module.
        """
        return getattr(self, "_xp", np)

    @property
    def n_params(self) -> int:
        """``layout.size``."""
        return self.layout.size

    def unpack(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Named views of a local parameter vector (see :class:`ParamLayout`).

        Parameters
        ----------
        theta : ndarray, shape (n_params,)
            The parameters.

        Returns
        -------
        dict
            Block name -> view of ``theta``.
        """
        return self.layout.unpack(theta)

    def init_params(self, rng: Any = None) -> np.ndarray:
        """A float64 vector of :attr:`n_params` entries (item 3).

        Parameters
        ----------
        rng : int, Generator or None
            Seed or stream of the draw.

        Returns
        -------
        ndarray, shape (n_params,)
            The parameters.
        """
        raise NotImplementedError

    def initial_state(self, x: np.ndarray) -> np.ndarray:
        """``y(0)`` from data ``x`` of shape ``(n, state_dim)`` (item 4): ``x`` itself.

        Parameters
        ----------
        x : ndarray, shape (n, state_dim)
            The data.

        Returns
        -------
        ndarray, shape (n, state_dim)
            The initial state.

        Raises
        ------
        ValueError
            If ``x`` does not have ``state_dim`` columns.
        """
        if x.shape[1] != self.state_dim:
            raise ValueError(f"x must have {self.state_dim} columns for this model, got shape {x.shape}")
        return x

    def rhs(self, y: np.ndarray, t: float, theta: np.ndarray) -> np.ndarray:  # pragma: no cover
        """``F(y, t; theta)``, shape ``(n, D)`` (item 5).

        Parameters
        ----------
        y : ndarray, shape (n, D)
            The states.
        t : float
            The time.
        theta : ndarray
            The parameters at time ``t``.

        Returns
        -------
        ndarray, shape (n, D)
            The field.
        """
        raise NotImplementedError

    def jvp(self, y: np.ndarray, t: float, theta: np.ndarray, dy: np.ndarray | None,
            dtheta: np.ndarray | None) -> np.ndarray:  # pragma: no cover
        """``dF/dy dy + dF/dtheta dtheta`` (item 6).

        Parameters
        ----------
        y : ndarray, shape (n, D)
            The states.
        t : float
            The time.
        theta : ndarray
            The parameters at time ``t``.
        dy : ndarray or None
            Direction of the states (None: zero).
        dtheta : ndarray or None
            Direction of the parameters (None: zero).

        Returns
        -------
        ndarray, shape (n, D)
            The tangent of the field.
        """
        raise NotImplementedError

    def vjp(self, y: np.ndarray, t: float, theta: np.ndarray,
            ybar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
        """``((dF/dy)^T ybar, (dF/dtheta)^T ybar)`` (item 7).

        Parameters
        ----------
        y : ndarray, shape (n, D)
            The states.
        t : float
            The time.
        theta : ndarray
            The parameters at time ``t``.
        ybar : ndarray, shape (n, D)
            The cotangent.

        Returns
        -------
        ybar_y : ndarray, shape (n, D)
            Pullback to the states.
        theta_bar : ndarray
            Pullback to the parameters, summed over samples.
        """
        raise NotImplementedError

    def _rng(self, rng):
        return check_rng(rng, "rng")
