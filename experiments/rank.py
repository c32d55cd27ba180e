"""Apply a finished run to a new recipients file (``personasim rank``)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import yaml

from personasim.audience.membership import audience_from_recipients
from personasim.audience.profiles import PersonaProfiles
from personasim.bayes.storage import load_posterior
from personasim.config.campaign import Campaign
from personasim.config.schema import ExperimentConfig
from personasim.core import run_layout as files
from personasim.core.errors import DataError
from personasim.core.types import CAMPAIGN_ID, Posterior
from personasim.data.recipients import load_recipients
from personasim.outputs.writers import EXPORTERS, stream_table
from personasim.ranking.prioritization import SEND, SUPPRESS, empty_frame, prioritized_chunks

T = TypeVar("T")


def _read(run_dir: Path, run_file: files.RunFile, parse: Callable[[str], T]) -> T:
    """Parse one of a run's files; a damaged file is one DataError naming it."""
    path = run_file.path(run_dir)
    try:
        return parse(path.read_text(encoding="utf-8"))
    except (ValueError, TypeError, KeyError, AttributeError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(str(path), None, f"damaged run file, not what personasim wrote "
                        f"({reason})") from None


@dataclass(frozen=True)
class FinishedRun:
    """What scoring a new audience needs from a finished run, read and checked."""

    config: ExperimentConfig
    campaigns: list[Campaign]
    profiles: PersonaProfiles
    posterior: Posterior
    fmt: str


def read_finished_run(run_dir: Path, out_path: Path,
                      also: tuple[files.RunFile, ...] = ()) -> FinishedRun:
    """The run's config, campaigns, profiles and posterior; ``out_path``'s format.

    Raises
    ------
    DataError
        A file the command needs (``RANK_INPUTS`` and ``also``) is missing or damaged, or
        ``out_path`` ends in no known format.
    """
    for needed in (*files.RANK_INPUTS, *also):
        if not needed.path(run_dir).is_file():
            raise DataError(str(run_dir), needed.name,
                            "not a finished personasim run (file missing)")
    fmt = out_path.suffix.lstrip(".").lower()
    if fmt not in EXPORTERS:
        known = ", ".join("." + name for name in EXPORTERS)
        raise DataError(str(out_path), None, f"output must end in {known}")
    config = _read(run_dir, files.CONFIG, lambda text: ExperimentConfig.model_validate(
        yaml.safe_load(text)))
    campaigns = _read(run_dir, files.CAMPAIGNS, lambda text: [
        Campaign.model_validate(c) for c in yaml.safe_load(text)])
    profiles = _read(run_dir, files.PROFILES,
                     lambda text: PersonaProfiles.from_dict(json.loads(text)))
    return FinishedRun(config, campaigns, profiles, load_posterior(run_dir), fmt)


class _Decisions:
    """Collects each written row's campaign and action while the chunks stream past."""

    def __init__(self) -> None:
        self.campaigns: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []
        self.labels: list[str] = []

    def tap(self, chunks: Iterator[pa.Table]) -> Iterator[pa.Table]:
        """Yield ``chunks`` unchanged, keeping their campaign and action codes."""
        for chunk in chunks:
            campaign = chunk.column(CAMPAIGN_ID).combine_chunks()
            action = chunk.column("action").combine_chunks()
            self.labels = campaign.dictionary.to_pylist()
            self.campaigns.append(campaign.indices.to_numpy().astype(np.int16))
            self.actions.append(action.indices.to_numpy().astype(np.int8))
            yield chunk

    def frame(self) -> pd.DataFrame:
        """One row per written row: ``campaign_id`` and ``action``, categorical."""
        def joined(parts: list[np.ndarray], dtype: type) -> np.ndarray:
            return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

        return pd.DataFrame({
            CAMPAIGN_ID: pd.Categorical.from_codes(joined(self.campaigns, np.int16),
                                                   categories=self.labels),
            "action": pd.Categorical.from_codes(joined(self.actions, np.int8),
                                                categories=[SEND, SUPPRESS]),
        })


def rank_recipients(run_dir: Path, recipients_path: Path, out_path: Path) -> pd.DataFrame:
    """Rank campaigns for every recipient in ``recipients_path`` with a finished run.

    The output format follows ``out_path``'s suffix (``.csv`` or ``.parquet``); the file is
    written under a temporary name and renamed, so a failure leaves nothing behind. The table
    is scored and written a chunk of recipients at a time, so it never sits in memory whole.

    Returns
    -------
    pandas.DataFrame
        One row per written row, in file order, with its ``campaign_id`` and ``action``
        (categorical): what was decided, without the table itself (read ``out_path`` for it).
    """
    run = read_finished_run(run_dir, out_path)
    config = run.config
    recipients = load_recipients(recipients_path, max_levels=None)
    audience = audience_from_recipients(
        recipients, run.posterior.persona_ids, run.profiles,
        config.prioritization.membership_temperature, str(recipients_path),
    )
    posterior, campaigns, fmt = run.posterior, run.campaigns, run.fmt
    del recipients
    chunks = prioritized_chunks(audience, posterior, campaigns, config.prioritization)
    decisions = _Decisions()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(f".{out_path.stem}.partial-{os.getpid()}")
    try:
        written, _ = stream_table(decisions.tap(chunks), fmt, partial, empty_frame())
    except BaseException:
        for leftover in partial.parent.glob(partial.name + ".*"):
            leftover.unlink(missing_ok=True)
        raise
    os.replace(written, out_path)
    return decisions.frame()
