"""Communicators: MPI's ``COMM_WORLD`` when launched by ``mpiexec``/``srun``, else a serial stand-in.

The Lagrangian view integrates every sample (agent) independently (MATH B1,
E1: "several agents in parallel without the need to communicate"), so a
data-parallel run only needs a handful of collective operations.
:class:`SerialComm` implements exactly the subset of mpi4py's ``Comm`` that
:mod:`ocp_learn.distributed` uses, for one process, so that serial execution
is the default and needs no MPI installation.
"""
from __future__ import annotations

import os

import numpy as np

__all__ = ["SerialComm", "auto_comm", "mpi_launched", "launch_size", "is_root", "COMM_METHODS",
           "local_rank", "bind_device"]

#: The methods of an mpi4py communicator that the distributed wrapper calls.
COMM_METHODS = ("Get_rank", "Get_size", "bcast", "Bcast", "gather", "Gather", "Barrier")

# Variables set for every rank by MPI launchers: MPICH/Hydra and Slurm's PMI-2
# (PMI_*), PMIx (Open MPI >= 5, Slurm --mpi=pmix), Open MPI, MVAPICH.
_RANK_VARS = ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "MPI_LOCALNRANKS")


class SerialComm:
    """One-process communicator with mpi4py's method names (rank 0 of size 1).

    Collectives are identities: ``bcast`` returns its object, ``gather``
    a one-element list, ``Gather`` copies the send buffer into row 0 of the
    receive buffer.
    """

    rank = 0
    size = 1

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 1

    def bcast(self, obj, root=0):
        return obj

    def Bcast(self, buf, root=0):
        return None

    def gather(self, obj, root=0):
        return [obj]

    def allgather(self, obj):
        return [obj]

    def Gather(self, sendbuf, recvbuf, root=0):
        recv = np.asarray(recvbuf)
        recv.reshape(-1)[:np.size(sendbuf)] = np.asarray(sendbuf).reshape(-1)

    def Barrier(self):
        return None

    def __repr__(self):
        return "SerialComm(rank=0, size=1)"


def launch_size():
    """Number of ranks the launcher announced in the environment.

    Returns
    -------
    int or None
        The number of ranks, or None when no MPI launcher started this process.
    """
    for var in _SIZE_VARS:
        v = os.environ.get(var)
        if v is not None and v.strip().isdigit():
            return int(v)
    if any(var in os.environ for var in _RANK_VARS):
        return 1
    return None


def mpi_launched():
    """True when this process was started by an MPI launcher (``mpiexec``, ``srun``).

    The environment variable ``OCP_LEARN_MPI`` overrides the detection:
    ``"1"`` forces MPI, ``"0"`` forces serial execution.

    Returns
    -------
    bool
        Whether to run under MPI.
    """
    force = os.environ.get("OCP_LEARN_MPI", "").strip()
    if force in ("0", "1"):
        return force == "1"
    return launch_size() is not None


def auto_comm():
    """``mpi4py.MPI.COMM_WORLD`` under an MPI launcher, else :class:`SerialComm`.

    mpi4py is imported only when the process was launched by ``mpiexec`` or
    ``srun`` (see :func:`mpi_launched`), so serial runs never initialize MPI
    and need no MPI installed.

    Returns
    -------
    mpi4py.MPI.Comm or SerialComm
        The communicator of all ranks.

    Raises
    ------
    ImportError
        Launched on more than one rank but mpi4py is missing (every rank
        would otherwise silently repeat the whole serial computation).
    """
    if not mpi_launched():
        return SerialComm()
    try:
        from mpi4py import MPI
    except ImportError as exc:
        size = launch_size()
        if size is not None and size > 1:
            raise ImportError(f"this process was launched on {size} MPI ranks but mpi4py is not "
                              "installed: pip install -e \".[mpi]\" (mpi4py and the MPICH wheels "
                              "from PyPI)") from exc
        return SerialComm()
    return MPI.COMM_WORLD


def is_root(comm=None, root=0):
    """True on the rank that writes files and prints.

    Parameters
    ----------
    comm : mpi4py communicator or SerialComm, optional
        The communicator (default: :func:`auto_comm`).
    root : int, optional
        The rank that writes and prints.

    Returns
    -------
    bool
        Whether this process is rank ``root``.
    """
    comm = auto_comm() if comm is None else comm
    return comm.Get_rank() == root


def check_comm(comm):
    """Return ``comm`` if it has the mpi4py methods the wrapper uses, else raise TypeError."""
    missing = [m for m in COMM_METHODS if not hasattr(comm, m)]
    if missing:
        raise TypeError(f"comm must be an mpi4py communicator or SerialComm (missing {missing}), "
                        f"got {type(comm).__name__}")
    return comm


#: variables holding a process's rank among the ranks of its own node (MPICH/Hydra, Open MPI,
#: MVAPICH, Slurm)
_LOCAL_RANK_VARS = ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "MV2_COMM_WORLD_LOCAL_RANK",
                    "SLURM_LOCALID")


def local_rank(comm=None) -> int:
    """The rank of this process among the ranks on its node.

    The launcher's local-rank variable where one is set, else the rank in ``comm``.

    Parameters
    ----------
    comm : mpi4py communicator or SerialComm, optional
        The communicator (:func:`auto_comm` by default).

    Returns
    -------
    int
        The local rank.
    """
    for var in _LOCAL_RANK_VARS:
        v = os.environ.get(var)
        if v is not None and v.strip().isdigit():
            return int(v)
    return (auto_comm() if comm is None else comm).Get_rank()


def bind_device(comm=None, count=None):
    """Give each rank its own CUDA device: the local rank modulo the node's device count.

    Call it once per process before any device array is made (the commands do with
    ``--backend cupy``); ranks beyond the device count share devices round robin.

    Parameters
    ----------
    comm : mpi4py communicator or SerialComm, optional
        Used for the rank when the launcher sets no local-rank variable.
    count : int, optional
        Devices of the node (default: CuPy's device count).

    Returns
    -------
    int or None
        The device made current, or ``None`` without CuPy or without a device.
    """
    try:
        import cupy
    except ImportError:
        return None
    if count is None:
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception:  # no driver: nothing to bind
            return None
    if count < 1:
        return None
    device = local_rank(comm) % count
    cupy.cuda.Device(device).use()
    return device
