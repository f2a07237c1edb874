"""Errors and input validation shared by every public entry point.

Every check raises ``ValueError`` or ``TypeError`` whose message names the
argument and says what was expected, so that a user sees *which* input is
wrong, not a traceback from deep inside a sweep.
"""
from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "NonFiniteError",
    "CheckpointError",
    "BackendUnavailableError",
    "as_array",
    "check_positive_int",
    "check_positive_float",
    "check_nonneg_int",
    "check_choice",
    "check_rng",
]


class NonFiniteError(FloatingPointError):
    """A forward solve or an objective produced ``inf`` or ``NaN``.

    Raised instead of returning a silent NaN.

    Parameters
    ----------
    message : str
        What became non-finite, and where.
    step : int or None, optional
        The time step at which the solution first became non-finite (``None`` if
        not a sweep); kept as the attribute ``step``.
    """

    def __init__(self, message, step=None):
        super().__init__(message)
        self.step = step


class BackendUnavailableError(ImportError, RuntimeError):
    """A backend was asked for whose library or device is missing on this machine (e.g.
    ``backend="cupy"`` without CuPy or without a CUDA device).  The message names the
    backend and the backends available here."""


class CheckpointError(ValueError):
    """A checkpoint file cannot be used: empty, truncated or corrupt, missing an entry, or
    written by a different problem or optimizer run.

    The message names the file and what is wrong; ``differences`` lists the mismatching
    settings as ``(key, saved value, current value)`` triples (empty for damaged files).
    """

    def __init__(self, message, differences=()):
        super().__init__(message)
        self.differences = list(differences)


def as_array(name, x, *, ndim=None, shape=None, dtype=np.float64, finite=True,
             min_rows=None):
    """Convert ``x`` to a float array, checking rank, shape and finiteness.

    Parameters
    ----------
    name : str
        The argument's name, quoted in error messages.
    x : array_like
    ndim : int, optional
        Required number of dimensions.
    shape : tuple, optional
        Required shape; ``None`` entries are free.
    dtype : numpy dtype
        Target floating dtype (float64 by default).
    finite : bool
        Reject ``inf``/``NaN`` entries.
    min_rows : int, optional
        Reject arrays with fewer rows (e.g. empty data sets); a data array given
        ``min_rows`` must also have at least one column.

    Returns
    -------
    ndarray
        C-contiguous, of ``dtype``.

    Raises
    ------
    TypeError
        For strings, ``None``, objects, complex numbers or non-numeric dtypes.
    ValueError
        For a wrong rank or shape, too few rows, no columns, or non-finite entries.
    """
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__}")
    try:
        arr = np.asarray(x)
    except Exception as exc:  # pragma: no cover - exotic objects
        raise TypeError(f"{name} must be array-like, got {type(x).__name__}") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name} must be real, got complex dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    if shape is not None:
        if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
            want = tuple("any" if s is None else s for s in shape)
            raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    if min_rows is not None and (arr.ndim == 0 or arr.shape[0] < min_rows):
        raise ValueError(f"{name} must have at least {min_rows} row(s), got shape {arr.shape}")
    if min_rows is not None and arr.ndim >= 2 and 0 in arr.shape[1:]:
        raise ValueError(f"{name} must have at least one column (feature), got shape {arr.shape}")
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains non-finite values (inf or NaN)")
    return arr


def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def check_positive_int(name, v):
    """Return ``int(v)`` if it is an integer >= 1, else raise naming ``name``."""
    if not _is_int(v):
        raise TypeError(f"{name} must be a positive integer, got {v!r}")
    if v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v}")
    return int(v)


def check_nonneg_int(name, v):
    """Return ``int(v)`` if it is an integer >= 0, else raise naming ``name``."""
    if not _is_int(v):
        raise TypeError(f"{name} must be a non-negative integer, got {v!r}")
    if v < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {v}")
    return int(v)


def check_positive_float(name, v, *, allow_zero=False):
    """Return ``float(v)`` if it is a finite number > 0 (>= 0 with ``allow_zero``)."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {v!r}")
    v = float(v)
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        what = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be a finite {what} number, got {v}")
    return v


def check_choice(name, v, choices):
    """Return ``v`` if it is one of ``choices``, else raise listing them."""
    if v not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {v!r}")
    return v


def check_rng(seed_or_rng, name="seed"):
    """Return a ``numpy.random.Generator`` from a seed, a Generator or None.

    Parameters
    ----------
    seed_or_rng : int, numpy.random.Generator or None
        A non-negative seed (reproducible draws), a Generator (returned as it is) or
        ``None``: fresh entropy from the operating system, NumPy's convention
        (``numpy.random.default_rng()``).
    name : str
        The argument's name, quoted in error messages.

    Returns
    -------
    numpy.random.Generator
    """
    if isinstance(seed_or_rng, np.random.Generator):
        return seed_or_rng
    if seed_or_rng is None:
        return np.random.default_rng()
    if _is_int(seed_or_rng) and seed_or_rng >= 0:
        return np.random.default_rng(int(seed_or_rng))
    raise TypeError(f"{name} must be a non-negative int, a numpy.random.Generator or None, "
                    f"got {seed_or_rng!r}")
