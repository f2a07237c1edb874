r"""The OT-Flow potential ``Phi(x, t; theta)`` and its hand-derived derivatives (MATH D1--D3, D6).

``Phi(s; theta) = w^T N(s) + 1/2 s^T A^T A s + b^T s + c`` with ``s = (x, t)`` and ``N``
a ResNet of ``M`` residual layers of width ``m`` (D1).  Per sample the model gives the
value, ``grad_x Phi`` and ``d_t Phi`` (D2), the exact Laplacian or its Hutchinson
estimate (D3), and the vjp and jvp of these four quantities with respect to ``x``, ``t``
and ``theta`` (D6), all derived by hand.  The derivation, and the program every backend
runs, is :mod:`ocp_learn.kernels.potential_reference`.

:class:`PotentialResNet` checks its arguments and hands the checked arrays to its
*backend* (:mod:`ocp_learn.kernels.potential_backend`), chosen once when the model is
built: ``numpy`` (the reference), ``numba`` (fused CPU kernels) or ``cupy`` (the GPU).

``theta`` is laid out as ``w (m,), A (r, d+1), b (d+1,), c (1,), K0 (m, d+1),
b0 (m,), K (M, m, m), bK (M, m)``.
"""
from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

from ..arrays import astype, concat, contiguous, copy, namespace
from ..errors import as_array, check_choice, check_positive_int, check_rng
from ..kernels.potential_backend import (DeviceBackend, PotentialBackend, checked_array,
                                         checked_vector, potential_backend)
from ..kernels.potential_reference import log_cosh
from ..params import ParamLayout

__all__ = ["PotentialResNet", "PotentialDerivatives", "log_cosh"]


class PotentialDerivatives(NamedTuple):
    """The potential and its derivatives at every sample.

    Returned by :meth:`PotentialResNet.derivatives` (values) and
    :meth:`PotentialResNet.derivatives_jvp` (tangents of the same quantities).

    Parameters
    ----------
    phi : array, shape (n,)
        ``Phi``.
    grad : array, shape (n, d)
        ``grad_x Phi``.
    dt : array, shape (n,)
        ``d_t Phi``.
    lap : array, shape (n,)
        The Laplacian ``Delta_x Phi`` (or its Hutchinson estimate).
    """

    phi: Any
    grad: Any
    dt: Any
    lap: Any


