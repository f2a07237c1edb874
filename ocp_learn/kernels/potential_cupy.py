r"""GPU path of the OT-Flow potential (MATH D1--D3, D6): CuPy arrays, cuBLAS, numba-cuda.

The numpy reference program of :mod:`ocp_learn.models.potential` (``_forward``,
``_vjp``, ``_jvp``) is written with array-API calls only, so it runs on CuPy
arrays unchanged (NumPy's ``__array_function__``/``__array_ufunc__`` dispatch):
every matrix product (``K_i J_{i-1}``, the parameter cotangents as
``tensordot`` contractions over samples) is a cuBLAS GEMM.  The elementwise
activation ``a -> (sigma(a), tanh(a))`` (D1) -- two transcendental passes in
the reference -- is one fused numba-cuda kernel, :func:`act_kernel`, that
accepts CuPy arrays (``__cuda_array_interface__``) and uses ONE ``expm1`` for
both outputs (``sigma(a) = |a| + log(2 + em)``, ``tanh a = sign(a) (-em)/(2 + em)``,
``em = expm1(-2|a|)``).

CuPy is imported lazily; :func:`ocp_learn.kernels.cupy_available` says whether a
device is usable.  :func:`act_kernel` is also tested on the numba-cuda simulator
(``NUMBA_ENABLE_CUDASIM=1``) at tiny sizes (``tests/test_gpu.py``).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["activation", "act_kernel", "derivatives", "derivatives_vjp", "derivatives_jvp"]

_KERNEL = None
cuda = None  # numba.cuda, imported on first use by act_kernel()


def act_kernel():
    """The compiled numba-cuda kernel ``act(a, u, g)``: ``u = sigma(a)``, ``g = tanh(a)``, flat arrays."""
    global _KERNEL, cuda
    if _KERNEL is None:
        # ``cuda`` must be a module global (not a closure variable): the simulator swaps it
        from numba import cuda as _cuda
        cuda = _cuda

        @cuda.jit
        def _act(a, u, g):
            i = cuda.grid(1)
            if i < a.size:
                x = a[i]
                aa = abs(x)
                em = math.expm1(-2.0 * aa)
                t = -em / (2.0 + em)
                u[i] = aa + math.log(2.0 + em)
                g[i] = t if x >= 0.0 else -t

        _KERNEL = _act
    return _KERNEL


def activation(a, threads=256):
    """``(sigma(a), tanh(a))`` of a CuPy (or, on the simulator, numpy) array by :func:`act_kernel`."""
    xp = _xp(a)
    a = xp.ascontiguousarray(a)
    u = xp.empty_like(a)
    g = xp.empty_like(a)
    n = a.size
    if n:
        blocks = (n + threads - 1) // threads
        act_kernel()[blocks, threads](a.reshape(-1), u.reshape(-1), g.reshape(-1))
    return u, g


def _xp(a):
    if type(a).__module__.startswith("cupy"):
        import cupy
        return cupy
    return np


def _to(xp, P):
    return {k: xp.asarray(v) for k, v in P.items()}


def derivatives(P, S, W, h):
    """``(phi, G, lap)`` as numpy arrays, computed on the GPU (see module docstring)."""
    import cupy as cp

    from ..models.potential import _forward
    d = S.shape[1] - 1
    phi, G, lap, _ = _forward(_to(cp, P), cp.asarray(S), None if W is None else cp.asarray(W),
                              h, d, act=activation)
    return cp.asnumpy(phi), cp.asnumpy(G), cp.asnumpy(lap)


def derivatives_vjp(P, S, W, h, phibar, Gbar, lapbar):
    """``(sbar, dict of parameter cotangents)`` as numpy arrays, computed on the GPU."""
    import cupy as cp

    from ..models.potential import _forward, _vjp
    d = S.shape[1] - 1
    Pc = _to(cp, P)
    _, _, _, cache = _forward(Pc, cp.asarray(S), None if W is None else cp.asarray(W), h, d,
                              act=activation)
    sbar, B = _vjp(Pc, cache, h, d, cp.asarray(phibar), cp.asarray(Gbar), cp.asarray(lapbar))
    return cp.asnumpy(sbar), {k: cp.asnumpy(v) for k, v in B.items()}


def derivatives_jvp(P, T, S, dS, W, h):
    """``(dphi, dG, dlap)`` as numpy arrays, computed on the GPU."""
    import cupy as cp

    from ..models.potential import _forward, _jvp
    d = S.shape[1] - 1
    Pc = _to(cp, P)
    _, _, _, cache = _forward(Pc, cp.asarray(S), None if W is None else cp.asarray(W), h, d,
                              act=activation)
    out = _jvp(Pc, _to(cp, T), cache, h, d, cp.asarray(dS))
    return tuple(cp.asnumpy(v) for v in out)
