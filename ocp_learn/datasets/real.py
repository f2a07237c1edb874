"""Real data sets that ship with scikit-learn, split and preprocessed reproducibly.

* :func:`load_digits` (1797 images of 8 x 8 pixels, values 0..16, 10 classes),
  :func:`load_breast_cancer` (569 x 30, 2 classes), :func:`load_wine` (178 x 13, 3 classes):
  fixed, seeded, stratified train / validation / test splits (:class:`Split`);
* :func:`standardize`: inputs standardized with the training split's statistics;
* density estimation on the digits: :func:`dequantize` (``x + u``, ``u ~ U[0, 1)``) and
  :class:`LogitPreprocessing` and :class:`Whitening`, invertible maps with their exact
  log-determinants, so that a
  density ``p_y`` of the preprocessed data ``y = T(x)`` gives the density of the dequantized
  data in the original pixel scale, ``log p_x(x) = log p_y(T(x)) + log |det T'(x)|``;
  :func:`bits_per_dim` converts nats.

Nothing is downloaded: the data are those of :mod:`sklearn.datasets`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import as_array, check_positive_float, check_rng

__all__ = ["Split", "load_real", "load_digits", "load_breast_cancer", "load_wine",
           "REAL_DATASETS", "standardize", "dequantize", "LogitPreprocessing",
           "Whitening", "bits_per_dim", "DIGITS_LEVELS", "DensityData", "digits_density_data"]

#: Number of grey levels of the scikit-learn digits (pixel values 0..16).
DIGITS_LEVELS = 17

#: The real data sets :func:`load_real` knows.
REAL_DATASETS = ("digits", "breast_cancer", "wine")


@dataclass(frozen=True)
class Split:
    """A labelled data set split into training, validation and test parts.

    The parameters are kept as attributes of the same names.

    Parameters
    ----------
    name : str
        The data set.
    x_train : ndarray, shape (n_train, d)
        Training features (float64).
    y_train : ndarray of int, shape (n_train,)
        Training class labels.
    x_val : ndarray, shape (n_val, d)
        Validation features.
    y_val : ndarray of int, shape (n_val,)
        Validation class labels.
    x_test : ndarray, shape (n_test, d)
        Test features.
    y_test : ndarray of int, shape (n_test,)
        Test class labels.
    seed : int or None
        The integer seed the split was drawn with.
    idx_train, idx_val, idx_test : ndarray of int or None
        Rows of the whole data set in each part.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    seed: int | None = None
    idx_train: np.ndarray | None = None
    idx_val: np.ndarray | None = None
    idx_test: np.ndarray | None = None

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return int(np.max(self.y_train)) + 1

    @property
    def dim(self) -> int:
        """Number of features ``d``."""
        return int(self.x_train.shape[1])


