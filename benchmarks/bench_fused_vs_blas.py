"""The two numba programs of the potential flow field, side by side: fused per-sample
kernels (``path="fused"``) against the chunked batched-GEMM program (``path="blas"``).

One CNF objective + gradient (``ContinuousNormalizingFlow``, M = 1, RK4, ``--nt`` steps,
exact trace) per (d, m, threads), best of ``--repeat`` after a warm-up, with the largest
relative difference of the two gradients.  This measurement decides ``path="auto"``
(:func:`ocp_learn.kernels.potential_numba.numba_potential_backend`).  Writes results/kernels_fused_vs_blas.*.

    python -m benchmarks.bench_fused_vs_blas [--n 256] [--dims 2 8 64 128] [--widths 32 128]
"""
# ruff: noqa: B023  (each timed lambda is called within the loop iteration that defines it)
import argparse
import os

import numpy as np

from benchmarks._common import best_time, write

from ocp_learn.kernels import set_num_threads
from ocp_learn.kernels.potential_backend import potential_backend
from ocp_learn.problems.cnf import ContinuousNormalizingFlow


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--dims", type=int, nargs="+", default=[2, 8, 64, 128])
    ap.add_argument("--widths", type=int, nargs="+", default=[32, 128])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--nt", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    rows = []
    for thr in a.threads:
        set_num_threads(thr)
        for m in a.widths:
            for d in a.dims:
                x = np.random.default_rng(0).standard_normal((a.n, d))
                res = {}
                for path in ("fused", "blas"):
                    p = ContinuousNormalizingFlow(x, width=m, nt=a.nt, backend="numba")
                    if path == "blas":  # the reference's BLAS program, generic field code
                        p.potential.backend = potential_backend("numba", path="blas")
                        p.field.fused = False
                    th = p.init_params(0)
                    res[path] = (best_time(lambda: p.objective_and_gradient(th), a.repeat),
                                 p.objective_and_gradient(th)[1])
                (tf, gf), (tb, gb) = res["fused"], res["blas"]
                rows.append([a.n, d, m, thr, tf, tb, tb / tf,
                             float(np.max(np.abs(gf - gb)) / np.max(np.abs(gb)))])
                print(rows[-1], flush=True)
    print("\n".join(write("kernels_fused_vs_blas", rows,
                          ["n", "d", "m", "threads", "fused_s", "blas_s", "blas_over_fused",
                           "max_rel_diff"],
                          {"nt": a.nt, "M": 1, "integrator": "rk4", "trace": "exact",
                           "load": os.getloadavg()}, a.out)))


if __name__ == "__main__":
    main()
