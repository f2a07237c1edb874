"""Work--precision of Euler, Heun, RK4 and leapfrog on a trained model (MATH A4, B1).

A Hamiltonian network classifier (MATH A4; rings data, d = 2, T = 2) is
trained briefly by L-BFGS (leapfrog, 8 steps).  With the trained ``theta``
fixed, each integrator solves the ODE on the training points with
``N = 4 .. 1024`` steps; the error is ``max |y_N(T) - y_ref(T)| / max |y_ref(T)|``
against RK4 with 4096 steps, and the seconds are the best time of one forward
solve.  Also reported: the relative error of the gradient (exact discrete
gradient at N against the reference one) -- what a user training with N steps
actually gets.  Observed orders are the slopes of log(error) over log(N).

Writes integrators.json / integrators.md and integrators.png (error vs steps,
error vs seconds).

    python -m benchmarks.bench_integrators [--n 256] [--out DIR]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from benchmarks._common import RESULTS, best_time, write

import ocp_learn as ol
from ocp_learn.datasets import rings
from ocp_learn.models import HamiltonianNet

INTEGRATORS = ["euler", "heun", "rk4", "leapfrog"]
FIELD_EVALS = {"euler": 1, "heun": 2, "rk4": 4, "leapfrog": 1.5}  # full-field evaluations per step


def make(x, y, nt, integrator):
    return ol.OCP(HamiltonianNet(2), x, ol.LinearHeadLoss(y, 4, "logistic"), T=2.0, nt=nt,
                  integrator=integrator, strategy="store_all", regularizers=[ol.Tikhonov(1e-4)])


def train(n, maxiter, seed=0):
    from ocp_learn.optim import lbfgs
    x, y = rings(n, seed=seed)
    prob = make(x, y, 8, "leapfrog")
    res = lbfgs(prob, prob.init_params(seed), maxiter=maxiter)
    return x, y, res


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--maxiter", type=int, default=60)
    ap.add_argument("--Ns", default="4,8,16,32,64,128,256,512,1024")
    ap.add_argument("--ref-N", type=int, default=4096, help="steps of the RK4 reference")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    out = a.out or RESULTS
    Ns = [int(v) for v in a.Ns.split(",")]
    x, y, res = train(a.n, a.maxiter)
    theta = res.x
    ref_prob = make(x, y, a.ref_N, "rk4")
    ref_prob.strategy = ol.get_strategy("store_states")  # O(N) states, not O(4N) stages
    y_ref = ref_prob.final_state(theta)
    g_ref = ref_prob.objective_and_gradient(theta)[1]
    scale = np.max(np.abs(y_ref))
    rows, recs = [], {}
    for integ in INTEGRATORS:
        errs, gerrs, secs = [], [], []
        for N in Ns:
            prob = make(x, y, N, integ)
            yN = prob.final_state(theta)
            err = float(np.max(np.abs(yN - y_ref)) / scale)
            g = prob.objective_and_gradient(theta)[1]
            gerr = float(np.linalg.norm(g - g_ref) / np.linalg.norm(g_ref))
            t = best_time(lambda prob=prob: prob.final_state(theta), repeat=3 if N < 512 else 2)
            errs.append(err)
            gerrs.append(gerr)
            secs.append(t)
        orders = [float("nan")] + list(np.log2(np.array(errs[:-1]) / np.array(errs[1:])))
        for N, e, ge, t, o in zip(Ns, errs, gerrs, secs, orders):
            rows.append([integ, N, FIELD_EVALS[integ] * N, e, o, ge, t])
        recs[integ] = {"N": Ns, "error": errs, "grad_error": gerrs, "seconds": secs}
        print(f"{integ:9s} errors {' '.join(f'{e:.1e}' for e in errs)}", flush=True)
    headers = ["integrator", "N", "field_evals", "rel_error_yT", "observed_order",
               "rel_error_gradient", "seconds_forward"]
    meta = {"model": "HamiltonianNet d=2 trained by L-BFGS (leapfrog, N=8)", "n": a.n, "T": 2.0,
            "train_objective": float(res.fun), "train_iterations": int(res.nit),
            "reference": f"rk4, N={a.ref_N}", "records": recs}
    jp, mp = write("integrators", rows, headers, meta=meta, out=out)
    from .bench_figures import caption_table, integrators_figure
    integrators_figure(jp, os.path.join(out, "integrators"))
    caption_table(mp, "integrators")
    print(open(mp).read())
    print("wrote", jp, mp)
    return 0



if __name__ == "__main__":
    sys.exit(main())
