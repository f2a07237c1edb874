"""
Extending ocp_learn: a running cost of your own
===============================================

A running cost ``c(z, t; theta)`` is integrated along the trajectories by the same
Runge--Kutta scheme as the state (MATH B1): :class:`~ocp_learn.OCP` appends one state
column per running cost, so the discrete objective is exactly what the scheme computes and
its exact gradient comes from the same adjoint sweep.  The contract,
:class:`ocp_learn.protocols.RunningCost`, has three methods: ``value`` (one number per
sample), ``jvp`` and ``vjp``.

Here: a soft *confinement* that charges the points for leaving the disk of radius ``R``,

.. math::

    c(z) = \\beta \\, \\mathrm{softplus}(|z|^2 - R^2), \\qquad
    \\frac{\\partial c}{\\partial z} = 2 \\beta \\, \\sigma(|z|^2 - R^2) \\, z,

(``sigma`` the logistic function).  It does not depend on ``theta``, so its parameter
adjoint is zero.
"""
import matplotlib.pyplot as plt
import numpy as np
from scipy.special import expit

from ocp_learn import OCP, LinearHeadLoss, SingleLayerNet, Tikhonov
from ocp_learn.datasets import rings
from ocp_learn.optim import lbfgs
from ocp_learn.plotting.style import label_axes, save_figure
from ocp_learn.verify import check_gradient, dot_product_test


class Confinement:
    """``beta * softplus(|z|^2 - R^2)`` per sample, with hand-derived derivatives."""

    def __init__(self, R=1.5, beta=1.0):
        self.R, self.beta = R, beta

    def _q(self, z):
        return np.sum(z * z, axis=1) - self.R ** 2

    def value(self, z, t, theta):
        return self.beta * np.logaddexp(0.0, self._q(z))

    def jvp(self, z, t, theta, dz, dtheta):
        if dz is None:
            return np.zeros(z.shape[0])
        return 2.0 * self.beta * expit(self._q(z)) * np.sum(z * dz, axis=1)

    def vjp(self, z, t, theta, cbar):
        zbar = (2.0 * self.beta * expit(self._q(z)) * cbar)[:, None] * z
        return zbar, 0.0  # no theta dependence


# %%
# Proofs: dot-product test, Taylor test, CasADi twin
# --------------------------------------------------
cost = Confinement(R=1.5, beta=2.0)
rng = np.random.default_rng(0)
z, dz, cbar = rng.standard_normal((6, 3)), rng.standard_normal((6, 3)), rng.standard_normal(6)
mismatch = dot_product_test(lambda v: cost.jvp(z, 0.0, None, v, None),
                            lambda u: cost.vjp(z, 0.0, None, u)[0], dz, cbar)
print(f"dot-product mismatch: {mismatch:.1e}")
assert mismatch < 1e-13

x, labels = rings(300, seed=0)
x = np.hstack([x, np.zeros((len(x), 1))])


def problem(running, n=None, nt=8):
    return OCP(SingleLayerNet(3, width=8, init_scale=1.0), x[:n],
               LinearHeadLoss(labels[:n], 3, "logistic"), T=2.0, nt=nt, integrator="rk4",
               running=running, regularizers=[Tikhonov(1e-4)])


prob = problem([cost])
theta0 = prob.init_params(seed=0)
ev = prob.evaluate(theta0)
print(f"J = {ev.value:.4f}: terminal {ev.terms['terminal']:.4f}, "
      f"confinement {ev.terms['running'][0]:.4f}")
taylor = check_gradient(prob.objective_and_gradient, theta0, seed=1)
print(taylor)
assert taylor.passed

import casadi as ca  # noqa: E402

from ocp_learn.reference import compare_gradient, register_running  # noqa: E402


@register_running(Confinement)
def _confinement_twin(c, z, t, theta):
    return c.beta * ca.log(1 + ca.exp(ca.sumsqr(z) - c.R ** 2))


small = problem([cost], n=20, nt=3)
report = compare_gradient(small, small.init_params(seed=0))
print(f"CasADi: relative gradient difference {report['rel_diff']:.1e}")
assert report["rel_diff"] < 1e-10

# %%
# A wrong shape is caught when the problem is built
# -------------------------------------------------
# ``value`` must return one number per sample, shape ``(n,)``; a column ``(n, 1)`` is
# refused at construction, with the method and the expected shape in the message.


class ColumnConfinement(Confinement):
    def value(self, z, t, theta):
        return super().value(z, t, theta)[:, None]


try:
    problem([ColumnConfinement()])
except ValueError as err:
    print("ValueError:", err)
else:
    raise AssertionError("a (n, 1) running cost was accepted")

# %%
# Train with and without confinement
# ----------------------------------
# The same classifier, once free and once confined: the confined flow separates the classes
# without sending points far out.
paths = {}
for name, running in (("free", []), ("confined", [Confinement(R=1.5, beta=5.0)])):
    p = problem(running)
    res = lbfgs(p, p.init_params(seed=0), maxiter=60, progress=False)
    paths[name] = p.push_forward(res.x, x[::6], trajectory=True)
    radius = np.max(np.linalg.norm(paths[name][-1], axis=1))
    print(f"{name:9s}: objective {res.fun:.4f}, largest final radius {radius:.2f}")
assert (np.max(np.linalg.norm(paths["confined"][-1], axis=1))
        < np.max(np.linalg.norm(paths["free"][-1], axis=1)))

fig, axes = plt.subplots(1, 2, figsize=(8, 4))
for ax, (name, path) in zip(axes, paths.items()):
    ax.plot(path[:, :, 0], path[:, :, 1], lw=0.5, color="0.6")
    ax.scatter(path[-1, :, 0], path[-1, :, 1], c=labels[::6], s=8, cmap="coolwarm")
    ax.add_patch(plt.Circle((0, 0), 1.5, fill=False, ls="--"))
    label_axes(ax, "x1", "x2", f"{name}: paths, end points colored by class")
    ax.set_aspect("equal")
fig.tight_layout()
save_figure(fig, "extend_running")
