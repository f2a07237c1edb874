"""Device-resident training on a GPU against the CPU numba backend, end to end.

With ``backend="cupy"`` a problem keeps its samples, states, stages, tapes, adjoints and costs
on the GPU for the whole forward and adjoint sweep; only ``theta``, the gradient and a few
scalars cross to the host per evaluation.  This benchmark measures, on one GPU:

* ``cnf``: one CNF objective + gradient (OT-Flow, RK4, ``nt`` steps, exact trace, width
  ``m``) for ``n`` up to 2^20 samples in d = 2 and 64, against the numba backend on the CPU
  cores of the machine that measured ``--cpu-reference`` (``gpu_e2e_cpu.json``: per-sample
  seconds at smaller ``n``, linear in ``n``, so the CPU time at 2^20 samples is the
  per-sample time times 2^20); the gradient is checked against the NumPy backend on
  ``--check-n`` samples;
* ``mfg``: the crowd-motion game in d = 100 (``mfg_preset("crowd", 100)``) trained on its
  full two-stage schedule (L-BFGS with resampling, validation on fresh agents), stopped at
  ``--mfg-cap`` seconds if it has not finished;
* ``checkerboard``: the checkerboard flow (16384 resampled samples, L-BFGS, the settings of
  the committed CPU run) trained for ``--flow-cap`` seconds: the test NLL reached and its
  gap to the data's entropy (the floor), with the iteration rate.

Usage (on the GPU machine, from the repository root)::

    python -m benchmarks.bench_gpu_e2e --out DIR            # all parts
    python -m benchmarks.bench_gpu_e2e --cpu-reference      # on the CPU machine: the baseline
    python -m benchmarks.bench_gpu_e2e --rehearse --out DIR # tiny sizes on the CPU, no GPU
    python -m benchmarks.bench_gpu_e2e --combine DIR/gpu_e2e.json  # add the CPU columns

``--rehearse`` runs every part at tiny sizes with the device backend's program on the host
(``CupyPotentialBackend(xp=numpy)``), to check the script itself without a GPU.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

from ._common import RESULTS, write

NAME = "gpu_e2e"


def _log(*a):
    print(*a, flush=True)


def _backend(args):
    """The backend name (or object) of the device runs."""
    if args.rehearse:
        from ocp_learn.kernels.potential_cupy import CupyPotentialBackend
        return CupyPotentialBackend(xp=np)
    return "cupy"


def _sync():
    try:
        import cupy
        cupy.cuda.get_current_stream().synchronize()
    except Exception:  # no CuPy (rehearsal, CPU reference)
        pass


def _pool_bytes():
    try:
        import cupy
        return int(cupy.get_default_memory_pool().total_bytes())
    except Exception:
        return None


def _free_pool():
    try:
        import cupy
        cupy.get_default_memory_pool().free_all_blocks()
    except Exception:
        pass


def cnf_flops(d, m, M, r, nt, n):
    from .bench_gpu import cnf_flops as f
    return f(d, m, M, r, nt, n)


def _flow(x, backend, m, nt):
    from ocp_learn.problems.cnf import ContinuousNormalizingFlow
    return ContinuousNormalizingFlow(x, width=m, nt=nt, integrator="rk4", backend=backend)


def _time_eval(prob, theta, repeat):
    prob.evaluate(theta)  # warm-up (compilation, memory pool)
    _sync()
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        ev = prob.evaluate(theta)  # the gradient arrives on the host: the call is complete
        best = min(best, time.perf_counter() - t0)
    return best, ev


# ------------------------------------------------------------------------------- CPU baseline
def cpu_reference(args):
    """Per-sample seconds of the numba backend on this machine's cores (the baseline)."""
    from ocp_learn.kernels import set_num_threads
    threads = os.cpu_count() if args.threads is None else args.threads
    set_num_threads(threads)
    rows = []
    for d, sizes in ((2, (2 ** 16, 2 ** 18)), (64, (2 ** 14, 2 ** 16))):
        for n in sizes:
            x = np.random.default_rng(0).standard_normal((n, d))
            prob = _flow(x, "numba", args.width, args.nt)
            sec, ev = _time_eval(prob, prob.init_params(0), args.repeat)
            rows.append([d, n, threads, sec, sec / n])
            _log(f"cpu numba d={d} n={n} threads={threads}: {sec:.3f} s")
    meta = {"what": "CNF objective + gradient, numba backend on the CPU", "m": args.width,
            "nt": args.nt, "integrator": "rk4", "trace": "exact", "threads": threads}
    write(NAME + "_cpu", rows, ["d", "n", "threads", "seconds", "seconds_per_sample"], meta,
          args.out)


