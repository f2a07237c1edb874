"""Kernels: the OT-Flow CNF objective + gradient, ocp_learn (numba, numpy) vs PyTorch, side by side.

For each size (n samples, dimension d, width m; M = 1 residual layer, RK4, nt steps,
exact trace, alpha_L = 100, alpha_R = 5), thread count and dtype it times ONE
``objective_and_gradient`` of

* ``ocp_numba_fused`` -- ``ContinuousNormalizingFlow(backend="numba")``, whose field runs
  the numba backend's fused flow kernels (:mod:`ocp_learn.kernels.potential_flow_numba`),
  samples in tiles with the weight products as GEMMs (:mod:`ocp_learn.kernels.potential_soa_numba`);
* ``ocp_numba_per_sample`` -- the same fused kernels one sample at a time
  (``NumbaPotentialBackend(layout="samples")``);
* ``ocp_numba``       -- the same with the generic field code (``field.fused = False``:
  the potential's kernels only);
* ``ocp_numpy``       -- the numpy reference backend;
* ``torch_otflow``    -- :class:`benchmarks.peers.torch_reference.TorchOTFlow`: the SAME discrete objective in
  torch, OT-Flow style (hand-coded gradient and trace in torch ops, torch.autograd for the
  parameter gradient);
* ``torch_autograd``  -- the same with grad and Laplacian by autograd (d <= 8 only);
* ``ffjord``          -- an FFJORD-style torchdiffeq CNF (Hutchinson, RK4, same width);

after checking in float64 that the torch objective and gradient equal ocp_learn's (same
parameters copied over).  torch runs float64 and float32; so do ``ocp_numba_fused`` and
``ocp_numba`` (``ContinuousNormalizingFlow(dtype=numpy.float32)``: float32 states and
float32 Jacobian-path kernels), whose ``rel_err_vs_ocp_numpy_float64`` column is the
relative error of the objective / max-abs gradient against the float64 numpy reference
(the float32 rounding, for the float32 rows); ``ocp_numpy`` and the float32 torch rows
leave it empty.  The last column divides each row's time by the ``ocp_numba_fused`` row
of the SAME dtype (float64 rows by the float64 fused row, float32 rows by the float32
fused row).  ``GFLOP/s`` counts the multiply-adds of the hand-derived program
(``bench_potential.flops``: per stage one forward + one fused forward-and-vjp) for every
implementation, and ``%GEMM`` divides by this machine's measured GEMM rate of the same
precision (DGEMM for float64 rows, SGEMM for float32 rows) at the same thread count.
Also measures the cold (empty cache) and warm (cache=True) Numba compilation time of the
whole kernel suite.  Writes results/kernels.json and .md.

    OPENBLAS_NUM_THREADS=2 NUMBA_NUM_THREADS=2 python -m benchmarks.bench_kernels \\
        [--ns 1024 4096 16384] [--dims 2 8 64] [--widths 32 128] [--threads 1 2] \\
        [--dtypes float64 float32]

``--quick`` instead times, side by side at each of ``--threads`` (writes results/kernels_quick.*):
the CNF objective+gradient at d = 2, m = 32, n = 4096, RK4, 8 steps -- ocp_learn fused numba
float64 and float32 (tiles, and the per-sample kernels ``layout="samples"``) vs TorchOTFlow
float64 and float32, with the speed-up over torch in the same dtype -- and, at one thread,
the crowd-motion MFG objective+gradient at
d = 100, n = 8464, nt = 4 (m = 16) -- fused numba field (interactions in numpy) vs the generic
numba field (``derivatives`` then ``derivatives_vjp``) -- best of ``--repeat``, with the load
average around each measurement (the machine is shared):

    NUMBA_NUM_THREADS=2 python -m benchmarks.bench_kernels --quick --threads 1 2
"""
# ruff: noqa: B023  (each timed lambda is called within the loop iteration that defines it)
import argparse
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("NUMBA_NUM_THREADS", str(os.cpu_count() or 1))

import numpy as np

from benchmarks._common import write
from benchmarks.bench_potential import flops

from ocp_learn.kernels import set_num_threads
from ocp_learn.problems.cnf import ContinuousNormalizingFlow

IMPLS = ("ocp_numba_fused", "ocp_numba_per_sample", "ocp_numba", "ocp_numpy", "torch_otflow",
         "torch_autograd", "ffjord")


