"""Figure 2 of the article: a continuous normalizing flow, four panels."""
from __future__ import annotations

from typing import Any

import numpy as np

from .style import add_colorbar, label_axes, pyplot, save_figure

__all__ = ["flow_figure"]


def flow_figure(prob: Any, theta: np.ndarray, x_target: np.ndarray, path: str | None, *,
                n_traj: int = 300, n_gen: int = 4000, lim: float = 4.5, grid_n: int = 150,
                seed: int = 0, title: str | None = None, n_marginal: int = 20000) -> Any:
    """Target samples, learned density, trajectories to the Gaussian, generated samples.

    The sample and density panels are in data coordinates ``(x1, x2)`` (the first two);
    the trajectory panel is in the flow's state coordinates, from the network input ``u``
    (the data, or ``u = (x - shift) / scale`` under an input map) at ``t = 0`` to the
    latent point ``z(1)``.  For ``d = 2`` the density panel is the learned density on a
    grid; for ``d > 2`` it is the learned density's 2-D marginal of ``(x1, x2)``,
    estimated by a histogram of ``n_marginal`` generated samples.

    Parameters
    ----------
    prob : ContinuousNormalizingFlow
        The flow (``dim``, ``log_density``, ``transport``, ``sample``, ``shift``,
        ``scale``, ``nt``).
    theta : ndarray
        Its parameters.
    x_target : ndarray, shape (n, d)
        Samples of the target (test data).
    path : str or None
        Where to write the figure (:func:`~ocp_learn.plotting.style.save_figure`: a stem
        writes PNG and PDF); None: only return it.
    n_traj : int
        Trajectories drawn.
    n_gen : int
        Generated samples in the last panel.
    lim : float
        Sample and density panels show ``[-lim, lim]^2``.
    grid_n : int
        Density grid points per axis (``d = 2``).
    seed : int
        Seed of the generated samples.
    title : str, optional
        Figure title.
    n_marginal : int
        Generated samples of the marginal estimate (``d > 2``).

    Returns
    -------
    str or matplotlib.figure.Figure
        ``path`` when the figure was written (and closed), else the figure.
    """
    plt = pyplot()
    d = prob.dim
    box = [[-lim, lim], [-lim, lim]]
    fig, ax = plt.subplots(1, 4, figsize=(21, 4.8), layout="constrained")
    *_, im = ax[0].hist2d(x_target[:, 0], x_target[:, 1], bins=120, range=box, cmap="viridis",
                          rasterized=True)
    add_colorbar(fig, im, ax[0], "samples per bin")
    label_axes(ax[0], "x1", "x2", f"target: {len(x_target)} test samples")
    if d == 2:
        g = np.linspace(-lim, lim, grid_n)
        G = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
        dens = np.exp(prob.log_density(theta, G)).reshape(grid_n, grid_n)
        im = ax[1].imshow(dens, origin="lower", extent=[-lim, lim, -lim, lim], cmap="viridis")
        add_colorbar(fig, im, ax[1], "density p(x)")
        label_axes(ax[1], "x1", "x2", "learned density")
    else:
        gm = prob.sample(theta, n_marginal, seed=seed + 1)
        h, e1, e2 = np.histogram2d(gm[:, 0], gm[:, 1], bins=90, range=box, density=True)
        im = ax[1].imshow(h.T, origin="lower", extent=[e1[0], e1[-1], e2[0], e2[-1]],
                          cmap="viridis")
        add_colorbar(fig, im, ax[1], "marginal density p(x1, x2)")
        label_axes(ax[1], "x1", "x2",
                   f"learned density: 2-D marginal of d = {d}\n"
                   f"(histogram of {n_marginal} samples)")
    traj = prob.transport(theta, x_target[:n_traj], nt=2 * prob.nt)
    a = ax[2]
    a.plot(traj[:, :, 0], traj[:, :, 1], "-", lw=0.5, color="tab:blue", alpha=0.5)
    mapped = np.any(np.asarray(prob.shift) != 0) or np.any(np.asarray(prob.scale) != 1)
    a.scatter(traj[0, :, 0], traj[0, :, 1], s=3, c="k", zorder=3,
              label="t = 0: u = (x - shift) / scale" if mapped else "t = 0: data x")
    a.scatter(traj[-1, :, 0], traj[-1, :, 1], s=3, c="tab:red", zorder=3,
              label="t = 1: latent z(1)")
    a.legend(loc="upper right", fontsize=7)
    r = max(float(np.max(np.abs(traj[..., :2]))) * 1.05, 1.0)
    a.set_xlim(-r, r)
    a.set_ylim(-r, r)
    label_axes(a, "state z1", "state z2", "trajectories, data to Gaussian")
    gen = prob.sample(theta, n_gen, seed=seed)
    *_, im = ax[3].hist2d(gen[:, 0], gen[:, 1], bins=120, range=box, cmap="viridis",
                          rasterized=True)
    add_colorbar(fig, im, ax[3], "samples per bin")
    label_axes(ax[3], "x1", "x2", f"generated: {n_gen} samples")
    for a in ax:
        a.set_aspect("equal")
    for a in (ax[0], ax[1], ax[3]):
        a.set_xlim(-lim, lim)
        a.set_ylim(-lim, lim)
    if title:
        fig.suptitle(title)
    if path is None:
        return fig
    save_figure(fig, path, close=True)
    return path
