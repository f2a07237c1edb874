"""
Extending ocp_learn: an interaction term of your own (a wall with a door)
=========================================================================

In a potential mean field game (MATH E1--E4) the agents pay interaction costs ``F(rho)``.
In Lagrangian form an interaction term gives, per agent, its integrand ``value(z, logrho)``,
the variational derivative ``drho = dF/drho`` that enters the HJB residual (E4), and the
partial derivatives of both in ``z`` and ``log rho``: the contract
:class:`ocp_learn.protocols.Interaction`.

Here the crowd of the article's crowd-motion problem (MATH F: from ``N((0, 3), 0.3 I)`` to
``N((0, -3), 0.3 I)``) meets a *wall with a door*: a band along ``x2 = 0`` that is expensive
everywhere except near ``x1 = c``,

.. math::

    Q(z) = s \\, e^{-z_2^2 / (2 w^2)} \\big(1 - e^{-(z_1 - c)^2 / (2 \\delta^2)}\\big),
    \\qquad F(\\rho) = \\int Q \\rho \\, dx,

so ``value = drho = Q(z)`` (linear in ``rho``) and the ``z`` partials cover the two leading
coordinates.
"""
import matplotlib.pyplot as plt
import numpy as np

from ocp_learn.costs.interactions import EntropyCost
from ocp_learn.datasets.densities import gaussian
from ocp_learn.optim import lbfgs
from ocp_learn.plotting.style import add_colorbar, label_axes, save_figure
from ocp_learn.problems.mfg import PRESETS, PotentialMFG
from ocp_learn.verify import check_gradient, taylor_test


class WallWithDoor:
    """``Q(z) = s exp(-z2^2 / 2w^2) (1 - exp(-(z1 - c)^2 / 2 delta^2))``, ``F = int Q rho``."""

    uses_logrho = False

    def __init__(self, scale=30.0, width=0.5, door=1.0, door_width=0.5):
        self.s, self.w, self.c, self.delta = scale, width, door, door_width

    def _parts(self, z):
        A = np.exp(-0.5 * z[:, 1] ** 2 / self.w ** 2)
        B = np.exp(-0.5 * (z[:, 0] - self.c) ** 2 / self.delta ** 2)
        return A, B

    def value(self, z, logrho):
        A, B = self._parts(z)
        return self.s * A * (1.0 - B)

    def value_partials(self, z, logrho):
        A, B = self._parts(z)
        dz = np.empty((z.shape[0], 2))
        dz[:, 0] = self.s * A * B * (z[:, 0] - self.c) / self.delta ** 2
        dz[:, 1] = -self.s * (1.0 - B) * A * z[:, 1] / self.w ** 2
        return dz, np.zeros(z.shape[0])

    drho = value                      # F = int Q rho: dF/drho = Q
    drho_partials = value_partials


# %%
# Prove the partials, then the whole objective
# --------------------------------------------
door = WallWithDoor()
rng = np.random.default_rng(0)
z, v = rng.standard_normal((9, 2)), rng.standard_normal((9, 2))
t = taylor_test(lambda y: door.value(y, None), z, v,
                np.sum(door.value_partials(z, None)[0] * v, axis=1))
print(f"Taylor test of dQ/dz: order {t.order:.2f}")
assert t.passed

rho0, rho1 = gaussian([0.0, 3.0], 0.3), gaussian([0.0, -3.0], 0.3)


def game(interactions, n=128):
    return PotentialMFG(rho0, rho1, n_samples=n, interactions=interactions,
                        alpha=PRESETS["crowd"]["alpha"], nt=5, width=16, seed=0)


prob = game([door, EntropyCost(0.01)])
theta0 = prob.init_params(seed=0)
taylor = check_gradient(prob.objective_and_gradient, theta0, seed=1)
print(taylor)
assert taylor.passed

# %%
# A missing method is named when the game is built
# ------------------------------------------------


class ValueOnly:
    uses_logrho = False

    def value(self, z, logrho):
        return np.zeros(z.shape[0])


try:
    game([ValueOnly()], n=8)
except TypeError as err:
    print("TypeError:", err)
else:
    raise AssertionError("an incomplete interaction was accepted")

# %%
# Train, and watch the crowd use the door
# ---------------------------------------
res = lbfgs(prob, theta0, maxiter=100, progress=False)
terms = prob.evaluate_on(res.x, rho0.sample(512, seed=1))
print({k: round(v, 4) for k, v in terms.items()})
paths = prob.sample(res.x, 200, seed=2, nt=32, trajectory=True)
# where does each agent cross the wall's line x2 = 0?
crossed = np.any(paths[..., 1] < 0.0, axis=0)
k = np.argmax(paths[..., 1] < 0.0, axis=0)
x1 = paths[k, np.arange(paths.shape[1]), 0][crossed]
print(f"{crossed.mean():.0%} of the agents cross x2 = 0; median |x1 - door| there: "
      f"{np.median(np.abs(x1 - door.c)):.2f}")
assert crossed.mean() > 0.9 and np.median(np.abs(x1 - door.c)) < 0.4

fig, ax = plt.subplots(figsize=(4.5, 5))
g1, g2 = np.meshgrid(np.linspace(-3, 4, 141), np.linspace(-4.5, 4.5, 181))
Q = door.value(np.column_stack([g1.ravel(), g2.ravel()]), None).reshape(g1.shape)
cs = ax.contourf(g1, g2, Q, levels=12, cmap="Greys")
add_colorbar(fig, cs, ax, "wall cost Q(x)")
ax.plot(paths[..., 0], paths[..., 1], lw=0.4, color="tab:blue", alpha=0.6)
label_axes(ax, "x1", "x2", "a crowd through a door")
ax.set_aspect("equal")
fig.tight_layout()
save_figure(fig, "extend_interaction")
