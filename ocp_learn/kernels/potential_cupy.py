r"""GPU path of the OT-Flow potential (MATH D1--D3, D6): CuPy arrays, cuBLAS, numba-cuda.

The reference program of :mod:`.potential_reference` (``forward``,
``vjp``, ``jvp``) is written with array-API calls only, so it runs on CuPy
arrays unchanged (NumPy's ``__array_function__``/``__array_ufunc__`` dispatch):
every matrix product (``K_i J_{i-1}``, the parameter cotangents as
``tensordot`` contractions over samples) is a cuBLAS GEMM.  The elementwise
activation ``a -> (sigma(a), tanh(a))`` (D1) -- two transcendental passes in
the reference -- is one fused numba-cuda kernel, :func:`act_kernel`, that
accepts CuPy arrays (``__cuda_array_interface__``) and uses ONE ``expm1`` for
both outputs (``sigma(a) = |a| + log(2 + em)``, ``tanh a = sign(a) (-em)/(2 + em)``,
``em = expm1(-2|a|)``).

Chunks and residency
--------------------
The exact-trace cache holds the ``(n, m, d)`` Jacobians ``J_i`` and products
``P_i`` of D3 (``n = 2^20, m = 128, d = 64`` would be 69 GB per array), so the
samples are processed in chunks of :func:`chunk_size` samples, from a byte
budget (:data:`CHUNK_BYTES`) divided by :func:`bytes_per_sample`.  Everything
stays on the device between chunks: the per-sample outputs are written into
device arrays and the parameter cotangents of the vjp (D6) are summed on the
device; the parameters go to the device once per call.

* CuPy inputs -> CuPy outputs (device-resident use, no host round trip);
* numpy inputs -> numpy outputs (one host-to-device copy of the inputs, one
  device-to-host copy of the results per call; what the OCP solvers use).

The chunked drivers (:func:`forward_chunks`, :func:`vjp_chunks`,
:func:`jvp_chunks`) and :class:`CupyPotentialBackend` are generic over the array
module: ``CupyPotentialBackend(xp=numpy)`` runs the same program on the host with the
reference activation, which is how the CPU tests check the chunking and the input
handling without a GPU.

CuPy is imported lazily; :func:`ocp_learn.kernels.cupy_available` says whether a
device is usable.  :func:`act_kernel` is also tested on the numba-cuda simulator
(``NUMBA_ENABLE_CUDASIM=1``) at tiny sizes (``tests/test_gpu.py``).
"""
from __future__ import annotations

import math

import numpy as np

from collections.abc import Callable
from types import ModuleType
from typing import Any

from ..arrays import namespace
from ..errors import check_positive_int
from . import potential_reference as reference

__all__ = ["CHUNK_BYTES", "activation", "act_kernel", "activation_impl", "bytes_per_sample", "chunk_size",
           "chunk_slices", "forward_chunks", "vjp_chunks", "jvp_chunks", "derivatives",
           "derivatives_vjp", "derivatives_jvp", "is_device_array", "CupyPotentialBackend"]

#: bytes of device memory the per-chunk cache (and its temporaries) may take
CHUNK_BYTES = 4 << 30

_KERNEL = None
_FALLBACK = None  # CuPy ElementwiseKernel, set only if numba-cuda fails on this machine
cuda = None  # numba.cuda, imported on first use by act_kernel()


# --------------------------------------------------------------------------------------------
# the fused activation kernel (D1)
# --------------------------------------------------------------------------------------------

def act_kernel():
    """The compiled numba-cuda kernel ``act(a, u, g)``: ``u = sigma(a)``, ``g = tanh(a)``, flat arrays."""
    global _KERNEL, cuda
    if _KERNEL is None:
        # numba-cuda <= 0.30 registers an overload of ``np.row_stack``, an alias that
        # numpy 2.5 removed (seen on the GPU machine: numba-cuda 0.30.4, numpy 2.5.2);
        # restore the alias so that the CUDA target can load at all
        if "row_stack" not in vars(np):
            np.row_stack = np.vstack  # noqa: NPY201 - the alias numba-cuda looks up
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


