"""
Density of handwritten digits: OT-Flow against classical estimators
===================================================================

The 8 x 8 digits of scikit-learn (pixel values 0..16) are dequantized, ``x + u`` with
``u ~ U[0, 1)``, mapped by ``logit(alpha + (1 - 2 alpha) x / 17)`` and whitened with the
training split's mean and covariance, giving ``y``; every model is fitted to ``y`` and
scored by the density of the dequantized digits in the original pixel
scale, ``log p_x(x) = log p_y(y) + log |det dy/dx|``
(:func:`ocp_learn.datasets.real.digits_density_data`).  A full-covariance Gaussian and a
kernel density estimate (bandwidth chosen on the validation split) are compared with OT-Flow
(:class:`~ocp_learn.problems.cnf.ContinuousNormalizingFlow`) trained with L-BFGS.

This script runs a *tiny* version so that the gallery builds in seconds: 300 training
images, a width-8 potential and 15 L-BFGS iterations, and a reduced grid for the kernel
density estimate; its numbers are not the benchmark's.  The full comparison (the whole
training split, a Gaussian mixture, the 4 times finer time-grid check, standard errors) is
``benchmarks/bench_real_data.py``, with its results in
``benchmarks/results/real_data_density.md``.
"""
import matplotlib.pyplot as plt
import numpy as np

from ocp_learn.datasets.real import bits_per_dim
from ocp_learn.recipes.real_data import (DensityData, density_baselines, digits_density_data,
                                         flow_log_density, train_digits_flow)

full = digits_density_data(seed=0, alpha=0.01)
n = 300  # tiny: a subset of the training split
data = DensityData(full.y_train[:n], full.y_val, full.y_test, full.log_det_train[:n],
                   full.log_det_val, full.log_det_test, full.preprocessing, full.labels_test)

base = density_baselines(data, components=(1,), covariance_types=("full",), reg_covars=(0.1,),
                         bandwidths=(0.6, 0.8, 1.0))
prob, theta, info = train_digits_flow(data, width=8, nt=4, maxiter=15, backend="numpy",
                                      val_every=5)
nll = {"Gaussian": -np.mean(base["gaussian"]["log_density_test"]),
       "KDE": -np.mean(base["kde"]["log_density_test"]),
       "OT-Flow (15 iterations)": -np.mean(flow_log_density(prob, theta, data.y_test,
                                                            data.log_det_test))}
for k, v in nll.items():
    print(f"{k:26s} test NLL {v:8.2f} nats  ({bits_per_dim(v, 64):.3f} bits/dim)")
print(f"OT-Flow: {info['iterations']} iterations, {info['seconds']:.1f} s")

# %%
# Test digits and samples of the (briefly trained) flow, mapped back to pixels.
gen = np.clip(data.to_pixels(prob.sample(theta, 8, seed=0)), 0, 17)
real = np.clip(data.to_pixels(data.y_test[:8]), 0, 17)
fig, axes = plt.subplots(2, 8, figsize=(8, 2.3))
for i in range(8):
    for row, imgs in enumerate((real, gen)):
        axes[row, i].imshow(imgs[i].reshape(8, 8), cmap="gray_r", vmin=0, vmax=17)
        axes[row, i].set_axis_off()
axes[0, 0].set_title("test digits", loc="left", fontsize=9)
axes[1, 0].set_title("OT-Flow samples (tiny run)", loc="left", fontsize=9)
fig.tight_layout()
plt.show()
