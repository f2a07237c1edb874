"""Objective + gradient time of this checkout against another commit, side by side in one run.

Each case is timed in a fresh subprocess per tree (the other commit is checked out into a
temporary ``git worktree``), alternating the two trees over several rounds so that a change of
machine load hits both alike.  A round reports the best of ``--repeat`` calls after a warm-up
call (numba compilation, caches), in wall-clock and in CPU time of the process (less
sensitive to other load on the machine); the table gives the medians over rounds and the
ratios ``this / base`` (below 1: this checkout is faster).

Run::

    python -m benchmarks.bench_versions --base 3acd014 --rounds 3 --threads 1

Writes ``benchmarks/results/versions.json`` and ``versions.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile

import numpy as np

from benchmarks._common import RESULTS, provenance

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

#: name -> (setup code, timed statement); public API only, so that both trees run it
CASES = {
    "cnf d=2 m=32 n=4096 rk4x8 numba": (
        "from ocp_learn.problems.cnf import ContinuousNormalizingFlow\n"
        "x = np.random.default_rng(0).standard_normal((4096, 2))\n"
        "p = ContinuousNormalizingFlow(x, width=32, nt=8, backend='numba')\n",
        "p.objective_and_gradient(theta)"),
    "cnf d=2 m=32 n=4096 rk4x8 numpy": (
        "from ocp_learn.problems.cnf import ContinuousNormalizingFlow\n"
        "x = np.random.default_rng(0).standard_normal((4096, 2))\n"
        "p = ContinuousNormalizingFlow(x, width=32, nt=8, backend='numpy')\n",
        "p.objective_and_gradient(theta)"),
    "cnf d=2 m=32 n=4096 float32 numba": (
        "from ocp_learn.problems.cnf import ContinuousNormalizingFlow\n"
        "x = np.random.default_rng(0).standard_normal((4096, 2))\n"
        "p = ContinuousNormalizingFlow(x, width=32, nt=8, backend='numba', dtype=np.float32)\n",
        "p.objective_and_gradient(theta)"),
    "cnf d=64 m=128 n=1024 rk4x8 numba": (
        "from ocp_learn.problems.cnf import ContinuousNormalizingFlow\n"
        "x = np.random.default_rng(0).standard_normal((1024, 64))\n"
        "p = ContinuousNormalizingFlow(x, width=128, nt=8, backend='numba')\n",
        "p.objective_and_gradient(theta)"),
    "crowd d=100 stage 1 (8464 agents) numba": (
        "from ocp_learn.problems.mfg import mfg_preset\n"
        "p = mfg_preset('crowd', dim=100, backend='numba')\n",
        "p.objective_and_gradient(theta)"),
    "classifier rings n=1000 width 16 rk4x8": (
        "from ocp_learn.datasets import rings\n"
        "from ocp_learn.problems import NeuralODEClassifier\n"
        "x, y = rings(1000, seed=0)\n"
        "p = NeuralODEClassifier(x, y, augment=1, width=16, nt=8)\n",
        "p.objective_and_gradient(theta)"),
}

_RUNNER = """
import sys, time, json
import numpy as np
if {malloc}:
    from ocp_learn.allocator import tune_malloc
    tune_malloc()
{setup}
theta = p.init_params(seed=0)
{stmt}
best = cpu = float('inf')
for _ in range({repeat}):
    t, c = time.perf_counter(), time.process_time()
    {stmt}
    best, cpu = min(best, time.perf_counter() - t), min(cpu, time.process_time() - c)
J = float(p.objective(theta))
import ocp_learn
print(json.dumps({{"seconds": best, "cpu_seconds": cpu, "J": J, "file": ocp_learn.__file__}}))
"""


def _git(*args, cwd=ROOT):
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          check=True).stdout.strip()


def _time(tree, case, repeat, threads, malloc=False):
    setup, stmt = CASES[case]
    env = dict(os.environ, PYTHONPATH=tree, NUMBA_NUM_THREADS=str(threads),
               OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    code = _RUNNER.format(setup=setup, stmt=stmt, repeat=repeat, malloc=bool(malloc))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=tempfile.gettempdir())
    if out.returncode != 0:
        raise RuntimeError(f"{case} on {tree} failed:\n{out.stderr[-2000:]}")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if not os.path.realpath(res["file"]).startswith(os.path.realpath(tree)):
        raise RuntimeError(f"{case}: imported {res['file']}, expected the tree {tree}")
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--base", default="HEAD~1", help="the commit to compare with")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per case")
    ap.add_argument("--repeat", type=int, default=5, help="timed calls per round (best kept)")
    ap.add_argument("--threads", type=int, default=1, help="numba and BLAS threads")
    ap.add_argument("--tune-malloc", action="store_true",
                    help="keep freed arrays in the process in both trees "
                         "(ocp_learn.allocator.tune_malloc, what the ocp-learn command does)")
    ap.add_argument("--only", nargs="*", default=None, help="case names (substrings) to run")
    ap.add_argument("--name", default="versions", help="output file stem")
    ap.add_argument("--out", default=RESULTS, help="output folder")
    args = ap.parse_args(argv)
    cases = [c for c in CASES if not args.only or any(s in c for s in args.only)]
    base = _git("rev-parse", args.base)
    head = _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        wt = os.path.join(tmp, "base")
        _git("worktree", "add", "--detach", wt, base)
        try:
            for case in cases:
                t = {"this": [], "base": []}
                c = {"this": [], "base": []}
                J = {}
                for _ in range(args.rounds):
                    for label, tree in (("base", wt), ("this", ROOT)):
                        r = _time(tree, case, args.repeat, args.threads, args.tune_malloc)
                        t[label].append(r["seconds"])
                        c[label].append(r["cpu_seconds"])
                        J[label] = r["J"]
                mb, mt = float(np.median(t["base"])), float(np.median(t["this"]))
                cb, ct = float(np.median(c["base"])), float(np.median(c["this"]))
                rel = abs(J["this"] - J["base"]) / max(abs(J["base"]), 1e-300)
                rows.append([case, mb, mt, mt / mb, cb, ct, ct / cb, rel])
                print(f"{case}: wall base {mb:.4f} s, this {mt:.4f} s, ratio {mt / mb:.3f}; "
                      f"cpu base {cb:.4f} s, this {ct:.4f} s, ratio {ct / cb:.3f}; "
                      f"|dJ|/|J| {rel:.1e}", flush=True)
        finally:
            _git("worktree", "remove", "--force", wt)
    prov = provenance(["python", "-m", "benchmarks.bench_versions", *(argv or sys.argv[1:])])
    meta = {**prov, "commit": head, "dirty": dirty, "base": base,
            "threads": args.threads, "rounds": args.rounds, "repeat": args.repeat}
    headers = ["case", "base s", "this s", "this / base", "base cpu s", "this cpu s",
               "this / base (cpu)", "rel. change of J"]
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, args.name)
    with open(stem + ".json", "w") as fh:
        json.dump({"benchmark": args.name, "provenance": prov, "meta": meta,
                   "rows": [dict(zip(headers, r)) for r in rows]}, fh, indent=2)
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = [f"Objective + gradient, this checkout ({head[:7]}{'+' if dirty else ''}) against "
             f"{base[:7]}; {args.threads} thread(s), median over {args.rounds} alternating "
             f"rounds of the best of {args.repeat} calls.", "",
             "Reproduce: `" + shlex.join(meta["argv"]) + "`", "",
             "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    with open(stem + ".md", "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return rows


if __name__ == "__main__":
    main()
