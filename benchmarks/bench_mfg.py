"""Potential MFGs: article Table 1 results, Gaussian closed form, Pontryagin check.

Parts (``--only``):

* ``table``     -- OT and crowd motion at d in {2, 10, 50, 100} with the MATH F
                   presets (samples, alpha, nt; RK4, m = 16, one residual layer), L-BFGS
                   with resampling every 25 iterations in two stages, best-on-validation;
                   every objective term and both HJB residuals on fresh samples,
                   iterations and seconds.  ``--scale s`` multiplies the iteration
                   counts (the full schedule does not fit this 2-core machine at d >= 50;
                   the table states what ran).
* ``gaussian``  -- Gaussian-to-Gaussian OT-MFG against its closed form
                   (:func:`ocp_learn.reference.gaussian_mfg.gaussian_mfg_optimum`), every
                   Monte Carlo figure on fresh agents with its standard error.
* ``pontryagin``-- CasADi single-agent optimality of trained 2-D OT and crowd potentials.
* ``collect``   -- the table from finished runs' ``metrics.json`` (``--from DIR ...``);
                   a run recorded without standard errors is re-evaluated from its
                   ``theta.npy`` on its own evaluation agents.

Writes results/mfg_<part>.json and .md.

    python -m benchmarks.bench_mfg --only table --dims 2 10 --scale 0.2
"""
import argparse
import json
import os
import time

import numpy as np

from benchmarks._common import ARTIFACTS, RESULTS, write

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


_TERMS = ("objective", "L", "F", "G", "hjb", "hjb_terminal", "objective_fine_diff")
_HEADERS = ["problem", "dim", "samples", "iterations_planned", "n_eval",
            *[c for k in _TERMS for c in (k, k + "_se")], "validation_best_selected",
            "iterations", "seconds", "n_params"]

_TABLE_NOTE = """\
`objective` and its terms `L`, `F`, `G`, `hjb`, `hjb_terminal` are means over `n_eval` fresh
agents (drawn neither for training nor for validation), each with its standard error (`_se`,
from 20 batch means); `objective_fine_diff` is the objective minus that of the same parameters
and agents on a 4 times finer time grid (paired), the time discretization error.
`validation_best_selected` is the lowest objective over the run's checkpoints on one fixed
validation sample, the figure the parameters were selected by: biased low, a selection figure,
not the objective reached."""


def _table_row(m):
    """A results-table row from a run's ``metrics.json`` (:func:`ocp_learn.recipes.mfg.run_mfg`)."""
    (n1, i1), (n2, i2) = m["stages"]
    terms = [m.get(k + sfx) for k in _TERMS for sfx in ("", "_se")]
    return [m["problem"], m["dim"], f"{n1}/{n2}", f"{i1}/{i2}", m.get("n_eval"), *terms,
            m.get("validation_best_selected", m.get("validation")), m["iterations"],
            m["seconds"], m["n_params"]]


def _caption(path):
    """The text after the table of an existing result markdown (kept when it is rewritten)."""
    if not os.path.exists(path):
        return ""
    with open(path) as fh:
        lines = fh.read().splitlines()
    k = 0
    while k < len(lines) and lines[k].startswith("|"):
        k += 1
    rest = "\n".join(lines[k:]).strip()
    return rest.split(_TABLE_NOTE.splitlines()[0])[0].strip()


def _write_table(name, rows, a, meta):
    caption = _caption(os.path.join(a.out or RESULTS, f"{name}.md"))
    _, md = write(name, rows, _HEADERS, meta=dict(meta, columns=_TABLE_NOTE), out=a.out)
    with open(md, "a") as fh:
        fh.write("\n" + (caption + "\n\n" if caption else "") + _TABLE_NOTE + "\n")


def _reevaluate(path, m):
    """``m`` with the objective and its terms (standard errors, the finer-grid check)
    recomputed by :func:`ocp_learn.recipes.mfg.mfg_estimates` from ``path/theta.npy`` on
    the run's own evaluation agents (``n_eval`` of them, seed ``seed + 999``), for a
    ``metrics.json`` written without standard errors."""
    from ocp_learn.recipes.mfg import mfg_estimates

    seed = int(m.get("seed", 0))
    prob = mfg_preset(m["problem"], m["dim"], backend="numba", seed=seed)
    theta = np.load(os.path.join(path, "theta.npy"))
    n_eval = int(m.get("n_eval") or m["stages"][-1][0])
    est = mfg_estimates(prob, theta, prob.rho0.sample(n_eval, seed + 999))
    print(f"{path}: objective {m['objective']!r} recorded, {est['objective']!r} re-evaluated",
          flush=True)
    return dict(m, **est, n_eval=n_eval, recorded_objective=m["objective"])


def part_collect(a):
    """The table from finished runs (``--from DIR ...``, each with a ``metrics.json``), e.g. the
    full-schedule runs made with ``mpiexec -n 2 ocp-learn mfg ...``.  A ``metrics.json``
    without standard errors is re-evaluated from ``DIR/theta.npy`` on its own evaluation
    agents (:func:`_reevaluate`)."""
    if not a.collect_from:
        raise SystemExit("--only collect needs --from DIR [DIR ...]")
    rows, redone = [], {}
    for path in a.collect_from:
        with open(os.path.join(path, "metrics.json")) as fh:
            m = json.load(fh)
        if "objective_se" not in m:
            m = _reevaluate(path, m)
            redone[path] = {"recorded_objective": m["recorded_objective"],
                            "objective": m["objective"]}
        rows.append(_table_row(m))
    rows.sort(key=lambda r: (r[0] != "ot", r[1]))
    _write_table("mfg_table" + a.tag, rows, a, {"from": list(a.collect_from),
                                                "reevaluated": redone})


