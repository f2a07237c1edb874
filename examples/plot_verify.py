"""
Verifying gradients: Taylor, dot-product, order and CasADi
==========================================================

Every derivative in ocp_learn is derived by hand, so every derivative is
checked.  The checks are public (:mod:`ocp_learn.verify`) so that a user who
writes a model can check it the same way:

1. the **Taylor test**: the first-order remainder
   ``E1(eps) = |J(theta + eps v) - J(theta) - eps g.v|`` falls as ``eps^2``
   for the right gradient ``g`` and only as ``eps`` for a wrong one;
2. the **dot-product test**: a tangent map (jvp) and an adjoint map (vjp)
   satisfy ``<J v, w> = <v, J^T w>`` to rounding;
3. the **order of convergence** of a Runge--Kutta tableau (MATH B1);
4. **CasADi**: the same discrete problem rebuilt symbolically, whose automatic
   differentiation is an independent witness of the discrete adjoint (B2).
"""
import matplotlib.pyplot as plt
import numpy as np

from ocp_learn import OCP, LinearHeadLoss, SingleLayerNet, Tikhonov
from ocp_learn.datasets import rings
from ocp_learn.plotting.style import save_figure
from ocp_learn.verify import check_gradient, convergence_order, dot_product_test


class ForgetfulNet(SingleLayerNet):
    """A deliberately wrong model: its vjp drops the factor ``1 - tanh^2``."""

    def vjp(self, z, t, theta, fbar):
        P = self.unpack(theta)
        s = np.tanh(z @ P["K1"].T + P["b1"])       # hidden layer sigma(K1 z + b1)
        abar = fbar @ P["K2"]                      # BUG: should be * (1 - s * s)
        g = np.empty(self.n_params)
        G = self.unpack(g)
        G["K2"][...] = fbar.T @ s
        G["b2"][...] = fbar.sum(axis=0)
        G["K1"][...] = abar.T @ z
        G["b1"][...] = abar.sum(axis=0)
        return abar @ P["K1"], g


x, y = rings(100, seed=0)
x = np.hstack([x, np.zeros((len(x), 1))])


def problem(model):
    return OCP(model, x, LinearHeadLoss(y, 3, "logistic"), T=1.0, nt=6, integrator="rk4",
               time_param=("piecewise_linear", 3), regularizers=[Tikhonov(1e-3)])


good = problem(SingleLayerNet(3, width=8, init_scale=1.0))
bad = problem(ForgetfulNet(3, width=8, init_scale=1.0))
theta = good.init_params(seed=0)

# %%
# 1. Taylor test
# --------------
# :func:`~ocp_learn.verify.check_gradient` draws a random direction and
# prints the remainders and the observed orders; the dropped term is caught.
t_good = check_gradient(good.objective_and_gradient, theta, seed=1)
t_bad = check_gradient(bad.objective_and_gradient, theta, seed=1)
print("hand-derived gradient:\n", t_good, sep="")
print("gradient with a dropped term:\n", t_bad, sep="")

fig, ax = plt.subplots(figsize=(5.5, 4))
ax.loglog(t_good.eps, t_good.e0, "k:", label="E0 (no derivative), slope 1")
ax.loglog(t_good.eps, t_good.e1, "o-", label=f"E1, exact gradient (order {t_good.order:.2f})")
ax.loglog(t_bad.eps, t_bad.e1, "s--", label=f"E1, dropped term (order {t_bad.order:.2f})")
ax.set_xlabel("eps")
ax.set_ylabel("Taylor remainder")
ax.set_title("Taylor test of the discrete gradient")
ax.legend(fontsize=8)
fig.tight_layout()
save_figure(fig, "verify_taylor")

# %%
# 2. Dot-product test
# -------------------
# The model's tangent (jvp) and adjoint (vjp) with respect to state and
# parameters together must be transposes of each other.
model = SingleLayerNet(3, width=8, init_scale=1.0)
p = model.init_params(np.random.default_rng(0))
rng = np.random.default_rng(1)
z = rng.standard_normal((5, 3))
dz, dp, w = rng.standard_normal((5, 3)), rng.standard_normal(p.size), rng.standard_normal((5, 3))
err = dot_product_test(lambda v: model.jvp(z, 0.0, p, v[0], v[1]),
                       lambda u: model.vjp(z, 0.0, p, u), (dz, dp), w)
err_bad = dot_product_test(lambda v: model.jvp(z, 0.0, p, v[0], v[1]),
                           lambda u: ForgetfulNet(3, width=8).vjp(z, 0.0, p, u), (dz, dp), w)
print(f"dot-product mismatch: exact vjp {err:.1e}, forgetful vjp {err_bad:.1e}")

# %%
# 3. Order of the integrators
# ---------------------------
for name in ("euler", "heun", "rk4"):
    order, errors = convergence_order(name)
    print(f"{name:6s} observed order {order:.2f}")

# %%
# 4. CasADi as an independent witness
# -----------------------------------
# :func:`ocp_learn.reference.compare_gradient` rebuilds the same discrete
# objective in CasADi and compares its reverse-mode gradient with ours.
from ocp_learn.reference import compare_gradient  # noqa: E402

small = OCP(SingleLayerNet(3, width=4, init_scale=1.0), x[:20], LinearHeadLoss(y[:20], 3, "logistic"),
            T=1.0, nt=4, integrator="rk4")
c = compare_gradient(small, small.init_params(seed=0))
print(f"CasADi: relative gradient difference {c['rel_diff']:.1e}, "
      f"objective difference {c['value_rel_diff']:.1e}")
