"""
Extending ocp_learn: a vector field of your own
===============================================

A field is any object with the seven members of :class:`ocp_learn.protocols.Field`:
``state_dim``, ``layout``, ``init_params``, ``initial_state``, ``rhs``, ``jvp`` and
``vjp``.  Here we write one from scratch, the antisymmetric layer

.. math::

    F(y; K, b) = \\tanh\\big((K - K^\\top) y + b\\big),

whose Jacobian in ``y`` has eigenvalues near the imaginary axis (a stable, non-dissipative
flow), derive its tangent (jvp) and adjoint (vjp) by hand, and prove them three ways:
a dot-product test, a Taylor test of the whole training objective, and CasADi's automatic
differentiation of the same discrete computation through a symbolic twin.  A deliberately
wrong vjp shows that each check can fail, and two broken fields show what
:class:`~ocp_learn.OCP` says when a contract is violated.
"""
import matplotlib.pyplot as plt
import numpy as np

from ocp_learn import OCP, LinearHeadLoss, ParamLayout, Tikhonov
from ocp_learn.datasets import rings
from ocp_learn.optim import lbfgs
from ocp_learn.plotting.style import save_figure
from ocp_learn.verify import check_gradient, dot_product_test

# %%
# The field and its derivatives
# -----------------------------
# With samples in rows, ``a = y M^T + b`` where ``M = K - K^T`` and ``F = tanh(a)``.
#
# * tangent: ``da = dy M^T + y dM^T + db`` with ``dM = dK - dK^T``, and
#   ``dF = (1 - F^2) da``;
# * adjoint: ``abar = (1 - F^2) Fbar``, ``ybar = abar M``, ``Mbar = abar^T y`` (summed
#   over samples), ``Kbar = Mbar - Mbar^T``, ``bbar = sum_i abar_i``.


class AntisymmetricLayer:
    """``F(y) = tanh((K - K^T) y + b)`` with hand-derived jvp and vjp."""

    def __init__(self, dim):
        self.state_dim = dim
        self.layout = ParamLayout([("K", (dim, dim)), ("b", (dim,))])

    def init_params(self, rng=None):
        rng = np.random.default_rng(rng)
        return self.layout.pack({"K": rng.standard_normal((self.state_dim,) * 2),
                                 "b": np.zeros(self.state_dim)})

    def initial_state(self, x):
        return x

    def _parts(self, y, theta):
        P = self.layout.unpack(theta)
        M = P["K"] - P["K"].T
        return P, M, np.tanh(y @ M.T + P["b"])

    def rhs(self, y, t, theta):
        return self._parts(y, theta)[2]

    def jvp(self, y, t, theta, dy, dtheta):
        P, M, F = self._parts(y, theta)
        da = np.zeros_like(y)
        if dy is not None:
            da += dy @ M.T
        if dtheta is not None:
            D = self.layout.unpack(dtheta)
            da += y @ (D["K"] - D["K"].T).T + D["b"]
        return (1.0 - F * F) * da

    def vjp(self, y, t, theta, ybar):
        P, M, F = self._parts(y, theta)
        abar = (1.0 - F * F) * ybar
        Mbar = abar.T @ y
        g = self.layout.pack({"K": Mbar - Mbar.T, "b": abar.sum(axis=0)})
        return abar @ M, g


# %%
# Proof 1: the dot-product test
# -----------------------------
# ``<J v, w> = <v, J^T w>`` for the joint map ``(dy, dtheta) -> dF``: rounding level for the
# right pair.
field = AntisymmetricLayer(3)
rng = np.random.default_rng(0)
theta = field.init_params(rng)
y = rng.standard_normal((5, 3))
v = (rng.standard_normal((5, 3)), rng.standard_normal(theta.size))
w = rng.standard_normal((5, 3))
mismatch = dot_product_test(lambda d: field.jvp(y, 0.0, theta, d[0], d[1]),
                            lambda u: field.vjp(y, 0.0, theta, u), v, w)
print(f"dot-product mismatch: {mismatch:.1e}")
assert mismatch < 1e-13

# %%
# Proof 2: the Taylor test of the training objective
# --------------------------------------------------
# Put the field in an :class:`~ocp_learn.OCP` (four RK4 steps, a logistic head, with one
# augmented dimension) and test the exact discrete gradient in a random direction: the
# first-order remainder must fall as ``eps^2``.
x, labels = rings(200, seed=0)
x = np.hstack([x, np.zeros((len(x), 1))])


def problem(f, n=None):
    return OCP(f, x[:n], LinearHeadLoss(labels[:n], 3, "logistic"), T=2.0, nt=4,
               integrator="rk4", regularizers=[Tikhonov(1e-3)])


