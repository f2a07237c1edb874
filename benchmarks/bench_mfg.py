"""Potential MFGs (issue 6): article Table 1 results, Gaussian closed form, Pontryagin check.

Parts (``--only``):

* ``table``     -- OT and crowd motion at d in {2, 10, 50, 100} with the MATH F
                   presets (samples, alpha, nt; RK4, m = 16, one residual layer), L-BFGS
                   with resampling every 25 iterations in two stages, best-on-validation;
                   every objective term and both HJB residuals on fresh samples,
                   iterations and seconds.  ``--scale s`` multiplies the iteration
                   counts (the full schedule does not fit this 2-core machine at d >= 50;
                   the table states what ran).
* ``gaussian``  -- Gaussian-to-Gaussian OT-MFG against its closed form
                   (:func:`ocp_learn.reference.gaussian_mfg.gaussian_mfg_optimum`).
* ``pontryagin``-- CasADi single-agent optimality of trained 2-D OT and crowd potentials.
* ``collect``   -- the table from finished runs' ``metrics.json`` (``--from DIR ...``).

Writes results/mfg_<part>.json and .md.

    python -m benchmarks.bench_mfg --only table --dims 2 10 --scale 0.2
"""
import argparse
import json
import os
import time

import numpy as np

from benchmarks._common import ARTIFACTS, write

from ocp_learn.recipes.mfg import run_mfg, train_mfg
from ocp_learn.datasets.densities import gaussian
from ocp_learn.problems.mfg import PRESETS, PotentialMFG, mfg_preset
from ocp_learn.reference.gaussian_mfg import gaussian_mfg_optimum


def part_table(a):
    rows = []
    for problem in a.problems:
        for d in a.dims:
            p = PRESETS[problem]
            ns = p["samples"][d]
            if a.sample_scale != 1.0:
                ns = tuple(max(64, int(n * a.sample_scale)) for n in ns)
            its = tuple(max(1, int(i * a.scale)) for i in p["iters"])
            out = os.path.join(a.out or ARTIFACTS, f"mfg_{problem}_d{d}")
            t = time.perf_counter()
            m, _, _ = run_mfg(problem, d, out=out, stages=tuple(zip(ns, its)), seed=0,
                              backend="numba", figure=True)
            rows.append(_table_row(m))
            print(rows[-1], f"{time.perf_counter() - t:.1f}s", flush=True)
            _write_table("mfg_table" + a.tag, rows, a, {"load": os.getloadavg(), "scale": a.scale,
                                                        "sample_scale": a.sample_scale})


_HEADERS = ["problem", "dim", "samples", "iterations_planned", "objective", "L", "F", "G", "hjb",
            "hjb_terminal", "iterations", "seconds", "n_params"]


def _table_row(m):
    """A results-table row from a run's ``metrics.json`` (:func:`ocp_learn.recipes.mfg.run_mfg`)."""
    (n1, i1), (n2, i2) = m["stages"]
    return [m["problem"], m["dim"], f"{n1}/{n2}", f"{i1}/{i2}", m["objective"], m["L"], m["F"],
            m["G"], m["hjb"], m["hjb_terminal"], m["iterations"], m["seconds"], m["n_params"]]


def _write_table(name, rows, a, meta):
    write(name, rows, _HEADERS, meta=meta, out=a.out)


def part_collect(a):
    """The table from finished runs (``--from DIR ...``, each with a ``metrics.json``), e.g. the
    full-schedule runs made with ``mpiexec -n 2 ocp-learn mfg ...``."""
    if not a.collect_from:
        raise SystemExit("--only collect needs --from DIR [DIR ...]")
    rows = []
    for path in a.collect_from:
        with open(os.path.join(path, "metrics.json")) as fh:
            rows.append(_table_row(json.load(fh)))
    rows.sort(key=lambda r: (r[0] != "ot", r[1]))
    _write_table("mfg_table" + a.tag, rows, a, {"from": list(a.collect_from)})


