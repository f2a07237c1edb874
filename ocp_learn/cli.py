"""The ``ocp-learn`` command: the parser of every subcommand of :mod:`ocp_learn.commands`."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``ocp-learn`` with one sub-parser per subcommand.

    Returns
    -------
    argparse.ArgumentParser
        Each option's help ends with its default
        (:class:`~ocp_learn.commands.base.HelpFormatter`).
    """
    from . import __version__
    from .commands import SUBCOMMANDS, HelpFormatter

    parser = argparse.ArgumentParser(
        prog="ocp-learn", formatter_class=HelpFormatter,
        description="Continuous-time deep learning as optimal control (exact discrete gradients).")
    parser.add_argument("--version", action="version", version=f"ocp-learn {__version__}")
    parser.add_argument("--debug", action="store_true", default=False,
                        help="re-raise errors with a traceback (also: OCP_LEARN_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=command.help, description=command.help,
                           formatter_class=HelpFormatter)
        command.configure(p)
        p.set_defaults(_run=command.run)
    return parser


def _debug_requested(args: argparse.Namespace) -> bool:
    return bool(args.debug) or os.environ.get("OCP_LEARN_DEBUG", "") not in ("", "0")


def main(argv: Sequence[str] | None = None) -> int:
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
    if not args.command:
        parser.print_help()
        return 2
    try:
        return args._run(args)
    except (ValueError, TypeError, NonFiniteError, FileNotFoundError) as exc:
        if _debug_requested(args):
            raise
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"ocp-learn {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
