"""
Saving a trained problem, loading it, and predicting on new data
================================================================

A trained problem is saved with ``problem.save(path, theta)`` (one ``.npz`` file: the
settings as JSON, ``theta``, the format and package versions; no training data) and read
back with :func:`ocp_learn.problems.load`, here in the same script, in practice in another
process or on another machine.  A loaded problem holds no samples; it pushes new points
forward (:meth:`~ocp_learn.ocp.OCP.push_forward`), predicts, evaluates log-densities and
samples.  For scikit-learn,
:class:`~ocp_learn.problems.estimator.NeuralODEClassifierEstimator` fits in a pipeline.
"""
import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ocp_learn.datasets import rings
from ocp_learn.datasets.toy2d import toy_sample
from ocp_learn.optim import lbfgs
from ocp_learn.plotting.style import label_axes, save_figure
from ocp_learn.problems import ContinuousNormalizingFlow, NeuralODEClassifier, load
from ocp_learn.problems.estimator import NeuralODEClassifierEstimator

folder = tempfile.mkdtemp()

# %%
# A classifier
# ------------
x, y = rings(300, seed=0)
clf = NeuralODEClassifier(x, y, augment=1, width=8, nt=6)
res = lbfgs(clf, clf.init_params(seed=0), maxiter=80, progress=False)
clf.save(os.path.join(folder, "classifier.npz"), res.x)

loaded, theta, info = load(os.path.join(folder, "classifier.npz"))
print(loaded, info)
x_new, y_new = rings(200, seed=1)
same = np.array_equal(loaded.predict_proba(theta, x_new), clf.predict_proba(res.x, x_new))
print(f"test accuracy {loaded.accuracy(theta, x_new, y_new):.3f}; same probabilities: {same}")
assert same and loaded.n_samples == 0

# %%
# A flow
# ------
# The loaded flow evaluates log-densities and draws samples; ``seed=None`` would draw fresh
# ones on every call, a seed makes them reproducible.
data = toy_sample("8gaussians", 400, seed=0)
flow = ContinuousNormalizingFlow(data, width=16, nt=4, scale=2.0)
res_f = lbfgs(flow, flow.init_params(seed=0), maxiter=60, progress=False)
flow.save(os.path.join(folder, "flow.npz"), res_f.x)
flow2, theta_f, _ = load(os.path.join(folder, "flow.npz"))
x_test = toy_sample("8gaussians", 200, seed=1)
print(f"test NLL {flow2.nll(theta_f, x_test):.3f} nats")
assert np.array_equal(flow2.sample(theta_f, 5, seed=3), flow.sample(res_f.x, 5, seed=3))
samples = flow2.sample(theta_f, 1000, seed=4)

# %%
# The scikit-learn estimator
# --------------------------
labels = np.array(["disk", "ring"])[y.astype(int)]
pipe = make_pipeline(StandardScaler(), NeuralODEClassifierEstimator(width=6, nt=4, maxiter=40))
scores = cross_val_score(pipe, x, labels, cv=3)
print(f"3-fold accuracy {scores.mean():.3f} +- {scores.std():.3f}")
assert scores.mean() > 0.9

fig, axes = plt.subplots(1, 2, figsize=(8, 4))
axes[0].scatter(x_new[:, 0], x_new[:, 1], c=loaded.predict(theta, x_new), s=6, cmap="coolwarm")
label_axes(axes[0], "x1", "x2", "loaded classifier: new points,\ncolored by predicted class")
axes[1].scatter(samples[:, 0], samples[:, 1], s=3)
label_axes(axes[1], "x1", "x2", "loaded flow: samples")
for ax in axes:
    ax.set_aspect("equal")
fig.tight_layout()
save_figure(fig, "persistence")