def best(fn, repeat, budget=20.0):
    """Best of ``repeat`` timed calls after one warm-up; fewer repeats for slow calls."""
    t = time.perf_counter()
    fn()
    first = time.perf_counter() - t
    reps = max(1, min(repeat, int(budget / max(first, 1e-9))))
    b = first if reps == 1 else np.inf
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        b = min(b, time.perf_counter() - t)
    return b


def dgemm_gflops(threads, size=1024, dtype=np.float64):
    """Best DGEMM (or SGEMM) rate of numpy's BLAS at ``threads`` threads."""
    from threadpoolctl import threadpool_limits
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(dtype)
    b = rng.standard_normal((size, size)).astype(dtype)
    with threadpool_limits(limits=threads, user_api="blas"):
        sec = best(lambda: a @ b, 5)
    return 2.0 * size ** 3 / sec / 1e9


def cnf_flops(d, m, M, r, nt, n, stages=4):
    """Flops of one objective+gradient: per stage a forward (rhs) and a forward+vjp."""
    return n * nt * stages * (flops("derivs", d, m, M, r) + flops("vjp", d, m, M, r))


_COMPILE_SNIPPET = r"""
import time, numpy as np
t0 = time.perf_counter()
from ocp_learn.models import PotentialResNet
from ocp_learn.models.mlp import SingleLayerNet
from ocp_learn.problems.cnf import ContinuousNormalizingFlow
t1 = time.perf_counter()
x = np.random.default_rng(0).standard_normal((8, 2))
for tr in ("exact", "hutchinson"):
    pot = PotentialResNet(2, width=4, trace=tr, backend="numba", path="fused")
    th = pot.init_params(0)
    pr = None if tr == "exact" else pot.sample_probes(8, 0)
    pot.derivatives(x, 0.5, th, probes=pr)
    pot.derivatives_vjp(x, 0.5, th, lap_bar=np.ones(8), probes=pr)
    pot.derivatives_jvp(x, 0.5, th, dx=x, probes=pr)
    p = ContinuousNormalizingFlow(x, width=4, nt=1, backend="numba", trace=tr)
    p.objective_and_gradient(p.init_params(0))
net = SingleLayerNet(2, 4, backend="numba")
th = net.init_params(0)
net.rhs(x, 0, th); net.jvp(x, 0, th, x, th); net.vjp(x, 0, th, x)
print(t1 - t0, time.perf_counter() - t1)
"""


def compile_times():
    """(cold, warm) seconds to compile/load every kernel, in fresh processes with a fresh cache."""
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for kind in ("cold", "warm"):
            r = subprocess.run([sys.executable, "-c", _COMPILE_SNIPPET], env=env,
                               capture_output=True, text=True, check=True)
            imp, run = map(float, r.stdout.split()[-2:])
            out[kind] = {"import_s": imp, "compile_and_run_s": run}
    return out


