"""
Neural-ODE classification and augmentation (article Figure 1)
=============================================================

A neural ODE ``dz/dt = f(z; theta)`` (MATH A1, A3) moves the input features,
and an affine head ``W z(T) + mu`` separates them (MATH C1).  The flow map of
an ODE is a homeomorphism, so in the plane it cannot pull a disk out of the
ring that encloses it: the un-augmented model (top row) must fail somewhere.
Appending one zero coordinate (*augmentation*, ``q = 1``) lets the flow lift
the disk above the ring, where a plane separates the classes (bottom row).

Each row shows the input features, the propagated features ``z(T)`` with the
learned hyperplane, and the predicted labels on a grid with the test points
(misclassified ones circled).
"""
import numpy as np

from ocp_learn.datasets import rings, train_test_split
from ocp_learn.optim import lbfgs
from ocp_learn.plotting.classification import grid_predictions, plot_classifier_figure
from ocp_learn.problems import NeuralODEClassifier

x, y = rings(800, seed=0)
x_train, y_train, x_test, y_test = train_test_split(x, y, 0.5, seed=0)
lim = 1.1 * float(np.max(np.abs(x)))

# %%
# Train the same model with ``q = 0`` and ``q = 1``: width 8, RK4 with 8 steps
# on ``[0, 1]``, parameters constant in time, a small Tikhonov term.
rows = []
for q in (0, 1):
    prob = NeuralODEClassifier(x_train, y_train, augment=q, width=8, nt=8, integrator="rk4",
                               tikhonov=1e-4)
    res = lbfgs(prob, prob.init_params(seed=0), maxiter=150, progress=False)
    W, mu = prob.terminal.head(prob.unpack(res.x)["terminal"])
    pred = prob.predict(res.x, x_test)
    acc = float(np.mean(pred == y_test))
    print(f"q = {q}: objective {res.fun:.3e} after {res.nit} iterations, test accuracy {acc:.3f}")
    rows.append({"name": "original (q = 0)" if q == 0 else "augmented (q = 1)",
                 "x": x_train, "y": y_train, "z": prob.propagate(res.x, x_train), "W": W, "mu": mu,
                 "grid": grid_predictions(prob, res.x, lim, 81), "x_test": x_test,
                 "y_test": y_test, "pred_test": pred, "test_accuracy": acc})

# %%
# The figure: the first row cannot separate the classes by a line after the
# flow, the second separates them by a plane in three dimensions.
fig = plot_classifier_figure(rows, "classification",
                             title="Figure 1: neural-ODE classifier, without and with augmentation")
