"""
Extending ocp_learn: a terminal cost of your own
================================================

A terminal cost ``G(y(T); p)`` follows :class:`ocp_learn.protocols.TerminalCost`: it
declares the layout of its own parameters ``p``, whether it reads the dynamics parameters
at the final time (``reads_theta_T``), draws initial parameters, and returns a
:class:`~ocp_learn.protocols.TerminalResult` from ``value_and_grad``: the value (mean over
the batch), ``dG/dy(T)``, ``dG/dp`` and, optionally, named parts for reports.

Here: a linear classifier head with the *squared hinge* loss,

.. math::

    G = \\frac1n \\sum_i \\max(0, 1 - s_i r_i)^2, \\qquad r_i = w^\\top z_i(T) + c,
    \\quad s_i \\in \\{-1, +1\\},

whose parameters ``p = (w, c)`` are trained with the dynamics.  Its labels are data per
sample, so it also provides ``take(rows)``
(:class:`~ocp_learn.protocols.PerSampleTerminal`): subsets of the samples (data
parallelism, :meth:`~ocp_learn.OCP.take`) carry their labels along.
"""
import copy

import matplotlib.pyplot as plt
import numpy as np

from ocp_learn import OCP, ParamLayout, SingleLayerNet, TerminalResult, Tikhonov
from ocp_learn.datasets import rings
from ocp_learn.optim import lbfgs
from ocp_learn.plotting.style import label_axes, save_figure
from ocp_learn.verify import check_gradient


class SquaredHingeHead:
    """``mean_i max(0, 1 - s_i (w . z_i + c))^2`` with hand-derived gradients.

    With ``m_i = max(0, 1 - s_i r_i)`` and ``rbar_i = dG/dr_i = -2 s_i m_i / n``:
    ``dG/dz_i = rbar_i w``, ``dG/dw = sum_i rbar_i z_i``, ``dG/dc = sum_i rbar_i``.
    """

    reads_theta_T = False

    def __init__(self, labels, dim):
        self.s = np.where(np.asarray(labels) > 0, 1.0, -1.0)
        self.dim = dim
        self.layout = ParamLayout([("w", (dim,)), ("c", (1,))])

    def init_params(self, rng=None):
        rng = np.random.default_rng(rng)
        return self.layout.pack({"w": rng.standard_normal(self.dim) / np.sqrt(self.dim),
                                 "c": np.zeros(1)})

    def output(self, y, p):
        P = self.layout.unpack(p)
        return y[:, :self.dim] @ P["w"] + P["c"][0]

    def value_and_grad(self, y, p, idx=None, theta_T=None, t_T=None):
        s = self.s if idx is None else self.s[idx]
        n = y.shape[0]
        r = self.output(y, p)
        m = np.maximum(0.0, 1.0 - s * r)
        rbar = -2.0 * s * m / n
        ybar = np.zeros_like(y)
        ybar[:, :self.dim] = rbar[:, None] * self.layout.unpack(p)["w"]
        pbar = self.layout.pack({"w": rbar @ y[:, :self.dim], "c": [rbar.sum()]})
        return TerminalResult(float(np.mean(m * m)), ybar, pbar,
                              terms={"margin_violations": float(np.mean(s * r < 1.0))})

    def take(self, rows):
        part = copy.copy(self)
        part.s = self.s[rows]
        return part


# %%
# Build, prove, train
# -------------------
# The objective's parts come back in :attr:`Evaluation.terms <ocp_learn.ocp.Evaluation>`;
# the Taylor test proves the gradient, including the head's own ``dG/dp``.
x, labels = rings(300, seed=0)
x = np.hstack([x, np.zeros((len(x), 1))])
head = SquaredHingeHead(labels, 3)
prob = OCP(SingleLayerNet(3, width=8), x, head, T=1.0, nt=6, integrator="rk4",
           regularizers=[Tikhonov(1e-4)])
theta0 = prob.init_params(seed=0)
ev = prob.evaluate(theta0)
print(f"J = {ev.value:.4f}, parts: {ev.terms}")

taylor = check_gradient(prob.objective_and_gradient, theta0, seed=1)
print(taylor)
assert taylor.passed

res = lbfgs(prob, theta0, maxiter=80, progress=False)
terms = prob.evaluate(res.x, gradient=False).terms
print(f"trained: J = {res.fun:.4f}, margin violations {terms['margin_violations']:.3f}")
assert res.fun < 0.1 * ev.value

# %%
# An independent witness: a CasADi twin
# -------------------------------------
# A terminal twin has two parts: the per-sample data (here the signs ``s``) and the
# per-sample value; CasADi differentiates it.
import casadi as ca  # noqa: E402

from ocp_learn.reference import compare_gradient, register_terminal, unpack_sym  # noqa: E402


def _signs(cost, idx):
    s = cost.s if idx is None else cost.s[idx]
    return s[:, None]


@register_terminal(SquaredHingeHead, _signs)
def _hinge_twin(cost, y, p, s, **kw):
    P = unpack_sym(cost.layout, p)
    r = ca.dot(P["w"], y[:cost.dim]) + P["c"][0]
    return ca.fmax(0.0, 1.0 - s[0] * r) ** 2


small = OCP(SingleLayerNet(3, width=4), x[:25], SquaredHingeHead(labels[:25], 3), nt=3)
report = compare_gradient(small, small.init_params(seed=2))
print(f"CasADi: relative gradient difference {report['rel_diff']:.1e}")
assert report["rel_diff"] < 1e-10

# %%
# Subsets carry their labels
# --------------------------
# The mean objective of two parts, weighted by their sizes, is the whole objective.
rows = [np.arange(0, 100), np.arange(100, 300)]
J_data = ev.value - ev.terms["regularization"]
J_parts = sum(r.size / 300 * (prob.take(r).evaluate(theta0).value - ev.terms["regularization"])
              for r in rows)
print(f"whole {J_data:.12f}, parts {J_parts:.12f}")
assert abs(J_parts - J_data) < 1e-12 * abs(J_data)

# %%
# The contract is checked
# -----------------------
# ``value_and_grad`` must return a :class:`~ocp_learn.protocols.TerminalResult`; a tuple is
# refused with a message that says so.


class TupleHead(SquaredHingeHead):
    def value_and_grad(self, y, p, idx=None, theta_T=None, t_T=None):
        res = super().value_and_grad(y, p, idx)
        return res.value, res.ybar, res.pbar


bad = OCP(SingleLayerNet(3, width=4), x, TupleHead(labels, 3), nt=2)
try:
    bad.objective(bad.init_params(seed=0))
except TypeError as err:
    print("TypeError:", err)
else:
    raise AssertionError("a tuple was accepted")

# %%
# The decision function after training
g = np.linspace(-2.5, 2.5, 121)
G1, G2 = np.meshgrid(g, g)
grid = np.column_stack([G1.ravel(), G2.ravel(), np.zeros(G1.size)])
r = head.output(prob.push_forward(res.x, grid), prob.unpack(res.x)["terminal"])
fig, ax = plt.subplots(figsize=(4.5, 4))
ax.contourf(G1, G2, r.reshape(G1.shape), levels=[-1e9, 0, 1e9], colors=["#cde", "#edc"])
ax.scatter(x[:, 0], x[:, 1], c=labels, s=6, cmap="coolwarm")
label_axes(ax, "x1", "x2", "squared-hinge head on a neural ODE:\ndecision regions and data")
fig.tight_layout()
save_figure(fig, "extend_terminal")
