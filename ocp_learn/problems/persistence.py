"""Save a trained problem and load it back for inference, without its training data.

:meth:`save <Persistable.save>` writes one ``.npz`` file: the parameters ``theta``, the
problem's settings (a JSON string, arrays beside it), a format version and the version of
ocp_learn that wrote it.  :func:`load` rebuilds the problem from its settings (nothing is
unpickled: the file is read with ``allow_pickle=False``) and returns it with ``theta``.

A loaded classifier or flow holds no samples (:meth:`ocp_learn.OCP.without_samples`): it
predicts, pushes new points forward, evaluates log-densities and samples.  A mean field
game draws its agents from ``rho_0`` again, as it did when it was built.

Settings are the constructor's arguments.  Numbers, strings, arrays, tuples and the
library's own building blocks (:class:`~ocp_learn.SingleLayerNet`, Gaussian mixtures,
obstacle and entropy costs, Tikhonov and time-smoothness regularizers, time
parameterizations) are described by their arguments; an object of another type (a model, a
density or a cost written by a user) cannot be, and :meth:`save <Persistable.save>` raises a
``TypeError`` naming it.
"""
from __future__ import annotations

import hashlib
import json
import os
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Callable, NamedTuple

import numpy as np

from ..controls import ConstantInTime, PiecewiseConstant, PiecewiseLinear
from ..costs import QuadraticState, Tikhonov, TimeSmoothness
from ..costs.interactions import EntropyCost, ObstacleCost
from ..datasets.densities import GaussianMixture
from ..models import SingleLayerNet

__all__ = ["FORMAT", "FORMAT_VERSION", "Persistable", "Loaded", "load", "register_problem"]

FORMAT = "ocp_learn.problem"
"""The ``format`` entry of a saved problem."""
FORMAT_VERSION = 1
"""Files of a later format version are refused (written by a newer ocp_learn)."""

_PROBLEMS: dict[str, type] = {}


def register_problem(kind: str) -> Callable[[type], type]:
    """Class decorator: the class saves itself under ``kind`` and :func:`load` rebuilds it
    with its ``from_settings(settings)`` class method."""
    def deco(cls: type) -> type:
        _PROBLEMS[kind] = cls
        cls.saved_kind = kind
        return cls
    return deco


def _package_version() -> str:
    try:
        return version("ocp_learn")
    except PackageNotFoundError:  # pragma: no cover - not installed
        return "0.0.0"


# --- building blocks described by their arguments ------------------------------------------
def _net_args(m: SingleLayerNet) -> dict:
    return {"dim": m.dim, "width": m.width, "init_scale": m.init_scale,
            "backend": m.backend.name}


def _mixture_args(r: GaussianMixture) -> dict:
    return {"means": r.means, "variances": r.variances, "weights": r.weights}


_BLOCKS: dict[str, tuple[type, Callable[[Any], dict]]] = {
    "SingleLayerNet": (SingleLayerNet, _net_args),
    "GaussianMixture": (GaussianMixture, _mixture_args),
    "ObstacleCost": (ObstacleCost, lambda c: {"scale": c.scale, "center": c.center,
                                              "var": c.var}),
    "EntropyCost": (EntropyCost, lambda c: {"lam": c.lam}),
    "Tikhonov": (Tikhonov, lambda r: {"alpha": r.alpha}),
    "TimeSmoothness": (TimeSmoothness, lambda r: {"alpha": r.alpha}),
    "QuadraticState": (QuadraticState, lambda c: {"Q": c.Q}),
    "ConstantInTime": (ConstantInTime, lambda p: {}),
    "PiecewiseConstant": (PiecewiseConstant, lambda p: {"n": p.n_nodes}),
    "PiecewiseLinear": (PiecewiseLinear, lambda p: {"n": p.n_nodes}),
}
_BY_TYPE = {cls: name for name, (cls, _) in _BLOCKS.items()}


