"""Draw the committed figures again from the committed results and trained parameters.

No training: every figure is drawn from a result table (``results/*.json``) or from the
trained parameters of an artifact folder (``artifacts/*/theta.npy`` with its
``metrics.json``), and written as PNG (200 dpi) beside a PDF through
:func:`ocp_learn.plotting.style.save_figure`.

    python -m benchmarks.bench_figures                 # every figure below
    python -m benchmarks.bench_figures memory mfg      # some of them

Figures (ID: files):

* ``memory``: ``results/memory.{png,pdf}`` from ``results/memory.json``;
* ``integrators``: ``results/integrators.{png,pdf}`` from ``results/integrators.json``;
* ``mfg``: ``artifacts/mfg_*_d*/trajectories.{png,pdf}`` (agent paths of each trained
  potential MFG);
* ``flows``: ``artifacts/{flow_gmm16,checkerboard_5925,figure2_checkerboard_16k}/
  figure.{png,pdf}`` and ``artifacts/figure2/figure2_8gaussians.{png,pdf}``.

The captions (:data:`CAPTIONS`) go above the tables ``results/memory.md`` and
``results/integrators.md``, and into ``artifacts/FIGURES.md`` with every committed figure
and the command that draws it.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys

import numpy as np

from ocp_learn.plotting.style import label_axes, pyplot, save_figure

from ._common import ARTIFACTS, RESULTS

__all__ = ["memory_figure", "integrators_figure", "mfg_figures", "flow_figures", "FIGURES",
           "CAPTIONS", "caption_table", "figures_md"]


def _style_cycle(keys):
    """One color and marker per key, the same in every panel of a figure."""
    import matplotlib as mpl

    colors = mpl.colormaps["tab20"].colors if len(keys) > 10 else mpl.colormaps["tab10"].colors
    markers = "osD^v<>ph*"
    return {k: dict(color=colors[i % len(colors)], marker=markers[i % len(markers)])
            for i, k in enumerate(keys)}


def memory_figure(src: str | None = None, stem: str | None = None) -> list[str]:
    """Memory, time and accuracy of the gradient strategies against the step count.

    Parameters
    ----------
    src : str, optional
        The result table (default ``results/memory.json``).
    stem : str, optional
        Output stem (default ``results/memory``).

    Returns
    -------
    list of str
        The files written.
    """
    src = src or os.path.join(RESULTS, "memory.json")
    stem = stem or os.path.join(RESULTS, "memory")
    with open(src) as fh:
        recs = json.load(fh)["meta"]["records"]
    keys = list(dict.fromkeys(f"{r['label']} [{r['integrator']}]" for r in recs))
    style = _style_cycle(keys)
    plt = pyplot()
    fig, ax = plt.subplots(1, 4, figsize=(19, 4.6))
    for key in keys:
        rs = [r for r in recs if f"{r['label']} [{r['integrator']}]" == key]
        N = [r["N"] for r in rs]
        kw = dict(style[key], ms=4, lw=1.2)
        if "ledger" in rs[0]:
            ax[0].loglog(N, [8 * r["ledger"]["stored_floats"] for r in rs], **kw)
        ax[1].loglog(N, [max(r["rss_delta_bytes"], 1) for r in rs], **kw)
        ax[2].loglog(N, [r["seconds"] for r in rs], **kw)
        err = [r.get("grad_rel_error_vs_store_all") for r in rs]
        if all(e is not None and e > 0 for e in err):
            ax[3].loglog(N, err, **kw)
    label_axes(ax[0], "time steps N", "stored bytes", "stored for the backward pass (ledger)")
    label_axes(ax[1], "time steps N", "peak RSS increase (bytes)",
               "measured memory (peak RSS increase)")
    label_axes(ax[2], "time steps N", "seconds per gradient", "time per gradient")
    label_axes(ax[3], "time steps N", "relative gradient error",
               "gradient error against the exact discrete gradient\n"
               "(strategies that are exact are not drawn)")
    for a in ax:
        a.grid(True, which="both", alpha=0.3)
    handles = [plt.Line2D([], [], **style[k], ms=5, lw=1.2, label=k) for k in keys]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(keys), 5), fontsize=8,
               frameon=False, bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return save_figure(fig, stem, close=True)


def integrators_figure(src: str | None = None, stem: str | None = None) -> list[str]:
    """Work-precision of the integrators: error against steps and seconds, gradient error.

    Parameters
    ----------
    src : str, optional
        The result table (default ``results/integrators.json``).
    stem : str, optional
        Output stem (default ``results/integrators``).

    Returns
    -------
    list of str
        The files written.
    """
    src = src or os.path.join(RESULTS, "integrators.json")
    stem = stem or os.path.join(RESULTS, "integrators")
    with open(src) as fh:
        recs = json.load(fh)["meta"]["records"]
    style = _style_cycle(list(recs))
    plt = pyplot()
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.5))
    for integ, r in recs.items():
        kw = dict(style[integ], ms=4, lw=1.2, label=integ)
        ax[0].loglog(r["N"], r["error"], **kw)
        ax[1].loglog(r["seconds"], r["error"], **kw)
        ax[2].loglog(r["N"], r["grad_error"], **kw)
    label_axes(ax[0], "time steps N", "relative error of y(T)", "error against steps")
    label_axes(ax[1], "seconds per forward solve", "relative error of y(T)",
               "error against time")
    label_axes(ax[2], "time steps N", "relative error of the gradient",
               "gradient error against steps")
    for a in ax:
        a.grid(True, which="both", alpha=0.3)
    ax[0].legend(title="integrator", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, stem, close=True)


def _mfg_paths(folder: str, n_plot: int = 60):
    """The game, the paths drawn by ``ocp-learn mfg`` and its obstacle, from a run folder."""
    from ocp_learn.problems.mfg import mfg_preset
    from ocp_learn.recipes.mfg import _obstacle

    with open(os.path.join(folder, "metrics.json")) as fh:
        m = json.load(fh)
    seed = int(m.get("seed", 0))
    prob = mfg_preset(m["problem"], int(m["dim"]), stage=1, backend="numpy", seed=seed)
    theta = np.load(os.path.join(folder, "theta.npy"))
    n_eval = int(m.get("n_eval") or m["stages"][-1][0])
    x = prob.rho0.sample(n_eval, seed + 999)[:n_plot]  # the agents of the run's figure
    return m, prob, prob.trajectories(theta, x, nt=4 * prob.nt), _obstacle(prob)


def mfg_figures(folders: list[str] | None = None) -> list[str]:
    """``trajectories.{png,pdf}`` of each trained potential MFG (``artifacts/mfg_*``).

    Parameters
    ----------
    folders : list of str, optional
        Run folders (default: every ``artifacts/mfg_*_d*`` with a ``theta.npy``).

    Returns
    -------
    list of str
        The files written.
    """
    from ocp_learn.plotting.mfg import crowd_2d_figure

    folders = folders or sorted(os.path.dirname(p) for p in
                                glob.glob(os.path.join(ARTIFACTS, "mfg_*_d*", "theta.npy")))
    out = []
    for f in folders:
        m, prob, paths, obstacle = _mfg_paths(f)
        d = int(m["dim"])
        what = "agent paths" if d == 2 else "agent paths projected onto (x1, x2)"
        crowd_2d_figure(paths, os.path.join(f, "trajectories"), obstacle,
                        title=f"{m['problem']}, d = {d}: {what}")
        out += [os.path.join(f, "trajectories.png"), os.path.join(f, "trajectories.pdf")]
    return out


#: Trained flows with committed parameters: folder (or stem) -> (data, dim, width, layers,
#: nt, theta file, metrics file or None).
FLOWS = {
    "flow_gmm16/figure": ("gmm", 16, 32, 1, 16, "flow_gmm16/theta.npy", "flow_gmm16/metrics.json"),
    "checkerboard_5925/figure": ("checkerboard", 2, 32, 2, 8, "checkerboard_5925/theta.npy",
                                 "checkerboard_5925/metrics.json"),
    "figure2_checkerboard_16k/figure": ("checkerboard", 2, 32, 2, 8,
                                        "figure2_checkerboard_16k/theta.npy",
                                        "figure2_checkerboard_16k/metrics.json"),
    "figure2/figure2_8gaussians": ("8gaussians", 2, 32, 1, 8, "theta_8gaussians2.npy", None),
}


def flow_figures(stems: list[str] | None = None, n_test: int = 20000) -> list[str]:
    """Figure 2 panels of each trained flow with committed parameters (:data:`FLOWS`).

    Parameters
    ----------
    stems : list of str, optional
        Keys of :data:`FLOWS` (default: all).
    n_test : int
        Fresh test samples drawn in the target panel.

    Returns
    -------
    list of str
        The files written.
    """
    from ocp_learn.plotting.flows import flow_figure
    from ocp_learn.problems.cnf import ContinuousNormalizingFlow
    from ocp_learn.recipes.flow import flow_data

    out = []
    for stem in stems or list(FLOWS):
        data, dim, width, layers, nt, theta_file, metrics_file = FLOWS[stem]
        m = {}
        if metrics_file:
            with open(os.path.join(ARTIFACTS, metrics_file)) as fh:
                m = json.load(fh)
        theta = np.load(os.path.join(ARTIFACTS, theta_file))
        x, floor = flow_data(data, 16, 0, dim)
        prob = ContinuousNormalizingFlow(x, width=width, n_layers=layers, nt=int(m.get("nt", nt)),
                                         backend="numba", shift=m.get("input_shift"),
                                         scale=m.get("input_scale"))
        x_test, _ = flow_data(data, n_test, int(m.get("seed", 0)) + 1000, dim)
        nll = -float(np.mean(prob.log_density(theta, x_test)))
        where = "" if dim == 2 else f", first two of d = {dim} coordinates"
        title = (f"{data}{where}: test NLL {nll:.3f} nats on {n_test} samples "
                 f"(floor {floor:.3f})" if floor is not None else
                 f"{data}{where}: test NLL {nll:.3f} nats on {n_test} samples")
        flow_figure(prob, theta, x_test, os.path.join(ARTIFACTS, stem), title=title)
        out += [os.path.join(ARTIFACTS, stem + ext) for ext in (".png", ".pdf")]
    return out


FIGURES = {"memory": memory_figure, "integrators": integrators_figure, "mfg": mfg_figures,
           "flows": flow_figures}

_CMD = "python -m benchmarks.bench_figures"

#: What each committed figure shows, and the command that draws it: (file, command, caption).
CAPTIONS = {
    "memory": (
        "results/memory.png", f"{_CMD} memory",
        "Gradient strategies on a Hamiltonian network (d = 2, D = 4, n = 256, T = 2) against "
        "the number of time steps N, one color and marker per strategy and integrator in "
        "every panel: the bytes each strategy stores for the backward pass (its ledger), "
        "the measured peak increase of the resident memory, the seconds per gradient, and "
        "the relative error of the gradient against the exact discrete one for the "
        "strategies that are not exact (continuous adjoints and torchdiffeq)."),
    "integrators": (
        "results/integrators.png", f"{_CMD} integrators",
        "Work-precision of the integrators on a trained Hamiltonian network: the relative "
        "error of the final state y(T) against the number of steps and against the seconds "
        "per forward solve, and the relative error of the gradient against the number of "
        "steps (reference: RK4 with 4096 steps)."),
    "mfg": (
        "artifacts/mfg_{problem}_d{dim}*/trajectories.png", f"{_CMD} mfg",
        "Paths of 60 agents of a trained potential mean field game in the plane (x1, x2) "
        "(for d > 2 their projection onto the first two coordinates), from the start at "
        "t = 0 (black) to the end at t = T (red); for crowd motion over the obstacle Q "
        "(grey, its scale on the colorbar).  With the article's constants the crowd goes "
        "straight through the obstacle (results/crowd_avoidance.md)."),
    "flows": (
        "artifacts/{flow_gmm16,checkerboard_5925,figure2_checkerboard_16k}/figure.png, "
        "artifacts/figure2/figure2_8gaussians.png", f"{_CMD} flows",
        "A trained OT-Flow (article Figure 2).  From left: 20000 fresh test samples of the "
        "target in data coordinates (x1, x2); the learned density on a grid (d = 2) or its "
        "2-D marginal of (x1, x2) estimated from 20000 generated samples (d > 2); paths of "
        "the flow's state from the network input at t = 0 (the data, or the data under the "
        "fixed input map u = (x - shift) / scale) to the latent point z(1); 4000 generated "
        "samples.  The title gives the test NLL of the drawn samples and the entropy floor."),
    "figure3": (
        "artifacts/figure3/figure3.png",
        "ocp-learn mfg --figure3 --out benchmarks/artifacts/figure3",
        "The article's Figure 3 in one dimension: agent positions x(t) over time t from a "
        "two-bump mixture toward N(0, 1).  Left, optimal transport (no obstacle): the paths "
        "run toward the center.  Right, crowd motion with the obstacle Q = 10 N(x; 0, 0.2) "
        "shaded (colorbar): the paths stop short of the obstacle."),
    "crowd_avoidance": (
        "artifacts/crowd_avoidance/figure.png", "python -m benchmarks.bench_crowd_avoidance",
        "Crowd motion at d = 2 side by side: the crowd preset (the article's constants) "
        "walks straight through the obstacle, the crowd-avoid preset (a ten times heavier "
        "obstacle) passes beside it (results/crowd_avoidance.md)."),
}


def _caption_md(name: str, rel: str) -> str:
    """A markdown caption block for ``name`` (image, PDF link, caption, command)."""
    png, cmd, text = CAPTIONS[name]
    stem = rel + os.path.splitext(os.path.basename(png))[0]
    return (f"*Figure* `{stem}.png` (vector: `{stem}.pdf`): {text}  "
            f"Drawn by `{cmd}`.\n\n")


def caption_table(md_path: str, name: str) -> str:
    """Put the caption of figure ``name`` above the table in ``md_path`` (a result table
    drawn as that figure); anything above the table is replaced.

    Parameters
    ----------
    md_path : str
        The markdown result table next to the figure.
    name : str
        A key of :data:`CAPTIONS`.

    Returns
    -------
    str
        ``md_path``.
    """
    with open(md_path) as fh:
        lines = fh.read().splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if ln.startswith("|")), len(lines))
    with open(md_path, "w") as fh:
        fh.write(_caption_md(name, "") + "".join(lines[start:]))
    return md_path


def figures_md(path: str | None = None) -> str:
    """Write the list of committed figures, what each shows and the command that draws it
    (default ``artifacts/FIGURES.md``).

    Parameters
    ----------
    path : str, optional
        Output file.

    Returns
    -------
    str
        The file written.
    """
    path = path or os.path.join(ARTIFACTS, "FIGURES.md")
    lines = ["# Committed figures\n\n",
             "Each figure is a PNG (200 dpi) with a PDF beside it, drawn from committed results "
             "or trained parameters (no training unless the command says so).  Paths are "
             "relative to `benchmarks/`; commands run from the repository root.\n\n",
             "| figure | what it shows | command |\n", "|---|---|---|\n"]
    for png, cmd, text in CAPTIONS.values():
        lines.append(f"| `{png}` | {text} | `{cmd}` |\n")
    with open(path, "w") as fh:
        fh.writelines(lines)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("figures", nargs="*", metavar="ID",
                    help=f"figures to draw ({', '.join(FIGURES)}; default: all)")
    a = ap.parse_args(argv)
    unknown = [f for f in a.figures if f not in FIGURES]
    if unknown:
        ap.error(f"ID must be among {', '.join(FIGURES)}, got {', '.join(unknown)}")
    for name in a.figures or list(FIGURES):
        for p in FIGURES[name]():
            print("wrote", os.path.relpath(p))
        md = os.path.join(RESULTS, f"{name}.md")
        if name in ("memory", "integrators") and os.path.exists(md):
            print("captioned", os.path.relpath(caption_table(md, name)))
    print("wrote", os.path.relpath(figures_md()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
