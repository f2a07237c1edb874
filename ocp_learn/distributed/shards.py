"""Contiguous shards of the samples, per-shard seeds, and shard copies of a problem.

The objective of an :class:`~ocp_learn.OCP` is a mean over the rows of
``x0`` plus regularizers of ``theta`` alone (MATH B1, C1, D5, E4)::

    J(theta) = (1/n) sum_i phi_i(theta) + R(theta)
             = sum_r (n_r / n) [ (1/n_r) sum_{i in shard r} phi_i(theta) ] + R(theta),

so each shard (rank) evaluates the mean of its rows *without* ``R``, the
shard means are weighted by ``n_r / n`` and summed, and ``R`` is added once.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from ..errors import check_nonneg_int, check_positive_int
from ..ledger import Ledger

__all__ = ["Shard", "partition", "shard_rng", "shard_problem", "local_rows"]


def shard_rng(seed, index, *extra):
    """A Generator for shard ``index``: ``SeedSequence(seed, spawn_key=(index, *extra))``.

    The stream of a shard depends on ``seed`` and its index only (not on the
    number of ranks), and distinct shards get independent streams; this is
    the ``index``-th child of ``SeedSequence(seed).spawn(...)``.
    """
    seed = check_nonneg_int("seed", seed)
    index = check_nonneg_int("index", index)
    key = (index,) + tuple(check_nonneg_int("spawn key", e) for e in extra)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


@dataclass(frozen=True)
class Shard:
    """Rows ``[start, stop)`` of ``n_total`` samples, held by shard ``index`` of ``count``."""

    index: int
    count: int
    start: int
    stop: int
    n_total: int

    @property
    def size(self):
        return self.stop - self.start

    @property
    def weight(self):
        """``n_r / n``: the shard mean's weight in the global mean."""
        return self.size / self.n_total

    def rng(self, seed):
        """Per-shard Generator (see :func:`shard_rng`), e.g. to draw this rank's agents."""
        return shard_rng(seed, self.index)

    def slice(self):
        return slice(self.start, self.stop)


def partition(n, count):
    """``count`` contiguous shards of ``n`` rows, sizes differing by at most one
    (the first ``n % count`` shards get the extra row, as ``numpy.array_split``)."""
    n = check_positive_int("n", n)
    count = check_positive_int("count", count)
    if count > n:
        raise ValueError(f"cannot split {n} samples into {count} shards (need at least one "
                         "sample per rank)")
    base, extra = divmod(n, count)
    out, start = [], 0
    for r in range(count):
        size = base + (1 if r < extra else 0)
        out.append(Shard(r, count, start, start + size, n))
        start += size
    return out


def local_rows(shard, batch):
    """This shard's part of a global batch: ``(local indices or None, weight)``.

    ``batch`` is ``None`` (all rows: weight ``n_r / n``) or a 1-D int64 array
    of global row indices (weight: the fraction of the batch this shard owns;
    the order of the indices is kept).
    """
    if batch is None:
        return None, shard.weight
    own = batch[(batch >= shard.start) & (batch < shard.stop)]
    return own - shard.start, own.size / batch.size


# Attributes of the known problems that hold one entry per sample (axis 0 or 1).
_PER_SAMPLE = {"x0": 0, "labels": 0, "_probes": 1}
_NOT_PER_SAMPLE = {"times"}


def _check_no_unknown_rows(obj, n, where):
    for name, val in vars(obj).items():
        if name in _PER_SAMPLE or name in _NOT_PER_SAMPLE or not isinstance(val, np.ndarray):
            continue
        if n > 1 and (val.shape[:1] == (n,) or (val.ndim >= 2 and val.shape[1] == n)):
            raise TypeError(f"cannot shard {where}.{name} (shape {val.shape}): it looks like "
                            f"per-sample data of the {n} samples that the generic sharding does "
                            "not know; pass a factory DistributedProblem(lambda shard: ..., "
                            "n_samples=n) that builds each rank's problem instead")


def shard_problem(problem, shard):
    """A shallow copy of ``problem`` that holds only the rows of ``shard``.

    Slices ``x0`` (rows), the labels of a classifier head (``terminal.labels``
    and ``problem.labels``) and the Hutchinson probes of a CNF (``_probes``,
    axis 1); the copy gets its own ledger and terminal object.  Problems with
    other per-sample state are refused (TypeError) -- build them per shard
    with a factory instead.
    """
    n = problem.n_samples
    if shard.n_total != n:
        raise ValueError(f"shard is of {shard.n_total} samples but the problem has {n}")
    for where, obj in (("problem", problem), ("problem.terminal", getattr(problem, "terminal", None)),
                       ("problem.field", getattr(problem, "field", None))):
        if obj is not None and hasattr(obj, "__dict__"):
            _check_no_unknown_rows(obj, n, where)
    sl = shard.slice()
    local = copy.copy(problem)
    local.x0 = problem.x0[sl]
    if getattr(problem, "terminal", None) is not None:
        local.terminal = copy.copy(problem.terminal)
        labels = getattr(problem.terminal, "labels", None)
        if isinstance(labels, np.ndarray) and labels.shape[:1] == (n,):
            local.terminal.labels = labels[sl]
    labels = getattr(problem, "labels", None)
    if isinstance(labels, np.ndarray) and labels.shape[:1] == (n,):
        local.labels = labels[sl]
    probes = getattr(problem, "_probes", None)
    if isinstance(probes, np.ndarray):
        local._probes = probes[:, sl]
    if hasattr(problem, "ledger"):
        local.ledger = Ledger()
    if hasattr(problem, "last_evaluation"):
        local.last_evaluation = None
    return local
