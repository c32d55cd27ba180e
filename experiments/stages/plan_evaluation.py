"""The plan in the simulation: its return beside the other ways to spend the same budget.

Every strategy plays the same evaluation seeds (the same simulated audiences) as the policy
comparison, with the same budget:

- ``plan``: the plan the run writes (``plan_value`` or ``plan_policy``, the two pacings, are
  listed too when both were built);
- ``greedy_table``: every campaign with a positive priority, best first, one a week from week 1
  until the budget is spent (what the table said before it followed the plan);
- the deployed policy's persona calendar, the A/B winner to everyone the budget allows and the
  myopic oracle (their episodes from the policy evaluation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from personasim.config.schema import ExperimentConfig
from personasim.experiments.stages.evaluation import PolicyEvaluation
from personasim.experiments.stages.training import EnvFactory
from personasim.policies.comparison import TrainedPolicies
from personasim.policies.rollouts import summarize
from personasim.policies.schedule import play_schedule

#: Columns of ``plan_evaluation.csv``.
PLAN_EVALUATION_COLUMNS: tuple[str, ...] = (
    "strategy", "mean_return", "ci_low", "ci_high", "n_episodes", "mean_spend", "budget",
    "relative_to_plan",
)
#: Baselines read from the policy evaluation, when the run has them.
POLICY_BASELINES: tuple[str, ...] = ("ab_winner", "myopic_oracle")


def policy_episodes(config: ExperimentConfig, evaluated: PolicyEvaluation,
                    trained: TrainedPolicies) -> dict[str, pd.DataFrame]:
    """The deployed policy's and the baselines' evaluation episodes, by strategy name."""
    episodes = evaluated.episodes
    out: dict[str, pd.DataFrame] = {}
    algorithm = config.policy.algorithm
    if algorithm in trained.runs and algorithm in evaluated.protocol.best:
        seed = trained.runs[algorithm][evaluated.protocol.best[algorithm]].seed
        mine = episodes[(episodes["policy"] == algorithm) & (episodes["training_seed"] == seed)]
        out[f"policy_calendar ({algorithm})"] = mine
    for name in POLICY_BASELINES:
        mine = episodes[episodes["policy"] == name]
        if len(mine):
            out[name] = mine
    return out


def play_schedules(make_env: EnvFactory, schedules: Mapping[str, pd.DataFrame],
                   recipient_ids: Sequence[str], seeds: Sequence[int]) -> dict[str, pd.DataFrame]:
    """Each schedule's episodes on ``seeds``."""
    return {name: play_schedule(make_env, schedule, recipient_ids, seeds)
            for name, schedule in schedules.items()}


def evaluation_table(episodes: Mapping[str, pd.DataFrame], budget: float) -> pd.DataFrame:
    """``plan_evaluation.csv``: mean return with its 95% interval per strategy.

    ``relative_to_plan`` is each mean return over the plan's (``plan`` must be a key).
    """
    frames = [frame.assign(policy=name)[["policy", "seed", "return"]]
              for name, frame in episodes.items()]
    summary = summarize(pd.concat(frames, ignore_index=True))
    summary = summary.rename(columns={"policy": "strategy"})
    summary["mean_spend"] = [float(episodes[name]["spend"].mean())
                             if "spend" in episodes[name] else np.nan
                             for name in summary["strategy"]]
    summary["budget"] = budget if np.isfinite(budget) else np.nan
    plan = float(summary.loc[summary["strategy"] == "plan", "mean_return"].iloc[0])
    summary["relative_to_plan"] = summary["mean_return"] / plan if plan else np.nan
    return summary[list(PLAN_EVALUATION_COLUMNS)].round(4)
