"""Checkpoint/resume of optimizer state: atomic ``.npz`` files.

A checkpoint is one ``.npz`` archive holding the optimizer's arrays (iterate,
moments, ...) and a JSON ``meta`` entry (iteration, history, counters, random
generator state).  It is written to a temporary file in the same folder and
moved into place with :func:`os.replace`, so a run killed at any moment leaves
either the previous checkpoint or the new one, never a torn file.

Arrays round-trip exactly (float64 bits) and the generator state is restored
exactly, so a deterministic optimizer resumed from a checkpoint continues
bitwise like the uninterrupted run (Adam, Gauss--Newton).

A checkpoint records the fingerprint of its run (:func:`run_fingerprint`: the problem's
class, data digest, dimensions, time grid, integrator, strategy and dtype, and the
optimizer's settings); :func:`check_fingerprint` refuses to resume another run and names
each setting that differs.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import CheckpointError

__all__ = ["save_checkpoint", "load_checkpoint", "rng_state", "set_rng_state", "array_digest",
           "problem_fingerprint", "run_fingerprint", "check_fingerprint",
           "fingerprint_differences", "Fingerprinted", "CheckpointError"]

FORMAT = 1

#: The entries of a problem's fingerprint that describe its samples (left out for runs that
#: redraw them).
SAMPLE_KEYS = ("samples", "labels", "n_samples")


def save_checkpoint(path: Any, arrays: dict, meta: dict) -> str:
    """Write ``arrays`` (dict of ndarrays) and ``meta`` (JSON-serializable) to ``path`` atomically.

    Parameters
    ----------
    path : str or path-like
        Target file (``.npz`` is *not* appended).
    arrays : dict
        Name -> array.
    meta : dict
        Anything :func:`json.dumps` accepts (Python ints of any size included).

    Returns
    -------
    str
        ``path``.  The data go to a temporary file ``.ckpt-*.tmp`` beside it first, moved
        into place when complete.
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


def load_checkpoint(path: Any, require: tuple[str, ...] = ()) -> tuple[dict, dict]:
    """``(arrays, meta)`` from a file written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : str or path-like
        The checkpoint file.
    require : tuple of str
        Entries of ``meta`` that must be present.

    Returns
    -------
    arrays : dict
        Name -> array.
    meta : dict
        The JSON metadata.

    Raises
    ------
    FileNotFoundError
        If there is no file ``path``.
    CheckpointError
        If the file is empty, truncated or corrupt, is not an ocp_learn checkpoint, or lacks
        one of ``require`` (the message names the file and the missing key).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"checkpoint {path!r} is empty (a run was killed while writing "
                              "it?); delete it to start again")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "__meta__" not in data.files:
                raise CheckpointError(f"checkpoint {path!r} is missing key '__meta__' (not "
                                      "written by ocp_learn)")
            arrays = {k: data[k].copy() for k in data.files if k != "__meta__"}
            raw = data["__meta__"]
            if raw.dtype != np.uint8:
                raise CheckpointError(f"checkpoint {path!r} is truncated or corrupt: its "
                                      f"'__meta__' entry is {raw.dtype}, not JSON bytes")
            meta = json.loads(bytes(raw).decode())
    except CheckpointError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, UnicodeDecodeError,
            KeyError) as exc:
        raise CheckpointError(f"checkpoint {path!r} is truncated or corrupt "
                              f"({type(exc).__name__}); delete it to start again") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint {path!r} is truncated or corrupt: its metadata is "
                              f"a {type(meta).__name__}, not a mapping")
    for key in require:
        if key not in meta and key not in arrays:
            raise CheckpointError(f"checkpoint {path!r} is missing key {key!r}")
    return arrays, meta


# --- fingerprints: which problem and run a checkpoint belongs to ----------------------------
def _json(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples as lists, numpy scalars as numbers)."""
    return json.loads(json.dumps(value, default=_default))


def _default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return array_digest(value)
    if isinstance(value, np.dtype):
        return value.name
    return f"<{type(value).__name__}>"


def array_digest(a: Any) -> dict:
    """A JSON-able summary of an array that changes when any entry changes.

    Parameters
    ----------
    a : array_like

    Returns
    -------
    dict
        ``shape``, ``dtype`` and the SHA-256 of the contiguous bytes.
    """
    a = np.ascontiguousarray(np.asarray(a))
    return {"shape": list(a.shape), "dtype": a.dtype.name,
            "sha256": hashlib.sha256(a.tobytes()).hexdigest()}


@runtime_checkable
class Fingerprinted(Protocol):
    """A problem that describes itself for checkpoints: ``fingerprint() -> dict`` (JSON data:
    class, data set digest, dimensions, widths, time grid, integrator, strategy, dtype)."""

    def fingerprint(self) -> dict:
        """The problem's description."""


