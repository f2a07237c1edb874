"""A registry of backends by name: one per model family (:mod:`.potential_backend`,
:mod:`.mlp_backend`).  A backend is added with one registration line."""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["BackendRegistry"]


class BackendRegistry:
    """Names mapped to backend factories, checked against a protocol when built.

    Parameters
    ----------
    model : str
        The model family, quoted in error messages.
    protocol : type
        A ``runtime_checkable`` :class:`typing.Protocol` every backend must follow.
    entries : dict
        ``name -> factory``, or ``name -> "package.module:attribute"`` naming a factory
        imported on first use (so that optional libraries load only when asked for).
    """

    def __init__(self, model: str, protocol: type, entries: dict[str, Any]) -> None:
        self.model = model
        self.protocol = protocol
        self._entries: dict[str, Callable[..., Any] | str] = {}
        for name, factory in entries.items():
            self.register(name, factory)

    def register(self, name: str, factory: Callable[..., Any] | str) -> None:
        """Make ``name`` build its backend with ``factory`` (called with the model's options
        as keywords; a factory takes those it uses and the rest through ``**options``)."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty str, got {name!r}")
        if not (callable(factory) or (isinstance(factory, str) and ":" in factory)):
            raise TypeError("factory must be callable or a 'module:attribute' string, "
                            f"got {factory!r}")
        self._entries[name] = factory

    def names(self) -> list[str]:
        """The registered names."""
        return list(self._entries)

    def create(self, name: str, **options: Any) -> Any:
        """The backend registered as ``name``, built with ``options``."""
        if name not in self._entries:
            raise ValueError(f"backend must be one of {sorted(self._entries)} for {self.model}, "
                             f"got {name!r}")
        factory = self._entries[name]
        if isinstance(factory, str):
            module, attr = factory.split(":")
            factory = getattr(importlib.import_module(module), attr)
        backend = factory(**options)
        if not isinstance(backend, self.protocol):
            raise TypeError(f"the factory of backend {name!r} returned {type(backend).__name__}, "
                            f"which does not follow the {self.protocol.__name__} protocol")
        return backend
