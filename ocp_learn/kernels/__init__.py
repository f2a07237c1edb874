"""Compute backends of the models: ``numpy`` (readable reference), ``numba`` (fused CPU
kernels, the default on the CPU where a model offers it), ``cupy`` (GPU: cuBLAS matrix
products + numba-cuda fused kernels).

A model resolves its ``backend`` name once, through its family's registry, to a backend
object that follows the family's protocol: :mod:`.potential_backend` for
:class:`~ocp_learn.models.potential.PotentialResNet`, :mod:`.mlp_backend` for
:class:`~ocp_learn.models.mlp.SingleLayerNet` (``docs/backends.rst``: how to add one).
This package never imports the models.

* :func:`available_backends` / :func:`check_backend` -- which backends can run here
  (CuPy is imported lazily and only counts when ``cupy.cuda.is_available()``);
* :func:`default_backend` -- ``"numba"`` when Numba imports, else ``"numpy"``;
* :func:`set_num_threads` / :func:`get_num_threads` -- the thread count of the Numba
  kernels (``numba.set_num_threads``, always called from Python, never inside a kernel)
  and, when ``threadpoolctl`` is installed, of the BLAS used by the GEMM paths.
"""
from __future__ import annotations

import importlib

from ..errors import BackendUnavailableError, check_choice, check_positive_int

__all__ = ["BACKENDS", "available_backends", "check_backend", "default_backend",
           "set_num_threads", "get_num_threads", "cupy_available", "numba_available"]

#: every backend name a model may accept
BACKENDS = ("numpy", "numba", "cupy")


def numba_available():
    """True when ``numba`` imports.

    Returns
    -------
    bool
        Whether the numba backend can run.
    """
    try:
        importlib.import_module("numba")
    except ImportError:  # pragma: no cover - numba is a dependency
        return False
    return True


def cupy_available():
    """True when ``cupy`` imports AND a CUDA device is usable (``cupy.cuda.is_available()``).

    Returns
    -------
    bool
        Whether the cupy backend can run.
    """
    try:
        cupy = importlib.import_module("cupy")
    except ImportError:
        return False
    try:
        return bool(cupy.cuda.is_available())
    except Exception:  # pragma: no cover - broken driver installs
        return False


def available_backends():
    """Names of the backends that can run on this machine, in :data:`BACKENDS` order.

    Returns
    -------
    list of str
        The backends.
    """
    ok = {"numpy": True, "numba": numba_available(), "cupy": cupy_available()}
    return [b for b in BACKENDS if ok[b]]


def default_backend():
    """``"numba"`` on the CPU when available, else ``"numpy"``.

    Returns
    -------
    str
        The backend name.
    """
    return "numba" if numba_available() else "numpy"


def check_backend(backend, allowed=BACKENDS):
    """Validate a backend name and that it can run here.

    Parameters
    ----------
    backend : str or None
        One of :data:`BACKENDS`; None: :func:`default_backend`.
    allowed : tuple of str, optional
        The backends the caller offers.

    Returns
    -------
    str
        The backend name.

    Raises
    ------
    ValueError
        Unknown name, or a backend not offered by the caller (``allowed``).
    BackendUnavailableError
        A known backend whose library or device is missing (e.g. ``"cupy"`` with no GPU);
        a ``RuntimeError`` and an ``ImportError``.
    """
    if backend is None:
        backend = default_backend()
    check_choice("backend", backend, set(allowed))
    if backend not in available_backends():
        what = "cupy with a CUDA device" if backend == "cupy" else backend
        raise BackendUnavailableError(f"backend={backend!r} needs {what}, which is not available here; "
                           f"available: {available_backends()}")
    return backend


def set_num_threads(n):
    """Set the threads of the Numba kernels and (with ``threadpoolctl``) of BLAS.

    Parameters
    ----------
    n : int
        At most ``numba.config.NUMBA_NUM_THREADS`` (the pool size fixed at start-up).

    Returns
    -------
    int
        The previous thread count of the Numba kernels.
    """
    import numba

    n = check_positive_int("n", n)
    if n > numba.config.NUMBA_NUM_THREADS:
        raise ValueError(f"n must be <= NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS} "
                         f"(set that environment variable before starting Python), got {n}")
    old = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return old
    threadpool_limits(limits=n, user_api="blas")
    return old


def get_num_threads():
    """Current thread count of the Numba kernels (read from Python).

    Returns
    -------
    int
        The thread count.
    """
    import numba

    return numba.get_num_threads()
