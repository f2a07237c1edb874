"""Viscous (stochastic) neural-ODE classifier, robust to input perturbations (MATH C2).

The PDE view of (C1) transports the classifier's output ``u(x, t)`` along the
field ``f``; adding viscosity ``nu Laplacian u`` (WYSO20) replaces the ODE by
the SDE ``dZ = f(Z; theta(t)) dt + sqrt(2 nu) dW`` and, by Feynman--Kac, the
classifier by the expectation ``u(x) = E[ g(Z_T^x) ]`` over paths started at
``x``.  We discretize the SDE by Euler--Maruyama,

    ``z_{k+1} = z_k + h f(z_k; theta(t_k)) + sqrt(2 nu h) xi_k``,   ``xi_k ~ N(0, I)``,

which is forward Euler (B1) of the field ``f(z) + sqrt(2 nu / h) xi_k`` with a
forcing that is constant on each step.  The forcing does not depend on ``z``
or ``theta``, so the discrete adjoint (B2) and tangent sweeps of the
deterministic model apply unchanged.

Training: for a *fixed, seeded* noise sample (``n_paths`` paths per training
point) the discrete stochastic objective is a deterministic function of
``theta``; we minimize it with its exact gradient (sample-average
approximation).  Prediction: a seeded Feynman--Kac ensemble of ``n_predict``
fresh paths per point; class probabilities are averaged over the paths.
"""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..errors import as_array, check_positive_float, check_positive_int, check_rng
from ..models import SingleLayerNet
from ..protocols import Field, check_protocol
from .classification import NeuralODEClassifier
from .persistence import register_problem

__all__ = ["EulerMaruyamaField", "ViscousClassifier", "robustness_curve"]


class EulerMaruyamaField:
    """``f(z; theta) + sqrt(2 nu / h) xi_k(row)``: the field whose forward-Euler step
    is the Euler--Maruyama step of ``dZ = f dt + sqrt(2 nu) dW`` (MATH C2).

    Parameters
    ----------
    model : Model
        The drift ``f`` (model contract of :mod:`ocp_learn.models.base`).
    nu : float
        Viscosity ``nu >= 0``.
    times : ndarray
        The time grid ``t_0 < ... < t_nt``.
    noise : ndarray, shape (nt, n, D), optional
        ``xi_k`` of the ``n`` rows the field sweeps (``None``: no forcing).

    Notes
    -----
    The forcing is additive, so ``jvp``/``vjp`` are the drift's.  :meth:`with_noise`
    gives the same field with the noise of other rows or paths.
    """

    def __init__(self, model, nu, times, noise=None):
        self.model = check_protocol(model, Field, "model")
        self.nu = check_positive_float("nu", nu, allow_zero=True)
        self.times = np.asarray(times, dtype=np.float64)
        self.h = np.diff(self.times)
        self.state_dim = model.state_dim
        self.layout = model.layout
        self.noise = None
        if noise is not None:
            self.noise = as_array("noise", noise, shape=(self.h.size, None, self.state_dim))

    def with_noise(self, noise):
        """The same field forced by ``noise`` (shape ``(nt, n, D)``); this one is unchanged."""
        return EulerMaruyamaField(self.model, self.nu, self.times, noise)

    @property
    def n_params(self):
        return self.layout.size

    def init_params(self, rng=None):
        return self.model.init_params(rng)

    def initial_state(self, x):
        return self.model.initial_state(x)

    def unpack(self, theta):
        return self.model.unpack(theta)

    def _step_index(self, t):
        k = int(np.searchsorted(self.times, t, side="right")) - 1
        k = min(max(k, 0), self.h.size - 1)
        if not np.isclose(t, self.times[k], rtol=0.0, atol=1e-12 * max(1.0, abs(t))):
            raise ValueError(f"the Euler--Maruyama field is evaluated only at grid times; got t = {t}")
        return k

    def forcing(self, t, n):
        """``sqrt(2 nu / h) xi_k`` for the ``n`` rows of the state (zeros if ``nu == 0``)."""
        if self.nu == 0.0 or self.noise is None:
            return 0.0
        k = self._step_index(t)
        xi = self.noise[k]
        if xi.shape[0] != n:
            raise ValueError(f"the noise sample has {xi.shape[0]} rows but the state has {n}")
        return np.sqrt(2.0 * self.nu / self.h[k]) * xi

    def rhs(self, y, t, theta):
        return self.model.rhs(y, t, theta) + self.forcing(t, y.shape[0])

    def jvp(self, y, t, theta, dy, dtheta):
        return self.model.jvp(y, t, theta, dy, dtheta)

    def vjp(self, y, t, theta, ybar):
        return self.model.vjp(y, t, theta, ybar)


