"""Run directories: written under a temporary name and renamed into place only on success."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

from personasim.core.interrupts import ExitHandler

PACKAGES = (
    "personasim", "mesa", "gymnasium", "stable-baselines3", "torch", "pymc", "nutpie",
    "numpy", "pandas", "networkx", "scikit-learn", "pydantic",
)


class RunDirectory(ExitHandler):
    """A run folder that only appears, complete, when the run succeeds.

    Parameters
    ----------
    final
        Where the finished run should live.
    overwrite
        Replace an existing folder at ``final`` (only once the new run has succeeded).
    """

    def __init__(self, final: Path, overwrite: bool = False) -> None:
        self.final = final
        self.overwrite = overwrite
        self.partial = final.parent / f".{final.name}.partial-{os.getpid()}"

    def __enter__(self) -> Path:
        if self.final.exists() and not self.overwrite:
            raise FileExistsError(f"{self.final} already exists (use --overwrite to replace it)")
        if self.partial.exists():
            shutil.rmtree(self.partial)
        remove_stale_partials(self.final)
        self.partial.mkdir(parents=True)
        return self.partial

    def leave(self, exc_type: type[BaseException] | None, exc: BaseException | None) -> None:
        """Move the finished folder into place, or delete it if the run failed."""
        if exc_type is not None:
            shutil.rmtree(self.partial, ignore_errors=True)
            return
        if self.final.exists():
            shutil.rmtree(self.final)
        os.replace(self.partial, self.final)


def remove_stale_partials(final: Path) -> list[Path]:
    """Delete ``.NAME.partial-PID`` folders of ``final`` whose process no longer exists.

    A run killed outright (``kill -9``, a power cut) cannot clean up after itself; the next
    run heading for the same folder does. Folders of live processes are left alone.
    """
    removed = []
    for partial in Path(final).parent.glob(f".{Path(final).name}.partial-*"):
        pid = partial.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        shutil.rmtree(partial, ignore_errors=True)
        removed.append(partial)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


class StageTimer:
    """Wall time per named stage, for the manifest."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the enclosed block under ``name``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - start, 3)


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages a run depends on (``None`` if absent)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(start: Path) -> str | None:
    """The commit of the git checkout containing ``start``, if there is one."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=start, capture_output=True, text=True, timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


JSON_DECIMALS = 6
"""Decimals kept of every float in a run's JSON files (float noise says nothing)."""


def rounded(value: Any, decimals: int = JSON_DECIMALS) -> Any:
    """``value`` with every float inside it (dicts, lists, tuples) rounded to ``decimals``."""
    if isinstance(value, float):
        return round(value, decimals)
    if isinstance(value, dict):
        return {k: rounded(v, decimals) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, decimals) for v in value]
    return value


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented, key-sorted JSON, floats rounded to 6 decimals."""
    path.write_text(json.dumps(rounded(payload), indent=2, sort_keys=True, default=str) + "\n")


def command_line() -> list[str]:
    """The command line that started this process."""
    program = Path(sys.argv[0]).name
    if program in ("__main__.py", "cli.py"):
        program = "personasim"
    return [program, *sys.argv[1:]]