class PotentialResNet:
    r"""OT-Flow potential ``Phi(x, t; theta)`` (MATH D1) with derivatives (D2, D3, D6).

    Parameters
    ----------
    dim : int
        Spatial dimension ``d``; the network input is ``s = (x, t)`` of size ``d + 1``.
    width : int
        ResNet width ``m``.
    n_layers : int
        Number ``M >= 1`` of residual layers (step ``h = 1/M``).
    rank : int, optional
        Rank ``r`` of ``A`` (``r x (d+1)``); ``None`` means ``min(10, d + 1)``.
    trace : {"exact", "hutchinson"}
        ``lap`` is the exact trace (D3), or the Hutchinson estimate
        ``mean_k v_k^T Hess_x Phi v_k`` over the probes passed to each call.
    backend : {"numpy", "numba", "cupy"} or PotentialBackend
        The numpy reference (:mod:`ocp_learn.kernels.potential_numpy`), fused
        per-sample Numba kernels (:mod:`ocp_learn.kernels.potential_numba`) giving
        the same numbers, or the GPU (:mod:`ocp_learn.kernels.potential_cupy`: CuPy +
        cuBLAS + a numba-cuda activation kernel; needs a CUDA device); or any name
        registered with :func:`~ocp_learn.kernels.potential_backend.register_potential_backend`,
        or a backend object (``docs/backends.rst``; its own options then apply, not
        ``chunk``, ``path``, ``trace_path``).  A name is resolved to the backend object
        ``self.backend`` once, here.
    chunk : int, optional
        numpy backend: samples processed at once (bounds the ``(chunk, m, d)``
        Jacobians held); default from a 64 MB budget.  cupy backend: the same on
        the device; default from ``potential_cupy.CHUNK_BYTES`` (4 GiB).
    path : {"auto", "fused", "blas"}
        ``backend="numba"`` only: ``"fused"`` runs the per-sample kernels
        (``prange`` over samples); ``"blas"`` the chunked batched-GEMM program
        of the numpy reference (matrix products by BLAS); ``"auto"`` picks
        ``"fused"``, which measured faster for the CNF objective + gradient at
        every size tried, m = 32 and 128, d = 2 to 128, one and two threads
        (``benchmarks/results/kernels_fused_vs_blas.md``).
    trace_path : {"auto", "jacobian", "gram"}
        ``backend="numba"`` fused kernels, exact trace only: propagate the
        ``m x d`` Jacobians ``J_i`` (``O(M m^2 d)`` per sample), or their Gram
        matrices ``J_i J_i^T`` (``O(M m^3)``, independent of ``d``;
        :mod:`ocp_learn.kernels.potential_gram_numba`, the ``d``-dimensional
        products as GEMMs over the batch); ``"auto"`` takes the
        Gram path when ``d > m`` (``M = 1``) or ``d > 2m``.  Same numbers to rounding.

    Notes
    -----
    The derivation of every derivative is in :mod:`ocp_learn.kernels.potential_reference`.  The
    per-sample cost is ``O(M m^2 d)`` for the exact trace and its vjp/jvp
    (``O(M m^3)`` on the Gram path).
    """

    def __init__(self, dim: int, width: int = 32, n_layers: int = 1, rank: int | None = None,
                 trace: str = "exact", backend: str | PotentialBackend = "numpy",
                 chunk: int | None = None, path: str = "auto",
                 trace_path: str = "auto") -> None:
        self.dim = check_positive_int("dim", dim)
        self.width = check_positive_int("width", width)
        self.n_layers = check_positive_int("n_layers", n_layers)
        self.rank = min(10, self.dim + 1) if rank is None else check_positive_int("rank", rank)
        self.trace = check_choice("trace", trace, {"exact", "hutchinson"})
        self.chunk = None if chunk is None else check_positive_int("chunk", chunk)
        self.path = check_choice("path", path, {"auto", "fused", "blas"})
        self.trace_path = check_choice("trace_path", trace_path, {"auto", "jacobian", "gram"})
        if isinstance(backend, str):
            backend = potential_backend(backend, chunk=self.chunk, path=self.path,
                                        trace_path=self.trace_path)
        elif not isinstance(backend, PotentialBackend):
            raise TypeError("backend must be a backend name or a PotentialBackend, got "
                            f"{type(backend).__name__}")
        self.backend: PotentialBackend = backend
        m, D, M, r = self.width, self.dim + 1, self.n_layers, self.rank
        self.h = 1.0 / M
        self.layout = ParamLayout([("w", (m,)), ("A", (r, D)), ("b", (D,)), ("c", (1,)),
                                   ("K0", (m, D)), ("b0", (m,)), ("K", (M, m, m)), ("bK", (M, m))])

    # ---------------------------------------------------------------- basics
    @property
    def n_params(self) -> int:
        return self.layout.size

    @property
    def array_namespace(self) -> ModuleType:
        """The array namespace of the backend's computation: the device module of a
        :class:`~ocp_learn.kernels.potential_backend.DeviceBackend` (CuPy), else NumPy."""
        return self.backend.namespace if isinstance(self.backend, DeviceBackend) else np

    def unpack(self, theta: Any) -> dict:
        """Named views of ``theta`` (see :class:`~ocp_learn.params.ParamLayout`).

        Parameters
        ----------
        theta : array, shape (n_params,)
            The parameters.

        Returns
        -------
        dict
            Block name -> view of ``theta``.
        """
        return self.layout.unpack(theta)

    def __repr__(self) -> str:
        return (f"PotentialResNet(dim={self.dim}, width={self.width}, n_layers={self.n_layers}, "
                f"rank={self.rank}, trace={self.trace!r}, backend={self.backend.name!r})")

    def init_params(self, rng: Any = None) -> np.ndarray:
        """OT-Flow initialization.

        ``w = 1``, ``b = c = 0``; ``A`` Xavier-uniform; ``K0, b0, K_i, b_i`` uniform in
        ``+-1/sqrt(fan_in)`` (PyTorch's ``nn.Linear`` default).

        Parameters
        ----------
        rng : int, numpy.random.Generator or None, optional
            Seed or stream of the draw.

        Returns
        -------
        ndarray, shape (n_params,)
            The parameters.
        """
        rng = check_rng(rng, "rng")
        m, D, M, r = self.width, self.dim + 1, self.n_layers, self.rank
        bA = np.sqrt(6.0 / (r + D))
        p = {"w": np.ones(m), "A": rng.uniform(-bA, bA, (r, D)), "b": np.zeros(D),
             "c": np.zeros(1),
             "K0": rng.uniform(-1, 1, (m, D)) / np.sqrt(D), "b0": rng.uniform(-1, 1, m) / np.sqrt(D),
             "K": rng.uniform(-1, 1, (M, m, m)) / np.sqrt(m), "bK": rng.uniform(-1, 1, (M, m)) / np.sqrt(m)}
        return self.layout.pack(p)

    def sample_probes(self, n: int, rng: Any, k: int = 1, kind: str = "rademacher") -> np.ndarray:
        """``k`` probe vectors per sample: Rademacher (+-1) or standard Gaussian.

        Parameters
        ----------
        n : int
            Number of samples.
        rng : int or numpy.random.Generator
            Seed or stream of the draw.
        k : int, optional
            Probes per sample.
        kind : {"rademacher", "gaussian"}, optional
            Distribution of the entries.

        Returns
        -------
        ndarray, shape (k, n, d)
            The probes.
        """
        n = check_positive_int("n", n)
        k = check_positive_int("k", k)
        check_choice("kind", kind, {"rademacher", "gaussian"})
        rng = check_rng(rng, "rng")
        if kind == "rademacher":
            return rng.choice(np.array([-1.0, 1.0]), size=(k, n, self.dim))
        return rng.standard_normal((k, n, self.dim))

    # ---------------------------------------------------------------- input checks
    def _array(self, xp, name, v, shape):
        if xp is np:
            return as_array(name, v, ndim=len(shape), shape=shape)
        return checked_array(xp, name, v, shape)

    def _vector(self, xp, name, v, n):
        """A number or an ``(n,)`` array, as an ``(n,)`` array."""
        if xp is np:
            if np.ndim(v) == 0:
                return np.full(n, float(as_array(name, np.reshape(v, 1))[0]))
            return as_array(name, v, ndim=1, shape=(n,))
        return checked_vector(xp, name, v, n)

    def _inputs(self, xp, x, t, theta):
        """``(s, theta)``: the samples ``s = [x, t]`` (n, d+1) and ``theta``, checked, in ``xp``."""
        x = self._array(xp, "x", x, (None, self.dim))
        n = x.shape[0]
        tt = self._vector(xp, "t", t, n)
        theta = self._array(xp, "theta", theta, (self.n_params,))
        if xp is np:
            s = np.empty((n, self.dim + 1))
        else:  # a float32 state computes in float32 on a device
            s = xp.empty((n, self.dim + 1), dtype=x.dtype)
            tt, theta = astype(tt, x.dtype), astype(theta, x.dtype)
        s[:, :-1] = x
        s[:, -1] = tt
        return s, theta

    def directions(self, probes: Any, n: int, xp: ModuleType = np) -> Any:
        """``W`` of the trace for ``n`` samples: ``None`` (exact trace) or the checked
        ``probes`` as ``(n, d, k) / sqrt(k)`` (Hutchinson), in the array module ``xp``.

        Parameters
        ----------
        probes : array or None
            The probes, shape ``(k, n, d)`` or ``(n, d)``; None for the exact trace.
        n : int
            Number of samples.
        xp : module, optional
            The array namespace of the result.

        Returns
        -------
        array or None
            The directions ``W``, shape ``(n, d, k)``.

        Raises
        ------
        ValueError
            Probes given for the exact trace, missing for Hutchinson, or of a wrong shape.
        """
        if self.trace == "exact":
            if probes is not None:
                raise ValueError("probes are only used with trace='hutchinson'; this model has "
                                 "trace='exact', pass probes=None")
            return None
        if probes is None:
            raise ValueError("trace='hutchinson' needs probes of shape (k, n, d) or (n, d); "
                             "draw them with sample_probes(n, rng, k)")
        pr = as_array("probes", probes) if xp is np else checked_array(xp, "probes", probes)
        got = tuple(pr.shape)
        if pr.ndim == 2:
            pr = pr[None, ...]
        if pr.ndim != 3 or tuple(pr.shape[1:]) != (n, self.dim):
            raise ValueError(f"probes must have shape (k, {n}, {self.dim}) or ({n}, {self.dim}), "
                             f"got {got}")
        k = pr.shape[0]
        if xp is np:
            return np.ascontiguousarray(np.transpose(pr, (1, 2, 0))) / np.sqrt(k)
        permute = getattr(xp, "permute_dims", None) or xp.transpose
        return contiguous(permute(pr, (1, 2, 0))) / float(np.sqrt(k))

    def _bar(self, xp, name, v, shape, dtype=None):
        if v is None:
            return xp.zeros(shape) if dtype is None else xp.zeros(shape, dtype=dtype)
        return self._array(xp, name, v, shape)

    def _pack(self, xp, B):
        if xp is np:
            return self.layout.pack(B)
        return concat([xp.reshape(B[k], (-1,)) for k in self.layout.offsets])

    def _split(self, xp, D):
        """A :class:`PotentialDerivatives` from ``(phi, G = [grad_x, d_t], lap)``."""
        phi, G, lap = D
        d = self.dim
        return PotentialDerivatives(phi, contiguous(G[:, :d]), copy(G[:, d]), lap)

    # ---------------------------------------------------------------- stage calls of a field
    def _stage_inputs(self, xp, x, t, theta, probes):
        """``(P, s, W)`` from a field's own arrays, without the user-facing checks (the
        sweep checks the states once per step; a device then never waits for a check)."""
        n, d = x.shape[0], self.dim
        s = xp.empty((n, d + 1), dtype=x.dtype)
        s[:, :d] = x
        s[:, d] = float(t)
        W = None
        if probes is not None:
            pr = probes if probes.ndim == 3 else probes[None, ...]
            permute = getattr(xp, "permute_dims", None) or xp.transpose
            W = contiguous(permute(pr, (1, 2, 0))) / float(np.sqrt(pr.shape[0]))
        return self.unpack(astype(theta, x.dtype)), s, W

    def stage_derivatives(self, x: Any, t: float, theta: Any,
                          probes: Any = None) -> PotentialDerivatives:
        """:meth:`derivatives` at one time ``t`` for a field's stage on a device namespace.

        The same numbers, no argument checks (``x``, ``theta`` and ``probes`` are the
        field's own arrays, of one namespace and dtype).

        Parameters
        ----------
        x : array, shape (n, d)
            The points (the field's own array).
        t : float
            The time of the stage.
        theta : array, shape (n_params,)
            The parameters.
        probes : array, optional
            Hutchinson probes, shape ``(k, n, d)`` or ``(n, d)``.

        Returns
        -------
        PotentialDerivatives
            The derivatives, in the namespace of ``x``.
        """
        xp = namespace(x)
        P, s, W = self._stage_inputs(xp, x, t, theta, probes)
        return self._split(xp, self.backend.derivatives(P, s, W, self.h))

    def stage_vjp(self, x: Any, t: float, theta: Any, grad_bar: Any, dt_bar: Any,
                  lap_bar: Any, probes: Any = None) -> tuple[Any, Any, Any]:
        """:meth:`derivatives_vjp` (``phi_bar = 0``) at one time ``t`` for a field's stage.

        For a device namespace, without argument checks.

        Parameters
        ----------
        x : array, shape (n, d)
            The points (the field's own array).
        t : float
            The time of the stage.
        theta : array, shape (n_params,)
            The parameters.
        grad_bar : array, shape (n, d)
            Cotangent of ``grad_x Phi``.
        dt_bar : array, shape (n,), or None
            Cotangent of ``d_t Phi`` (None: zero).
        lap_bar : array, shape (n,)
            Cotangent of the Laplacian.
        probes : array, optional
            Hutchinson probes, shape ``(k, n, d)`` or ``(n, d)``.

        Returns
        -------
        x_bar : array, shape (n, d)
            Pullback to the points.
        t_bar : array, shape (n,)
            Pullback to the time, per sample.
        theta_bar : array, shape (n_params,)
            Pullback to the parameters, summed over samples.
        """
        xp = namespace(x)
        P, s, W = self._stage_inputs(xp, x, t, theta, probes)
        n, d = s.shape[0], self.dim
        Gbar = xp.zeros((n, d + 1), dtype=s.dtype)
        Gbar[:, :d] = grad_bar
        if dt_bar is not None:
            Gbar[:, d] = dt_bar
        phibar = xp.zeros(n, dtype=s.dtype)
        sbar, B = self.backend.derivatives_vjp(P, s, W, self.h, phibar, Gbar,
                                               astype(lap_bar, s.dtype))
        return contiguous(sbar[:, :d]), copy(sbar[:, d]), self._pack(xp, B)

    # ---------------------------------------------------------------- evaluation
    def phi(self, x: Any, t: Any, theta: Any) -> np.ndarray:
        """``Phi(x, t; theta)`` per sample (D1).

        Parameters
        ----------
        x : ndarray, shape (n, d)
            The points.
        t : float or ndarray, shape (n,)
            The time (one for all samples, or one per sample).
        theta : ndarray, shape (n_params,)
            The parameters.

        Returns
        -------
        ndarray, shape (n,)
            The potential.
        """
        s, theta = self._inputs(self.backend.array_module(x, t, theta), x, t, theta)
        return self.backend.phi(self.unpack(theta), s, self.h)

    def phi_vjp(self, x: Any, t: Any, theta: Any) -> tuple[np.ndarray, Callable]:
        """``(Phi, pullback)``: ``Phi(x, t; theta)`` per sample (D1) and its reverse-mode
        derivative ``pullback(phi_bar) -> (x_bar (n, d), t_bar (n,), theta_bar)``.

        Plain backpropagation through D1 -- no gradient, time derivative or Laplacian
        terms -- for the cotangents that reach ``Phi`` alone (the terminal HJB penalty,
        MATH F ``c_HJB,T``): three GEMMs of width ``m + r`` over the batch
        (:func:`ocp_learn.kernels.potential_reference.phi_vjp`).  The same numbers as
        :meth:`derivatives_vjp` with only ``phi_bar`` (to rounding).

        Parameters
        ----------
        x : ndarray, shape (n, d)
            The points.
        t : float or ndarray, shape (n,)
            The time (one for all samples, or one per sample).
        theta : ndarray, shape (n_params,)
            The parameters.

        Returns
        -------
        phi : ndarray, shape (n,)
            The potential.
        pullback : callable
            ``pullback(phi_bar) -> (x_bar, t_bar, theta_bar)``.
        """
        xp = self.backend.array_module(x, t, theta)
        s, theta = self._inputs(xp, x, t, theta)
        value, pull = self.backend.phi_vjp(self.unpack(theta), s, self.h)
        d = self.dim

        def pullback(phi_bar):
            sbar, B = pull(astype(self._bar(xp, "phi_bar", phi_bar, value.shape), s.dtype))
            return copy(sbar[:, :d]), copy(sbar[:, d]), self._pack(xp, B)

        return value, pullback

    def derivatives(self, x: Any, t: Any, theta: Any, probes: Any = None) -> PotentialDerivatives:
        """``Phi``, ``grad_x Phi``, ``d_t Phi`` (D2) and ``lap_x Phi`` (D3) per sample.

        Parameters
        ----------
        x : ndarray, shape (n, d)
            The points.
        t : float or ndarray, shape (n,)
            The time (one for all samples, or one per sample).
        theta : ndarray, shape (n_params,)
            The parameters.
        probes : ndarray, shape (k, n, d) or (n, d), optional
            Only (and required) for ``trace="hutchinson"``: ``lap`` is then
            ``mean_k probes[k]^T Hess_x Phi probes[k]``.

        Returns
        -------
        PotentialDerivatives
            In the array module of the backend for these arguments (CuPy arrays on the
            cupy backend when any argument is a CuPy array).
        """
        xp = self.backend.array_module(x, t, theta, probes)
        s, theta = self._inputs(xp, x, t, theta)
        W = self.directions(probes, s.shape[0], xp)
        return self._split(xp, self.backend.derivatives(self.unpack(theta), s, W, self.h))

    def derivatives_vjp(self, x: Any, t: Any, theta: Any, phi_bar: Any = None,
                        grad_bar: Any = None, dt_bar: Any = None, lap_bar: Any = None,
                        probes: Any = None) -> tuple[Any, Any, Any]:
        """vjp of ``(Phi, grad_x Phi, d_t Phi, lap_x Phi)`` with respect to ``x``, ``t``, ``theta`` (D6).

        The results are in the array module of the backend for these arguments, as
        for :meth:`derivatives`.

        Parameters
        ----------
        x : ndarray, shape (n, d)
            The points.
        t : float or ndarray, shape (n,)
            The time (one for all samples, or one per sample).
        theta : ndarray, shape (n_params,)
            The parameters.
        phi_bar : ndarray, shape (n,), optional
            Cotangent of ``Phi`` (None: zero).
        grad_bar : ndarray, shape (n, d), optional
            Cotangent of ``grad_x Phi`` (None: zero).
        dt_bar : ndarray, shape (n,), optional
            Cotangent of ``d_t Phi`` (None: zero).
        lap_bar : ndarray, shape (n,), optional
            Cotangent of the Laplacian (None: zero).
        probes : ndarray, shape (k, n, d) or (n, d), optional
            Only (and required) for ``trace="hutchinson"``.

        Returns
        -------
        x_bar : ndarray, shape (n, d)
            Pullback to the points.
        t_bar : ndarray, shape (n,)
            Per-sample (sum it if ``t`` was a shared scalar).
        theta_bar : ndarray, shape (n_params,)
            Summed over samples.
        """
        xp = self.backend.array_module(x, t, theta, phi_bar, grad_bar, dt_bar, lap_bar, probes)
        s, theta = self._inputs(xp, x, t, theta)
        n, d = s.shape[0], self.dim
        W = self.directions(probes, n, xp)
        dt = None if xp is np else s.dtype
        phibar = self._bar(xp, "phi_bar", phi_bar, (n,), dt)
        lapbar = self._bar(xp, "lap_bar", lap_bar, (n,), dt)
        Gbar = xp.empty((n, d + 1)) if xp is np else xp.empty((n, d + 1), dtype=dt)
        Gbar[:, :d] = self._bar(xp, "grad_bar", grad_bar, (n, d), dt)
        Gbar[:, d] = self._bar(xp, "dt_bar", dt_bar, (n,), dt)
        if xp is not np:
            phibar, lapbar = astype(phibar, dt), astype(lapbar, dt)
        sbar, B = self.backend.derivatives_vjp(self.unpack(theta), s, W, self.h, phibar, Gbar,
                                               lapbar)
        return contiguous(sbar[:, :d]), copy(sbar[:, d]), self._pack(xp, B)

    def derivatives_jvp(self, x: Any, t: Any, theta: Any, dx: Any = None, dt: Any = None,
                        dtheta: Any = None, probes: Any = None) -> PotentialDerivatives:
        """Tangent of ``(Phi, grad_x Phi, d_t Phi, lap_x Phi)`` along ``(dx, dt, dtheta)`` (D6).

        Parameters
        ----------
        x : ndarray, shape (n, d)
            The points.
        t : float or ndarray, shape (n,)
            The time (one for all samples, or one per sample).
        theta : ndarray, shape (n_params,)
            The parameters.
        dx : ndarray, shape (n, d), optional
            Direction of the points (None: zero).
        dt : float or ndarray, shape (n,), optional
            Direction of the time (None: zero).
        dtheta : ndarray, shape (n_params,), optional
            Direction of the parameters (None: zero).
        probes : ndarray, shape (k, n, d) or (n, d), optional
            Only (and required) for ``trace="hutchinson"``.

        Returns
        -------
        PotentialDerivatives
            The tangents (the directional derivatives used by Gauss--Newton, MATH G1),
            in the array module of the backend for these arguments, as :meth:`derivatives`.
        """
        xp = self.backend.array_module(x, t, theta, dx, dt, dtheta, probes)
        s, theta = self._inputs(xp, x, t, theta)
        n, d = s.shape[0], self.dim
        W = self.directions(probes, n, xp)
        ds = xp.zeros_like(s)
        if dx is not None:
            ds[:, :d] = self._array(xp, "dx", dx, (n, d))
        if dt is not None:
            ds[:, d] = self._vector(xp, "dt", dt, n)
        dth = (xp.zeros(self.n_params, dtype=s.dtype) if dtheta is None
               else astype(self._array(xp, "dtheta", dtheta, (self.n_params,)), s.dtype))
        return self._split(xp, self.backend.derivatives_jvp(self.unpack(theta), self.unpack(dth),
                                                            s, ds, W, self.h))
