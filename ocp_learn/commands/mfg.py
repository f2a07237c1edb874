"""``ocp-learn mfg``: potential mean field games (article Table 1, Figure 3; MATH E, F)."""
from __future__ import annotations

import argparse
import json

from ..distributed import Parallel, auto_comm
from ..errors import check_positive_int
from ..recipes.mfg import figure3, run_mfg
from .base import Subcommand, print_metrics

__all__ = ["COMMAND"]


def configure(p: argparse.ArgumentParser) -> None:
    """Add the options of ``ocp-learn mfg`` to ``p``."""
    p.add_argument("--problem", choices=["ot", "crowd", "nf", "nf-ot"], default="crowd",
                   help="Table 1 preset")
    p.add_argument("--dim", type=int, default=2, help="dimension")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--samples", type=int, nargs="+",
                   help="agents per stage (default: the preset's, MATH F)")
    p.add_argument("--iters", "--maxiter", dest="iters", type=int,
                   help="iterations per stage (default: the preset's, MATH F; 150 with "
                        "--figure3)")
    p.add_argument("--iters-stages", type=int, nargs="+",
                   help="iterations of each stage (default: --iters for every stage)")
    p.add_argument("--resample-every", type=int, default=25,
                   help="iterations between redraws of the agents")
    p.add_argument("--backend", choices=["numpy", "numba"], default="numba",
                   help="kernel backend")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--figure3", action="store_true", help="the article's 1-D Figure 3 instead")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.add_argument("--keep-pairs", action="store_true",
                   help="L-BFGS keeps its correction pairs across redraws of the agents "
                        "(default: scipy's L-BFGS-B restarted on every redraw)")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.npz (written after every redraw of the agents)")


def _stages(args: argparse.Namespace) -> tuple[tuple[int, int], ...] | None:
    """The ``(samples, iterations)`` schedule the options ask for (None: the preset's)."""
    if not (args.samples or args.iters or args.iters_stages):
        return None
    from ..problems.mfg import PRESETS

    p = PRESETS[args.problem]
    ns = args.samples or p["samples"].get(args.dim, p["samples"][2])
    its = args.iters_stages or ([args.iters] * len(ns) if args.iters else p["iters"])
    if len(its) != len(ns):
        raise ValueError(f"--iters-stages must give one count per stage ({len(ns)}), got {len(its)}")
    return tuple(zip(ns, its))


def run(args: argparse.Namespace) -> int:
    """Check the options, run :func:`ocp_learn.recipes.mfg.run_mfg` (or
    :func:`~ocp_learn.recipes.mfg.figure3`), print the metrics."""
    if args.figure3:
        res = figure3(args.out, iters=args.iters or 150, seed=args.seed, backend=args.backend)
        print(json.dumps(res, indent=2, default=float))
        return 0
    for name in ("samples", "iters_stages"):
        for v in getattr(args, name) or []:
            check_positive_int("--" + name.replace("_", "-"), v)
    if args.iters is not None:
        check_positive_int("--iters", args.iters)
    check_positive_int("--dim", args.dim)
    check_positive_int("--resample-every", args.resample_every)
    stages = _stages(args)
    m, _, _ = run_mfg(args.problem, args.dim, out=args.out, stages=stages,
                      resample_every=args.resample_every, seed=args.seed, backend=args.backend,
                      progress=args.progress, resume=args.resume, keep_pairs=args.keep_pairs,
                      parallel=Parallel(auto_comm()))
    print_metrics(m)  # empty on MPI ranks other than 0
    return 0


COMMAND = Subcommand("mfg", "potential mean field games: ot | crowd | nf | nf-ot in any dimension "
                     "(Table 1)", configure, run)