def activation(a, threads=256, strict=False):
    """``(sigma(a), tanh(a))`` (D1) of a CuPy (or, on the simulator, numpy) array by :func:`act_kernel`.

    CuPy arrays are handed to numba-cuda as views (``as_cuda_array(..., sync=False)``)
    and the kernel is launched on CuPy's current stream, so the launch neither
    synchronizes the device nor reorders it against the surrounding CuPy work.
    Should numba-cuda fail to compile or launch on this machine (no NVVM, say), a
    warning is issued once and a CuPy ``ElementwiseKernel`` with the same formula is
    used instead (:func:`activation_impl` says which); ``strict=True`` raises instead.
    """
    global _FALLBACK
    xp = _xp(a)
    a = xp.ascontiguousarray(a)
    if xp is not np and _FALLBACK is not None and not strict:
        return _FALLBACK(a)
    u = xp.empty_like(a)
    g = xp.empty_like(a)
    n = a.size
    if n:
        blocks = (n + threads - 1) // threads
        args = (a.reshape(-1), u.reshape(-1), g.reshape(-1))
        if xp is np:
            act_kernel()[blocks, threads](*args)
            return u, g
        try:
            kern = act_kernel()
            args = tuple(cuda.as_cuda_array(v, sync=False) for v in args)
            ptr = xp.cuda.get_current_stream().ptr
            if ptr:
                kern[blocks, threads, cuda.external_stream(ptr)](*args)
            else:
                kern[blocks, threads](*args)
        except Exception as exc:
            if strict:
                raise
            import warnings
            warnings.warn(f"numba-cuda activation kernel failed ({exc!r}); using a CuPy "
                          "ElementwiseKernel with the same formula", RuntimeWarning, stacklevel=2)
            _FALLBACK = _cupy_activation(xp)
            return _FALLBACK(a)
    return u, g


def _cupy_activation(cp):
    """The same fused formula as :func:`act_kernel`, as a CuPy ``ElementwiseKernel`` (fallback)."""
    kern = cp.ElementwiseKernel(
        "T x", "T u, T g",
        "double aa = fabs(x); double em = expm1(-2.0 * aa); double t = -em / (2.0 + em);"
        " u = aa + log(2.0 + em); g = x >= 0.0 ? t : -t;",
        "ocp_learn_log_cosh_tanh")
    return lambda a: kern(a)


def activation_impl():
    """``"numba-cuda"`` or, after a numba-cuda failure, ``"cupy-elementwise (fallback)"``."""
    return "numba-cuda" if _FALLBACK is None else "cupy-elementwise (fallback)"


# --------------------------------------------------------------------------------------------
# array modules and chunk sizes
# --------------------------------------------------------------------------------------------

def is_device_array(v):
    """True when ``v`` is a CuPy array (its type lives in the ``cupy`` package)."""
    return type(v).__module__.split(".")[0] == "cupy"


def _xp(a):
    return namespace(a)


def _cupy():
    import cupy
    return cupy


def _act_for(xp):
    """The activation of array module ``xp``: the fused kernel on CuPy, the reference
    (array-API calls) on any other namespace."""
    if getattr(xp, "__name__", "").partition(".")[0] == "cupy":
        return activation
    return reference.activation


def _to(xp, P):
    return {k: xp.asarray(v) for k, v in P.items()}


