"""``ocp-learn mfg``: potential mean field games (article Table 1, Figure 3; MATH E, F)."""
from __future__ import annotations

import argparse
import json

from ..distributed import Parallel, auto_comm, bind_device
from ..errors import check_nonneg_int, check_positive_int
from ..recipes.mfg import figure3, run_mfg
from .base import (Subcommand, add_output_options, check_memory, check_out_of, print_metrics,
                   run_info_of, show_progress)

__all__ = ["COMMAND", "estimate_bytes"]

#: Bytes per dimension of the potential's work arrays, measured (independent of the agents).
WORK_BYTES_PER_DIM = 8 * 32768

#: The options that ``--figure3`` (fixed 1-D games) does not use, with their defaults.
_NOT_FIGURE3 = {"problem": "crowd", "dim": 2, "samples": None, "iters_stages": None,
                "resample_every": 25, "keep_pairs": False, "resume": False}


def configure(p: argparse.ArgumentParser) -> None:
    """Add the options of ``ocp-learn mfg`` to ``p``."""
    p.add_argument("--problem", choices=["ot", "crowd", "crowd-avoid", "nf", "nf-ot"],
                   default="crowd",
                   help="Table 1 preset: ot, crowd, nf, nf-ot; crowd-avoid: crowd motion with a ten "
                        "times heavier obstacle, whose paths pass beside it")
    p.add_argument("--dim", type=int, default=2, help="dimension")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--samples", type=int, nargs="+",
                   help="agents per stage (default: the preset's, MATH F)")
    p.add_argument("--iters", "--maxiter", dest="iters", type=int,
                   help="iterations of every stage (default: the preset's, MATH F; 150 with "
                        "--figure3)")
    p.add_argument("--iters-stages", type=int, nargs="+",
                   help="iterations of each stage, instead of --iters (default: the preset's)")
    p.add_argument("--resample-every", type=int, default=25,
                   help="iterations between redraws of the agents")
    p.add_argument("--backend", choices=["numpy", "numba", "cupy"], default="numba",
                   help="kernel backend: numpy (reference), numba (CPU kernels) or cupy (the "
                        "whole solve on a CUDA GPU; needs the gpu extra)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--figure3", action="store_true",
                   help="the article's 1-D Figure 3 instead (uses --iters, --seed, --backend)")
    p.add_argument("--keep-pairs", action="store_true",
                   help="L-BFGS keeps its correction pairs across redraws of the agents "
                        "(default: scipy's L-BFGS-B restarted on every redraw)")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.npz, written after every redraw of the "
                        "agents (an error if there is none)")
    add_output_options(p)


def _stages(args: argparse.Namespace) -> tuple[tuple[int, int], ...] | None:
    """The ``(samples, iterations)`` schedule the options ask for (None: the preset's)."""
    if not (args.samples or args.iters or args.iters_stages):
        return None
    ns, its = _preset_schedule(args)
    ns = args.samples or ns
    its = args.iters_stages or ([args.iters] * len(ns) if args.iters else its)
    if len(its) != len(ns):
        if args.iters_stages:
            raise ValueError(f"--iters-stages must give one count per stage ({len(ns)}), "
                             f"got {len(its)}")
        raise ValueError(f"--samples gives {len(ns)} stage(s), the preset's schedule has "
                         f"{len(its)} (iterations {', '.join(map(str, its))}): give --iters "
                         "or --iters-stages with one count per stage")
    return tuple(zip(ns, its))


def _preset_schedule(args: argparse.Namespace) -> tuple[list[int], list[int]]:
    from ..problems.mfg import PRESETS

    p = PRESETS[args.problem]
    return list(p["samples"].get(args.dim, p["samples"][2])), list(p["iters"])


def estimate_bytes(args: argparse.Namespace) -> float:
    """A lower bound of the bytes an ``mfg`` run holds at once: the states of the largest
    stage's agents at every stage of every time step with their adjoints, the potential's
    work arrays (measured, per dimension) and L-BFGS's pairs."""
    d = args.dim
    n = max(args.samples or _preset_schedule(args)[0])
    from ..problems.mfg import PRESETS

    nt = PRESETS[args.problem]["nt"]
    states = 2 * n * (d + 1) * (4 * nt + 1)
    n_params = (16 + 10) * (d + 1) + 16 * 16
    return 8.0 * (states + 25 * n_params) + WORK_BYTES_PER_DIM * d


def _check(args: argparse.Namespace) -> None:
    """Every option, before any work (a one-line error naming the option)."""
    check_nonneg_int("--seed", args.seed)
    if args.iters is not None:
        check_positive_int("--iters", args.iters)
    if args.figure3:
        given = [k for k, v in _NOT_FIGURE3.items() if vars(args)[k] != v]
        if given:
            opts = ", ".join("--" + k.replace("_", "-") for k in given)
            raise ValueError(f"{opts}: --figure3 runs the article's fixed 1-D games (it uses "
                             "--iters, --seed and --backend only)")
        return
    for name in ("samples", "iters_stages"):
        for v in vars(args)[name] or []:
            check_positive_int("--" + name.replace("_", "-"), v)
    if args.iters is not None and args.iters_stages:
        raise ValueError("--iters and --iters-stages: give the iterations of every stage "
                         "(--iters) or of each stage (--iters-stages), not both")
    check_positive_int("--dim", args.dim)
    check_positive_int("--resample-every", args.resample_every)
    check_memory(estimate_bytes(args), f"--problem {args.problem} --dim {args.dim}"
                 + (" --samples " + " ".join(map(str, args.samples)) if args.samples else ""),
                 "states of the agents at every time step, the potential's work arrays, "
                 "L-BFGS pairs")
    _stages(args)  # the counts per stage agree


def run(args: argparse.Namespace) -> int:
    """Check the options, run :func:`ocp_learn.recipes.mfg.run_mfg` (or
    :func:`~ocp_learn.recipes.mfg.figure3`), print the metrics."""
    _check(args)
    if args.backend == "cupy":  # each MPI rank on its own device (local rank mod count)
        bind_device(auto_comm())
    if args.figure3:
        check_out_of(args)
        iters = 150 if args.iters is None else args.iters
        res = figure3(args.out, iters=iters, seed=args.seed, backend=args.backend,
                      progress=show_progress(args), info=run_info_of(args, iters=iters))
        print(json.dumps(res, indent=2, default=float))
        return 0
    check_out_of(args, resume=args.resume)
    stages = _stages(args)
    if stages is None:
        ns, its = _preset_schedule(args)
        stages = tuple(zip(ns, its))
    m, _, _ = run_mfg(args.problem, args.dim, out=args.out, stages=stages,
                      resample_every=args.resample_every, seed=args.seed, backend=args.backend,
                      progress=show_progress(args), resume=args.resume,
                      keep_pairs=args.keep_pairs, parallel=Parallel(auto_comm()),
                      info=run_info_of(args, stages=[list(s) for s in stages]))
    print_metrics(m)  # empty on MPI ranks other than 0
    return 0


COMMAND = Subcommand("mfg", "potential mean field games: ot | crowd | nf | nf-ot in any dimension "
                     "(Table 1)", configure, run)
