"""PyTorch implementations used ONLY as benchmark baselines (never inside ``ocp_learn/``).

1. :class:`TorchOTFlow` -- the *same* discrete objective as
   :class:`ocp_learn.problems.cnf.ContinuousNormalizingFlow` (MATH D1--D5):
   the potential ResNet ``Phi`` (D1), ``grad_x Phi`` and ``d_t Phi`` and the
   exact Laplacian (D2, D3) written in torch operations exactly as OT-Flow
   does (hand-coded gradient and trace, ``O(M m^2 d)``), RK4 (or any explicit
   tableau) over ``nt`` steps of the augmented state ``[z, ell, L, R]``, the
   OT-Flow objective ``mean(G) + alpha_L mean(L) + alpha_R mean(R)``; the
   parameter gradient by ``torch.autograd`` (reverse mode through the whole
   trace graph).  ``grad_mode="autograd"`` instead obtains ``grad_x Phi`` with
   ``autograd.grad(create_graph=True)`` and the Laplacian by one more
   ``autograd.grad`` per dimension (the generic autodiff way; ``d`` extra
   backward passes per stage).
2. :class:`TorchFFJORD` -- an FFJORD-style CNF with ``torchdiffeq``: an MLP
   field ``f([z, t])`` of the same width, the Hutchinson trace estimate
   ``e^T (df/dz) e`` by a vector-Jacobian product, fixed-step RK4, negative
   log-likelihood, backpropagation through the solver.

Parameters of (1) are copied from an ``ocp_learn`` parameter vector, so the
benchmark can check that both compute the same number (float64, ~1e-12).
"""
from __future__ import annotations

import math

import numpy as np
import torch

RK4 = (np.array([[0, 0, 0, 0], [0.5, 0, 0, 0], [0, 0.5, 0, 0], [0, 0, 1.0, 0]]),
       np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]), np.array([0.0, 0.5, 0.5, 1.0]))


def _log_cosh(a):
    aa = a.abs()
    return aa + torch.log1p(torch.exp(-2.0 * aa))


class TorchOTFlow:
    """OT-Flow's discrete objective in torch (see module docstring, item 1).

    Parameters
    ----------
    problem : ContinuousNormalizingFlow
        Supplies sizes, weights, the data and the parameter layout.
    dtype : torch.dtype
    grad_mode : {"hand", "autograd"}
        How ``grad_x Phi`` and the Laplacian are formed (the parameter
        gradient is always ``torch.autograd``).
    """

    def __init__(self, problem, dtype=torch.float64, grad_mode="hand"):
        pot = problem.potential
        self.d, self.m, self.M, self.h = pot.dim, pot.width, pot.n_layers, pot.h
        self.layout = pot.layout
        self.nt = problem.nt
        self.alpha_L, self.alpha_R = problem.alpha_L, problem.alpha_R
        self.dtype = dtype
        self.grad_mode = grad_mode
        self.x = torch.tensor(problem.x0, dtype=dtype)
        if problem.trace != "exact":
            raise ValueError("TorchOTFlow implements the exact trace only")

    def params(self, theta):
        """Leaf tensors (requires_grad) from an ocp_learn ``theta`` of the potential."""
        P = self.layout.unpack(np.asarray(theta)[:self.layout.size])
        return {k: torch.tensor(np.array(v), dtype=self.dtype, requires_grad=True)
                for k, v in P.items()}

    def _phi(self, s, P):
        a = s @ P["K0"].T + P["b0"]
        u = _log_cosh(a)
        for i in range(self.M):
            u = u + self.h * _log_cosh(u @ P["K"][i].T + P["bK"][i])
        As = s @ P["A"].T
        return u @ P["w"] + 0.5 * (As * As).sum(1) + s @ P["b"] + P["c"][0]

    def _grad_lap_hand(self, s, P):
        """OT-Flow's hand-coded gradient and exact trace (MATH D2, D3)."""
        d, h, M = self.d, self.h, self.M
        K0, K, w, A = P["K0"], P["K"], P["w"], P["A"]
        a0 = s @ K0.T + P["b0"]
        g = [torch.tanh(a0)]
        u = _log_cosh(a0)
        for i in range(M):
            a = u @ K[i].T + P["bK"][i]
            g.append(torch.tanh(a))
            u = u + h * _log_cosh(a)
        z = [None] * (M + 2)
        z[M + 1] = w.expand_as(g[0])
        for i in range(M, 0, -1):
            z[i] = z[i + 1] + h * ((g[i] * z[i + 1]) @ K[i - 1])
        As = s @ A.T
        G = (g[0] * z[1]) @ K0 + As @ A + P["b"]
        Kx = K0[:, :d]
        lap = ((1 - g[0] ** 2) * z[1] * (Kx * Kx).sum(1)).sum(1)
        J = g[0].unsqueeze(2) * Kx                                  # (n, m, d)
        for i in range(1, M + 1):
            Pi = torch.matmul(K[i - 1], J)
            lap = lap + h * ((1 - g[i] ** 2) * z[i + 1] * (Pi * Pi).sum(2)).sum(1)
            J = J + h * g[i].unsqueeze(2) * Pi
        lap = lap + (A[:, :d] ** 2).sum()
        return G[:, :d], G[:, d], lap

    def _grad_lap_autograd(self, s, P):
        s = s if s.requires_grad else s.detach().requires_grad_(True)
        phi = self._phi(s, P)
        G = torch.autograd.grad(phi.sum(), s, create_graph=True)[0]
        lap = 0.0
        for j in range(self.d):
            lap = lap + torch.autograd.grad(G[:, j].sum(), s, create_graph=True)[0][:, j]
        return G[:, :self.d], G[:, self.d], lap

    def rhs(self, y, t, P):
        d = self.d
        s = torch.cat([y[:, :d], torch.full((y.shape[0], 1), float(t), dtype=self.dtype)], 1)
        if self.grad_mode == "hand":
            g, dt, lap = self._grad_lap_hand(s, P)
        else:
            g, dt, lap = self._grad_lap_autograd(s, P)
        gg = (g * g).sum(1)
        return torch.cat([-g, -lap[:, None], 0.5 * gg[:, None], (0.5 * gg - dt).abs()[:, None]], 1)

    def objective(self, P):
        n, d = self.x.shape
        a, b, c = RK4
        y = torch.cat([self.x, torch.zeros(n, 3, dtype=self.dtype)], 1)
        hs = 1.0 / self.nt
        for k in range(self.nt):
            t = k * hs
            Ks = []
            for i in range(4):
                Yi = y
                for j in range(i):
                    if a[i, j] != 0:
                        Yi = Yi + (hs * a[i, j]) * Ks[j]
                Ks.append(self.rhs(Yi, t + c[i] * hs, P))
            y = y + sum((hs * b[i]) * Ks[i] for i in range(4))
        z, ell, L, R = y[:, :d], y[:, d], y[:, d + 1], y[:, d + 2]
        G = 0.5 * (z * z).sum(1) + 0.5 * d * math.log(2 * math.pi) - ell
        return G.mean() + self.alpha_L * L.mean() + self.alpha_R * R.mean()

    def objective_and_gradient(self, P):
        """``(J, [dJ/dP_k])`` with ``torch.autograd``; ``P`` from :meth:`params`."""
        J = self.objective(P)
        grads = torch.autograd.grad(J, list(P.values()), allow_unused=True)
        return J.detach(), [torch.zeros_like(v) if gk is None else gk
                            for v, gk in zip(P.values(), grads)]

    def flat_gradient(self, grads):
        """Pack the torch gradients in ocp_learn's layout (for comparison)."""
        return self.layout.pack({k: g.detach().numpy().astype(np.float64)
                                 for k, g in zip(self.layout.unpack(np.zeros(self.layout.size)), grads)})


