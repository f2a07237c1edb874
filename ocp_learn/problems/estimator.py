"""A scikit-learn estimator around :class:`~ocp_learn.problems.NeuralODEClassifier`.

:class:`NeuralODEClassifierEstimator` follows scikit-learn's conventions (parameters in
``__init__``, learned attributes ending in ``_``, ``fit``/``predict``/``predict_proba``/
``score``), so it works in a :class:`sklearn.pipeline.Pipeline`, in
:func:`sklearn.model_selection.cross_val_score` and in grid searches.  Labels may be any
values (strings, integers); they are mapped to class indices and back.

Example
-------
>>> from sklearn.model_selection import cross_val_score
>>> from ocp_learn.datasets import rings
>>> from ocp_learn.problems.estimator import NeuralODEClassifierEstimator
>>> x, y = rings(60, seed=0)
>>> est = NeuralODEClassifierEstimator(width=4, nt=4, maxiter=20)
>>> cross_val_score(est, x, y, cv=3).shape
(3,)
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from ..errors import as_array, check_positive_int, check_rng
from .classification import NeuralODEClassifier

__all__ = ["NeuralODEClassifierEstimator"]


class NeuralODEClassifierEstimator(ClassifierMixin, BaseEstimator):
    """Neural-ODE classifier (MATH C1) trained by L-BFGS-B with the exact discrete gradient.

    Parameters
    ----------
    augment : int
        Zero columns appended to the features (the ODE moves points in ``R^{d+augment}``).
    width : int
        Hidden width of the single-layer network (MATH A1).
    nt : int
        Time steps on ``[0, T]``.
    T : float
        Horizon.
    integrator : str
        Runge--Kutta tableau (``"rk4"``, ``"heun"``, ``"euler"``, ...).
    time_param : None, str or tuple
        ``theta(t)``: constant (``None``), ``("piecewise_linear", n)``, ...
    tikhonov, smoothness : float
        Regularization weights (see :class:`~ocp_learn.problems.NeuralODEClassifier`).
    maxiter : int
        L-BFGS-B iterations.
    random_state : int, Generator or None
        The initial parameters; ``None``: fresh entropy.

    Attributes
    ----------
    classes_ : ndarray
        The labels seen by :meth:`fit`, sorted.
    problem_ : NeuralODEClassifier
        The trained problem, holding no samples (save it with
        ``problem_.save(path, theta_)``).
    theta_ : ndarray
        The trained parameters.
    n_iter_ : int
        L-BFGS-B iterations made.
    n_features_in_ : int
        Number of features seen by :meth:`fit`.
    """

    def __init__(self, augment: int = 1, width: int = 16, nt: int = 8, T: float = 1.0,
                 integrator: str = "rk4", time_param: Any = None, tikhonov: float = 1e-4,
                 smoothness: float = 0.0, maxiter: int = 100, random_state: Any = 0) -> None:
        self.augment = augment
        self.width = width
        self.nt = nt
        self.T = T
        self.integrator = integrator
        self.time_param = time_param
        self.tikhonov = tikhonov
        self.smoothness = smoothness
        self.maxiter = maxiter
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> NeuralODEClassifierEstimator:
        """Train on the features ``X`` and the labels ``y``.

        Parameters
        ----------
        X : array_like, shape (n, d)
            Features.
        y : array_like, shape (n,)
            Labels, any values (at least two distinct ones): two classes train the logistic
            loss, more the softmax cross-entropy.

        Returns
        -------
        NeuralODEClassifierEstimator
            ``self``.
        """
        X = as_array("X", X, ndim=2, min_rows=1)
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise ValueError(f"y must have shape ({X.shape[0]},) (one label per row of X), "
                             f"got {y.shape}")
        self.classes_, index = np.unique(y, return_inverse=True)
        if self.classes_.size < 2:
            raise ValueError(f"y must hold at least two classes, got {self.classes_.tolist()}")
        loss = "logistic" if self.classes_.size == 2 else "softmax"
        prob = NeuralODEClassifier(X, index, augment=self.augment, loss=loss, width=self.width,
                                   nt=self.nt, T=self.T, integrator=self.integrator,
                                   time_param=self.time_param, tikhonov=self.tikhonov,
                                   smoothness=self.smoothness)
        theta0 = prob.init_params(check_rng(self.random_state, "random_state"))
        res = minimize(prob.objective_and_gradient, theta0, jac=True, method="L-BFGS-B",
                       options={"maxiter": check_positive_int("maxiter", self.maxiter)})
        self.theta_ = np.asarray(res.x, dtype=np.float64)
        self.n_iter_ = int(res.nit)
        self.n_features_in_ = X.shape[1]
        self.problem_ = prob.without_samples()
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape ``(m, n_classes)``, columns in the order of
        ``classes_``."""
        check_is_fitted(self, "theta_")
        return self.problem_.predict_proba(self.theta_, X)

    def decision_function(self, X: Any) -> np.ndarray:
        """The head's output ``W z(T) + mu``: ``(m,)`` for two classes (the logit of the
        second), ``(m, n_classes)`` otherwise."""
        check_is_fitted(self, "theta_")
        r = self.problem_.decision_function(self.theta_, X)
        return r[:, 0] if self.classes_.size == 2 else r

    def predict(self, X: Any) -> np.ndarray:
        """The most probable label of every row of ``X``."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