def problem_fingerprint(problem: Any) -> dict:
    """The fingerprint of ``problem``: its own ``fingerprint`` when it declares one
    (every problem of :mod:`ocp_learn.problems`), else its class and sizes.

    Parameters
    ----------
    problem : Problem

    Returns
    -------
    dict
        JSON data.
    """
    if isinstance(problem, Fingerprinted):
        return _json(problem.fingerprint())
    return _json({"class": f"{type(problem).__module__}.{type(problem).__qualname__}",
                  "n_params": int(problem.n_params), "n_samples": int(problem.n_samples)})


def run_fingerprint(problem: Any, method: str, *, samples: bool = True,
                    **settings: Any) -> dict:
    """The fingerprint a checkpoint records: the problem's and the optimizer's settings.

    Parameters
    ----------
    problem : Problem
        The problem being optimized (:func:`problem_fingerprint`).
    method : str
        The optimizer's checkpoint tag.
    samples : bool
        Whether the problem's samples belong to the run (``False`` for optimizers that
        redraw them, such as :func:`~ocp_learn.optim.lbfgs_resampled`).
    **settings
        The optimizer's settings that change its iterates (step sizes, tolerances, batch
        size, schedule, ...); not the iteration limit.

    Returns
    -------
    dict
        ``{"problem": ..., "optimizer": {"method": method, **settings}}`` as JSON data.
    """
    prob = problem_fingerprint(problem)
    if not samples:
        prob = {k: v for k, v in prob.items() if k not in SAMPLE_KEYS}
    return _json({"problem": prob, "optimizer": {"method": method, **settings}})


def _flatten(d: Any, prefix: str = "") -> dict:
    if isinstance(d, dict) and not ("sha256" in d and "shape" in d):
        out: dict = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: d}


def fingerprint_differences(saved: dict, current: dict) -> list[tuple[str, Any, Any]]:
    """The settings in which two fingerprints differ: ``(key, saved, current)``, dotted keys
    (``problem.settings.width``); an absent setting reads ``None``."""
    a, b = _flatten(_json(saved)), _flatten(_json(current))
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def check_fingerprint(path: Any, meta: dict, current: dict, *, optimizer: bool = True,
                      ignore: tuple[str, ...] = ()) -> None:
    """Refuse a checkpoint of another problem or run.

    Parameters
    ----------
    path : str or path-like
        The checkpoint (quoted in the message).
    meta : dict
        Its metadata (:func:`load_checkpoint`); its ``fingerprint`` entry is compared.
    current : dict
        :func:`run_fingerprint` of this run.
    optimizer : bool
        Compare the optimizer's settings too (``False``: only the problem's, for a
        checkpoint of another method accepted as a warm start).
    ignore : tuple of str
        Entries of the problem's fingerprint left out on both sides (``"samples"`` for
        a run that redraws them).

    Raises
    ------
    CheckpointError
        Naming each differing setting with its saved and current value, or saying that the
        checkpoint records no fingerprint.
    """
    saved = meta.get("fingerprint")
    if not isinstance(saved, dict):
        raise CheckpointError(f"checkpoint {os.fspath(path)!r} is missing key 'fingerprint' "
                              "(the problem and run it belongs to); delete it or start "
                              "without resuming")
    if not optimizer:
        saved, current = {"problem": saved.get("problem")}, {"problem": current.get("problem")}
    if ignore:
        saved, current = ({**fp, "problem": {k: v for k, v in (fp.get("problem") or {}).items()
                                             if k not in ignore}} for fp in (saved, current))
    diff = fingerprint_differences(saved, current)
    if diff:
        shown = "; ".join(f"{k}: saved {_short(a)}, current {_short(b)}" for k, a, b in diff[:6])
        more = f"; and {len(diff) - 6} more" if len(diff) > 6 else ""
        raise CheckpointError(f"checkpoint {os.fspath(path)!r} belongs to a different problem "
                              f"or run: {shown}{more}", differences=diff)


def _short(v: Any) -> str:
    if isinstance(v, dict) and "sha256" in v:
        return f"array {tuple(v['shape'])} {v['dtype']} sha256 {v['sha256'][:12]}"
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def rng_state(rng: np.random.Generator) -> dict:
    """The bit generator's state of a ``numpy.random.Generator`` (JSON-serializable).

    Parameters
    ----------
    rng : numpy.random.Generator

    Returns
    -------
    dict
        ``rng.bit_generator.state``.
    """
    return rng.bit_generator.state


def set_rng_state(rng: np.random.Generator, state: dict) -> np.random.Generator:
    """Restore a state returned by :func:`rng_state` (same bit generator kind).

    Parameters
    ----------
    rng : numpy.random.Generator
        Changed in place.
    state : dict
        From :func:`rng_state`.

    Returns
    -------
    numpy.random.Generator
        ``rng``.

    Raises
    ------
    ValueError
        If ``state`` belongs to another kind of bit generator.
    """
    if state["bit_generator"] != type(rng.bit_generator).__name__:
        raise ValueError(f"checkpoint's generator is {state['bit_generator']}, "
                         f"this run uses {type(rng.bit_generator).__name__}")
    rng.bit_generator.state = state
    return rng
