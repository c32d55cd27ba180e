"""Errors that reach the user as one line and exit code 2."""

from __future__ import annotations


class PersonasimInputError(Exception):
    """A bad config or data file.

    Parameters
    ----------
    source
        The file (or config) at fault, as the user named it.
    location
        The field, column or row at fault, e.g. ``campaigns.2.cost`` or ``row 17``.
    message
        What is wrong, in plain words.
    """

    def __init__(self, source: str, location: str | None, message: str) -> None:
        self.source = source
        self.location = location
        self.message = message
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """Return ``source: location: message`` on one line."""
        parts = [str(self.source)]
        if self.location:
            parts.append(str(self.location))
        parts.append(" ".join(str(self.message).split()))
        return ": ".join(parts)


class ConfigError(PersonasimInputError):
    """A config that does not validate."""


class DataError(PersonasimInputError):
    """A data file (recipients, campaigns, A/B results, events, graph) that does not validate."""
