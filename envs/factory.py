"""Build a :class:`CampaignEnv` from a scenario: the shipped quickstart, a config or a run.

:func:`make_campaign_env` is the entry point of the registered Gymnasium id, so::

    gymnasium.make("personasim/Campaign-v0")                          # the quickstart
    gymnasium.make("personasim/Campaign-v0", config="configs/fatigue.yaml")
    gymnasium.make("personasim/Campaign-v0", config="runs/my_run")    # a finished run

A config's personas are used as written (no Bayesian update). A config whose personas are
synthesized from data (no ``personas:`` list, or a ``dataset:``) cannot be simulated from the
config alone; a finished run directory can, with the personas the run re-parameterized from
its posterior (the ones its policies were trained on).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from personasim.behaviour.network import GraphCache
from personasim.config.campaign import Campaign
from personasim.config.loading import format_validation_error, load_config
from personasim.config.persona import Persona
from personasim.config.schema import ExperimentConfig
from personasim.config.sections import EventConfig
from personasim.core.errors import ConfigError, DataError
from personasim.core.run_layout import CAMPAIGNS, CONFIG, PERSONAS_POSTERIOR, RunFile
from personasim.core.types import PERSONA_ID
from personasim.data.campaigns import load_campaigns
from personasim.data.events import load_events
from personasim.data.recipients import load_recipients
from personasim.envs.campaign_env import CampaignEnv

logger = logging.getLogger(__name__)

_Model = TypeVar("_Model", bound=BaseModel)

SCENARIOS_PACKAGE = "personasim.config"
"""The package whose ``scenarios/`` folder holds the shipped scenarios."""

QUICKSTART = "scenarios/quickstart.yaml"
"""The default scenario, relative to :data:`SCENARIOS_PACKAGE` (a copy of
``configs/quickstart.yaml``)."""

RUN_DIR_FILES: tuple[RunFile, ...] = (CONFIG, PERSONAS_POSTERIOR, CAMPAIGNS)
"""What :func:`load_scenario` reads from a finished run directory."""

ConfigSource = ExperimentConfig | str | os.PathLike[str]
"""A loaded config, a config file, or a finished run directory."""


@dataclass(frozen=True)
class Scenario:
    """Everything :meth:`CampaignEnv.from_config` needs.

    Attributes
    ----------
    config
        The experiment config (simulation, dynamics, population size, seed).
    personas
        The personas to simulate, in order (with exact sizes where known).
    campaigns
        The campaigns, control included, in action order.
    events
        The events calendar: ``dynamics.events``, then the ``dynamics.events_file`` rows.
    source
        Where it came from, for messages.
    """

    config: ExperimentConfig
    personas: list[Persona]
    campaigns: list[Campaign]
    events: list[EventConfig]
    source: str


def make_campaign_env(
    config: ConfigSource | None = None,
    *,
    reward_scale: float | None = None,
    graph_cache: GraphCache | None = None,
    **env_kwargs: Any,
) -> CampaignEnv:
    """Build the campaign environment of a scenario (the registered id's entry point).

    Parameters
    ----------
    config
        ``None`` for the quickstart scenario shipped with the package; a config file or an
        already-loaded :class:`~personasim.config.schema.ExperimentConfig` (personas as
        written); or a finished run directory (its resolved config, the personas updated
        from its posterior and its campaigns).
    reward_scale
        Passed to :class:`CampaignEnv` (default: dollars per recipient).
    graph_cache
        Graphs shared with the other environments built for the same run, so the recipient
        graph is generated once; ``None`` generates it for this environment alone.
    **env_kwargs
        Instead of ``config``: :class:`CampaignEnv`'s own arguments (``personas``, ``sizes``,
        ``campaigns``, ``simulation``, ``dynamics``, ``events``, ``graph_seed``).

    Returns
    -------
    CampaignEnv
        The unwrapped environment.

    Raises
    ------
    ConfigError
        A config that does not validate or whose personas come from data (the message names
        the file and asks for a run directory), or a run directory missing one of
        :data:`RUN_DIR_FILES`.
    DataError
        A data file the config names (campaigns, events, recipients) that does not validate.
    TypeError
        If both ``config`` and environment arguments are given.
    """
    if env_kwargs:
        if config is not None:
            raise TypeError("give either config or CampaignEnv's own arguments "
                            f"({', '.join(sorted(env_kwargs))}), not both")
        return CampaignEnv(**env_kwargs, reward_scale=reward_scale, graph_cache=graph_cache)
    scenario = load_scenario(config)
    logger.debug("campaign env from %s: %d personas, %d campaigns, %d events", scenario.source,
                 len(scenario.personas), len(scenario.campaigns), len(scenario.events))
    return CampaignEnv.from_config(
        scenario.config, scenario.personas, scenario.campaigns, scenario.events,
        reward_scale=reward_scale, graph_cache=graph_cache,
    )


def load_scenario(config: ConfigSource | None = None) -> Scenario:
    """Read what an environment needs from a config, a config file or a run directory.

    Parameters
    ----------
    config
        As for :func:`make_campaign_env`.

    Returns
    -------
    Scenario
        The config, personas, campaigns and events.

    Raises
    ------
    ConfigError, DataError
        As for :func:`make_campaign_env`.
    """
    if config is None:
        return quickstart_scenario()
    if isinstance(config, ExperimentConfig):
        return scenario_from_config(config, "config")
    path = Path(config)
    if path.is_dir():
        return scenario_from_run(path)
    return scenario_from_config(load_config(path), str(path))


def quickstart_scenario() -> Scenario:
    """The quickstart scenario shipped inside the package (:data:`QUICKSTART`)."""
    resource = resources.files(SCENARIOS_PACKAGE).joinpath(QUICKSTART)
    with resources.as_file(resource) as path:
        config = load_config(path)
    return scenario_from_config(config, f"{SCENARIOS_PACKAGE}:{QUICKSTART}")


def scenario_from_config(config: ExperimentConfig, source: str) -> Scenario:
    """The personas of ``config`` as written, its campaigns and its events calendar.

    Parameters
    ----------
    config
        A validated config; data paths should be absolute (as :func:`load_config` leaves
        them) or relative to the working directory.
    source
        The config file, for error messages.

    Raises
    ------
    ConfigError
        If the personas are synthesized from data (a ``dataset`` or no ``personas`` list).
    DataError
        A campaigns, events or recipients file that does not validate.
    """
    if config.dataset is not None or not config.personas:
        origin = "dataset" if config.dataset is not None else "data.recipients"
        raise ConfigError(
            source, "personas",
            f"the personas are synthesized from data ({origin}), so the environment cannot be "
            "built from the config alone; pass config=<a finished run directory> (made by "
            "'personasim run') to use the personas that run synthesized",
        )
    personas = list(config.personas)
    if config.data.recipients is not None:
        personas = _sized_by_recipients(personas, config.data.recipients)
    campaigns = (load_campaigns(config.data.campaigns) if config.data.campaigns
                 else list(config.campaigns))
    return Scenario(config, personas, campaigns, events_of(config), source)


def scenario_from_run(run_dir: Path) -> Scenario:
    """The resolved config, posterior personas and campaigns of a finished run.

    Raises
    ------
    ConfigError
        If one of :data:`RUN_DIR_FILES` is missing or does not validate.
    DataError
        An events file named by the run's config that does not validate.
    """
    for item in RUN_DIR_FILES:
        if not item.path(run_dir).is_file():
            raise ConfigError(str(run_dir), item.name,
                              "not a finished personasim run (file missing)")
    config = _validated(ExperimentConfig, _read_yaml(run_dir, CONFIG), run_dir, CONFIG)
    persona_rows = _read_yaml(run_dir, PERSONAS_POSTERIOR)
    campaign_rows = _read_yaml(run_dir, CAMPAIGNS)
    personas = [_validated(Persona, row, run_dir, PERSONAS_POSTERIOR, i)
                for i, row in enumerate(_listed(persona_rows, run_dir, PERSONAS_POSTERIOR))]
    campaigns = [_validated(Campaign, row, run_dir, CAMPAIGNS, i)
                 for i, row in enumerate(_listed(campaign_rows, run_dir, CAMPAIGNS))]
    if not personas:
        raise ConfigError(str(PERSONAS_POSTERIOR.path(run_dir)), None, "lists no personas")
    return Scenario(config, personas, campaigns, events_of(config), str(run_dir))


def events_of(config: ExperimentConfig) -> list[EventConfig]:
    """The config's events calendar: ``dynamics.events`` then the ``events_file`` rows.

    Raises
    ------
    DataError
        An events file that does not validate.
    """
    events = list(config.dynamics.events)
    if config.dynamics.events_file is not None:
        events += load_events(config.dynamics.events_file)
    return events


def _sized_by_recipients(personas: Sequence[Persona], path: Path) -> list[Persona]:
    """Personas sized by their recipients in ``path`` (as a run sizes listed personas)."""
    recipients = load_recipients(path)
    if PERSONA_ID not in recipients:
        raise DataError(str(path), f"column {PERSONA_ID!r}", "required when the config also "
                        "lists personas (or drop 'personas' to synthesize them)")
    counts = recipients[PERSONA_ID].astype(str).value_counts()
    return [p.model_copy(update={"size": int(counts.get(p.id, 0)) or None}) for p in personas]


def _read_yaml(run_dir: Path, item: RunFile) -> Any:
    path = item.path(run_dir)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), None, f"not valid YAML ({exc})") from None


def _listed(rows: Any, run_dir: Path, item: RunFile) -> list[Any]:
    if not isinstance(rows, list):
        raise ConfigError(str(item.path(run_dir)), None, "must be a list")
    return rows


def _validated(model: type[_Model], raw: Any, run_dir: Path, item: RunFile,
               index: int | None = None) -> _Model:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        loc, msg = format_validation_error(exc, model)
        where = loc if index is None else f"{index}.{loc}"
        raise ConfigError(str(item.path(run_dir)), where, msg) from None
