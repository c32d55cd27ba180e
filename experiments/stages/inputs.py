"""Load and check everything a run reads, before anything is run (also ``validate``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from personasim.audience.membership import persona_profiles
from personasim.audience.profiles import PersonaProfiles
from personasim.audience.synthesis import synthesize_personas
from personasim.config.campaign import Campaign
from personasim.config.persona import Persona, cohort_sizes
from personasim.config.schema import ExperimentConfig
from personasim.config.sections import EventConfig
from personasim.core.errors import ConfigError, DataError
from personasim.core.types import CONSENT, PERSONA_ID, RECIPIENT_ID
from personasim.data.ab_results import load_ab_counts, load_ab_results
from personasim.data.campaigns import load_campaigns
from personasim.data.events import load_events
from personasim.data.recipients import check_channel_consent, load_recipients
from personasim.experiments.preflight import preflight
from personasim.experiments.progress import Advance
from personasim.experiments.seeds import stage_seed
from personasim.experiments.stage import RunContext, Stage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Inputs:
    """Everything a run starts from.

    Attributes
    ----------
    personas
        Hand-written or synthesized personas (with cohort sizes in data mode).
    campaigns
        Campaigns in action order (config campaigns, or the campaigns file).
    events
        The events calendar (config events, then the CSV feed's).
    recipients
        Data-mode recipients with a ``persona_id`` column, or ``None``.
    ab_table
        Validated per-recipient A/B rows from a file, or ``None``.
    profiles
        Persona profiles for soft membership of any recipients file.
    holdout
        Held-out customers' A/B rows (with ``persona_id``) for offline evaluation, or
        ``None`` (set when a ``dataset`` holds customers out).
    ab_counts
        Validated aggregated A/B counts (``segment, campaign_id, exposures, responses``,
        segments are persona ids) from ``data.ab_counts``, or ``None``.
    """

    personas: list[Persona]
    campaigns: list[Campaign]
    events: list[EventConfig]
    recipients: pd.DataFrame | None
    ab_table: pd.DataFrame | None
    profiles: PersonaProfiles
    holdout: pd.DataFrame | None = None
    ab_counts: pd.DataFrame | None = None


def load_inputs(config: ExperimentConfig, source: str, seed: int) -> Inputs:
    """Read and validate the config's data files and build the personas.

    Parameters
    ----------
    config
        A validated config with absolute data paths.
    source
        The config file, for error messages.
    seed
        Seed for persona synthesis.

    Raises
    ------
    ConfigError, DataError
        One line naming the file and the field or row at fault.
    """
    preflight(config, source)  # plug-in names, memory and graph-file ids, before allocating
    data = config.data
    campaigns = load_campaigns(data.campaigns) if data.campaigns else list(config.campaigns)
    if data.campaigns and config.campaigns:
        raise ConfigError(source, "campaigns", "give campaigns in the config or data.campaigns, "
                          "not both")
    events = list(config.dynamics.events)
    if config.dynamics.events_file is not None:
        events += load_events(config.dynamics.events_file)
    _check_event_personas(events, config, source)
    if config.dataset is not None:
        from personasim.experiments.stages.dataset import load_dataset_inputs

        return load_dataset_inputs(config, source, seed, events)

    recipients = (load_recipients(data.recipients, data.max_levels) if data.recipients
                  else None)
    if recipients is not None:
        check_channel_consent(recipients, campaigns, str(data.recipients))
    ab_table = None
    if data.ab_results is not None:
        known = set(recipients[RECIPIENT_ID]) if recipients is not None else None
        ab_table = load_ab_results(data.ab_results, {c.id for c in campaigns}, known)
    if config.ab_test.source == "file" and ab_table is None and data.ab_counts is None:
        raise ConfigError(source, "ab_test.source",
                          "is 'file' but neither data.ab_results nor data.ab_counts is given")
    if data.ab_counts is not None and (ab_table is not None or not config.personas):
        raise ConfigError(source, "data.ab_counts", "needs personas listed in the config (its "
                          "segments are persona ids) and no data.ab_results beside it")

    if recipients is None:
        personas = list(config.personas)
        return _with_counts(config, Inputs(personas, campaigns, events, None, ab_table,
                                           persona_profiles(personas)))
    if config.personas:
        personas, recipients = _assign_given_personas(config, recipients, str(data.recipients))
        labels = recipients[PERSONA_ID].map({p.id: i for i, p in enumerate(personas)})
        with _about(str(data.recipients), "cannot profile the personas"):
            profiles = PersonaProfiles.fit(
                recipients, labels.to_numpy(np.int64), [p.id for p in personas],
                config.synthesis.features,
            )
        return _with_counts(config, Inputs(personas, campaigns, events, recipients, ab_table,
                                           profiles))
    if recipients.columns.difference([RECIPIENT_ID, CONSENT]).empty:
        raise DataError(str(data.recipients), None, "no attribute columns besides "
                        "recipient_id and consent: personas are synthesized from recipients' "
                        "attributes (add columns such as age or region, or list personas)")
    # With privacy on, raw A/B outcomes must not shape the personas: their traits come from
    # the defaults, and only the noised aggregates reach the posterior that calibrates them.
    private = config.inference.privacy.mechanism != "none"
    with _about(str(data.recipients), "cannot synthesize personas from it"):
        result = synthesize_personas(
            recipients, config.synthesis, np.random.default_rng(seed),
            None if private else ab_table, campaigns,
        )
    recipients = recipients.copy()
    recipients.insert(1, PERSONA_ID, [result.personas[i].id for i in result.labels])
    logger.info("synthesized %d personas from %d recipients", len(result.personas),
                len(recipients))
    return Inputs(result.personas, campaigns, events, recipients, ab_table, result.profiles)


@contextmanager
def _about(source: str, doing: str) -> Iterator[None]:
    """Name the recipients file in what persona synthesis or profiling refuses.

    Raises
    ------
    DataError
        For a ``ValueError`` (too few distinct recipients, a bad ``synthesis.k``, ...) or a
        DataError about "recipients" in general, naming ``source``.
    """
    try:
        yield
    except DataError as exc:
        if exc.source != "recipients":
            raise
        raise DataError(source, exc.location, exc.message) from None
    except ValueError as exc:
        raise DataError(source, None, f"{doing}: {exc}") from None


def _with_counts(config: ExperimentConfig, inputs: Inputs) -> Inputs:
    """``inputs`` with the validated ``data.ab_counts`` table, when the config names one."""
    if config.data.ab_counts is None:
        return inputs
    counts = load_ab_counts(config.data.ab_counts, [p.id for p in inputs.personas],
                            [c.id for c in inputs.campaigns])
    return replace(inputs, ab_counts=counts)


def _assign_given_personas(
    config: ExperimentConfig, recipients: pd.DataFrame, source: str
) -> tuple[list[Persona], pd.DataFrame]:
    """Hand-written personas plus a recipients file: the file's persona_id says who is who."""
    if PERSONA_ID not in recipients:
        raise DataError(source, f"column {PERSONA_ID!r}", "required when the config also lists "
                        "personas (or drop 'personas' to synthesize them)")
    known = {p.id for p in config.personas}
    bad = ~recipients[PERSONA_ID].astype(str).isin(known)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(source, f"row {row + 1}",
                        f"persona_id {recipients[PERSONA_ID].iat[row]!r} is not in the config")
    counts = recipients[PERSONA_ID].astype(str).value_counts()
    personas = [p.model_copy(update={"size": int(counts.get(p.id, 0)) or None})
                for p in config.personas]
    return personas, recipients


def _check_event_personas(events: list[EventConfig], config: ExperimentConfig, source: str) -> None:
    if not config.personas:
        return
    known = {p.id for p in config.personas}
    for i, event in enumerate(events):
        for pid in event.personas or []:
            if pid not in known:
                raise ConfigError(source, f"events.{i}.personas", f"persona {pid!r} is not defined")


STAGE = Stage("inputs", "Loading personas, campaigns and data", saved=True)


def run(ctx: RunContext, advance: Advance) -> Inputs:
    """Stage: load the inputs (personas are synthesized with the stage's own seed)."""
    return load_inputs(ctx.config, ctx.source, stage_seed(ctx.config.seed, "synthesis"))


def persona_sizes(inputs: Inputs, population: int) -> dict[str, int]:
    """Recipients per persona: counted in the recipients file, else the simulated cohorts."""
    if inputs.recipients is not None and PERSONA_ID in inputs.recipients:
        counts = inputs.recipients[PERSONA_ID].value_counts()
        return {p.id: int(counts.get(p.id, 0)) for p in inputs.personas}
    sizes = cohort_sizes(inputs.personas, population)
    return {p.id: n for p, n in zip(inputs.personas, sizes, strict=True)}
