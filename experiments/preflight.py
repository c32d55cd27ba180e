"""Checks that run before anything is allocated: plug-in names, memory, graph-file ids.

Each fails with a one-line :class:`~personasim.core.errors.ConfigError` or
:class:`~personasim.core.errors.DataError` (exit code 2 from the CLI) from ``personasim
validate`` or at the inputs stage, rather than part-way through a run.
:func:`check_registered_names` is the one place that checks every name a config picks a plug-in
by against its registry (third-party plug-ins included, see :mod:`personasim.core.plugins`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from personasim.agents.capacity import check_capacity
from personasim.agents.model import ENGINES
from personasim.audience.synthesis import SYNTHESIZERS
from personasim.bayes.estimators import ESTIMATORS
from personasim.behaviour.network import GRAPH_GENERATORS, edge_indices
from personasim.behaviour.response import RESPONSE_MODELS
from personasim.config.persona import cohort_sizes
from personasim.config.schema import ExperimentConfig
from personasim.core.errors import ConfigError
from personasim.core.registry import Registry
from personasim.data.datasets import DATASETS
from personasim.outputs.writers import EXPORTERS
from personasim.policies.baselines import POLICIES
from personasim.policies.training import ALGORITHMS

logger = logging.getLogger(__name__)


def registered_names(config: ExperimentConfig) -> list[tuple[str, str, Registry[Any]]]:
    """Every plug-in a config names: ``(field location, name, registry)``, in config order.

    The graph generator counts only without a graph file, the dataset only with a
    ``dataset`` section.
    """
    network = config.dynamics.influence.network
    policy = config.policy
    names: list[tuple[str, str, Registry[Any]]] = []
    if config.dataset is not None:
        names.append(("dataset.name", config.dataset.name, DATASETS))
    names += [
        ("synthesis.method", config.synthesis.method, SYNTHESIZERS),
        ("simulation.engine", config.simulation.engine, ENGINES),
        ("simulation.response_model", config.simulation.response_model, RESPONSE_MODELS),
    ]
    if network.file is None:
        names.append(("dynamics.influence.network.generator", network.generator,
                      GRAPH_GENERATORS))
    if config.inference.estimator != "auto":  # auto resolves to a registered name
        names.append(("inference.estimator", config.inference.estimator, ESTIMATORS))
    names.append(("policy.algorithm", policy.algorithm, ALGORITHMS))
    names += [(f"policy.baselines.{i}", name, POLICIES) for i, name in enumerate(policy.baselines)]
    names += [(f"policy.compare_algorithms.{name}", name, ALGORITHMS)
              for name in policy.compare_algorithms]
    names += [(f"output.formats.{i}", name, EXPORTERS)
              for i, name in enumerate(config.output.formats)]
    return names


def check_registered_names(config: ExperimentConfig, source: str) -> None:
    """Check every plug-in name in ``config`` against its registry.

    Parameters
    ----------
    config
        A validated config.
    source
        The config file, for the error message.

    Raises
    ------
    ConfigError
        On the first unknown name: one line naming ``source``, the field, the known names and,
        when one is close, a did-you-mean hint.
    """
    for location, name, registry in registered_names(config):
        if name not in registry:
            raise ConfigError(source, location, registry.unknown_message(name))


def preflight(config: ExperimentConfig, source: str) -> None:
    """Check the plug-in names, that the simulation fits in memory and the graph file's ids.

    In data mode the recipients file's row count is the population (counted without
    loading it). The graph file is checked here when the personas are in the config and
    there is no recipients file (the recipient ids are then known in advance); otherwise it
    is checked when the environment reads it.

    Raises
    ------
    ConfigError
        A plug-in name is not registered (see :func:`check_registered_names`), or the
        population would not fit in the memory available (names ``population.size``, or
        ``data.recipients`` in data mode).
    DataError
        The graph file names a node that is not a recipient.
    """
    check_registered_names(config, source)
    data_mode = config.data.recipients is not None
    if data_mode:
        n = _count_rows(config.data.recipients)
    else:
        n = sum(cohort_sizes(list(config.personas), config.population.size))
    n_campaigns = (_count_rows(config.data.campaigns) if config.data.campaigns is not None
                   else len(config.campaigns))
    check_capacity(config, n, source, n_campaigns=max(n_campaigns, 1),
                   location="data.recipients" if data_mode else "population.size")

    influence = config.dynamics.influence
    graph_file = influence.network.file
    if graph_file is None or not influence.enabled or influence.weight <= 0 or data_mode:
        return
    sizes = cohort_sizes(list(config.personas), config.population.size)
    ids = [f"{p.id}-{i:07d}" for p, size in zip(config.personas, sizes, strict=True)
           for i in range(size)]
    src, _ = edge_indices(graph_file, ids)
    logger.debug("graph file %s: %d edges over known recipients", graph_file, src.size)


def _count_rows(path: Path | None) -> int:
    """Data rows of a CSV (lines minus the header) or Parquet file, without loading it."""
    if path is None or not Path(path).is_file():
        return 0
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        try:
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        except Exception:  # noqa: BLE001 - unreadable files are reported by the loader
            return 0
    with open(path, "rb") as handle:
        lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
        handle.seek(0, 2)
        size = handle.tell()
        if size:
            handle.seek(size - 1)
            lines += handle.read(1) != b"\n"  # last line without a newline
    return max(lines - 1, 0)
