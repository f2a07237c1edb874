"""The potential flow shared by normalizing flows and mean field games (MATH D4, E2--E4, F).

One value-function network ``Phi(x, t; theta)`` moves every agent (sample) by the
feedback control ``v = -grad_p H(x, grad Phi) = -grad Phi / a1`` for the
quadratic Hamiltonian ``H(x, p) = |p|^2 / (2 a1)``.  The augmented state of
an agent is

    ``y = [z (d), ell, L, F_1..F_k, R, logrho0]``  (``R`` and ``logrho0`` when used)

with ``dz/dt = v``, ``d ell/dt = div v = -lap Phi / a1`` (so
``log rho(z(t), t) = log rho_0(x) - ell(t)``, E2), ``dL/dt = a1/2 |v|^2``,
``dF_j/dt`` the interaction integrands and
``dR/dt = | -d_t Phi + |grad Phi|^2 / (2 a1) - a2 sum_j dF_j/drho |`` (the HJB
residual in L1, E4).  The CNF of MATH D4 is the case ``a1 = 1``, no
interactions.  All derivatives are the hand-derived ones of the potential
model (D2, D3, D6) chained by hand here.

Fused stages: when the potential's backend declares ``fused_flow``
(:class:`~ocp_learn.kernels.potential_backend.FusedFlowBackend`; the ``numba`` backend),
:meth:`PotentialFlowField.rhs_tape` and :meth:`PotentialFlowField.vjp` hand the whole
stage to it -- the same formulas, one forward pass per sample instead of two in the vjp
(``derivatives`` then ``derivatives_vjp``):

  ``grad_bar = -ybar_z / a1 + (ybar_L + w) / a1 grad Phi``, ``dt_bar = -w``,
  ``lap_bar = -ybar_ell / a1``, ``w = ybar_R sign(res)``,
  ``res = -d_t Phi + |grad Phi|^2 / (2 a1) - a2 sum_j dF_j/drho``.

The interaction terms ``F_j`` stay in NumPy: the field forms their HJB term
``extra = -a2 sum_j dF_j/drho`` before the backend call, and adds their own partials
after it, exactly as the generic code does.
"""
from __future__ import annotations

import copy
from types import ModuleType
from typing import Any

import numpy as np

from ..arrays import namespace
from ..errors import NonFiniteError, check_positive_float
from ..protocols import Interaction, check_protocol
from .base import Model

__all__ = ["PotentialFlowField", "flow_field_class"]


