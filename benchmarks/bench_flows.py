"""Continuous normalizing flows: NLL against the floor, OT contrast, exact vs Hutchinson.

Parts (``--only``):

* ``nll``      -- train OT-Flow (L-BFGS, RK4, 8 steps, m = 32, M = 1) on 8gaussians,
                  checkerboard and a d = 16 Gaussian mixture; test NLL vs the floor
                  (the data's entropy), seconds on this machine.
* ``contrast`` -- 8gaussians trained with ``alpha_L = 0.01`` (OT on) and ``alpha_L = 0``:
                  test NLL with 8 vs 32 RK4 steps (straight trajectories change less).
* ``trace``    -- exact trace vs Hutchinson (1 Rademacher probe): seconds per
                  objective+gradient and gradient variance over probe draws, beside the
                  mini-batch variance.

Writes results/flows_<part>.json and .md.

    python -m benchmarks.bench_flows --only nll --iters 200
"""
import argparse
import os
import time

import numpy as np

from benchmarks._common import ARTIFACTS, best_time, write

from ocp_learn.recipes.flow import flow_data, train_flow
from ocp_learn.problems.cnf import ContinuousNormalizingFlow


def part_nll(a):
    rows = []
    for data, dim, n in (("8gaussians", 2, a.n), ("checkerboard", 2, a.n), ("gmm", 16, a.n)):
        if a.data and data not in a.data:
            continue
        x, floor = flow_data(data, n, 0, dim)
        xt, _ = flow_data(data, a.n_test, 1000, dim)
        prob, res, secs = train_flow(x, maxiter=a.iters, backend="numba", seed=0)
        nll = prob.nll(res.x, xt)
        fine = prob.nll(res.x, xt, nt=4 * prob.nt)  # a resolved log-det moves little
        rows.append([data, dim, n, a.iters, res.nit, nll, floor, nll - floor, fine - floor, secs,
                     res.nfev])
        print(rows[-1], flush=True)
        np.save(os.path.join(a.out or ARTIFACTS, f"theta_{data}{dim}.npy"), res.x)
    write("flows_nll" + (("_" + "_".join(a.data)) if a.data else ""), rows,
          ["data", "dim", "n_train", "maxiter", "iterations", "test_nll", "nll_floor", "gap_nats",
           "gap_nats_4x_steps", "seconds", "nfev"],
          meta={"load": os.getloadavg(), "width": 32, "nt": 8, "rk": "rk4", "alpha_L": 0.01,
                "alpha_R": 0.05}, out=a.out)


def part_contrast(a):
    x, floor = flow_data("8gaussians", a.n, 0, 2)
    xt, _ = flow_data("8gaussians", a.n_test, 1000, 2)
    rows = []
    for aL, aR in ((0.01, 0.05), (0.0, 0.0)):
        prob, res, secs = train_flow(x, maxiter=a.iters, backend="numba", seed=0, alpha_L=aL,
                                     alpha_R=aR)
        n8, n32 = prob.nll(res.x, xt, nt=8), prob.nll(res.x, xt, nt=32)
        L = prob.terms(res.x, xt[:2000])["transport_cost"]
        rows.append([aL, aR, res.nit, n8, n32, abs(n8 - n32), L, prob.inverse_error(res.x, xt[:2000]),
                     secs])
        print(rows[-1], flush=True)
    write("flows_contrast", rows, ["alpha_L", "alpha_R", "iterations", "test_nll_nt8",
                                   "test_nll_nt32", "abs_change", "transport_cost", "inverse_error",
                                   "seconds"], meta={"load": os.getloadavg(), "floor": floor}, out=a.out)


def part_trace(a):
    x, _ = flow_data("8gaussians", a.n, 0, 2)
    rows = []
    for d, data in ((2, "8gaussians"), (16, "gmm")):
        x, _ = flow_data(data, a.n, 0, d)
        exact = ContinuousNormalizingFlow(x, backend="numba")
        hutch = ContinuousNormalizingFlow(x, backend="numba", trace="hutchinson", seed=1)
        th = exact.init_params(0) + 0.05 * np.random.default_rng(0).standard_normal(exact.n_params)
        ge = exact.objective_and_gradient(th)[1]
        te = best_time(lambda exact=exact, th=th: exact.objective_and_gradient(th), repeat=3)
        th_ = best_time(lambda hutch=hutch, th=th: hutch.objective_and_gradient(th), repeat=3)
        gs = []
        for k in range(a.draws):
            hutch.resample_probes(k)
            gs.append(hutch.objective_and_gradient(th)[1])
        gs = np.array(gs)
        var_probe = float(np.sum(gs.var(0)) / np.sum(ge ** 2))
        bias = float(np.linalg.norm(gs.mean(0) - ge) / np.linalg.norm(ge))
        rng = np.random.default_rng(3)
        gb = np.array([exact.objective_and_gradient(th, rng.choice(a.n, 256, replace=False))[1]
                       for _ in range(a.draws)])
        var_batch = float(np.sum(gb.var(0)) / np.sum(ge ** 2))
        rows.append([data, d, a.n, te, th_, th_ / te, var_probe, bias, var_batch])
        print(rows[-1], flush=True)
    write("flows_trace", rows, ["data", "dim", "n", "sec_exact", "sec_hutchinson", "ratio",
                                "rel_grad_var_probes", "rel_bias_of_mean", "rel_grad_var_batch256"],
          meta={"load": os.getloadavg(), "draws": a.draws}, out=a.out)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=["nll", "contrast", "trace"], action="append")
    ap.add_argument("--data", action="append", help="restrict the nll part to these sets")
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--n-test", type=int, default=20000)
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--draws", type=int, default=20)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    for part in a.only or ["nll", "contrast", "trace"]:
        t = time.perf_counter()
        {"nll": part_nll, "contrast": part_contrast, "trace": part_trace}[part](a)
        print(f"{part}: {time.perf_counter() - t:.1f} s", flush=True)


if __name__ == "__main__":
    main()
