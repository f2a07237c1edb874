"""Training schedule of the PNAS 2020 MFG experiments (MATH F) and Gaussian closed forms.

Samples are redrawn every ``resample_every`` iterations (the optimizer restarts
on the new sample), in stages with growing sample counts (warm-started), and the
iterate with the best objective on a fixed validation sample is kept.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

__all__ = ["train_mfg", "gaussian_mfg_optimum"]


def train_mfg(prob, theta0=None, *, stages=((1024, 100),), resample_every=25, n_val=None,
              optimizer="lbfgs", seed=0, progress=False, callback=None, checkpoint=None,
              resume=False, keep_pairs=False):
    """Staged training with resampling and validation-based model selection
    (:func:`ocp_learn.optim.lbfgs_resampled` with the agents drawn from ``rho_0``).

    Under ``mpiexec -n K`` every rank draws the same agents (same seed) and each
    L-BFGS run is sharded over the ranks (:func:`ocp_learn.distributed.minimize`).

    Parameters
    ----------
    prob : PotentialMFG
    stages : sequence of (n_samples, iterations)
        The sample schedule (MATH F: two stages, more samples in the second).
    resample_every : int
        Iterations between redraws of the agents.
    n_val : int, optional
        Validation agents (fixed, drawn once; default: the first stage's count).
    optimizer : {"lbfgs"}
    checkpoint, resume, keep_pairs
        As for :func:`ocp_learn.optim.lbfgs_resampled` (``keep_pairs``: L-BFGS keeps its
        correction pairs across redraws instead of restarting on every draw).

    Returns
    -------
    dict with ``theta`` (best on validation), ``history`` (per chunk:
    iteration, stage, train objective, validation objective, seconds),
    ``iterations``, ``seconds``.
    """
    from ..optim.resampled import lbfgs_resampled

    if optimizer != "lbfgs":
        raise ValueError(f"optimizer must be 'lbfgs' for the MFG (no Gauss-Newton structure), got {optimizer!r}")
    return lbfgs_resampled(prob, prob.rho0.sample, theta0, stages=stages,
                           resample_every=resample_every, n_val=n_val, seed=seed,
                           progress=progress, callback=callback, checkpoint=checkpoint,
                           resume=resume, keep_pairs=keep_pairs)


def gaussian_mfg_optimum(m0, s0, m1, s1, a1=1.0, a3=1.0, T=1.0):
    """Closed-form optimum of the Gaussian OT-MFG with a soft KL terminal cost.

    For ``rho_0 = N(m0, s0 I)``, ``rho_1 = N(m1, s1 I)`` in ``d`` dimensions,
    ``F = 0``, ``J = E int a1/2 |v|^2 dt + a3 KL(rho(T) || rho_1)``, the optimal
    flow is the affine displacement interpolation to ``N(mT, sT I)`` with
    kinetic cost ``a1/(2T) (|mT - m0|^2 + d (sqrt(sT) - sqrt(s0))^2)``.
    Stationarity in ``mT`` gives ``mT = (a1 m0 / T + a3 m1 / s1) / (a1 / T + a3 / s1)``;
    ``sT`` minimizes a scalar function (solved by ``scipy.optimize.minimize_scalar``).

    Returns
    -------
    dict with ``J``, ``L``, ``G`` (the KL), ``mT``, ``sT``.
    """
    m0, m1 = np.atleast_1d(np.asarray(m0, float)), np.atleast_1d(np.asarray(m1, float))
    d = m0.size
    mT = (a1 * m0 / T + a3 * m1 / s1) / (a1 / T + a3 / s1)

    def parts(sT):
        L = a1 / (2 * T) * (np.sum((mT - m0) ** 2) + d * (np.sqrt(sT) - np.sqrt(s0)) ** 2)
        G = 0.5 * (d * sT / s1 + np.sum((m1 - mT) ** 2) / s1 - d + d * np.log(s1 / sT))
        return L, G

    r = minimize_scalar(lambda u: sum(w * p for w, p in zip((1.0, a3), parts(np.exp(u)))),
                        bracket=(np.log(min(s0, s1)), np.log(max(s0, s1)) + 1e-3), tol=1e-12)
    sT = float(np.exp(r.x))
    L, G = parts(sT)
    return {"J": float(L + a3 * G), "L": float(L), "G": float(G), "mT": mT, "sT": sT}
