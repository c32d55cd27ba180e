"""A config's ``dataset:`` section materialized as data-mode inputs.

The registered dataset loader returns recipients, campaigns and A/B results (training
customers) plus the held-out customers. Personas are synthesized by clustering every
customer's attributes (no outcomes), their priors come from the training outcomes only, and
each persona gets a plain-language description from :mod:`personasim.audience.descriptions`.
"""

from __future__ import annotations

import logging

import numpy as np

from personasim.audience.descriptions import describe_personas
from personasim.audience.roles import roles_from_config
from personasim.audience.synthesis import synthesize_personas
from personasim.config.schema import ExperimentConfig
from personasim.config.sections import EventConfig
from personasim.core.errors import ConfigError
from personasim.core.types import PERSONA_ID, RECIPIENT_ID
from personasim.data.datasets import DATASETS, DatasetTables
from personasim.experiments.stages.inputs import Inputs

logger = logging.getLogger(__name__)


def load_dataset(config: ExperimentConfig, source: str, seed: int) -> DatasetTables:
    """Run the registered loader named by ``dataset.name``.

    Raises
    ------
    ConfigError
        If the name is not a registered dataset.
    """
    assert config.dataset is not None
    name = config.dataset.name
    if name not in DATASETS:
        raise ConfigError(source, "dataset.name", DATASETS.unknown_message(name))
    return DATASETS.get(name)(config.dataset, seed)


def load_dataset_inputs(config: ExperimentConfig, source: str, seed: int,
                        events: list[EventConfig]) -> Inputs:
    """Build a run's inputs from ``config.dataset``.

    Parameters
    ----------
    config
        A validated config with a ``dataset`` section.
    source
        The config file, for error messages.
    seed
        Seeds the sample, the split and the persona synthesis (independent streams).
    events
        The events calendar already loaded from the config.
    """
    data_seed, synthesis_seed = np.random.SeedSequence(seed).spawn(2)
    tables = load_dataset(config, source, int(data_seed.generate_state(1)[0]))
    recipients = tables.recipients
    result = synthesize_personas(recipients, config.synthesis,
                                 np.random.default_rng(synthesis_seed), tables.ab_results,
                                 tables.campaigns)
    recipients = recipients.copy()
    recipients.insert(1, PERSONA_ID, [result.personas[i].id for i in result.labels])
    personas = describe_personas(result.personas, recipients,
                                 roles_from_config(config.synthesis, recipients.columns))
    holdout = tables.holdout
    if holdout is not None:
        persona_of = recipients.set_index(RECIPIENT_ID)[PERSONA_ID]
        holdout = holdout.assign(**{PERSONA_ID: holdout[RECIPIENT_ID].map(persona_of)})
    logger.info("dataset %s: %d customers, %d for training, %d held out, %d personas",
                config.dataset.name if config.dataset else "?", len(recipients),
                len(tables.ab_results), 0 if holdout is None else len(holdout), len(personas))
    return Inputs(personas, tables.campaigns, events, recipients, tables.ab_results,
                  result.profiles, holdout=holdout)
