"""Wall clock of the user-facing training commands, with their result next to the time.

Runs each command in a fresh process (so that numba's cache load, data generation,
training, evaluation and figures all count) and records the wall clock, the training time
the command reports and its quality number:

* ``flow 8gaussians`` -- ``ocp-learn flow --data 8gaussians`` (default settings: n = 2048,
  width 32, RK4 8 steps, L-BFGS 300 iterations): test NLL, and its gap to the data's NLL
  floor (the mixture's entropy) in nats;
* ``crowd d100`` (with ``--with-crowd``; about 9 minutes on two cores) --
  ``mpiexec -n 2 ocp-learn mfg --problem crowd --dim 100`` (the full two-stage schedule,
  1250 L-BFGS iterations, data parallel on two ranks): the objective on fresh agents.

Writes results/cli_wall.{json,md}::

    NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \\
        python -m benchmarks.bench_cli_wall [--with-crowd]
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

FLOW = ["flow", "--data", "8gaussians"]
CROWD = ["mfg", "--problem", "crowd", "--dim", "100"]


def run(args, extra, ranks=1):
    """``(wall seconds, metrics)`` of ``ocp-learn <args> <extra> --out TMP`` on ``ranks``
    MPI ranks."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "ocp_learn.cli", *args, *extra, "--out", out]
        if ranks > 1:
            cmd = ["mpiexec", "-n", str(ranks), *cmd]
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        wall = time.perf_counter() - t
        with open(os.path.join(out, "metrics.json")) as f:
            return wall, json.load(f)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--extra", default="", help="options appended to every command (e.g. "
                    "'--iters 3' for a quick run; the table says so)")
    ap.add_argument("--with-crowd", action="store_true",
                    help="also the crowd-motion game in d = 100 on two MPI ranks")
    ap.add_argument("--out", default=None)
    ap.add_argument("--name", default="cli_wall")
    a = ap.parse_args(argv)
    extra = a.extra.split()
    rows = []
    wall, m = run(FLOW, extra)
    rows.append(["ocp-learn " + " ".join(FLOW + extra), 1, wall, m["seconds"], m["iterations"],
                 "test NLL (nats)", m["test_nll"], m["test_nll_se"],
                 f"{m['test_nll'] - m['nll_floor']:.4f} above the floor {m['nll_floor']:.4f}"])
    print(rows[-1], flush=True)
    if a.with_crowd:
        wall, m = run(CROWD, extra, ranks=2)
        rows.append(["mpiexec -n 2 ocp-learn " + " ".join(CROWD + extra), 2, wall, m["seconds"],
                     m["iterations"], "objective on fresh agents", m["objective"],
                     m["objective_se"], ""])
        print(rows[-1], flush=True)
    headers = ["command", "ranks", "wall_s", "training_s", "iterations", "quality", "value",
               "se", "note"]
    jp, mp = write(a.name, rows, headers, meta={"extra": a.extra}, out=a.out)
    print(open(mp).read())
    print("wrote", jp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
