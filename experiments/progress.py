"""How the runner reports progress: a protocol the CLI implements with rich."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

Advance = Callable[[int], None]
"""Report that ``n`` units of a stage are done (absolute count)."""


class Reporter(Protocol):
    """Receives stage starts and progress from a run (warnings go through logging)."""

    def stage(self, title: str, total: int | None = None) -> AbstractContextManager[Advance]:
        """Enter a stage; the yielded callable reports progress out of ``total``."""
        ...


class SilentReporter:
    """A reporter that shows nothing (library use and tests)."""

    @contextmanager
    def stage(self, title: str, total: int | None = None) -> Iterator[Advance]:
        """Enter a stage silently."""
        yield lambda done: None
