"""A run's output folder as one set of files: locked, written atomically, marked until complete.

:class:`RunFolder` is the context every recipe writes through:

1. on entry it refuses a path that names a file, creates the folder (remembering whether it
   did), takes the lock ``.ocp-learn.lock`` (holding the process id; a second run on the same
   folder is refused, a lock left by a dead process is taken over), removes temporary files
   left by killed writers, and writes the marker ``INCOMPLETE``;
2. every file goes through a temporary file in the same folder and :func:`os.replace`, so a
   file is either its previous version or its new one, never torn;
3. on a clean exit it removes ``INCOMPLETE`` last (then the lock); on an error it leaves the
   marker with the reason, and a folder it created that holds nothing is removed.

A recipe nested in another on the same folder (``ocp-learn demo``) shares the outer lock.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any, Iterator

import numpy as np

__all__ = ["RunError", "RunFolder", "MARKER", "LOCK", "check_out", "check_checkpoint",
           "run_info", "saved_files", "git_commit"]

#: The marker of a folder whose run has not finished (its text: the process, and the reason).
MARKER = "INCOMPLETE"
#: The lock file of a folder in use (its text: ``pid host``).
LOCK = ".ocp-learn.lock"
_TMP_PREFIXES = (".tmp-", ".ckpt-")  # temporary files of RunFolder and of the checkpoint writer

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # the process's file mode mask, for the modes of the files written here
_HELD: dict[str, RunFolder] = {}  # folders this process holds: nested recipes share the lock


class RunError(Exception):
    """A run cannot start or continue because of its folder or its files (busy, not writable,
    a corrupt checkpoint); the message names the path and what to do."""


def check_out(out: str, name: str = "--out") -> str:
    """Check that ``out`` can be a run folder, without creating anything.

    Parameters
    ----------
    out : str
        The folder (it may not exist yet).
    name : str
        The option's name, quoted in the error.

    Returns
    -------
    str
        ``out`` as an absolute path.

    Raises
    ------
    RunError
        ``out`` names a file, or the closest existing folder above it is not writable.
    """
    path = os.path.abspath(os.fspath(out))
    if os.path.exists(path) and not os.path.isdir(path):
        raise RunError(f"{name} {out!r} is a file, expected a folder (new or existing)")
    probe = path
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        raise RunError(f"{name} {out!r}: {probe!r} is a file, expected a folder")
    try:  # a real write: os.access says yes to root where the file system says no
        with tempfile.TemporaryFile(prefix=".tmp-probe-", dir=probe):
            pass
    except OSError as exc:
        raise RunError(f"{name} {out!r}: cannot write in {probe!r} "
                       f"({exc.strerror or type(exc).__name__})") from None
    return path


def check_checkpoint(path: str, name: str = "--resume") -> dict[str, Any]:
    """Read the checkpoint ``path`` once and say what is wrong with it, if anything.

    Parameters
    ----------
    path : str
        The checkpoint file (:func:`ocp_learn.optim.checkpoint.save_checkpoint`).
    name : str
        The option that asked for it, quoted in the error.

    Returns
    -------
    dict
        The checkpoint's metadata (``method``, ``n_params``, ``nit``, ...).

    Raises
    ------
    RunError
        The file is missing, empty, truncated or not a checkpoint.
    """
    from ..optim.checkpoint import load_checkpoint

    if not os.path.exists(path):
        raise RunError(f"{name}: no checkpoint {path!r} to continue from (run without "
                       f"{name} to start)")
    if os.path.getsize(path) == 0:
        raise RunError(f"{name}: the checkpoint {path!r} is empty (a run was killed while "
                       "writing it?); delete it to start again")
    try:
        _, meta = load_checkpoint(path)
    except Exception as exc:  # zipfile, numpy, json and OS errors of a damaged file
        raise RunError(f"{name}: the checkpoint {path!r} is corrupt or truncated, not an "
                       f"ocp_learn checkpoint ({type(exc).__name__}); delete it to start "
                       "again") from exc
    if not isinstance(meta, dict) or "method" not in meta or "n_params" not in meta:
        raise RunError(f"{name}: {path!r} is not an ocp_learn checkpoint (no method or size "
                       "recorded)")
    return meta


def git_commit(folder: str | None = None) -> str | None:
    """The commit of the git checkout holding ``folder`` (default: this package), or None."""
    folder = folder or os.path.dirname(os.path.abspath(__file__))
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True,
                           text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    out = r.stdout.strip()
    return out if r.returncode == 0 and out else None


def run_info(hyperparameters: dict[str, Any] | None = None,
             command: list[str] | None = None) -> dict[str, Any]:
    """What a run was: package version, git commit, command line, hyperparameters.

    Parameters
    ----------
    hyperparameters : dict, optional
        Every setting of the run.
    command : list of str, optional
        The command line (``sys.argv`` of ``ocp-learn``); None for a library call.

    Returns
    -------
    dict
        ``package``, ``version``, ``git_commit`` (None outside a checkout), ``python``,
        ``numpy``, ``command``, ``hyperparameters``, ``started`` (UTC, ISO 8601).
    """
    from .. import __version__

    return {"package": "ocp_learn", "version": __version__, "git_commit": git_commit(),
            "python": sys.version.split()[0], "numpy": np.__version__,
            "command": None if command is None else [str(c) for c in command],
            "hyperparameters": dict(hyperparameters or {}),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def saved_files(out: str) -> list[str]:
    """The result files in ``out`` (no marker, lock or temporary file), sorted."""
    try:
        names = os.listdir(out)
    except OSError:
        return []
    return sorted(n for n in names if n not in (MARKER, "run.json") and not n.startswith("."))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OSError:
        return False
    return True


class RunFolder:
    """The output folder of one run (a context manager; see the module docstring).

    Parameters
    ----------
    out : str
        The folder (created if missing).
    info : dict, optional
        :func:`run_info` of the run: stored in ``run.json`` and under ``"run"`` in every
        metrics dict written with :meth:`write_json`.
    active : bool
        False: write nothing (a process of a parallel run that is not the writer).
    """

    def __init__(self, out: str, info: dict[str, Any] | None = None, *, active: bool = True):
        self.out = os.path.abspath(os.fspath(out))
        self.info = info
        self.active = bool(active)
        self.created = False
        self._outer: RunFolder | None = None
        self._started = 0.0
        self._previous: dict[str, str] = {}  # marker and run.json of an earlier run

    # --- entering and leaving ------------------------------------------------------------
    def __enter__(self) -> RunFolder:
        if not self.active:
            return self
        held = _HELD.get(self.out)
        if held is not None:  # nested in a run on the same folder: share its lock
            self._outer = held
            if self.info is not None and held.info is None:
                held.info = self.info
            return self
        if self.info is None:  # a part of a run in a folder above (``ocp-learn demo``)
            parent = next((f for p, f in _HELD.items()
                           if self.out.startswith(p.rstrip(os.sep) + os.sep)), None)
            self.info = None if parent is None else parent.info
        check_out(self.out)
        if not os.path.isdir(self.out):
            os.makedirs(self.out)
            self.created = True
        self._lock()
        _HELD[self.out] = self
        self._started = time.time()
        try:
            self._clean_stale()
            for name in (MARKER, "run.json"):
                with contextlib.suppress(OSError), open(self.path(name)) as fh:
                    self._previous[name] = fh.read()
            self._write_text(MARKER, f"run of process {os.getpid()} started "
                                     f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n")
            if self.info is not None:
                self.write_json("run.json", {**self.info, "status": "running"})
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.active or self._outer is not None:
            return
        try:
            if exc_type is None:
                if self.info is not None:
                    self.write_json("run.json", {**self.info, "status": "complete"})
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path(MARKER))  # the marker goes last
            elif not self._changed():  # nothing of this run was written: leave it as it was
                for name in (MARKER, "run.json"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.path(name))
                for name, text in self._previous.items():
                    self._write_text(name, text)
            else:
                why = "interrupted" if exc_type is KeyboardInterrupt else \
                    f"failed: {type(exc).__name__}: {str(exc).strip()[:300]}"
                with contextlib.suppress(OSError):
                    self._write_text(MARKER, f"run of process {os.getpid()} {why}\n")
                if self.info is not None:
                    with contextlib.suppress(OSError):
                        self.write_json("run.json", {**self.info, "status": "incomplete",
                                                     "message": why})
        finally:
            self._release()

    def _changed(self) -> bool:
        """Whether this run wrote a result file (one modified since it started)."""
        for name in saved_files(self.out):
            with contextlib.suppress(OSError):
                if os.path.getmtime(self.path(name)) >= self._started - 1e-3:
                    return True
        return False

    def _lock(self) -> None:
        lock = self.path(LOCK)
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    with open(lock) as fh:
                        pid_s, _, host = fh.read().strip().partition(" ")
                    pid = int(pid_s)
                except (OSError, ValueError):
                    pid, host = -1, ""
                if host and host != socket.gethostname():
                    raise RunError(f"--out {self.out!r} is in use by process {pid} on {host} "
                                   f"(lock file {lock}; delete it if no run is active)") from None
                if pid > 0 and _pid_alive(pid):
                    raise RunError(f"--out {self.out!r} is in use by a running process "
                                   f"(pid {pid}); wait for it or choose another --out") from None
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(lock)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(f"{os.getpid()} {socket.gethostname()}\n")
            return
        raise RunError(f"--out {self.out!r}: could not take the lock {lock}")

    def _release(self) -> None:
        _HELD.pop(self.out, None)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(LOCK))
        if self.created:
            with contextlib.suppress(OSError):
                os.rmdir(self.out)  # only if empty: a failed run leaves no empty folder

    def _clean_stale(self) -> None:
        for name in os.listdir(self.out):
            if name.startswith(_TMP_PREFIXES) and os.path.isfile(self.path(name)):
                with contextlib.suppress(OSError):
                    os.unlink(self.path(name))

    # --- writing ---------------------------------------------------------------------------
    def path(self, name: str) -> str:
        """The path of ``name`` in the folder."""
        return os.path.join(self.out, name)

    @contextlib.contextmanager
    def writing(self, name: str) -> Iterator[str]:
        """A temporary path (same extension) to write ``name`` to; moved into place on a
        clean exit of the ``with`` block, removed on an error."""
        os.makedirs(self.out, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix="-" + name, dir=self.out)
        os.close(fd)
        try:
            yield tmp
            os.chmod(tmp, 0o666 & ~_UMASK)  # the mode of a file created by open()
            os.replace(tmp, self.path(name))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _write_text(self, name: str, text: str) -> None:
        with self.writing(name) as tmp, open(tmp, "w") as fh:
            fh.write(text)

    def save_array(self, name: str, a: np.ndarray) -> None:
        """Write ``a`` to ``name`` (``numpy.save`` format), atomically."""
        if not self.active:
            return
        with self.writing(name) as tmp, open(tmp, "wb") as fh:
            np.save(fh, np.asarray(a))

    def write_json(self, name: str, obj: Any) -> None:
        """Write ``obj`` to ``name`` as JSON, atomically; a dict named ``metrics`` (any
        ``*metrics*.json``) gets the run's description under ``"run"``."""
        if not self.active:
            return
        info = self.info if self._outer is None else (self.info or self._outer.info)
        if isinstance(obj, dict) and "metrics" in name and info is not None:
            obj = {**obj, "run": info}
        with self.writing(name) as tmp, open(tmp, "w") as fh:
            json.dump(obj, fh, indent=2, default=_json_default)


def _json_default(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.integer,)):
        return int(v)
    return float(v)
