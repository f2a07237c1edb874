"""``ocp-learn bench TARGET --out DIR``: run a benchmark script of ``benchmarks/``.

Targets live in :data:`BENCH_TARGETS`; other modules add theirs with
:func:`register_bench` (e.g. ``register_bench("kernels", "bench_kernels.py",
"numpy vs numba vs cupy")``).  A target is either the file name of a script in
the repository's ``benchmarks/`` folder whose ``main(argv)`` accepts
``--out DIR``, or a callable ``fn(argv) -> int``.  Extra arguments after the
target's options are passed on with ``--args`` (``ocp-learn bench memory --out r --args '--n 128'``).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
from typing import Callable

from .base import Subcommand

__all__ = ["COMMAND", "BENCH_TARGETS", "register_bench", "find_benchmarks_dir"]

#: name -> (script file name in benchmarks/ or callable, help)
BENCH_TARGETS: dict[str, tuple[str | Callable[[list[str]], int], str]] = {}


def register_bench(name: str, target: str | Callable[[list[str]], int],
                   help: str) -> str | Callable[[list[str]], int]:
    """Make ``ocp-learn bench name`` run ``target`` (script name or ``fn(argv)``)."""
    BENCH_TARGETS[name] = (target, help)
    return target


register_bench("integrators", "bench_integrators.py",
               "work-precision of Euler, Heun, RK4, leapfrog on a trained model (MATH A4, B1)")
register_bench("memory", "bench_memory.py",
               "stored floats, RSS and seconds per gradient per strategy (MATH B3, B4)")
register_bench("core", "bench_core.py",
               "objective + exact gradient of the core neural ODE per memory strategy (MATH B2)")
register_bench("potential", "bench_potential.py",
               "time per sample of Phi, grad, Laplacian and their vjps, numpy vs numba (MATH D1-D6)")
register_bench("classifier", "bench_classifier.py",
               "L-BFGS vs Gauss-Newton-CG, and the viscous robustness curve (MATH C1, C2, G1)")
register_bench("flows", "bench_flows.py",
               "CNF test NLL vs the floor, OT contrast, exact vs Hutchinson trace (MATH D4, D5)")
register_bench("mfg", "bench_mfg.py",
               "MFG Table 1 rows, Gaussian closed form, Pontryagin check (MATH E, F)")
register_bench("kernels", "bench_kernels.py",
               "CNF objective+gradient: ocp_learn numba/numpy vs PyTorch (same objective) and "
               "FFJORD/torchdiffeq; GFLOP/s vs DGEMM; numba compile time (needs the bench extra)")


def find_benchmarks_dir(hint: str | None = None) -> str:
    """The ``benchmarks/`` folder: ``hint``, ``$OCP_LEARN_BENCHMARKS``, or the one
    beside the package in a source checkout."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for cand in (hint, os.environ.get("OCP_LEARN_BENCHMARKS"), os.path.join(here, "benchmarks")):
        if cand and os.path.isfile(os.path.join(cand, "_common.py")):
            return cand
    raise FileNotFoundError("the benchmarks/ folder was not found: run from a source checkout, "
                            "or pass --benchmarks DIR (or set OCP_LEARN_BENCHMARKS)")


def _run_script(path: str, argv: list[str]) -> int:
    """Run ``main(argv)`` of the benchmark script ``path``."""
    spec = importlib.util.spec_from_file_location(
        "ocp_learn_bench_" + os.path.splitext(os.path.basename(path))[0], path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main(argv) or 0


def run(args: argparse.Namespace) -> int:
    """Run the benchmark ``args.target`` with ``--out`` and the ``--args`` options."""
    from ..recipes.rundir import check_out

    check_out(args.out)
    target, _ = BENCH_TARGETS[args.target]
    extra = shlex.split(args.args or "")
    argv = ["--out", os.path.abspath(args.out)] + extra
    if callable(target):
        return target(argv) or 0
    path = os.path.join(find_benchmarks_dir(args.benchmarks), target)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"benchmark script {path} not found")
    return _run_script(path, argv)


def configure(p: argparse.ArgumentParser) -> None:
    """Add the options of ``ocp-learn bench`` to ``p``."""
    p.add_argument("target", choices=sorted(BENCH_TARGETS),
                   help="which benchmark: " + "; ".join(f"{k}: {h}" for k, (_, h)
                                                        in sorted(BENCH_TARGETS.items())))
    p.add_argument("--out", default="benchmarks_out", help="output folder")
    p.add_argument("--benchmarks", default=None, help="the benchmarks/ folder (default: the "
                   "checkout's)")
    p.add_argument("--args", default="", metavar="'OPTIONS'",
                   help="options passed on to the benchmark script, quoted (e.g. --args '--n 128'; "
                        "default: none)")


COMMAND = Subcommand("bench", "run a benchmark (writes JSON, markdown tables and PNG plots)",
                     configure, run)
