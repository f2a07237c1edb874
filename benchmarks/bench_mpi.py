"""Strong scaling of data-parallel objective + gradient (ocp_learn.distributed), 1 -> K ranks.

For the CNF (OT-Flow, MATH D4-D5) and the crowd-motion MFG (MATH E, F) at
``n = 2^k`` samples this times one full-batch ``objective_and_gradient``

* serially (the plain problem, one process: the baseline),
* on K MPI ranks (``DistributedProblem`` under ``mpiexec -n K``), with each
  rank's compute time measured alone (all ranks at once) and the rest
  ("overhead" = wait for the slowest rank + communication + wrapper),
* the wrapper's pure communication cost per evaluation: the same collective
  protocol on a problem whose evaluation is free, with the same number of
  parameters (broadcast of theta, ordered gather of value and gradient,
  broadcast of the result).

Writes ``benchmarks/results/mpi.json`` and ``mpi.md`` with ``os.getloadavg()``
before and after each run: on a shared machine the numbers mean little unless
the load is below the core count.

Usage::

    python -m benchmarks.bench_mpi                       # n = 2^16, 2^18 (CNF, MFG), 1 -> 2 ranks
    python -m benchmarks.bench_mpi --sizes 16 18 20 --repeat 3
    python -m benchmarks.bench_mpi --problems mfg --ranks 1 2 4

The script launches itself as ``mpiexec -n K python bench_mpi.py --worker ...``
(mpiexec of the virtual environment, from the ``mpi`` extra).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def build(problem, n, backend, shard=None):
    """The problem of ``shard`` (or all ``n`` samples): same data for every rank count."""
    if problem == "cnf":
        from ocp_learn.problems.cnf import ContinuousNormalizingFlow
        from ocp_learn.datasets.toy2d import toy_sample
        x = toy_sample("8gaussians", n, seed=0)
        if shard is not None:
            x = x[shard.start:shard.stop]
        return ContinuousNormalizingFlow(x, width=16, nt=4, backend=backend)
    if problem == "mfg":
        from ocp_learn.problems.mfg import mfg_preset
        p = mfg_preset("crowd", 2, n_samples=n, backend=backend, seed=0)
        if shard is not None:
            p = p.take(np.arange(shard.start, shard.stop))  # the same agents as the serial run
        return p
    raise ValueError(f"problem must be 'cnf' or 'mfg', got {problem!r}")


class _Free:
    """A problem whose evaluation costs nothing: isolates the collective protocol."""

    def __init__(self, shard, n_params):
        self.n_params, self.n_samples = n_params, shard.size
        self._g = np.full(n_params, 1e-3)

    def init_params(self, seed=None):
        return np.zeros(self.n_params)

    def check_theta(self, theta, name="theta"):
        return np.asarray(theta, dtype=np.float64)

    def evaluate(self, theta, batch=None, gradient=True, *, x=None):
        from ocp_learn import Evaluation, Ledger
        return Evaluation(1.0, self._g if gradient else None, Ledger())

    def objective(self, theta, batch=None):
        return 1.0

    def objective_and_gradient(self, theta, batch=None):
        return 1.0, self._g


def _timed(comm, fn, repeat):
    """Best (over repeats) of the slowest rank's wall time of ``fn()`` started together."""
    best = np.inf
    for _ in range(repeat):
        comm.Barrier()
        t = time.perf_counter()
        fn()
        dt = time.perf_counter() - t
        best = min(best, max(comm.allgather(dt)))
    return best


