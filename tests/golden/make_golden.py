"""Write ``golden.npz``: objective and gradient of the CNF, MFG and classifier presets.

Run once on a reference commit (``python tests/golden/make_golden.py``); the test
``tests/test_golden.py`` then checks that later code reproduces every value to 1e-14
(relative, max-norm).  The problems are built through the public API only, so the same
script serves code whose internals differ.
"""
from __future__ import annotations

import pathlib
import subprocess

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent


def cases():
    """``{name: (problem, theta)}``: small presets of the three families (numpy and numba
    backends; float64 and one float32 case)."""
    from ocp_learn.datasets import rings
    from ocp_learn.models import SingleLayerNet
    from ocp_learn.problems import NeuralODEClassifier, ViscousClassifier
    from ocp_learn.problems.cnf import ContinuousNormalizingFlow
    from ocp_learn.problems.mfg import mfg_preset

    rng = np.random.default_rng(1234)
    out = {}
    x = rng.standard_normal((48, 2)) * np.array([1.5, 0.7]) + 0.3
    for trace in ("exact", "hutchinson"):
        for M in (1, 2):
            p = ContinuousNormalizingFlow(x, width=8, n_layers=M, nt=4, trace=trace,
                                          n_probes=2, seed=3, alpha_L=0.1, alpha_R=0.2)
            out[f"cnf_{trace}_M{M}"] = p
    p = ContinuousNormalizingFlow(rng.standard_normal((32, 5)), width=6, nt=3, integrator="heun",
                                  strategy="checkpoint", shift=np.full(5, 0.2), scale=0.8)
    out["cnf_d5_heun_checkpoint_inputmap"] = p
    for name, dim in (("crowd", 2), ("crowd", 10), ("ot", 2), ("nf-ot", 3)):
        out[f"mfg_{name}_d{dim}"] = mfg_preset(name, dim=dim, n_samples=40, seed=5)
    xr, yr = rings(60, seed=0)
    out["classifier_rings_logistic"] = NeuralODEClassifier(
        xr, yr, augment=1, width=8, nt=4, time_param=("piecewise_linear", 3), smoothness=1e-3)
    xs = rng.standard_normal((30, 3))
    ys = rng.integers(0, 3, 30)
    out["classifier_softmax_euler"] = NeuralODEClassifier(xs, ys, loss="softmax", width=5, nt=5,
                                                          integrator="euler")
    out["classifier_viscous"] = ViscousClassifier(xr[:20], yr[:20], augment=1, width=6, nt=4,
                                                  nu=0.1, n_paths=2, noise_seed=2)
    for M in (1, 2):
        out[f"cnf_exact_M{M}_numba"] = ContinuousNormalizingFlow(
            x, width=8, n_layers=M, nt=4, alpha_L=0.1, alpha_R=0.2, backend="numba")
    out["cnf_hutchinson_M1_numba"] = ContinuousNormalizingFlow(
        x, width=8, nt=4, trace="hutchinson", n_probes=2, seed=3, backend="numba")
    out["cnf_exact_float32_numba"] = ContinuousNormalizingFlow(x, width=8, nt=4, backend="numba",
                                                               dtype=np.float32)
    out["mfg_crowd_d10_numba"] = mfg_preset("crowd", dim=10, n_samples=40, seed=5, backend="numba")
    out["classifier_rings_numba"] = NeuralODEClassifier(
        xr, yr, augment=1, nt=4, model=SingleLayerNet(3, width=8, backend="numba"))
    res = {}
    for k, p in out.items():
        theta = p.init_params(seed=7)
        theta = theta + 0.05 * np.random.default_rng(11).standard_normal(theta.shape)
        res[k] = (p, theta)
    return res


def main():
    arrays = {}
    for k, (p, theta) in cases().items():
        J, g = p.objective_and_gradient(theta)
        arrays[k + "/theta"] = theta
        arrays[k + "/J"] = np.array(J)
        arrays[k + "/grad"] = g
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                            cwd=HERE).stdout.strip()
    arrays["_commit"] = np.array(commit)
    np.savez(HERE / "golden.npz", **arrays)
    print(f"wrote {len(arrays) // 3} cases from {commit}")


if __name__ == "__main__":
    main()
