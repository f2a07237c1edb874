"""Terminal costs: functions of the final state ``y(T)`` (and head parameters).

The contract of a terminal cost is :class:`ocp_learn.protocols.TerminalCost` (checked by
:class:`~ocp_learn.OCP` when it is built); :class:`TerminalCost` here is a convenient base
class that provides its defaults.

The costs here compute in the array namespace of the final states ``y`` they are handed
(NumPy on the host, CuPy on a GPU): their per-sample data (labels) and constants are copied
to that namespace once and kept there, and ``ybar`` and ``pbar`` are arrays of it.
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np

from ..arrays import astype, concat, namespace
from ..errors import as_array, check_positive_float, check_positive_int, check_rng
from ..arrays import resident
from ..params import ParamLayout
from ..protocols import TerminalResult
from .losses import get_loss

__all__ = ["TerminalCost", "TerminalResult", "LinearHeadLoss", "MeanOfColumns"]


class TerminalCost:
    """Base class of terminal costs ``G(y(T); p)`` (:class:`ocp_learn.protocols.TerminalCost`).

    A subclass implements ``value_and_grad``; the base class provides an empty parameter
    layout, zero initial parameters, ``reads_theta_T = False`` and :meth:`value`.

    Attributes
    ----------
    layout : ParamLayout
        Layout of the cost's own parameters ``p`` (empty by default).
    reads_theta_T : bool
        Whether ``G`` also depends on the dynamics parameters at the final time,
        ``theta(T)``; :class:`~ocp_learn.OCP` then passes ``theta_T`` and ``t_T`` to
        ``value_and_grad`` and adds ``TerminalResult.theta_T_bar`` to the gradient.
    """

    layout = ParamLayout([])
    reads_theta_T = False

    @property
    def n_params(self) -> int:
        """Size of ``p``."""
        return self.layout.size

    def init_params(self, rng: Any = None) -> np.ndarray:
        """Initial ``p`` (zeros of :attr:`n_params` entries by default).

        Parameters
        ----------
        rng : int, Generator or None
            The draws of a cost that initializes at random (unused here).

        Returns
        -------
        ndarray, shape (n_params,)
            The initial ``p``.
        """
        return np.zeros(self.n_params)

    def value_and_grad(self, y: np.ndarray, p: np.ndarray, idx: Any = None,
                       theta_T: np.ndarray | None = None,
                       t_T: float | None = None) -> TerminalResult:  # pragma: no cover
        """``G`` (the mean over the batch) and its gradients.

        Parameters
        ----------
        y : ndarray, shape (n, D)
            Final states ``y(T)`` of the batch.
        p : ndarray, shape (n_params,)
            The cost's own parameters.
        idx : ndarray of int, optional
            The batch rows, for per-sample data (labels); ``None``: all rows.
        theta_T, t_T : ndarray, float, optional
            ``theta(T)`` and ``T``, given when ``reads_theta_T`` is true.

        Returns
        -------
        TerminalResult
            The value, ``dG/dy``, ``dG/dp`` and the optional parts.
        """
        raise NotImplementedError

    def value(self, y: np.ndarray, p: np.ndarray, idx: Any = None) -> float:
        """``G`` alone (see :meth:`value_and_grad`).

        Parameters
        ----------
        y : ndarray, shape (n, D)
            Final states ``y(T)`` of the batch.
        p : ndarray, shape (n_params,)
            The cost's own parameters.
        idx : ndarray of int, optional
            The batch rows (``None``: all rows).

        Returns
        -------
        float
            The mean terminal cost of the batch.
        """
        return self.value_and_grad(y, p, idx).value


class LinearHeadLoss(TerminalCost):
    r"""``J = mean_i loss(W z_i(T) + mu, y_i)`` (MATH C1).

    Parameters
    ----------
    labels : array_like
        Targets, one per sample (class indices, 0/1, or regression values).
    dim : int
        Number of state columns the head reads (the features ``z``; columns
        beyond ``dim`` -- running costs -- are not read).
    loss : {"logistic", "softmax", "squares"} or loss object
    n_outputs : int, optional
        Rows of ``W``; inferred from the labels by default.
    fit_head : bool
        If False, ``W`` and ``mu`` are fixed (``W = [I 0]``, ``mu = 0``) and
        the loss reads the first ``n_outputs`` features directly.
    weight_decay : float
        Weight ``lambda >= 0`` of the L2 penalty ``(lambda / 2) |W|_F^2`` on the head's
        weights (the bias ``mu`` is not penalized), added to ``J``; 0 (default): none.
        Needs ``fit_head``.

    Notes
    -----
    With ``r = z W^T + mu`` and ``rbar = l'(r) / n``:
    ``Wbar = rbar^T z + lambda W``, ``mubar = sum_i rbar_i``, ``zbar = rbar W``.
    The penalty's Hessian is ``lambda`` on the entries of ``W`` (:meth:`penalty_hvp`).
    """

    def __init__(self, labels, dim, loss="softmax", n_outputs=None, fit_head=True,
                 weight_decay=0.0):
        self.loss = get_loss(loss)
        self.labels = self.loss.check_labels(labels)
        self.dim = check_positive_int("dim", dim)
        k = (self.loss.n_outputs(self.labels) if n_outputs is None
             else check_positive_int("n_outputs", n_outputs))
        if self.loss.name == "softmax" and int(np.max(self.labels)) >= k:
            raise ValueError(f"labels must be class indices below n_outputs = {k}, got label "
                             f"{int(np.max(self.labels))}")
        self.n_outputs = k
        self.fit_head = bool(fit_head)
        self.weight_decay = check_positive_float("weight_decay", weight_decay, allow_zero=True)
        if self.weight_decay > 0 and not self.fit_head:
            raise ValueError("weight_decay needs fit_head=True (a fixed head has no weights "
                             f"to penalize), got weight_decay={weight_decay!r}")
        if self.fit_head:
            self.layout = ParamLayout([("W", (k, self.dim)), ("mu", (k,))])
        else:
            if k > self.dim:
                raise ValueError(f"n_outputs ({k}) cannot exceed dim ({self.dim}) without a head")
            self.layout = ParamLayout([])
            self._W = np.eye(k, self.dim)
            self._mu = np.zeros(k)

    def init_params(self, rng=None):
        if not self.fit_head:
            return np.zeros(0)
        rng = check_rng(rng, "rng")
        return self.layout.pack({"W": rng.standard_normal((self.n_outputs, self.dim)) / np.sqrt(self.dim),
                                 "mu": np.zeros(self.n_outputs)})

    def head(self, p, like=None):
        """``(W, mu)``: views of ``p``, or the fixed head when ``fit_head`` is false.

        Parameters
        ----------
        p : ndarray, shape (n_params,)
            The head's parameters ``(W, mu)``.
        like : array, optional
            An array of the namespace the fixed head is wanted in (NumPy when ``None``).

        Returns
        -------
        W : array, shape (n_outputs, dim)
            The head's weights.
        mu : array, shape (n_outputs,)
            The head's bias.
        """
        if not self.fit_head:
            if like is None:
                return self._W, self._mu
            return resident(self, "_W", like), resident(self, "_mu", like)
        P = self.layout.unpack(p)
        return P["W"], P["mu"]

    def _labels(self, idx, like=None):
        """The labels of the rows ``idx`` (all for ``None``) in the namespace of ``like``:
        copied there once, then taken by rows there."""
        if like is None or namespace(like) is np:
            return self.labels if idx is None else self.labels[idx]
        xp = namespace(like)
        labels = resident(self, "labels", like)
        return labels if idx is None else xp.take(labels, xp.asarray(idx), axis=0)

    def _param_grad(self, xp, rbar, z):
        """``pbar = (rbar^T z, sum_i rbar_i)`` (empty without a head) in the namespace of ``z``."""
        if xp is np:
            pbar = np.zeros(self.n_params)
            if self.fit_head:
                G = self.layout.unpack(pbar)
                G["W"][...] = rbar.T @ z
                G["mu"][...] = rbar.sum(axis=0)
            return pbar
        if not self.fit_head:
            return xp.zeros(0, dtype=z.dtype)
        return concat([xp.reshape(rbar.T @ z, (-1,)), xp.sum(rbar, axis=0)])

    def output(self, y, p):
        """``r = W z + mu`` for every row of ``y``.

        Parameters
        ----------
        y : ndarray, shape (n, D)
            Final states ``y(T)`` of the batch (the head reads the first ``dim`` columns).
        p : ndarray, shape (n_params,)
            The head's parameters ``(W, mu)``.

        Returns
        -------
        array, shape (n, n_outputs)
            The head's outputs.
        """
        W, mu = self.head(p, y)
        return y[:, :self.dim] @ W.T + mu

    def take(self, rows: np.ndarray) -> LinearHeadLoss:
        """The same head and loss on the sample rows ``rows`` (the labels follow the rows).

        Parameters
        ----------
        rows : ndarray of int
            The sample rows.

        Returns
        -------
        LinearHeadLoss
            A shallow copy whose ``labels`` are ``labels[rows]``.
        """
        part = copy.copy(self)
        part.labels = self.labels[rows]
        part.__dict__.pop("_resident", None)  # the part copies its own labels to a device
        return part

    def value_and_grad(self, y: np.ndarray, p: np.ndarray, idx: Any = None,
                       theta_T: np.ndarray | None = None,
                       t_T: float | None = None) -> TerminalResult:
        """Mean loss of the batch rows ``idx`` with ``dJ/dy`` and ``dJ/d(W, mu)`` (see the
        class notes).

        Parameters
        ----------
        y : ndarray, shape (n, D)
            Final states ``y(T)`` of the batch (the head reads the first ``dim`` columns).
        p : ndarray, shape (n_params,)
            The head's parameters ``(W, mu)``.
        idx : ndarray of int, optional
            The batch rows (``None``: all rows).
        theta_T, t_T : ndarray, float, optional
            Unused (the cost does not read ``theta(T)``).

        Returns
        -------
        TerminalResult
            The mean loss (with the weight decay), ``dJ/dy`` and ``dJ/d(W, mu)``.
        """
        xp = namespace(y)
        lab = self._labels(idx, y)
        if lab.shape[0] != y.shape[0]:
            raise ValueError(f"labels select {lab.shape[0]} rows but the state has {y.shape[0]}")
        n = y.shape[0]
        z = y[:, :self.dim]
        W, mu = self.head(p, y)
        r = z @ W.T + mu
        J = float(xp.mean(self.loss.value(r, lab)))
        rbar = self.loss.grad(r, lab) / n
        ybar = xp.zeros_like(y)
        ybar[:, :self.dim] = rbar @ W
        pbar = self._param_grad(xp, rbar, z)
        if self.weight_decay > 0:
            J += 0.5 * self.weight_decay * float(xp.sum(W * W))
            pbar = pbar + self.penalty_hvp(p, p)
        return TerminalResult(J, ybar, pbar)

    def penalty_hvp(self, p, dp):
        """``d^2/dp^2 [(lambda / 2) |W|_F^2] dp = (lambda dW, 0)``: the weight decay's
        Hessian times ``dp`` (zeros without decay), in the namespace of ``dp``.

        Parameters
        ----------
        p, dp : ndarray, shape (n_params,)
            The head's parameters (unused: the penalty is quadratic) and a direction.

        Returns
        -------
        ndarray, shape (n_params,)
            The penalty's Hessian times ``dp``.
        """
        xp = namespace(dp)
        if self.weight_decay == 0 or not self.fit_head:
            return xp.zeros_like(dp)
        nW = self.n_outputs * self.dim
        if xp is np:
            out = np.zeros_like(dp)
            out[:nW] = self.weight_decay * dp[:nW]
            return out
        return concat([self.weight_decay * dp[:nW], xp.zeros_like(dp[nW:])])

    def predict(self, y, p):
        return self.loss.predict(self.output(y, p))

    # --- pieces the Gauss--Newton method needs (MATH G1) -----------------
    def output_jvp(self, y, p, dy, dp):
        """Tangent of ``r = W z + mu``: ``dW z + W dz + dmu``.

        Parameters
        ----------
        y : ndarray, shape (n, D)
            Final states ``y(T)`` of the batch (the head reads the first ``dim`` columns).
        p : ndarray, shape (n_params,)
            The head's parameters ``(W, mu)``.
        dy : ndarray, shape (n, D)
            Tangent of the states.
        dp : ndarray, shape (n_params,) or None
            Tangent of the head (``None``: zero).

        Returns
        -------
        array, shape (n, n_outputs)
            The tangent of the outputs.
        """
        W, _ = self.head(p, y)
        dr = dy[:, :self.dim] @ W.T
        if self.fit_head and dp is not None:
            D = self.layout.unpack(dp)
            dr = dr + y[:, :self.dim] @ D["W"].T + D["mu"]
        return dr

    def output_vjp(self, y, p, rbar):
        """Adjoint of ``r = W z + mu``.

        Parameters
        ----------
        y : ndarray, shape (n, D)
            Final states ``y(T)`` of the batch (the head reads the first ``dim`` columns).
        p : ndarray, shape (n_params,)
            The head's parameters ``(W, mu)``.
        rbar : array, shape (n, n_outputs)
            Cotangent of the outputs.

        Returns
        -------
        ybar : array, shape (n, D)
            Cotangent of the states.
        pbar : array, shape (n_params,)
            Cotangent of the head, summed over the rows.
        """
        W, _ = self.head(p, y)
        xp = namespace(y)
        ybar = xp.zeros_like(y)
        ybar[:, :self.dim] = rbar @ W
        return ybar, self._param_grad(xp, rbar, y[:, :self.dim])

    def loss_hvp(self, y, p, dr, idx=None):
        """``(d^2 l / dr^2) dr / n`` at ``r = W z + mu`` (per-sample blocks).

        Parameters
        ----------
        y : ndarray, shape (n, D)
            Final states ``y(T)`` of the batch (the head reads the first ``dim`` columns).
        p : ndarray, shape (n_params,)
            The head's parameters ``(W, mu)``.
        dr : array, shape (n, n_outputs)
            A direction of the outputs.
        idx : ndarray of int, optional
            The batch rows (``None``: all rows).

        Returns
        -------
        array, shape (n, n_outputs)
            The loss's Hessian times ``dr``, over ``n``.
        """
        r = self.output(y, p)
        return self.loss.hvp(r, self._labels(idx, y), dr) / y.shape[0]


class MeanOfColumns(TerminalCost):
    """``J = mean_i sum_j w_j y_i[cols_j]``: reads accumulated running costs.

    On another namespace than NumPy the columns are read with ``take`` and ``dJ/dy`` is the
    row of the weights (at ``cols``) over ``n``, from copies made once in that namespace.

    Parameters
    ----------
    cols : sequence of int
        The state columns of the running costs.
    weights : array_like, optional
        Their weights ``w_j`` (ones by default).
    """

    def __init__(self, cols, weights=None):
        self.cols = np.asarray(cols, dtype=np.int64)
        self.weights = np.ones(self.cols.size) if weights is None else as_array("weights", weights, ndim=1)

    def value_and_grad(self, y: np.ndarray, p: np.ndarray, idx: Any = None,
                       theta_T: np.ndarray | None = None,
                       t_T: float | None = None) -> TerminalResult:
        """``J`` and ``dJ/dy`` (constant ``w_j / n`` in the columns ``cols``).

        Parameters
        ----------
        y : ndarray, shape (n, D)
            Final states ``y(T)`` of the batch.
        p : ndarray
            Unused (no parameters).
        idx : ndarray of int, optional
            The batch rows (``None``: all rows).
        theta_T, t_T : ndarray, float, optional
            Unused (the cost does not read ``theta(T)``).

        Returns
        -------
        TerminalResult
            ``J``, ``dJ/dy`` and an empty ``dJ/dp``.
        """
        n = y.shape[0]
        xp = namespace(y)
        if xp is np:
            J = float(np.mean(y[:, self.cols] @ self.weights))
            ybar = np.zeros_like(y)
            ybar[:, self.cols] = self.weights / n
            return TerminalResult(J, ybar, np.zeros(0))
        cols, w = resident(self, "cols", y), resident(self, "weights", y)
        J = float(xp.mean(xp.take(y, cols, axis=1) @ w))
        ybar = xp.zeros_like(y) + astype(self._row(y) / n, y.dtype)
        return TerminalResult(J, ybar, xp.zeros(0, dtype=y.dtype))

    def _row(self, y):
        """The weights scattered to ``cols`` of a zero row as wide as ``y`` (float64), in the
        namespace of ``y`` (made once per width)."""
        row = getattr(self, "_weight_row", None)
        if row is None or row.shape[0] != y.shape[1]:
            row = np.zeros(y.shape[1])
            row[self.cols] = self.weights
            self._weight_row = row
        return resident(self, "_weight_row", y)
