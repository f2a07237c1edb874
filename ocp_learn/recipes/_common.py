"""What the recipes share: where the parallel context comes from, and result files."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..optim import SERIAL, Parallel
from .rundir import RunFolder

__all__ = ["Parallel", "serial_or", "write_results", "RunFolder", "UNITS"]

#: Units of the timed and sized quantities in the metrics (``metrics["units"]``).
UNITS: dict[str, str] = {"seconds": "seconds (wall clock of training)",
                         "test_nll": "nats per sample", "test_nll_se": "nats per sample",
                         "test_nll_fine": "nats per sample", "nll_floor": "nats per sample",
                         "n_params": "parameters (float64 entries of theta)",
                         "iterations": "optimizer iterations",
                         "nfev": "objective and gradient evaluations",
                         "train_accuracy": "fraction of points", "test_accuracy": "fraction of points"}


def serial_or(parallel: Parallel | None) -> Parallel:
    """``parallel``, or the one-process :data:`~ocp_learn.optim.SERIAL` for None.

    A recipe runs data-parallel only when its caller hands it a
    :class:`~ocp_learn.optim.Parallel` (the command-line tools build
    :class:`ocp_learn.distributed.Parallel` over ``COMM_WORLD``); the recipes never import MPI.
    """
    return SERIAL if parallel is None else parallel


def write_results(out: RunFolder | str, theta: np.ndarray | None, metrics: Any,
                  metrics_name: str = "metrics.json", theta_name: str = "theta.npy") -> None:
    """Write ``out/theta_name`` (``numpy.save``) and ``out/metrics_name`` (JSON), each
    atomically; a None argument is not written.

    The recipes call this as soon as training has finished and the required metrics are
    known, before any optional metric or figure, and again when an optional metric is added.

    Parameters
    ----------
    out : RunFolder or str
        The run's folder (a path is opened as a :class:`~.rundir.RunFolder` for the write).
    theta : ndarray or None
        The parameters.
    metrics : dict, list or None
        The metrics (JSON; a dict gets ``"run"``, the folder's run description).
    metrics_name, theta_name : str
        File names in ``out``.
    """
    if not isinstance(out, RunFolder):
        with RunFolder(out) as folder:
            write_results(folder, theta, metrics, metrics_name, theta_name)
        return
    if theta is not None:
        out.save_array(theta_name, theta)
    if metrics is not None:
        out.write_json(metrics_name, metrics)