_GAUSS_HEADERS = ["dim", "J_closed_form", "J_learned", "J_learned_se", "n_eval", "gap", "gap_se",
                  "rel_gap", "rel_gap_se", "excess_paired", "excess_paired_se", "J_fine_diff",
                  "J_fine_diff_se", "hjb", "hjb_se", "hjb_terminal", "hjb_terminal_se",
                  "mean_error", "mean_error_se", "var_learned", "var_learned_se",
                  "var_closed_form", "validation_best_selected", "n_val", "iterations", "seconds"]

_GAUSS_NOTE = """\
The Monte Carlo figures (all but `dim`, `J_closed_form`, `var_closed_form`,
`validation_best_selected`, the counts and the seconds) are means over the same `n_eval` fresh
agents from rho_0 (seed 7, drawn neither for training nor for validation), each with its
standard error in the `_se` column next to it.

- `J_learned`: mean of the per-agent objective `L_i + a3 G_i` (kinetic energy and KL
  terminal cost; the HJB penalties of the training objective left out); `se = std / sqrt(n)`.
- `gap = J_learned - J_closed_form`, `rel_gap = gap / J_closed_form` (se scaled alike).
- `excess_paired`: mean over the same agents of `J_i - J*_i`, `J*_i` the per-agent objective of
  the exact optimal flow; a low-variance estimate of the same gap.
- `J_fine_diff`: `J_learned` minus the same parameters and agents on a 4 times finer time grid
  (paired): the time discretization error.
- `hjb`, `hjb_terminal`: the HJB residual penalties; standard errors from 20 batch means.
- `mean_error`: `|mean(z_T) - m_T|` (standard error by the delta method);
  `var_learned`: per-coordinate variance of `z_T` (unbiased), both against the closed form.
- `validation_best_selected`: the lowest training objective over the run's checkpoints on one
  fixed set of `n_val` validation agents, the figure the parameters were selected by; biased
  low, a selection figure, not the objective reached.
- `seconds`: training time.
"""


def part_gaussian(a):
    from ocp_learn.recipes.mfg import mfg_estimates
    from ocp_learn.reference.mfg_oracle import optimal_per_agent_objective, per_agent_objective

    def mean_se(v):
        return float(np.mean(v)), float(np.std(v, ddof=1) / np.sqrt(v.size))

    rows = []
    for d in a.gauss_dims:
        m0, m1 = np.zeros(d), np.zeros(d)
        m0[0], m1[0] = -1.5, 1.5
        s0, s1 = 0.5, 0.3
        alpha = (1.0, 1.0, 5.0, 1.0, 1.0)
        ref = gaussian_mfg_optimum(m0, s0, m1, s1, a1=alpha[0], a3=alpha[2])
        prob = PotentialMFG(gaussian(m0, s0), gaussian(m1, s1), n_samples=1024, alpha=alpha, nt=4,
                            width=16, n_layers=1, backend="numba")
        stages = ((1024, a.gauss_iters), (2048, a.gauss_iters // 2))
        r = train_mfg(prob, stages=stages, resample_every=50)
        theta = r["theta"]
        xe = prob.rho0.sample(a.gauss_eval, 7)
        Ji = per_agent_objective(prob, theta, xe, alpha[2])
        J, J_se = mean_se(Ji)
        exc, exc_se = mean_se(Ji - optimal_per_agent_objective(m0, s0, m1, s1, xe, alpha[0],
                                                               alpha[2]))
        fine = prob.with_steps(4 * prob.nt)
        disc, disc_se = mean_se(Ji - per_agent_objective(fine, theta, xe, alpha[2]))
        est = mfg_estimates(prob, theta, xe)
        zT = prob.push_forward(theta, xe)
        c = zT - zT.mean(0)
        e = zT.mean(0) - ref["mT"]
        u = e / max(np.linalg.norm(e), 1e-300)
        _, e_se = mean_se(c @ u)
        var, var_se = mean_se(np.sum(c * c, axis=1) / d * xe.shape[0] / (xe.shape[0] - 1))
        Js = ref["J"]
        rows.append([d, Js, J, J_se, xe.shape[0], J - Js, J_se, (J - Js) / Js, J_se / Js,
                     exc, exc_se, disc, disc_se, est["hjb"], est["hjb_se"], est["hjb_terminal"],
                     est["hjb_terminal_se"], float(np.linalg.norm(e)), e_se, var, var_se,
                     ref["sT"], float(r["validation"]), stages[0][0], int(r["iterations"]),
                     r["seconds"]])
        print(dict(zip(_GAUSS_HEADERS, rows[-1])), flush=True)
    _, md = write("mfg_gaussian", rows, _GAUSS_HEADERS,
                  meta={"load": os.getloadavg(), "m0": "-1.5 e1", "m1": "1.5 e1", "s0": 0.5,
                        "s1": 0.3, "alpha": [1, 1, 5, 1, 1], "nt": 4, "integrator": "rk4",
                        "width": 16, "stages": [list(st) for st in stages],
                        "resample_every": 50, "eval_seed": 7, "columns": _GAUSS_NOTE},
                  out=a.out)
    with open(md, "a") as fh:
        fh.write("\nGaussian-to-Gaussian OT-MFG, N(-1.5 e1, 0.5 I) to N(1.5 e1, 0.3 I), "
                 "alpha = (1, 1, 5, 1, 1), RK4 with 4 steps, width 16, against the closed-form "
                 f"optimum; L-BFGS on agents redrawn every 50 iterations, stages {stages}, "
                 "the best-on-validation iterate.\n\n" + _GAUSS_NOTE)


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
    ap.add_argument("--gauss-eval", type=int, default=20000, help="fresh evaluation agents")
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
