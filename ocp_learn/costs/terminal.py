"""Terminal costs: functions of the final state ``y(T)`` (and head parameters).

Contract of a terminal cost:

1. ``layout`` -- :class:`ParamLayout` of its own parameters (may be empty).
2. ``init_params(rng)``.
3. ``value_and_grad(y, p, idx)`` -> ``(J, ybar, pbar)`` with ``J`` the *mean*
   over the batch rows ``idx`` (``None``: all), ``ybar = dJ/dy`` and
   ``pbar = dJ/dp``.
4. ``value(y, p, idx)`` -> ``J``.
"""
from __future__ import annotations

import numpy as np

from ..errors import check_positive_int, check_rng, as_array
from ..params import ParamLayout
from .losses import get_loss

__all__ = ["TerminalCost", "LinearHeadLoss", "MeanOfColumns"]


class TerminalCost:
    layout = ParamLayout([])

    @property
    def n_params(self):
        return self.layout.size

    def init_params(self, rng=None):
        return np.zeros(self.n_params)

    def value(self, y, p, idx=None):
        return self.value_and_grad(y, p, idx)[0]


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

    Notes
    -----
    With ``r = z W^T + mu`` and ``rbar = l'(r) / n``:
    ``Wbar = rbar^T z``, ``mubar = sum_i rbar_i``, ``zbar = rbar W``.
    """

    def __init__(self, labels, dim, loss="softmax", n_outputs=None, fit_head=True):
        self.loss = get_loss(loss)
        self.labels = self.loss.check_labels(labels)
        self.dim = check_positive_int("dim", dim)
        k = self.loss.n_outputs(self.labels) if n_outputs is None else check_positive_int("n_outputs", n_outputs)
        self.n_outputs = k
        self.fit_head = bool(fit_head)
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

    def head(self, p):
        if not self.fit_head:
            return self._W, self._mu
        P = self.layout.unpack(p)
        return P["W"], P["mu"]

    def _labels(self, idx):
        return self.labels if idx is None else self.labels[idx]

    def output(self, y, p):
        """``r = W z + mu`` for every row of ``y``."""
        W, mu = self.head(p)
        return y[:, :self.dim] @ W.T + mu

    def value_and_grad(self, y, p, idx=None):
        lab = self._labels(idx)
        if lab.shape[0] != y.shape[0]:
            raise ValueError(f"labels select {lab.shape[0]} rows but the state has {y.shape[0]}")
        n = y.shape[0]
        z = y[:, :self.dim]
        W, mu = self.head(p)
        r = z @ W.T + mu
        J = float(np.mean(self.loss.value(r, lab)))
        rbar = self.loss.grad(r, lab) / n
        ybar = np.zeros_like(y)
        ybar[:, :self.dim] = rbar @ W
        pbar = np.zeros(self.n_params)
        if self.fit_head:
            G = self.layout.unpack(pbar)
            G["W"][...] = rbar.T @ z
            G["mu"][...] = rbar.sum(axis=0)
        return J, ybar, pbar

    def predict(self, y, p):
        return self.loss.predict(self.output(y, p))

    # --- pieces the Gauss--Newton method needs (MATH G1) -----------------
    def output_jvp(self, y, p, dy, dp):
        """Tangent of ``r = W z + mu``: ``dW z + W dz + dmu``."""
        W, _ = self.head(p)
        dr = dy[:, :self.dim] @ W.T
        if self.fit_head and dp is not None:
            D = self.layout.unpack(dp)
            dr = dr + y[:, :self.dim] @ D["W"].T + D["mu"]
        return dr

    def output_vjp(self, y, p, rbar):
        """Adjoint of ``r = W z + mu``: ``(ybar, pbar)``."""
        W, _ = self.head(p)
        ybar = np.zeros_like(y)
        ybar[:, :self.dim] = rbar @ W
        pbar = np.zeros(self.n_params)
        if self.fit_head:
            G = self.layout.unpack(pbar)
            G["W"][...] = rbar.T @ y[:, :self.dim]
            G["mu"][...] = rbar.sum(axis=0)
        return ybar, pbar

    def loss_hvp(self, y, p, dr, idx=None):
        """``(d^2 l / dr^2) dr / n`` at ``r = W z + mu`` (per-sample blocks)."""
        r = self.output(y, p)
        return self.loss.hvp(r, self._labels(idx), dr) / y.shape[0]


class MeanOfColumns(TerminalCost):
    """``J = mean_i sum_j w_j y_i[cols_j]``: reads accumulated running costs."""

    def __init__(self, cols, weights=None):
        self.cols = np.asarray(cols, dtype=np.int64)
        self.weights = np.ones(self.cols.size) if weights is None else as_array("weights", weights, ndim=1)

    def value_and_grad(self, y, p, idx=None):
        n = y.shape[0]
        J = float(np.mean(y[:, self.cols] @ self.weights))
        ybar = np.zeros_like(y)
        ybar[:, self.cols] = self.weights / n
        return J, ybar, np.zeros(0)
