"""Contiguous shards of the samples, per-shard seeds, and shard copies of a problem.

The objective of an :class:`~ocp_learn.OCP` is a mean over the rows of
``x0`` plus regularizers of ``theta`` alone (MATH B1, C1, D5, E4)::

    J(theta) = (1/n) sum_i phi_i(theta) + R(theta)
             = sum_r (n_r / n) [ (1/n_r) sum_{i in shard r} phi_i(theta) ] + R(theta),

so each shard (rank) evaluates the mean of its rows *without* ``R``, the
shard means are weighted by ``n_r / n`` and summed, and ``R`` is added once.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import check_nonneg_int, check_positive_int
from ..protocols import Problem, ShardableProblem, check_protocol

__all__ = ["Shard", "partition", "shard_rng", "shard_problem", "local_rows"]


def shard_rng(seed, index, *extra):
    """A Generator for shard ``index``: ``SeedSequence(seed, spawn_key=(index, *extra))``.

    The stream of a shard depends on ``seed`` and its index only (not on the
    number of ranks), and distinct shards get independent streams; this is
    the ``index``-th child of ``SeedSequence(seed).spawn(...)``.

    Parameters
    ----------
    seed : int
        The seed shared by all shards, ``>= 0``.
    index : int
        The shard's index, ``>= 0``.
    *extra : int
        Further entries of the spawn key (independent streams per purpose).

    Returns
    -------
    numpy.random.Generator
        The shard's stream.
    """
    seed = check_nonneg_int("seed", seed)
    index = check_nonneg_int("index", index)
    key = (index,) + tuple(check_nonneg_int("spawn key", e) for e in extra)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


@dataclass(frozen=True)
class Shard:
    """Rows ``[start, stop)`` of ``n_total`` samples, held by shard ``index`` of ``count``.

    Parameters
    ----------
    index : int
        The shard's position, ``0 <= index < count``.
    count : int
        Number of shards.
    start : int
        First row of the shard.
    stop : int
        One past its last row.
    n_total : int
        Number of rows of all shards.
    """

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
        """Per-shard Generator (see :func:`shard_rng`), e.g. to draw this rank's agents.

        Parameters
        ----------
        seed : int
            The seed shared by all shards.

        Returns
        -------
        numpy.random.Generator
            The stream of this shard.
        """
        return shard_rng(seed, self.index)

    def slice(self):
        return slice(self.start, self.stop)


def partition(n, count):
    """``count`` contiguous shards of ``n`` rows, sizes differing by at most one.

    The first ``n % count`` shards get the extra row, as ``numpy.array_split``.

    Parameters
    ----------
    n : int
        Number of rows.
    count : int
        Number of shards, at most ``n``.

    Returns
    -------
    list of Shard
        The shards in order of their rows.
    """
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

    Parameters
    ----------
    shard : Shard
        The shard.
    batch : ndarray of int64 or None
        Global row indices of the batch, or None for all rows.

    Returns
    -------
    rows : ndarray of int or None
        The batch's rows in this shard, as indices into the shard (None: all).
    weight : float
        The weight of the shard's mean in the batch mean.
    """
    if batch is None:
        return None, shard.weight
    own = batch[(batch >= shard.start) & (batch < shard.stop)]
    return own - shard.start, own.size / batch.size


def shard_problem(problem: ShardableProblem, shard: Shard) -> Problem:
    """The part of ``problem`` that holds the rows of ``shard``: ``problem.take(rows)``.

    Parameters
    ----------
    problem : ShardableProblem
        A problem that can hand out a subset of its samples
        (:class:`~ocp_learn.protocols.ShardableProblem`); its per-sample data (labels,
        Hutchinson probes, ...) follow the rows.  Problems without ``take`` are built per
        shard with a factory instead (``DistributedProblem(lambda shard: ..., n_samples=n)``).
    shard : Shard
        The rows to keep.

    Returns
    -------
    Problem
        A problem of the same kind on the rows ``[shard.start, shard.stop)``, with its own
        ledger; ``problem`` is left unchanged.
    """
    check_protocol(problem, ShardableProblem,
                   "problem (or pass a factory DistributedProblem(lambda shard: ..., "
                   "n_samples=n) that builds each rank's problem)")
    n = problem.n_samples
    if shard.n_total != n:
        raise ValueError(f"shard is of {shard.n_total} samples but the problem has {n}")
    return problem.take(np.arange(shard.start, shard.stop))
