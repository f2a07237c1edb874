"""The ``cupy`` backend of the single-layer network ``f(z) = K2 tanh(K1 z + b1) + b2``
(MATH A1): the reference program of :mod:`.mlp_numpy` on device arrays.

The reference calls only the array API on its inputs, so on CuPy arrays every matrix
product is a cuBLAS GEMM and the elementwise steps are CuPy kernels; the states, the
parameters' views and the cotangents stay on the device.  The backend declares its
namespace (:class:`~.potential_backend.DeviceBackend`), so that
:class:`~ocp_learn.OCP` keeps the whole sweep there.

CuPy is imported only when this backend is built without ``xp``.
"""
from __future__ import annotations

from types import ModuleType
from typing import Any

from .mlp_numpy import NumpyMLPBackend

__all__ = ["ArrayMLPBackend"]


class ArrayMLPBackend(NumpyMLPBackend):
    """The reference backend of :class:`~ocp_learn.models.mlp.SingleLayerNet` in a device
    namespace.

    Parameters
    ----------
    xp : module, optional
        The namespace in place of CuPy (e.g. ``array_api_strict``, how the CPU tests check
        that the program calls nothing but the array API); no device is needed then.
    **options
        The model's other backend options, unused here.

    Raises
    ------
    RuntimeError
        Without ``xp``, when CuPy or a CUDA device is missing.
    """

    name = "cupy"

    def __init__(self, xp: ModuleType | None = None, **options: Any) -> None:
        if xp is None:
            from . import check_backend
            check_backend("cupy")
        self.xp = xp

    @property
    def namespace(self) -> ModuleType:
        """CuPy, or the ``xp`` given (:class:`~.potential_backend.DeviceBackend`)."""
        if self.xp is None:
            import cupy
            return cupy
        return self.xp
