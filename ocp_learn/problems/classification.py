"""Supervised learning with a neural ODE and an affine head (MATH C1, article Figure 1).

Features ``x`` (padded with ``q`` zeros: *augmentation*) are moved by the
neural ODE (A3) to ``z(T)`` and read by the affine head
``g(x; theta, W, mu) = W z(T) + mu``; the training problem is

    ``min  mean_i loss(W z_i(T) + mu, y_i) + R(theta)``   subject to (A3)   (C1)

with ``loss`` the logistic or softmax cross-entropy (classes) or ``1/2 |g - y|^2``
(regression) and ``R`` Tikhonov and smoothness-in-time regularizers.

:class:`NeuralODEClassifier` is an :class:`~ocp_learn.OCP` (same protocol:
``n_params``, ``init_params(seed)``, ``objective``, ``objective_and_gradient(theta,
batch)``, ``unpack``) with helpers to pad, propagate, predict and score, and the
matrix-free generalized Gauss--Newton product of MATH G1.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..arrays import to_host
from ..costs import KineticEnergy, LinearHeadLoss, Tikhonov, TimeSmoothness
from ..errors import as_array, check_nonneg_int, check_positive_float, check_positive_int
from ..ledger import Ledger
from ..models import SingleLayerNet
from ..ocp import OCP
from ..protocols import Field, check_protocol
from .persistence import Persistable, fingerprint_value, register_problem

__all__ = ["NeuralODEClassifier", "GaussNewtonOperator"]


class GaussNewtonOperator:
    """The generalized Gauss--Newton model of the objective at one point (MATH G1).

    Parameters
    ----------
    theta : ndarray
        The point.
    evaluation : Evaluation
        The evaluation at ``theta`` that gave ``value`` and ``gradient`` (its ledger and
        terms).
    matvec : callable
        ``matvec(v) -> G v``.
    ledger : Ledger
        Counts the work of the products (tangent and adjoint sweeps).

    Attributes
    ----------
    value : float
        ``J(theta)``.
    gradient : ndarray
        ``dJ/dtheta`` (exact discrete gradient).
    n_products : int
        Number of :meth:`matvec` calls.

    Notes
    -----
    ``matvec(v) = J_r^T (d^2 l / dr^2) J_r v + R''(theta) v`` where
    ``r = W z(T) + mu`` is the residual map of all samples; one tangent sweep
    gives ``J_r v``, one adjoint sweep gives ``J_r^T u`` (the forward states are
    taped once per operator when the memory strategy declares its tape reusable).
    """

    def __init__(self, theta, evaluation, matvec, ledger):
        self.theta, self.evaluation = theta, evaluation
        self.value, self.gradient = evaluation.value, evaluation.gradient
        self._matvec = matvec
        self.ledger = ledger
        self.n_products = 0

    def matvec(self, v):
        """``G v`` (GGN matrix times ``v``).

        Parameters
        ----------
        v : array_like, shape (n_params,)
            The direction.

        Returns
        -------
        ndarray, shape (n_params,)
            The product.
        """
        self.n_products += 1
        return self._matvec(np.asarray(v, dtype=np.float64))

    __call__ = matvec


@register_problem("neural_ode_classifier")
class NeuralODEClassifier(Persistable, OCP):
    r"""Neural-ODE classifier (or regressor) ``W z(T) + mu`` with augmentation (MATH C1).

    Parameters
    ----------
    x : array_like, shape (n, d)
        Training features.
    labels : array_like, shape (n,) or (n, k)
        Class indices (``"softmax"``), 0/1 (``"logistic"``), or real targets
        (``"squares"``).
    augment : int
        ``q >= 0`` zero columns appended to every input (Dupont et al. 2019):
        the ODE moves points in ``R^{d+q}``.
    loss : {"logistic", "softmax", "squares"}
        Binary cross-entropy on one logit, softmax cross-entropy, or
        ``1/2 |g - y|^2`` (regression).
    model : Model, optional
        Any dynamics model with ``state_dim == d + q``; by default
        ``SingleLayerNet(d + q, width, init_scale)`` (MATH A1).
    width : int
        Hidden width of the default model.
    n_outputs : int, optional
        Rows of ``W`` (inferred from the labels by default).
    T : float
        Horizon, as in :class:`~ocp_learn.OCP`.
    nt : int
        Number of time steps.
    integrator : str, ButcherTableau or Integrator
        The integrator (:func:`~ocp_learn.get_integrator`).
    time_param : TimeParameterization, optional
        ``theta(t)`` parameterization (constant, piecewise constant, piecewise linear).
    tikhonov : float
        Weight ``alpha`` of :class:`~ocp_learn.Tikhonov` (0: none).
    smoothness : float
        Weight of :class:`~ocp_learn.TimeSmoothness` on ``theta(t)`` (0: none;
        it acts only with more than one time node).
    regularizers : sequence
        Further regularizers of the dynamics parameters.
    running : sequence
        Running costs (integrated, MATH B1).  The Gauss--Newton product treats
        them as linear outer functions, i.e. ignores their curvature.
    kinetic : float
        Weight ``kappa`` of the flow's transport cost
        ``(kappa / 2) int_0^T |f(z(t), t; theta)|^2 dt``
        (:class:`~ocp_learn.costs.KineticEnergy` on the model, after ``running``; 0: none).
        It keeps the trajectories short while the dynamics do work, and shapes training
        only: predictions do not depend on it.
    strategy : str, tuple or Strategy
        The adjoint memory strategy (:func:`~ocp_learn.get_strategy`).
    fit_head : bool
        Train ``(W, mu)`` jointly (default) or keep ``W = [I 0]``, ``mu = 0``.
    init_scale : float
        Output-weight scale of the default model at initialization.
    backend : {"numpy", "numba", "cupy"}, optional
        Backend of the default model (:class:`~ocp_learn.SingleLayerNet`; ``"numpy"`` when
        not given).  With ``"cupy"`` the samples, labels, states, adjoints and costs stay on
        the GPU; only ``theta``, the gradient and scalars cross to the host.  Give a
        ``model`` instead for other models or backend objects.

    Examples
    --------
    >>> from ocp_learn.datasets import rings
    >>> x, y = rings(100, seed=0)
    >>> prob = NeuralODEClassifier(x, y, augment=1, width=8, nt=4)
    >>> theta = prob.init_params(0)
    >>> prob.predict(theta, x[:3]).shape
    (3,)
    """

    def __init__(self, x, labels, *, augment=0, loss="logistic", model=None, width=16,
                 n_outputs=None, T=1.0, nt=8, integrator="rk4", time_param=None, tikhonov=1e-4,
                 smoothness=0.0, regularizers=(), running=(), kinetic=0.0, strategy="store_all",
                 fit_head=True, init_scale=0.1, backend=None):
        x = as_array("x", x, ndim=2, min_rows=1)
        model_arg = model
        self.augment = check_nonneg_int("augment", augment)
        self.input_dim = x.shape[1]
        self.dim = self.input_dim + self.augment
        if np.shape(labels)[:1] != (x.shape[0],):
            raise ValueError(f"labels must have one entry per row of x ({x.shape[0]}), "
                             f"got shape {np.shape(labels)}")
        if backend is not None and not isinstance(backend, str):
            raise TypeError(f"backend must be a backend name (str) of the default model, got "
                            f"{type(backend).__name__}; give model=SingleLayerNet(..., "
                            "backend=...) for a backend object")
        if backend is not None and model is not None:
            raise ValueError("give backend (the default model's) or model, not both")
        if model is None:
            model = SingleLayerNet(self.dim, check_positive_int("width", width), init_scale=init_scale,
                                   backend="numpy" if backend is None else backend)
        elif check_protocol(model, Field, "model").state_dim != self.dim:
            raise ValueError(f"model must have state_dim == d + augment = {self.dim}, "
                             f"got {model.state_dim}")
        regs = []
        if check_positive_float("tikhonov", tikhonov, allow_zero=True) > 0:
            regs.append(Tikhonov(tikhonov))
        if check_positive_float("smoothness", smoothness, allow_zero=True) > 0:
            regs.append(TimeSmoothness(smoothness))
        regs.extend(regularizers)
        costs = list(running)
        kinetic = check_positive_float("kinetic", kinetic, allow_zero=True)
        if kinetic > 0:
            costs.append(KineticEnergy(model, kinetic))
        terminal = LinearHeadLoss(labels, self.dim, loss, n_outputs=n_outputs, fit_head=fit_head)
        super().__init__(model, self.pad(x), terminal, T=T, nt=nt, integrator=integrator,
                         time_param=time_param, running=costs, regularizers=regs,
                         strategy=strategy)
        self.labels = terminal.labels
        self.loss_name = terminal.loss.name
        self._settings = dict(
            input_dim=self.input_dim, label_shape=list(self.labels.shape[1:]),
            augment=self.augment, loss=loss, model=model_arg,
            width=width, n_outputs=terminal.n_outputs, T=T, nt=nt, integrator=integrator,
            time_param=time_param, tikhonov=tikhonov, smoothness=smoothness,
            regularizers=list(regularizers), running=list(running), strategy=strategy,
            fit_head=fit_head, init_scale=init_scale)
        if backend is not None:
            self._settings["backend"] = backend
        if kinetic > 0:
            self._settings["kinetic"] = kinetic

    def fingerprint_data(self) -> dict:
        """The labels' digest, for :meth:`fingerprint`.

        Returns
        -------
        dict
            ``{"labels": digest}``.
        """
        return {"labels": fingerprint_value(np.asarray(self.labels))}

    @classmethod
    def from_settings(cls, settings: dict) -> NeuralODEClassifier:
        """The classifier of :attr:`settings`, holding no samples.

        For inference; see :func:`ocp_learn.problems.load`.

        Parameters
        ----------
        settings : dict
            The settings of a classifier (its :attr:`settings`).

        Returns
        -------
        NeuralODEClassifier
            The classifier, without samples.
        """
        s = dict(settings)
        x = np.zeros((1, s.pop("input_dim")))
        labels = np.zeros((1, *s.pop("label_shape")))
        return cls(x, labels, **s).without_samples()

    def _take_rows(self, part, rows):
        part.labels = part.terminal.labels

    # --- data helpers -------------------------------------------------------
    def pad(self, x):
        """``[x, 0]``: append ``augment`` zero columns.

        Parameters
        ----------
        x : array_like, shape (n, d)
            Features.

        Returns
        -------
        ndarray, shape (n, d + augment)
            The padded features.
        """
        x = as_array("x", x, ndim=2, min_rows=1)
        if x.shape[1] != self.input_dim:
            raise ValueError(f"x must have {self.input_dim} columns, got shape {x.shape}")
        if self.augment == 0:
            return x
        return np.hstack([x, np.zeros((x.shape[0], self.augment))])

    def _samples(self, x, name="x"):
        """New features ``x`` (unpadded, ``(m, d)``) as the problem holds its own: padded."""
        return self.pad(as_array(name, x, ndim=2, min_rows=1))

    def propagate(self, theta: np.ndarray, x: Any = None) -> np.ndarray:
        """Features at the final time, ``z(T)`` of shape ``(n, d + q)`` (A3).

        The same as :meth:`push_forward` ``(theta, x)``.

        Parameters
        ----------
        theta : ndarray, shape (n_params,)
            The parameters.
        x : array_like, shape (m, d), optional
            Features (unpadded); the training features by default.

        Returns
        -------
        ndarray, shape (n, d + q)
            The final states.
        """
        return self.push_forward(theta, x)

    def _forward(self, theta, xp, field=None):
        field = self.field if field is None else field
        return self._states(theta, xp, self.times, field, False)

    def decision_function(self, theta, x=None):
        """``r = W z(T) + mu`` (C1).

        Parameters
        ----------
        theta : ndarray, shape (n_params,)
            The parameters.
        x : array_like, shape (m, d), optional
            Features (unpadded); the training features by default.

        Returns
        -------
        ndarray, shape (n, n_outputs)
            The outputs (logits).
        """
        theta = self.check_theta(theta)
        z = to_host(self.propagate(theta, x))
        return self.terminal.output(z, self._split(theta)[1])

    def residuals(self, theta, batch=None):
        """``r_i = W z_i(T) + mu`` of the training rows ``batch`` (the residual map of G1).

        Parameters
        ----------
        theta : ndarray, shape (n_params,)
            The parameters.
        batch : index array, optional
            Training rows (all by default).

        Returns
        -------
        ndarray, shape (n, n_outputs)
            The residuals.
        """
        theta = self.check_theta(theta)
        return self.terminal.output(to_host(self.final_state(theta, batch)),
                                    self._split(theta)[1])

    def predict_proba(self, theta, x=None):
        """Class probabilities: ``sigmoid(r)`` as ``(n, 2)`` or ``softmax(r)``.

        Parameters
        ----------
        theta : ndarray, shape (n_params,)
            The parameters.
        x : array_like, shape (m, d), optional
            Features (unpadded); the training features by default.

        Returns
        -------
        ndarray, shape (n, n_classes)
            The probability of every class.
        """
        from scipy.special import expit, softmax

        self._require_classes("predict_proba")
        r = self.decision_function(theta, x)
        if self.loss_name == "logistic":
            p1 = expit(r[:, 0])
            return np.stack([1 - p1, p1], axis=1)
        return softmax(r, axis=1)

    def predict(self, theta, x=None):
        """Predicted class labels (or regression values for ``"squares"``).

        Parameters
        ----------
        theta : ndarray, shape (n_params,)
            The parameters.
        x : array_like, shape (m, d), optional
            Features (unpadded); the training features by default.

        Returns
        -------
        ndarray
            The labels, one per row of ``x``.
        """
        return self.terminal.loss.predict(self.decision_function(theta, x))

    def accuracy(self, theta, x=None, labels=None):
        """Fraction of correctly classified points (training data by default).

        Parameters
        ----------
        theta : ndarray
            Parameters.
        x, labels : array_like, optional
            Points and their labels (both, or neither: the training data); the labels are
            checked as for training (0/1 for the logistic loss, class indices for softmax:
            strings or ``NaN`` raise).

        Returns
        -------
        float
            In ``[0, 1]``.
        """
        self._require_classes("accuracy")
        if (x is None) != (labels is None):
            raise ValueError("give both x and labels, or neither (training data)")
        y = self.labels if labels is None else self.terminal.loss.check_labels(labels)
        pred = self.predict(theta, x)
        if y.shape != pred.shape:
            raise ValueError(f"labels must have shape {pred.shape}, got {y.shape}")
        return float(np.mean(pred == y))

    def _require_classes(self, what):
        if self.loss_name not in ("logistic", "softmax"):
            raise ValueError(f"{what} needs a classification loss ('logistic' or 'softmax'), "
                             f"this problem uses {self.loss_name!r}")

    # --- generalized Gauss--Newton (MATH G1) ---------------------------------
    def gauss_newton_operator(self, theta, batch=None):
        """Value, gradient and the matrix-free GGN product at ``theta`` (MATH G1).

        Parameters
        ----------
        theta : ndarray
            The point of the model.
        batch : index array, optional
            Training rows (all by default).

        Returns
        -------
        GaussNewtonOperator
            ``op.matvec(v) = J_r^T H J_r v + R'' v`` with ``r = W z(T) + mu``,
            ``H = d^2 l / dr^2 / n`` (block diagonal, positive semidefinite for
            the three losses) and ``R''`` the regularizers' Hessian.  Each
            product costs one tangent sweep and one adjoint sweep.

        Notes
        -----
        With ``v = (dnodes, dp)``: ``dz(T)`` from the tangent sweep (B1 with
        jvps) and ``dr = W dz + dW z + dmu``; ``u = H dr``; ``(zbar, pbar) =
        (u W, (u^T z, sum u))``; the adjoint sweep (B2) carries ``zbar`` back to
        the dynamics parameters.  The sweeps and the products run in the model's array
        namespace (the attribute ``xp`` of :class:`~ocp_learn.OCP`); ``v`` and the product are host vectors.
        """
        theta = self.check_theta(theta)
        ev = self.evaluate(theta, batch, gradient=True)
        idx, x = self._batch(batch)
        field = self._field(idx)
        xp = self.xp
        nodes_host, p_host = self._split(theta)
        nodes, p = self._on_device(nodes_host), self._on_device(p_host)
        ledger = Ledger()
        if xp is np:
            y0 = field.initial_state(x)
        else:
            y0 = self._initial_state(self._device_rows(idx, x), field)
        reuse = self.strategy.reusable_tape
        if reuse:
            yN, tape = self.strategy.forward(self._sweep(nodes, ledger, field=field), y0)
        else:
            yN = ev.state
        regs = self.regularizers
        term = self.terminal
        layout = self.layout

        def matvec(v):
            if v.shape != (self.n_params,):
                raise ValueError(f"v must have shape ({self.n_params},), got {v.shape}")
            dnodes_host, dp_host = self._split(v)
            dnodes, dp = self._on_device(dnodes_host), self._on_device(dp_host)
            sweep_t = self._sweep(nodes, ledger, dnodes=dnodes, field=field)
            y, dy = y0, xp.zeros_like(y0)
            for k in range(self.nt):
                y, dy = sweep_t.step_tangent(k, y, dy)
            dr = term.output_jvp(yN, p, dy, dp)
            u = term.loss_hvp(yN, p, dr, idx)
            ybar, pbar = term.output_vjp(yN, p, u)
            gnodes = xp.zeros_like(nodes)
            sweep_a = self._sweep(nodes, ledger, gnodes, field=field)
            if reuse:
                self.strategy.backward(sweep_a, tape, ybar)
            else:
                _, tp = self.strategy.forward(sweep_a, y0)
                self.strategy.backward(sweep_a, tp, ybar)
            if xp is not np:
                gnodes = to_host(gnodes)
                pbar = to_host(pbar)
            for reg in regs:  # on the host, as in the objective
                gnodes = gnodes + reg.hvp(nodes_host, dnodes_host)
            out = np.empty(self.n_params)
            P = layout.unpack(out)
            P["dynamics"][...] = gnodes
            P["terminal"][...] = pbar
            return out

        return GaussNewtonOperator(theta, ev, matvec, ledger)

    def gauss_newton_product(self, theta, v, batch=None):
        """``G(theta) v`` (one-off; build :meth:`gauss_newton_operator` for many products).

        Parameters
        ----------
        theta : ndarray, shape (n_params,)
            The point of the model.
        v : ndarray, shape (n_params,)
            The direction.
        batch : index array, optional
            Training rows (all by default).

        Returns
        -------
        ndarray, shape (n_params,)
            The product.
        """
        v = self.check_theta(v, "v")
        return self.gauss_newton_operator(theta, batch).matvec(v)

    def __repr__(self):
        return (f"NeuralODEClassifier(n={self.n_samples}, d={self.input_dim}, augment={self.augment}, "
                f"loss={self.loss_name!r}, model={type(self.model).__name__}, "
                f"n_params={self.n_params}, integrator={self.integrator.name}, nt={self.nt}, T={self.T})")
