"""Third-party plug-ins, found through the ``personasim.plugins`` entry-point group.

A plug-in package declares, in its ``pyproject.toml``::

    [project.entry-points."personasim.plugins"]
    my_models = "my_package.personasim_plugin"

Each entry point names a module, or a callable (``"my_package.plugin:register"``), that
registers things in personasim's registries (``RESPONSE_MODELS.add(...)``,
``@POLICIES.register(...)``, ...) when it is imported, or when it is called. The entry
points are loaded once, lazily, the first time any
:class:`~personasim.core.registry.Registry` is read, so a config can name a plug-in's
registered names like built-in ones. A plug-in that fails to load is skipped with a one-line
warning naming its entry point.
"""

from __future__ import annotations

import logging
import threading
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType

logger = logging.getLogger(__name__)

GROUP = "personasim.plugins"
"""The entry-point group plug-ins are declared in."""

_lock = threading.RLock()
_loaded = False
_failed: list[str] = []


def load_plugins() -> list[str]:
    """Load every ``personasim.plugins`` entry point, once per process.

    The first call imports (and, for a callable, calls) each entry point; later calls return
    at once. A plug-in that raises is logged as a one-line warning and skipped.

    Returns
    -------
    list of str
        Names of the entry points that failed to load (so far, in this process).
    """
    global _loaded
    if _loaded:
        return list(_failed)
    with _lock:
        if _loaded:
            return list(_failed)
        # set first: a plug-in that reads a registry while loading must not recurse
        _loaded = True
        for entry in _entry_points():
            if not _load_one(entry):
                _failed.append(entry.name)
    return list(_failed)


def reset_plugins() -> None:
    """Forget that the plug-ins were loaded: the next registry read scans again (for tests).

    Registrations already made stay in their registries.
    """
    global _loaded
    with _lock:
        _loaded = False
        _failed.clear()


def plugins_loaded() -> bool:
    """Whether the entry points have been scanned in this process."""
    return _loaded


def _entry_points() -> list[EntryPoint]:
    """The group's entry points, sorted by name then value (a stable loading order)."""
    try:
        found = list(entry_points(group=GROUP))
    except Exception as exc:  # noqa: BLE001 - broken metadata must not stop a run
        logger.warning("personasim plug-ins: could not read entry points (%s)", _brief(exc))
        return []
    unique = {(e.name, e.value): e for e in found}  # a path listed twice finds a dist twice
    return [unique[key] for key in sorted(unique)]


def _load_one(entry: EntryPoint) -> bool:
    """Import (and call, when it is a callable) one entry point; ``False`` if that failed."""
    try:
        target = entry.load()
        if callable(target) and not isinstance(target, ModuleType):
            target()
    except Exception as exc:  # noqa: BLE001 - a broken plug-in is skipped, not fatal
        logger.warning("personasim plug-in %r (%s) failed to load, skipped: %s", entry.name,
                       entry.value, _brief(exc))
        return False
    logger.debug("loaded personasim plug-in %r (%s)", entry.name, entry.value)
    return True


def _brief(exc: BaseException) -> str:
    """``Type: first line of the message``: a warning stays on one line."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
