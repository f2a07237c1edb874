"""GPU backend: PotentialResNet and the OT-Flow CNF on CuPy vs Numba (CPU), side by side.

In ONE run, for d = 64, m in {32, 128} (M = 1 residual layer, exact trace) and
n in {2^14, 2^16, 2^18, 2^20} it times ``derivatives`` (Phi, grad, d_t Phi and the
exact Laplacian, MATH D1--D3) and ``derivatives_vjp`` (all four cotangents, D6) of
:class:`~ocp_learn.models.PotentialResNet` as

* ``numba_cpu``    -- ``backend="numba"`` on the CPU, all threads (``path="auto"``: the
  fused per-sample kernels at m = 32, the chunked BLAS program at m = 128);
* ``cupy_device``  -- ``backend="cupy"`` with CuPy inputs and outputs (device-resident,
  no host round trip), ``cupy.cuda.Device().synchronize()`` around the timer;
* ``cupy_host_io`` -- ``backend="cupy"`` with numpy inputs and outputs (what the OCP
  solvers do today: host-to-device and device-to-host copies included);

and one objective + gradient of ``ContinuousNormalizingFlow`` (d in {2, 64}, m = 32,
RK4, 8 steps, exact trace) at n in {2^14, 2^16, 2^18}, numba vs cupy.

Every measurement: one warm-up call on a small problem of the same shapes (JIT
compilation, cuBLAS handles), then timed calls at full size -- the best of up to
``--repeat`` while they fit ``--budget`` seconds, else the single call.  ``GFLOP/s``
counts the multiply-adds of the hand-derived program exactly as ``bench_potential.flops``
(2 flops per multiply-add, transcendentals not counted; the same count for every
implementation) and, for the CNF, as ``bench_kernels.cnf_flops`` (per RK stage one
forward and one forward + vjp).  ``speedup_vs_numba`` is the numba seconds over the
row's seconds, measured in this same run.  ``max_rel_diff_vs_numba`` is
``max_k |a_k - b_k|_inf / |b_k|_inf`` over the outputs ``k`` (b = numba) -- the
correctness check of the run; where the CPU run is skipped (n > ``--cpu-max-n``) the
per-sample outputs are compared on the first ``--check-rows`` samples against numba
on those samples (``theta_bar``, a sum over all samples, is then not compared).

The run is bounded: CPU runs above ``--cpu-max-n`` are skipped (and say so), a
measurement whose predicted time (linear in n from the previous size) exceeds the time
left before ``--deadline`` seconds is skipped, each size is in its own try/except (an
out-of-memory error costs one row), and the JSON + markdown are rewritten after every row.

    python -m benchmarks.bench_gpu [--sizes 2^14 2^16 2^18 2^20] [--widths 32 128]
        [--dims 64] [--cpu-max-n 2^18] [--cnf-sizes 2^14 2^16 2^18] [--cnf-dims 2 64]
        [--out DIR]

Without CuPy and a CUDA device it prints why and exits 0 having written nothing
(``--allow-no-gpu`` writes the CPU rows alone, to check the script on a CPU machine).
Writes ``gpu.json`` and ``gpu.md`` to ``--out`` (default ``benchmarks/results``).
"""
# ruff: noqa: B023  (each timed lambda is called within the loop iteration that defines it)
import argparse
import os
import sys
import time
import traceback

os.environ.setdefault("NUMBA_NUM_THREADS", str(os.cpu_count() or 1))

import numpy as np

from benchmarks._common import write
from benchmarks.bench_potential import flops

from ocp_learn.kernels import cupy_available, get_num_threads
from ocp_learn.models import PotentialResNet

HEADERS = ["case", "n", "d", "m", "op", "impl", "seconds", "GFLOP/s", "speedup_vs_numba",
           "max_rel_diff_vs_numba", "note"]