class TorchFFJORD(torch.nn.Module):
    """FFJORD-style CNF (module docstring, item 2): MLP field, Hutchinson trace, RK4.

    Parameters
    ----------
    d, width : int
    nt : int
        Fixed RK4 steps on ``[0, 1]``.
    """

    def __init__(self, d, width, nt=8, dtype=torch.float64, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.d, self.nt = d, nt
        self.l1 = torch.nn.Linear(d + 1, width, dtype=dtype)
        self.l2 = torch.nn.Linear(width + 1, width, dtype=dtype)
        self.l3 = torch.nn.Linear(width + 1, d, dtype=dtype)
        self.e = None
        self.dtype = dtype
        self._g = g

    def _f(self, t, z):
        tt = torch.full((z.shape[0], 1), float(t), dtype=self.dtype)
        h = torch.tanh(self.l1(torch.cat([z, tt], 1)))
        h = torch.tanh(self.l2(torch.cat([h, tt], 1)))
        return self.l3(torch.cat([h, tt], 1))

    def forward(self, t, state):
        z = state[0]
        with torch.enable_grad():
            z = z.requires_grad_(True)
            f = self._f(t, z)
            ef = torch.autograd.grad(f, z, self.e, create_graph=True)[0]
        div = (ef * self.e).sum(1)
        return f, -div

    def loss(self, x):
        from torchdiffeq import odeint
        self.e = torch.randn(x.shape, generator=self._g, dtype=self.dtype)
        ell0 = torch.zeros(x.shape[0], dtype=self.dtype)
        ts = torch.tensor([0.0, 1.0], dtype=self.dtype)
        zT, ellT = odeint(self, (x, ell0), ts, method="rk4",
                          options={"step_size": 1.0 / self.nt})
        zT, ellT = zT[-1], ellT[-1]
        nll = 0.5 * (zT * zT).sum(1) + 0.5 * self.d * math.log(2 * math.pi) + ellT
        return nll.mean()

    def loss_and_gradient(self, x):
        J = self.loss(x)
        grads = torch.autograd.grad(J, list(self.parameters()))
        return J.detach(), grads
