"""The backend interface of the OT-Flow potential and the registry of its implementations.

A :class:`~ocp_learn.models.potential.PotentialResNet` holds one backend object, chosen
when the model is built (``PotentialResNet(..., backend="numba")``) and asked for every
derivative afterwards.  The model checks the user's arguments and unpacks ``theta``; the
backend computes on checked arrays:

* ``P`` -- the parameter blocks ``w, A, b, c, K0, b0, K, bK`` (a dict of arrays,
  :meth:`~ocp_learn.params.ParamLayout.unpack`);
* ``S`` -- the samples ``s = [x, t]``, shape ``(n, d+1)``;
* ``W`` -- ``None`` for the exact trace, else the Hutchinson directions ``(n, d, k)``
  (the probes divided by ``sqrt(k)``);
* ``h`` -- the residual step ``1 / M``.

Backends are registered by name (:func:`register_potential_backend`); the numpy backend
(:mod:`.potential_numpy`) is the reference every other backend is tested against.  See
``docs/backends.rst`` for how to add one.
"""
from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..arrays import astype, contiguous
from .registry import BackendRegistry

__all__ = ["PotentialBackend", "FusedFlowBackend", "DeviceBackend", "register_potential_backend",
           "potential_backend", "potential_backends", "checked_array", "checked_vector"]


@runtime_checkable
class PotentialBackend(Protocol):
    """How a backend computes the potential ``Phi(s; theta)`` and its derivatives.

    1. ``name`` -- the registered name (``"numpy"``, ``"numba"``, ``"cupy"``, ...).
    2. ``fused_flow`` -- ``True`` when the backend also offers the fused right-hand side
       and adjoint of the potential flow field (:class:`FusedFlowBackend`).
    3. ``array_module(*args)`` -- the array module the results for these arguments come
       back in (NumPy on the CPU backends; CuPy for device arrays on the GPU backend).
    4. ``derivatives(P, S, W, h)`` -> ``(phi (n,), G (n, d+1), lap (n,))``: ``Phi``, its
       gradient ``G = grad_s Phi = [grad_x Phi, d_t Phi]`` (D2) and the (estimated)
       Laplacian ``lap`` (D3).
    5. ``derivatives_vjp(P, S, W, h, phibar, Gbar, lapbar)`` -> ``(sbar (n, d+1), B)``:
       the adjoint (D6); ``B`` a dict of parameter cotangents summed over samples.
    6. ``derivatives_jvp(P, T, S, dS, W, h)`` -> ``(dphi, dG, dlap)``: the tangent along
       the parameter tangents ``T`` (a dict like ``P``) and ``dS (n, d+1)``.
    7. ``phi(P, S, h)`` -> ``Phi (n,)``, and ``phi_vjp(P, S, h)`` -> ``(Phi, pullback)``
       with ``pullback(phibar) -> (sbar (n, d+1), B)`` (D1 alone).
    """

    name: str
    fused_flow: bool

    def array_module(self, *args: Any) -> ModuleType: ...

    def derivatives(self, P: dict, S: Any, W: Any, h: float) -> tuple: ...

    def derivatives_vjp(self, P: dict, S: Any, W: Any, h: float, phibar: Any, Gbar: Any,
                        lapbar: Any) -> tuple: ...

    def derivatives_jvp(self, P: dict, T: dict, S: Any, dS: Any, W: Any, h: float) -> tuple: ...

    def phi(self, P: dict, S: Any, h: float) -> Any: ...

    def phi_vjp(self, P: dict, S: Any, h: float) -> tuple[Any, Callable]: ...


@runtime_checkable
class FusedFlowBackend(PotentialBackend, Protocol):
    """A backend that also runs the potential flow field's stage computations fused
    (MATH D4): :class:`~ocp_learn.models.potential_flow.PotentialFlowField` calls these
    when ``fused_flow`` is ``True``.

    With ``x`` the states ``(n, d)`` (a view of the field's state), ``t`` a scalar time,
    ``a1`` the kinetic weight, ``c_R`` the column of the HJB residual (``-1``: none) and
    ``extra (n,)`` the interaction part ``-a2 sum_j dF_j/drho`` of the residual (E4):

    8. ``flow_rhs(P, x, t, W, h, a1, c_R, extra, out, keep)`` writes the columns
       ``[:d+2]`` and ``c_R`` of the field's right-hand side into ``out`` and returns the
       residuals ``aux`` (or ``None``) that ``flow_vjp`` may reuse (with ``keep``).
    9. ``flow_vjp(P, x, t, W, h, a1, c_R, extra, ybar, out, wR, aux)`` writes the state
       cotangent ``out[:, :d]`` and the HJB weights ``wR (n,)`` and returns ``B``.
    10. ``flow_aux_floats(n, d, m, M, r, exact)`` -- floats of ``aux`` for ``n`` samples
        (width ``m``, ``M`` residual layers, rank ``r`` of ``A``, exact trace or not).
    """

    def flow_rhs(self, P: dict, x: Any, t: float, W: Any, h: float, a1: float, c_R: int,
                 extra: Any, out: Any, keep: bool) -> Any: ...

    def flow_vjp(self, P: dict, x: Any, t: float, W: Any, h: float, a1: float, c_R: int,
                 extra: Any, ybar: Any, out: Any, wR: Any, aux: Any) -> dict: ...

    def flow_aux_floats(self, n: int, d: int, m: int, M: int, r: int, exact: bool) -> int: ...