def _describe(value: Any, where: str, arrays: dict[str, np.ndarray]) -> Any:
    """``value`` as JSON data; arrays go to ``arrays`` (keyed by ``where``)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError(f"cannot save the setting {where}: an array of Python objects")
        arrays[where] = value
        return {"__array__": where}
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return {"__dtype__": np.dtype(value).name}
    if isinstance(value, tuple):
        return {"__tuple__": [_describe(v, f"{where}[{i}]", arrays) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_describe(v, f"{where}[{i}]", arrays) for i, v in enumerate(value)]
    if isinstance(value, dict) and all(isinstance(k, str) and not k.startswith("__")
                                       for k in value):
        return {k: _describe(v, f"{where}.{k}", arrays) for k, v in value.items()}
    name = _BY_TYPE.get(type(value))
    if name is None:
        raise TypeError(
            f"cannot save the setting {where}: a {type(value).__name__} is not described by "
            f"settings (a problem saves the arguments it was built with; objects of the "
            f"library's own types {sorted(_BLOCKS)} are described by theirs). Save theta "
            f"yourself (numpy.save) and rebuild the problem with your {type(value).__name__}")
    return {"__object__": name, "args": _describe(_BLOCKS[name][1](value), where, arrays)}


def _rebuild(data: Any, arrays: Any) -> Any:
    """Inverse of :func:`_describe`."""
    if isinstance(data, list):
        return [_rebuild(v, arrays) for v in data]
    if not isinstance(data, dict):
        return data
    if "__array__" in data:
        return np.array(arrays["settings/" + data["__array__"]])
    if "__dtype__" in data:
        return np.dtype(data["__dtype__"])
    if "__tuple__" in data:
        return tuple(_rebuild(v, arrays) for v in data["__tuple__"])
    if "__object__" in data:
        if data["__object__"] not in _BLOCKS:
            raise ValueError(f"the file describes an unknown building block "
                             f"{data['__object__']!r}")
        return _BLOCKS[data["__object__"]][0](**_rebuild(data["args"], arrays))
    return {k: _rebuild(v, arrays) for k, v in data.items()}


def fingerprint_value(value: Any) -> Any:
    """A setting as fingerprint data: arrays by shape, dtype and SHA-256 of their bytes;
    objects settings cannot describe by their type's name."""
    if isinstance(value, np.ndarray):
        a = np.ascontiguousarray(value)
        return {"shape": list(a.shape), "dtype": a.dtype.name,
                "sha256": hashlib.sha256(a.tobytes()).hexdigest()}
    if isinstance(value, (list, tuple)):
        return [fingerprint_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): fingerprint_value(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return np.dtype(value).name
    name = _BY_TYPE.get(type(value))
    if name is not None:
        return {"object": name, "args": fingerprint_value(_BLOCKS[name][1](value))}
    return {"object": f"{type(value).__module__}.{type(value).__qualname__}"}


def _stable_repr(obj: Any) -> str:
    """``repr(obj)``, or its type's name when the repr holds a memory address."""
    text = repr(obj)
    return f"{type(obj).__module__}.{type(obj).__qualname__}" if " at 0x" in text else text


class Persistable:
    """Mixin of the problems that can be saved: :meth:`save`, and the settings they keep.

    A subclass records its constructor's arguments in ``self._settings`` (a dict) and
    provides the class method ``from_settings(settings)`` that builds the problem for
    inference; it is registered under a name with :func:`register_problem`.
    """

    saved_kind: str
    _settings: dict

    @property
    def settings(self) -> dict:
        """The arguments the problem was built with (what :meth:`save` writes)."""
        return dict(self._settings)

    def fingerprint(self) -> dict:
        """What identifies this problem in a checkpoint (JSON data).

        Returns
        -------
        dict
            ``kind`` and ``class``; ``settings`` (:attr:`settings`, arrays and data sets as
            shape, dtype and SHA-256); the sizes ``n_params``, ``state_dim``,
            ``n_samples``; the time grid (``T``, ``t0``, ``nt``), ``integrator``,
            ``strategy``, ``time_param`` and ``dtype``; ``samples``, the digest of the
            initial states (the data set), and :meth:`fingerprint_data`'s entries.
        """
        cls = type(self)
        out = {"kind": self.saved_kind, "class": f"{cls.__module__}.{cls.__qualname__}",
               "settings": fingerprint_value(self._settings), "n_params": int(self.n_params),
               "state_dim": int(self.x0.shape[1]), "n_samples": int(self.n_samples),
               "T": float(self.T), "t0": float(self.t0), "nt": int(self.nt),
               "integrator": self.integrator.name, "strategy": _stable_repr(self.strategy),
               "time_param": _stable_repr(self.time_param), "dtype": np.dtype(self.dtype).name,
               "samples": fingerprint_value(np.asarray(self.x0))}
        out.update(self.fingerprint_data())
        return out

    def fingerprint_data(self) -> dict:
        """Further data of the problem for :meth:`fingerprint` (labels of a classifier);
        none by default."""
        return {}

    def save(self, path: str | os.PathLike, theta: np.ndarray) -> None:
        """Write the problem's settings and ``theta`` to ``path`` (one ``.npz`` file).

        Parameters
        ----------
        path : str or path-like
            The file (written as given; ``.npz`` is the customary suffix).
        theta : ndarray, shape (n_params,)
            The parameters (e.g. ``result.x`` of a training run).

        Raises
        ------
        TypeError
            If a setting is an object that settings cannot describe (a user's own model,
            density or cost); the message names the setting.

        Notes
        -----
        The training samples are not written; :func:`load` rebuilds the problem without
        them.
        """
        theta = self.check_theta(theta)
        if _PROBLEMS.get(self.saved_kind) is not type(self):
            raise TypeError(f"cannot save a {type(self).__name__}: it is not registered with "
                            f"ocp_learn.problems.persistence.register_problem (a subclass of "
                            f"{_PROBLEMS[self.saved_kind].__name__} would load as its base "
                            f"class)")
        arrays: dict[str, np.ndarray] = {}
        settings = _describe(self._settings, "settings", arrays)
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION,
                "package_version": _package_version(), "kind": self.saved_kind,
                "settings": settings}
        payload = {"settings/" + k: v for k, v in arrays.items()}
        payload["theta"] = theta
        payload["meta"] = np.array(json.dumps(meta))
        with open(path, "wb") as fh:
            np.savez(fh, **payload)


