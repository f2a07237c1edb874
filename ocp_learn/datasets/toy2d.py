"""The 2-D toy densities of the flow literature (FFJORD / OT-Flow conventions), seeded.

Each function returns ``(n, 2)`` samples; sklearn provides moons and circles.
"""
from __future__ import annotations

import numpy as np

from ..errors import check_choice, check_positive_int, check_rng

__all__ = ["toy_sample", "TOY2D", "nll_floor", "eight_gaussians_density"]


def eight_gaussians_density():
    """FFJORD's 8gaussians: ``(c_k + 0.5 eps) / sqrt(2)``, ``|c_k| = 4`` at angles ``k pi/4``,
    i.e. a mixture with radius ``2 sqrt(2)`` and variance ``1/8``, exact log-density."""
    from .densities import GaussianMixture

    a = 2 * np.pi * np.arange(8) / 8
    return GaussianMixture(np.stack([np.cos(a), np.sin(a)], 1) * 4 / np.sqrt(2), 0.125)


def _8gaussians(n, rng):
    return eight_gaussians_density().sample(n, rng)


def _checkerboard(n, rng):
    x1 = rng.uniform(size=n) * 4 - 2
    x2 = rng.uniform(size=n) - rng.integers(0, 2, n) * 2.0
    x2 = x2 + (np.floor(x1) % 2)
    return np.stack([x1, x2], 1) * 2


def _swissroll(n, rng):
    from sklearn.datasets import make_swiss_roll
    x = make_swiss_roll(n, noise=1.0, random_state=int(rng.integers(2**31)))[0][:, [0, 2]]
    return x / 5.0


def _circles(n, rng):
    from sklearn.datasets import make_circles
    return make_circles(n, factor=0.5, noise=0.08, random_state=int(rng.integers(2**31)))[0] * 3


def _moons(n, rng):
    from sklearn.datasets import make_moons
    x = make_moons(n, noise=0.1, random_state=int(rng.integers(2**31)))[0]
    return (x * 2 + np.array([-1.0, -0.2])) * 1.0


def _pinwheel(n, rng, radial_std=0.3, tangential_std=0.1, num_classes=5, rate=0.25):
    rads = np.linspace(0, 2 * np.pi, num_classes, endpoint=False)
    feats = rng.standard_normal((n, 2)) * np.array([radial_std, tangential_std])
    feats[:, 0] += 1.0
    labels = rng.integers(0, num_classes, n)
    ang = rads[labels] + rate * np.exp(feats[:, 0])
    rot = np.stack([np.cos(ang), -np.sin(ang), np.sin(ang), np.cos(ang)], 1).reshape(-1, 2, 2)
    return 2 * np.einsum("ti,tij->tj", feats, rot)


def _2spirals(n, rng):
    m = np.sqrt(rng.uniform(size=(n // 2, 1))) * 540 * (2 * np.pi) / 360
    d1x = -np.cos(m) * m + rng.uniform(size=(n // 2, 1)) * 0.5
    d1y = np.sin(m) * m + rng.uniform(size=(n // 2, 1)) * 0.5
    x = np.vstack([np.hstack([d1x, d1y]), np.hstack([-d1x, -d1y])]) / 3
    x = x + 0.1 * rng.standard_normal(x.shape)
    if x.shape[0] < n:
        x = np.vstack([x, x[: n - x.shape[0]]])
    return x[rng.permutation(n)]


TOY2D = {"8gaussians": _8gaussians, "checkerboard": _checkerboard, "swissroll": _swissroll,
         "circles": _circles, "moons": _moons, "pinwheel": _pinwheel, "2spirals": _2spirals}


def nll_floor(name, n=200_000, seed=0):
    """The entropy of the toy density where it is known (the floor of the
    expected NLL): exact mixture for 8gaussians (Monte Carlo), ``log 32`` for
    the checkerboard (uniform on 8 squares of side 2); ``None`` otherwise."""
    if name == "8gaussians":
        return eight_gaussians_density().entropy(n, seed)[0]
    if name == "checkerboard":
        return float(np.log(32.0))
    return None


def toy_sample(name, n, seed=None):
    """``n`` samples of the 2-D toy density ``name`` (one of ``TOY2D``)."""
    check_choice("name", name, set(TOY2D))
    n = check_positive_int("n", n)
    return TOY2D[name](n, check_rng(seed)).astype(np.float64)
