"""Exact trace (MATH D3) by Jacobians or by Gram matrices: the cost in high dimension.

The fused numba kernels can propagate the ``m x d`` Jacobians ``J_i`` of the hidden
layers (``O(M m^2 d)`` per sample) or their Gram matrices ``Gamma_i = J_i J_i^T``
(``O(M m^3)``, independent of ``d``; ``trace_path="gram"``).  For the MFG presets of
MATH F (``m = 16``, ``M = 1``) at ``d = 50, 100`` that is the difference between the
trace dominating every step and the trace being a small part of it.

Side by side in one run, for each ``d``:

* ``derivatives`` and ``derivatives_vjp`` of :class:`PotentialResNet` (seconds per call),
* one crowd-motion objective + gradient (``mfg_preset("crowd", d)``, stage-1 sample count
  times ``--sample-scale``; RK4, nt = 4),

on the ``jacobian`` and ``gram`` paths, with the ratio and the largest relative difference
of the two gradients (they must agree to rounding).  Writes results/trace_path.{json,md}.

    NUMBA_NUM_THREADS=2 python -m benchmarks.bench_trace_path [--dims 10 50 100] [--sample-scale 1]
"""
# ruff: noqa: B023  (each timed lambda is called within the loop iteration that defines it)
import argparse

import numpy as np

from benchmarks._common import best_time, write

from ocp_learn.models import PotentialResNet
from ocp_learn.problems.mfg import mfg_preset


def _potential_row(d, m, n, repeat, rng):
    out = {}
    S = rng.standard_normal((n, d))
    t = rng.standard_normal(n)
    bars = dict(phi_bar=rng.standard_normal(n), grad_bar=rng.standard_normal((n, d)),
                dt_bar=rng.standard_normal(n), lap_bar=rng.standard_normal(n))
    for tp in ("jacobian", "gram"):
        mod = PotentialResNet(d, width=m, backend="numba", path="fused", trace_path=tp)
        th = mod.init_params(0)
        out[tp] = (best_time(lambda: mod.derivatives(S, t, th), repeat),
                   best_time(lambda: mod.derivatives_vjp(S, t, th, **bars), repeat),
                   mod.derivatives_vjp(S, t, th, **bars)[2])
    return out


def _mfg_row(d, scale, repeat):
    out = {}
    for tp in ("jacobian", "gram"):
        p = mfg_preset("crowd", dim=d, backend="numba")
        n = max(16, int(round(p.x0.shape[0] * scale)))
        p = mfg_preset("crowd", dim=d, backend="numba", n_samples=n)
        p.field.potential.trace_path = tp
        th = p.init_params(0)
        out[tp] = (best_time(lambda: p.objective_and_gradient(th), repeat), n,
                   p.objective_and_gradient(th)[1])
    return out


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--dims", type=int, nargs="+", default=[10, 50, 100])
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--n", type=int, default=4096, help="samples of the potential timings")
    ap.add_argument("--sample-scale", type=float, default=1.0,
                    help="factor on the crowd preset's stage-1 sample count")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = []
    for d in a.dims:
        pr = _potential_row(d, a.width, a.n, a.repeat, rng)
        mf = _mfg_row(d, a.sample_scale, a.repeat)
        (fj, vj, gj), (fg, vg, gg) = pr["jacobian"], pr["gram"]
        (oj, n, Gj), (og, _, Gg) = mf["jacobian"], mf["gram"]
        rows.append([d, a.width, fj, fg, fj / fg, vj, vg, vj / vg, n, oj, og, oj / og,
                     max(_rel(gg, gj), _rel(Gg, Gj))])
        print(rows[-1], flush=True)
    headers = ["d", "m", "derivs_jac_s", "derivs_gram_s", "derivs_ratio", "vjp_jac_s", "vjp_gram_s",
               "vjp_ratio", "mfg_n", "mfg_obj_grad_jac_s", "mfg_obj_grad_gram_s", "mfg_ratio",
               "max_rel_diff"]
    meta = {"n_potential": a.n, "M": 1, "integrator": "rk4", "nt": 4,
            "problem": "mfg_preset('crowd', d), stage-1 samples x sample_scale",
            "sample_scale": a.sample_scale}
    print("\n".join(write("trace_path", rows, headers, meta, a.out)))


if __name__ == "__main__":
    main()
