"""Seeds per stage, derived from the run's one seed.

Every stage draws from its own stream, so adding draws to one stage never shifts another's.
"""

from __future__ import annotations

import zlib

import numpy as np

from personasim.config.schema import ExperimentConfig


def stage_seed(seed: int, stage: str) -> int:
    """A seed for one stage, stable whatever the other stages draw."""
    return int(np.random.SeedSequence([seed, zlib.crc32(stage.encode())]).generate_state(1)[0])


def training_seeds(config: ExperimentConfig) -> list[int]:
    """One seed per training run; the first is the single-run seed of earlier versions."""
    return [stage_seed(config.seed, "training" if k == 0 else f"training-{k}")
            for k in range(config.policy.training_seeds)]


def evaluation_seeds(config: ExperimentConfig) -> list[int]:
    """The evaluation episodes' seeds, shared by every policy."""
    return [stage_seed(config.seed, f"evaluation-{i}") % 2**31
            for i in range(config.policy.eval_seeds)]


def validation_seeds(config: ExperimentConfig) -> list[int]:
    """Seeds of the episodes that pick each algorithm's best training run."""
    return [stage_seed(config.seed, f"validation-{i}") % 2**31
            for i in range(config.policy.validation_episodes)]
