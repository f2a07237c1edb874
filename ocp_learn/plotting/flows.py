"""Figure 2 of the article: a continuous normalizing flow (matplotlib, Agg)."""
from __future__ import annotations

import numpy as np

__all__ = ["flow_figure"]


def flow_figure(prob, theta, x_target, path, *, n_traj=300, n_gen=4000, lim=4.5, grid_n=150, seed=0,
                title=None):
    """Four panels: target samples, learned density, trajectories from data to the
    Gaussian, generated samples (first two coordinates). Writes ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = prob.dim
    fig, ax = plt.subplots(1, 4, figsize=(16, 4.2))
    ax[0].hist2d(x_target[:, 0], x_target[:, 1], bins=120, range=[[-lim, lim], [-lim, lim]],
                 cmap="viridis")
    ax[0].set_title("target samples")
    if d == 2:
        g = np.linspace(-lim, lim, grid_n)
        G = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
        dens = np.exp(prob.log_density(theta, G)).reshape(grid_n, grid_n)
        ax[1].imshow(dens, origin="lower", extent=[-lim, lim, -lim, lim], cmap="viridis")
        ax[1].set_title("learned density")
    else:
        ax[1].set_axis_off()
    traj = prob.transport(theta, x_target[:n_traj], nt=2 * prob.nt)
    for k in range(traj.shape[1]):
        ax[2].plot(traj[:, k, 0], traj[:, k, 1], "-", lw=0.5, color="tab:blue", alpha=0.5)
    mapped = np.any(prob.shift != 0) or np.any(prob.scale != 1)
    ax[2].scatter(traj[0, :, 0], traj[0, :, 1], s=3, c="k",
                  label="u = (x - shift) / scale" if mapped else "x (data)")
    ax[2].scatter(traj[-1, :, 0], traj[-1, :, 1], s=3, c="tab:red", label="z(1)")
    ax[2].legend(loc="upper right", fontsize=7)
    ax[2].set_title("trajectories data -> Gaussian")
    gen = prob.sample(theta, n_gen, seed=seed)
    ax[3].hist2d(gen[:, 0], gen[:, 1], bins=120, range=[[-lim, lim], [-lim, lim]], cmap="viridis")
    ax[3].set_title("generated samples")
    for a in ax:
        a.set_aspect("equal")
        a.set_xlim(-lim, lim)
        a.set_ylim(-lim, lim)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