def _cpu_per_sample(d):
    """Per-sample seconds of the CPU baseline at dimension ``d`` (largest measured n)."""
    path = os.path.join(RESULTS, NAME + "_cpu.json")
    if not os.path.exists(path):
        return None, None
    with open(path) as fh:
        data = json.load(fh)
    rows = [r for r in data["rows"] if r["d"] == d]
    if not rows:
        return None, None
    r = max(rows, key=lambda r: r["n"])
    return r["seconds_per_sample"], r["threads"]


def _trace_path(d, pot):
    """The exact trace's path that ``trace_path="auto"`` takes (both backends): Gram matrices
    for one residual layer with ``d > m``, else the Jacobians."""
    return "gram" if pot.n_layers == 1 and d > pot.width else "jacobian"


# ------------------------------------------------------------------------------- parts
def part_cnf(args, rows):
    backend = _backend(args)
    for d in args.dims:
        per, cpu_threads = _cpu_per_sample(d)
        for n in args.sizes:
            if time.perf_counter() > args.t_end:
                _log(f"cnf d={d} n={n}: skipped (deadline)")
                break
            x = np.random.default_rng(1).standard_normal((n, d))
            prob = _flow(x, backend, args.width, args.nt)
            theta = prob.init_params(0)
            try:
                sec, ev = _time_eval(prob, theta, args.repeat)
            except Exception as exc:  # out of memory, say: report and go on
                _log(f"cnf d={d} n={n}: FAILED {exc!r}")
                rows.append(["cnf", d, n, None, None, None, None, None, f"failed: {exc!r}"[:120]])
                _free_pool()
                continue
            pot = prob.potential
            gf = cnf_flops(d, pot.width, pot.n_layers, pot.rank, args.nt, n) / sec / 1e9
            check = None
            if n == args.sizes[0]:  # the gradient of the first size against the NumPy backend
                k = min(n, args.check_n)
                ref = _flow(x[:k], "numpy", args.width, args.nt).evaluate(theta)
                dev = _flow(x[:k], backend, args.width, args.nt).evaluate(theta)
                check = float(np.max(np.abs(dev.gradient - ref.gradient))
                              / np.max(np.abs(ref.gradient)))
            cpu = None if per is None else per * n
            rows.append(["cnf", d, n, sec, gf, cpu, None if cpu is None else cpu / sec, check,
                         f"trace path {_trace_path(d, pot)}; "
                         f"peak pool {(_pool_bytes() or 0) / 2**30:.1f} GiB; CPU: "
                         f"{cpu_threads} threads, per-sample time x n"])
            _log(f"cnf d={d} n={n}: {sec:.4f} s, {gf:.0f} GFLOP/s, cpu {cpu}, check {check}")
            del prob, ev
            _free_pool()


def part_mfg(args, rows):
    from ocp_learn.problems.mfg import PRESETS, mfg_preset
    from ocp_learn.recipes.mfg import train_mfg
    dim = args.mfg_dim
    p = PRESETS["crowd"]
    samples = p["samples"][dim] if dim in p["samples"] else (64, 96)
    iters = p["iters"] if not args.rehearse else (6, 3)
    if args.rehearse:
        samples = (64, 96)
    stages = tuple(zip(samples, iters))
    prob = mfg_preset("crowd", dim, backend=_backend(args), seed=0, n_samples=samples[0])
    t0 = time.perf_counter()
    state = {"k": 0, "stopped": False}

    def cap(k, theta, f, val):
        state["k"] = k
        if time.perf_counter() - t0 > args.mfg_cap:
            state["stopped"] = True
            return True
        return False

    res = train_mfg(prob, stages=stages, seed=0, callback=cap)
    sec = time.perf_counter() - t0
    done = int(res.nit)
    total = sum(iters)
    ev = prob.evaluate_on(res.x, prob.rho0.sample(samples[-1], 123))
    rows.append(["mfg crowd", dim, f"{samples[0]}/{samples[1]}", sec, None, None, None, None,
                 f"{done} of {total} iterations{' (stopped at the cap)' if state['stopped'] else ''}; "
                 f"objective on fresh agents {ev['objective']:.4f}; "
                 f"{sec / max(done, 1) * 1e3:.1f} ms per iteration"])
    _log(f"mfg crowd d={dim}: {sec:.1f} s, {done}/{total} iterations, objective {ev['objective']}")
    _free_pool()


