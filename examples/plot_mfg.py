"""
Potential mean field games in one dimension (article Figure 3)
==============================================================

A mean field game in Lagrangian form (MATH E1--E4): agents ``x ~ rho_0`` move
by the feedback ``v = -grad Phi / a1`` of one value-function network ``Phi(x,
t)`` (MATH D1), their log-density is integrated along the way (E2), and the
objective adds the transport cost ``L``, interaction costs ``F``, the terminal
KL divergence ``G`` to ``rho_1`` and the HJB residual penalties (E4, F).

Two problems of the article's Table 1 share the same densities:

* **optimal transport** (``F = 0``): the trajectories are straight lines;
* **crowd motion** (``F`` = an obstacle cost ``int Q rho`` plus a little
  entropy): an obstacle sits in the middle of the domain.  In one dimension
  the agents cannot pass beside it; they stop short of it instead, trading a
  worse fit of the target near ``x = 0`` (a larger ``G``) for a smaller
  interaction cost ``F``.  (Paths around an obstacle in the plane: the
  ``crowd-avoid`` preset of :func:`~ocp_learn.problems.mfg.mfg_preset`.)

The article does not give the constants of its 1-D illustration; ours are:
``rho_0`` the mixture of ``N(-2, 0.15)`` and ``N(2, 0.15)``, ``rho_1`` the
standard Gaussian ``N(0, 1)``, ``T = 1``, RK4 with 4 steps, 256 agents,
L-BFGS for 150 iterations, the weights ``alpha`` of the 2-D presets (MATH F:
``(2, 1, 5, 3, 3)`` for OT, ``(1, 1, 5, 20, 1)`` for crowd motion), and the
obstacle ``Q(x) = 10 N(x; 0, 0.2)``.
"""
import matplotlib.pyplot as plt
import numpy as np

from ocp_learn.costs.interactions import EntropyCost, ObstacleCost
from ocp_learn.datasets.densities import GaussianMixture, gaussian
from ocp_learn.optim import lbfgs
from ocp_learn.plotting.style import add_colorbar, label_axes, save_figure
from ocp_learn.problems.mfg import PotentialMFG
from ocp_learn.verify import taylor_test


# %%
# An obstacle for one dimension
# -----------------------------
# :class:`~ocp_learn.costs.interactions.ObstacleCost` with one-entry ``center``
# and ``var`` acts on ``x1`` only.  An interaction term gives, per agent, its
# integrand ``value``, the variational derivative ``drho = dF/drho`` that enters
# the HJB residual (E4), and the partial derivatives of both in ``z`` and
# ``log rho``.  For ``F = int Q rho`` both are ``Q(z)``.
obstacle = ObstacleCost(10.0, center=(0.0,), var=(0.2,))

# %%
# A hand-derived derivative is checked before it is used (see
# :doc:`/verifying`): the Taylor remainder of ``Q`` must fall as ``eps^2``.
z = np.linspace(-2, 2, 7)[:, None]
v = np.ones_like(z)
res = taylor_test(lambda y: obstacle.Q(y), z, v, np.sum(obstacle.grad_Q(z) * v, 1))
print(f"Taylor test of dQ/dz: observed order {res.order:.2f}")

# %%
# Train both games
# ----------------
rho0 = GaussianMixture([[-2.0], [2.0]], 0.15)
rho1 = gaussian([0.0], 1.0)
games = {
    "optimal transport (F = 0)": dict(interactions=[], alpha=(2, 1, 5, 3, 3)),
    "crowd motion (obstacle at x = 0)": dict(interactions=[obstacle, EntropyCost(0.01)],
                                             alpha=(1, 1, 5, 20, 1)),
}
x_show = np.linspace(-2.6, 2.6, 27)
x_show = x_show[np.abs(x_show) > 1.3][:, None]          # agents from both bumps
paths = {}
for name, kw in games.items():
    mfg = PotentialMFG(rho0, rho1, n_samples=256, nt=4, integrator="rk4", seed=0, **kw)
    out = lbfgs(mfg, mfg.init_params(seed=0), maxiter=150, progress=False)
    terms = mfg.evaluate_on(out.x, rho0.sample(2000, seed=1))
    print(f"{name}: objective {out.fun:.3f}; validation terms "
          + ", ".join(f"{k} {v:.3f}" for k, v in terms.items()))
    paths[name] = mfg.trajectories(out.x, x_show, nt=16)[..., 0]

# %%
# Figure 3
# --------
# Agent positions ``x(t)`` over time ``t``, for agents started at evenly spaced
# points of both bumps.  Optimal transport (left, no obstacle): the paths run
# from the two bumps toward the center of the standard Gaussian, the innermost
# ones to within 0.2 of ``x = 0`` (they straighten further with more
# iterations).  Crowd motion (right, the obstacle ``Q`` shaded, its scale on the
# colorbar): the paths stop short of the obstacle, none closer than 0.6 to
# ``x = 0``.  The printed terms show the
# trade-off: crowd motion pays a larger terminal KL ``G`` for a small obstacle
# cost ``F``.
t = np.linspace(0, 1, 17)
xs = np.linspace(-3.2, 3.2, 200)
fig, ax = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
for a, (name, p) in zip(ax, paths.items()):
    if "crowd" in name:
        Qg = obstacle.Q(xs[:, None])
        mesh = a.pcolormesh(t, xs, np.tile(Qg[:, None], (1, len(t))), cmap="Greys",
                            shading="auto", vmin=0.0)
        add_colorbar(fig, mesh, a, "obstacle Q(x)")
    a.plot(t, p, color="tab:blue", lw=1)
    label_axes(a, "time t", "agent position x", name)
    a.set_xlim(0, 1)
    a.set_ylim(-3.2, 3.2)
fig.suptitle("Figure 3: 1-D potential mean field games, from a two-bump mixture to N(0, 1)")
fig.tight_layout()
save_figure(fig, "mfg")
