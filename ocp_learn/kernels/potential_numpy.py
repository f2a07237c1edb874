"""The ``numpy`` backend of the OT-Flow potential: the reference program, chunk by chunk.

:class:`NumpyPotentialBackend` runs :mod:`.potential_reference` (``forward``, ``vjp``,
``jvp``; MATH D1--D3, D6) over chunks of samples, so that the ``(chunk, m, c)`` Jacobians
of the trace (``c = d`` for the exact trace, ``k`` probes for Hutchinson) stay within a
memory budget, and sums the parameter cotangents over the chunks.  It is the reference
every other backend is tested against, and the worked example of ``docs/backends.rst``.
"""
from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from . import potential_reference as ref

__all__ = ["NumpyPotentialBackend"]


class NumpyPotentialBackend:
    """The reference backend (NumPy arrays, matrix products by BLAS).

    Parameters
    ----------
    chunk : int, optional
        Samples processed at once; by default as many as keep the chunk's Jacobians
        within 64 MB.
    **options
        The model's other backend options (``path``, ``trace_path``), unused here.
    """

    name = "numpy"
    fused_flow = False

    def __init__(self, chunk: int | None = None, **options: Any) -> None:
        self.chunk = chunk

    def array_module(self, *args: Any) -> ModuleType:
        """NumPy, whatever the arguments."""
        return np

    def chunks(self, P: dict, n: int, c: int) -> list[slice]:
        """Slices of ``range(n)`` in chunks (``c`` columns of the trace Jacobians)."""
        if self.chunk is not None:
            size = self.chunk
        else:
            m, M = P["K0"].shape[0], P["K"].shape[0]
            per = m * c * (2 * M + 3) + 20 * m
            size = max(1, (1 << 23) // per)
        return [slice(i, min(i + size, n)) for i in range(0, n, size)]

    def _slices(self, P, S, W):
        d = S.shape[1] - 1
        return self.chunks(P, S.shape[0], d if W is None else W.shape[2])

    def derivatives(self, P: dict, S: np.ndarray, W: np.ndarray | None,
                    h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n, D = S.shape
        phi, lap, G = np.empty(n), np.empty(n), np.empty((n, D))
        for sl in self._slices(P, S, W):
            phi[sl], G[sl], lap[sl], _ = ref.forward(P, S[sl], None if W is None else W[sl],
                                                     h, D - 1)
        return phi, G, lap

    def derivatives_vjp(self, P: dict, S: np.ndarray, W: np.ndarray | None, h: float,
                        phibar: np.ndarray, Gbar: np.ndarray,
                        lapbar: np.ndarray) -> tuple[np.ndarray, dict]:
        d = S.shape[1] - 1
        sbar = np.empty_like(S)
        B = {k: np.zeros_like(v) for k, v in P.items()}
        for sl in self._slices(P, S, W):
            _, _, _, cache = ref.forward(P, S[sl], None if W is None else W[sl], h, d)
            sbar[sl], Bc = ref.vjp(P, cache, h, d, phibar[sl], Gbar[sl], lapbar[sl])
            for k in B:
                B[k] += Bc[k]
        return sbar, B

    def derivatives_jvp(self, P: dict, T: dict, S: np.ndarray, dS: np.ndarray,
                        W: np.ndarray | None,
                        h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n, D = S.shape
        dphi, dlap, dG = np.empty(n), np.empty(n), np.empty((n, D))
        for sl in self._slices(P, S, W):
            _, _, _, cache = ref.forward(P, S[sl], None if W is None else W[sl], h, D - 1)
            dphi[sl], dG[sl], dlap[sl] = ref.jvp(P, T, cache, h, D - 1, dS[sl])
        return dphi, dG, dlap

    def phi(self, P: dict, S: np.ndarray, h: float) -> np.ndarray:
        return ref.phi(P, S, h)

    def phi_vjp(self, P: dict, S: np.ndarray, h: float) -> tuple[np.ndarray, Callable]:
        return ref.phi_vjp(P, S, h)
