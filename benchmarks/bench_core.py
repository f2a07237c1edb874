"""Objective + exact gradient of the core neural ODE (A1 model, RK4, 8 steps).

n = 4096, d = 2, m = 32, softmax head; side by side: objective only,
objective + gradient under each memory strategy (ratio to the objective).
Writes results/core.json and results/core.md.

    python -m benchmarks.bench_core [--n 4096] [--out DIR]
"""
import argparse

import numpy as np

from benchmarks._common import best_time, write

import ocp_learn as ol


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--d", type=int, default=2)
    ap.add_argument("--m", type=int, default=32)
    ap.add_argument("--nt", type=int, default=8)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((a.n, a.d))
    y = rng.integers(0, 2, a.n)
    rows = []
    base = None
    for strategy in ["objective only", "store_all", "store_states"]:
        prob = ol.OCP(ol.SingleLayerNet(a.d, a.m), x, ol.LinearHeadLoss(y, a.d, "logistic"),
                      nt=a.nt, integrator="rk4",
                      strategy="store_all" if strategy == "objective only" else strategy)
        theta = prob.init_params(0)
        if strategy == "objective only":
            t = best_time(lambda prob=prob, theta=theta: prob.objective(theta))
            base = t
            led = prob.evaluate(theta, gradient=False).ledger
        else:
            t = best_time(lambda prob=prob, theta=theta: prob.objective_and_gradient(theta))
            led = prob.evaluate(theta).ledger
        rows.append([strategy, a.n, a.d, a.m, a.nt, t, t / base, led.stored_floats, led.rhs_evals,
                     led.vjp_evals])
    headers = ["what", "n", "d", "m", "nt", "seconds", "ratio_to_objective", "stored_floats",
               "rhs_evals", "vjp_evals"]
    jp, mp = write("core", rows, headers, meta={"integrator": "rk4", "backend": "numpy"}, out=a.out)
    print(open(mp).read())
    print("wrote", jp)


if __name__ == "__main__":
    main()
