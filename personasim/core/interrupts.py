"""Stop requests: SIGINT and SIGTERM become "finish the current step, save, exit".

A long run installs :class:`GracefulInterrupt` for its duration. The first SIGINT (Ctrl-C) or
SIGTERM only sets a flag; code that can stop cleanly (the training checkpoint callback, stage
boundaries) polls :meth:`StopFlag.check` and raises :class:`RunInterrupted` after saving. A
second signal raises ``KeyboardInterrupt`` at once, for a user who does not want to wait.
Either one is an *interruption* (:func:`is_interruption`), which context managers such as the
run folder treat differently from an error.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType, TracebackType
from typing import Any

logger = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""The signals that request a clean stop."""


class RunInterrupted(Exception):
    """A run stopped at a safe point because a stop was requested.

    Attributes
    ----------
    signum
        The signal that asked for the stop (``signal.SIGINT`` when none is known).
    where
        What was running when the stop happened (for the message).
    """

    def __init__(self, signum: int = signal.SIGINT, where: str = "") -> None:
        self.signum = int(signum)
        self.where = where
        name = signal.Signals(self.signum).name if self.signum in _SIGNUMS else str(signum)
        super().__init__(f"stopped by {name}" + (f" during {where}" if where else ""))

    @property
    def exit_code(self) -> int:
        """The shell convention for death by a signal: ``128 + signum`` (130, 143)."""
        return 128 + self.signum


_SIGNUMS = {int(s) for s in signal.Signals}


def is_interruption(exc_type: type[BaseException] | None) -> bool:
    """True when ``exc_type`` is a stop request: :class:`RunInterrupted` or ``KeyboardInterrupt``.

    ``None`` (no exception) and any other exception class are not.
    """
    return exc_type is not None and issubclass(exc_type, RunInterrupted | KeyboardInterrupt)


class ExitHandler:
    """Base of context managers that act on how their block ended.

    ``__exit__`` passes the exception class and instance (both ``None`` when the block
    succeeded) to :meth:`leave`, and never suppresses the exception.
    """

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.leave(exc_type, exc)

    def leave(self, exc_type: type[BaseException] | None, exc: BaseException | None) -> None:
        """Clean up after the block; ``exc_type`` is ``None`` when it succeeded."""


class StopFlag:
    """A stop request that code can poll; set by a signal handler or by hand (tests)."""

    def __init__(self) -> None:
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        """True once a stop was requested."""
        return self.signum is not None

    def request(self, signum: int = signal.SIGINT) -> None:
        """Ask running code to stop at its next safe point."""
        if self.signum is None:
            self.signum = int(signum)

    def check(self, where: str = "") -> None:
        """Raise :class:`RunInterrupted` if a stop was requested."""
        if self.signum is not None:
            raise RunInterrupted(self.signum, where)


_ACTIVE: list[StopFlag] = []
"""The stop flags of the :class:`GracefulInterrupt` contexts now open, innermost last."""


def active_stop() -> StopFlag | None:
    """The stop flag of the innermost open :class:`GracefulInterrupt`, if any.

    For code deep inside a stage (a sampler's per-draw callback) that has no flag passed to
    it but must still stop promptly.
    """
    return _ACTIVE[-1] if _ACTIVE else None


class GracefulInterrupt(ExitHandler):
    """Route SIGINT/SIGTERM to a :class:`StopFlag` while the context is active.

    Handlers can only be installed from the main thread; elsewhere the context does nothing
    (the flag can still be set by hand). The previous handlers are restored on exit.

    Parameters
    ----------
    flag
        The flag to set (a new one by default).
    """

    def __init__(self, flag: StopFlag | None = None) -> None:
        self.flag = flag or StopFlag()
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.flag.requested:
            logger.warning("second stop signal: aborting now")
            raise KeyboardInterrupt
        self.flag.request(signum)
        logger.warning("%s received: saving progress and stopping at the next safe point "
                       "(send it again to abort at once)", signal.Signals(signum).name)

    def __enter__(self) -> StopFlag:
        _ACTIVE.append(self.flag)
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        else:
            logger.debug("not the main thread: stop signals keep their handlers")
        return self.flag

    def leave(self, exc_type: type[BaseException] | None, exc: BaseException | None) -> None:
        """Restore the signal handlers in place before the context."""
        if self.flag in _ACTIVE:
            _ACTIVE.remove(self.flag)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
