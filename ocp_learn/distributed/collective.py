"""The collective protocol of a data-parallel problem: the root rank names each operation and
broadcasts its arguments, every rank runs it on its shard (``RootDriven._do``), and the
root's optimizer drives the others (:meth:`.RootDriven.minimize`)."""
from __future__ import annotations

import pickle
from typing import Any

import numpy as np

from ..optim import get_optimizer

__all__ = ["RootDriven", "VECTOR_OPS"]

#: The operations whose first argument is a vector of ``n_params`` floats (``Bcast``).
VECTOR_OPS = {"f", "fg", "eval", "gn", "gnv"}


class RootDriven:
    """Root-driven collective calls over ``comm`` (rank ``root`` of ``size``).

    A subclass sets ``comm``, ``rank``, ``size``, ``root`` and ``n_params`` and runs the
    body of an operation in ``_do(op, vec, meta)`` on every rank.
    """

    comm: Any
    rank: int
    size: int
    root: int
    n_params: int

    @property
    def is_root(self) -> bool:
        """Whether this rank is the root (drives :meth:`minimize`, writes files)."""
        return self.rank == self.root

    def _do(self, op: str, vec: Any, meta: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _begin(self, op, vec=None, meta=None):
        """Agree on ``(op, vec, meta)``: the root broadcasts, every other rank
        receives (and checks that it called the same operation)."""
        if self.size == 1:
            return vec, meta
        if self.is_root:
            self.comm.bcast((op, meta), root=self.root)
        else:
            got, meta = self.comm.bcast(None, root=self.root)
            if got != op:
                raise RuntimeError(f"rank {self.rank} called {op!r} while rank {self.root} "
                                   f"called {got!r}: collective calls out of step")
        if op in VECTOR_OPS:
            vec = self._share_vector(vec)
        return vec, meta

    def _share_vector(self, vec):
        buf = np.ascontiguousarray(vec, dtype=np.float64).copy() if self.is_root \
            else np.empty(self.n_params)
        self.comm.Bcast(buf, root=self.root)
        return buf

    def serve(self) -> Any:
        """Worker loop: evaluate this rank's shard at every point the root
        broadcasts, until the root calls :meth:`stop`; returns its result.

        Raises the root's exception if the root's run failed.
        """
        if self.size == 1 or self.is_root:
            raise RuntimeError("serve() runs on the non-root ranks of an MPI communicator")
        while True:
            op, meta = self.comm.bcast(None, root=self.root)
            if op == "stop":
                status, payload = meta
                if status == "error":
                    raise payload if isinstance(payload, BaseException) else RuntimeError(payload)
                return payload
            vec = self._share_vector(None) if op in VECTOR_OPS else None
            try:
                self._do(op, vec, meta)
            except Exception:  # the root receives the same error and decides (e.g. backtracks)
                pass

    def stop(self, result: Any = None, error: BaseException | None = None) -> None:
        """Release the ranks in :meth:`serve` (root only), handing them ``result`` (or ``error``)."""
        if self.size == 1:
            return
        if not self.is_root:
            raise RuntimeError("stop() is called by the root rank")
        if error is not None:
            try:
                pickle.dumps(error)
                payload = ("error", error)
            except Exception:
                payload = ("error", f"rank {self.root} failed: {error!r}")
        else:
            payload = ("ok", result)
        self.comm.bcast(("stop", payload), root=self.root)

    def minimize(self, optimizer: Any = "lbfgs", *args: Any, **kwargs: Any) -> Any:
        """Run ``optimizer(self, *args, **kwargs)`` on the root; the other ranks serve.

        ``optimizer`` is an optimizer of :mod:`ocp_learn.optim`, its name
        (:func:`~ocp_learn.optim.get_optimizer`), or any callable of the same form.  Every
        rank returns the root's ``OptimizeResult`` (an exception on the root is raised on
        every rank).
        """
        opt = optimizer if callable(optimizer) else get_optimizer(optimizer)
        if self.size == 1:
            return opt(self, *args, **kwargs)
        if not self.is_root:
            return self.serve()
        try:
            res = opt(self, *args, **kwargs)
        except BaseException as exc:
            self.stop(error=exc)
            raise
        self.stop(result=res)
        return res
