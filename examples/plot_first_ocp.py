"""
A first optimal control problem in ten lines
============================================

The README's example: a single-layer neural ODE (MATH A1, A3) with one
augmented dimension classifies points of a disk inside a ring.  The
:class:`~ocp_learn.OCP` object gives the objective and its exact discrete
gradient (MATH B1, B2); :func:`~ocp_learn.optim.lbfgs` minimizes it.
"""
import numpy as np

from ocp_learn import OCP, SingleLayerNet, LinearHeadLoss, Tikhonov
from ocp_learn.datasets import rings
from ocp_learn.optim import lbfgs
from ocp_learn.plotting.style import save_figure

x, y = rings(400, seed=0)
x = np.hstack([x, np.zeros((len(x), 1))])              # augmentation q = 1
prob = OCP(SingleLayerNet(3, width=8), x, LinearHeadLoss(y, 3, "logistic"),
           T=1.0, nt=8, integrator="rk4", time_param=("piecewise_linear", 3),
           regularizers=[Tikhonov(1e-4)])
res = lbfgs(prob, prob.init_params(seed=0), maxiter=150, progress=False)
print(res.fun, res.nit, res.ledger)

# %%
# The result is a :class:`scipy.optimize.OptimizeResult` with a per-iteration
# history.  The objective falls by orders of magnitude: the gradient is the
# exact gradient of the discrete objective, so L-BFGS's line search never
# stalls on an inconsistent derivative.
import matplotlib.pyplot as plt  # noqa: E402

print(prob)
print("parameters:", {k: v.shape for k, v in prob.unpack(res.x).items()})

fig, ax = plt.subplots(figsize=(5, 3.2))
ax.semilogy(res.history["objective"])
ax.set_xlabel("L-BFGS iteration")
ax.set_ylabel("objective J(theta)")
ax.set_title("a first OCP: training history")
fig.tight_layout()
save_figure(fig, "first_ocp")
