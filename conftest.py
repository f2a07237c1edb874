"""Repository-level pytest configuration.

``python -m pytest --doctest-modules ocp_learn`` runs the docstring examples of the package.
Modules that need CuPy with a CUDA device, or mpi4py, are not collected where those are
missing, so the run passes on a CPU-only machine without MPI.
"""
import importlib
import importlib.util
import os
from functools import cache
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

PACKAGE_DIR = Path(__file__).resolve().parent / "ocp_learn"


@cache
def _cupy_usable() -> bool:
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        return bool(importlib.import_module("cupy").cuda.is_available())
    except Exception:  # a broken CUDA install counts as no device
        return False


@cache
def _mpi4py_installed() -> bool:
    return importlib.util.find_spec("mpi4py") is not None


GPU_WORDS = frozenset({"cupy", "cuda", "gpu"})
MPI_WORDS = frozenset({"mpi", "mpi4py"})


def needs_missing_extra(name: str) -> bool:
    """True when the module or package ``name`` needs CuPy/CUDA or mpi4py and it is missing.

    ``name`` is a file or directory name (``potential_cupy.py``) or a dotted module name; the
    words of its last part, split at underscores, decide (``cupy``, ``cuda``, ``gpu``;
    ``mpi``, ``mpi4py``).
    """
    last = name.removesuffix(".py").rsplit(".", 1)[-1].lower()
    words = set(last.split("_"))
    if words & GPU_WORDS and not _cupy_usable():
        return True
    return bool(words & MPI_WORDS) and not _mpi4py_installed()


def pytest_ignore_collect(collection_path, config):
    """Skip package modules (and subpackages) whose optional extra (GPU, MPI) is missing."""
    path = Path(collection_path).resolve()
    if PACKAGE_DIR not in path.parents:
        return None
    if (path.is_dir() or path.suffix == ".py") and needs_missing_extra(path.name):
        return True
    return None
