r"""The ``numba`` backend of the OT-Flow potential (MATH D1--D3, D6): fused CPU kernels.

The kernels give the numbers of the reference program (:mod:`.potential_reference`) to
rounding, one sample at a time in per-thread scratch (``prange`` over blocks of
samples):

* :mod:`.activation_numba` -- the vectorized activation of a layer;
* :mod:`.potential_net_numba` -- the residual layers and reverse sweep, the packed
  parameters (:class:`~.potential_net_numba.Params`) and workspaces;
* :mod:`.potential_jacobian_numba` / :mod:`.potential_jvp_numba` -- value, gradient and
  Laplacian by the Jacobians ``J_i`` (exact trace, or the Hutchinson probes), their
  adjoint and tangent;
* :mod:`.potential_gram_numba` / :mod:`.potential_tiles_numba` -- the exact trace by
  Gram matrices (high ``d``), with the products with the samples as GEMMs;
* :mod:`.potential_flow_numba` -- the fused stages of the potential flow field.

*float32* states run the Jacobian-path kernels of the flow field in float32
(:mod:`.potential_net_numba`); the Gram path computes in float64.
"""
from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from ..arrays import Workspace
from . import potential_reference as reference
from .numba_common import with_serial_blas, blocks
from .potential_gram_numba import forward as gram_forward
from .potential_gram_numba import trace_gram
from .potential_gram_numba import vjp as gram_vjp
from .potential_jacobian_numba import derivatives_kernel, vjp_kernel
from .potential_jvp_numba import jvp_kernel
from .potential_net_numba import accumulators, cotangents, directions, params
from .potential_numpy import NumpyPotentialBackend

__all__ = ["derivatives", "derivatives_vjp", "derivatives_jvp", "NumbaPotentialBackend",
           "NumbaBlasPotentialBackend", "numba_potential_backend"]


@with_serial_blas
def derivatives(P: dict, S: np.ndarray, W: np.ndarray | None, h: float,
                nblocks: int | None = None,
                trace_path: str = "auto") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(phi (n,), G = grad_s Phi (n, d+1), lap (n,))`` (D1--D3) of the samples ``S``;
    ``nblocks`` splits the samples (default: one block per thread)."""
    n, D = S.shape
    d = D - 1
    exact, Wa = directions(W, d)
    G0 = trace_gram(P, d, exact, trace_path)
    if G0.size:  # Gram path: the d-dimensional products as GEMMs
        return gram_forward(P, S, h, G0, blocks(n, nblocks))[:3]
    phi, lap, G = np.empty(n), np.empty(n), np.empty((n, D))
    derivatives_kernel(np.ascontiguousarray(S), Wa, exact, d, float(h), params(P),
                       blocks(n, nblocks), phi, G, lap)
    return phi, G, lap


@with_serial_blas
def derivatives_vjp(P: dict, S: np.ndarray, W: np.ndarray | None, h: float,
                    phibar: np.ndarray, Gbar: np.ndarray, lapbar: np.ndarray,
                    nblocks: int | None = None, trace_path: str = "auto") -> tuple[np.ndarray, dict]:
    """``(sbar (n, d+1), dict of parameter cotangents summed over samples)`` (D6)."""
    n, D = S.shape
    d = D - 1
    exact, Wa = directions(W, d)
    edges = blocks(n, nblocks)
    prm = params(P)
    G0 = trace_gram(P, d, exact, trace_path)
    if G0.size:
        return gram_vjp(P, S, h, G0, edges, phibar, Gbar, lapbar)
    acc = accumulators(prm, edges.size - 1)
    sbar = np.empty((n, D))
    vjp_kernel(np.ascontiguousarray(S), Wa, exact, d, float(h), prm,
               np.ascontiguousarray(phibar, dtype=np.float64),
               np.ascontiguousarray(Gbar, dtype=np.float64),
               np.ascontiguousarray(lapbar, dtype=np.float64), edges, sbar, acc)
    return sbar, cotangents(acc)


@with_serial_blas
def derivatives_jvp(P: dict, T: dict, S: np.ndarray, dS: np.ndarray, W: np.ndarray | None,
                    h: float,
                    nblocks: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dphi (n,), dG (n, d+1), dlap (n,))`` -- tangents along ``dS`` and parameter tangents ``T``."""
    n, D = S.shape
    d = D - 1
    exact, Wa = directions(W, d)
    dphi, dlap, dG = np.empty(n), np.empty(n), np.empty((n, D))
    jvp_kernel(np.ascontiguousarray(S), Wa, exact, d, float(h), params(P),
               np.ascontiguousarray(dS, dtype=np.float64), params(T), blocks(n, nblocks),
               dphi, dG, dlap)
    return dphi, dG, dlap


