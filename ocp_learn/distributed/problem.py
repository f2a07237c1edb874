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

import numpy as np

from ..errors import NonFiniteError, as_array, check_nonneg_int, check_positive_int
from ..ledger import Ledger
from ..ocp import Evaluation
from .comm import auto_comm, check_comm
from .reduce import (broadcast_result, gather_parts, ordered_scalar_sum,
                     ordered_terms_sum)
from .shards import local_rows, partition, shard_problem, shard_rng

__all__ = ["DistributedProblem", "DistributedGaussNewtonOperator"]

_VECTOR_OPS = {"f", "fg", "eval", "gn", "gnv"}


def _resolve_optimizer(optimizer):
    if callable(optimizer):
        return optimizer
    from .. import optim
    names = {"lbfgs": optim.lbfgs, "l-bfgs": optim.lbfgs, "adam": optim.adam,
             "gauss_newton": optim.gauss_newton, "gauss-newton": optim.gauss_newton,
             "gn": optim.gauss_newton}
    if optimizer not in names:
        raise ValueError(f"optimizer must be a callable or one of {sorted(names)}, got {optimizer!r}")
    return names[optimizer]


def _weighted_terms(terms, w):
    out = {}
    for k, v in (terms or {}).items():
        if k == "regularization":
            continue
        if isinstance(v, (list, tuple)):
            out[k] = [w * float(x) for x in v]
        elif isinstance(v, (int, float, np.floating, np.integer)):
            out[k] = w * float(v)
    return out


def _max_ledger(dicts):
    led = Ledger()
    for d in dicts:
        if d:
            for k, v in d.items():
                setattr(led, k, max(getattr(led, k), v))
    return led


class DistributedGaussNewtonOperator:
    """The Gauss--Newton model of a :class:`DistributedProblem` at one point (MATH G1).

    ``value`` and ``gradient`` are the reduced ones; :meth:`matvec` is a
    collective call (the root broadcasts ``v``; every rank applies its shard's
    ``G_r``; ``sum_r w_r G_r v + R'' v`` comes back to all ranks).
    """

    def __init__(self, dist, op_id, theta, value, gradient):
        self._dist, self._id = dist, op_id
        self.theta, self.value, self.gradient = theta, value, gradient
        self.n_products = 0

    @property
    def ledger(self):
        """Work of the products on this rank (the per-rank sweeps; max over virtual shards)."""
        return _max_ledger(op.ledger.as_dict() for op in self._dist._gn_ops if op is not None)

    def matvec(self, v):
        """``G v`` (collective)."""
        self.n_products += 1
        v = np.asarray(v, dtype=np.float64)
        if v.shape != (self._dist.n_params,):
            raise ValueError(f"v must have shape ({self._dist.n_params},), got {v.shape}")
        v, meta = self._dist._begin("gnv", v, {"id": self._id})
        return self._dist._do("gnv", v, meta)

    __call__ = matvec


