"""The result of one objective (and gradient) evaluation of a problem."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .ledger import Ledger

__all__ = ["Evaluation"]


@dataclass
class Evaluation:
    """Result of :meth:`.OCP.evaluate`.

    The parameters are kept as attributes of the same names.

    Parameters
    ----------
    value : float
        The objective.
    gradient : ndarray or None
        Its gradient with respect to ``theta`` (None when not computed).
    ledger : Ledger
        The work and memory counters of the evaluation.
    terms : dict
        The objective's parts: ``terminal``, the terminal cost's own parts
        (:attr:`TerminalResult.terms <ocp_learn.protocols.TerminalResult>`), ``running``
        (each running cost), ``regularization``.
    state : ndarray
        The final (augmented) state ``y(T)`` of the batch.
    lam0 : ndarray or None
        ``dJ/dy(0)``, the adjoint at the initial time (gradient w.r.t. inputs).
    """

    value: float
    gradient: np.ndarray | None
    ledger: Ledger
    terms: dict = field(default_factory=dict)
    state: np.ndarray | None = None
    lam0: np.ndarray | None = None
