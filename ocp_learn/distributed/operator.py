"""The Gauss--Newton operator of a distributed problem: products reduced over the ranks."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..ocp import Evaluation
from .reduce import max_ledger

if TYPE_CHECKING:  # pragma: no cover
    from ..ledger import Ledger
    from .problem import DistributedProblem

__all__ = ["DistributedGaussNewtonOperator"]


class DistributedGaussNewtonOperator:
    """The Gauss--Newton model of a :class:`.DistributedProblem` at one point (MATH G1).

    ``value`` and ``gradient`` are the reduced ones; :meth:`matvec` is a
    collective call (the root broadcasts ``v``; every rank applies its shard's
    ``G_r``; ``sum_r w_r G_r v + R'' v`` comes back to all ranks).  ``evaluation`` is
    the reduced :class:`~ocp_learn.ocp.Evaluation` at ``theta``.

    Parameters
    ----------
    dist : DistributedProblem
        The problem whose ranks apply the products.
    op_id : int
        Identifier of the operator on the ranks (several may be alive at once).
    theta : ndarray, shape (n_params,)
        The point of the model.
    evaluation : Evaluation
        The reduced objective and gradient at ``theta``.
    """

    def __init__(self, dist: DistributedProblem, op_id: int, theta: np.ndarray,
                 evaluation: Evaluation) -> None:
        self._dist, self._id = dist, op_id
        self.theta, self.evaluation = theta, evaluation
        self.value, self.gradient = evaluation.value, evaluation.gradient
        self.n_products = 0

    @property
    def ledger(self) -> Ledger:
        """Work of the products on this rank (the per-rank sweeps; max over virtual shards)."""
        return max_ledger(op.ledger.as_dict() for op in self._dist._gn_ops if op is not None)

    def matvec(self, v: Any) -> np.ndarray:
        """``G v`` (collective).

        Parameters
        ----------
        v : array_like, shape (n_params,)
            The direction.

        Returns
        -------
        ndarray, shape (n_params,)
            The product, the same on every rank.
        """
        self.n_products += 1
        v = np.asarray(v, dtype=np.float64)
        if v.shape != (self._dist.n_params,):
            raise ValueError(f"v must have shape ({self._dist.n_params},), got {v.shape}")
        v, meta = self._dist._begin("gnv", v, {"id": self._id})
        return self._dist._do("gnv", v, meta)

    __call__ = matvec
