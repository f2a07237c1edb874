"""Article Figure 1: input features, propagated features with the learned
hyperplane, and predicted labels -- one row per model (MATH C1).
"""
from __future__ import annotations

import numpy as np

from .style import label_axes, pyplot, save_figure

__all__ = ["plot_classifier_figure", "hyperplane_normal", "grid_predictions"]

CMAP = "coolwarm"


def hyperplane_normal(W, mu):
    """``(w, b)`` of the decision hyperplane ``w . z + b = 0`` of a binary head.

    One logit (logistic loss): ``w = W[0]``, ``b = mu[0]``; two logits
    (softmax): ``w = W[1] - W[0]``, ``b = mu[1] - mu[0]``.  ``None`` for more
    classes (the decision regions are then bounded by several hyperplanes).

    Parameters
    ----------
    W : ndarray, shape (k, d)
        The head's weights, one row per logit.
    mu : ndarray, shape (k,)
        Its biases.

    Returns
    -------
    tuple of (ndarray, float) or None
        The normal ``w`` and offset ``b``; None for more than two logits.
    """
    W, mu = np.atleast_2d(W), np.atleast_1d(mu)
    if W.shape[0] == 1:
        return W[0], float(mu[0])
    if W.shape[0] == 2:
        return W[1] - W[0], float(mu[1] - mu[0])
    return None


def grid_predictions(problem, theta, lim=2.4, n=121):
    """Predicted labels of ``problem`` on an ``n x n`` grid of ``[-lim, lim]^2``."""
    g = np.linspace(-lim, lim, n)
    G = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    return g, problem.predict(theta, G).reshape(n, n)


def _plane_2d(ax, w, b, z):
    lo, hi = z.min(axis=0), z.max(axis=0)
    pad = 0.1 * (hi - lo)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], 50)
    if abs(w[1]) > 1e-12:
        ax.plot(xs, -(w[0] * xs + b) / w[1], "k-", lw=1.5, label="hyperplane")
    else:
        ax.axvline(-b / w[0], color="k", lw=1.5, label="hyperplane")
    ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
    ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])


def _plane_3d(ax, w, b, z):
    lo, hi = z.min(axis=0), z.max(axis=0)
    k = int(np.argmax(np.abs(w[:3])))
    o = [i for i in range(3) if i != k]
    a = np.linspace(lo[o[0]], hi[o[0]], 12)
    c = np.linspace(lo[o[1]], hi[o[1]], 12)
    A, C = np.meshgrid(a, c)
    K = -(w[o[0]] * A + w[o[1]] * C + b) / w[k]
    K = np.where((K >= lo[k] - 0.5 * (hi[k] - lo[k])) & (K <= hi[k] + 0.5 * (hi[k] - lo[k])), K, np.nan)
    P = [None] * 3
    P[o[0]], P[o[1]], P[k] = A, C, K
    ax.plot_surface(*P, color="0.5", alpha=0.35, linewidth=0)


def plot_classifier_figure(rows, path=None, title=None):
    """Figure 1 of the article: one row of three panels per model.

    Parameters
    ----------
    rows : list of dict
        Each with ``name`` (row title), ``x``, ``y`` (training inputs and
        labels), ``z`` (propagated training features ``z(T)``, shape ``(n, D)``),
        ``W``, ``mu`` (the head), ``grid`` (``(g, labels)`` from
        :func:`grid_predictions`), ``x_test``, ``y_test``, ``pred_test`` and
        ``test_accuracy``.
    path : str, optional
        Save the figure there (:func:`~ocp_learn.plotting.style.save_figure`: a file
        stem writes PNG and PDF, a ``.png`` name that file).
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Panels: (1) input features and labels; (2) propagated features with
        the learned hyperplane (3-D when ``D >= 3``: the first three
        components); (3) predicted labels over a grid with the test points,
        misclassified ones circled -- the failure region is shown, not hidden.
    """
    plt = pyplot()
    fig = plt.figure(figsize=(13.5, 4.3 * len(rows)))
    for i, r in enumerate(rows):
        x, y, z = np.asarray(r["x"]), np.asarray(r["y"]), np.asarray(r["z"])
        ax = fig.add_subplot(len(rows), 3, 3 * i + 1)
        ax.scatter(*x.T, c=y, cmap=CMAP, s=6)
        ax.set_aspect("equal")
        label_axes(ax, "x1", "x2", f"{r['name']}: input features x, colored by label")
        hp = hyperplane_normal(r["W"], r["mu"])
        if z.shape[1] >= 3:
            ax = fig.add_subplot(len(rows), 3, 3 * i + 2, projection="3d")
            ax.scatter(z[:, 0], z[:, 1], z[:, 2], c=y, cmap=CMAP, s=4, depthshade=False)
            if hp is not None:
                _plane_3d(ax, hp[0], hp[1], z[:, :3])
            label_axes(ax, "z1(T)", "z2(T)", "propagated features z(T) and hyperplane",
                       zlabel="z3(T)")
        else:
            ax = fig.add_subplot(len(rows), 3, 3 * i + 2)
            ax.scatter(*z[:, :2].T, c=y, cmap=CMAP, s=6)
            if hp is not None and z.shape[1] == 2:
                _plane_2d(ax, hp[0], hp[1], z)
            label_axes(ax, "z1(T)", "z2(T)", "propagated features z(T) and hyperplane")
        ax = fig.add_subplot(len(rows), 3, 3 * i + 3)
        g, lab = r["grid"]
        k = int(max(np.max(lab), np.max(y))) + 1
        ax.contourf(g, g, lab, levels=np.arange(k + 1) - 0.5, cmap=CMAP, alpha=0.35)
        xt, yt, pt = np.asarray(r["x_test"]), np.asarray(r["y_test"]), np.asarray(r["pred_test"])
        ax.scatter(*xt.T, c=yt, cmap=CMAP, s=5, vmin=0, vmax=k - 1)
        wrong = pt != yt
        if np.any(wrong):
            ax.scatter(*xt[wrong].T, facecolors="none", edgecolors="k", s=30, linewidths=0.8,
                       label=f"misclassified ({int(wrong.sum())})")
            ax.legend(loc="lower right", fontsize=7)
        ax.set_aspect("equal")
        label_axes(ax, "x1", "x2", f"predicted labels (test accuracy {r['test_accuracy']:.3f})")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig
