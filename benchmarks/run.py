"""Run manifest entries (:mod:`benchmarks.manifest`) in subprocesses, then regenerate the index.

    python -m benchmarks.run ID [ID ...] | all | index | list  [--quick] [--out DIR]

A full run writes where the script writes by default (``benchmarks/results``, the committed
record) unless ``--out`` says otherwise; a ``--quick`` run writes to ``--out`` or a fresh
temporary folder, never over the committed results.  Entries whose needs are missing are
skipped with a line saying why.  ``ocp-learn bench`` calls this module.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

from benchmarks._common import ARTIFACTS, HERE, RESULTS, ROOT
from benchmarks.index import write_index
from benchmarks.manifest import BENCHMARKS, NEEDS, Bench

__all__ = ["missing_needs", "bench_argv", "run_entry", "main"]


def _has(check: str) -> bool:
    if check.startswith("exe:"):
        return shutil.which(check[4:], path=os.path.dirname(sys.executable)) is not None or \
            shutil.which(check[4:]) is not None
    if check == "gpu":
        if importlib.util.find_spec("cupy") is None:
            return False
        try:
            import cupy
            return cupy.cuda.runtime.getDeviceCount() > 0
        except Exception:  # any CUDA failure means no usable GPU
            return False
    return importlib.util.find_spec(check) is not None


def missing_needs(bench: Bench, quick: bool = False) -> list[str]:
    """The needs of ``bench`` (its quick run when ``quick``) this machine lacks, with what
    to install."""
    needs = bench.quick_needs if quick and bench.quick_needs is not None else bench.needs
    return [f"{n} ({NEEDS[n][1]})" for n in needs if not _has(NEEDS[n][0])]


def bench_argv(bench: Bench, quick: bool, out: str | None, extra: list[str] = ()) -> list[str]:
    """The command line of one run (``python -m benchmarks.bench_x ...`` or ``bash x.sh``)."""
    args = [a.replace("{artifacts}", ARTIFACTS) for a in (bench.quick if quick else bench.full)]
    if bench.script.endswith(".sh"):
        return ["bash", os.path.join(HERE, bench.script)]
    cmd = [sys.executable, "-m", bench.module, *args, *extra]
    if out is not None:
        cmd += [bench.out_option, out]
    return cmd


def run_entry(key: str, quick: bool, out: str | None, extra: list[str] = (),
              timeout: float | None = None) -> tuple[str, float]:
    """Run the manifest entry ``key``; return ``(status, seconds)`` with status ``ok``,
    ``failed (rc N)``, ``timeout`` or ``skipped: why``."""
    bench = BENCHMARKS[key]
    if quick and bench.quick is None:
        return "skipped: no quick run", 0.0
    miss = missing_needs(bench, quick)
    if miss:
        return "skipped: needs " + ", ".join(miss), 0.0
    cmd = bench_argv(bench, quick, out, list(extra))
    env = dict(os.environ, **dict(bench.env))
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "") if env.get("PYTHONPATH") \
        else ROOT
    env.setdefault("MPLBACKEND", "Agg")
    if out is not None:
        env["OUT"] = out
    print(f"== {key}: {' '.join(shlex.quote(c) for c in cmd)}", flush=True)
    t = time.perf_counter()
    try:
        rc = subprocess.run(cmd, cwd=ROOT, env=env, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - t
    return ("ok" if rc == 0 else f"failed (rc {rc})"), time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    """Run the entries named on the command line; 1 when one failed, else 0."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    ap.add_argument("targets", nargs="+", help="manifest ids, 'all', 'index' or 'list'")
    ap.add_argument("--quick", action="store_true", help="the reduced runs (CI smoke set)")
    ap.add_argument("--out", default=None, help="output folder (default: benchmarks/results for "
                    "full runs, a temporary folder for --quick)")
    ap.add_argument("--args", default="", help="options appended to the script's (one target)")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per entry")
    a = ap.parse_args(argv)
    if a.targets == ["index"]:
        print(write_index(a.out or RESULTS, ARTIFACTS if a.out is None else None))
        return 0
    if a.targets == ["list"]:
        for key, b in BENCHMARKS.items():
            miss = missing_needs(b)
            quick = "no quick run" if b.quick is None else f"quick {b.quick_s or '?'} s"
            print(f"{key:28s} {b.full_runtime:>10s}  {quick:14s} "
                  f"{'missing: ' + ', '.join(miss) if miss else ''}\n    {b.title}")
        return 0
    keys = list(BENCHMARKS) if a.targets == ["all"] else a.targets
    unknown = [k for k in keys if k not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}: expected 'all', 'index', 'list' or "
                         f"one of {sorted(BENCHMARKS)}")
    extra = shlex.split(a.args)
    if extra and len(keys) != 1:
        raise SystemExit("--args: expected exactly one target")
    out = a.out
    if out is None and a.quick:
        out = tempfile.mkdtemp(prefix="ocp_learn_bench_quick_")
    if out is not None:
        out = os.path.abspath(out)
        os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()
    report = [(k, *run_entry(k, a.quick, out, extra, a.timeout)) for k in keys]
    print("\n== summary" + (" (quick)" if a.quick else "") + f", output in {out or RESULTS}")
    for key, status, secs in report:
        print(f"{key:28s} {secs:7.1f} s  {status}")
    print(f"{'total':28s} {time.perf_counter() - t0:7.1f} s")
    folder = out or RESULTS
    if os.path.isdir(folder):
        print(write_index(folder, ARTIFACTS if folder == RESULTS else None))
    return int(any(s.startswith(("failed", "timeout")) for _, s, _ in report))


if __name__ == "__main__":
    raise SystemExit(main())
