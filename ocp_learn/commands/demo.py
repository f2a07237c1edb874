"""``ocp-learn demo``: small problems of each family on built-in data (seconds)."""
from __future__ import annotations

import argparse
import os

from ..errors import check_nonneg_int
from ..recipes.demo import run_demo
from .base import (Subcommand, add_output_options, check_out_of, format_table, run_info_of,
                   show_progress)

__all__ = ["COMMAND"]


def configure(p: argparse.ArgumentParser) -> None:
    """Add the options of ``ocp-learn demo`` to ``p``."""
    p.add_argument("--out", default="ocp_learn_demo", help="output folder")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    add_output_options(p)


def run(args: argparse.Namespace) -> int:
    """Run :func:`ocp_learn.recipes.demo.run_demo` and print its metrics as a table."""
    check_nonneg_int("--seed", args.seed)
    check_out_of(args)
    allm = run_demo(args.out, seed=args.seed, progress=show_progress(args),
                    info=run_info_of(args))
    rows = [[m["problem"], k, f"{v:.4g}" if isinstance(v, float) else v]
            for m in allm for k, v in m.items() if k != "problem"]
    print(format_table(rows, ["problem", "metric", "value"]))
    print(f"figures and metrics written to {os.path.abspath(args.out)}")
    return 0


COMMAND = Subcommand("demo", "train small problems on built-in data; print a summary and write "
                     "figures", configure, run)