def bytes_per_sample(m, M, c, D):
    """Upper estimate of the device bytes one sample takes in a forward + vjp chunk.

    The cache of :func:`.potential_reference.forward` holds ``M + 1``
    Jacobians ``J_i`` and ``M`` products ``P_i``, each ``m x c`` per sample
    (``c = d`` for the exact trace, the number of probes for Hutchinson; D3);
    the vjp (D6) adds ``Jbar``, ``Pbar``, the contiguous copies ``tensordot``
    makes and a few elementwise temporaries -- counted as 8 more ``m x c`` arrays.
    The ``m``-vectors (``a_i, u_i, g_i, q_i, z_i, y_i`` and their bars) are
    counted as ``24 (M + 2)`` of them, and ``s``, ``G`` and their bars as ``8 D + D c``.

    Parameters
    ----------
    m, M, c, D : int
        Width, residual layers, trace columns, input size ``d + 1``.
    """
    for name, v in (("m", m), ("M", M), ("c", c), ("D", D)):
        check_positive_int(name, v)
    return 8 * (m * c * (2 * M + 8) + 24 * m * (M + 2) + 8 * D + D * c)


def chunk_size(bytes_per, budget=None):
    """Samples per chunk: ``max(1, budget // bytes_per)`` (``budget`` defaults to :data:`CHUNK_BYTES`)."""
    bytes_per = check_positive_int("bytes_per", bytes_per)
    budget = CHUNK_BYTES if budget is None else check_positive_int("budget", budget)
    return max(1, budget // bytes_per)


def chunk_slices(n, chunk):
    """``slice`` objects covering ``range(n)`` in pieces of ``chunk`` samples (the last may be shorter)."""
    chunk = check_positive_int("chunk", chunk)
    return [slice(i, min(i + chunk, n)) for i in range(0, n, chunk)]


def _chunk_for(P, S, W, chunk, gram=False):
    if chunk is not None:
        return check_positive_int("chunk", chunk)
    m, M, D = P["K0"].shape[0], P["K"].shape[0], S.shape[1]
    c = m if gram else (D - 1 if W is None else W.shape[2])  # the Gram path holds (m, m)
    return chunk_size(bytes_per_sample(m, max(M, 1), max(c, 1), D))


def _use_gram(P, S, W, trace_path):
    """Whether a call takes the Gram path of the trace (:func:`.potential_reference.gram_applies`;
    ``trace_path`` ``"auto"`` or ``"gram"``: where it applies; ``"jacobian"``: never)."""
    return trace_path != "jacobian" and reference.gram_applies(P, W, S.shape[1] - 1)


# --------------------------------------------------------------------------------------------
# chunked drivers, generic over the array module of their arguments
# --------------------------------------------------------------------------------------------

def _forward_by_chunk(P, S, W, h, chunk, gram=False):
    """Yield ``(slice, (phi, G, lap, cache))``: the forward pass (D1--D3) of each chunk of
    samples, in the array module of ``S`` (shared by the forward, vjp and jvp drivers);
    ``gram``: by :func:`.potential_reference.forward_gram`."""
    act = _act_for(_xp(S))
    d = S.shape[1] - 1
    for sl in chunk_slices(S.shape[0], _chunk_for(P, S, W, chunk, gram)):
        if gram:
            yield sl, reference.forward_gram(P, S[sl, ...], h, d, act=act)
        else:
            yield sl, reference.forward(P, S[sl, ...], None if W is None else W[sl, ...], h, d,
                                        act=act)


def forward_chunks(P, S, W, h, chunk=None, trace_path="auto"):
    """``(phi, G, lap)`` (D1--D3) of all samples, chunk by chunk, in the array module of ``S``.

    Parameters
    ----------
    P : dict of arrays
        Parameter blocks (``PotentialResNet.unpack``), in the array module of ``S``.
    S : array, shape (n, d + 1)
        Inputs ``s = (x, t)``.
    W : array, shape (n, d, c), or None
        Trace directions (``None``: exact trace, ``W = I_d``).
    h : float
        Residual step ``1 / M``.
    chunk : int, optional
        Samples per chunk; default :func:`chunk_size` of :func:`bytes_per_sample`.
    trace_path : {"auto", "gram", "jacobian"}
        The exact trace of one residual layer with ``d > m`` by Gram matrices
        (:func:`.potential_reference.forward_gram`) unless ``"jacobian"``.

    Returns
    -------
    phi (n,), G (n, d + 1), lap (n,) : arrays of the same module as ``S``.
    """
    xp = _xp(S)
    n, D = S.shape
    dt = S.dtype
    phi, G, lap = xp.empty(n, dtype=dt), xp.empty((n, D), dtype=dt), xp.empty(n, dtype=dt)
    gram = _use_gram(P, S, W, trace_path)
    for sl, (phi_c, G_c, lap_c, _) in _forward_by_chunk(P, S, W, h, chunk, gram):
        phi[sl], G[sl, ...], lap[sl] = phi_c, G_c, lap_c
    return phi, G, lap


def vjp_chunks(P, S, W, h, phibar, Gbar, lapbar, chunk=None, trace_path="auto"):
    """``sbar (n, d + 1)`` and the parameter cotangents (D6), summed over chunks in place.

    Arguments as :func:`forward_chunks`, plus the cotangents ``phibar (n,)``,
    ``Gbar (n, d + 1)``, ``lapbar (n,)``; all in the array module of ``S``
    (the sums over samples never leave it).
    """
    xp = _xp(S)
    n, D = S.shape
    d = D - 1
    sbar = xp.empty((n, D), dtype=S.dtype)
    B = {k: xp.zeros_like(v) for k, v in P.items()}
    gram = _use_gram(P, S, W, trace_path)
    adjoint = reference.vjp_gram if gram else reference.vjp
    for sl, (_, _, _, cache) in _forward_by_chunk(P, S, W, h, chunk, gram):
        sbar[sl, ...], Bc = adjoint(P, cache, h, d, phibar[sl], Gbar[sl, ...], lapbar[sl])
        for k in B:
            B[k] += Bc[k]
    return sbar, B


def jvp_chunks(P, T, S, dS, W, h, chunk=None):
    """``(dphi, dG, dlap)`` (D6 tangent) along parameter tangents ``T`` and ``dS (n, d + 1)``, by chunks."""
    xp = _xp(S)
    n, D = S.shape
    d = D - 1
    dt = S.dtype
    dphi, dG, dlap = xp.empty(n, dtype=dt), xp.empty((n, D), dtype=dt), xp.empty(n, dtype=dt)
    for sl, (_, _, _, cache) in _forward_by_chunk(P, S, W, h, chunk):
        dphi[sl], dG[sl, ...], dlap[sl] = reference.jvp(P, T, cache, h, d, dS[sl, ...])
    return dphi, dG, dlap


# --------------------------------------------------------------------------------------------
# low-level entry points of PotentialResNet(backend="cupy") (validated arrays)
# --------------------------------------------------------------------------------------------

def _device(S, xp=None):
    """``(xp, back)``: the compute module (CuPy, or ``xp`` when given) and the map of results
    to the type of ``S``."""
    if xp is not None:
        return xp, (lambda v: v)
    cp = _cupy()
    if is_device_array(S):
        return cp, (lambda v: v)
    return cp, cp.asnumpy


def _opt(cp, v):
    return None if v is None else cp.asarray(v)


def derivatives(P, S, W, h, chunk=None, xp=None, trace_path="auto"):
    """``(phi, G, lap)`` (D1--D3) computed on the GPU by :func:`forward_chunks`.

    Numpy ``S`` (and ``W``) -> numpy results; CuPy -> CuPy results (no host copy).
    ``xp`` replaces CuPy as the compute module (``numpy``: the same driver on the host).
    """
    cp, back = _device(S, xp)
    out = forward_chunks(_to(cp, P), cp.asarray(S), _opt(cp, W), h, chunk, trace_path)
    return tuple(back(v) for v in out)


def derivatives_vjp(P, S, W, h, phibar, Gbar, lapbar, chunk=None, xp=None, trace_path="auto"):
    """``(sbar, dict of parameter cotangents)`` (D6) computed on the GPU by :func:`vjp_chunks`."""
    cp, back = _device(S, xp)
    sbar, B = vjp_chunks(_to(cp, P), cp.asarray(S), _opt(cp, W), h, cp.asarray(phibar),
                         cp.asarray(Gbar), cp.asarray(lapbar), chunk, trace_path)
    return back(sbar), {k: back(v) for k, v in B.items()}


def derivatives_jvp(P, T, S, dS, W, h, chunk=None, xp=None):
    """``(dphi, dG, dlap)`` (D6 tangent) computed on the GPU by :func:`jvp_chunks`."""
    cp, back = _device(S, xp)
    out = jvp_chunks(_to(cp, P), _to(cp, T), cp.asarray(S), cp.asarray(dS), _opt(cp, W), h,
                     chunk)
    return tuple(back(v) for v in out)


# --------------------------------------------------------------------------------------------
# the backend
# --------------------------------------------------------------------------------------------

class CupyPotentialBackend:
    """The ``cupy`` backend: the reference program on the GPU, chunk by chunk.

    NumPy arguments are copied to the device once per call and the results back (what
    the OCP solvers use); CuPy arguments give CuPy results (device-resident use).

    Parameters
    ----------
    chunk : int, optional
        Samples per chunk; default from :data:`CHUNK_BYTES` (:func:`chunk_size`).
    xp : module, optional
        Compute module in place of CuPy: ``numpy`` runs the same driver on the host with
        the reference activation (how the CPU tests check it); no device is needed then.
    trace_path : {"auto", "gram", "jacobian"}
        The exact trace of one residual layer with ``d > m`` through Gram matrices
        (``O(m^3)`` per sample, :func:`.potential_reference.forward_gram`) unless
        ``"jacobian"``; other cases always take the Jacobian path.
    **options
        The model's other backend options (``path``), unused here.

    Raises
    ------
    BackendUnavailableError
        Without ``xp``, when CuPy or a CUDA device is missing.
    """

    name = "cupy"
    fused_flow = False

    def __init__(self, chunk: int | None = None, xp: ModuleType | None = None,
                 trace_path: str = "auto", **options: Any) -> None:
        if xp is None:
            from . import check_backend
            check_backend("cupy")
        from ..errors import check_choice
        self.chunk = chunk
        self.xp = xp
        self.trace_path = check_choice("trace_path", trace_path, {"auto", "gram", "jacobian"})

    @property
    def namespace(self) -> ModuleType:
        """The device namespace (:class:`~.potential_backend.DeviceBackend`): CuPy, or the
        ``xp`` given (e.g. ``array_api_strict`` in the CPU tests of the device path)."""
        return _cupy() if self.xp is None else self.xp

    def array_module(self, *args: Any) -> ModuleType:
        """CuPy when any argument is a CuPy array, else NumPy (or ``xp`` when given)."""
        if self.xp is not None:
            return self.xp
        return _cupy() if any(is_device_array(v) for v in args) else np

    def derivatives(self, P: dict, S: Any, W: Any, h: float) -> tuple:
        return derivatives(P, S, W, h, self.chunk, self.xp, self.trace_path)

    def derivatives_vjp(self, P: dict, S: Any, W: Any, h: float, phibar: Any, Gbar: Any,
                        lapbar: Any) -> tuple:
        return derivatives_vjp(P, S, W, h, phibar, Gbar, lapbar, self.chunk, self.xp,
                               self.trace_path)

    def derivatives_jvp(self, P: dict, T: dict, S: Any, dS: Any, W: Any, h: float) -> tuple:
        return derivatives_jvp(P, T, S, dS, W, h, self.chunk, self.xp)

    def phi(self, P: dict, S: Any, h: float) -> Any:
        """The reference program in the namespace of ``S`` (host or device)."""
        return reference.phi(P, S, h)

    def phi_vjp(self, P: dict, S: Any, h: float) -> tuple[Any, Callable]:
        """The reference program in the namespace of ``S`` (host or device)."""
        return reference.phi_vjp(P, S, h)
