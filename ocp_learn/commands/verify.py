"""``ocp-learn verify --out DIR [--quick]``: the CasADi reference suite
(:func:`ocp_learn.recipes.verify.run_verify`); exits with status 1 if a check fails."""
from __future__ import annotations

import argparse
import os
import sys

from ..recipes.verify import format_value, run_verify, suite_failed
from .base import Subcommand

__all__ = ["COMMAND"]


def configure(p: argparse.ArgumentParser) -> None:
    """Add the options of ``ocp-learn verify`` to ``p``."""
    p.add_argument("--out", default="ocp_learn_verify", help="output folder")
    p.add_argument("--quick", action="store_true", help="small sizes (CI)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no progress messages (the summary is printed)")


def run(args: argparse.Namespace) -> int:
    """Run the suite, print its summary; 1 if a check failed."""
    from ..errors import check_nonneg_int
    from .base import check_out_of, run_info_of

    check_nonneg_int("--seed", args.seed)
    check_out_of(args)
    res = run_verify(args.out, quick=args.quick, seed=args.seed,
                     progress=None if args.quiet else (lambda m: print(m, file=sys.stderr)),
                     info=run_info_of(args))
    s = res["summary"]
    print(f"gradients: {s['gradient_rows']} rows, max rel. diff (discrete strategies) "
          f"{format_value(s['max_rel_grad_diff_exact_strategies'])}, failures "
          f"{s['gradient_failures']}")
    print(f"potential: max rel. diff {format_value(s['potential_max_rel_diff'])}")
    print(f"IPOPT: {s['ipopt_agreements']} of {s['ipopt_rows']} solves agree to "
          f"{res['opt_tol']:.0e}")
    print(f"continuous adjoint vs discrete adjoint: {s['continuous_adjoint_cases']} cases, "
          f"rel. gradient error min {format_value(s['continuous_adjoint_min_rel_err'])}, "
          f"median {format_value(s['continuous_adjoint_median_rel_err'])}, "
          f"max {format_value(s['continuous_adjoint_max_rel_err'])}")
    print(f"analytic failures: {s['analytic_failures']}")
    print(f"written {os.path.abspath(os.path.join(args.out, 'verify.json'))} and verify.md")
    return 1 if suite_failed(res) else 0


COMMAND = Subcommand("verify", "run the CasADi reference suite: gradients, IPOPT optima, "
                     "analytic checks", configure, run)
