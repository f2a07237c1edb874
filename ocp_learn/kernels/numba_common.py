"""What the Numba kernels share: the fast-math flags and the split of samples into blocks.

All kernels are compiled with ``cache=True``; their thread count is set from Python
(:func:`ocp_learn.kernels.set_num_threads`), never inside a kernel.
"""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["FASTMATH", "blocks"]

#: Reassociation lets LLVM vectorize the dot products (reductions) and use FMA; it changes
#: the rounding only (no finite-math assumptions: NaN and inf still propagate).
FASTMATH = {"reassoc", "contract"}


def blocks(n: int, nblocks: int | None = None) -> np.ndarray:
    """Edges of contiguous sample blocks, one per thread unless ``nblocks`` is given
    (``prange`` runs over the blocks; parameter cotangents are accumulated per block)."""
    nb_ = max(1, min(n, numba.get_num_threads() if nblocks is None else int(nblocks)))
    edges = np.linspace(0, n, nb_ + 1).round().astype(np.int64)
    return edges
