"""``ocp-learn demo``: a small run of each problem family, written to one folder."""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from ._common import write_results
from .classify import demo_classifier
from .flow import demo_flow
from .mfg import demo_mfg

__all__ = ["DEMO_PARTS", "run_demo"]

#: The parts of the demo: ``part(out, seed=, progress=) -> metrics`` with a ``"problem"`` label.
DEMO_PARTS: tuple[Callable[..., dict[str, Any]], ...] = (demo_classifier, demo_flow, demo_mfg)


def run_demo(out: str, *, seed: int = 0, progress: bool = False,
             parts: Sequence[Callable[..., dict[str, Any]]] = DEMO_PARTS) -> list[dict[str, Any]]:
    """Run each part of the demo and write ``out/demo_metrics.json`` (and each part's files).

    Parameters
    ----------
    out : str
        Output folder (created).
    seed : int
        Seed of every part.
    progress : bool
        Show progress bars.
    parts : sequence of callable
        The parts, ``part(out, seed=seed, progress=progress) -> dict`` with a ``"problem"``
        label and the part's main metrics.

    Returns
    -------
    list of dict
        The parts' metrics, in order.
    """
    os.makedirs(out, exist_ok=True)
    metrics = [part(out, seed=seed, progress=progress) for part in parts]
    write_results(out, None, metrics, metrics_name="demo_metrics.json")
    return metrics
