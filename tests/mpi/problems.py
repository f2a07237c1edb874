"""Small problems shared by the serial and the MPI tests of ocp_learn.distributed."""
import numpy as np

from ocp_learn.problems.classification import NeuralODEClassifier
from ocp_learn.problems.cnf import ContinuousNormalizingFlow
from ocp_learn.problems.mfg import mfg_preset


def classifier(n=61, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2))
    y = (np.sum(x * x, axis=1) > 1.2).astype(int) + (x[:, 0] > 0.8)
    return NeuralODEClassifier(x, y, augment=1, loss="softmax", width=5, nt=3, tikhonov=1e-2,
                               smoothness=1e-2, time_param=("piecewise_linear", 2))


def cnf(n=40, seed=0, trace="exact"):
    x = np.random.default_rng(seed).standard_normal((n, 2)) * [1.0, 0.5]
    return ContinuousNormalizingFlow(x, width=6, nt=2, trace=trace, seed=seed)


def mfg(name="crowd", n=40, seed=0):
    return mfg_preset(name, dim=2, n_samples=n, seed=seed, nt=2)


PROBLEMS = {"classifier": classifier, "cnf": cnf, "mfg-crowd": lambda: mfg("crowd"),
            "mfg-ot": lambda: mfg("ot")}


def point(prob, seed=1, scale=0.3):
    rng = np.random.default_rng(seed)
    return prob.init_params(0) + scale * rng.standard_normal(prob.n_params)


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))
