"""Flat float64 parameter vectors with named views.

Optimizers see one vector ``theta``; models and costs see named blocks.  A
:class:`ParamLayout` records the blocks' names, shapes and offsets and unpacks
``theta`` into *views* (no copies), so writing into a view writes into
``theta``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

import numpy as np

from .arrays import concat, namespace

__all__ = ["ParamLayout"]


@dataclass
class ParamLayout:
    """Ordered named blocks of a flat parameter vector.

    Parameters
    ----------
    blocks : list of (str, tuple of int)
        Name and shape of every block, in the order of the vector.

    Examples
    --------
    >>> lay = ParamLayout([("K", (3, 2)), ("b", (3,))])
    >>> theta = np.arange(lay.size, dtype=float)
    >>> lay.unpack(theta)["K"].shape
    (3, 2)
    """

    blocks: list = field(default_factory=list)

    def __post_init__(self):
        self.blocks = [(str(n), tuple(int(s) for s in shp)) for n, shp in self.blocks]
        names = [n for n, _ in self.blocks]
        if len(set(names)) != len(names):
            raise ValueError(f"blocks must have unique names, got {names}")
        self.offsets = {}
        off = 0
        for n, shp in self.blocks:
            self.offsets[n] = (off, off + prod(shp), shp)
            off += prod(shp)
        self.size = off

    @property
    def names(self):
        return [n for n, _ in self.blocks]

    def slice(self, name):
        """The ``slice`` of ``theta`` that holds block ``name``.

        Parameters
        ----------
        name : str
            The block.

        Returns
        -------
        slice
            Its entries in the vector.
        """
        a, b, _ = self.offsets[name]
        return slice(a, b)

    def unpack(self, theta):
        """Named views of ``theta`` (last axis of length ``size``).

        Leading axes of ``theta`` are kept: a ``(k, size)`` array unpacks into
        ``(k, *shape)`` views, which is how time-dependent parameters are laid out.

        Parameters
        ----------
        theta : array, shape (..., size)
            The parameters.

        Returns
        -------
        dict
            Block name -> view of ``theta``.
        """
        xp = np if type(theta) is np.ndarray or not hasattr(theta, "shape") else namespace(theta)
        if xp is np:
            theta = np.asarray(theta)
        if theta.shape[-1] != self.size:
            raise ValueError(f"theta must have last dimension {self.size}, got shape "
                             f"{tuple(theta.shape)}")
        lead = tuple(theta.shape[:-1])
        if xp is np:
            return {n: theta[..., a:b].reshape(lead + shp) for n, (a, b, shp) in self.offsets.items()}
        return {n: xp.reshape(theta[..., a:b], lead + shp) for n, (a, b, shp) in self.offsets.items()}

    def pack(self, values, out=None):
        """Inverse of :meth:`unpack` for a 1-D vector: a dict of arrays -> ``theta``.

        Parameters
        ----------
        values : dict
            Block name -> array of the block's shape.
        out : ndarray, shape (size,), optional
            The vector to fill (a new one by default).

        Returns
        -------
        ndarray, shape (size,)
            The parameters.
        """
        if out is None:
            xp = namespace(*values.values())
            if xp is not np:  # device arrays: one concatenation in their namespace
                return concat([xp.reshape(values[n], (-1,)) for n in self.offsets])
            out = np.zeros(self.size)
        for n, (a, b, _) in self.offsets.items():
            out[a:b] = np.asarray(values[n], dtype=out.dtype).reshape(-1)
        return out