def size(v):
    """``"2^14"``, ``"2**14"`` or ``"16384"`` -> 16384 (argparse type)."""
    s = str(v).replace("**", "^")
    try:
        n = 2 ** int(s[2:]) if s.startswith("2^") else int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 2^k, got {v!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive size, got {v!r}")
    return n


def cnf_flops(d, m, M, r, nt, n, stages=4):
    """Flops of one CNF objective + gradient (as ``bench_kernels.cnf_flops``)."""
    return n * nt * stages * (flops("derivs", d, m, M, r) + flops("vjp", d, m, M, r))


def rel_diff(got, ref):
    """``max_k |got_k - ref_k|_inf / |ref_k|_inf`` over paired outputs (host arrays)."""
    out = 0.0
    for a, b in zip(got, ref):
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        scale = max(float(np.abs(b).max(initial=0.0)), 1e-300)
        out = max(out, float(np.abs(a - b).max(initial=0.0)) / scale)
    return out


class Bench:
    """Rows, the time budget and the incremental output of one run."""

    def __init__(self, a, meta):
        self.a, self.meta, self.rows = a, meta, []
        self.t0 = time.perf_counter()
        self.last = {}      # (impl, op, d, m, case) -> (n, seconds), for the time prediction
        self.cp = None
        if meta.get("cupy"):
            import cupy
            self.cp = cupy

    def left(self):
        return self.a.deadline - (time.perf_counter() - self.t0)

    def sync(self):
        if self.cp is not None:
            self.cp.cuda.Device().synchronize()

    def free(self):
        if self.cp is not None:
            self.sync()
            self.cp.get_default_memory_pool().free_all_blocks()
            self.cp.get_default_pinned_memory_pool().free_all_blocks()

    def predicted(self, key, n):
        if key not in self.last:
            return None
        n0, s0 = self.last[key]
        return s0 * n / n0

    def timed(self, key, n, fn, warm):
        """Best seconds of ``fn`` (see module docstring), or a string saying why it was skipped."""
        pred = self.predicted(key, n)
        if pred is not None and 1.2 * pred > self.left():
            return f"skipped: predicted {pred:.3g} s > {max(self.left(), 0):.0f} s left before --deadline"
        if self.left() <= 0:
            return "skipped: --deadline reached"
        warm()
        self.sync()
        t = time.perf_counter()
        out = fn()
        self.sync()
        first = time.perf_counter() - t
        best = first
        reps = 0 if first > self.a.budget else max(
            0, min(self.a.repeat, int(self.a.budget / max(first, 1e-9))) - 1)
        for _ in range(reps):
            if self.left() <= 0:
                break
            self.sync()
            t = time.perf_counter()
            fn()
            self.sync()
            best = min(best, time.perf_counter() - t)
        self.last[key] = (n, best)
        return best, out

    def add(self, row):
        self.rows.append(row)
        print(" | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row), flush=True)
        self.save()

    def save(self):
        self.meta["elapsed_s"] = time.perf_counter() - self.t0
        if self.cp is not None:
            from ocp_learn.kernels.potential_cupy import activation_impl
            self.meta["activation"] = activation_impl()
        jp, mp = write(self.a.name, self.rows, HEADERS, meta=self.meta, out=self.a.out)
        with open(mp, "a") as fh:
            fh.write("\n" + "\n".join(f"- {s}" for s in notes(self.meta)) + "\n")
        return jp, mp


def notes(meta):
    """The lines under the markdown table: machine, thread counts, what was skipped and why."""
    out = [f"CPU: {meta['cpus']} logical CPUs, numba threads {meta['numba_threads']}, "
           f"BLAS threads {meta.get('blas_threads')}",
           f"GPU: {meta.get('gpu', 'none (CuPy or a CUDA device missing)')}; "
           f"cupy {meta.get('cupy')}, numba {meta.get('numba')}, activation kernel "
           f"{meta.get('activation', '-')}",
           f"PotentialResNet M = 1, exact trace, float64; device chunk budget "
           f"{meta['chunk_bytes'] / 2**30:g} GiB (potential_cupy.CHUNK_BYTES)",
           f"numba_cpu runs only for n <= --cpu-max-n = {meta['cpu_max_n']}; above it the "
           f"check compares the first {meta['check_rows']} samples' per-sample outputs "
           "(theta_bar not compared)",
           "seconds: best of up to --repeat calls after a warm-up; speedup_vs_numba = numba "
           "seconds / row seconds, same run",
           f"elapsed {meta.get('elapsed_s', 0):.0f} s of --deadline {meta['deadline']:g} s"]
    return out


def inputs(rng, n, d):
    x = rng.standard_normal((n, d))
    t = rng.uniform(0.0, 1.0, n)
    bars = dict(phi_bar=rng.standard_normal(n), grad_bar=rng.standard_normal((n, d)),
                dt_bar=rng.standard_normal(n), lap_bar=rng.standard_normal(n))
    return x, t, bars


def potential_rows(B, d, m, n, rng):
    """The six (or four, above --cpu-max-n) rows of one (d, m, n)."""
    a, cp = B.a, B.cp
    case = "potential"
    x, t, bars = inputs(rng, n, d)
    cpu = PotentialResNet(d, width=m, backend="numba")
    theta = cpu.init_params(0)
    r = cpu.rank
    fl = {"derivs": flops("derivs", d, m, 1, r) * n, "vjp": flops("vjp", d, m, 1, r) * n}
    xs, ts, bs = inputs(np.random.default_rng(1), 256, d)   # the small warm-up problem
    calls = {"derivs": (lambda mod, x, t, th, bars: mod.derivatives(x, t, th)),
             "vjp": (lambda mod, x, t, th, bars: mod.derivatives_vjp(x, t, th, **bars))}
    on_cpu = n <= a.cpu_max_n
    ref, base = {}, {}
    path = "fused" if cpu.backend.fused_flow else "blas"
    for op, call in calls.items():
        key = ("numba_cpu", op, d, m, case)
        if not on_cpu:
            B.add([case, n, d, m, op, "numba_cpu", "", "", "", "",
                   f"skipped: n > --cpu-max-n = {a.cpu_max_n}"])
            continue
        try:
            res = B.timed(key, n, lambda: call(cpu, x, t, theta, bars),
                          lambda: call(cpu, xs, ts, theta, bs))
        except Exception as exc:
            traceback.print_exc()
            B.add([case, n, d, m, op, "numba_cpu", "", "", "", "", f"error: {exc!r}"[:160]])
            continue
        if isinstance(res, str):
            B.add([case, n, d, m, op, "numba_cpu", "", "", "", "", res])
            continue
        sec, out = res
        ref[op], base[op] = [np.asarray(v) for v in out], sec
        B.add([case, n, d, m, op, "numba_cpu", sec, fl[op] / sec / 1e9, 1.0, 0.0,
               f"numba path={path}, {get_num_threads()} threads"])
    if cp is None:
        return
    rows = min(n, a.check_rows)
    if not on_cpu:   # per-sample reference on the first rows only
        sl = slice(0, rows)
        bsl = {k: v[sl] for k, v in bars.items()}
        ref = {"derivs": [np.asarray(v) for v in cpu.derivatives(x[sl], t[sl], theta)],
               "vjp": [np.asarray(v) for v in cpu.derivatives_vjp(x[sl], t[sl], theta, **bsl)][:2]}
    gpu = PotentialResNet(d, width=m, backend="cupy")
    dev = {"cupy_device": (cp.asarray(x), cp.asarray(t), cp.asarray(theta),
                           {k: cp.asarray(v) for k, v in bars.items()}),
           "cupy_host_io": (x, t, theta, bars)}
    for impl, (xi, ti, thi, bi) in dev.items():
        wdev = cp.asarray if impl == "cupy_device" else (lambda v: v)
        xw, tw, thw, bw = wdev(xs), wdev(ts), wdev(theta), {k: wdev(v) for k, v in bs.items()}
        for op, call in calls.items():
            key = (impl, op, d, m, case)
            try:
                res = B.timed(key, n, lambda: call(gpu, xi, ti, thi, bi),
                              lambda: call(gpu, xw, tw, thw, bw))
                if isinstance(res, str):
                    B.add([case, n, d, m, op, impl, "", "", "", "", res])
                    continue
                sec, out = res
                host = [cp.asnumpy(v) if not isinstance(v, np.ndarray) else v for v in out]
                if impl == "cupy_device":
                    assert all(isinstance(v, cp.ndarray) for v in out), "device outputs expected"
                if on_cpu:
                    diff = rel_diff(host, ref[op]) if op in ref else ""
                    note = ""
                else:
                    diff = rel_diff([v[:rows] for v in host[:len(ref[op])]], ref[op])
                    note = f"check on first {rows} samples"
                sp = base[op] / sec if op in base else ""
                B.add([case, n, d, m, op, impl, sec, fl[op] / sec / 1e9, sp, diff, note])
            except Exception as exc:
                traceback.print_exc()
                B.add([case, n, d, m, op, impl, "", "", "", "", f"error: {exc!r}"[:160]])
            finally:
                out = res = None
                B.free()
    B.free()


def cnf_rows(B, d, n, rng):
    """numba vs cupy: one objective + gradient of the CNF at (d, n)."""
    from ocp_learn.problems.cnf import ContinuousNormalizingFlow

    a = B.a
    case = f"cnf rk4 nt={a.nt}"
    m = a.cnf_width
    x = rng.standard_normal((n, d))
    xs = np.random.default_rng(1).standard_normal((64, d))
    base, ref = None, None
    backends = ["numba"] + (["cupy"] if B.cp is not None else [])
    for backend in backends:
        impl = "numba_cpu" if backend == "numba" else "cupy_host_io"
        if backend == "numba" and n > a.cpu_max_n:
            B.add([case, n, d, m, "objective+gradient", impl, "", "", "", "",
                   f"skipped: n > --cpu-max-n = {a.cpu_max_n}"])
            continue
        try:
            prob = ContinuousNormalizingFlow(x, width=m, nt=a.nt, backend=backend)
            small = ContinuousNormalizingFlow(xs, width=m, nt=a.nt, backend=backend)
            theta = prob.init_params(0)
            fl = cnf_flops(d, m, 1, prob.potential.rank, a.nt, n)
            res = B.timed((impl, "cnf", d, m, case), n, lambda: prob.objective_and_gradient(theta),
                          lambda: small.objective_and_gradient(theta))
            if isinstance(res, str):
                B.add([case, n, d, m, "objective+gradient", impl, "", "", "", "", res])
                continue
            sec, (J, g) = res
            if backend == "numba":
                base, ref = sec, (np.array([J]), np.asarray(g))
                B.add([case, n, d, m, "objective+gradient", impl, sec, fl / sec / 1e9, 1.0, 0.0,
                       f"{get_num_threads()} threads"])
            else:
                diff = rel_diff((np.array([J]), np.asarray(g)), ref) if ref is not None else ""
                note = "field calls with numpy arrays (host round trip per stage)"
                if ref is None:
                    note += "; no check (numba run skipped)"
                B.add([case, n, d, m, "objective+gradient", impl, sec, fl / sec / 1e9,
                       base / sec if base else "", diff, note])
        except Exception as exc:
            traceback.print_exc()
            B.add([case, n, d, m, "objective+gradient", impl, "", "", "", "", f"error: {exc!r}"[:160]])
        finally:
            prob = small = None
            B.free()


def machine_meta(a, have_cupy):
    import numba
    meta = {"cpus": os.cpu_count(), "numba_threads": get_num_threads(), "numba": numba.__version__,
            "cpu_max_n": a.cpu_max_n, "check_rows": a.check_rows, "deadline": a.deadline,
            "repeat": a.repeat, "budget": a.budget, "M": 1, "trace": "exact", "nt": a.nt,
            "cnf_width": a.cnf_width}
    from ocp_learn.kernels import potential_cupy
    meta["chunk_bytes"] = potential_cupy.CHUNK_BYTES
    try:
        from threadpoolctl import threadpool_info
        meta["blas_threads"] = {i.get("internal_api"): i.get("num_threads") for i in threadpool_info()
                                if i.get("user_api") == "blas"}
    except ImportError:
        meta["blas_threads"] = None
    if have_cupy:
        import cupy
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        name = props["name"]
        name = name.decode() if isinstance(name, bytes) else str(name)
        meta["cupy"] = cupy.__version__
        meta["gpu"] = f"{name}, {props['totalGlobalMem'] / 2**30:.0f} GiB"
        meta["cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
    return meta


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=size, nargs="+", default=[2 ** 14, 2 ** 16, 2 ** 18, 2 ** 20])
    ap.add_argument("--widths", type=size, nargs="+", default=[32, 128])
    ap.add_argument("--dims", type=size, nargs="+", default=[64])
    ap.add_argument("--cpu-max-n", type=size, default=2 ** 18,
                    help="skip the numba CPU runs above this n (they are said to be skipped)")
    ap.add_argument("--cnf-sizes", type=size, nargs="*", default=[2 ** 14, 2 ** 16, 2 ** 18])
    ap.add_argument("--cnf-dims", type=size, nargs="+", default=[2, 64])
    ap.add_argument("--cnf-width", type=size, default=32)
    ap.add_argument("--nt", type=size, default=8)
    ap.add_argument("--repeat", type=size, default=3)
    ap.add_argument("--budget", type=float, default=8.0,
                    help="seconds of timed calls per measurement (one call beyond)")
    ap.add_argument("--deadline", type=float, default=300.0,
                    help="seconds after which remaining measurements are skipped (and say so)")
    ap.add_argument("--check-rows", type=size, default=4096)
    ap.add_argument("--allow-no-gpu", action="store_true",
                    help="without CuPy/CUDA, still write the numba CPU rows (script check)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--name", default="gpu")
    a = ap.parse_args(argv)
    have = cupy_available()
    if not have:
        print("bench_gpu: CuPy with a usable CUDA device is not available here "
              "(ocp_learn.kernels.cupy_available() is False);", end=" ")
        if not a.allow_no_gpu:
            print("nothing measured, nothing written.")
            return 0
        print("--allow-no-gpu: writing the numba CPU rows only.")
    meta = machine_meta(a, have)
    print({k: meta[k] for k in ("cpus", "numba_threads", "blas_threads", "chunk_bytes")},
          meta.get("gpu"), flush=True)
    B = Bench(a, meta)
    rng = np.random.default_rng(0)
    for d in a.dims:
        for m in a.widths:
            for n in a.sizes:
                try:
                    potential_rows(B, d, m, n, rng)
                except Exception as exc:
                    traceback.print_exc()
                    B.add(["potential", n, d, m, "", "", "", "", "", "", f"error: {exc!r}"[:160]])
                    B.free()
    for d in a.cnf_dims:
        for n in a.cnf_sizes:
            try:
                cnf_rows(B, d, n, rng)
            except Exception as exc:
                traceback.print_exc()
                B.add([f"cnf rk4 nt={a.nt}", n, d, a.cnf_width, "objective+gradient", "", "",
                       "", "", "", f"error: {exc!r}"[:160]])
    if not B.rows:
        print("no rows measured")
        return 0
    jp, mp = B.save()
    print(open(mp).read())
    print("wrote", jp, "and", mp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
