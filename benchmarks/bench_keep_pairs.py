"""L-BFGS on redrawn samples: restarted on every draw (scipy's L-BFGS-B) against correction
pairs kept across draws (:func:`ocp_learn.optim.lbfgs_memory`), side by side in one run.

For each problem and seed, :func:`ocp_learn.optim.lbfgs_resampled` runs the same schedule (same
draws, same validation sample) both ways and reports the objective + gradient evaluations, the
training seconds and the best validation objective, then the ratios kept / restarted.

    NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python -m benchmarks.bench_keep_pairs

Writes results/keep_pairs.json and .md.
"""
import argparse

from benchmarks._common import write

from ocp_learn.recipes.flow import flow_data
from ocp_learn.optim import lbfgs_resampled
from ocp_learn.problems.cnf import ContinuousNormalizingFlow
from ocp_learn.problems.mfg import mfg_preset


def _problems(a):
    """``name -> (factory, draw)``."""
    out = {}
    for d in a.dims:
        def mfg(d=d):
            return mfg_preset("crowd", dim=d, n_samples=a.n, seed=0, backend="numba")
        out[f"crowd d={d}"] = (mfg, lambda n, rng, f=mfg: f().rho0.sample(n, rng))

    def flow():
        return ContinuousNormalizingFlow(flow_data("checkerboard", a.n, 0)[0], width=16, nt=8,
                                         backend="numba")
    out["checkerboard m=16"] = (flow, lambda n, rng: flow_data("checkerboard", n, rng)[0])
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dims", type=int, nargs="+", default=[2, 10])
    ap.add_argument("--n", type=int, default=1024, help="samples per draw")
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--resample-every", type=int, default=25)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    rows = []
    for name, (make, draw) in _problems(a).items():
        for seed in a.seeds:
            res = {}
            for keep in (False, True):
                r = lbfgs_resampled(make(), draw, stages=((a.n, a.iters),),
                                    resample_every=a.resample_every, seed=seed, keep_pairs=keep)
                res[keep] = r
                rows.append([name, seed, "kept" if keep else "restarted", r["iterations"],
                             r["nfev"], r["seconds"], r["validation"]])
                print(rows[-1], flush=True)
            rows.append([name, seed, "kept / restarted", res[True]["iterations"],
                         res[True]["nfev"] / res[False]["nfev"],
                         res[True]["seconds"] / res[False]["seconds"],
                         res[True]["validation"] - res[False]["validation"]])
    headers = ["problem", "seed", "pairs", "iterations", "nfev (ratio)", "seconds (ratio)",
               "validation (difference)"]
    jp, mp = write("keep_pairs", rows, headers,
                   meta={"n": a.n, "iters": a.iters, "resample_every": a.resample_every}, out=a.out)
    print(open(mp).read())
    print("wrote", jp)


if __name__ == "__main__":
    main()
