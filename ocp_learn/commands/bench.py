"""``ocp-learn bench ID|all|index|list [--quick] [--out DIR]``: run the benchmarks of the manifest.

The benchmarks live in the repository's ``benchmarks/`` folder (not in the installed
package); ``benchmarks/manifest.py`` names each one with the arguments of its full and quick
runs, its outputs and what it needs.  This command runs ``python -m benchmarks.run`` in a
subprocess from the folder above ``benchmarks/``, which runs each entry in its own
subprocess, skips those whose needs are missing (saying why) and regenerates
``results/INDEX.md``.  A full run writes to ``benchmarks/results`` (the committed record)
unless ``--out`` is given; a ``--quick`` run writes to ``--out`` or a temporary folder.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys

from .base import Subcommand

__all__ = ["COMMAND", "find_benchmarks_dir", "bench_command", "manifest_ids"]


def find_benchmarks_dir(hint: str | None = None) -> str:
    """The ``benchmarks/`` folder: ``hint``, ``$OCP_LEARN_BENCHMARKS``, or the one beside the
    package in a source checkout.

    Parameters
    ----------
    hint : str, optional
        A folder to try first.

    Returns
    -------
    str
        A folder holding ``manifest.py`` and ``run.py``.
    """
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for cand in (hint, os.environ.get("OCP_LEARN_BENCHMARKS"), os.path.join(here, "benchmarks")):
        if cand and all(os.path.isfile(os.path.join(cand, f)) for f in ("manifest.py", "run.py")):
            return os.path.abspath(cand)
    raise FileNotFoundError("the benchmarks/ folder (with manifest.py and run.py) was not found: "
                            "run from a source checkout, or pass --benchmarks DIR (or set "
                            "OCP_LEARN_BENCHMARKS)")


def manifest_ids(folder: str | None = None) -> list[str] | None:
    """The ids of ``benchmarks/manifest.py`` (read from the file, at call time), or None when
    the folder is not found."""
    try:
        path = os.path.join(find_benchmarks_dir(folder), "manifest.py")
    except FileNotFoundError:
        return None
    name = "_ocp_learn_bench_manifest"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.modules.pop(name, None)
    return list(mod.BENCHMARKS)


def _target(value: str) -> str:
    """An argparse type: a manifest id, 'all', 'index' or 'list'."""
    ids = manifest_ids()
    if ids is not None and value not in (*ids, "all", "index", "list"):
        raise argparse.ArgumentTypeError(
            f"unknown benchmark {value!r}: expected 'all', 'index', 'list' or one of "
            f"{', '.join(ids)}")
    return value


def bench_command(args: argparse.Namespace) -> list[str]:
    """The ``python -m benchmarks.run ...`` command line of ``args``."""
    cmd = [sys.executable, "-m", "benchmarks.run", *args.target]
    if args.quick:
        cmd.append("--quick")
    if args.out is not None:
        cmd += ["--out", os.path.abspath(args.out)]
    if args.args:
        cmd += ["--args", args.args]
    if args.timeout is not None:
        cmd += ["--timeout", str(args.timeout)]
    return cmd


def run(args: argparse.Namespace) -> int:
    """Run ``benchmarks.run`` in a subprocess from the folder above ``benchmarks/``."""
    root = os.path.dirname(find_benchmarks_dir(args.benchmarks))
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.run(bench_command(args), cwd=root, env=env).returncode


def configure(p: argparse.ArgumentParser) -> None:
    """Add the options of ``ocp-learn bench`` to ``p``."""
    p.add_argument("target", nargs="+", metavar="ID", type=_target,
                   help="manifest ids (benchmarks/manifest.py), 'all', 'index' (regenerate "
                        "results/INDEX.md) or 'list' (ids, runtimes, missing needs)")
    p.add_argument("--quick", action="store_true",
                   help="the reduced runs (a few minutes in all; the CI smoke set)")
    p.add_argument("--out", default=None,
                   help="output folder (default: benchmarks/results for full runs, a "
                        "temporary folder for --quick)")
    p.add_argument("--benchmarks", default=None,
                   help="the benchmarks/ folder (default: the checkout's)")
    p.add_argument("--args", default="", metavar="'OPTIONS'",
                   help="options appended to the script's, quoted, one target only (e.g. "
                        "--args '--n 128'; default: none)")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds per entry (default: no limit)")


COMMAND = Subcommand("bench", "run benchmarks of the manifest (JSON, markdown tables, plots, "
                     "results/INDEX.md)", configure, run)
