"""The ``ocp-learn`` command: the parser of every subcommand of :mod:`ocp_learn.commands`."""
from __future__ import annotations

import argparse
import os
import sys
import warnings
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
        if not any("--debug" in a.option_strings for a in p._actions):
            p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                           help="re-raise errors with a traceback (also: OCP_LEARN_DEBUG=1)")
        p.set_defaults(_run=command.run)
    return parser


def _debug_requested(args: argparse.Namespace | None) -> bool:
    return bool(vars(args).get("debug", False)) or \
        os.environ.get("OCP_LEARN_DEBUG", "") not in ("", "0")


#: module of an optional dependency -> the extra of ``ocp_learn`` that installs it
EXTRAS = {"ot": "test", "torch": "bench", "torchdiffeq": "bench", "mpi4py": "mpi",
          "cupy": "gpu", "numba_cuda": "gpu", "hypothesis": "test", "array_api_strict": "test"}


def describe_error(exc: BaseException) -> str:
    """One line naming the cause of a failure of the user's input or environment.

    Parameters
    ----------
    exc : BaseException
        The error.

    Returns
    -------
    str
        The message's first line, with what to do for a missing optional dependency and
        for memory.
    """
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    if isinstance(exc, ImportError):
        mod = (exc.name or "").split(".")[0]
        extra = EXTRAS.get(mod)
        if extra is not None and "pip install" not in line:
            line = f'{line}: install the optional dependency with pip install "ocp_learn[{extra}]"'
        elif mod and "pip install" not in line:
            line = f"{line}: a required package is missing (pip install ocp_learn)"
    elif isinstance(exc, MemoryError) and "reduce" not in line:
        line = f"out of memory ({line}); reduce the sizes (samples, dimension, width)"
    elif isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError) \
            and exc.filename is not None and exc.strerror:
        line = f"{exc.strerror}: {exc.filename!r}"
    return line


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line ``ocp-learn: warning: <message>`` (no source line)."""
    print(f"ocp-learn: warning: {message}", file=sys.stderr if file is None else file)


def _interrupted(args: argparse.Namespace) -> str:
    """What an interrupted run left behind, in one line."""
    from .recipes.rundir import saved_files

    out = vars(args).get("out")
    if not out or not os.path.isdir(out):
        return "interrupted; nothing was saved"
    files = saved_files(out)
    if not files:
        return "interrupted; nothing was saved"
    what = ", ".join(files)
    ckpt = os.path.join(out, "checkpoint.npz")
    if "checkpoint.npz" in files:
        try:
            from .optim.checkpoint import load_checkpoint

            what = what.replace("checkpoint.npz",
                                f"checkpoint.npz (iteration {load_checkpoint(ckpt)[1]['nit']})")
        except Exception:  # a damaged checkpoint: name the file only
            pass
        return f"interrupted; saved in {out}: {what} (continue with --resume)"
    return f"interrupted; saved in {out}: {what} (the folder is marked INCOMPLETE)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ocp-learn``; returns the exit status.

    A bad option value found by argparse exits with status 2 and a usage
    message.  A failure of the user's input or environment found inside a
    command (a bad value, ``--out`` naming a file or an unwritable place, a
    missing or damaged checkpoint, a run that does not fit in memory, a missing
    optional dependency, :class:`~ocp_learn.NonFiniteError`) prints one line
    ``ocp-learn COMMAND: error: <cause>`` to stderr and returns 2, without a
    traceback; ``--debug`` (or ``OCP_LEARN_DEBUG=1``) re-raises it instead.
    Ctrl-C returns 130 and SIGTERM 143, each after one line saying what was saved (the
    optimizers write the checkpoint of the last completed iteration when interrupted).
    """
    import signal
    import threading
    import zipfile

    from .allocator import tune_malloc
    from .errors import NonFiniteError
    from .recipes.rundir import RunError

    tune_malloc()  # keep freed arrays in the process (no page faults per evaluation)
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    args._argv = argv
    terminated = []

    def _terminate(signum: int, frame: object) -> None:  # SIGTERM takes the path of Ctrl-C
        terminated.append(signum)
        raise KeyboardInterrupt(f"signal {signum}")

    in_main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGTERM, _terminate) if in_main else None
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return args._run(args)
    except KeyboardInterrupt:
        if _debug_requested(args):
            raise
        print(f"ocp-learn {args.command}: {_interrupted(args)}", file=sys.stderr)
        return 143 if terminated else 130
    except (ValueError, TypeError, NonFiniteError, RunError, OSError, MemoryError, ImportError,
            EOFError, zipfile.BadZipFile) as exc:
        if _debug_requested(args):
            raise
        print(f"ocp-learn {args.command}: error: {describe_error(exc)}", file=sys.stderr)
        return 2
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