prob = problem(field)
theta0 = prob.init_params(seed=0)
taylor = check_gradient(prob.objective_and_gradient, theta0, seed=1)
print(taylor)
assert taylor.passed

# %%
# Proof 3: a CasADi twin
# ----------------------
# The reference layer rebuilds the whole discrete objective in CasADi from *symbolic twins*
# registered by type.  The twin of our field states the same function, with no
# derivatives: CasADi's reverse mode supplies them, an independent witness of ours.
import casadi as ca  # noqa: E402

from ocp_learn.reference import compare_gradient, register_rhs, unpack_sym  # noqa: E402


@register_rhs(AntisymmetricLayer)
def _antisymmetric_twin(f, y, t, theta):
    P = unpack_sym(f.layout, theta)
    return ca.tanh(ca.mtimes(P["K"] - P["K"].T, y) + P["b"])


small = problem(field, n=30)
report = compare_gradient(small, small.init_params(seed=0))
print(f"CasADi: relative gradient difference {report['rel_diff']:.1e}")
assert report["rel_diff"] < 1e-10

# %%
# A negative control: a wrong vjp is caught
# -----------------------------------------
# Forgetting the antisymmetrization in the adjoint (``Kbar = Mbar``) is a typical slip.
# Each check flags it.


class ForgetfulLayer(AntisymmetricLayer):
    def vjp(self, y, t, theta, ybar):
        P, M, F = self._parts(y, theta)
        abar = (1.0 - F * F) * ybar
        g = self.layout.pack({"K": abar.T @ y, "b": abar.sum(axis=0)})  # BUG
        return abar @ M, g


bad = ForgetfulLayer(3)
bad_mismatch = dot_product_test(lambda d: bad.jvp(y, 0.0, theta, d[0], d[1]),
                                lambda u: bad.vjp(y, 0.0, theta, u), v, w)
bad_taylor = check_gradient(problem(bad).objective_and_gradient, theta0, seed=1)
bad_report = compare_gradient(problem(bad, n=30), small.init_params(seed=0))
print(f"wrong vjp: dot-product mismatch {bad_mismatch:.1e}, Taylor order "
      f"{bad_taylor.order:.2f}, CasADi difference {bad_report['rel_diff']:.1e}")
assert bad_mismatch > 1e-3 and not bad_taylor.passed and bad_report["rel_diff"] > 1e-3

# %%
# Contracts are checked when the problem is built
# -----------------------------------------------
# A field that lacks a member, or whose ``vjp`` returns a parameter gradient of the wrong
# shape, is refused by :class:`~ocp_learn.OCP` with a message that names the method and the
# expected shape (one evaluation on one sample row), not deep inside a sweep.


class MatrixGradient(AntisymmetricLayer):
    def vjp(self, y, t, theta, ybar):
        ybar_y, g = super().vjp(y, t, theta, ybar)
        return ybar_y, self.layout.unpack(g)["K"]  # a (3, 3) block, not the flat vector


class NoAdjointField:
    state_dim = 3
    layout = ParamLayout([("K", (3, 3))])

    def init_params(self, rng=None):
        return np.zeros(9)

    def initial_state(self, x):
        return x

    def rhs(self, y, t, theta):
        return y

    def jvp(self, y, t, theta, dy, dtheta):
        return dy


for broken in (NoAdjointField(), MatrixGradient(3)):
    try:
        problem(broken)
    except (TypeError, ValueError) as err:
        print(f"{type(broken).__name__}: {type(err).__name__}: {err}")
    else:
        raise AssertionError("a broken field was accepted")

# %%
# Train it
# --------
# The field is now an ordinary citizen: L-BFGS trains it like any built-in model.
res = lbfgs(prob, theta0, maxiter=60, progress=False)
pred = prob.terminal.predict(prob.final_state(res.x), prob.unpack(res.x)["terminal"])
acc = np.mean(pred == labels)
print(f"objective {res.fun:.4f}, training accuracy {acc:.3f}")
assert res.fun < prob.objective(theta0)

fig, ax = plt.subplots(figsize=(5.5, 4))
ax.loglog(taylor.eps, taylor.e1, "o-", label=f"hand-derived vjp (order {taylor.order:.2f})")
ax.loglog(bad_taylor.eps, bad_taylor.e1, "s--",
          label=f"forgetful vjp (order {bad_taylor.order:.2f})")
ax.set_xlabel("eps")
ax.set_ylabel("Taylor remainder E1")
ax.set_title("a field of your own: Taylor test")
ax.legend(fontsize=8)
fig.tight_layout()
save_figure(fig, "extend_field")