class PotentialFlowField(Model):
    """Field of the augmented agent state (see module docstring).

    Parameters
    ----------
    potential : PotentialResNet
        ``Phi(x, t; theta)`` with ``derivatives``, ``derivatives_vjp``, ``derivatives_jvp``.
    a1 : float
        Weight of the kinetic energy: ``L(x, v) = a1/2 |v|^2``, ``v = -grad Phi / a1``.
    a2 : float
        Weight of the interaction terms in the HJB residual.
    interactions : sequence
        :mod:`ocp_learn.costs.interactions` terms.
    hjb : bool
        Integrate the HJB residual column ``R``.
    log_rho0 : callable, optional
        ``log rho_0(x)``; needed (and then stored as a constant column) when an
        interaction uses ``log rho`` or the terminal cost is a KL divergence.
    fused : bool, optional
        Run the stages through the potential backend's fused flow kernels (module
        docstring).  ``None``: whenever the backend offers them (``fused_flow``);
        ``False``: always the generic code (``derivatives`` then ``derivatives_vjp``).
    """

    def __init__(self, potential: Any, a1: float = 1.0, a2: float = 1.0,
                 interactions: Any = (), hjb: bool = True, log_rho0: Any = None,
                 fused: bool | None = None) -> None:
        self.potential = potential
        offered = bool(potential.backend.fused_flow)
        if fused and not offered:
            raise ValueError(f"fused=True needs a potential backend with fused flow kernels; "
                             f"backend {potential.backend.name!r} has none")
        self.fused = offered if fused is None else bool(fused)
        self.a1 = check_positive_float("a1", a1)
        self.a2 = check_positive_float("a2", a2, allow_zero=True)
        self.interactions = [check_protocol(F, Interaction, f"interactions[{j}]")
                             for j, F in enumerate(interactions)]
        self.hjb = bool(hjb)
        self.log_rho0 = log_rho0
        d = self.dim = potential.dim
        self.layout = potential.layout
        self.c_ell, self.c_L = d, d + 1
        self.c_F = list(range(d + 2, d + 2 + len(self.interactions)))
        c = d + 2 + len(self.interactions)
        self.c_R = c if self.hjb else None
        c += int(self.hjb)
        self.c_lr0 = c if log_rho0 is not None else None
        c += int(log_rho0 is not None)
        self.state_dim = c
        if any(F.uses_logrho for F in self.interactions) and log_rho0 is None:
            raise ValueError("log_rho0 is required when an interaction term uses log rho")
        self.probes = None  # Hutchinson probes: :meth:`with_probes`

    def with_probes(self, probes: Any) -> PotentialFlowField:
        """A shallow copy of this field whose Hutchinson probes are ``probes``.

        The copy shares the potential, the interaction terms and every other attribute
        with this field; only its ``probes`` differ.  This field is left unchanged.

        Parameters
        ----------
        probes : ndarray, shape (k, n, d) or (n, d), or None
            The probe vectors of the Hutchinson trace estimate for the ``n`` samples the
            field will be evaluated at (:meth:`.PotentialResNet.sample_probes`); ``None``
            for a potential with the exact trace.  They are checked when the field is
            evaluated.

        Returns
        -------
        PotentialFlowField
            Of the same class as this field.
        """
        field = copy.copy(self)
        field.probes = probes
        return field

    @property
    def array_namespace(self) -> ModuleType:
        """The potential's array namespace (:attr:`.PotentialResNet.array_namespace`)."""
        return self.potential.array_namespace

    def init_params(self, rng: Any = None) -> np.ndarray:
        return self.potential.init_params(rng)

    def initial_state(self, x: Any) -> Any:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (n, {self.dim}), got {tuple(x.shape)}")
        xp = namespace(x)
        y = xp.zeros((x.shape[0], self.state_dim), dtype=xp.float64)
        y[:, :self.dim] = x
        if self.c_lr0 is not None:
            y[:, self.c_lr0] = self.log_rho0(x)
        return y

    def _logrho(self, y):
        if self.c_lr0 is None:
            return None
        return y[:, self.c_lr0] - y[:, self.c_ell]

    def rhs(self, y: np.ndarray, t: Any, theta: np.ndarray) -> np.ndarray:
        return self.rhs_tape(y, t, theta, keep=False)[0]

    def _derivatives(self, y, t, theta):
        """The potential's derivatives at the agents' states (D2, D3): checked on NumPy, the
        unchecked stage call on a device namespace."""
        if namespace(y) is np or np.ndim(t) != 0:
            return self.potential.derivatives(y[:, :self.dim], t, theta, probes=self.probes)
        return self.potential.stage_derivatives(y[:, :self.dim], t, theta, self.probes)

    def rhs_tape(self, y: np.ndarray, t: Any, theta: np.ndarray,
                 keep: bool = True) -> tuple[np.ndarray, Any]:
        """``(rhs, aux)``: the right-hand side and residuals that :meth:`vjp` may reuse.

        ``aux`` are the values :meth:`vjp` at the same ``(y, t, theta)`` may reuse
        instead of recomputing the forward pass (the fused backend's, on the Gram path
        of the exact trace; on a device namespace the potential's derivatives ``(Phi,
        grad Phi, d_t Phi, lap Phi)`` at the stage, so that the vjp runs the network's
        forward pass once instead of twice; else ``None``).

        Parameters
        ----------
        y : ndarray, shape (n, D)
            The augmented states of the agents.
        t : float or ndarray
            The time.
        theta : ndarray, shape (n_params,)
            The parameters.
        keep : bool, optional
            Whether to return the residuals.

        Returns
        -------
        rhs : ndarray, shape (n, D)
            The right-hand side.
        aux : object or None
            The residuals.

        Raises
        ------
        NonFiniteError
            If a stage's agent states are not finite (an earlier stage overflowed); on the
            generic path the message names the stage time ``t``, on the fused path the
            sweep names the step.
        """
        if not self.fused or np.ndim(t) != 0:
            # the generic code checks its inputs: name an overflow as one (the fused kernels
            # propagate it, and the sweep names the step)
            xp = namespace(y)
            # on a device the sweep's check per step names an overflow (no wait per stage)
            if xp is np and not bool(xp.all(xp.isfinite(y[:, :self.dim]))):
                when = f"t = {float(t):.6g}" if np.ndim(t) == 0 else "the stage times given"
                raise NonFiniteError(f"ODE solution overflowed inside a step: the agents' states "
                                     f"at the stage {when} are not finite; reduce the step size "
                                     f"or the parameter scale")
            out, D = self._rhs(y, t, theta)
            return out, (D if keep and xp is not np else None)
        d, n = self.dim, y.shape[0]
        W = self.potential.directions(self.probes, n)
        out = np.empty_like(y)  # the backend writes the columns :d+2 and c_R
        out[:, d + 2:] = 0.0
        z, lr, extra, dF = self._interactions(y)
        aux = self.potential.backend.flow_rhs(self.potential.unpack(theta), y[:, :d], t, W,
                                              self.potential.h, self.a1, self._c_R(), extra,
                                              out, keep)
        for F, c, v in zip(self.interactions, self.c_F, dF):
            out[:, c] = v if v is not None and F.drho == F.value else F.value(z, lr)
        return out, aux

    def aux_floats(self, n: int) -> int:
        """Floats of :meth:`rhs_tape`'s residuals for ``n`` samples.

        Parameters
        ----------
        n : int
            Number of samples.

        Returns
        -------
        int
            The number of floats.
        """
        if not self.fused:  # a device keeps the derivatives (n x (d + 3)); NumPy nothing
            return 0 if self.array_namespace is np else n * (self.dim + 3)
        pot = self.potential
        return int(pot.backend.flow_aux_floats(n, self.dim, pot.width, pot.n_layers, pot.rank,
                                               pot.trace == "exact"))

    def _c_R(self):
        return -1 if self.c_R is None else int(self.c_R)

    def _interactions(self, y, extra=None):
        """``(z, log rho, extra, dF)``: ``extra = -a2 sum_j dF_j/drho`` (n,), the interaction
        part of the HJB residual (E4), formed as :meth:`_rhs` does (zeros without
        interaction terms), and the terms' ``dF_j/drho`` (``None`` where not formed); a
        given ``extra`` (a residual of :meth:`rhs_tape`) is returned as it is."""
        z = y[:, :self.dim]
        lr = self._logrho(y)
        none = [None] * len(self.interactions)
        if extra is not None:
            return z, lr, extra, none
        if not (self.interactions and self.hjb):
            return z, lr, np.zeros(y.shape[0]), none
        dF = [F.drho(z, lr) for F in self.interactions]
        return z, lr, np.ascontiguousarray(-(self.a2 * sum(dF, 0.0)), dtype=np.float64), dF

    def _rhs(self, y, t, theta):
        """The generic right-hand side (module docstring)."""
        d, a1 = self.dim, self.a1
        xp = namespace(y)
        z = y[:, :d]
        D = self._derivatives(y, t, theta)
        g = D.grad
        gg = xp.sum(g * g, axis=1)
        out = xp.zeros_like(y)
        out[:, :d] = -g / a1
        out[:, self.c_ell] = -D.lap / a1
        out[:, self.c_L] = gg / (2 * a1)
        lr = self._logrho(y)
        dF = 0.0
        for F, c in zip(self.interactions, self.c_F):
            out[:, c] = F.value(z, lr)
            dF = dF + F.drho(z, lr)
        if self.hjb:
            out[:, self.c_R] = xp.abs(-D.dt + gg / (2 * a1) - self.a2 * dF)
        return out, D

    def hjb_residual(self, y: np.ndarray, t: Any, theta: np.ndarray) -> np.ndarray:
        """``-d_t Phi + H(x, grad Phi) - a2 dF/drho`` at the agents' states (E4).

        Parameters
        ----------
        y : ndarray, shape (n, D)
            The augmented states of the agents.
        t : float or ndarray
            The time.
        theta : ndarray, shape (n_params,)
            The parameters.

        Returns
        -------
        ndarray, shape (n,)
            The residual of the HJB equation per agent.
        """
        z = y[:, :self.dim]
        D = self.potential.derivatives(z, t, theta, probes=self.probes)
        lr = self._logrho(y)
        dF = sum((F.drho(z, lr) for F in self.interactions), 0.0)
        return -D.dt + namespace(y).sum(D.grad ** 2, axis=1) / (2 * self.a1) - self.a2 * dF

    def vjp(self, y: np.ndarray, t: Any, theta: np.ndarray, ybar: np.ndarray,
            aux: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """``((dF/dy)^T ybar, (dF/dtheta)^T ybar)``.

        Parameters
        ----------
        y : ndarray, shape (n, D)
            The augmented states of the agents.
        t : float or ndarray
            The time.
        theta : ndarray, shape (n_params,)
            The parameters.
        ybar : ndarray, shape (n, D)
            The cotangent.
        aux : object, optional
            :meth:`rhs_tape`'s residuals at the same ``(y, t, theta)`` (None: recomputed).

        Returns
        -------
        ybar_y : ndarray, shape (n, D)
            Pullback to the states.
        theta_bar : ndarray, shape (n_params,)
            Pullback to the parameters, summed over samples.
        """
        if not self.fused or np.ndim(t) != 0:
            return self._vjp(y, t, theta, ybar, aux)
        d, n = self.dim, y.shape[0]
        W = self.potential.directions(self.probes, n)
        out = np.zeros_like(y)
        z, lr, extra, _ = self._interactions(y, None if aux is None else aux[-1])
        wR = np.zeros(n)
        ybar = np.ascontiguousarray(ybar, dtype=np.float32 if y.dtype == np.float32 else np.float64)
        B = self.potential.backend.flow_vjp(self.potential.unpack(theta), y[:, :d], t, W,
                                            self.potential.h, self.a1, self._c_R(), extra, ybar,
                                            out, wR, aux)
        self._interaction_vjp(z, lr, ybar, wR if self.hjb else None, out)
        return out, self.potential.layout.pack(B)

    def _vjp(self, y, t, theta, ybar, D=None):
        """The generic vjp (module docstring); ``D`` the potential's derivatives at the
        stage when :meth:`rhs_tape` kept them."""
        d, a1, a2 = self.dim, self.a1, self.a2
        xp = namespace(y)
        z = y[:, :d]
        if D is None:
            D = self._derivatives(y, t, theta)
        g = D.grad
        grad_bar = -ybar[:, :d] / a1 + (ybar[:, self.c_L] / a1)[:, None] * g
        lap_bar = -ybar[:, self.c_ell] / a1
        dt_bar = None
        lr = self._logrho(y)
        w = None
        if self.hjb:
            dF = sum((F.drho(z, lr) for F in self.interactions), 0.0)
            res = -D.dt + xp.sum(g * g, axis=1) / (2 * a1) - a2 * dF
            w = ybar[:, self.c_R] * xp.sign(res)
            grad_bar = grad_bar + (w / a1)[:, None] * g
            dt_bar = -w
        if xp is np or np.ndim(t) != 0:
            xb, _, thb = self.potential.derivatives_vjp(z, t, theta, grad_bar=grad_bar,
                                                        dt_bar=dt_bar, lap_bar=lap_bar,
                                                        probes=self.probes)
        else:
            xb, _, thb = self.potential.stage_vjp(z, t, theta, grad_bar, dt_bar, lap_bar,
                                                  self.probes)
        out = xp.zeros_like(y)
        out[:, :d] = xb
        self._interaction_vjp(z, lr, ybar, w, out)
        return out, thb

    def _interaction_vjp(self, z, lr, ybar, w, out):
        """The interaction terms' own partials in the vjp: ``ybar_F dF/dz`` and, with the HJB
        penalty (``w = ybar_R sign(res)``, else ``None``), ``-a2 w d(dF/drho)/dz`` are added
        to ``out[:, :d]``; the ``log rho`` cotangent goes to the ``ell`` and ``log rho_0``
        columns (``log rho = log rho_0 - ell``, E2)."""
        if not self.interactions:
            return
        xp = namespace(z)
        lr_bar = xp.zeros(z.shape[0], dtype=xp.float64)
        for F, c in zip(self.interactions, self.c_F):
            vz, vl = F.value_partials(z, lr)  # vz: the leading vz.shape[1] columns
            coef = ybar[:, c]
            if w is not None:
                if F.drho_partials == F.value_partials:
                    coef = coef - self.a2 * w
                else:
                    dz_, dl_ = F.drho_partials(z, lr)
                    out[:, :dz_.shape[1]] -= (self.a2 * w)[:, None] * dz_
                    lr_bar -= self.a2 * w * dl_
            out[:, :vz.shape[1]] += coef[:, None] * vz
            lr_bar += coef * vl
        if self.c_lr0 is not None:
            out[:, self.c_ell] = -lr_bar
            out[:, self.c_lr0] = lr_bar

    def jvp(self, y: np.ndarray, t: Any, theta: np.ndarray, dy: np.ndarray | None,
            dtheta: np.ndarray | None) -> np.ndarray:
        d, a1, a2 = self.dim, self.a1, self.a2
        xp = namespace(y)
        z = y[:, :d]
        dy = xp.zeros_like(y) if dy is None else dy
        dz = dy[:, :d]
        D = self.potential.derivatives(z, t, theta, probes=self.probes)
        dD = self.potential.derivatives_jvp(z, t, theta, dx=dz, dtheta=dtheta, probes=self.probes)
        g = D.grad
        gdg = xp.sum(g * dD.grad, axis=1)
        out = xp.zeros_like(y)
        out[:, :d] = -dD.grad / a1
        out[:, self.c_ell] = -dD.lap / a1
        out[:, self.c_L] = gdg / a1
        lr = self._logrho(y)
        dlr = None if self.c_lr0 is None else dy[:, self.c_lr0] - dy[:, self.c_ell]
        dFd = 0.0
        for F, c in zip(self.interactions, self.c_F):
            vz, vl = F.value_partials(z, lr)
            out[:, c] = xp.sum(vz * dz[:, :vz.shape[1]], axis=1) + (0.0 if dlr is None else vl * dlr)
            pz, pl = F.drho_partials(z, lr)
            dFd = dFd + xp.sum(pz * dz[:, :pz.shape[1]], axis=1) + (0.0 if dlr is None else pl * dlr)
        if self.hjb:
            dF = sum((F.drho(z, lr) for F in self.interactions), 0.0)
            res = -D.dt + xp.sum(g * g, axis=1) / (2 * a1) - a2 * dF
            out[:, self.c_R] = xp.sign(res) * (-dD.dt + gdg / a1 - a2 * dFd)
        return out


def flow_field_class(backend: Any = None) -> type:
    """The field class for a potential backend: :class:`PotentialFlowField` for every
    backend (it uses a backend's fused flow kernels by itself)."""
    return PotentialFlowField
