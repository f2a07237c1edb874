"""``ocp-learn demo``: a small run of each problem family, written to one folder."""
from __future__ import annotations

from typing import Any, Callable, Sequence

from ._common import RunFolder, write_results
from .classify import demo_classifier
from .flow import demo_flow
from .mfg import demo_mfg

__all__ = ["DEMO_PARTS", "run_demo"]

#: The parts of the demo: ``part(out, seed=, progress=) -> metrics`` with a ``"problem"`` label.
DEMO_PARTS: tuple[Callable[..., dict[str, Any]], ...] = (demo_classifier, demo_flow, demo_mfg)


def run_demo(out: str, *, seed: int = 0, progress: bool = False,
             parts: Sequence[Callable[..., dict[str, Any]]] = DEMO_PARTS,
             info: dict[str, Any] | None = None) -> list[dict[str, Any]]:
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
    info : dict, optional
        The run's description (:func:`~.rundir.run_info`), written to ``out/run.json``;
        ``out`` is a :class:`~.rundir.RunFolder`.

    Returns
    -------
    list of dict
        The parts' metrics, in order.
    """
    with RunFolder(out, info) as folder:
        metrics = [part(out, seed=seed, progress=progress) for part in parts]
        write_results(folder, None, metrics, metrics_name="demo_metrics.json")
    return metrics