def quick(a):
    """The ``--quick`` side-by-side rows (module docstring); one thread everywhere."""
    try:
        import torch
        from benchmarks.peers.torch_reference import TorchOTFlow
    except ImportError:  # the torch rows are left out
        torch = None

    from ocp_learn.kernels.potential_numba import NumbaPotentialBackend
    from ocp_learn.problems.mfg import mfg_preset

    rows = []
    meta = {"threads": list(a.threads), "torch": None if torch is None else torch.__version__,
            "loadavg_start": os.getloadavg(), "repeat": a.repeat}

    def timed(case, impl, fn, check="", threads=1):
        l0 = os.getloadavg()[0]
        sec = best(fn, a.repeat, a.budget)
        rows.append([case, threads, impl, sec, check, "", l0, os.getloadavg()[0]])
        print(rows[-1], flush=True)
        return sec

    x = np.random.default_rng(0).standard_normal((4096, 2))
    case = "CNF d=2 m=32 n=4096 rk4 nt=8"
    cnf = ContinuousNormalizingFlow(x, width=32, nt=8, backend="numba")
    theta = cnf.init_params(0)
    J_ref, g_ref = cnf.objective_and_gradient(theta)
    for thr in a.threads:
        set_num_threads(thr)
        if torch is not None:
            torch.set_num_threads(thr)
        ours = {}
        for dt in (np.float64, np.float32):
            for layout in ("tiles", "samples"):
                p = ContinuousNormalizingFlow(x, width=32, nt=8, dtype=dt,
                                              backend=NumbaPotentialBackend(layout=layout))
                J, g = p.objective_and_gradient(theta)
                err = max(abs(J - J_ref) / abs(J_ref), np.abs(g - g_ref).max() / np.abs(g_ref).max())
                name = "ocp_numba_fused" + ("" if layout == "tiles" else "_per_sample")
                sec = timed(case, f"{name} {dt.__name__}", lambda p=p: p.objective_and_gradient(theta),
                            f"rel_err={err:.1e}", thr)
                if layout == "tiles":
                    ours[dt.__name__] = sec
        for dt in () if torch is None else (torch.float64, torch.float32):
            tr = TorchOTFlow(cnf, dtype=dt)
            P = tr.params(theta)
            Jt, gt = tr.objective_and_gradient(P)
            gt = tr.flat_gradient(gt)
            err = max(abs(float(Jt) - J_ref) / abs(J_ref),
                      np.abs(gt - g_ref[:gt.size]).max() / np.abs(g_ref).max())
            name = str(dt).split('.')[-1]
            sec = timed(case, f"torch_otflow {name}",
                        lambda tr=tr, P=P: tr.objective_and_gradient(P), f"rel_err={err:.1e}", thr)
            rows[-1][5] = f"ocp_numba_fused {name} is {sec / ours[name]:.2f}x faster"
        rows.append([case, thr, "ocp float64 / float32 time", ours["float64"] / ours["float32"],
                     "", "", "", ""])
    set_num_threads(1)
    mfg = mfg_preset("crowd", 100, n_samples=8464, nt=4, backend="numba")
    th = mfg.init_params(0)
    case = "MFG crowd d=100 m=16 n=8464 rk4 nt=4"
    Jf, gf = mfg.objective_and_gradient(th)
    timed(case, "ocp_numba_fused float64", lambda: mfg.objective_and_gradient(th))
    mfg.field.fused = False  # the generic field code on the same numba potential
    try:
        Jg, gg = mfg.objective_and_gradient(th)
        err = max(abs(Jg - Jf) / abs(Jf), np.abs(gg - gf).max() / np.abs(gf).max())
        timed(case, "ocp_numba_generic float64", lambda: mfg.objective_and_gradient(th),
              f"rel_diff_to_fused={err:.1e}")
    finally:
        mfg.field.fused = True
    meta["loadavg_end"] = os.getloadavg()
    headers = ["case", "threads", "impl", "seconds", "check", "ratio", "load1_before",
               "load1_after"]
    jp, mp = write(a.name if a.name != "kernels" else "kernels_quick", rows, headers, meta=meta,
                   out=a.out)
    print(open(mp).read())
    print("wrote", jp)
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true",
                    help="only the one-thread CNF and crowd-MFG side-by-side rows (docstring)")
    ap.add_argument("--ns", type=int, nargs="+", default=[1024, 4096])
    ap.add_argument("--dims", type=int, nargs="+", default=[2, 8, 64])
    ap.add_argument("--widths", type=int, nargs="+", default=[32, 128])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--dtypes", nargs="+", default=["float64", "float32"])
    ap.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    ap.add_argument("--nt", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--budget", type=float, default=20.0,
                    help="seconds of timed calls per measurement at most (fewer repeats beyond)")
    ap.add_argument("--no-compile", action="store_true", help="skip the compile-time measurement")
    ap.add_argument("--out", default=None)
    ap.add_argument("--name", default="kernels")
    a = ap.parse_args(argv)
    if a.quick:
        return quick(a)

    import torch
    from benchmarks.peers.torch_reference import TorchFFJORD, TorchOTFlow

    from ocp_learn.kernels.potential_numba import NumbaPotentialBackend

    meta = {"loadavg_start": os.getloadavg(), "nt": a.nt, "M": 1, "integrator": "rk4",
            "trace": "exact", "torch": torch.__version__}
    meta["dgemm_gflops"] = {t: dgemm_gflops(t) for t in a.threads}
    meta["sgemm_gflops"] = {t: dgemm_gflops(t, dtype=np.float32) for t in a.threads}
    print("GEMM GFLOP/s", meta["dgemm_gflops"], meta["sgemm_gflops"], flush=True)
    if not a.no_compile:
        meta["numba_compile"] = compile_times()
        print("compile", meta["numba_compile"], flush=True)
    rows, checks = [], []
    rng = np.random.default_rng(0)
    for n in a.ns:
        for d in a.dims:
            x = rng.standard_normal((n, d))
            for m in a.widths:
                def ocp_probs(dtype):
                    generic = ContinuousNormalizingFlow(x, width=m, nt=a.nt, backend="numba",
                                                        dtype=dtype)
                    generic.field.fused = False
                    return {"ocp_numba_fused": ContinuousNormalizingFlow(
                                x, width=m, nt=a.nt, backend="numba", dtype=dtype),
                            "ocp_numba_per_sample": ContinuousNormalizingFlow(
                                x, width=m, nt=a.nt, dtype=dtype,
                                backend=NumbaPotentialBackend(layout="samples")),
                            "ocp_numba": generic,
                            "ocp_numpy": ContinuousNormalizingFlow(x, width=m, nt=a.nt,
                                                                   backend="numpy", dtype=dtype)}
                probs = {dt: ocp_probs(getattr(np, dt)) for dt in a.dtypes}
                ref = probs["float64"]["ocp_numpy"] if "float64" in probs else \
                    ContinuousNormalizingFlow(x, width=m, nt=a.nt, backend="numpy")
                theta = ref.init_params(0)
                r = ref.potential.rank
                fl = cnf_flops(d, m, 1, r, a.nt, n)
                J_ref, g_ref = None, None
                for thr in a.threads:
                    set_num_threads(thr)
                    torch.set_num_threads(thr)
                    base = {}
                    for dt in a.dtypes:
                        tdt = getattr(torch, dt)
                        for impl in a.impls:
                            # the numpy backend computes the potential in float64 anyway
                            if impl == "ocp_numpy" and dt != "float64":
                                continue
                            if impl == "torch_autograd" and d > 8:
                                continue
                            err = ""
                            if impl.startswith("ocp"):
                                p = probs[dt][impl]
                                fn = lambda p=p: p.objective_and_gradient(theta)  # noqa: E731
                                if J_ref is None:
                                    J_ref, g_ref = ref.objective_and_gradient(theta)
                                J, g = p.objective_and_gradient(theta)
                                err = max(abs(J - J_ref) / abs(J_ref),
                                          np.abs(g - g_ref).max() / np.abs(g_ref).max())
                            elif impl in ("torch_otflow", "torch_autograd"):
                                tr = TorchOTFlow(ref, dtype=tdt,
                                                 grad_mode="hand" if impl == "torch_otflow" else "autograd")
                                P = tr.params(theta)
                                fn = lambda tr=tr, P=P: tr.objective_and_gradient(P)  # noqa: E731
                                if dt == "float64" and thr == a.threads[0]:
                                    if J_ref is None:
                                        J_ref, g_ref = ref.objective_and_gradient(theta)
                                    Jt, gt = tr.objective_and_gradient(P)
                                    gt = tr.flat_gradient(gt)
                                    err = max(abs(float(Jt) - J_ref) / abs(J_ref),
                                              np.abs(gt - g_ref[:gt.size]).max() / np.abs(g_ref).max())
                                    checks.append({"n": n, "d": d, "m": m, "impl": impl,
                                                   "rel_err_vs_ocp_learn": err})
                            else:
                                ff = TorchFFJORD(d, m, nt=a.nt, dtype=tdt)
                                xt = torch.tensor(x, dtype=tdt)
                                fn = lambda ff=ff, xt=xt: ff.loss_and_gradient(xt)  # noqa: E731
                            sec = best(fn, a.repeat, a.budget)
                            base[(impl, dt)] = sec
                            gf = fl / sec / 1e9
                            gemm = meta["dgemm_gflops" if dt == "float64" else "sgemm_gflops"][thr]
                            row = [n, d, m, thr, dt, impl, sec, gf, 100.0 * gf / gemm, err]
                            rows.append(row)
                            print(row, f"load={os.getloadavg()[0]:.1f}", flush=True)
                    # speed-ups of the fused numba path over each implementation at this thread
                    # count, against the fused row of the same dtype
                    for row in rows:
                        ours = base.get(("ocp_numba_fused", row[4]))
                        if row[:4] == [n, d, m, thr] and ours:
                            row.append(row[6] / ours)
    for row in rows:
        if len(row) == 10:
            row.append("")
    meta["loadavg_end"] = os.getloadavg()
    meta["torch_checks"] = checks
    headers = ["n", "d", "m", "threads", "dtype", "impl", "seconds", "GFLOP/s", "%GEMM",
               "rel_err_vs_ocp_numpy_float64", "x_slower_than_ocp_numba_fused_same_dtype"]
    jp, mp = write(a.name, rows, headers, meta=meta, out=a.out)
    print(open(mp).read())
    print("wrote", jp)
    return 0


if __name__ == "__main__":
    main()
