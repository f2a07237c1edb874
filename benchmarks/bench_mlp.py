"""The single-layer network of the classifiers (MATH A1): rhs, tangent and adjoint per back end.

Times ``f(z) = K2 tanh(K1 z + b1) + b2`` (``SingleLayerNet``) and its tangent (jvp, state
and parameter directions) and adjoint (vjp) for the ``numpy`` back end (BLAS over the
batch), the ``numba`` back end (tiles of samples, GEMMs per tile,
:mod:`ocp_learn.kernels.mlp_numba`) and, when installed, torch (the same network,
``torch.func.jvp`` / ``torch.autograd``), float64, one thread, best of ``--repeat``; the
last column divides each time by the numba time of the same operation.  Sizes: the
augmented states of the classifiers (d = 3, m = 32: a 2-D toy with one augmented
dimension; d = 66, m = 39: the digits with two).  Writes results/mlp.{json,md}::

    NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python -m benchmarks.bench_mlp
"""
# ruff: noqa: B023  (each timed lambda is called within the loop iteration that defines it)
from __future__ import annotations

import argparse
import sys

import numpy as np

from benchmarks._common import best_time, write

from ocp_learn.kernels import set_num_threads
from ocp_learn.models.mlp import SingleLayerNet


def torch_ops(net, theta, z, dz, dth, fb):
    """The three operations in torch (``None`` when torch is missing)."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    P = {k: torch.tensor(v) for k, v in net.unpack(theta).items()}
    T = {k: torch.tensor(v) for k, v in net.unpack(dth).items()}
    Z, dZ, Fb = (torch.tensor(a) for a in (z, dz, fb))

    def f(P, Z):
        return torch.tanh(Z @ P["K1"].T + P["b1"]) @ P["K2"].T + P["b2"]

    def vjp():
        Pg = {k: v.clone().requires_grad_(True) for k, v in P.items()}
        Zg = Z.clone().requires_grad_(True)
        out = f(Pg, Zg)
        return torch.autograd.grad(out, [Zg, *Pg.values()], Fb)

    return {"rhs": lambda: f(P, Z),
            "jvp": lambda: torch.func.jvp(f, (P, Z), (T, dZ)),
            "vjp": vjp}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ns", type=int, nargs="+", default=[1024, 4096, 16384])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--out", default=None)
    ap.add_argument("--name", default="mlp")
    a = ap.parse_args(argv)
    set_num_threads(1)
    rows = []
    for d, m in [(3, 32), (66, 39)]:
        for n in a.ns:
            rng = np.random.default_rng(0)
            z, dz, fb = (rng.standard_normal((n, d)) for _ in range(3))
            ref = SingleLayerNet(d, m)
            theta = ref.init_params(0)
            dth = rng.standard_normal(theta.size)
            impls = {}
            for backend in ("numpy", "numba"):
                net = SingleLayerNet(d, m, backend=backend)
                impls[backend] = {
                    "rhs": lambda net=net: net.rhs(z, 0.0, theta),
                    "jvp": lambda net=net: net.jvp(z, 0.0, theta, dz, dth),
                    "vjp": lambda net=net: net.vjp(z, 0.0, theta, fb)}
            tops = torch_ops(ref, theta, z, dz, dth, fb)
            if tops is not None:
                impls["torch"] = tops
            for op in ("rhs", "jvp", "vjp"):
                sec = {k: best_time(v[op], repeat=a.repeat) for k, v in impls.items()}
                for k, s in sec.items():
                    rows.append([d, m, n, op, k, 1e3 * s, s / sec["numba"]])
                    print(rows[-1], flush=True)
    headers = ["d", "m", "n", "op", "impl", "ms", "time_over_numba"]
    jp, mp = write(a.name, rows, headers, out=a.out)
    print(open(mp).read())
    print("wrote", jp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
