"""Figure 3 of the article (1-D MFG trajectories) and 2-D crowd-motion plots."""
from __future__ import annotations

import numpy as np

__all__ = ["trajectories_1d_figure", "crowd_2d_figure"]


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def trajectories_1d_figure(panels, path, obstacle=None):
    """``panels``: list of ``(title, times, paths (nt+1, n))``; trajectories ``x(t)``
    drawn over time, optional obstacle ``Q(x)`` shaded. Writes ``path``."""
    plt = _plt()
    fig, ax = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), sharey=True)
    ax = np.atleast_1d(ax)
    for a, (title, times, paths) in zip(ax, panels):
        if obstacle is not None:
            xs = np.linspace(paths.min() - 0.5, paths.max() + 0.5, 300)
            q = obstacle(xs[:, None])
            a.contourf(times, xs, np.tile(q[:, None], (1, times.size)), levels=12, cmap="Greys",
                       alpha=0.6)
        for k in range(paths.shape[1]):
            a.plot(times, paths[:, k], lw=0.6, color="tab:blue", alpha=0.6)
        a.set_xlabel("t")
        a.set_title(title)
    ax[0].set_ylabel("x")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def crowd_2d_figure(paths, path, obstacle=None, title="", lim=5.0):
    """Agent paths ``(nt+1, n, d)`` in the first two coordinates over the obstacle."""
    plt = _plt()
    fig, a = plt.subplots(figsize=(5, 5))
    if obstacle is not None:
        g = np.linspace(-lim, lim, 200)
        G = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
        Z = np.zeros((G.shape[0], paths.shape[2]))
        Z[:, :2] = G
        a.contourf(g, g, obstacle(Z).reshape(200, 200), levels=12, cmap="Greys", alpha=0.6)
    for k in range(paths.shape[1]):
        a.plot(paths[:, k, 0], paths[:, k, 1], lw=0.6, color="tab:blue", alpha=0.6)
    a.scatter(paths[0, :, 0], paths[0, :, 1], s=4, c="k", label="t = 0")
    a.scatter(paths[-1, :, 0], paths[-1, :, 1], s=4, c="tab:red", label="t = T")
    a.legend(loc="upper right", fontsize=7)
    a.set_xlim(-lim, lim)
    a.set_ylim(-lim, lim)
    a.set_aspect("equal")
    a.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
