"""Test NLL of trained flows on a large fresh test sample, with its standard error.

The ``flow`` command evaluates on ``--n-test`` samples (10 000 by default), whose Monte Carlo
standard error ``std(log p) / sqrt(n)`` is a few thousandths of a nat -- as large as what
separates the checkerboard from its 0.10-nat target.  This script evaluates saved parameters
on ``--n-test`` fresh samples (drawn with ``--seed``, away from the training and default test
seeds), in chunks, and reports the NLL, its standard error and the gap to the floor, and on
the first ``--n-fine`` samples how much ``log p`` moves on a 4 times finer time grid.
A ``metrics.json`` beside ``theta.npy`` (written by ``ocp-learn flow``) supplies the flow's
fixed input map (``input_shift``, ``input_scale``).

    python -m benchmarks.bench_flow_eval --n-test 1000000 \\
        --run checkerboard_4775 checkerboard 2 32 2 benchmarks/artifacts/figure2_checkerboard_16k/theta.npy

Writes results/flows_eval.json and .md (``--name``).
"""
import argparse
import json
import os
import time

import numpy as np

from benchmarks._common import write

from ocp_learn.recipes.flow import flow_data
from ocp_learn.problems.cnf import ContinuousNormalizingFlow


def evaluate(data, dim, width, layers, theta, n_test, seed, chunk=100_000, nt=8, shift=None,
             scale=None, n_fine=100_000):
    """``(mean NLL, standard error, floor, seconds, fine, fine_se)`` of the flow ``theta``
    (with the fixed input map ``shift``, ``scale``) on ``n_test`` fresh samples of ``data``.

    ``fine`` is the mean of ``log p_nt(x) - log p_4nt(x)`` over the first ``n_fine`` samples
    (paired, with its standard error ``fine_se``): the discrete flow's ``ell`` is the log-det
    of the continuous flow only up to the time-stepping error, so an NLL is a density's NLL
    only where it does not move with a 4 times finer grid.
    """
    x, floor = flow_data(data, 16, 0, dim)
    prob = ContinuousNormalizingFlow(x, width=width, n_layers=layers, nt=nt, backend="numba",
                                     shift=shift, scale=scale)
    if theta.shape != (prob.n_params,):
        raise ValueError(f"theta has shape {theta.shape}; width={width}, layers={layers} at "
                         f"dim={dim} needs ({prob.n_params},)")
    t = time.perf_counter()
    xt, _ = flow_data(data, n_test, seed, dim)
    lp = np.concatenate([prob.log_density(theta, xt[i:i + chunk]) for i in range(0, n_test, chunk)])
    n_fine = min(n_fine, n_test)
    diff = lp[:n_fine] - np.concatenate([prob.log_density(theta, xt[i:min(i + chunk, n_fine)],
                                                          nt=4 * nt)
                                         for i in range(0, n_fine, chunk)])
    return (float(-lp.mean()), float(lp.std() / np.sqrt(n_test)), floor, time.perf_counter() - t,
            float(diff.mean()), float(diff.std() / np.sqrt(n_fine)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", nargs=6, action="append", required=True,
                    metavar=("LABEL", "DATA", "DIM", "WIDTH", "LAYERS", "THETA"),
                    help="a saved flow: label, data set, dimension, width m, layers M, theta.npy")
    ap.add_argument("--n-test", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=2000)
    ap.add_argument("--n-fine", type=int, default=100_000,
                    help="samples also evaluated on the 4 times finer grid (default %(default)s)")
    ap.add_argument("--name", default="flows_eval")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    rows = []
    for label, data, dim, width, layers, path in a.run:
        meta = os.path.join(os.path.dirname(path), "metrics.json")
        m = json.load(open(meta)) if os.path.exists(meta) else {}
        nt = int(m.get("nt", 8))
        nll, se, floor, secs, fine, fine_se = evaluate(
            data, int(dim), int(width), int(layers), np.load(path), a.n_test, a.seed, nt=nt,
            shift=m.get("input_shift"), scale=m.get("input_scale"), n_fine=a.n_fine)
        rows.append([label, data, int(dim), int(width), int(layers), nt, a.n_test, nll, se, floor,
                     nll - floor, fine, fine_se, secs])
        print(f"{label}: test NLL {nll:.5f} +- {se:.5f}, floor {floor:.5f}, gap {nll - floor:.5f}, "
              f"log p(nt) - log p(4 nt) {fine:.5f} +- {fine_se:.5f}", flush=True)
    headers = ["label", "data", "dim", "width", "layers", "nt", "n_test", "test_nll", "se",
               "nll_floor", "gap_nats", "logp_nt_minus_4nt", "se_diff", "seconds"]
    write(a.name, rows, headers, meta={"seed": a.seed, "runs": a.run}, out=a.out)


if __name__ == "__main__":
    main()
