"""The state maps of an :class:`~ocp_learn.ocp.OCP`: ``theta -> y(T)`` with its tangent and
adjoint (what Gauss--Newton products need, MATH G1), and the push-forward of new points
through the trained dynamics (inference).

:class:`StateMaps` is a base class of :class:`~ocp_learn.ocp.OCP`; its methods use the
OCP's sweep (``_sweep``), parameter split (``_split``), batches and samples (``_batch``,
``_samples``), fields (``_field``, ``_field_on``, ``_initial_state``), ``check_theta``,
``layout``, ``strategy``, ``ledger``, ``times``, ``nt``, ``t0``, ``T``, ``model`` and
``dtype``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .arrays import to_host
from .errors import as_array, check_positive_int
from .ledger import Ledger

__all__ = ["StateMaps"]


class StateMaps:
    """Tangent, adjoint and push-forward maps of the final state (see the module docstring)."""

    # --- tangent and adjoint maps of theta -> y(T) (for Gauss--Newton) -----
    def final_state(self, theta: np.ndarray, batch: Any = None) -> np.ndarray:
        """``y(T)`` of the training rows ``batch``, all columns of the field (new points:
        :meth:`push_forward`), as a NumPy array."""
        theta = self.check_theta(theta)
        idx, x = self._batch(batch)
        return self._states(theta, self._device_rows(idx, x), self.times, self._field(idx), False)

    def final_state_jvp(self, theta: np.ndarray, dtheta: np.ndarray,
                        batch: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """``(y(T), dy(T))`` for a parameter direction ``dtheta`` (tangent sweep), arrays of
        the problem's namespace ``xp``."""
        theta = self.check_theta(theta)
        dtheta = self.check_theta(dtheta, "dtheta")
        idx, x = self._batch(batch)
        field = self._field(idx)
        nodes, dnodes = (self._on_device(self._split(v)[0]) for v in (theta, dtheta))
        ledger = Ledger()
        sweep = self._sweep(nodes, ledger, dnodes=dnodes, field=field)
        y = self._initial_state(self._device_rows(idx, x), field)
        dy = self.xp.zeros_like(y)
        for k in range(self.nt):
            y, dy = sweep.step_tangent(k, y, dy)
        self.ledger += ledger
        return y, dy

    def final_state_vjp(self, theta: np.ndarray, ybar: np.ndarray,
                        batch: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """``(dJ/dtheta_dynamics as a full-length vector, dJ/dy(0))`` for
        ``ybar = dJ/dy(T)`` (adjoint sweep; terminal part of the result is zero).  The
        gradient is a NumPy vector; ``dJ/dy(0)`` an array of the problem's namespace."""
        theta = self.check_theta(theta)
        idx, x = self._batch(batch)
        field = self._field(idx)
        nodes = self._on_device(self._split(theta)[0])
        ledger = Ledger()
        gnodes = self.xp.zeros_like(nodes)
        sweep = self._sweep(nodes, ledger, gnodes, field=field)
        y0 = self._initial_state(self._device_rows(idx, x), field)
        if self.xp is np:
            ybar = as_array("ybar", ybar, shape=y0.shape, dtype=self.dtype)
        else:
            ybar = self._on_device(ybar)
            if tuple(ybar.shape) != tuple(y0.shape):
                raise ValueError(f"ybar must have shape {tuple(y0.shape)}, got "
                                 f"{tuple(ybar.shape)}")
        _, tape = self.strategy.forward(sweep, y0)
        lam0 = self.strategy.backward(sweep, tape, ybar)
        g = np.zeros(self.n_params, dtype=self.dtype)
        self.layout.unpack(g)["dynamics"][...] = to_host(gnodes)
        self.ledger += ledger
        return g, lam0

    # --- inference: new points through the trained dynamics -------------------
    @property
    def point_dim(self) -> int:
        """Columns of the points :meth:`push_forward` returns (the model's state, without
        the columns of running costs)."""
        return self.model.state_dim

    def time_grid(self, nt: int | None = None) -> np.ndarray:
        """The uniform grid ``t0 + T k / nt``, ``k = 0..nt`` (the problem's own for ``None``)."""
        if nt is None:
            return self.times
        nt = check_positive_int("nt", nt)
        return self.t0 + self.T * np.arange(nt + 1) / nt

    def push_forward(self, theta: np.ndarray, x: Any = None, *, nt: int | None = None,
                     trajectory: bool = False) -> np.ndarray:
        """Push points forward through the trained dynamics: ``z(T)``, or the whole path.

        Parameters
        ----------
        theta : ndarray, shape (n_params,)
            The (trained) parameters.
        x : array_like, shape (m, d), optional
            New points, in the coordinates the problem takes its samples in (e.g. unpadded
            features of a classifier, data coordinates of a flow); the problem's own
            samples by default.
        nt : int, optional
            Time steps of a uniform grid on the same horizon (the problem's grid by
            default).
        trajectory : bool
            Return the states at every grid time instead of the final ones.

        Returns
        -------
        ndarray
            ``z(T)`` of shape ``(m, point_dim)``, or the path ``(nt + 1, m, point_dim)``
            with ``trajectory=True`` (the state columns of the model; running-cost columns
            are left out).
        """
        theta = self.check_theta(theta)
        if x is None:
            _, xs = self._batch(None)
            field = self._field(None)
        else:
            xs = self._samples(x)
            field = self._field_on(xs)
        y = self._states(theta, xs, self.time_grid(nt), field, bool(trajectory))
        return y[..., :self.point_dim]

    def trajectory(self, theta: np.ndarray, x: Any = None, times: Any = None) -> np.ndarray:
        """States at every grid time, shape ``(len(times), n, D)`` (all columns of the
        field, running costs included).

        ``x`` defaults to the problem's data; ``times`` (increasing or
        decreasing: backward integration) defaults to the problem's grid.
        :meth:`push_forward` is the same map for new points, in the problem's coordinates.
        """
        theta = self.check_theta(theta)
        if x is None:
            _, x = self._batch(None)
            field = self._field(None)
        else:
            x = as_array("x", x, ndim=2, min_rows=1, dtype=self.dtype)
            field = self._field_on(x)
        return self._trajectory(theta, x, times, field)

    def _trajectory(self, theta, x, times, field):
        times = self.times if times is None else as_array("times", times, ndim=1)
        if times.shape[0] < 2:
            raise ValueError(f"times must hold at least 2 time points (start and end), got "
                             f"{times.shape[0]}")
        return self._states(theta, x, times, field, True)

    def _states(self, theta, x, times, field, path):
        """The states of ``x`` on ``times``: the final ones, or every one (``path``), as
        NumPy arrays (computed in the problem's namespace)."""
        nodes = self._on_device(self._split(theta)[0])
        sweep = self._sweep(nodes, Ledger(), times=times, field=field)
        y = self._initial_state(x, field)
        ys = [y]
        for k in range(len(times) - 1):
            y = sweep.step(k, y, keep=False)[0]
            if path:
                ys.append(to_host(y) if self.xp is not np else y)
        if self.xp is not np:
            return np.stack([to_host(ys[0])] + ys[1:]) if path else to_host(y)
        return np.stack(ys) if path else y
