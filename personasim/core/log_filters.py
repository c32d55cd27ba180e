"""A logging filter on one logger for the length of a ``with`` block."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def filtered_logger(name: str, keep: Callable[[logging.LogRecord], bool]) -> Iterator[None]:
    """Pass logger ``name``'s records through ``keep`` (drop those it rejects) inside the block.

    ``keep`` may also rewrite a record (its level, say) before returning True.
    """
    target = logging.getLogger(name)
    target.addFilter(keep)
    try:
        yield
    finally:
        target.removeFilter(keep)


def below_error(record: logging.LogRecord) -> bool:
    """Keep records below ERROR."""
    return record.levelno < logging.ERROR


def warnings_to_info(record: logging.LogRecord) -> bool:
    """Demote WARNING records to INFO; keep every record."""
    if record.levelno == logging.WARNING:
        record.levelno, record.levelname = logging.INFO, "INFO"
    return True


def demoted_for(subject: str) -> Callable[[logging.LogRecord], bool]:
    """Like :func:`warnings_to_info`, and prefix every message with ``subject``.

    For fits whose health is not the run's (the further A/B waves): their sampler messages
    say which fit they are about and stay out of the warnings a user is shown.
    """

    def keep(record: logging.LogRecord) -> bool:
        warnings_to_info(record)
        record.msg = f"{subject}: {record.getMessage()}"
        record.args = ()
        return True

    return keep
