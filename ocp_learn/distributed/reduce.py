"""Order-fixed reductions: gather the shards' parts to the root, sum them in shard order, broadcast.

``MPI_Allreduce(MPI_SUM)`` may add the ranks' contributions in any order
(tree, ring, ...), so its result can differ in the last bits between
launches, rank counts and MPI libraries.  Here the root receives every
shard's part and adds them strictly in shard order
``((p_0 + p_1) + p_2) + ...``; the same function sums the parts of *virtual*
shards held by one process, so a run on K ranks is bitwise equal to a serial
run with K virtual shards on the same data.
"""
from __future__ import annotations

from dataclasses import fields
from typing import Iterable

import numpy as np

from ..ledger import Ledger

__all__ = ["ordered_sum", "ordered_scalar_sum", "ordered_terms_sum", "gather_parts",
           "broadcast_result", "weighted_terms", "max_ledger"]


def ordered_sum(parts):
    """``((p_0 + p_1) + p_2) + ...`` of equally shaped arrays.

    Parameters
    ----------
    parts : iterable of array_like
        The arrays, in the order of the sum; at least one.

    Returns
    -------
    ndarray
        The sum, a new float64 array.
    """
    parts = list(parts)
    if not parts:
        raise ValueError("parts must be non-empty")
    acc = np.array(parts[0], dtype=np.float64, copy=True)
    for p in parts[1:]:
        acc += p
    return acc


def ordered_scalar_sum(values):
    """Python-float sum in the given order (no pairwise or compensated tricks)."""
    acc = 0.0
    for i, v in enumerate(values):
        acc = float(v) if i == 0 else acc + float(v)
    return acc


def ordered_terms_sum(terms_list):
    """Sum dictionaries of floats / lists of floats key by key, in order.

    Keys missing from a part (a shard with no rows in a batch) count as zero;
    the result's keys follow their first appearance.
    """
    out = {}
    for terms in terms_list:
        for k, v in terms.items():
            if isinstance(v, list):
                out[k] = list(v) if k not in out else [a + b for a, b in zip(out[k], v)]
            else:
                out[k] = float(v) if k not in out else out[k] + float(v)
    return out


def gather_parts(comm, root, metas, vecs, m):
    """Collect per-shard ``(meta, vector)`` parts at ``root`` in shard order.

    Parameters
    ----------
    comm : communicator
        Every rank holds exactly one shard when ``comm`` has more than one
        rank; a one-rank communicator may hold several (virtual) shards.
    metas : list
        Small picklable objects, one per local shard.
    vecs : list of ndarray, shape (m,)
        One vector per local shard (ignored when ``m == 0``).

    Returns
    -------
    metas : list or None
        All shards' metas in shard order (``None`` off the root).
    total : ndarray or None
        :func:`ordered_sum` of all shards' vectors (``None`` off the root or
        when ``m == 0``).
    """
    size = comm.Get_size()
    if size == 1:
        return list(metas), (ordered_sum(vecs) if m else None)
    if len(metas) != 1:
        raise ValueError("with several MPI ranks each rank must hold exactly one shard")
    gathered = comm.gather(metas[0], root=root)
    total = None
    if m:
        send = np.ascontiguousarray(vecs[0], dtype=np.float64)
        recv = np.empty((size, m)) if comm.Get_rank() == root else None
        comm.Gather(send, recv, root=root)
        if recv is not None:
            total = ordered_sum(recv)
    return gathered, total


def broadcast_result(comm, root, meta, vec, m):
    """Broadcast the root's reduced ``(meta, vector)`` to every rank."""
    if comm.Get_size() == 1:
        return meta, vec
    meta = comm.bcast(meta, root=root)
    if m:
        buf = np.ascontiguousarray(vec, dtype=np.float64) if comm.Get_rank() == root \
            else np.empty(m)
        comm.Bcast(buf, root=root)
        vec = buf
    return meta, vec


def weighted_terms(terms: dict, w: float) -> dict:
    """A shard's named objective parts times its weight ``w`` (numbers and lists of numbers;
    the regularization is left out: it is added once, after the reduction)."""
    out = {}
    for k, v in terms.items():
        if k == "regularization":
            continue
        if isinstance(v, (list, tuple)):
            out[k] = [w * float(x) for x in v]
        elif isinstance(v, (int, float, np.floating, np.integer)):
            out[k] = w * float(v)
    return out


def max_ledger(dicts: Iterable[dict | None]) -> Ledger:
    """The counter-wise maximum of ledgers given as dicts (``None`` entries skipped): the
    work of the busiest shard, i.e. of one rank."""
    counters = {f.name: 0 for f in fields(Ledger) if not f.name.startswith("_")}
    for d in dicts:
        for k, v in (d or {}).items():
            counters[k] = max(counters[k], v)
    return Ledger(**counters)
