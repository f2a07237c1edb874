"""What the recipes share: where the parallel context comes from, and result files."""
from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from ..optim import SERIAL, Parallel

__all__ = ["Parallel", "serial_or", "write_results"]


def serial_or(parallel: Parallel | None) -> Parallel:
    """``parallel``, or the one-process :data:`~ocp_learn.optim.SERIAL` for None.

    A recipe runs data-parallel only when its caller hands it a
    :class:`~ocp_learn.optim.Parallel` (the command-line tools build
    :class:`ocp_learn.distributed.Parallel` over ``COMM_WORLD``); the recipes never import MPI.
    """
    return SERIAL if parallel is None else parallel


def write_results(out: str, theta: np.ndarray | None, metrics: Any,
                  metrics_name: str = "metrics.json", theta_name: str = "theta.npy") -> None:
    """Write ``out/theta_name`` (``numpy.save``) and ``out/metrics_name`` (JSON); a None
    argument is not written.

    The recipes call this as soon as training has finished and the required metrics are
    known, before any optional metric or figure, and again when an optional metric is added.
    """
    os.makedirs(out, exist_ok=True)
    if theta is not None:
        np.save(os.path.join(out, theta_name), theta)
    if metrics is not None:
        with open(os.path.join(out, metrics_name), "w") as fh:
            json.dump(metrics, fh, indent=2, default=float)