def _int_seed(seed: Any) -> int:
    """An integer seed for scikit-learn from an int, a Generator or None (fresh entropy)."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0:
        return int(seed)
    return int(check_rng(seed).integers(2**31 - 1))


def load_real(name: str, seed: Any = 0, *, val_size: float = 0.2,
              test_size: float = 0.2) -> Split:
    """A real data set of :data:`REAL_DATASETS`, split stratified by class.

    Parameters
    ----------
    name : {"digits", "breast_cancer", "wine"}
        The data set (:mod:`sklearn.datasets`).
    seed : int, numpy.random.Generator or None
        Seed of the split (an int gives the same split every time; None: fresh entropy).
    val_size, test_size : float
        Fractions of all samples in the validation and test parts (each in ``(0, 1)``, their
        sum below 1).

    Returns
    -------
    Split
        Disjoint training, validation and test parts with the class proportions of the
        whole set (up to rounding).
    """
    import sklearn.datasets as skd
    from sklearn.model_selection import train_test_split

    loaders = {"digits": skd.load_digits, "breast_cancer": skd.load_breast_cancer,
               "wine": skd.load_wine}
    if name not in loaders:
        raise ValueError(f"name must be one of {list(REAL_DATASETS)}, got {name!r}")
    val_size = check_positive_float("val_size", val_size)
    test_size = check_positive_float("test_size", test_size)
    if val_size + test_size >= 1:
        raise ValueError(f"val_size + test_size must be below 1, got {val_size} + {test_size}")
    bunch = loaders[name]()
    x, y = np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=int)
    s = _int_seed(seed)
    rest, test = train_test_split(np.arange(len(y)), test_size=test_size, stratify=y,
                                  random_state=s)
    train, val = train_test_split(rest, test_size=val_size / (1 - test_size), stratify=y[rest],
                                  random_state=(s + 1) % (2**31 - 1))
    return Split(name, x[train], y[train], x[val], y[val], x[test], y[test], s,
                 train, val, test)


def load_digits(seed: Any = 0, **kwargs: Any) -> Split:
    """The 8 x 8 digits (1797 x 64, values 0..16, 10 classes): :func:`load_real`."""
    return load_real("digits", seed, **kwargs)


def load_breast_cancer(seed: Any = 0, **kwargs: Any) -> Split:
    """Wisconsin breast cancer (569 x 30, 2 classes): :func:`load_real`."""
    return load_real("breast_cancer", seed, **kwargs)


def load_wine(seed: Any = 0, **kwargs: Any) -> Split:
    """Wine (178 x 13, 3 classes): :func:`load_real`."""
    return load_real("wine", seed, **kwargs)


def standardize(split: Split) -> tuple[Split, np.ndarray, np.ndarray]:
    """All parts of ``split`` standardized with the training part's mean and deviation.

    A feature constant on the training part is only centred (deviation taken as 1).

    Parameters
    ----------
    split : Split

    Returns
    -------
    split : Split
        ``(x - mean) / std`` in every part.
    mean, std : ndarray, shape (d,)
        The training statistics.
    """
    mean = split.x_train.mean(axis=0)
    std = split.x_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    f = lambda x: (x - mean) / std  # noqa: E731
    return (Split(split.name, f(split.x_train), split.y_train, f(split.x_val), split.y_val,
                  f(split.x_test), split.y_test, split.seed, split.idx_train, split.idx_val,
                  split.idx_test), mean, std)


def dequantize(x: Any, seed: Any = None) -> np.ndarray:
    """Uniform dequantization ``x + u``, ``u ~ U[0, 1)`` independent per entry.

    A density of the dequantized data bounds the probability of the integer data from
    below: ``P(k) = int_[k, k+1) p(x) dx >= exp(E_u log p(k + u))``.

    Parameters
    ----------
    x : array_like, shape (n, d)
        Integer-valued data.
    seed : int, numpy.random.Generator or None
        Seed of the noise (None: fresh entropy).

    Returns
    -------
    ndarray, shape (n, d)
    """
    x = as_array("x", x, ndim=2, min_rows=1)
    return x + check_rng(seed).uniform(size=x.shape)


class LogitPreprocessing:
    r"""The invertible map ``y = logit(alpha + (1 - 2 alpha) x / levels)`` with its log-det.

    Dequantized pixels ``x in [0, levels)^d`` are scaled into ``(alpha, 1 - alpha)`` and
    mapped to the real line (RealNVP's preprocessing).  The Jacobian is diagonal:

    .. math::

        \log |\det T'(x)| = \sum_j \log\frac{1 - 2\alpha}{\text{levels}}
                            - \log p_j - \log(1 - p_j), \qquad
        p_j = \alpha + (1 - 2\alpha) x_j / \text{levels},

    so a density ``p_y`` of ``y`` gives ``log p_x(x) = log p_y(T(x)) + log |det T'(x)|``.

    Parameters
    ----------
    alpha : float
        Margin in ``(0, 1/2)`` keeping the logit finite.
    levels : float
        Width of the pixel range (17 for the scikit-learn digits, values 0..16, dequantized
        into ``[0, 17)``).
    """

    def __init__(self, alpha: float = 0.05, levels: float = DIGITS_LEVELS) -> None:
        self.alpha = check_positive_float("alpha", alpha)
        if not self.alpha < 0.5:
            raise ValueError(f"alpha must be in (0, 1/2), got {alpha!r}")
        self.levels = check_positive_float("levels", levels)

    def _p(self, x: np.ndarray) -> np.ndarray:
        return self.alpha + (1 - 2 * self.alpha) * x / self.levels

    def forward(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """``y = T(x)`` and ``log |det T'(x)|`` per sample.

        Parameters
        ----------
        x : array_like, shape (n, d)
            Dequantized pixels in ``[0, levels]``.

        Returns
        -------
        y : ndarray, shape (n, d)
            The logits.
        log_det : ndarray, shape (n,)
            The log-determinant of the map's Jacobian per sample.
        """
        x = as_array("x", x, ndim=2, min_rows=1)
        if np.any(x < 0) or np.any(x > self.levels):
            raise ValueError(f"x must lie in [0, {self.levels}]")
        p = self._p(x)
        y = np.log(p) - np.log1p(-p)
        log_det = np.sum(np.log((1 - 2 * self.alpha) / self.levels) - np.log(p) - np.log1p(-p),
                         axis=1)
        return y, log_det

    def __call__(self, x: Any) -> np.ndarray:
        """``T(x)`` (without the log-determinant)."""
        return self.forward(x)[0]

    def inverse(self, y: Any) -> np.ndarray:
        """``x = levels (sigmoid(y) - alpha) / (1 - 2 alpha)``, the inverse of :meth:`forward`.

        Parameters
        ----------
        y : array_like, shape (n, d)
            Logits.

        Returns
        -------
        ndarray, shape (n, d)
            Pixels in ``[0, levels]``.
        """
        from scipy.special import expit

        return self.levels * (expit(np.asarray(y, dtype=np.float64)) - self.alpha) \
            / (1 - 2 * self.alpha)

    def __repr__(self) -> str:
        return f"LogitPreprocessing(alpha={self.alpha}, levels={self.levels})"


class Whitening:
    r"""The affine map ``u = L^{-1} (y - m)`` with ``L L^T = C``, fitted to training data.

    ``m`` and ``C`` are the training samples' mean and covariance (plus ``ridge`` times the
    identity); the log-determinant ``log |det L^{-1}| = -sum_j log L_jj`` is the same for
    every sample.  A standard normal density in ``u`` is then the full-covariance Gaussian
    fitted to ``y``.

    Parameters
    ----------
    y : array_like, shape (n, d)
        Training samples.
    ridge : float
        Added to the covariance's diagonal.
    """

    def __init__(self, y: Any, ridge: float = 1e-6) -> None:
        y = as_array("y", y, ndim=2, min_rows=2)
        self.mean = y.mean(axis=0)
        cov = np.cov(y, rowvar=False, bias=True) + check_positive_float(
            "ridge", ridge, allow_zero=True) * np.eye(y.shape[1])
        self.L = np.linalg.cholesky(cov)
        self.log_det = -float(np.sum(np.log(np.diag(self.L))))

    def forward(self, y: Any) -> tuple[np.ndarray, np.ndarray]:
        """``u`` and ``log |det du/dy|`` per sample (a constant)."""
        from scipy.linalg import solve_triangular

        y = as_array("y", y, ndim=2, shape=(None, self.mean.size), min_rows=1)
        u = solve_triangular(self.L, (y - self.mean).T, lower=True).T
        return u, np.full(y.shape[0], self.log_det)

    def inverse(self, u: Any) -> np.ndarray:
        """``y = m + L u``."""
        return self.mean + np.asarray(u, dtype=np.float64) @ self.L.T


def bits_per_dim(nll: float | np.ndarray, dim: int) -> float | np.ndarray:
    """Negative log-likelihood in nats per sample as bits per dimension, ``nll / (d ln 2)``."""
    return nll / (dim * np.log(2.0))


@dataclass(frozen=True)
class DensityData:
    """Dequantized, preprocessed digits for density estimation.

    Attributes
    ----------
    y_train, y_val, y_test : ndarray, shape (n_part, 64)
        ``T(x)`` of the dequantized pixels ``x`` of each split.
    log_det_train, log_det_val, log_det_test : ndarray, shape (n_part,)
        ``log |det T'(x)|`` per sample.
    preprocessing : tuple
        The maps composed into ``T`` (:class:`LogitPreprocessing`,
        then :class:`Whitening`), each with ``inverse``.
    labels_test : ndarray of int
        Test labels (for figures only).
    pixels_train : ndarray, optional
        The integer training images (for redrawing the dequantization noise).
    """

    y_train: np.ndarray
    y_val: np.ndarray
    y_test: np.ndarray
    log_det_train: np.ndarray
    log_det_val: np.ndarray
    log_det_test: np.ndarray
    preprocessing: Any
    labels_test: np.ndarray
    pixels_train: np.ndarray | None = None

    def preprocess(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``T(x)`` and ``log |det T'(x)|`` of dequantized pixels ``x``."""
        ld = np.zeros(len(x))
        for t in self.preprocessing:
            x, d = t.forward(x)
            ld = ld + d
        return x, ld

    def to_pixels(self, y: np.ndarray) -> np.ndarray:
        """``T^{-1}(y)``: preprocessed samples back to dequantized pixels."""
        for t in reversed(self.preprocessing):
            y = t.inverse(y)
        return y

    @property
    def dim(self) -> int:
        """Dimension ``d`` (64)."""
        return int(self.y_train.shape[1])


def digits_density_data(seed: int = 0, alpha: float = 0.01, whiten: bool = True) -> DensityData:
    """The digits split by ``seed``, dequantized (noise seeded by ``[seed, part]``) and
    preprocessed by ``LogitPreprocessing(alpha)``, then (``whiten``) by the
    :class:`Whitening` fitted to the training split.

    Parameters
    ----------
    seed : int
        Seed of the split and of the dequantization noise.
    alpha : float
        Margin of the logit map.
    whiten : bool
        Whiten with the training split's mean and covariance (a fixed affine map).

    Returns
    -------
    DensityData
    """
    split = load_digits(seed)
    T = LogitPreprocessing(alpha)
    parts = [T.forward(dequantize(x, np.random.default_rng([seed, k])))
             for k, x in enumerate((split.x_train, split.x_val, split.x_test))]
    if whiten:
        W = Whitening(parts[0][0])
        parts = [(W.forward(y)[0], ld + W.log_det) for y, ld in parts]
    (ytr, ltr), (yva, lva), (yte, lte) = parts
    return DensityData(ytr, yva, yte, ltr, lva, lte, (T, W) if whiten else (T,), split.y_test,
                       split.x_train)
