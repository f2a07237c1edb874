"""Potential mean field games in Lagrangian form (MATH E1--E5, F; the PNAS 2020 framework).

Agents ``x ~ rho_0`` move by the feedback ``v = -grad Phi / a1`` of one
value-function network ``Phi``; densities are tracked along trajectories
(E2), interaction costs are expectations over agents, and the HJB residuals
along trajectories and at ``t = T`` are penalized (E4).  The objective is

    ``J = E[L] + a2 E[F] + a3 E[G] + a4 E[c_HJB] + a5 E[c_HJB,T]``

with ``L = int a1/2 |v|^2 dt`` (so ``H(x, p) = |p|^2 / (2 a1)``), ``G`` the
pointwise KL integrand to ``rho_1`` (or the NLL for normalizing flows).  This
reads the weights ``alpha = (a1..a5)`` of MATH F with ``a1`` inside ``L``
rather than as an outer factor: the HJB residuals are then exactly those of
MATH F, and the objective is the OCP whose optimality conditions they are.
"""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..costs.interactions import EntropyCost, ObstacleCost
from ..datasets.densities import eight_gaussians_mixture, gaussian
from ..errors import as_array, check_choice, check_positive_int, check_rng
from ..ocp import OCP
from ..protocols import Density, Interaction, ScoredDensity, check_protocol
from .persistence import Persistable, register_problem
from .potential_flow import PotentialTerminal, flow_field_class

__all__ = ["PotentialMFG", "mfg_preset", "PRESETS"]


