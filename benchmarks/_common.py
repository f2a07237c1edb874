"""Shared helpers of the benchmark scripts: timing and JSON + markdown output."""
from __future__ import annotations

import json
import os
import platform
import time

import numpy as np

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def best_time(fn, repeat=5, number=1):
    """Best wall time of ``number`` calls over ``repeat`` rounds (seconds per call)."""
    fn()  # warm up (jit compilation, caches)
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t) / number)
    return best


def machine():
    import numpy
    return {"python": platform.python_version(), "numpy": numpy.__version__,
            "machine": platform.machine(), "cpus": os.cpu_count(),
            "threads_env": {k: os.environ.get(k) for k in ("NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS")}}


def write(name, rows, headers, meta=None, out=None):
    """Write ``out/name.json`` and ``out/name.md`` (a markdown table); return paths."""
    out = out or RESULTS
    os.makedirs(out, exist_ok=True)
    data = {"benchmark": name, "machine": machine(), "meta": meta or {},
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
