"""How the runner reports progress: a protocol the CLI implements with rich."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

Advance = Callable[[int], None]
"""Report that ``n`` units of a stage are done (absolute count)."""


class Reporter(Protocol):
    """Receives stage starts, progress and warnings from a run."""

    def stage(self, title: str, total: int | None = None) -> AbstractContextManager[Advance]:
        """Enter a stage; the yielded callable reports progress out of ``total``."""
        ...

    def warn(self, message: str) -> None:
        """Show a warning the analyst must see (e.g. failed sampler diagnostics)."""
        ...


class SilentReporter:
    """A reporter that shows nothing (library use and tests)."""

    @contextmanager
    def stage(self, title: str, total: int | None = None) -> Iterator[Advance]:
        yield lambda done: None

    def warn(self, message: str) -> None:
        return None
