"""Adjoint memory cost: stored floats, peak RSS and seconds per gradient per strategy (MATH B3, B4).

Hamiltonian network (MATH A4), d = 2 (state D = 4), n samples, horizon T = 2,
N in {8, 32, 128, 512, 2048} steps.  Strategies:

* RK4: store_all, store_states, checkpoint (s = 4 and s = 16), continuous adjoint
  (backsolve, interpolate);
* leapfrog: store_all, reversible.

Each (strategy, N) runs in a *fresh subprocess* so that its peak RSS is its own:
the subprocess builds the problem, runs a warm-up gradient with N = 1, resets
the kernel's RSS high-water mark (``/proc/self/clear_refs``; ``ru_maxrss`` where
that is unavailable), runs one gradient and reports the peak RSS minus the RSS
before it; a second gradient
runs under ``tracemalloc`` (numpy reports its buffers to it) for the peak of
traced bytes; then the best time of a few gradients.  The ledger's stored
floats are compared with the analytic formula of each strategy, and the
continuous adjoint's gradient with the exact discrete (store-all) gradient.

If ``torch`` and ``torchdiffeq`` import (the ``bench`` extra), the same network
and loss run side by side through ``torchdiffeq.odeint`` and ``odeint_adjoint``
(method "rk4", fixed step T/N, float64).  Note that torchdiffeq's "rk4" is
Kutta's 3/8 rule, so even ``odeint`` differs from our classic-RK4 discrete
gradient by O(h^4).

Writes memory.json / memory.md and memory.png (stored floats and RSS vs N,
seconds vs N, continuous-adjoint error vs N).

    python -m benchmarks.bench_memory [--n 256] [--Ns 8,32,128,512,2048] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np

from benchmarks._common import RESULTS, ROOT, write

D_HALF, T_HORIZON = 2, 2.0

STRATEGIES = [  # (label, integrator, strategy spec)
    ("store_all", "rk4", "store_all"),
    ("store_states", "rk4", "store_states"),
    ("checkpoint(4)", "rk4", ("checkpoint", 4)),
    ("checkpoint(16)", "rk4", ("checkpoint", 16)),
    ("continuous/backsolve", "rk4", ("continuous", "backsolve")),
    ("continuous/interpolate", "rk4", ("continuous", "interpolate")),
    ("store_all", "leapfrog", "store_all"),
    ("reversible", "leapfrog", "reversible"),
]


def analytic_stored_floats(label, integrator, N, n):
    """The strategies' stored-float formulas (MATH B4), for the table."""
    nD = n * 2 * D_HALF
    tape = 4 * nD if integrator == "rk4" else 3 * n * D_HALF
    if label == "store_all":
        return N * tape
    if label in ("store_states",):
        return (N + 1) * nD + tape
    if label.startswith("checkpoint"):
        s = int(label[len("checkpoint("):-1])
        return min(s, N) * nD + tape
    if label == "continuous/backsolve":
        return nD
    if label == "continuous/interpolate":
        return (N + 1) * nD
    if label == "reversible":
        return nD + tape
    raise ValueError(label)


def data(n, seed=0):
    from ocp_learn.datasets import rings
    x, y = rings(n, seed=seed)
    return x, y


def make_problem(n, N, integrator, strategy):
    import ocp_learn as ol
    from ocp_learn.models import HamiltonianNet
    x, y = data(n)
    prob = ol.OCP(HamiltonianNet(D_HALF), x, ol.LinearHeadLoss(y, 2 * D_HALF, "logistic"),
                  T=T_HORIZON, nt=N, integrator=integrator, strategy=strategy,
                  regularizers=[ol.Tikhonov(1e-4)])
    theta = prob.init_params(0)
    return prob, theta


