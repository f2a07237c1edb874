"""OT-Flow potential (MATH D1-D3, D6): time per sample and flop rate, numpy vs numba.

For d in {2, 8, 64}, m in {32, 128} (M residual layers, exact trace) times, per sample,

* ``value``  -- ``phi`` (D1; numpy for both backends: there is no separate kernel),
* ``derivs`` -- ``derivatives``: Phi, grad_x Phi, d_t Phi and the exact Laplacian (D2, D3),
* ``vjp``    -- ``derivatives_vjp`` with all four cotangents (D6; includes its forward recompute),
* ``jvp``    -- ``derivatives_jvp`` along (dx, dt, dtheta) (includes its forward recompute),
* ``phi_vjp`` -- ``phi_vjp`` and its pullback of a cotangent on Phi alone (plain backprop,
  numpy for both backends; the terminal HJB penalty of the MFGs), and
* ``vjp_phi`` -- the same numbers from ``derivatives_vjp(phi_bar=...)`` (the full adjoint
  with zero cotangents on grad, d_t and the Laplacian): what ``phi_vjp`` replaces
  (both rows count the flops of the plain backprop),

and the flop rate from the multiply-add counts of the module docstring's program
(2 flops per multiply-add, transcendental functions not counted; see ``flops``).
Writes results/potential.json and results/potential.md.

    NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python -m benchmarks.bench_potential [--n 256]
"""
# ruff: noqa: B023  (each timed lambda is called within the loop iteration that defines it)
import argparse

import numpy as np

from benchmarks._common import best_time, write

from ocp_learn.models import PotentialResNet


def flops(op, d, m, M, r):
    """Floating-point operations per sample (2 per multiply-add) of the dominant loops."""
    D = d + 1
    val = 2 * m * D + 2 * M * m * m + 2 * r * D + 2 * m
    sweep = 2 * m * D + 2 * M * m * m + 4 * r * D
    trace = 2 * M * m * m * d + 6 * M * m * d + 4 * m * d + 2 * r * d
    der = val + sweep + trace
    if op == "value":
        return val
    if op == "derivs":
        return der
    if op == "vjp":   # recompute + trace adjoint (Kbar and Jbar) + sweep adjoint + forward adjoint
        return der + (4 * M * m * m * d + 8 * M * m * d + 4 * m * d) + (4 * M * m * m + 4 * m * D) \
            + (4 * M * m * m + 4 * m * D + 6 * r * D)
    if op in ("phi_vjp", "vjp_phi"):  # value + reverse sweep (sbar, Kbar_0, Abar, Kbar_i)
        return val + 4 * M * m * m + 4 * m * D + 4 * r * D + 2 * D
    if op == "jvp":   # recompute + forward, sweep and trace tangents
        return der + (4 * M * m * m + 4 * m * D) + (4 * M * m * m + 4 * m * D) \
            + (4 * M * m * m * d + 8 * M * m * d + 4 * m * d)
    raise ValueError(op)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--M", type=int, default=1)
    ap.add_argument("--dims", type=int, nargs="+", default=[2, 8, 64])
    ap.add_argument("--widths", type=int, nargs="+", default=[32, 128])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--ops", nargs="+", default=["value", "derivs", "vjp", "jvp"],
                    choices=["value", "derivs", "vjp", "jvp", "phi_vjp", "vjp_phi"])
    ap.add_argument("--name", default="potential", help="results file name")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = []
    for d in a.dims:
        for m in a.widths:
            x = rng.standard_normal((a.n, d))
            t = 0.5
            bars = dict(phi_bar=rng.standard_normal(a.n), grad_bar=rng.standard_normal((a.n, d)),
                        dt_bar=rng.standard_normal(a.n), lap_bar=rng.standard_normal(a.n))
            for backend in ["numpy", "numba"]:
                mod = PotentialResNet(d, width=m, n_layers=a.M, backend=backend)
                theta = mod.init_params(0)
                tang = dict(dx=rng.standard_normal((a.n, d)), dt=1.0,
                            dtheta=rng.standard_normal(mod.n_params))
                ops = {"value": lambda: mod.phi(x, t, theta),
                       "derivs": lambda: mod.derivatives(x, t, theta),
                       "vjp": lambda: mod.derivatives_vjp(x, t, theta, **bars),
                       "jvp": lambda: mod.derivatives_jvp(x, t, theta, **tang),
                       "phi_vjp": lambda: mod.phi_vjp(x, t, theta)[1](bars["phi_bar"]),
                       "vjp_phi": lambda: mod.derivatives_vjp(x, t, theta, phi_bar=bars["phi_bar"])}
                for op in a.ops:
                    fn = ops[op]
                    sec = best_time(fn, repeat=a.repeat)
                    fl = flops(op, d, m, a.M, mod.rank)
                    rows.append([d, m, a.M, backend, op, a.n, sec / a.n * 1e6, fl,
                                 fl * a.n / sec / 1e9])
                    print(rows[-1], flush=True)
    headers = ["d", "m", "M", "backend", "op", "n", "us_per_sample", "flops_per_sample", "GFLOP/s"]
    jp, mp = write(a.name, rows, headers,
                   meta={"trace": "exact", "note": "value uses numpy for both backends"}, out=a.out)
    print(open(mp).read())
    print("wrote", jp)


if __name__ == "__main__":
    main()
