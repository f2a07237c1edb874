"""Data-parallel OCPs: each rank holds a shard of the samples, theta is broadcast, the
objective, gradient and Gauss--Newton products are reduced in a fixed order.

The objective of every problem of the package is a mean over samples plus
regularizers of ``theta`` (MATH B1, C1, D5, E4), and its exact discrete
gradient (B2) is the same mean of per-sample adjoint contributions, so

    ``J = sum_r w_r J_r + R``,  ``grad J = sum_r w_r grad J_r + grad R``,
    ``G v = sum_r w_r G_r v + R'' v``  (G1),   ``w_r = n_r / n``,

with ``J_r``, ``grad J_r`` and ``G_r`` the shard's mean objective, gradient and
generalized Gauss--Newton matrix *without* the regularizers ``R``.

Two ways to run an optimizer (both give every rank the same iterates):

* **root drives** (recommended, :meth:`DistributedProblem.minimize`): rank 0
  runs L-BFGS, Gauss--Newton--CG or Adam unchanged; the other ranks sit in
  :meth:`DistributedProblem.serve` and evaluate their shard at every point
  rank 0 broadcasts.  Progress bars, callbacks, checkpoints and files exist
  once, and the optimizer needs no cross-rank determinism.
* **lockstep**: every rank calls the optimizer; every collective call
  broadcasts rank 0's ``theta`` and batch first, so all ranks evaluate at
  the root's point and receive the root's reduced values.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import NonFiniteError, check_nonneg_int, check_positive_int
from ..ledger import Ledger
from ..ocp import Evaluation
from ..optim.history import Swept
from ..params import ParamLayout
from ..protocols import GaussNewtonProblem, Problem, ResamplableProblem, check_protocol
from .collective import RootDriven
from .comm import auto_comm, check_comm
from .operator import DistributedGaussNewtonOperator
from .reduce import (broadcast_result, gather_parts, max_ledger, ordered_scalar_sum,
                     ordered_terms_sum, weighted_terms)
from .shards import local_rows, partition, shard_problem

__all__ = ["DistributedProblem", "DistributedGaussNewtonOperator", "Regularized"]

@runtime_checkable
class Regularized(Protocol):
    """A problem whose objective adds regularizers of the dynamics parameters to the mean over
    samples (:class:`~ocp_learn.OCP`): ``regularizers`` (each with ``value_grad`` and
    ``hvp``) and ``layout`` (a ``dynamics`` block).  The distributed problem adds them once,
    after the reduction."""

    regularizers: list
    layout: ParamLayout


class DistributedProblem(RootDriven):
    """A problem whose samples are split over the ranks of a communicator.

    Follows :class:`~ocp_learn.protocols.Problem` (and
    :class:`~ocp_learn.protocols.GaussNewtonProblem`,
    :class:`~ocp_learn.protocols.ResamplableProblem` when its shards do), so
    :func:`~ocp_learn.optim.lbfgs`, :func:`~ocp_learn.optim.gauss_newton` and
    :func:`~ocp_learn.optim.adam` run on it unchanged.

    Parameters
    ----------
    problem : ShardableProblem or callable
        Either a problem holding all ``n`` samples (each rank keeps
        ``problem.take(rows)`` of its contiguous shard,
        :class:`~ocp_learn.protocols.ShardableProblem`), or a factory
        ``problem(shard) -> Problem`` that builds the problem of one
        :class:`~ocp_learn.distributed.shards.Shard` (``shard.size`` samples;
        ``shard.rng(seed)`` gives a per-rank Generator, e.g. to draw the
        rank's MFG agents).
    comm : mpi4py communicator or SerialComm, optional
        :func:`~ocp_learn.distributed.auto_comm` by default (``COMM_WORLD``
        under ``mpiexec``/``srun``, serial otherwise).
    n_samples : int
        Total number of samples; required with a factory.
    virtual_ranks : int
        With a one-process ``comm``: split the samples into this many shards
        and reduce them exactly as ``virtual_ranks`` MPI ranks would (the
        results are bitwise those of the MPI run).  Must be 1 under MPI.
    root : int
        The rank whose ``theta`` wins and that drives :meth:`minimize`.

    Notes
    -----
    The regularizers of a :class:`Regularized` problem are removed from the shard
    problems and added once, after the reduction.  A shard's weight is
    ``n_r / n`` (full batch) or the fraction of a mini-batch's rows it owns.
    Parts are summed at the root in rank order and broadcast, not by
    ``MPI_SUM``: see :mod:`ocp_learn.distributed.reduce`.  ``Evaluation.state``
    and ``lam0`` are per-sample arrays that stay on their ranks (``None``
    here); ``ledger`` is the work of one rank (the per-rank sweeps).
    """

    def __init__(self, problem: Any, comm: Any = None, *, n_samples: int | None = None,
                 virtual_ranks: int = 1, root: int = 0) -> None:
        self.comm = check_comm(auto_comm() if comm is None else comm)
        self.rank, self.size = int(self.comm.Get_rank()), int(self.comm.Get_size())
        self.root = check_nonneg_int("root", root)
        if self.root >= self.size:
            raise ValueError(f"root must be a rank in [0, {self.size}), got {root}")
        self.virtual_ranks = check_positive_int("virtual_ranks", virtual_ranks)
        if self.virtual_ranks > 1 and self.size > 1:
            raise ValueError(f"virtual_ranks must be 1 under MPI (comm has {self.size} ranks), "
                             f"got {virtual_ranks}")
        n_shards = self.size * self.virtual_ranks
        if isinstance(problem, Problem) and not isinstance(problem, type):
            if n_samples is not None and n_samples != problem.n_samples:
                raise ValueError(f"n_samples ({n_samples}) differs from problem.n_samples "
                                 f"({problem.n_samples})")
            self.n_total = int(problem.n_samples)
            self.shards = partition(self.n_total, n_shards)
            mine = self._my_shards()
            self.locals = [shard_problem(problem, s) for s in mine]
        elif callable(problem):
            if n_samples is None:
                raise ValueError("n_samples (the total number of samples) is required with a "
                                 "problem factory")
            self.n_total = check_positive_int("n_samples", n_samples)
            self.shards = partition(self.n_total, n_shards)
            mine = self._my_shards()
            self.locals = [problem(s) for s in mine]
            for s, loc in zip(mine, self.locals):
                check_protocol(loc, Problem, f"the factory's problem of shard {s.index}")
                if int(loc.n_samples) != s.size:
                    raise ValueError(f"the factory built {loc.n_samples} samples for shard "
                                     f"{s.index} of size {s.size}")
        else:
            raise TypeError("problem must be a Problem (ocp_learn.protocols.Problem) or a factory "
                            f"shard -> Problem, got {type(problem).__name__}")
        self.my_shards = mine
        first = self.locals[0]
        self.regularizers = list(first.regularizers) if isinstance(first, Regularized) else []
        if self.regularizers:
            for loc in self.locals:
                loc.regularizers = []
        if isinstance(first, Swept):  # time-stepped shards: the optimizers count sweeps
            self.nt, self.integrator = first.nt, first.integrator
        self.ledger = Ledger()
        self._gn_ops = []
        self._gn_id = 0
        self.comm_seconds = 0.0

    # --- shards and protocol ---------------------------------------------------
    def _my_shards(self):
        if self.size > 1:
            return [self.shards[self.rank]]
        return list(self.shards)

    @property
    def local(self) -> Problem:
        """This rank's shard problem (the first one with virtual ranks)."""
        return self.locals[0]

    @property
    def n_params(self) -> int:
        """Length of ``theta``."""
        return int(self.local.n_params)

    @property
    def n_samples(self) -> int:
        """Samples over all shards."""
        return self.n_total

    @property
    def layout(self) -> ParamLayout:
        """The shard problem's parameter layout."""
        return self.local.layout

    def unpack(self, theta: np.ndarray) -> dict:
        """Named views of ``theta`` (the shard problem's ``unpack``).

        Parameters
        ----------
        theta : ndarray, shape (n_params,)
            The parameters.

        Returns
        -------
        dict
            Name of each parameter block -> its view.
        """
        return self.local.unpack(theta)

    def init_params(self, seed: Any = None) -> np.ndarray:
        """The problem's initial parameters (local, identical on every rank for an int seed).

        Parameters
        ----------
        seed : int or numpy.random.Generator, optional
            Seed of the initialization.

        Returns
        -------
        ndarray, shape (n_params,)
            The parameters.
        """
        return self.local.init_params(seed)

    def check_theta(self, theta: Any, name: str = "theta") -> np.ndarray:
        """``theta`` validated by the shard problem.

        Parameters
        ----------
        theta : array_like
            The parameters to check.
        name : str, optional
            The name errors give the argument.

        Returns
        -------
        ndarray, shape (n_params,)
            ``theta`` as a float array.
        """
        return self.local.check_theta(theta, name)

    def _check_batch(self, batch):
        if batch is None:
            return None
        idx = np.asarray(batch)
        if idx.dtype == bool:
            if idx.shape != (self.n_total,):
                raise ValueError(f"batch mask must have shape ({self.n_total},), got {idx.shape}")
            idx = np.flatnonzero(idx)
        if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError("batch must be a non-empty 1-D array of sample indices or a boolean mask")
        if idx.min() < 0 or idx.max() >= self.n_total:
            raise ValueError(f"batch indices must lie in [0, {self.n_total}), got range "
                             f"[{idx.min()}, {idx.max()}]")
        return idx.astype(np.int64)

    # --- collective evaluations ---------------------------------------------------
    def evaluate(self, theta: np.ndarray, batch: Any = None, gradient: bool = True, *,
                 x: np.ndarray | None = None) -> Evaluation:
        """Reduced :class:`~ocp_learn.Evaluation` (collective): value, gradient, terms.

        With samples ``x`` (the same on every rank; ``batch`` must be ``None``) the
        objective is that of ``x`` in place of the problem's samples: each shard evaluates
        its contiguous part of the rows of ``x``.

        Parameters
        ----------
        theta : ndarray, shape (n_params,)
            The parameters.
        batch : array_like of int or bool, optional
            Indices (or a boolean mask) of the samples of a mini-batch; None: all.
        gradient : bool, optional
            Whether to compute the gradient.
        x : ndarray, optional
            Samples to evaluate on in place of the problem's.

        Returns
        -------
        Evaluation
            The reduced value, gradient and terms.
        """
        theta = self.check_theta(theta)
        if x is not None:
            if batch is not None:
                raise ValueError("batch must be None when samples x are given")
            x = np.asarray(x)
            partition(x.shape[0], len(self.shards))  # enough rows for every shard
        batch = self._check_batch(batch)
        theta, meta = self._begin("eval", theta, {"batch": batch, "gradient": bool(gradient),
                                                  "x": x})
        return self._do("eval", theta, meta)

    def objective(self, theta: np.ndarray, batch: Any = None) -> float:
        """``J(theta)`` (collective, no gradient work).

        Parameters
        ----------
        theta : ndarray, shape (n_params,)
            The parameters.
        batch : array_like of int or bool, optional
            Indices (or a boolean mask) of the samples of a mini-batch; None: all.

        Returns
        -------
        float
            The objective.
        """
        theta = self.check_theta(theta)
        batch = self._check_batch(batch)
        theta, meta = self._begin("f", theta, {"batch": batch, "x": None})
        return self._do("f", theta, meta).value

    def objective_and_gradient(self, theta: np.ndarray,
                               batch: Any = None) -> tuple[float, np.ndarray]:
        """``(J, dJ/dtheta)`` (collective).

        Equal to the single-process values up to rounding (``<= 1e-12`` relative)
        and bitwise equal across ranks.

        Parameters
        ----------
        theta : ndarray, shape (n_params,)
            The parameters.
        batch : array_like of int or bool, optional
            Indices (or a boolean mask) of the samples of a mini-batch; None: all.

        Returns
        -------
        value : float
            The objective.
        gradient : ndarray, shape (n_params,)
            Its gradient.
        """
        theta = self.check_theta(theta)
        batch = self._check_batch(batch)
        theta, meta = self._begin("fg", theta, {"batch": batch, "x": None})
        ev = self._do("fg", theta, meta)
        return ev.value, ev.gradient

    def gauss_newton_operator(self, theta: np.ndarray,
                              batch: Any = None) -> DistributedGaussNewtonOperator:
        """:class:`DistributedGaussNewtonOperator` at ``theta`` (collective; MATH G1).

        Parameters
        ----------
        theta : ndarray, shape (n_params,)
            The parameters.
        batch : array_like of int or bool, optional
            Indices (or a boolean mask) of the samples of a mini-batch; None: all.

        Returns
        -------
        DistributedGaussNewtonOperator
            The Gauss--Newton model at ``theta``.
        """
        check_protocol(self.local, GaussNewtonProblem, "the shard problem")
        theta = self.check_theta(theta)
        batch = self._check_batch(batch)
        theta, meta = self._begin("gn", theta, {"batch": batch, "id": self._gn_id + 1})
        return self._do("gn", theta, meta)

    def gauss_newton_product(self, theta: np.ndarray, v: np.ndarray,
                             batch: Any = None) -> np.ndarray:
        """``G(theta) v`` (collective).

        Parameters
        ----------
        theta : ndarray, shape (n_params,)
            The parameters.
        v : ndarray, shape (n_params,)
            The direction.
        batch : array_like of int or bool, optional
            Indices (or a boolean mask) of the samples of a mini-batch; None: all.

        Returns
        -------
        ndarray, shape (n_params,)
            The product.
        """
        return self.gauss_newton_operator(theta, batch).matvec(v)

    def set_samples(self, x: np.ndarray) -> None:
        """Train on the samples ``x`` from now on (collective).

        The rows are split into contiguous shards again and each shard problem
        receives its part (:class:`~ocp_learn.protocols.ResamplableProblem`).

        Parameters
        ----------
        x : ndarray
            The new samples, one per row, the same on every rank.

        Returns
        -------
        None
            Every rank returns once all shards hold their part.
        """
        check_protocol(self.local, ResamplableProblem, "the shard problem")
        x = np.asarray(x)
        partition(x.shape[0], len(self.shards))  # enough rows for every shard
        _, meta = self._begin("set_samples", None, {"x": x})
        return self._do("set_samples", None, meta)

    # --- bodies run by every rank -------------------------------------------------
    def _do(self, op, vec, meta):
        if op in ("f", "fg", "eval"):
            gradient = op == "fg" or (op == "eval" and meta["gradient"])
            return self._evaluate(vec, meta["batch"], gradient, meta["x"])
        if op == "gn":
            return self._gn_build(vec, meta["batch"], meta["id"])
        if op == "gnv":
            return self._gn_matvec(vec, meta["id"])
        if op == "set_samples":
            return self._set_samples(meta["x"])
        raise RuntimeError(f"unknown collective operation {op!r}")

    def _regularization(self, theta, value=True, v=None):
        """``(R(theta), grad R)`` or ``R''(theta) v`` as full-length vectors (dynamics block)."""
        if not self.regularizers:
            return (0.0, None) if value else None
        nodes = self.local.layout.unpack(theta)["dynamics"]
        out = np.zeros(self.n_params)
        block = self.local.layout.unpack(out)["dynamics"]
        if not value:
            dnodes = self.local.layout.unpack(v)["dynamics"]
            for reg in self.regularizers:
                block += reg.hvp(nodes, dnodes)
            return out
        J = 0.0
        for reg in self.regularizers:
            val, g = reg.value_grad(nodes)
            J += val
            block += g
        return J, out

    def _local_part(self, local, shard, theta, batch, gradient, build_gn=False, x=None):
        """One shard's weighted part: ``(meta, vector, gn_op)``; with samples ``x``, the
        shard's contiguous part of their rows."""
        m = self.n_params if gradient else 0
        if x is not None:
            part = partition(x.shape[0], shard.count)[shard.index]
            idx, w, x = None, part.weight, x[part.slice()]
        else:
            idx, w = local_rows(shard, batch)
        zero = np.zeros(m)
        if idx is not None and idx.size == 0:
            return {"value": 0.0, "terms": {}, "ledger": None, "error": None}, zero, None
        try:
            op = None
            if build_gn:
                op = local.gauss_newton_operator(theta, idx)
                ev = op.evaluation
            else:
                ev = local.evaluate(theta, idx, gradient=gradient, x=x)
            meta = {"value": w * float(ev.value), "terms": weighted_terms(ev.terms, w),
                    "ledger": ev.ledger.as_dict(), "error": None}
            return meta, (w * np.asarray(ev.gradient, dtype=np.float64) if gradient else zero), op
        except Exception as exc:  # reported to every rank after the reduction
            return {"value": 0.0, "terms": {}, "ledger": None, "error": exc}, zero, None

    def _reduce_and_share(self, metas, vecs, m, theta, finish):
        """Gather parts in shard order, let the root finish, broadcast, raise errors everywhere."""
        metas, total = gather_parts(self.comm, self.root, metas, vecs, m)
        result, vec = None, None
        if self.is_root:
            errors = [p["error"] for p in metas if p["error"] is not None]
            if errors:
                result, vec = {"error": errors[0]}, np.zeros(m)
            else:
                result, vec = finish(metas, total)
        result, vec = broadcast_result(self.comm, self.root, result, vec, m)
        if result.get("error") is not None:
            err = result["error"]
            raise err if isinstance(err, BaseException) else RuntimeError(str(err))
        return result, vec

    def _evaluate(self, theta, batch, gradient, x=None):
        m = self.n_params if gradient else 0
        parts = [self._local_part(loc, s, theta, batch, gradient, x=x)
                 for loc, s in zip(self.locals, self.my_shards)]

        def finish(metas, total):
            Jreg, greg = self._regularization(theta)
            J = ordered_scalar_sum(p["value"] for p in metas) + Jreg
            terms = ordered_terms_sum(p["terms"] for p in metas)
            terms["regularization"] = Jreg
            ledger = max_ledger(p["ledger"] for p in metas).as_dict()
            if not np.isfinite(J):
                return {"error": NonFiniteError(f"objective is not finite ({J}); terms: {terms}")}, \
                    np.zeros(m)
            if gradient:
                if greg is not None:
                    total += greg
                if not np.all(np.isfinite(total)):
                    return {"error": NonFiniteError("gradient is not finite although the "
                                                    f"objective is ({J})")}, np.zeros(m)
            return {"value": J, "terms": terms, "ledger": ledger, "error": None}, total

        res, grad = self._reduce_and_share([p[0] for p in parts], [p[1] for p in parts], m,
                                           theta, finish)
        ledger = Ledger(**res["ledger"])
        self.ledger += ledger
        return Evaluation(float(res["value"]), grad if gradient else None, ledger, res["terms"])

    def _gn_build(self, theta, batch, op_id):
        m = self.n_params
        parts = [self._local_part(loc, s, theta, batch, True, build_gn=True)
                 for loc, s in zip(self.locals, self.my_shards)]
        self._gn_ops = [p[2] for p in parts]
        self._gn_weights = [local_rows(s, batch)[1] for s in self.my_shards]
        self._gn_id = op_id
        self._gn_theta = theta

        def finish(metas, total):
            Jreg, greg = self._regularization(theta)
            J = ordered_scalar_sum(p["value"] for p in metas) + Jreg
            if greg is not None:
                total += greg
            terms = ordered_terms_sum(p["terms"] for p in metas)
            terms["regularization"] = Jreg
            return {"value": J, "terms": terms, "error": None,
                    "ledger": max_ledger(p["ledger"] for p in metas).as_dict()}, total

        res, grad = self._reduce_and_share([p[0] for p in parts], [p[1] for p in parts], m,
                                           theta, finish)
        ledger = Ledger(**res["ledger"])
        self.ledger += ledger
        ev = Evaluation(float(res["value"]), grad, ledger, res["terms"])
        return DistributedGaussNewtonOperator(self, op_id, theta, ev)

    def _gn_matvec(self, v, op_id):
        m = self.n_params
        if op_id != self._gn_id:
            raise RuntimeError(f"Gauss-Newton operator {op_id} is stale (current: {self._gn_id})")
        metas, vecs = [], []
        for op, w in zip(self._gn_ops, self._gn_weights):
            if op is None:
                metas.append({"error": None})
                vecs.append(np.zeros(m))
                continue
            try:
                vecs.append(w * op.matvec(v))
                metas.append({"error": None})
            except Exception as exc:
                metas.append({"error": exc})
                vecs.append(np.zeros(m))
        theta = self._gn_theta

        def finish(metas_all, total):
            hv = self._regularization(theta, value=False, v=v)
            if hv is not None:
                total += hv
            return {"error": None}, total

        _, out = self._reduce_and_share(metas, vecs, m, theta, finish)
        return out

    def _set_samples(self, x):
        self.n_total = int(x.shape[0])
        self.shards = partition(self.n_total, len(self.shards))
        self.my_shards = self._my_shards()
        metas = []
        for loc, s in zip(self.locals, self.my_shards):
            try:
                loc.set_samples(x[s.slice()])
                metas.append({"error": None})
            except Exception as exc:
                metas.append({"error": exc})
        self._reduce_and_share(metas, [None] * len(metas), 0, None,
                               lambda metas_all, total: ({"error": None}, None))

    def __repr__(self):
        return (f"DistributedProblem({type(self.local).__name__}, n={self.n_total}, "
                f"ranks={self.size}, virtual_ranks={self.virtual_ranks}, rank={self.rank})")
