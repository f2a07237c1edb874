"""2-D labelled toy sets for the classification examples (MATH C1, article Figure 1)."""
from __future__ import annotations

import numpy as np

from ..errors import check_positive_int, check_positive_float, check_rng

__all__ = ["rings", "moons", "spirals", "train_test_split", "DATASETS", "get_dataset"]


def rings(n=400, seed=0, noise=0.0, r_inner=1.0, r_gap=(1.3, 2.0)):
    """A disk (label 0) enclosed by a ring (label 1), half the points each.

    The inner class fills the disk of radius ``r_inner``; the outer class fills
    the annulus ``r_gap[0] <= |x| <= r_gap[1]``.  A neural-ODE map of the plane
    is a homeomorphism, so no such map makes the two linearly separable in
    2-D; one augmented dimension suffices (Dupont et al. 2019).

    Parameters
    ----------
    n : int, optional
        Number of points.
    seed : int or numpy.random.Generator, optional
        Seed of the draw.
    noise : float, optional
        Standard deviation of Gaussian noise added to the points.
    r_inner : float, optional
        Radius of the inner disk.
    r_gap : tuple of float, optional
        Inner and outer radius of the ring.

    Returns
    -------
    x : ndarray, shape (n, 2)
        The points.
    y : ndarray of int, shape (n,)
        Their labels.
    """
    n = check_positive_int("n", n)
    check_positive_float("noise", noise, allow_zero=True)
    rng = check_rng(seed)
    n0 = n // 2
    n1 = n - n0
    r0 = r_inner * np.sqrt(rng.uniform(size=n0))
    r1 = np.sqrt(rng.uniform(r_gap[0] ** 2, r_gap[1] ** 2, size=n1))
    a = rng.uniform(0, 2 * np.pi, size=n)
    r = np.concatenate([r0, r1])
    x = np.stack([r * np.cos(a), r * np.sin(a)], axis=1) + noise * rng.standard_normal((n, 2))
    y = np.concatenate([np.zeros(n0, int), np.ones(n1, int)])
    perm = rng.permutation(n)
    return x[perm], y[perm]


def moons(n=400, seed=0, noise=0.1):
    """Two interleaving half circles (``sklearn.datasets.make_moons``), labels 0/1.

    The features are centred and scaled to roughly ``[-2, 2]^2`` so that the
    same network initialization suits every toy set.

    Parameters
    ----------
    n : int, optional
        Number of points.
    seed : int or numpy.random.Generator, optional
        Seed of the draw.
    noise : float, optional
        Standard deviation of the Gaussian noise (before scaling).

    Returns
    -------
    x : ndarray, shape (n, 2)
        The points.
    y : ndarray of int, shape (n,)
        Their labels.
    """
    from sklearn.datasets import make_moons

    n = check_positive_int("n", n)
    check_positive_float("noise", noise, allow_zero=True)
    rng = check_rng(seed)
    x, y = make_moons(n, noise=noise, random_state=int(rng.integers(2**31 - 1)))
    x = 1.6 * (x - np.array([0.5, 0.25]))
    return x.astype(np.float64), y.astype(int)


def spirals(n=400, seed=0, noise=0.05, turns=1.5, radius=2.0):
    """Two interleaved spirals (labels 0/1), half the points each.

    Point ``i`` of class ``c`` sits at angle ``phi = 2 pi turns s + c pi`` and
    radius ``radius * s`` with ``s`` uniform in ``[0.1, 1]`` (so the arms do not
    meet at the centre), plus Gaussian noise of standard deviation ``noise``.

    Parameters
    ----------
    n : int, optional
        Number of points.
    seed : int or numpy.random.Generator, optional
        Seed of the draw.
    noise : float, optional
        Standard deviation of the Gaussian noise.
    turns : float, optional
        Number of turns of each arm.
    radius : float, optional
        Outer radius of the arms.

    Returns
    -------
    x : ndarray, shape (n, 2)
        The points.
    y : ndarray of int, shape (n,)
        Their labels.
    """
    n = check_positive_int("n", n)
    check_positive_float("noise", noise, allow_zero=True)
    check_positive_float("turns", turns)
    check_positive_float("radius", radius)
    rng = check_rng(seed)
    y = np.concatenate([np.zeros(n // 2, int), np.ones(n - n // 2, int)])
    s = rng.uniform(0.1, 1.0, size=n)
    phi = 2 * np.pi * turns * s + np.pi * y
    x = radius * s[:, None] * np.stack([np.cos(phi), np.sin(phi)], axis=1)
    x = x + noise * rng.standard_normal((n, 2))
    perm = rng.permutation(n)
    return x[perm], y[perm]


DATASETS = {"rings": rings, "moons": moons, "spirals": spirals}


def get_dataset(name, n=400, seed=0, **kwargs):
    """``(x, y)`` of the toy set ``name``.

    Parameters
    ----------
    name : str
        One of ``DATASETS``: ``"rings"``, ``"moons"``, ``"spirals"``.
    n : int, optional
        Number of points.
    seed : int or numpy.random.Generator, optional
        Seed of the draw.
    **kwargs
        Further arguments of the data set's function (:func:`rings`, ...).

    Returns
    -------
    x : ndarray, shape (n, 2)
        The points.
    y : ndarray of int, shape (n,)
        Their labels.
    """
    if name not in DATASETS:
        raise ValueError(f"data must be one of {sorted(DATASETS)}, got {name!r}")
    return DATASETS[name](n, seed=seed, **kwargs)


def train_test_split(x, y, test_fraction=0.25, seed=0):
    """Seeded random split of a data set into training and test rows.

    Parameters
    ----------
    x : ndarray, shape (n, ...)
        The samples, one per row.
    y : ndarray, shape (n, ...)
        Their labels.
    test_fraction : float, optional
        Fraction of the rows in the test set, in ``(0, 1)``.
    seed : int or numpy.random.Generator, optional
        Seed of the permutation.

    Returns
    -------
    x_train, y_train, x_test, y_test : ndarray
        The two parts of ``x`` and ``y``.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    rng = check_rng(seed)
    n = x.shape[0]
    if np.shape(y)[:1] != (n,):
        raise ValueError(f"y must have one entry per row of x ({n}), got shape {np.shape(y)}")
    perm = rng.permutation(n)
    k = int(round(n * test_fraction))
    te, tr = perm[:k], perm[k:]
    return x[tr], y[tr], x[te], y[te]
