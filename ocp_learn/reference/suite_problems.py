"""The problems of the reference suite (:mod:`.suite`): small OCPs of every family, built
for a given integrator, ``theta(t)`` and memory strategy, and the problems solved by IPOPT.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..costs import KineticEnergy, LinearHeadLoss, QuadraticState, Tikhonov, TimeSmoothness
from ..models import LinearModel, SingleLayerNet
from ..models.controlled_linear import ControlEnergy, ControlledLinearModel
from ..ocp import OCP

__all__ = ["INTEGRATORS", "TIME_PARAMS", "gradient_problems", "optimum_problems"]

INTEGRATORS = ("euler", "heun", "rk4")
TIME_PARAMS = {"constant": None, "piecewise constant": ("piecewise_constant", 2),
               "piecewise linear": ("piecewise_linear", 3)}


def _classifier(integrator, tp, strategy, n=12, d=3, seed=0):
    rng = np.random.default_rng(seed)
    m = SingleLayerNet(d, width=5)
    x = rng.standard_normal((n, d))
    y = rng.integers(0, 3, n)
    return OCP(m, x, LinearHeadLoss(y, d, "softmax"), T=1.3, nt=5, integrator=integrator,
               time_param=tp, running=[KineticEnergy(m, 0.5)],
               regularizers=[Tikhonov(1e-2), TimeSmoothness(1e-2)], strategy=strategy)


def _regression(integrator, tp, strategy, n=12, d=3, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = np.stack([np.sin(x[:, 0]), x[:, 1] * x[:, 2]], 1)
    return OCP(LinearModel(d), x, LinearHeadLoss(y, d, "squares"), T=1.0, nt=5,
               integrator=integrator, time_param=tp, running=[QuadraticState(0.3 * np.eye(d))],
               regularizers=[Tikhonov(1e-2)], strategy=strategy)


def _logistic(integrator, tp, strategy, n=12, d=2, seed=2):
    rng = np.random.default_rng(seed)
    m = SingleLayerNet(d, width=4)
    x = rng.standard_normal((n, d))
    y = (np.sum(x * x, 1) > 1.0).astype(int)
    return OCP(m, x, LinearHeadLoss(y, d, "logistic"), T=1.0, nt=4, integrator=integrator,
               time_param=tp, regularizers=[TimeSmoothness(1e-1)], strategy=strategy)


def _lq(integrator, tp, strategy, n=3, seed=3):
    rng = np.random.default_rng(seed)
    A = np.array([[0.0, 1.0], [-1.0, -0.2]])
    B = np.array([[0.0], [1.0]])
    return OCP(ControlledLinearModel(A, B), rng.standard_normal((n, 2)),
               LinearHeadLoss(np.zeros((n, 2)), 2, "squares", fit_head=False), T=2.0, nt=6,
               integrator=integrator, time_param=tp,
               running=[QuadraticState(np.eye(2)), ControlEnergy(np.eye(1))], strategy=strategy)


def _otflow(integrator, tp, strategy, n=8, d=2, seed=4, backend="numpy"):
    from ..models.potential import PotentialResNet
    from ..problems.potential_flow import PotentialFlowField, PotentialTerminal

    rng = np.random.default_rng(seed)
    pot = PotentialResNet(d, width=5, n_layers=2, backend=backend)
    field = PotentialFlowField(pot, a1=1.0, hjb=True)
    term = PotentialTerminal(field, "nll", weights={"L": 10.0, "G": 1.0, "R": 5.0})
    return OCP(field, rng.standard_normal((n, d)), term, T=1.0, nt=4, integrator=integrator,
               time_param=tp, regularizers=[Tikhonov(1e-2)], strategy=strategy)


def _crowd(integrator, tp, strategy, n=6, d=3, seed=6):
    """Crowd-motion MFG: obstacle and entropy terms, log rho_0, KL terminal with its HJB penalty."""
    from ..problems.mfg import mfg_preset

    p = mfg_preset("crowd", d, n_samples=n, backend="numpy", seed=seed)
    return OCP(p.field, p.x0, p.terminal, T=1.0, nt=p.nt, integrator=integrator, time_param=tp,
               regularizers=[Tikhonov(1e-2)], strategy=strategy)


def _hamiltonian(integrator, tp, strategy, n=12, d=2, seed=5):
    from ..models.hamiltonian import HamiltonianNet

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = (x[:, 0] * x[:, 1] > 0).astype(int)
    return OCP(HamiltonianNet(d), x, LinearHeadLoss(y, 2 * d, "softmax"), T=1.0, nt=5,
               integrator=integrator, time_param=tp, regularizers=[Tikhonov(1e-2)],
               strategy=strategy)


def gradient_problems() -> dict[str, tuple[str, Callable[..., OCP], tuple[str, ...]]]:
    """The problems of the gradient part.

    Returns
    -------
    dict
        ``name -> (model label, builder(integrator, time_param, strategy, n=...),
        integrators)``; the potential-flow and Hamiltonian families where installed.
    """
    probs = {"classifier (softmax, kinetic energy)": ("SingleLayerNet", _classifier, INTEGRATORS),
             "classifier (logistic)": ("SingleLayerNet", _logistic, INTEGRATORS),
             "regression (squares, quadratic state)": ("LinearModel", _regression, INTEGRATORS),
             "linear-quadratic control": ("ControlledLinearModel", _lq, INTEGRATORS)}
    try:
        import ocp_learn.problems.potential_flow
        probs["OT-Flow (NLL, transport, HJB; exact Laplacian)"] = ("PotentialResNet", _otflow,
                                                                   INTEGRATORS)
        probs["crowd-motion MFG (obstacle, entropy, KL, terminal HJB)"] = ("PotentialResNet",
                                                                          _crowd, INTEGRATORS)
    except ImportError:  # pragma: no cover - optional family
        pass
    try:
        import ocp_learn.models.hamiltonian  # noqa: F401
        from ..integrators import INTEGRATORS as _REG
        integ = INTEGRATORS + (("leapfrog",) if "leapfrog" in _REG else ())
        probs["Hamiltonian classifier (A4)"] = ("HamiltonianNet", _hamiltonian, integ)
    except ImportError:  # pragma: no cover - optional family
        pass
    return probs


def optimum_problems() -> dict[str, Callable[[], Any]]:
    """``name -> builder()`` of the problems solved by IPOPT and ocp_learn's optimizers."""
    from ..problems.classification import NeuralODEClassifier
    from .analytic import lq_problem

    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 2))
    y = (np.sum(x ** 2, 1) > 1.2).astype(int)
    flip = rng.random(16) < 0.2
    y[flip] = 1 - y[flip]
    yr = np.sin(x[:, 0]) + 0.5 * x[:, 1]
    A = np.array([[0.0, 1.0], [-1.0, -0.2]])
    B = np.array([[0.0], [1.0]])
    return {
        "LQ control (RK4, 8 steps)": lambda: lq_problem(A, B, np.eye(2), np.eye(1),
                                                        np.array([[1.0, 0.5]]), 2.0, 8),
        "tiny classifier (logistic, m=3, RK4)": lambda: NeuralODEClassifier(
            x, y, loss="logistic", width=3, nt=4, integrator="rk4", tikhonov=1e-2),
        "tiny regression (linear ODE, Heun)": lambda: NeuralODEClassifier(
            x, yr, loss="squares", model=LinearModel(2), nt=4, integrator="heun", tikhonov=1e-2),
    }
