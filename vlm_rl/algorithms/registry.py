"""A tiny name -> object registry used for every pluggable piece of algorithm math.

Each kind of function (advantage estimator, policy loss, KL estimator, loss aggregation)
owns one :class:`Registry` and one ``StrEnum`` listing its built-in names. Lookups accept the
enum member or its plain string value, so config files can hold ordinary strings.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Generic, TypeVar

T = TypeVar("T")


def _key(name: str | Enum) -> str:
    """Return the plain string key for an enum member or a string."""
    if isinstance(name, Enum):
        name = name.value
    if not isinstance(name, str):
        raise TypeError(f"registry names must be str or str-valued Enum, got {type(name).__name__}")
    return name


class Registry(Generic[T]):
    """Maps names to objects of one kind; refuses duplicate names.

    Args:
        kind: a human-readable label used in error messages, e.g. ``"advantage estimator"``.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str | Enum) -> Callable[[T], T]:
        """Decorator that registers the decorated object under ``name``.

        Raises:
            ValueError: if ``name`` is already registered for this kind.
        """
        key = _key(name)

        def decorator(obj: T) -> T:
            if key in self._entries:
                raise ValueError(f"{self.kind} {key!r} is already registered")
            self._entries[key] = obj
            return obj

        return decorator

    def get(self, name: str | Enum) -> T:
        """Return the object registered under ``name``.

        Raises:
            KeyError: if the name is unknown; the message lists the available names.
        """
        key = _key(name)
        try:
            return self._entries[key]
        except KeyError:
            available = ", ".join(self.names()) or "<none>"
            raise KeyError(f"unknown {self.kind} {key!r}; available: {available}") from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, (str, Enum)):
            return False
        try:
            return _key(name) in self._entries
        except TypeError:
            return False

    def __repr__(self) -> str:
        return f"Registry(kind={self.kind!r}, names={self.names()})"
