"""A registry of named methods (despeckling, fusion): a dict with a checked ``register`` and a ``method``
lookup whose error lists the choices."""

from __future__ import annotations

from typing import Generic, TypeVar

from geodiff.errors import InvalidSettingError, UnknownMethodError

__all__ = ["Registry"]

M = TypeVar("M")


class Registry(dict[str, M], Generic[M]):
    """Methods by name (a plain ``dict`` otherwise); each method has ``name`` and ``kind`` attributes.

    ``what`` names the methods in messages ("despeckling method"); ``kinds`` are the allowed kinds.
    """

    def __init__(self, what: str, kinds: tuple[str, ...]) -> None:
        super().__init__()
        self.what, self.kinds = what, kinds

    def register(self, method: M) -> None:
        """Add (or replace) ``method`` under ``method.name``.

        Raises:
            InvalidSettingError (a ValueError): ``method.kind`` is not one of the registry's kinds.
        """
        if method.kind not in self.kinds:
            kinds = " or ".join(repr(k) for k in self.kinds)
            raise InvalidSettingError(f"{self.what} kind must be {kinds}, got {method.kind!r}")
        self[method.name] = method

    def method(self, name: str) -> M:
        """The method registered as ``name``.

        Raises:
            UnknownMethodError (a ValueError): no such method (the message lists the choices).
        """
        if name not in self:
            raise UnknownMethodError(f"unknown {self.what} {name!r}; choose one of {', '.join(sorted(self))}")
        return self[name]
