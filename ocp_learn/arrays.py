"""Array-module helpers: the namespace (``xp``) of the arrays a computation receives.

The sweeps, integrators and gradient strategies never choose an array library: they take
it from the states they are handed (:func:`namespace`), so NumPy states give NumPy
results, CuPy states stay on their device and ``array_api_strict`` arrays go through the
array API standard only.  Scratch arrays that a sweep reuses from step to step live in a
:class:`Workspace`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["namespace", "is_numpy", "copy", "scalar", "to_host", "to_namespace", "concat",
           "astype", "contiguous", "resident", "Workspace"]


def namespace(*arrays: Any) -> Any:
    """The array namespace ``xp`` of ``arrays``.

    Parameters
    ----------
    *arrays
        Arrays; ``None`` entries and Python scalars are skipped.

    Returns
    -------
    module
        NumPy for NumPy arrays, CuPy for CuPy arrays, ``x.__array_namespace__()`` (the array
        API standard's entry point) for other arrays that have it; NumPy for arrays without
        it and when no array is given.

    Raises
    ------
    TypeError
        If the arrays come from different namespaces.
    """
    if len(arrays) == 1 and type(arrays[0]) is np.ndarray:  # the host path's common case
        return np
    xp = None
    for x in arrays:
        if type(x) is np.ndarray:
            ns = np
        elif x is None or isinstance(x, (bool, int, float, complex)):
            continue
        elif type(x).__module__.partition(".")[0] == "cupy":
            import cupy  # a CuPy array: its own module (whatever its __array_namespace__)
            ns = cupy
        else:
            try:
                ns = x.__array_namespace__()
            except AttributeError:
                ns = np
        if xp is None:
            xp = ns
        elif ns is not xp:
            raise TypeError(f"arrays must come from one array namespace, got {xp.__name__} and "
                            f"{ns.__name__} arrays")
    return np if xp is None else xp


def is_numpy(xp: Any) -> bool:
    """Whether ``xp`` is NumPy itself (the host path, where NumPy-only fast paths apply)."""
    return xp is np


def to_host(x: Any) -> Any:
    """``x`` as a NumPy array (a device array is copied to the host; ``None`` stays ``None``).

    NumPy arrays are returned as they are; CuPy arrays through ``.get()``; other
    namespaces' arrays through the DLPack protocol (``numpy.from_dlpack``).
    """
    if x is None or isinstance(x, np.ndarray):
        return x
    if isinstance(x, (bool, int, float, np.generic)):
        return np.asarray(x)
    if type(x).__module__.partition(".")[0] == "cupy":
        return x.get()
    return np.from_dlpack(x)


def to_namespace(x: Any, xp: Any, dtype: Any = None) -> Any:
    """``x`` as an array of the namespace ``xp`` (copied to its device when it lives elsewhere),
    in ``dtype`` when given; a NumPy ``xp`` returns NumPy arrays unchanged (no copy)."""
    if x is None:
        return None
    if xp is np:
        a = to_host(x)
        return a if dtype is None or a.dtype == np.dtype(dtype) else a.astype(dtype)
    if namespace(x) is not xp:
        x = np.asarray(to_host(x))
    a = xp.asarray(x)
    return a if dtype is None else astype(a, dtype)


def concat(arrays: Any, axis: int = 0) -> Any:
    """``concat`` of the array API (``concatenate`` where a namespace has only that name)."""
    xp = namespace(*arrays)
    f = getattr(xp, "concat", None) or xp.concatenate
    return f(list(arrays), axis=axis)


def astype(x: Any, dtype: Any) -> Any:
    """``x`` in ``dtype`` (``x`` itself when it already is): ``xp.astype`` of the array API,
    or the array's ``astype`` method where a namespace lacks the function."""
    if x.dtype == dtype:
        return x
    f = getattr(namespace(x), "astype", None)
    return f(x, dtype) if f is not None else x.astype(dtype)


def contiguous(x: Any) -> Any:
    """A C-contiguous ``x``: ``numpy.ascontiguousarray`` on NumPy and CuPy (no copy when it
    already is), a copy on namespaces that do not expose memory layout."""
    xp = namespace(x)
    f = getattr(xp, "ascontiguousarray", None)
    return f(x) if f is not None else copy(x)


def copy(x: Any) -> Any:
    """A copy of the array ``x`` that owns its memory, in ``x``'s namespace."""
    if type(x) is np.ndarray:
        return x.copy()
    out = namespace(x).empty_like(x)
    out[...] = x
    return out


def scalar(a: Any, xp: Any) -> Any:
    """The coefficient ``a`` (a step size or a tableau weight) as ``xp`` arithmetic takes it.

    NumPy keeps ``a`` as it is (a NumPy float64 scalar follows NumPy's promotion rules);
    other namespaces get a Python ``float``, the only scalar the array API standard mixes
    with arrays.
    """
    return a if xp is np else float(a)


def resident(owner: Any, name: str, like: Any) -> Any:
    """The constant array ``owner.<name>`` (held on the host, e.g. a fixed matrix or labels)
    in the array namespace of the states ``like``.

    NumPy returns the host array itself (NumPy's promotion rules apply as they are).
    Another namespace gets a copy, made on the first request and kept in ``owner`` (made
    again only when ``owner.<name>`` is replaced), so a device sweep copies each constant
    once; a floating-point constant takes the floating dtype of ``like`` there (a float32
    problem computes in float32 on a device), integer ones (class labels) keep theirs.
    """
    host = getattr(owner, name)
    xp = namespace(like)
    if xp is np:
        return host
    dtype = like.dtype if np.asarray(host).dtype.kind == "f" else None
    cache = owner.__dict__.setdefault("_resident", {})
    key = (name, xp.__name__, str(dtype))
    entry = cache.get(key)
    if entry is None or entry[0] is not host:
        entry = cache[key] = (host, to_namespace(host, xp, dtype))
    return entry[1]


class Workspace:
    """Scratch arrays of one sweep, reused across its steps (allocated once per key).

    An entry is keyed by a *slot* name chosen by the caller together with the shape,
    dtype and array type it is asked for, so one workspace serves states of several
    shapes (a batch and its subsets) without mixing them.  An array handed out is
    overwritten by the next request of the same key: callers keep nothing from it
    beyond the step that asked for it (stored tapes own their arrays).
    """

    __slots__ = ("_arrays",)

    def __init__(self) -> None:
        self._arrays: dict = {}

    def empty(self, slot: Any, like: Any, dtype: Any = None) -> Any:
        """An uninitialized array of ``like``'s shape, namespace and dtype (or ``dtype``)."""
        dtype = like.dtype if dtype is None else dtype
        key = (slot, tuple(like.shape), dtype, type(like))
        out = self._arrays.get(key)
        if out is None:
            out = self._arrays[key] = namespace(like).empty_like(like, dtype=dtype)
        return out

    def array(self, slot: Any, shape: tuple, dtype: Any, xp: Any = np) -> Any:
        """An uninitialized ``xp`` array of ``shape`` and ``dtype`` (same keying as
        :meth:`empty`)."""
        key = (slot, tuple(shape), np.dtype(dtype), xp)
        out = self._arrays.get(key)
        if out is None:
            out = self._arrays[key] = xp.empty(shape, dtype=dtype)
        return out

    def __len__(self) -> int:
        return len(self._arrays)