class Loaded(NamedTuple):
    """What :func:`~ocp_learn.problems.persistence.load` returns.

    Parameters
    ----------
    problem : OCP
        The problem rebuilt from its settings, for inference.
    theta : ndarray
        The saved parameters.
    info : dict
        ``format``, ``format_version``, ``package_version`` (of the writer), ``kind``.
    """

    problem: Any
    theta: np.ndarray
    info: dict


def load(path: str | os.PathLike) -> Loaded:
    """Read a problem written by :meth:`Persistable.save`.

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    Loaded
        ``problem, theta, info = load(path)``.

    Raises
    ------
    ValueError
        If the file is not a saved problem, or was written in a later format version.
    """
    with np.load(path, allow_pickle=False) as data:
        if "meta" not in data.files or "theta" not in data.files:
            raise ValueError(f"path {os.fspath(path)!r} is not a problem saved by "
                             "ocp_learn (no 'meta' and 'theta' entries)")
        meta = json.loads(str(data["meta"]))
        if meta.get("format") != FORMAT:
            raise ValueError(f"path {os.fspath(path)!r} holds format {meta.get('format')!r}, "
                             f"expected {FORMAT!r}")
        if int(meta["format_version"]) > FORMAT_VERSION:
            raise ValueError(f"path {os.fspath(path)!r} was written in format version "
                             f"{meta['format_version']} by ocp_learn {meta['package_version']}; "
                             f"this ocp_learn reads versions up to {FORMAT_VERSION}")
        if meta["kind"] not in _PROBLEMS:
            raise ValueError(f"path {os.fspath(path)!r} holds a problem of unknown kind "
                             f"{meta['kind']!r}; known: {sorted(_PROBLEMS)}")
        settings = _rebuild(meta["settings"], data)
        theta = np.array(data["theta"], dtype=np.float64)
    problem = _PROBLEMS[meta["kind"]].from_settings(settings)
    info = {k: meta[k] for k in ("format", "format_version", "package_version", "kind")}
    return Loaded(problem, problem.check_theta(theta, "theta (saved)"), info)
