"""The ``ocp-learn`` command."""
from __future__ import annotations

import argparse
import json
import os
import sys


__all__ = ["main"]

SUBCOMMANDS = {}


def subcommand(name, help):
    """Register ``fn(args)`` as ``ocp-learn name``; ``fn.configure(parser)`` adds options."""
    def deco(fn):
        SUBCOMMANDS[name] = (fn, help)
        return fn
    return deco


def _table(rows, headers):
    w = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(str(h).ljust(w[i]) for i, h in enumerate(headers)) + " |"
    sep = "|" + "|".join("-" * (x + 2) for x in w) + "|"
    body = ["| " + " | ".join(str(r[i]).ljust(w[i]) for i in range(len(headers))) + " |" for r in rows]
    return "\n".join([line, sep, *body])


def print_metrics(metrics):
    """Print a metrics dict one ``key: value`` per line (floats to 5 digits)."""
    w = max((len(k) for k in metrics), default=0)
    for k, v in metrics.items():
        print(f"{k:>{w}}: {v:.5g}" if isinstance(v, float) else f"{k:>{w}}: {v}")


DEMO_PARTS = []  # filled by the modules of ocp_learn.commands (register_demo)


def register_demo(fn):
    """Add ``fn(out, seed, progress) -> metrics dict`` to ``ocp-learn demo``."""
    if fn not in DEMO_PARTS:
        DEMO_PARTS.append(fn)
    return fn


@subcommand("demo", "train small problems on built-in data; print a summary and write figures")
def cmd_demo(args):
    os.makedirs(args.out, exist_ok=True)
    allm = []
    for part in DEMO_PARTS:
        allm.append(part(args.out, seed=args.seed, progress=args.progress))
    rows = []
    for m in allm:
        for k, v in m.items():
            if k != "problem":
                rows.append([m["problem"], k, f"{v:.4g}" if isinstance(v, float) else v])
    print(_table(rows, ["problem", "metric", "value"]))
    with open(os.path.join(args.out, "demo_metrics.json"), "w") as fh:
        json.dump(allm, fh, indent=2)
    print(f"figures and metrics written to {os.path.abspath(args.out)}")
    return 0


def _configure_demo(p):
    p.add_argument("--out", default="ocp_learn_demo", help="output folder (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--progress", action="store_true", help="show progress bars")


cmd_demo.configure = _configure_demo


def _load_commands():
    """Import every module of :mod:`ocp_learn.commands`; each registers its
    subcommands with :func:`subcommand` (and demo parts with :func:`register_demo`)."""
    import importlib
    import pkgutil

    from . import commands

    for mod in pkgutil.iter_modules(commands.__path__):
        importlib.import_module(f"{commands.__name__}.{mod.name}")


def build_parser():
    from . import __version__

    _load_commands()

    parser = argparse.ArgumentParser(
        prog="ocp-learn",
        description="Continuous-time deep learning as optimal control (exact discrete gradients).")
    parser.add_argument("--version", action="version", version=f"ocp-learn {__version__}")
    parser.add_argument("--debug", action="store_true", default=False,
                        help="re-raise errors with a traceback (also: OCP_LEARN_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (fn, help_) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if hasattr(fn, "configure"):
            fn.configure(p)
        p.set_defaults(_fn=fn)
    return parser


def _debug_requested(args):
    return bool(getattr(args, "debug", False)) or os.environ.get("OCP_LEARN_DEBUG", "") not in ("", "0")


def main(argv=None):
    """Run ``ocp-learn``; returns the exit status.

    A bad option value found by argparse exits with status 2 and a usage
    message.  A bad value found by the library inside a command
    (``ValueError``, ``TypeError``, :class:`~ocp_learn.NonFiniteError`,
    ``FileNotFoundError``) prints one line ``ocp-learn: error: <message>`` to
    stderr and returns 2, without a traceback; ``--debug`` (or
    ``OCP_LEARN_DEBUG=1``) re-raises it instead.
    """
    from .allocator import tune_malloc
    from .errors import NonFiniteError

    tune_malloc()  # keep freed arrays in the process (no page faults per evaluation)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return args._fn(args)
    except (ValueError, TypeError, NonFiniteError, FileNotFoundError) as exc:
        if _debug_requested(args):
            raise
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"ocp-learn {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    # ``python -m ocp_learn.cli``: run the canonical module's main, where the
    # command modules register (this file runs as ``__main__``, a second copy)
    from ocp_learn.cli import main as _main

    sys.exit(_main())