@register_problem("potential_mfg")
class PotentialMFG(Persistable, OCP):
    """A potential MFG as an :class:`~ocp_learn.OCP` over agents.

    Parameters
    ----------
    rho0 : Density
        Initial density with ``dim``, ``sample(n, seed)`` and ``logpdf``
        (:class:`~ocp_learn.protocols.Density`, e.g.
        :class:`~ocp_learn.datasets.densities.GaussianMixture`).
    rho1 : ScoredDensity, optional
        Target density with ``logpdf_and_score`` for ``terminal="kl"``
        (:class:`~ocp_learn.protocols.ScoredDensity`).
    n_samples : int
        Number of agents drawn from ``rho0`` (redrawn by :meth:`resample`).
    interactions : sequence of Interaction
        :class:`~ocp_learn.costs.interactions.ObstacleCost`,
        :class:`~ocp_learn.costs.interactions.EntropyCost`, ...
        (:class:`~ocp_learn.protocols.Interaction`).
    alpha : 5 floats
        ``(a1, a2, a3, a4, a5)`` (see module docstring).
    terminal : {"kl", "nll"}
        The terminal cost: the KL divergence to ``rho1``, or the negative
        log-likelihood of a normalizing flow.
    T : float
        Horizon (1 in all presets).
    nt : int
        Number of time steps.
    integrator : str or ButcherTableau
        The integrator (MATH F: RK4).
    width : int
        Width ``m`` of the potential network (MATH F: 16).
    n_layers : int
        Residual layers of the potential (MATH F: 1).
    rank : int, optional
        Rank of the potential's quadratic term (default ``min(10, d + 1)``).
    backend : {"numpy", "numba", "cupy"}
        Backend of the potential.
    seed : int, Generator or None
        The draws of the agents from ``rho0`` (:meth:`resample` continues the stream);
        ``None``: fresh entropy.
    weight_L : float
        Extra factor on ``E[L]`` (1 for MFGs; ``alpha_L`` for flows, 0 for plain NF).
    """

    def __init__(self, rho0, rho1=None, *, n_samples=1024, interactions=(), alpha=(1, 1, 1, 1, 1),
                 terminal="kl", T=1.0, nt=2, integrator="rk4", width=16, n_layers=1, rank=None,
                 backend="numpy", seed=0, weight_L=1.0):
        from ..models.potential import PotentialResNet

        check_choice("terminal", terminal, {"kl", "nll"})
        check_protocol(rho0, Density, "rho0")
        if rho1 is not None:
            check_protocol(rho1, ScoredDensity, "rho1")
            if rho1.dim != rho0.dim:
                raise ValueError(f"rho1 must have the dimension of rho0 ({rho0.dim}), "
                                 f"got {rho1.dim}")
        interactions = list(interactions)
        for j, F in enumerate(interactions):
            check_protocol(F, Interaction, f"interactions[{j}]")
        alpha = as_array("alpha", alpha, shape=(5,))
        if alpha[0] <= 0 or np.any(alpha < 0):
            raise ValueError(f"alpha must be non-negative with a1 > 0, got {alpha}")
        self.alpha = alpha
        a1, a2, a3, a4, a5 = alpha
        self.rho0, self.rho1 = rho0, rho1
        self.dim = rho0.dim
        self.potential = PotentialResNet(self.dim, width=width, n_layers=n_layers, rank=rank,
                                         backend=backend)
        need_lr0 = terminal == "kl" or any(F.uses_logrho for F in interactions)
        field = flow_field_class(backend)(self.potential, a1=a1, a2=a2, interactions=interactions,
                                   hjb=a4 > 0, log_rho0=rho0.logpdf if need_lr0 else None)
        weights = {"L": weight_L, "F": a2, "G": a3, "R": a4, "RT": a5 if terminal == "kl" else 0.0}
        term = PotentialTerminal(field, terminal, rho1=rho1, weights=weights, a3=a3)
        self._seed = check_rng(seed)
        x0 = rho0.sample(check_positive_int("n_samples", n_samples), self._seed)
        super().__init__(field, x0, term, T=T, nt=nt, integrator=integrator)
        self._settings = dict(
            rho0=rho0, rho1=rho1, n_samples=n_samples, interactions=interactions,
            alpha=self.alpha, terminal=terminal, T=T, nt=nt, integrator=integrator,
            width=width, n_layers=n_layers, rank=rank, backend=backend,
            seed=int(seed) if isinstance(seed, numbers.Integral) else None, weight_L=weight_L)

    @classmethod
    def from_settings(cls, settings: dict) -> PotentialMFG:
        """The game of :attr:`settings`, its agents drawn from ``rho_0`` with the saved seed.

        See :func:`ocp_learn.problems.load`.

        Parameters
        ----------
        settings : dict
            The settings of a game (its :attr:`settings`).

        Returns
        -------
        PotentialMFG
            The game.
        """
        if "preset" in settings:
            return mfg_preset(**settings["preset"])
        s = dict(settings)
        return cls(s.pop("rho0"), s.pop("rho1"), **s)

    def resample(self, n=None, seed=None):
        """Draw a fresh set of agents.

        Parameters
        ----------
        n : int, optional
            Number of agents (the current count by default).
        seed : int or numpy.random.Generator, optional
            The draw (default: continue the game's stream).
        """
        n = self.n_samples if n is None else check_positive_int("n", n)
        self.set_samples(self.rho0.sample(n, self._seed if seed is None else seed))

    def set_samples(self, x):
        """Train on the agents ``x`` from now on.

        Parameters
        ----------
        x : array_like, shape (n, d)
            The agents' initial positions, any ``n``.
        """
        self.x0 = self._samples(x)

    def evaluate_on(self, theta, x):
        """Objective terms on the agents ``x`` (fresh samples for validation).

        ``evaluate(theta, gradient=False, x=x)`` as a dict of the named parts.

        Parameters
        ----------
        theta : ndarray, shape (n_params,)
            The parameters.
        x : array_like, shape (n, d)
            The agents' initial positions.

        Returns
        -------
        dict
            ``objective`` and the terms ``L``, ``F``, ``G``, ``hjb``, ``hjb_terminal``.
        """
        ev = self.evaluate(theta, gradient=False, x=x)
        out = {"objective": ev.value}
        out.update({k: v for k, v in ev.terms.items() if k in ("L", "F", "G", "hjb", "hjb_terminal")})
        return out

    @property
    def point_dim(self) -> int:
        """``d``: agents move in ``R^d`` (the other state columns are ``ell``, ``L``, ...)."""
        return self.dim

    def trajectories(self, theta: np.ndarray, x: Any, nt: int | None = None) -> np.ndarray:
        """Agent paths under the learned feedback.

        :meth:`push_forward` ``(theta, x, nt=nt, trajectory=True)``.

        Parameters
        ----------
        theta : ndarray, shape (n_params,)
            The parameters.
        x : array_like, shape (n, d)
            The agents' initial positions.
        nt : int, optional
            Time steps (the problem's grid by default).

        Returns
        -------
        ndarray, shape (nt + 1, n, d)
            The paths.
        """
        return self.push_forward(theta, x, nt=nt, trajectory=True)

    def sample(self, theta: np.ndarray, n: int, seed: Any = None, nt: int | None = None,
               trajectory: bool = False) -> np.ndarray:
        """Agents drawn from ``rho_0`` and pushed to ``t = T`` by the learned feedback.

        Parameters
        ----------
        theta : ndarray
            The parameters.
        n : int
            Number of agents.
        seed : int, Generator or None
            The draws from ``rho_0``; ``None``: fresh entropy.
        nt : int, optional
            Time steps (the problem's grid by default).
        trajectory : bool
            Return the paths ``(nt + 1, n, d)`` instead of the final positions ``(n, d)``.

        Returns
        -------
        ndarray
            The final positions, or the paths.
        """
        x = self.rho0.sample(check_positive_int("n", n), check_rng(seed))
        return self.push_forward(theta, x, nt=nt, trajectory=trajectory)


