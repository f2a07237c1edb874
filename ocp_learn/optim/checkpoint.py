"""Checkpoint/resume of optimizer state: atomic ``.npz`` files.

A checkpoint is one ``.npz`` archive holding the optimizer's arrays (iterate,
moments, ...) and a JSON ``meta`` entry (iteration, history, counters, random
generator state).  It is written to a temporary file in the same folder and
moved into place with :func:`os.replace`, so a run killed at any moment leaves
either the previous checkpoint or the new one, never a torn file.

Arrays round-trip exactly (float64 bits) and the generator state is restored
exactly, so a deterministic optimizer resumed from a checkpoint continues
bitwise like the uninterrupted run (Adam, Gauss--Newton).
"""
from __future__ import annotations

import json
import os
import tempfile

import numpy as np

__all__ = ["save_checkpoint", "load_checkpoint", "rng_state", "set_rng_state"]

FORMAT = 1


def save_checkpoint(path, arrays, meta):
    """Write ``arrays`` (dict of ndarrays) and ``meta`` (JSON-serializable) to ``path`` atomically.

    Parameters
    ----------
    path : str or path-like
        Target file (``.npz`` is *not* appended).
    arrays : dict
        Name -> array.
    meta : dict
        Anything :func:`json.dumps` accepts (Python ints of any size included).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    payload = {k: np.asarray(v) for k, v in arrays.items()}
    if "__meta__" in payload:
        raise ValueError("arrays must not use the reserved name '__meta__'")
    payload["__meta__"] = np.frombuffer(json.dumps({"format": FORMAT, **meta}).encode(), dtype=np.uint8)
    fd, tmp = tempfile.mkstemp(prefix=".ckpt-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_checkpoint(path):
    """``(arrays, meta)`` from a file written by :func:`save_checkpoint`."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k].copy() for k in data.files if k != "__meta__"}
        if "__meta__" not in data.files:
            raise ValueError(f"checkpoint {path!r} has no metadata (not written by ocp_learn)")
        meta = json.loads(bytes(data["__meta__"]).decode())
    return arrays, meta


def rng_state(rng):
    """The bit generator's state of a ``numpy.random.Generator`` (JSON-serializable)."""
    return rng.bit_generator.state


def set_rng_state(rng, state):
    """Restore a state returned by :func:`rng_state` (same bit generator kind)."""
    if state["bit_generator"] != type(rng.bit_generator).__name__:
        raise ValueError(f"checkpoint's generator is {state['bit_generator']}, "
                         f"this run uses {type(rng.bit_generator).__name__}")
    rng.bit_generator.state = state
    return rng