@register_problem("viscous_classifier")
class ViscousClassifier(NeuralODEClassifier):
    r"""Neural-ODE classifier with viscosity: Euler--Maruyama + Feynman--Kac (MATH C2).

    Parameters
    ----------
    x, labels : array_like
        Training data (as :class:`NeuralODEClassifier`).
    nu : float
        Viscosity (noise level): the SDE is ``dZ = f dt + sqrt(2 nu) dW``.
    n_paths : int
        Noise paths per training point (the training set is replicated).
    n_predict : int
        Paths per point of the Feynman--Kac ensemble used for prediction.
    noise_seed : int or Generator
        Seed of the training noise sample.
    predict_seed : int or None
        Seed of the prediction ensemble (an int: predictions are reproducible; ``None``:
        fresh paths on every call).
    **kwargs
        Passed to :class:`NeuralODEClassifier` (``augment``, ``loss``, ``width``,
        ``T``, ``nt``, ``time_param``, ``tikhonov``, ...).  The integrator is
        forward Euler (Euler--Maruyama); running costs are not supported.
    """

    def __init__(self, x, labels, *, nu=0.05, n_paths=1, n_predict=32, noise_seed=0,
                 predict_seed=0, **kwargs):
        if kwargs.get("integrator", "euler") != "euler":
            raise ValueError("integrator must be 'euler' (Euler--Maruyama) for the viscous "
                             f"classifier, got {kwargs['integrator']!r}")
        if kwargs.get("running") or kwargs.get("kinetic"):
            raise ValueError("running costs (running, kinetic) are not supported by the "
                             "viscous classifier")
        kwargs["integrator"] = "euler"
        x = as_array("x", x, ndim=2, min_rows=1)
        self.n_paths = check_positive_int("n_paths", n_paths)
        self.n_predict = check_positive_int("n_predict", n_predict)
        self.predict_seed = predict_seed
        check_rng(predict_seed, "predict_seed")
        labels = np.asarray(labels)
        q = kwargs.get("augment", 0)
        model = model_arg = kwargs.pop("model", None)
        width = kwargs.pop("width", 16)
        init_scale = kwargs.pop("init_scale", 0.1)
        if model is None:
            model = SingleLayerNet(x.shape[1] + int(q), check_positive_int("width", width),
                                   init_scale=init_scale)
        T = check_positive_float("T", kwargs.get("T", 1.0))
        nt = check_positive_int("nt", kwargs.get("nt", 8))
        times = kwargs.get("t0", 0.0) + T * np.arange(nt + 1) / nt
        em = EulerMaruyamaField(model, nu, times)
        self.nu = em.nu
        self.drift = model
        self.x_unique, self.labels_unique = x, labels
        xr = np.tile(x, (self.n_paths, 1))
        yr = np.tile(labels, (self.n_paths,) + (1,) * (labels.ndim - 1))
        super().__init__(xr, yr, model=em, **kwargs)
        self.resample_noise(noise_seed)
        self._settings = dict(
            kwargs, input_dim=x.shape[1], label_shape=list(self.labels.shape[1:]), nu=nu,
            n_paths=n_paths, n_predict=n_predict,
            noise_seed=int(noise_seed) if isinstance(noise_seed, numbers.Integral) else None,
            predict_seed=predict_seed, model=model_arg, width=width, init_scale=init_scale,
            n_outputs=self.terminal.n_outputs)

    def resample_noise(self, seed):
        """Draw a new training noise sample ``xi`` of shape ``(nt, n, D)``.

        Parameters
        ----------
        seed : int or numpy.random.Generator
            The draw.
        """
        rng = check_rng(seed, "noise_seed")
        noise = rng.standard_normal((self.nt, self.n_samples, self.model.state_dim))
        self.model = self.field = self.model.with_noise(noise)

    def _field(self, rows):
        """The field forced by the training noise of the rows ``rows`` (``None``: all)."""
        if rows is None or self.field.noise is None:
            return self.field
        return self.field.with_noise(self.field.noise[:, rows])

    def _field_on(self, x):
        """The field forced by one path per row of ``x``, drawn with the prediction seed."""
        return self._noise_field(x.shape[0], check_rng(self.predict_seed))

    def _noise_field(self, n, rng):
        return self.field.with_noise(rng.standard_normal((self.nt, n, self.model.state_dim)))

    def _take_rows(self, part, rows):
        super()._take_rows(part, rows)
        part.model = part.field = self._field(rows)

    def trajectory(self, theta, x=None, times=None):
        """Training paths (the fixed noise sample), or one path per new point.

        Parameters
        ----------
        theta : ndarray, shape (n_params,)
            The parameters.
        x : array_like, shape (m, d), optional
            Points (unpadded); None: the training paths.
        times : None
            Must be None: the noise lives on the problem's own grid.

        Returns
        -------
        ndarray, shape (nt + 1, n, D)
            The paths; for new ``x`` one each, with the prediction seed.
        """
        if times is not None:
            raise ValueError("the viscous classifier integrates on its own grid only (times=None)")
        return super().trajectory(theta, x)

    def ensemble(self, theta, x, n_predict=None, seed=None):
        """``z(T)`` of ``n_predict`` seeded paths per point.

        Parameters
        ----------
        theta : ndarray, shape (n_params,)
            The parameters.
        x : array_like, shape (n, d)
            Points (unpadded).
        n_predict : int, optional
            Paths per point (the problem's ``n_predict`` by default).
        seed : int or numpy.random.Generator, optional
            The noise (the prediction seed by default).

        Returns
        -------
        ndarray, shape (n_predict, n, d + q)
            The final states.
        """
        theta = self.check_theta(theta)
        M = self.n_predict if n_predict is None else check_positive_int("n_predict", n_predict)
        rng = check_rng(self.predict_seed if seed is None else seed)
        xp = np.tile(self.pad(x), (M, 1))
        yN = self._forward(theta, xp, self._noise_field(xp.shape[0], rng))
        return yN[:, :self.dim].reshape(M, -1, self.dim)

    def push_forward(self, theta: np.ndarray, x: Any = None, *, nt: int | None = None,
                     trajectory: bool = False) -> np.ndarray:
        """``z(T)`` (or the path) of the training paths or of one path per new point.

        New points get paths drawn with the prediction seed (see
        :meth:`NeuralODEClassifier.push_forward <ocp_learn.OCP.push_forward>`).

        Parameters
        ----------
        theta : ndarray, shape (n_params,)
            The parameters.
        x : array_like, shape (m, d), optional
            Points (unpadded); None: the training paths.
        nt : int, optional
            None or the problem's ``nt``: the noise lives on the problem's own grid.
        trajectory : bool, optional
            Return the paths instead of the final states.

        Returns
        -------
        ndarray
            ``z(T)``, shape ``(n, D)``, or the paths.
        """
        if nt is not None and nt != self.nt:
            raise ValueError(f"nt must be None or {self.nt} (the viscous classifier's noise "
                             f"lives on its own grid), got {nt!r}")
        return super().push_forward(theta, x, trajectory=trajectory)

    def decision_function(self, theta, x=None):
        """Feynman--Kac mean of ``r = W Z_T + mu`` over the prediction ensemble (C2).

        Parameters
        ----------
        theta : ndarray, shape (n_params,)
            The parameters.
        x : array_like, shape (m, d), optional
            Points (unpadded); None: the training paths.

        Returns
        -------
        ndarray, shape (n, n_outputs)
            The mean outputs.
        """
        if x is None:
            return super().decision_function(theta)
        _, p = self._split(self.check_theta(theta))
        Z = self.ensemble(theta, x)
        return np.mean([self.terminal.output(z, p) for z in Z], axis=0)

    def predict_proba(self, theta, x=None):
        """Feynman--Kac class probabilities ``E[ softmax(W Z_T + mu) ]`` (C2).

        Parameters
        ----------
        theta : ndarray, shape (n_params,)
            The parameters.
        x : array_like, shape (m, d), optional
            Points (unpadded); None: the training paths.

        Returns
        -------
        ndarray, shape (n, n_classes)
            The probability of every class.
        """
        from scipy.special import expit, softmax

        self._require_classes("predict_proba")
        if x is None:
            return super().predict_proba(theta)
        _, p = self._split(self.check_theta(theta))
        out = 0.0
        Z = self.ensemble(theta, x)
        for z in Z:
            r = self.terminal.output(z, p)
            if self.loss_name == "logistic":
                p1 = expit(r[:, 0])
                out = out + np.stack([1 - p1, p1], axis=1)
            else:
                out = out + softmax(r, axis=1)
        return out / Z.shape[0]

    def predict(self, theta, x=None):
        """Labels from the ensemble-averaged probabilities (regression: mean output).

        Parameters
        ----------
        theta : ndarray, shape (n_params,)
            The parameters.
        x : array_like, shape (m, d), optional
            Points (unpadded); None: the training paths.

        Returns
        -------
        ndarray
            The labels, one per point.
        """
        if self.loss_name in ("logistic", "softmax"):
            return np.argmax(self.predict_proba(theta, x), axis=1)
        return self.decision_function(theta, x)


def robustness_curve(problem, theta, x, labels, radii=(0.0, 0.05, 0.1, 0.15, 0.2, 0.3),
                     n_draws=3, seed=0):
    """Accuracy under random Gaussian input perturbations of growing size.

    For each radius ``s`` the inputs are ``x + s * N(0, I)`` (``n_draws`` seeded
    draws, accuracies averaged).  Works for any problem with
    ``accuracy(theta, x, labels)``.

    Returns
    -------
    dict
        ``{"radius": [...], "accuracy": [...]}``.
    """
    x = as_array("x", x, ndim=2, min_rows=1)
    n_draws = check_positive_int("n_draws", n_draws)
    rng = check_rng(seed)
    noise = [rng.standard_normal(x.shape) for _ in range(n_draws)]
    acc = []
    for s in radii:
        s = check_positive_float("radius", s, allow_zero=True)
        draws = noise[:1] if s == 0.0 else noise
        acc.append(float(np.mean([problem.accuracy(theta, x + s * e, labels) for e in draws])))
    return {"radius": [float(s) for s in radii], "accuracy": acc}