def part_gaussian(a):
    rows = []
    for d in a.gauss_dims:
        m0, m1 = np.zeros(d), np.zeros(d)
        m0[0], m1[0] = -1.5, 1.5
        s0, s1 = 0.5, 0.3
        alpha = (1.0, 1.0, 5.0, 1.0, 1.0)
        ref = gaussian_mfg_optimum(m0, s0, m1, s1, a1=alpha[0], a3=alpha[2])
        prob = PotentialMFG(gaussian(m0, s0), gaussian(m1, s1), n_samples=1024, alpha=alpha, nt=4,
                            width=16, n_layers=1, backend="numba")
        r = train_mfg(prob, stages=((1024, a.gauss_iters), (2048, a.gauss_iters // 2)),
                      resample_every=50)
        xe = prob.rho0.sample(20000, 7)
        ev = prob.evaluate_on(r["theta"], xe)
        zT = prob.trajectories(r["theta"], xe)[-1]
        J = ev["L"] + alpha[2] * ev["G"]
        rows.append([d, ref["J"], J, J - ref["J"], (J - ref["J"]) / ref["J"], ev["hjb"],
                     ev["hjb_terminal"], float(np.linalg.norm(zT.mean(0) - ref["mT"])),
                     float(zT.var(0).mean()), ref["sT"], r["seconds"]])
        print(rows[-1], flush=True)
    write("mfg_gaussian", rows, ["dim", "J_closed_form", "J_learned", "gap", "rel_gap", "hjb",
                                 "hjb_terminal", "mean_error", "var_learned", "var_closed_form",
                                 "seconds"],
          meta={"load": os.getloadavg(), "m0": "-1.5 e1", "m1": "1.5 e1", "s0": 0.5, "s1": 0.3,
                "alpha": [1, 1, 5, 1, 1]}, out=a.out)


def part_pontryagin(a):
    from ocp_learn.reference.mfg_checks import pontryagin_check

    rows = []
    for problem in ("ot", "crowd"):
        prob = mfg_preset(problem, 2, backend="numba")
        if a.pontryagin_from:
            # a fully trained potential (the Table 1 run: `ocp-learn mfg ... --out DIR` saves theta.npy)
            src = os.path.join(a.pontryagin_from.format(problem=problem), "theta.npy")
            theta = np.load(src)
            iters = json.load(open(os.path.join(os.path.dirname(src), "metrics.json")))["iterations"]
        else:
            theta = train_mfg(prob, stages=((1024, a.pontryagin_iters),), resample_every=25)["theta"]
            iters = a.pontryagin_iters
        x0 = prob.rho0.sample(5, 11)
        chk = pontryagin_check(prob, theta, x0, nt=8)
        init = pontryagin_check(prob, prob.init_params(0), x0, nt=8)
        rows.append([problem, iters, float(np.mean(chk["J_feedback"])),
                     chk["max_improvement"], chk["relative_improvement"],
                     init["relative_improvement"], chk["entropy_left_out"]])
        print(rows[-1], flush=True)
    name = "mfg_pontryagin_full" if a.pontryagin_from else "mfg_pontryagin"
    write(name, rows, ["problem", "iterations", "mean_J_feedback", "max_improvement",
                       "relative_improvement", "relative_improvement_untrained",
                       "entropy_left_out"],
          meta={"load": os.getloadavg(), "theta_from": a.pontryagin_from}, out=a.out)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=["table", "gaussian", "pontryagin", "collect"],
                    action="append")
    ap.add_argument("--from", dest="collect_from", nargs="+", default=None,
                    help="run folders (with metrics.json) for --only collect")
    ap.add_argument("--problems", nargs="+", default=["ot", "crowd"])
    ap.add_argument("--dims", type=int, nargs="+", default=[2, 10, 50, 100])
    ap.add_argument("--scale", type=float, default=1.0, help="factor on the iteration schedule")
    ap.add_argument("--sample-scale", type=float, default=1.0, help="factor on the sample counts")
    ap.add_argument("--tag", default="", help="suffix of the result file names")
    ap.add_argument("--gauss-dims", type=int, nargs="+", default=[2, 10])
    ap.add_argument("--gauss-iters", type=int, default=200)
    ap.add_argument("--pontryagin-iters", type=int, default=150)
    ap.add_argument("--pontryagin-from", default=None,
                    help="check trained potentials from DIR/theta.npy instead of training; DIR may "
                         "hold {problem}, e.g. benchmarks/artifacts/mfg_{problem}_d2")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    for part in a.only or ["gaussian", "pontryagin", "table"]:
        t = time.perf_counter()
        {"table": part_table, "gaussian": part_gaussian, "pontryagin": part_pontryagin,
         "collect": part_collect}[part](a)
        print(f"{part}: {time.perf_counter() - t:.1f} s", flush=True)


if __name__ == "__main__":
    main()
