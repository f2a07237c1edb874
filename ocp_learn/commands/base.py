"""What every subcommand of ``ocp-learn`` is made of, and the console output they share."""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, Sequence

__all__ = ["Subcommand", "HelpFormatter", "print_metrics", "format_table", "add_output_options",
           "show_progress", "run_info_of", "available_memory", "check_memory", "check_out_of",
           "warn_option", "GIB"]

GIB = 1024.0 ** 3


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
    """Every option's help ends with its default.

    ``(default: X)`` is added unless the help text already states the default;
    flags (``store_true``) and required options get none.

    Parameters
    ----------
    prog : str
        The program name shown in the usage line.
    indent_increment : int, optional
        Indentation of nested sections.
    max_help_position : int, optional
        Column at which the help texts start.
    width : int or None, optional
        Width of the text (None: the terminal's).
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("default" in text or action.nargs == 0 or action.required
                or action.default is argparse.SUPPRESS or not action.option_strings):
            return text
        return text + " (default: %(default)s)"


def print_metrics(metrics: dict[str, Any]) -> None:
    """Print a metrics dict one ``key: value`` per line (floats to 5 digits).

    A figure with a standard error and sample count (``key_se``, ``key_n``) is
    printed as ``value +- se (n = N)``.  The run's description, the units and the
    notes (``"run"``, ``"units"``, ``*_note``) stay in ``metrics.json``.

    Parameters
    ----------
    metrics : dict
        The metrics, as written to ``metrics.json``.
    """
    shown = {k: v for k, v in metrics.items() if k not in ("run", "units")
             and not k.endswith("_note")}
    shown = {k: v for k, v in shown.items()
             if not (k.endswith(("_se", "_n")) and k.rsplit("_", 1)[0] in shown)}
    w = max((len(k) for k in shown), default=0)
    for k, v in shown.items():
        text = f"{v:.5g}" if isinstance(v, float) else str(v)
        if f"{k}_n" in metrics:
            se = metrics.get(f"{k}_se")
            text += (" +- n/a" if se is None else f" +- {se:.2g}") + f" (n = {metrics[f'{k}_n']})"
        print(f"{k:>{w}}: {text}")


def format_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """A markdown table of ``rows`` under ``headers``, columns padded to their widest cell.

    Parameters
    ----------
    rows : sequence of sequence
        The cells, one sequence per row, in the order of ``headers``.
    headers : sequence of str
        The column titles.

    Returns
    -------
    str
        The table, one line per row, without a final newline.
    """
    w = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(str(h).ljust(w[i]) for i, h in enumerate(headers)) + " |"
    sep = "|" + "|".join("-" * (x + 2) for x in w) + "|"
    body = ["| " + " | ".join(str(r[i]).ljust(w[i]) for i in range(len(headers))) + " |"
            for r in rows]
    return "\n".join([line, sep, *body])


def add_output_options(p: argparse.ArgumentParser) -> None:
    """Add ``--progress`` and ``--quiet``: progress bars are shown by default when stderr is
    a terminal (:func:`show_progress`)."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--progress", action="store_true",
                   help="show progress bars also when stderr is not a terminal (default: "
                        "shown on a terminal)")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress bars")


def show_progress(args: argparse.Namespace) -> bool:
    """Whether to show progress bars: ``--progress``, else not ``--quiet`` and stderr is a
    terminal."""
    if args.progress:
        return True
    return not args.quiet and sys.stderr.isatty()


def run_info_of(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    """The run's description (:func:`ocp_learn.recipes.rundir.run_info`): every option's
    value as a hyperparameter (plus ``extra``) and the command line."""
    from ..recipes.rundir import run_info

    hp = {k: v for k, v in vars(args).items() if not k.startswith("_") and k not in ("debug", "command")}
    hp.update(extra)
    argv = vars(args).get("_argv")  # set by ocp_learn.cli.main
    return run_info(hp, ["ocp-learn", *argv] if argv is not None else None)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (``MemAvailable`` of /proc/meminfo, else
    free pages from ``os.sysconf``); None where neither is known."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(estimate: float, options: str, what: str) -> None:
    """Refuse a run whose estimated memory exceeds the available memory.

    Parameters
    ----------
    estimate : float
        Estimated bytes the run must hold at once (a lower bound).
    options : str
        The options that set the size (e.g. ``"--dim 100000"``), quoted in the error.
    what : str
        What the estimate counts, quoted in the error.

    Raises
    ------
    MemoryError
        ``estimate`` exceeds :func:`available_memory`.
    """
    avail = available_memory()
    if avail is not None and estimate > avail:
        raise MemoryError(f"{options}: the run needs an estimated {estimate / GIB:.3g} GiB of "
                          f"memory ({what}), more than the {avail / GIB:.3g} GiB available; "
                          "reduce it")


def check_out_of(args: argparse.Namespace, resume: bool = False) -> dict[str, Any] | None:
    """Check ``--out`` (not a file, writable) and, with ``resume``, its checkpoint, before any
    work; returns the checkpoint's metadata (None without ``resume``)."""
    from ..recipes.rundir import check_checkpoint, check_out

    check_out(args.out)
    if resume:
        return check_checkpoint(os.path.join(args.out, "checkpoint.npz"))
    return None


def warn_option(message: str) -> None:
    """Tell the user about an option's effect in this combination (one line on stderr)."""
    print(f"ocp-learn: warning: {message}", file=sys.stderr)
