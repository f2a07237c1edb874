"""What every subcommand of ``ocp-learn`` is made of, and the console output they share."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable, Sequence

__all__ = ["Subcommand", "HelpFormatter", "print_metrics", "format_table"]


@dataclass(frozen=True)
class Subcommand:
    """One ``ocp-learn NAME`` subcommand.

    Parameters
    ----------
    name : str
        The word after ``ocp-learn``.
    help : str
        One line for ``ocp-learn --help`` (also the subcommand's description).
    configure : callable
        ``configure(parser)`` adds the subcommand's options to its ``argparse`` parser.
    run : callable
        ``run(args) -> int``: parses nothing more, calls the recipes, returns the exit status.
    """

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default: ``(default: X)`` is added unless the help
    text already states the default; flags (``store_true``) and required options get none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("default" in text or action.nargs == 0 or action.required
                or action.default is argparse.SUPPRESS or not action.option_strings):
            return text
        return text + " (default: %(default)s)"


def print_metrics(metrics: dict[str, Any]) -> None:
    """Print a metrics dict one ``key: value`` per line (floats to 5 digits)."""
    w = max((len(k) for k in metrics), default=0)
    for k, v in metrics.items():
        print(f"{k:>{w}}: {v:.5g}" if isinstance(v, float) else f"{k:>{w}}: {v}")


def format_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A markdown table of ``rows`` under ``headers``, columns padded to their widest cell."""
    w = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(str(h).ljust(w[i]) for i, h in enumerate(headers)) + " |"
    sep = "|" + "|".join("-" * (x + 2) for x in w) + "|"
    body = ["| " + " | ".join(str(r[i]).ljust(w[i]) for i in range(len(headers))) + " |"
            for r in rows]
    return "\n".join([line, sep, *body])