class NumbaPotentialBackend:
    """The ``numba`` backend: the fused per-sample kernels (Jacobian or Gram path of the
    trace) and the fused flow field stages (:mod:`.potential_flow_numba`).

    Parameters
    ----------
    trace_path : {"auto", "jacobian", "gram"}
        The exact trace by the Jacobians or by their Gram matrices (:func:`trace_gram`).
    layout : {"auto", "tiles", "samples"}
        The flow field's kernels on the Jacobian path: samples in tiles with the weight
        products as GEMMs (:mod:`.potential_soa_numba`; ``"auto"``, for the exact trace)
        or one sample at a time (``"samples"``; Hutchinson probes always run per sample).
    **options
        The model's other backend options (``chunk``), unused here.
    """

    name = "numba"
    fused_flow = True

    def __init__(self, trace_path: str = "auto", layout: str = "auto", **options: Any) -> None:
        self.trace_path = trace_path
        self.layout = layout
        self._work = Workspace()  # the fused vjp's per-sample cotangents, reused from call to call

    def array_module(self, *args: Any) -> ModuleType:
        """NumPy, whatever the arguments."""
        return np

    def derivatives(self, P: dict, S: Any, W: Any, h: float) -> tuple:
        return derivatives(P, S, W, h, trace_path=self.trace_path)

    def derivatives_vjp(self, P: dict, S: Any, W: Any, h: float, phibar: Any, Gbar: Any,
                        lapbar: Any) -> tuple:
        return derivatives_vjp(P, S, W, h, phibar, Gbar, lapbar, trace_path=self.trace_path)

    def derivatives_jvp(self, P: dict, T: dict, S: Any, dS: Any, W: Any, h: float) -> tuple:
        return derivatives_jvp(P, T, S, dS, W, h)

    def phi(self, P: dict, S: np.ndarray, h: float) -> np.ndarray:
        """The reference program (NumPy, BLAS)."""
        return reference.phi(P, S, h)

    def phi_vjp(self, P: dict, S: np.ndarray, h: float) -> tuple[np.ndarray, Callable]:
        """The reference program (NumPy, BLAS)."""
        return reference.phi_vjp(P, S, h)

    def flow_rhs(self, P: dict, x: np.ndarray, t: float, W: Any, h: float, a1: float, c_R: int,
                 extra: np.ndarray, out: np.ndarray, keep: bool) -> Any:
        from .potential_flow_numba import flow_rhs
        return flow_rhs(P, x, t, W, h, a1, c_R, extra, out, keep, self.trace_path, self.layout)

    def flow_vjp(self, P: dict, x: np.ndarray, t: float, W: Any, h: float, a1: float, c_R: int,
                 extra: np.ndarray, ybar: np.ndarray, out: np.ndarray, wR: np.ndarray,
                 aux: Any) -> dict:
        from .potential_flow_numba import flow_vjp
        return flow_vjp(P, x, t, W, h, a1, c_R, extra, ybar, out, wR, aux, self.trace_path,
                        work=self._work, layout=self.layout)

    def flow_aux_floats(self, n: int, d: int, m: int, M: int, r: int, exact: bool) -> int:
        from .potential_flow_numba import flow_aux_floats
        return flow_aux_floats(n, d, m, M, r, exact, self.trace_path)


class NumbaBlasPotentialBackend(NumpyPotentialBackend):
    """``backend="numba", path="blas"``: the chunked batched-GEMM program of the reference
    (:class:`~.potential_numpy.NumpyPotentialBackend`), matrix products by BLAS."""

    name = "numba"


def numba_potential_backend(path: str = "auto", trace_path: str = "auto",
                            chunk: int | None = None, layout: str = "auto",
                            **options: Any) -> Any:
    """The ``numba`` backend: the fused kernels (``path="auto"`` or ``"fused"``; faster for
    the CNF objective + gradient at every size measured, m = 32 and 128, d = 2 to 128,
    ``benchmarks/results/kernels_fused_vs_blas.md``), or the BLAS program of the
    reference (``path="blas"``)."""
    if path == "blas":
        return NumbaBlasPotentialBackend(chunk)
    return NumbaPotentialBackend(trace_path, layout)