class DistributedProblem:
    """An OCP whose samples are split over the ranks of a communicator.

    Exposes the OCP protocol (``n_params``, ``n_samples``, ``init_params``,
    ``objective``, ``objective_and_gradient(theta, batch)``, ``evaluate``,
    ``gauss_newton_operator``), so :func:`~ocp_learn.optim.lbfgs`,
    :func:`~ocp_learn.optim.gauss_newton` and :func:`~ocp_learn.optim.adam`
    run on it unchanged.

    Parameters
    ----------
    problem : OCP or callable
        Either a problem holding all ``n`` samples (each rank keeps a
        shallow copy that evaluates only its contiguous shard: ``x0`` rows,
        classifier labels, CNF Hutchinson probes), or a factory
        ``problem(shard) -> OCP`` that builds the problem of one
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
    seed : int
        Base seed of :meth:`resample` (per-shard streams, see
        :func:`~ocp_learn.distributed.shards.shard_rng`).

    Notes
    -----
    The regularizers (``problem.regularizers``) are removed from the shard
    problems and added once, after the reduction.  A shard's weight is
    ``n_r / n`` (full batch) or the fraction of a mini-batch's rows it owns.
    Parts are summed at the root in rank order and broadcast, not by
    ``MPI_SUM``: see :mod:`ocp_learn.distributed.reduce`.  ``Evaluation.state``
    and ``lam0`` are per-sample arrays that stay on their ranks (``None``
    here); ``ledger`` is the work of one rank (the per-rank sweeps).
    """

    def __init__(self, problem, comm=None, *, n_samples=None, virtual_ranks=1, root=0, seed=0):
        self.comm = check_comm(auto_comm() if comm is None else comm)
        self.rank, self.size = int(self.comm.Get_rank()), int(self.comm.Get_size())
        self.root = check_nonneg_int("root", root)
        if self.root >= self.size:
            raise ValueError(f"root must be a rank in [0, {self.size}), got {root}")
        self.virtual_ranks = check_positive_int("virtual_ranks", virtual_ranks)
        if self.virtual_ranks > 1 and self.size > 1:
            raise ValueError(f"virtual_ranks must be 1 under MPI (comm has {self.size} ranks), "
                             f"got {virtual_ranks}")
        self.seed = check_nonneg_int("seed", seed)
        n_shards = self.size * self.virtual_ranks
        if hasattr(problem, "objective_and_gradient") and not isinstance(problem, type):
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
                if not hasattr(loc, "objective_and_gradient"):
                    raise TypeError("the factory must return a problem with objective_and_gradient, "
                                    f"got {type(loc).__name__}")
                if int(loc.n_samples) != s.size:
                    raise ValueError(f"the factory built {loc.n_samples} samples for shard "
                                     f"{s.index} of size {s.size}")
        else:
            raise TypeError("problem must be an OCP-like problem or a factory shard -> problem, "
                            f"got {type(problem).__name__}")
        self.my_shards = mine
        first = self.locals[0]
        self.regularizers = list(getattr(first, "regularizers", []) or [])
        for loc in self.locals:
            if getattr(loc, "regularizers", None):
                loc.regularizers = []
        if self.regularizers and not hasattr(first, "layout"):
            raise TypeError("a problem with regularizers must have a layout with a 'dynamics' block")
        self.ledger = Ledger()
        self.last_evaluation = None
        self._gn_ops = []
        self._gn_id = 0
        self._resamples = 0
        self.comm_seconds = 0.0

    # --- shards and protocol ---------------------------------------------------
    def _my_shards(self):
        if self.size > 1:
            return [self.shards[self.rank]]
        return list(self.shards)

    @property
    def local(self):
        """This rank's shard problem (the first one with virtual ranks)."""
        return self.locals[0]

    @property
    def is_root(self):
        return self.rank == self.root

    @property
    def n_params(self):
        return int(self.local.n_params)

    @property
    def n_samples(self):
        return self.n_total

    @property
    def nt(self):
        return getattr(self.local, "nt", None)

    @property
    def integrator(self):
        return getattr(self.local, "integrator", None)

    @property
    def layout(self):
        return self.local.layout

    def unpack(self, theta):
        return self.local.unpack(theta)

    def init_params(self, seed=None):
        """The problem's initial parameters (local, identical on every rank for an int seed)."""
        return self.local.init_params(seed)

    def check_theta(self, theta, name="theta"):
        if hasattr(self.local, "check_theta"):
            return self.local.check_theta(theta, name)
        theta = as_array(name, theta, ndim=1)
        if theta.shape != (self.n_params,):
            raise ValueError(f"{name} must have shape ({self.n_params},), got {theta.shape}")
        return theta

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

    # --- the collective protocol --------------------------------------------------
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
        if op in _VECTOR_OPS:
            vec = self._share_vector(vec)
        return vec, meta

    def _share_vector(self, vec):
        buf = np.ascontiguousarray(vec, dtype=np.float64).copy() if self.is_root \
            else np.empty(self.n_params)
        self.comm.Bcast(buf, root=self.root)
        return buf

    def serve(self):
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
            vec = self._share_vector(None) if op in _VECTOR_OPS else None
            try:
                self._do(op, vec, meta)
            except Exception:  # the root receives the same error and decides (e.g. backtracks)
                pass

    def stop(self, result=None, error=None):
        """Release the ranks in :meth:`serve` (root only), handing them ``result`` (or ``error``)."""
        if self.size == 1:
            return
        if not self.is_root:
            raise RuntimeError("stop() is called by the root rank")
        if error is not None:
            try:
                import pickle
                pickle.dumps(error)
                payload = ("error", error)
            except Exception:
                payload = ("error", f"rank {self.root} failed: {error!r}")
        else:
            payload = ("ok", result)
        self.comm.bcast(("stop", payload), root=self.root)

    def minimize(self, optimizer="lbfgs", *args, **kwargs):
        """Run ``optimizer(self, *args, **kwargs)`` on the root; the other ranks serve.

        ``optimizer`` is :func:`~ocp_learn.optim.lbfgs`, :func:`~ocp_learn.optim.adam`,
        :func:`~ocp_learn.optim.gauss_newton`, their names, or any callable of the
        same form.  Every rank returns the root's ``OptimizeResult`` (an exception
        on the root is raised on every rank).
        """
        opt = _resolve_optimizer(optimizer)
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

    # --- collective evaluations ---------------------------------------------------
    def evaluate(self, theta, batch=None, gradient=True):
        """Reduced :class:`~ocp_learn.Evaluation` (collective): value, gradient, terms."""
        theta = self.check_theta(theta)
        batch = self._check_batch(batch)
        theta, meta = self._begin("eval", theta, {"batch": batch, "gradient": bool(gradient)})
        return self._do("eval", theta, meta)

    def objective(self, theta, batch=None):
        """``J(theta)`` (collective, no gradient work)."""
        theta = self.check_theta(theta)
        batch = self._check_batch(batch)
        theta, meta = self._begin("f", theta, {"batch": batch})
        return self._do("f", theta, meta).value

    def objective_and_gradient(self, theta, batch=None):
        """``(J, dJ/dtheta)`` (collective), equal to the single-process values up to
        rounding (``<= 1e-12`` relative) and bitwise equal across ranks."""
        theta = self.check_theta(theta)
        batch = self._check_batch(batch)
        theta, meta = self._begin("fg", theta, {"batch": batch})
        ev = self._do("fg", theta, meta)
        return ev.value, ev.gradient

    def gauss_newton_operator(self, theta, batch=None):
        """:class:`DistributedGaussNewtonOperator` at ``theta`` (collective; MATH G1)."""
        if not hasattr(self.local, "gauss_newton_operator"):
            raise TypeError(f"{type(self.local).__name__} provides no gauss_newton_operator")
        theta = self.check_theta(theta)
        batch = self._check_batch(batch)
        theta, meta = self._begin("gn", theta, {"batch": batch, "id": self._gn_id + 1})
        return self._do("gn", theta, meta)

    def gauss_newton_product(self, theta, v, batch=None):
        """``G(theta) v`` (collective)."""
        return self.gauss_newton_operator(theta, batch).matvec(v)

    def resample(self, seed=None):
        """Redraw each shard's random inputs (MFG agents, CNF Hutchinson probes) with
        per-shard streams ``shard_rng(seed, shard.index)`` (collective).

        ``seed=None`` uses the wrapper's ``seed`` and a call counter, so
        successive calls draw fresh, reproducible samples.
        """
        if seed is not None:
            seed = check_nonneg_int("seed", seed)
        _, meta = self._begin("resample", None, {"seed": seed})
        return self._do("resample", None, meta)

    # --- bodies run by every rank -------------------------------------------------
    def _do(self, op, vec, meta):
        if op in ("f", "fg", "eval"):
            gradient = op == "fg" or (op == "eval" and meta["gradient"])
            return self._evaluate(vec, meta["batch"], gradient)
        if op == "gn":
            return self._gn_build(vec, meta["batch"], meta["id"])
        if op == "gnv":
            return self._gn_matvec(vec, meta["id"])
        if op == "resample":
            return self._resample(meta["seed"])
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

    def _local_part(self, local, shard, theta, batch, gradient, build_gn=False):
        """One shard's weighted part: ``(meta, vector, gn_op)``."""
        m = self.n_params if gradient else 0
        idx, w = local_rows(shard, batch)
        zero = np.zeros(m)
        if idx is not None and idx.size == 0:
            return {"value": 0.0, "terms": {}, "ledger": None, "error": None}, zero, None
        try:
            op = None
            if build_gn:
                op = local.gauss_newton_operator(theta, idx)
                ev = getattr(local, "last_evaluation", None)
                value, grad = op.value, op.gradient
                terms = ev.terms if ev is not None else {}
                ledger = ev.ledger if ev is not None else None
            elif hasattr(local, "evaluate"):
                ev = local.evaluate(theta, idx, gradient=gradient)
                value, grad, terms, ledger = ev.value, ev.gradient, ev.terms, ev.ledger
            else:
                terms, ledger = {}, None
                if gradient:
                    value, grad = local.objective_and_gradient(theta, idx)
                else:
                    value, grad = local.objective(theta, idx), None
            meta = {"value": w * float(value), "terms": _weighted_terms(terms, w),
                    "ledger": ledger.as_dict() if ledger is not None else None, "error": None}
            return meta, (w * np.asarray(grad, dtype=np.float64) if gradient else zero), op
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

    def _evaluate(self, theta, batch, gradient):
        m = self.n_params if gradient else 0
        parts = [self._local_part(loc, s, theta, batch, gradient)
                 for loc, s in zip(self.locals, self.my_shards)]

        def finish(metas, total):
            Jreg, greg = self._regularization(theta)
            J = ordered_scalar_sum(p["value"] for p in metas) + Jreg
            terms = ordered_terms_sum(p["terms"] for p in metas)
            terms["regularization"] = Jreg
            ledger = _max_ledger(p["ledger"] for p in metas).as_dict()
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
        ev = Evaluation(float(res["value"]), grad if gradient else None, ledger, res["terms"])
        self.last_evaluation = ev
        return ev

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
                    "ledger": _max_ledger(p["ledger"] for p in metas).as_dict()}, total

        res, grad = self._reduce_and_share([p[0] for p in parts], [p[1] for p in parts], m,
                                           theta, finish)
        ledger = Ledger(**res["ledger"])
        self.ledger += ledger
        self.last_evaluation = Evaluation(float(res["value"]), grad, ledger, res["terms"])
        return DistributedGaussNewtonOperator(self, op_id, theta, float(res["value"]), grad)

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

    def _resample(self, seed):
        self._resamples += 1
        metas = []
        for loc, s in zip(self.locals, self.my_shards):
            rng = shard_rng(seed, s.index) if seed is not None \
                else shard_rng(self.seed, s.index, self._resamples)
            try:
                if hasattr(loc, "resample"):
                    loc.resample(seed=rng)
                elif hasattr(loc, "resample_probes"):
                    loc.resample_probes(seed=rng)
                else:
                    raise TypeError(f"{type(loc).__name__} has no resample or resample_probes")
                metas.append({"error": None})
            except Exception as exc:
                metas.append({"error": exc})
        self._reduce_and_share(metas, [None] * len(metas), 0, None,
                               lambda metas_all, total: ({"error": None}, None))

    def __repr__(self):
        return (f"DistributedProblem({type(self.local).__name__}, n={self.n_total}, "
                f"ranks={self.size}, virtual_ranks={self.virtual_ranks}, rank={self.rank})")
