"""Checks that run before anything is allocated: memory for the population, graph-file ids.

Both fail with a one-line :class:`~personasim.core.errors.ConfigError` or
:class:`~personasim.core.errors.DataError` (exit code 2 from the CLI) at the inputs stage, rather
than part-way through a run.
"""

from __future__ import annotations

import logging
from pathlib import Path

from personasim.agents.capacity import check_capacity
from personasim.behaviour.network import edge_indices
from personasim.config.persona import cohort_sizes
from personasim.config.schema import ExperimentConfig

logger = logging.getLogger(__name__)


def preflight(config: ExperimentConfig, source: str) -> None:
    """Check that the simulation fits in memory and that a graph file names its recipients.

    In data mode the recipients file's row count is the population (counted without
    loading it). The graph file is checked here when the personas are in the config and
    there is no recipients file (the recipient ids are then known in advance); otherwise it
    is checked when the environment reads it.

    Raises
    ------
    ConfigError
        The population would not fit in the memory available (names ``population.size``, or
        ``data.recipients`` in data mode).
    DataError
        The graph file names a node that is not a recipient.
    """
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
