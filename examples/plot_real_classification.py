"""
Neural-ODE classifiers on real data
===================================

Wine (178 samples, 13 features, 3 classes) from scikit-learn, split stratified into
training, validation and test parts and standardized with the training statistics
(:func:`ocp_learn.datasets.real.load_real`, :func:`~ocp_learn.datasets.real.standardize`).
A neural-ODE classifier with augmentation (an L2 penalty on its head's weights,
:class:`~ocp_learn.recipes.real_classification.HeadDecayClassifier`), trained with L-BFGS and with
Gauss--Newton--CG, is compared with logistic regression, an MLP of about the same parameter
count and an RBF SVC; each has its regularization chosen on the validation part
(:func:`ocp_learn.recipes.real_classification.tune_classifier`).

This script runs a *tiny* version (one split, one data set, small grids) so that the gallery
builds in seconds.  The comparison over five splits of the digits, breast cancer and wine
sets is ``benchmarks/bench_real_data.py``, with its results in
``benchmarks/results/real_data_classification.md``.
"""
import matplotlib.pyplot as plt

from ocp_learn.datasets.real import load_real, standardize
from ocp_learn.problems import NeuralODEClassifier
from ocp_learn.recipes.real_classification import mlp_hidden_for, tune_classifier

split, _, _ = standardize(load_real("wine", seed=0))
node = dict(augment=2, width=8, nt=4)
n_node = NeuralODEClassifier(split.x_train, split.y_train, loss="softmax", **node).n_params
hidden = mlp_hidden_for(n_node, split.dim, split.n_classes)
runs = {
    # (Tikhonov weight of the dynamics, L2 weight of the head's weights)
    "neural ODE, L-BFGS": tune_classifier("node_lbfgs", split, ((1e-3, 1e-3), (1e-3, 1e-2)),
                                          node_kwargs=node, maxiter=40, check_every=5),
    "neural ODE, GN-CG": tune_classifier("node_gn", split, ((1e-3, 1e-3), (1e-3, 1e-2)),
                                         node_kwargs=node, maxiter=6, check_every=1),
    "logistic regression": tune_classifier("logreg", split, (0.1, 1.0)),
    f"MLP ({hidden} hidden)": tune_classifier("mlp", split, ((1e-2, 200), (1.0, 200)),
                                              mlp_hidden=hidden),
    "RBF SVC": tune_classifier("svc", split, ((1.0, "scale"), (10.0, "scale"))),
}
for k, r in runs.items():
    print(f"{k:22s} validation {r['val_accuracy']:.3f}  test {r['test_accuracy']:.3f}  "
          f"({r['n_params']} parameters, {r['seconds']:.2f} s)")

# %%
# Test accuracy of each model on this one split.
fig, ax = plt.subplots(figsize=(6, 2.8))
ax.barh(list(runs), [r["test_accuracy"] for r in runs.values()], color="tab:blue")
ax.set_xlim(0.8, 1.0)
ax.set_xlabel("test accuracy (wine, one split)")
fig.tight_layout()
plt.show()
