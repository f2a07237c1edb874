"""Wall clock of the user-facing training commands, with their result next to the time.

Runs each command below in a fresh process (so that numba's cache load, data generation,
training, evaluation and figures all count) and records the wall clock, the training time
the command reports, and its quality number:

* ``ocp-learn flow --data 8gaussians`` (default settings: n = 2048, width 32, RK4 8 steps,
  L-BFGS 300 iterations) -- test NLL and its gap to the data's NLL floor (the mixture's
  entropy) in nats.

Writes results/flow_cli.{json,md}::

    NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python -m benchmarks.bench_flow_cli
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks._common import write

COMMANDS = {"flow 8gaussians": ["flow", "--data", "8gaussians"]}


def run(args, extra):
    """``(wall seconds, metrics)`` of ``ocp-learn <args> <extra> --out TMP``."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "ocp_learn.cli", *args, *extra, "--out", out]
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - t
        with open(os.path.join(out, "metrics.json")) as f:
            return wall, json.load(f)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--extra", default="", help="options appended to every command (e.g. "
                    "'--iters 20' for a quick run; the table says so)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--name", default="flow_cli")
    a = ap.parse_args(argv)
    extra = a.extra.split()
    rows = []
    for args in COMMANDS.values():
        wall, m = run(args, extra)
        gap = m["test_nll"] - m["nll_floor"]
        rows.append(["ocp-learn " + " ".join(args + extra), wall, m["seconds"], m["iterations"],
                     m["test_nll"], m["test_nll_se"], m["nll_floor"], gap])
        print(rows[-1], flush=True)
    headers = ["command", "wall_s", "training_s", "iterations", "test_nll", "test_nll_se",
               "nll_floor", "gap_nats"]
    jp, mp = write(a.name, rows, headers, meta={"extra": a.extra}, out=a.out)
    print(open(mp).read())
    print("wrote", jp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
