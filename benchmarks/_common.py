"""Shared helpers of the benchmark scripts: timing, provenance and JSON + markdown output."""
from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import time
from typing import Any, Callable, Sequence

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
#: committed result tables (JSON + markdown + plots)
RESULTS = os.path.join(HERE, "results")
#: trained parameters, figures and checkpoints the result tables were computed from
ARTIFACTS = os.path.join(HERE, "artifacts")

THREAD_ENV = ("NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def best_time(fn: Callable[[], Any], repeat: int = 5, number: int = 1) -> float:
    """Best wall time of ``number`` calls over ``repeat`` rounds (seconds per call)."""
    fn()  # warm up (jit compilation, caches)
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t) / number)
    return best


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=20, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def machine() -> dict:
    """Platform, CPU count, Python and numpy versions of this machine."""
    return {"platform": platform.platform(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__}


def threads() -> dict:
    """Thread settings: the environment variables and numba's thread count read from Python."""
    out: dict[str, Any] = {k: os.environ.get(k) for k in THREAD_ENV}
    try:
        import numba
        out["numba_get_num_threads"] = numba.get_num_threads()
    except ImportError:
        out["numba_get_num_threads"] = None
    return out


def provenance(argv: Sequence[str] | None = None) -> dict:
    """What produced a result: command line, git commit and dirty flag, UTC date, machine,
    thread counts and load average.

    Parameters
    ----------
    argv : sequence of str, optional
        The command line (default ``sys.argv``).

    Returns
    -------
    dict
        ``argv``, ``commit``, ``dirty``, ``date``, ``machine``, ``threads``, ``loadavg``.
    """
    argv = list(sys.argv if argv is None else argv)
    if argv and os.path.dirname(os.path.abspath(argv[0])) == HERE and argv[0].endswith(".py"):
        argv = ["python", "-m", "benchmarks." + os.path.basename(argv[0])[:-3], *argv[1:]]
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    if commit is None:  # a copy of the tree without its history (a GPU machine, say)
        commit = os.environ.get("OCP_LEARN_COMMIT")
    return {"argv": argv,
            "commit": commit, "dirty": None if status is None else bool(status),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(), "threads": threads(),
            "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def write(name: str, rows: Sequence[Sequence], headers: Sequence[str], meta: dict | None = None,
          out: str | None = None) -> tuple[str, str]:
    """Write ``out/name.json`` (rows, ``meta`` and :func:`provenance`) and ``out/name.md``
    (a markdown table); return both paths.  ``out`` defaults to :data:`RESULTS`."""
    out = out or RESULTS
    os.makedirs(out, exist_ok=True)
    prov = provenance()
    data = {"benchmark": name, "provenance": prov, "machine": prov["machine"], "meta": meta or {},
            "rows": [dict(zip(headers, r)) for r in rows]}
    jp, mp = os.path.join(out, f"{name}.json"), os.path.join(out, f"{name}.md")
    with open(jp, "w") as fh:
        json.dump(data, fh, indent=2, default=float)
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    with open(mp, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return jp, mp
