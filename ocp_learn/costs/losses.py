"""Per-sample losses ``loss(r, y)`` on the classifier output ``r = W z(T) + mu`` (MATH C1).

Each loss gives the value per sample, the gradient ``dl/dr`` and the product
with its Hessian ``d^2 l/dr^2`` (positive semidefinite: these are the convex
outer losses of the generalized Gauss--Newton method, MATH G1).

``value``, ``grad``, ``hvp`` and ``predict`` compute in the array namespace of ``r``
(NumPy with SciPy's special functions on the host; the same formulas in array-API calls on
other namespaces, e.g. CuPy); the labels ``y`` are in that namespace too.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit, log_softmax, softmax

from ..arrays import astype, namespace
from ..errors import check_choice
from ..protocols import Loss, check_protocol

__all__ = ["Logistic", "SoftmaxCrossEntropy", "SquaredError", "get_loss", "LOSSES"]


def _numeric_labels(labels, what):
    """``labels`` as an array of real numbers; strings and objects raise ``TypeError``."""
    labels = np.asarray(labels)
    if labels.dtype.kind not in "biuf":
        raise TypeError(f"labels must be numbers ({what}), got dtype {labels.dtype}; map other "
                        "labels to class indices first (numpy.unique(labels, "
                        "return_inverse=True)) or use NeuralODEClassifierEstimator, which maps "
                        "them")
    return labels


def _expit(xp, r):
    """``1 / (1 + e^-r)`` without overflow: ``e^-|r|`` is at most one."""
    e = xp.exp(-xp.abs(r))
    return xp.where(r >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _log_softmax(xp, r):
    """``r - logsumexp(r)`` along rows, shifted by the row maximum (as SciPy computes it)."""
    s = r - xp.max(r, axis=1, keepdims=True)
    return s - xp.log(xp.sum(xp.exp(s), axis=1, keepdims=True))


def _softmax(xp, r):
    e = xp.exp(r - xp.max(r, axis=1, keepdims=True))
    return e / xp.sum(e, axis=1, keepdims=True)


def _one_hot(xp, y, k, dtype):
    """Rows ``e_{y_i}`` of ``k`` columns, in ``dtype``."""
    return astype(xp.arange(k)[None, :] == y[:, None], dtype)


class Logistic:
    """Binary cross-entropy on one logit: ``l = log(1 + e^r) - y r``, ``y in {0, 1}``."""

    name = "logistic"

    def n_outputs(self, labels):
        return 1

    def check_labels(self, labels):
        labels = _numeric_labels(labels, "0/1 for the logistic loss")
        if labels.ndim != 1 or not np.all((labels == 0) | (labels == 1)):
            bad = labels[~((labels == 0) | (labels == 1))] if labels.ndim == 1 else ()
            which = f" (e.g. {bad[0].item()!r})" if len(bad) else ""
            raise ValueError(f"labels must be a 1-D array of 0/1 for the logistic loss{which}")
        return labels.astype(np.float64)

    def value(self, r, y):
        xp = namespace(r)
        r = r[:, 0]
        if xp is np:
            return np.logaddexp(0.0, r) - y * r
        return xp.logaddexp(xp.zeros_like(r), r) - y * r

    def grad(self, r, y):
        xp = namespace(r)
        p = expit(r[:, 0]) if xp is np else _expit(xp, r[:, 0])
        return (p - y)[:, None]

    def hvp(self, r, y, dr):
        xp = namespace(r)
        p = expit(r[:, 0]) if xp is np else _expit(xp, r[:, 0])
        return (p * (1 - p))[:, None] * dr

    def predict(self, r):
        xp = namespace(r)
        if xp is np:
            return (r[:, 0] > 0).astype(int)
        return astype(r[:, 0] > 0, xp.int64)


class SoftmaxCrossEntropy:
    """``l = logsumexp(r) - r_y`` with integer labels ``y in {0..k-1}``."""

    name = "softmax"

    def n_outputs(self, labels):
        """``K = max(labels) + 1`` classes.

        Refused when fewer than half of the classes ``0..K-1`` occur among the
        labels (labels that are not class indices, such as ``[0, 1, 10**7]``, would
        otherwise build a head of ``K`` rows).

        Parameters
        ----------
        labels : array_like of int
            The class index of every sample.

        Returns
        -------
        int
            The number of classes ``K``.

        Raises
        ------
        ValueError
            When fewer than half of the classes occur among the labels.
        """
        labels = np.asarray(labels)
        k = int(np.max(labels)) + 1
        present = np.unique(labels).size
        if 2 * present < k:
            raise ValueError(f"labels must be class indices 0..K-1: label {k - 1} implies {k} "
                             f"classes but only {present} distinct label(s) occur; map the "
                             "labels to 0..K-1 (numpy.unique(labels, return_inverse=True)), "
                             "pass n_outputs, or use NeuralODEClassifierEstimator")
        return k

    def check_labels(self, labels):
        labels = _numeric_labels(labels, "class indices 0..K-1 for the softmax loss")
        if labels.ndim != 1 or labels.size == 0:
            raise ValueError(f"labels must be a non-empty 1-D array of class indices, got shape "
                             f"{labels.shape}")
        bad = labels[~((labels == np.round(labels)) & (labels >= 0) & np.isfinite(labels))]
        if bad.size:
            raise ValueError(f"labels must be non-negative integer class indices, got "
                             f"{bad[0].item()!r}")
        return labels.astype(np.int64)

    def value(self, r, y):
        xp = namespace(r)
        if xp is np:
            return -log_softmax(r, axis=1)[np.arange(r.shape[0]), y]
        return -xp.take_along_axis(_log_softmax(xp, r), y[:, None], axis=1)[:, 0]

    def grad(self, r, y):
        xp = namespace(r)
        if xp is np:
            g = softmax(r, axis=1)
            g[np.arange(r.shape[0]), y] -= 1.0
            return g
        g = _softmax(xp, r)
        return g - _one_hot(xp, y, r.shape[1], g.dtype)

    def hvp(self, r, y, dr):
        xp = namespace(r)
        p = softmax(r, axis=1) if xp is np else _softmax(xp, r)
        return p * dr - p * xp.sum(p * dr, axis=1, keepdims=True)

    def predict(self, r):
        return namespace(r).argmax(r, axis=1)


class SquaredError:
    """``l = 1/2 |r - y|^2`` (regression); ``y`` of shape ``(n, k)`` or ``(n,)``."""

    name = "squares"

    def n_outputs(self, labels):
        return 1 if np.ndim(labels) == 1 else np.shape(labels)[1]

    def check_labels(self, labels):
        labels = _numeric_labels(labels, "regression targets").astype(np.float64)
        if labels.ndim == 1:
            labels = labels[:, None]
        if labels.ndim != 2 or not np.all(np.isfinite(labels)):
            raise ValueError("labels must be a finite (n,) or (n, k) array for the squared error")
        return labels

    def value(self, r, y):
        return 0.5 * namespace(r).sum((r - y) ** 2, axis=1)

    def grad(self, r, y):
        return r - y

    def hvp(self, r, y, dr):
        return dr

    def predict(self, r):
        return r


LOSSES = {c.name: c for c in (Logistic, SoftmaxCrossEntropy, SquaredError)}


def get_loss(spec: str | Loss) -> Loss:
    """The loss named ``spec``, or ``spec`` itself if it is a loss object.

    Parameters
    ----------
    spec : str or Loss
        One of ``LOSSES`` (``"logistic"``, ``"softmax"``, ``"squared"``), or an object
        that follows the :class:`~ocp_learn.protocols.Loss` contract.

    Returns
    -------
    Loss
        The loss.

    Raises
    ------
    TypeError
        When ``spec`` is an object that lacks part of the contract (the error names it).
    """
    if isinstance(spec, str):
        check_choice("loss", spec, set(LOSSES))
        return LOSSES[spec]()
    return check_protocol(spec, Loss, f"loss (one of {sorted(LOSSES)} or a loss object)")