@runtime_checkable
class DeviceBackend(Protocol):
    """A backend that keeps the whole computation in another array namespace (a device).

    ``namespace`` is that module (CuPy for the ``cupy`` backend).  A model on such a
    backend declares it as its ``array_namespace``, and :class:`~ocp_learn.OCP` then keeps
    the samples, states, stages, tapes and adjoints there (only ``theta``, the gradient and
    scalars cross to the host).  CPU backends do not declare it: their namespace is NumPy.
    """

    namespace: ModuleType


#: the potential's backends: name -> factory ("module:attribute" is imported on first use)
REGISTRY = BackendRegistry("PotentialResNet", PotentialBackend, {
    "numpy": "ocp_learn.kernels.potential_numpy:NumpyPotentialBackend",
    "numba": "ocp_learn.kernels.potential_numba:numba_potential_backend",
    "cupy": "ocp_learn.kernels.potential_cupy:CupyPotentialBackend",
})


def register_potential_backend(name: str, factory: Callable[..., PotentialBackend] | str) -> None:
    """Make ``PotentialResNet(backend=name)`` build its backend with ``factory``.

    Parameters
    ----------
    name : str
        The name users pass as ``backend=``.
    factory : callable or str
        Called as ``factory(chunk=..., path=..., trace_path=...)`` (the model's options;
        a factory takes the ones it uses and ignores the rest through ``**options``) and
        returns a :class:`PotentialBackend`; or ``"package.module:attribute"`` naming
        such a callable, imported on first use.
    """
    REGISTRY.register(name, factory)


def potential_backends() -> list[str]:
    """The registered backend names."""
    return REGISTRY.names()


def potential_backend(name: str, **options: Any) -> PotentialBackend:
    """The backend registered as ``name``, built with the model's ``options``."""
    return REGISTRY.create(name, **options)


def checked_array(xp: ModuleType, name: str, v: Any, shape: tuple | None = None) -> Any:
    """``v`` as a contiguous, finite float64 array of module ``xp``.

    ``shape`` entries ``None`` are free.  Raises ``TypeError`` for non-numeric input and
    ``ValueError`` naming ``name`` for a wrong shape or non-finite entries.
    """
    if v is None or isinstance(v, (str, bytes)):
        raise TypeError(f"{name} must be an array of numbers, got {type(v).__name__}")
    try:
        a = xp.asarray(v)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be array-like in {xp.__name__}, got {type(v).__name__}") from exc
    kind = getattr(a.dtype, "kind", None)  # NumPy-style dtypes; else the array API's isdtype
    real = (kind in tuple("biuf") if kind is not None
            else xp.isdtype(a.dtype, ("bool", "integral", "real floating")))
    if not real:
        raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
    if a.dtype != xp.float32:  # float32 stays float32 (a float32 problem's states)
        a = astype(a, xp.float64)
    if a.ndim:
        a = contiguous(a)
    if shape is not None and (a.ndim != len(shape) or
                              any(s is not None and s != z for s, z in zip(shape, a.shape))):
        want = tuple("any" if s is None else s for s in shape)
        raise ValueError(f"{name} must have shape {want}, got {tuple(a.shape)}")
    if not bool(xp.all(xp.isfinite(a))):
        raise ValueError(f"{name} contains non-finite values (inf or NaN)")
    return a


def checked_vector(xp: ModuleType, name: str, v: Any, n: int) -> Any:
    """A number (or 0-d array) broadcast to ``(n,)``, or an ``(n,)`` array, in module ``xp``
    (:func:`checked_array`)."""
    if np.ndim(v) == 0:  # reads v.ndim where it exists (also for device arrays)
        return xp.zeros(n, dtype=xp.float64) + checked_array(xp, name, v, ())
    return checked_array(xp, name, v, (n,))