def part_checkerboard(args, rows):
    from ocp_learn.datasets.toy2d import nll_floor, toy_sample
    from ocp_learn.recipes.flow import train_flow
    n = 16384 if not args.rehearse else 256
    n_test = 100_000 if not args.rehearse else 512
    floor = nll_floor("checkerboard")
    t0 = time.perf_counter()
    seen = {"k": 0}

    def cap(k, theta, f, g):
        seen["k"] = k
        return time.perf_counter() - t0 > args.flow_cap

    prob, res, _ = train_flow(toy_sample("checkerboard", n, 0), maxiter=args.flow_iters,
                              seed=0, resample_every=25, keep_pairs=True,
                              draw=lambda k, rng: toy_sample("checkerboard", k, rng),
                              callback=cap, width=32, n_layers=2, nt=8, backend=_backend(args))
    sec = time.perf_counter() - t0
    xt = toy_sample("checkerboard", n_test, 7)
    lp = prob.log_density(res.x, xt)
    nll, se = float(-np.mean(lp)), float(np.std(lp) / np.sqrt(n_test))
    rows.append(["checkerboard flow", 2, n, sec, None, None, None, None,
                 f"{res.nit} iterations; test NLL {nll:.4f} +- {se:.4f} ({n_test} samples), "
                 f"floor {floor:.4f}, gap {nll - floor:.4f}; "
                 f"{sec / max(res.nit, 1) * 1e3:.1f} ms per iteration"])
    _log(f"checkerboard: {sec:.1f} s, {res.nit} iterations, NLL {nll:.4f} gap {nll - floor:.4f}")


def combine(args):
    """Fill the CPU columns of a GPU run's rows from the CPU baseline (``gpu_e2e_cpu.json``)
    and write the table again, next to the baseline; the GPU run's provenance is kept."""
    with open(args.combine) as fh:
        data = json.load(fh)
    headers = list(data["rows"][0]) if data["rows"] else []
    rows = []
    for r in data["rows"]:
        if r["case"] == "cnf" and r["seconds"] is not None:
            per, threads = _cpu_per_sample(r["d"])
            if per is not None:
                r["cpu_seconds"] = per * r["n"]
                r["speedup_vs_cpu"] = r["cpu_seconds"] / r["seconds"]
                r["note"] = r["note"].split("; CPU:")[0] + (
                    f"; CPU: numba, {threads} threads, measured per-sample time x n")
        rows.append([r[h] for h in headers])
    meta = dict(data["meta"], gpu_run=data["provenance"],
                cpu_baseline=os.path.join("benchmarks", "results", NAME + "_cpu.json"))
    write(NAME, rows, headers, meta, args.out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parts", nargs="+", default=["cnf", "mfg", "checkerboard"],
                    choices=["cnf", "mfg", "checkerboard"])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2 ** 14, 2 ** 16, 2 ** 18, 2 ** 20])
    ap.add_argument("--dims", type=int, nargs="+", default=[2, 64])
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--nt", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--check-n", type=int, default=4096)
    ap.add_argument("--mfg-dim", type=int, default=100)
    ap.add_argument("--mfg-cap", type=float, default=150.0)
    ap.add_argument("--flow-cap", type=float, default=150.0)
    ap.add_argument("--flow-iters", type=int, default=6000)
    ap.add_argument("--deadline", type=float, default=420.0, help="seconds for the cnf part")
    ap.add_argument("--cpu-reference", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rehearse", action="store_true")
    ap.add_argument("--combine", default=None, metavar="GPU_JSON",
                    help="fill the CPU columns of a GPU run's JSON from the CPU baseline")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.cpu_reference:
        return cpu_reference(args)
    if args.combine:
        return combine(args)
    if args.rehearse:
        args.sizes, args.dims, args.check_n = [64, 128], [2, 3], 64
        args.mfg_dim, args.flow_iters = 3, 8
    else:
        from ocp_learn.kernels import check_backend
        check_backend("cupy")
    args.t_end = time.perf_counter() + args.deadline
    rows, headers = [], ["case", "d", "n", "seconds", "GFLOP/s", "cpu_seconds",
                         "speedup_vs_cpu", "grad_rel_diff_vs_numpy", "note"]
    meta = {"m": args.width, "nt": args.nt, "integrator": "rk4", "trace": "exact",
            "rehearse": args.rehearse, "parts": args.parts}
    try:
        import cupy
        dev = cupy.cuda.runtime.getDeviceProperties(0)
        meta["gpu"] = dev["name"].decode() if isinstance(dev["name"], bytes) else str(dev["name"])
        meta["cupy"] = cupy.__version__
    except Exception as exc:
        meta["gpu"] = f"none ({exc.__class__.__name__})"
    for part in args.parts:
        try:
            {"cnf": part_cnf, "mfg": part_mfg, "checkerboard": part_checkerboard}[part](args, rows)
        except Exception as exc:  # write what was measured; name the failure
            import traceback
            traceback.print_exc()
            rows.append([part, None, None, None, None, None, None, None,
                         f"failed: {exc!r}"[:200]])
        write(NAME if not args.rehearse else NAME + "_rehearsal", rows, headers, meta, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
