"""Real data (scikit-learn's digits, breast cancer, wine): OT-Flow and neural-ODE classifiers
against classical models on the same splits.

1. Density of the dequantized digits (pixel scale, nats and bits per dimension): a
   full-covariance Gaussian, a Gaussian mixture and a kernel density estimate (settings chosen
   on the validation split) against OT-Flow trained with L-BFGS (early stopping on the
   validation NLL); test NLL with its standard error, the paired gap to the best other model,
   the CNF's NLL on the 4 times finer time grid, training time, and samples as 8 x 8 images.
   -> results/real_data_density.{json,md}, results/real_data_digits_samples.png
2. Classification: neural ODE (L-BFGS, Gauss--Newton--CG) against logistic regression, an MLP
   of about the neural ODE's parameter count and an RBF SVC, each tuned on the validation
   split, test accuracy mean +- std over stratified splits.
   -> results/real_data_classification.{json,md}

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 \\
        python benchmarks/bench_real_data.py [--part density|classification|all] [--quick]

``--quick`` runs a reduced version (fewer splits and iterations) and says so in the files.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

from ocp_learn.recipes.real_classification import (CLASSIFIERS, classification_runs,
                                                   default_grids, fine_grids)
from ocp_learn.recipes.real_data import (density_baselines, density_table, digits_density_data,
                                         flow_log_density, train_digits_flow)

GRIDS = {"default": default_grids, "fine": fine_grids}
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def provenance() -> dict:
    """argv, git commit and dirty flag, date, machine, thread settings, load average."""
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    return {"argv": sys.argv, "git_commit": git("rev-parse", "HEAD"),
            "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
            "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": {"python": platform.python_version(), "numpy": np.__version__,
                        "platform": platform.platform(), "cpus": os.cpu_count()},
            "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                        "NUMBA_NUM_THREADS", "MKL_NUM_THREADS")},
            "load_average": list(os.getloadavg())}


def write(name: str, payload: dict, header: list[str], rows: list[list], notes: list[str],
          out: str) -> None:
    """``out/name.json`` (the payload) and ``out/name.md`` (notes, table, provenance)."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"{name}.json"), "w") as fh:
        json.dump(payload, fh, indent=2, default=float)
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    p = payload["provenance"]
    lines = [line for n in notes for line in (n, "")] + [
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    lines += ["", f"argv: `{' '.join(p['argv'])}`; commit {p['git_commit']} "
                  f"(dirty: {p['git_dirty']}); {p['date_utc']}; {p['machine']['platform']}, "
                  f"{p['machine']['cpus']} CPUs; threads {p['threads']}; load average "
                  f"{', '.join(f'{v:.2f}' for v in p['load_average'])}"]
    with open(os.path.join(out, f"{name}.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


def samples_figure(data, prob, theta, path: str, n: int = 24, seed: int = 0) -> None:
    """Test digits and OT-Flow samples as 8 x 8 images (pixel scale 0..17)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gen = np.clip(data.to_pixels(prob.sample(theta, n, seed=seed)), 0, 17)
    real = np.clip(data.to_pixels(data.y_test[:n]), 0, 17)
    fig, axes = plt.subplots(4, n // 2, figsize=(n / 2 * 0.8, 4 * 0.85))
    for i, ax in enumerate(axes.ravel()):
        img = (real if i < n else gen)[i % n].reshape(8, 8)
        ax.imshow(img, cmap="gray_r", vmin=0, vmax=17)
        ax.set_axis_off()
    axes[0, 0].set_title("test digits (dequantized)", loc="left", fontsize=9)
    axes[2, 0].set_title("OT-Flow samples", loc="left", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def density(a) -> dict:
    """Part 1: the density table and the samples figure."""
    t0 = time.perf_counter()
    data = digits_density_data(a.seed, alpha=a.alpha, whiten=not a.no_whiten)
    base = density_baselines(data, seed=a.seed)
    if not a.no_whiten:  # the mixture and kernel estimates on the logit data (not whitened)
        plain = density_baselines(digits_density_data(a.seed, alpha=a.alpha, whiten=False),
                                  seed=a.seed)
        base.update({f"{k} (logit only)": plain[k] for k in ("gmm", "kde")})
    t_base = time.perf_counter() - t0
    prob, theta, info = train_digits_flow(data, width=a.width, nt=a.nt, maxiter=a.flow_iter,
                                          alpha_L=a.alpha_L, alpha_R=a.alpha_R, seed=a.seed,
                                          patience=a.patience, input_scale=a.input_scale,
                                          rank=a.rank or None,
                                          redraw_every=a.redraw_every or None)
    lp = flow_log_density(prob, theta, data.y_test, data.log_det_test)
    lp_fine = flow_log_density(prob, theta, data.y_test, data.log_det_test, nt=4 * a.nt)
    lps = {k: v["log_density_test"] for k, v in base.items()}
    lps["ot_flow"] = lp
    table = density_table(lps, data.dim)
    best_base = min(base, key=lambda k: base[k]["val_nll"])
    from ocp_learn.recipes.real_data import paired_gap
    gap, gap_se = paired_gap(lp, base[best_base]["log_density_test"])
    same = [k for k in base if not k.endswith("(logit only)")]
    best_same = min(same, key=lambda k: base[k]["val_nll"])
    gap_same, gap_same_se = paired_gap(lp, base[best_same]["log_density_test"])
    nll, nll_fine = float(-lp.mean()), float(-lp_fine.mean())
    flow = {**{k: v for k, v in info.items()}, "test_nll": nll, "test_nll_fine": nll_fine,
            "grid_change": abs(nll_fine - nll), "best_baseline_by_val": best_base,
            "gap_to_best_baseline": gap, "gap_se": gap_se,
            "best_same_preprocessing_baseline_by_val": best_same,
            "gap_to_best_same_preprocessing_baseline": gap_same,
            "gap_same_preprocessing_se": gap_same_se}
    os.makedirs(a.out, exist_ok=True)
    fig = os.path.join(a.out, f"real_data_digits_samples{a.tag}.png")
    samples_figure(data, prob, theta, fig, seed=a.seed)
    payload = {"benchmark": "real_data_density", "provenance": provenance(),
               "reduced": bool(a.quick), "settings": vars(a),
               "data": {"train": len(data.y_train), "val": len(data.y_val),
                        "test": len(data.y_test), "dim": data.dim,
                        "preprocessing": [type(t).__name__ for t in data.preprocessing]},
               "baselines": {k: {"params": v["params"], "val_nll": v["val_nll"],
                                 "seconds": v["seconds"]} for k, v in base.items()},
               "baseline_seconds": t_base, "flow": flow, "table": table,
               "figure": os.path.basename(fig)}
    header = ["model", "settings (chosen on validation)", "val NLL", "test NLL", "+- se",
              "bits/dim", "vs", "paired gap (nats)", "+- se", "seconds"]
    rows = []
    for r in table:
        k = r["model"]
        settings = base[k]["params"] if k in base else \
            (f"width {a.width}, nt {a.nt}, rank {info['rank']}, input scale {a.input_scale}, "
             f"noise redrawn every {a.redraw_every or 'never'}, "
             f"L-BFGS it {info['best_iteration']}/{info['iterations']}")
        val = base[k]["val_nll"] if k in base else info["val_nll"]
        secs = base[k]["seconds"] if k in base else info["seconds"]
        rows.append([k, settings, val, r["test_nll"], r["test_nll_se"], r["bits_per_dim"],
                     r["vs"], r["gap_nats"], r["gap_se"], secs])
    notes = [("**Reduced run** (`--quick`): " if a.quick else "") +
             f"digits, dequantized, {' then '.join(payload['data']['preprocessing'])} "
             f"(logit margin {a.alpha}; whitening with the training split's mean and "
             "covariance); NLL of the dequantized test digits in the original pixel scale "
             "(nats per image; all log-determinants included).  Rows marked *logit only* are "
             "fitted to the logit data before whitening (same images, same dequantization "
             "noise).  Paired gap: this model's NLL minus the `vs` model's (the best other "
             "on the test split), standard error over test images.",
             f"OT-Flow test NLL {nll:.3f} on its grid (nt {a.nt}), {nll_fine:.3f} on the 4x "
             f"finer grid (change {abs(nll_fine - nll):.4f} nats); gap to the best baseline by "
             f"validation ({best_base}): {gap:+.3f} +- {gap_se:.3f} nats, to the best on the "
             f"same preprocessed data ({best_same}): {gap_same:+.3f} +- {gap_same_se:.3f} "
             "nats (paired; negative: OT-Flow better); training "
             f"{info['seconds']:.1f} s, {info['n_params']} parameters, one thread."]
    write(f"real_data_density{a.tag}", payload, header, rows, notes, a.out)
    return payload


def _runs(name, seeds, a):
    return classification_runs(name, seeds=tuple(seeds), node_maxiter=a.node_iter,
                               gn_maxiter=a.gn_iter, lbfgs_checks=_checks(a),
                               folds=a.folds, grids=GRIDS[a.grids](), methods=a.methods,
                               node_kwargs=dict(augment=a.node_augment, width=a.node_width,
                                                nt=a.node_nt, T=a.node_T))


def _checks(a):
    """The L-BFGS iteration counts at which the validation accuracy is checked."""
    return tuple(k for k in a.lbfgs_checks if k < a.node_iter) + (a.node_iter,)


def _grid_text(grid):
    """A grid as short text: its values, joined."""
    return ", ".join(str(v).replace("'", "") for v in grid)


def _merge(parts: list[dict], methods) -> dict:
    """One result of :func:`classification_runs` from runs over disjoint seeds (in order)."""
    out = dict(parts[0])
    for m in methods:
        r = {k: [v for p in parts for v in p[m][k]]
             for k in ("test_accuracy", "params", "seconds", "val_accuracy")}
        acc = np.asarray(r["test_accuracy"])
        out[m] = {**parts[0][m], **r, "mean": float(acc.mean()),
                  "std": float(acc.std(ddof=1)) if acc.size > 1 else 0.0}
    return out


def classification(a) -> dict:
    """Part 2: the classification table."""
    from concurrent.futures import ProcessPoolExecutor

    results, times = {}, {}
    for name in a.datasets:
        t0 = time.perf_counter()
        seeds = list(range(a.first_split, a.first_split + a.splits))
        if a.jobs > 1:  # the splits in parallel processes, one seed each
            with ProcessPoolExecutor(a.jobs) as pool:
                parts = list(pool.map(_runs, [name] * len(seeds), [[s] for s in seeds],
                                      [a] * len(seeds)))
            results[name] = _merge(parts, a.methods)
        else:
            results[name] = _runs(name, seeds, a)
        times[name] = time.perf_counter() - t0
        print(name, f"{times[name]:.1f} s", flush=True)
    return _classification_table(a, results, times)


#: The settings two classification runs must share to be combined into one table.
SHARED = ("datasets", "methods", "grids", "folds", "node_iter", "gn_iter", "lbfgs_checks",
          "node_width", "node_augment", "node_T", "node_nt", "quick")


def combine(a) -> dict:
    """One classification table from runs over consecutive, disjoint splits (``--combine``):
    the runs must share every setting of :data:`SHARED`; the seconds add up."""
    runs = []
    for path in a.combine:
        with open(path) as fh:
            runs.append(json.load(fh))
    runs.sort(key=lambda r: r["settings"]["first_split"])
    first = runs[0]["settings"]
    for prev, s in zip((r["settings"] for r in runs), (r["settings"] for r in runs[1:])):
        differ = [k for k in SHARED if s.get(k) != first.get(k)]
        if differ:
            raise SystemExit(f"--combine: the runs differ in {differ}")
        if s["first_split"] != prev["first_split"] + prev["splits"]:
            raise SystemExit("--combine: the runs' splits must be consecutive and disjoint, got "
                             f"first splits {[q['settings']['first_split'] for q in runs]}")
    b = argparse.Namespace(**{**first, "splits": sum(r["settings"]["splits"] for r in runs),
                              "tag": a.tag, "out": a.out, "combine": a.combine})
    results = {n: _merge([r["results"][n] for r in runs], b.methods) for n in b.datasets}
    times = {n: sum(r["seconds"][n] for r in runs) for n in b.datasets}
    return _classification_table(b, results, times, sources=runs)


def _classification_table(a, results, times, sources=None) -> dict:
    """Write the classification table of ``results`` (per data set) with its notes."""
    header = ["data", *a.methods]
    rows = [[name, *(f"{results[name][m]['mean']:.4f} +- {results[name][m]['std']:.4f}"
                     for m in a.methods)] for name in a.datasets]
    payload = {"benchmark": "real_data_classification", "provenance": provenance(),
               "reduced": bool(a.quick), "settings": vars(a), "results": results,
               "seconds": times}
    if sources:
        payload["sources"] = [r["provenance"] for r in sources]
    ex = results[a.datasets[0]]
    grids = GRIDS[a.grids]()
    notes = [("**Reduced run** (`--quick`): " if a.quick else "") +
             f"test accuracy, mean +- std over {a.splits} stratified splits (60/20/20; seeds "
             f"{a.first_split}..{a.first_split + a.splits - 1}); inputs "
             "standardized with the statistics of the part each model is trained on; each "
             "method's regularization "
             + ("chosen on the validation split" if a.folds is None else
                f"chosen by {a.folds}-fold stratified cross-validation on the training and "
                "validation parts pooled (then refitted on both)")
             + " (neural ODE: Tikhonov weight of the dynamics, L2 "
             "weight of the head, weight of the flow's kinetic energy and iteration count; "
             "logistic regression: C; MLP: alpha and iterations; SVC: C and gamma).",
             f"Neural ODE: {ex['node_kwargs']}, RK4, L-BFGS up to {a.node_iter} iterations "
             f"(validation checks after {', '.join(map(str, _checks(a)))}) or "
             f"Gauss--Newton--CG up to {a.gn_iter} (checks every iteration).",
             f"Grids (`{a.grids}_grids()`): neural ODE (Tikhonov, head L2[, kinetic]) "
             f"{_grid_text(grids['node_lbfgs'])}; logistic regression C "
             f"{_grid_text(grids['logreg'])}; MLP (alpha, iterations) "
             f"{_grid_text(grids['mlp'])}; SVC (C, gamma) {_grid_text(grids['svc'])}.",
             "MLP hidden width per data set: "
             + ", ".join(f"{n} {results[n]['mlp_hidden']} (neural ODE "
                         f"{results[n]['n_params_node']} parameters)" for n in a.datasets)
             + "; seconds per data set (all methods, all splits"
             + (f", {a.jobs} splits at a time" if a.jobs > 1 else "") + "): "
             + ", ".join(f"{n} {times[n]:.0f}" for n in a.datasets)]
    if sources:
        notes.append("Combined from the runs " + "; ".join(
            f"`{' '.join(r['provenance']['argv'])}` (commit {r['provenance']['git_commit']}, "
            f"{r['provenance']['date_utc']})" for r in sources) + ".")
    write(f"real_data_classification{a.tag}", payload, header, rows, notes, a.out)
    return payload


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("density", "classification", "all"), default="all")
    p.add_argument("--quick", action="store_true", help="reduced run (fewer splits/iterations)")
    p.add_argument("--out", default=RESULTS)
    p.add_argument("--tag", default="", help="suffix of the result files")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--alpha", type=float, default=0.01, help="logit margin")
    p.add_argument("--no-whiten", action="store_true",
                   help="do not whiten after the logit (the flow then standardizes only)")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--nt", type=int, default=8)
    p.add_argument("--flow-iter", type=int, default=2200)
    p.add_argument("--patience", type=int, default=20)
    p.add_argument("--redraw-every", type=int, default=10,
                   help="iterations between redraws of the dequantization noise (0: never)")
    p.add_argument("--rank", type=int, default=64,
                   help="rank of the potential's quadratic (0: the flow's default)")
    p.add_argument("--input-scale", type=float, default=1.0,
                   help="factor on the training deviation in the flow's input scale")
    p.add_argument("--alpha-L", type=float, default=0.01)
    p.add_argument("--alpha-R", type=float, default=0.05)
    p.add_argument("--splits", type=int, default=5)
    p.add_argument("--node-iter", type=int, default=200)
    p.add_argument("--gn-iter", type=int, default=30)
    p.add_argument("--datasets", nargs="+", default=["digits", "breast_cancer", "wine"])
    p.add_argument("--node-width", type=int, default=32,
                   help="hidden width of the neural ODE's field (the MLP is sized to match)")
    p.add_argument("--node-augment", type=int, default=4,
                   help="zero channels appended to the neural ODE's input")
    p.add_argument("--node-T", type=float, default=1.0,
                   help="final time of the neural ODE's flow")
    p.add_argument("--node-nt", type=int, default=4,
                   help="RK4 steps of the neural ODE's flow")
    p.add_argument("--folds", type=int, default=None,
                   help="choose every method's settings by this many cross-validation folds "
                        "of the training and validation parts (default: the validation part)")
    p.add_argument("--methods", nargs="+", choices=CLASSIFIERS, default=list(CLASSIFIERS),
                   help="the classifiers compared (default: all)")
    p.add_argument("--grids", choices=sorted(GRIDS), default="default",
                   help="the grids every method searches (default_grids or fine_grids of "
                        "ocp_learn.recipes.real_classification)")
    p.add_argument("--first-split", type=int, default=0,
                   help="seed of the first split (the splits are seeds first..first+splits-1)")
    p.add_argument("--lbfgs-checks", type=int, nargs="+", default=[50],
                   help="L-BFGS iteration counts at which the neural ODE's validation "
                        "accuracy is checked (and the last, --node-iter)")
    p.add_argument("--combine", nargs="+", metavar="JSON", default=None,
                   help="write one classification table from the JSON results of runs over "
                        "consecutive splits with the same settings (no training)")
    p.add_argument("--jobs", type=int, default=1,
                   help="splits run in this many processes at once (classification)")
    a = p.parse_args(argv)
    if a.combine:
        combine(a)
        return
    if a.quick:
        a.flow_iter, a.splits, a.node_iter, a.gn_iter = min(a.flow_iter, 60), 2, 60, 8
    if a.part in ("density", "all"):
        t = time.perf_counter()
        d = density(a)
        print("density", f"{time.perf_counter() - t:.1f} s", json.dumps(d["flow"], default=float)
              [:400], flush=True)
    if a.part in ("classification", "all"):
        t = time.perf_counter()
        classification(a)
        print("classification", f"{time.perf_counter() - t:.1f} s", flush=True)


if __name__ == "__main__":
    main()