def _status_kb(key):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def _reset_peak_rss():
    """Reset the kernel's RSS high-water mark (Linux >= 4.0); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _rss_bytes():
    """Peak RSS so far (since the last reset where supported), in bytes."""
    try:
        return 1024 * _status_kb("VmHWM")
    except (OSError, KeyError):
        r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return r if sys.platform == "darwin" else r * 1024


def _current_rss_bytes():
    try:
        return 1024 * _status_kb("VmRSS")
    except (OSError, KeyError):
        return _rss_bytes()


def worker(args):
    """Run in a fresh process: one (strategy, N) measurement, JSON on stdout."""
    spec = json.loads(args.worker)
    kind = spec["kind"]
    n, N = spec["n"], spec["N"]
    if kind == "ours":
        strategy = spec["strategy"]
        strategy = tuple(strategy) if isinstance(strategy, list) else strategy
        prob, theta = make_problem(n, N, spec["integrator"], strategy)
        fn = lambda: prob.evaluate(theta)  # noqa: E731
        wprob, wtheta = make_problem(n, 1, spec["integrator"], strategy)
        wprob.evaluate(wtheta)  # warm-up: lazy imports and first-call allocations
    else:
        fn, theta = torch_gradient_fn(n, N, adjoint=(kind == "odeint_adjoint"))
        torch_gradient_fn(n, 1, adjoint=(kind == "odeint_adjoint"))[0]()  # warm-up
    import gc
    gc.collect()
    rss0 = _current_rss_bytes() if _reset_peak_rss() else _rss_bytes()
    t0 = time.perf_counter()
    ev = fn()
    first = time.perf_counter() - t0
    rss = _rss_bytes() - rss0
    tracemalloc.start()
    fn()
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    reps = 1 if first > 2.0 else 3
    best = first
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    out = {"rss_delta_bytes": rss, "traced_peak_bytes": traced, "seconds": best}
    if kind == "ours":
        out["ledger"] = ev.ledger.as_dict()
        out["gradient"] = ev.gradient.tolist()
        out["reconstruction_error"] = ev.ledger.reconstruction_error
    else:
        out["gradient"] = ev.tolist()
    print("RESULT " + json.dumps(out))
    return 0


def torch_available():
    try:
        import torch  # noqa: F401
        import torchdiffeq  # noqa: F401
        return True
    except Exception:
        return False


def torch_gradient_fn(n, N, adjoint):
    """The same network and loss in torch; returns ``(fn, theta)`` with ``fn()``
    giving our flat gradient layout ([K, b] dynamics, then [W, mu] head)."""
    import torch
    from torchdiffeq import odeint, odeint_adjoint

    torch.set_num_threads(1)
    prob, theta = make_problem(n, N, "rk4", "store_all")
    P = prob.unpack(theta)
    x0 = torch.tensor(prob.field.initial_state(prob.x0))
    labels = torch.tensor(prob.terminal.labels, dtype=torch.float64)

    class Ham(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.K = torch.nn.Parameter(torch.tensor(P["K"][0].copy()))
            self.b = torch.nn.Parameter(torch.tensor(P["b"][0].copy()))

        def forward(self, t, Y):
            y, z = Y[:, :D_HALF], Y[:, D_HALF:]
            return torch.cat([torch.tanh(z @ self.K.T + self.b), -torch.tanh(y @ self.K + self.b)], 1)

    f = Ham()
    W = torch.tensor(P["W"].copy(), requires_grad=True)
    mu = torch.tensor(P["mu"].copy(), requires_grad=True)
    ts = torch.tensor([0.0, T_HORIZON], dtype=torch.float64)
    solve = odeint_adjoint if adjoint else odeint
    reg = 1e-4

    def fn():
        for p in (f.K, f.b, W, mu):
            p.grad = None
        yT = solve(f, x0, ts, method="rk4", options={"step_size": T_HORIZON / N})[-1]
        r = (yT @ W.T + mu)[:, 0]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(r, labels)
        loss = loss + 0.5 * reg * (f.K.pow(2).sum() + f.b.pow(2).sum())
        loss.backward()
        return np.concatenate([f.K.grad.numpy().ravel(), f.b.grad.numpy().ravel(),
                               W.grad.numpy().ravel(), mu.grad.numpy().ravel()])

    return fn, theta


def run_one(spec):
    cmd = [sys.executable, "-m", "benchmarks.bench_memory", "--worker", json.dumps(spec)]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    for line in res.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"worker failed for {spec}:\n{res.stderr[-3000:]}")


def rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--Ns", default="8,32,128,512,2048")
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        return worker(a)
    out = a.out or RESULTS
    Ns = [int(v) for v in a.Ns.split(",")]
    use_torch = (not a.no_torch) and torch_available()
    rows, recs = [], []
    for N in Ns:
        exact = {}
        for label, integ, strategy in STRATEGIES:
            r = run_one({"kind": "ours", "n": a.n, "N": N, "integrator": integ,
                         "strategy": strategy})
            if label == "store_all":
                exact[integ] = r["gradient"]
            led = r["ledger"]
            ana = analytic_stored_floats(label, integ, N, a.n)
            err = rel(r["gradient"], exact[integ])
            rows.append([label, integ, N, led["stored_floats"], ana, led["stored_floats"] == ana,
                         r["rss_delta_bytes"] / 2**20, r["traced_peak_bytes"] / 2**20,
                         8 * led["stored_floats"] / 2**20, r["seconds"], led["steps"],
                         led["recomputed_steps"], led["vjp_evals"], err])
            recs.append({"label": label, "integrator": integ, "N": N, **r, "analytic": ana,
                         "grad_rel_error_vs_store_all": err})
            print(f"  N={N:5d} {label:24s} {integ:8s} stored={led['stored_floats']:>10d} "
                  f"rss={r['rss_delta_bytes'] / 2**20:8.2f} MiB  {r['seconds']:.3f} s  err={err:.2e}",
                  flush=True)
        if use_torch:
            for kind in ("odeint", "odeint_adjoint"):
                r = run_one({"kind": kind, "n": a.n, "N": N})
                err = rel(r["gradient"], exact["rk4"])
                rows.append([f"torchdiffeq.{kind}", "rk4 (3/8)", N, "n/a", "n/a", "n/a",
                             r["rss_delta_bytes"] / 2**20, r["traced_peak_bytes"] / 2**20, "n/a",
                             r["seconds"], "n/a", "n/a", "n/a", err])
                recs.append({"label": f"torchdiffeq.{kind}", "integrator": "rk4(3/8)", "N": N,
                             **r, "grad_rel_error_vs_store_all": err})
                print(f"  N={N:5d} torchdiffeq.{kind:15s} rss={r['rss_delta_bytes'] / 2**20:8.2f} MiB"
                      f"  {r['seconds']:.3f} s  err={err:.2e}", flush=True)
    headers = ["strategy", "integrator", "N", "stored_floats", "analytic", "match", "rss_MiB",
               "traced_MiB", "stored_MiB", "s_per_gradient", "steps", "recomputed", "vjp_evals",
               "grad_rel_err_vs_store_all"]
    for r in recs:
        r.pop("gradient", None)
    meta = {"model": "HamiltonianNet d=2 (D=4)", "n": a.n, "T": T_HORIZON,
            "torchdiffeq": use_torch, "records": recs,
            "rss": "peak RSS during the first gradient (VmHWM after resetting it) minus RSS "
                   "before, fresh process",
            "traced": "tracemalloc peak over one gradient (numpy buffers are traced)"}
    jp, mp = write("memory", rows, headers, meta=meta, out=out)
    from .bench_figures import caption_table, memory_figure
    memory_figure(jp, os.path.join(out, "memory"))
    caption_table(mp, "memory")
    print(open(mp).read())
    print("wrote", jp, mp)
    return 0



if __name__ == "__main__":
    sys.exit(main())
