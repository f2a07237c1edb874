"""Subcommands of ``ocp-learn``: one module per command family.

Each module parses its options and calls :mod:`ocp_learn.recipes`; it declares one
:class:`~ocp_learn.commands.base.Subcommand` (``COMMAND``), collected in :data:`SUBCOMMANDS`.
Another package adds a subcommand with :func:`register`.
"""
from __future__ import annotations

from . import bench, classify, demo, flow, mfg, model, verify
from .base import HelpFormatter, Subcommand, format_table, print_metrics

__all__ = ["SUBCOMMANDS", "register", "Subcommand", "HelpFormatter", "format_table",
           "print_metrics"]

#: name -> subcommand, in the order of ``ocp-learn --help``.
SUBCOMMANDS: dict[str, Subcommand] = {
    c.name: c for c in (demo.COMMAND, bench.COMMAND, classify.COMMAND, flow.COMMAND,
                        mfg.COMMAND, *model.COMMANDS, verify.COMMAND)}


def register(command: Subcommand) -> Subcommand:
    """Add ``command`` to ``ocp-learn`` (replacing a subcommand of the same name).

    Parameters
    ----------
    command : Subcommand
        Its name, help line, ``configure(parser)`` and ``run(args) -> int``.

    Returns
    -------
    Subcommand
        ``command``.
    """
    if not isinstance(command, Subcommand):
        raise TypeError(f"command must be a Subcommand, got {type(command).__name__}")
    SUBCOMMANDS[command.name] = command
    return command
