"""Name-to-plugin registries, in the spirit of SB3's ``policy_aliases``.

Configs pick plugins by registered name; an unknown name lists the known ones. Reading a
registry (``get``, ``names``, ``in``, iteration) first loads the third-party plug-ins declared
in the ``personasim.plugins`` entry-point group (once per process, see
:mod:`personasim.core.plugins`), so their registrations are there to be found.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from personasim.core.plugins import load_plugins
from personasim.core.suggest import did_you_mean

T = TypeVar("T")


class UnknownNameError(KeyError):
    """A name that is not registered."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


class Registry(Generic[T]):
    """A named collection of plugins of one kind.

    Parameters
    ----------
    kind
        What the registry holds, used in error messages (e.g. ``"response model"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Return a decorator that registers its target under ``name``."""

        def decorator(item: T) -> T:
            self.add(name, item)
            return item

        return decorator

    def add(self, name: str, item: T) -> None:
        """Register ``item`` under ``name``; a name can be registered once."""
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item

    def get(self, name: str) -> T:
        """Return the plugin registered as ``name``.

        Raises
        ------
        UnknownNameError
            If ``name`` is unknown; the message lists the known names.
        """
        load_plugins()
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        """Explain that ``name`` is unknown, with a suggestion when one is close."""
        load_plugins()
        hint = did_you_mean(name, self._items)
        return f"unknown {self.kind} {name!r}{hint}; known: {', '.join(sorted(self._items))}"

    def names(self) -> list[str]:
        """Return the registered names, sorted."""
        load_plugins()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        load_plugins()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