def _crowd_means(dim):
    m0, m1 = np.zeros(dim), np.zeros(dim)
    m0[1], m1[1] = 3.0, -3.0
    return m0, m1


def mfg_preset(name, dim=2, stage=1, backend="numpy", seed=0, n_samples=None, nt=None):
    """The problems of article Table 1 with the constants of MATH F.

    Parameters
    ----------
    name : {"ot", "crowd", "crowd-avoid", "nf", "nf-ot"}
        The problem.
    dim : int, optional
        Dimension ``d >= 2``.
    stage : {1, 2}, optional
        Selects the sample count of the two-stage schedule.
    backend : {"numpy", "numba", "cupy"}, optional
        Backend of the potential.
    seed : int, optional
        The draws of the agents.
    n_samples : int, optional
        Number of agents in place of the schedule's.
    nt : int, optional
        Time steps in place of the preset's.

    Returns
    -------
    PotentialMFG
        The game.

    Notes
    -----

    ``"crowd"`` uses the constants of the article and of its released code: the obstacle
    ``Q = 50 N((x1, x2); 0, diag(1, 0.5))`` costs an agent that walks straight through it
    less than a detour would, so the paths pass straight through the obstacle.
    ``"crowd-avoid"`` is the same game with a ten times heavier obstacle
    (``Q = 500 N(...)``), whose optimal paths pass beside it.
    """
    check_choice("name", name, set(PRESETS))
    check_choice("stage", stage, {1, 2})
    dim = check_positive_int("dim", dim)
    p = PRESETS[name]
    samples = p["samples"].get(dim, p["samples"][max(k for k in p["samples"] if k <= max(dim, 2))]) \
        if dim >= 2 else p["samples"][2]
    n = samples[stage - 1] if n_samples is None else n_samples
    if name in ("ot", "nf", "nf-ot"):
        if dim < 2:
            raise ValueError(f"dim must be >= 2 for the eight-Gaussian presets, got {dim}")
        rho0 = eight_gaussians_mixture(dim, 4.0, 0.3)
        rho1 = gaussian(np.zeros(dim), 0.3 if name == "ot" else 1.0)
    else:
        if dim < 2:
            raise ValueError(f"dim must be >= 2 for crowd motion, got {dim}")
        m0, m1 = _crowd_means(dim)
        rho0, rho1 = gaussian(m0, 0.3), gaussian(m1, 0.3)
    interactions = []
    if name in ("crowd", "crowd-avoid"):
        interactions = [ObstacleCost(p["obstacle_scale"]), EntropyCost(0.01)]
    kw = dict(n_samples=n, interactions=interactions, alpha=p["alpha"], nt=nt or p["nt"],
              backend=backend, seed=seed, width=16, n_layers=1)
    if name == "nf":
        prob = PotentialMFG(rho0, None, terminal="nll", weight_L=0.0, **kw)
    elif name == "nf-ot":
        prob = PotentialMFG(rho0, None, terminal="nll", weight_L=p["weight_L"], **kw)
    else:
        prob = PotentialMFG(rho0, rho1, terminal="kl", **kw)
    prob._settings = {"preset": dict(
        name=name, dim=dim, stage=stage, backend=backend, n_samples=n_samples, nt=nt,
        seed=int(seed) if isinstance(seed, numbers.Integral) else None)}
    return prob


_SAMPLES_OT = {2: (1024, 2304), 10: (4096, 6400), 50: (12544, 16384), 100: (25600, 36864)}
_SAMPLES_CROWD = {2: (1024, 2304), 10: (4096, 6400), 50: (6400, 9216), 100: (8464, 12544)}

PRESETS = {
    "ot": {"alpha": (2.0, 1.0, 5.0, 3.0, 3.0), "nt": 2, "samples": _SAMPLES_OT, "iters": (500, 500)},
    "crowd": {"alpha": (1.0, 1.0, 5.0, 20.0, 1.0), "nt": 4, "samples": _SAMPLES_CROWD,
              "iters": (1000, 250), "obstacle_scale": 50.0},
    "crowd-avoid": {"alpha": (1.0, 1.0, 5.0, 20.0, 1.0), "nt": 4, "samples": _SAMPLES_CROWD,
                    "iters": (1000, 250), "obstacle_scale": 500.0},
    "nf": {"alpha": (1.0, 0.0, 1.0, 0.0, 0.0), "nt": 4, "samples": _SAMPLES_OT, "iters": (500, 500)},
    "nf-ot": {"alpha": (1.0, 0.0, 1.0, 5.0, 0.0), "nt": 4, "samples": _SAMPLES_OT,
              "iters": (500, 500), "weight_L": 100.0},
}
