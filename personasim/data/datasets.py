"""Public datasets as data-mode inputs: the registry, the user cache and the held-out split.

Each dataset lives in its own module (:mod:`personasim.data.hillstrom`) and registers a loader
in :data:`DATASETS`; a config picks it with ``dataset.name``.
"""

from __future__ import annotations

import logging
import os
import shutil
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from personasim.config.campaign import Campaign
from personasim.config.sections import DatasetConfig
from personasim.core.errors import DataError
from personasim.core.registry import Registry

logger = logging.getLogger(__name__)

DATA_ENV = "PERSONASIM_DATA"
"""A local copy: a data folder holding each dataset's file (``hillstrom.csv``), like
``SCIKIT_LEARN_DATA``, or the path of one dataset's file."""
CACHE_ENV = "PERSONASIM_CACHE"


@dataclass(frozen=True)
class DatasetTables:
    """A dataset as data-mode tables.

    Attributes
    ----------
    recipients
        ``recipient_id, consent`` and the attribute columns (plus ``log_history``).
    campaigns
        The arms as campaigns; the no-e-mail arm is the control.
    ab_results
        ``recipient_id, campaign_id, outcome, value, propensity`` and the raw outcomes
        ``visit, conversion, spend`` (the training customers when some are held out).
    source
        Where the data came from (a path).
    holdout
        The held-out customers' A/B rows (same columns), or ``None``.
    """

    recipients: pd.DataFrame
    campaigns: list[Campaign]
    ab_results: pd.DataFrame
    source: str
    holdout: pd.DataFrame | None = None


DatasetLoader = Callable[[DatasetConfig, int], DatasetTables]
"""``(dataset config, seed) -> tables``; the seed draws the optional sample."""

DATASETS: Registry[DatasetLoader] = Registry("dataset")


def cache_dir() -> Path:
    """The user cache folder: ``$PERSONASIM_CACHE``, else platformdirs', else ~/.cache."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    try:
        from platformdirs import user_cache_dir
    except ImportError:
        return Path.home() / ".cache" / "personasim"
    return Path(user_cache_dir("personasim", appauthor=False))


def local_copy(path: str | Path, file_name: str, named: str) -> Path:
    """The dataset file at ``path``: the file itself, or ``file_name`` in a data folder.

    Parameters
    ----------
    path
        A file, or a folder holding ``file_name``.
    file_name
        The dataset's file name in a data folder (e.g. ``hillstrom.csv``).
    named
        Where ``path`` came from, for the message (``dataset.path``, ``$PERSONASIM_DATA``).

    Raises
    ------
    DataError
        Neither the file nor a folder holding ``file_name``.
    """
    local = Path(path).expanduser()
    if local.is_dir():
        inside = local / file_name
        if not inside.is_file():
            raise DataError(str(local), None, f"no {file_name} in this folder (from {named})")
        return inside
    if not local.is_file():
        raise DataError(str(local), None, f"file not found (from {named})")
    return local


def download(url: str, dest: Path, timeout: float = 60.0) -> Path:
    """Fetch ``url`` into ``dest`` atomically (a partial download never looks complete).

    Raises
    ------
    DataError
        If the download fails; the message says how to point at a local copy.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.part-{os.getpid()}")
    logger.info("downloading %s to %s", url, dest)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, partial.open("wb") as f:
            shutil.copyfileobj(response, f)
    except (OSError, ValueError) as exc:
        partial.unlink(missing_ok=True)
        raise DataError(url, None, f"download failed ({exc}); set {DATA_ENV} or dataset.path "
                        "to a local copy") from None
    os.replace(partial, dest)
    return dest


def split_customers(arms: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A seeded split, stratified by arm: True for the customers held out.

    Parameters
    ----------
    arms
        Each customer's arm (any labels).
    fraction
        Share of each arm held out (rounded to whole customers).
    seed
        Seed of the split.
    """
    arms = np.asarray(arms)
    held = np.zeros(len(arms), dtype=bool)
    if fraction <= 0:
        return held
    rng = np.random.default_rng(seed)
    for arm in sorted(set(arms.tolist())):
        rows = np.flatnonzero(arms == arm)
        held[rng.permutation(rows)[: int(round(fraction * len(rows)))]] = True
    return held


# The built-in datasets register themselves on import.
from personasim.data import hillstrom as _hillstrom  # noqa: E402, F401