def worker(args):
    from ocp_learn.distributed import DistributedProblem, auto_comm

    comm = auto_comm()
    rank, size = comm.Get_rank(), comm.Get_size()
    load0 = os.getloadavg()
    out = {"problem": args.problem, "n": args.n, "ranks": size, "backend": args.backend}
    dist = DistributedProblem(lambda s: build(args.problem, args.n, args.backend, s), comm,
                              n_samples=args.n)
    theta = dist.init_params(0)
    out["n_params"] = dist.n_params
    warm = build(args.problem, 64, args.backend)  # numba compilation (or its cache) off the clock
    warm.objective_and_gradient(theta)
    del warm
    if size == 1:
        serial = build(args.problem, args.n, args.backend)
        out["t_serial"] = _timed(comm, lambda: serial.objective_and_gradient(theta), args.repeat)
        del serial
    out["t_dist"] = _timed(comm, lambda: dist.objective_and_gradient(theta), args.repeat)
    # compute alone: every rank evaluates its shard at the same time, no communication
    t_local = []
    for _ in range(args.repeat):
        comm.Barrier()
        t = time.perf_counter()
        dist.local.objective_and_gradient(theta)
        t_local.append(time.perf_counter() - t)
    per_rank = comm.allgather(min(t_local))
    out["t_compute_max"], out["t_compute_min"] = max(per_rank), min(per_rank)
    out["t_overhead"] = out["t_dist"] - out["t_compute_max"]
    # the collective protocol alone, at this n_params
    free = DistributedProblem(lambda s: _Free(s, dist.n_params), comm, n_samples=args.n)
    z = np.zeros(dist.n_params)
    reps = 200
    comm.Barrier()
    t = time.perf_counter()
    for _ in range(reps):
        free.objective_and_gradient(z)
    out["t_comm"] = max(comm.allgather((time.perf_counter() - t) / reps))
    out["loadavg_before"], out["loadavg_after"] = load0, os.getloadavg()
    if rank == 0:
        with open(args.out, "w") as fh:
            json.dump(out, fh)


def run(args):
    from benchmarks._common import write

    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
    if mpiexec is None:
        raise SystemExit("mpiexec not found: pip install -e \".[mpi]\"")
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1")
    rows, raw, skipped = [], [], []
    for problem in args.problems:
        for k in args.sizes:
            n = 2 ** k
            res = {}
            for K in args.ranks:
                with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
                    path = fh.name
                cmd = [mpiexec, "-n", str(K), sys.executable, "-m", "benchmarks.bench_mpi", "--worker",
                       "--problem", problem, "--n", str(n), "--repeat", str(args.repeat),
                       "--backend", args.backend, "--out", path]
                t = time.perf_counter()
                try:
                    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT,
                                          timeout=args.timeout)
                except subprocess.TimeoutExpired:
                    skipped.append(f"{problem} n=2^{k} K={K}: over {args.timeout} s")
                    print("skipped", skipped[-1], flush=True)
                    continue
                if proc.returncode != 0:
                    skipped.append(f"{problem} n=2^{k} K={K}: failed ({proc.stderr[-300:]})")
                    print("failed", skipped[-1], flush=True)
                    continue
                with open(path) as fh:
                    res[K] = json.load(fh)
                os.unlink(path)
                raw.append(res[K])
                print(f"{problem} n=2^{k} K={K}: {res[K]} ({time.perf_counter() - t:.0f} s)",
                      flush=True)
            if 1 not in res:
                continue
            t1 = res[1]["t_serial"]
            for K, r in sorted(res.items()):
                rows.append([problem, f"2^{k}", K, r["n_params"], t1, r["t_dist"], t1 / r["t_dist"],
                             r["t_compute_max"], r["t_overhead"], 1e6 * r["t_comm"],
                             round(r["loadavg_before"][0], 2)])
    headers = ["problem", "n", "ranks", "n_params", "t_serial_s", "t_dist_s", "speedup",
               "t_compute_max_s", "t_overhead_s", "comm_us_per_eval", "load1"]
    meta = {"what": "one full-batch objective_and_gradient; speedup = t_serial (plain problem, "
                    "1 process) / t_dist (K ranks)",
            "config": {"cnf": "OT-Flow width 16, nt 4, RK4, exact trace, 8gaussians",
                       "mfg": "crowd preset (d=2, nt 4, width 16)", "backend": args.backend,
                       "repeat": args.repeat},
            "cpus": os.cpu_count(), "loadavg_end": os.getloadavg(), "skipped": skipped,
            "note": "measured on a shared machine: compare load1 with the core count"}
    paths = write("mpi", rows, headers, meta, out=args.results)
    print("\n".join(paths))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--problem", default="cnf")
    ap.add_argument("--n", type=int, default=2 ** 16)
    ap.add_argument("--out", default=None)
    ap.add_argument("--problems", nargs="+", default=["cnf", "mfg"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[16, 18], help="log2 of n")
    ap.add_argument("--ranks", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--backend", default="numba", choices=["numpy", "numba"])
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per mpiexec run")
    ap.add_argument("--results", default=None, help="output folder (benchmarks/results)")
    args = ap.parse_args(argv)
    if args.worker:
        worker(args)
    else:
        if 1 not in args.ranks:
            ap.error("--ranks must include 1 (the serial baseline)")
        run(args)


if __name__ == "__main__":
    main()
