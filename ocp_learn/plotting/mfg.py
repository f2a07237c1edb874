"""Mean-field-game figures: 1-D trajectories over time (the article's Figure 3) and
agent paths in the plane over an obstacle (crowd motion)."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .style import add_colorbar, label_axes, pyplot, save_figure

__all__ = ["trajectories_1d_figure", "crowd_2d_figure", "crowd_2d_panel"]

Obstacle = Callable[[np.ndarray], np.ndarray]


def trajectories_1d_figure(panels: Sequence[tuple], path: str | None,
                           obstacle: Obstacle | None = None) -> Any:
    """Agent positions ``x(t)`` over time, one panel per game, the obstacle shaded with a
    colorbar in the panels that have one.

    Parameters
    ----------
    panels : sequence of tuple
        ``(title, times, paths)`` or ``(title, times, paths, obstacle)``: ``times`` of
        shape ``(nt + 1,)``, ``paths`` of shape ``(nt + 1, n)``, ``obstacle`` a callable
        ``Q(x)`` on ``(m, 1)`` points or None (no obstacle in that game).
    path : str or None
        Where to write the figure (:func:`~ocp_learn.plotting.style.save_figure`: a stem
        writes PNG and PDF); None: only return it.
    obstacle : callable, optional
        ``Q(x)`` for the three-entry panels (the panels of four entries name their own).

    Returns
    -------
    str or matplotlib.figure.Figure
        ``path`` when the figure was written (and closed), else the figure.
    """
    plt = pyplot()
    fig, ax = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 4.2), sharey=True,
                           squeeze=False)
    ax = ax[0]
    lo = min(float(np.min(p[2])) for p in panels) - 0.5
    hi = max(float(np.max(p[2])) for p in panels) + 0.5
    for a, panel in zip(ax, panels):
        title, times, paths = panel[:3]
        q = panel[3] if len(panel) > 3 else obstacle
        if q is not None:
            xs = np.linspace(lo, hi, 300)
            qs = q(xs[:, None])
            mesh = a.pcolormesh(times, xs, np.tile(qs[:, None], (1, times.size)), cmap="Greys",
                                shading="auto", vmin=0.0, rasterized=True)
            add_colorbar(fig, mesh, a, "obstacle Q(x)")
        a.plot(times, paths, lw=0.8, color="tab:blue", alpha=0.8)
        a.set_xlim(float(times[0]), float(times[-1]))
        a.set_ylim(lo, hi)
        label_axes(a, "time t", "agent position x", title)
    fig.tight_layout()
    if path is None:
        return fig
    save_figure(fig, path, close=True)
    return path


def crowd_2d_panel(fig: Any, a: Any, paths: np.ndarray, obstacle: Obstacle | None = None, *,
                   title: str = "", lim: float = 5.0, q_max: float | None = None) -> Any:
    """One panel of agent paths in the plane ``(x1, x2)`` over the obstacle.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    a : matplotlib.axes.Axes
        The panel.
    paths : ndarray, shape (nt + 1, n, d)
        Agent paths; the first two coordinates are drawn.
    obstacle : callable, optional
        ``Q`` on ``(m, d)`` points; shaded with a colorbar when given.
    title : str
        Panel title.
    lim : float
        The panel shows ``[-lim, lim]^2``.
    q_max : float, optional
        Top of the obstacle's color scale (default: its maximum on the panel).

    Returns
    -------
    matplotlib.axes.Axes
        ``a``.
    """
    paths = np.asarray(paths)
    if obstacle is not None:
        g = np.linspace(-lim, lim, 200)
        G = np.zeros((g.size * g.size, paths.shape[2]))
        G[:, :2] = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
        mesh = a.pcolormesh(g, g, obstacle(G).reshape(g.size, g.size), cmap="Greys",
                            shading="auto", vmin=0.0, vmax=q_max, rasterized=True)
        add_colorbar(fig, mesh, a, "obstacle Q(x)")
    a.plot(paths[:, :, 0], paths[:, :, 1], lw=0.6, color="tab:blue", alpha=0.7)
    a.scatter(paths[0, :, 0], paths[0, :, 1], s=5, c="k", zorder=3, label="start, t = 0")
    a.scatter(paths[-1, :, 0], paths[-1, :, 1], s=5, c="tab:red", zorder=3, label="end, t = T")
    a.legend(loc="upper right", fontsize=7)
    a.set_xlim(-lim, lim)
    a.set_ylim(-lim, lim)
    a.set_aspect("equal")
    return label_axes(a, "x1", "x2", title)


def crowd_2d_figure(paths: np.ndarray, path: str | None, obstacle: Obstacle | None = None,
                    title: str = "", lim: float = 5.0) -> Any:
    """Agent paths ``(nt + 1, n, d)`` in the first two coordinates over the obstacle
    (for ``d > 2`` the projection of the paths onto ``(x1, x2)``).

    Parameters
    ----------
    paths : ndarray, shape (nt + 1, n, d)
        Agent paths.
    path : str or None
        Where to write the figure (:func:`~ocp_learn.plotting.style.save_figure`: a stem
        writes PNG and PDF); None: only return it.
    obstacle : callable, optional
        ``Q`` on ``(m, d)`` points, shaded with a colorbar.
    title : str
        Figure title.
    lim : float
        The panel shows ``[-lim, lim]^2``.

    Returns
    -------
    str or matplotlib.figure.Figure
        ``path`` when the figure was written (and closed), else the figure.
    """
    plt = pyplot()
    fig, a = plt.subplots(figsize=(5.6 if obstacle is not None else 5.0, 5.0))
    crowd_2d_panel(fig, a, paths, obstacle, title=title, lim=lim)
    fig.tight_layout()
    if path is None:
        return fig
    save_figure(fig, path, close=True)
    return path
