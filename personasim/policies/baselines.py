"""Campaign-allocation policies behind one interface: baselines, an oracle and trained agents.

Every policy maps an observation of :class:`~personasim.envs.CampaignEnv` to a
``MultiDiscrete`` action (one action per persona; 0 sends nothing). Policies are built by
name from :data:`POLICIES` with a factory ``(env, context) -> Policy``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from personasim.core.registry import Registry
from personasim.core.types import ABCounts
from personasim.envs.campaign_env import CampaignEnv

logger = logging.getLogger(__name__)


@runtime_checkable
class Policy(Protocol):
    """The interface every policy implements."""

    def reset(self, seed: int) -> None:
        """Prepare for a new episode; seed any internal randomness."""
        ...

    def act(self, obs: np.ndarray, env: CampaignEnv) -> np.ndarray:
        """Return the ``(n_personas,)`` int action for this week."""
        ...

    def observe(self, action: np.ndarray, info: dict[str, Any]) -> None:
        """Learn from the week's outcome (``info`` as returned by ``env.step``)."""
        ...


@dataclass
class PolicyContext:
    """What a policy factory may need besides the environment.

    Attributes
    ----------
    ab_counts
        A/B results as persona x campaign exposures/responses (may include the control).
    model_path
        Saved SB3 model, for the ``sb3`` policy.
    seed
        Default seed of the policy's randomness.
    algorithm
        Registered SB3 algorithm of ``model_path`` (``sb3`` policy).
    model
        An already loaded SB3 model; used by ``sb3`` instead of ``model_path`` when set.
    """

    ab_counts: ABCounts | None = None
    model_path: Path | None = None
    seed: int = 0
    algorithm: str = "ppo"
    model: Any | None = None


PolicyFactory = Callable[[CampaignEnv, PolicyContext], Policy]

POLICIES: Registry[PolicyFactory] = Registry("policy")


def _base(env: gym.Env[Any, Any]) -> CampaignEnv:
    unwrapped = env.unwrapped
    if not isinstance(unwrapped, CampaignEnv):
        raise TypeError(f"expected a CampaignEnv, got {type(unwrapped).__name__}")
    return unwrapped


class RandomPolicy:
    """Uniformly random action for every persona, every week."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def reset(self, seed: int) -> None:
        """Reseed the policy's generator."""
        self.rng = np.random.default_rng(seed)

    def act(self, obs: np.ndarray, env: CampaignEnv) -> np.ndarray:
        """Draw one action per persona uniformly."""
        base = _base(env)
        return self.rng.integers(0, base.n_actions, size=base.n_personas, dtype=np.int64)

    def observe(self, action: np.ndarray, info: dict[str, Any]) -> None:
        """Nothing to learn."""


class FixedPolicy:
    """The same action every week (e.g. one campaign to everyone)."""

    def __init__(self, action: np.ndarray) -> None:
        self.action = np.asarray(action, dtype=np.int64)

    def reset(self, seed: int) -> None:
        """Nothing to reset."""

    def act(self, obs: np.ndarray, env: CampaignEnv) -> np.ndarray:
        """Return the fixed action."""
        return self.action.copy()

    def observe(self, action: np.ndarray, info: dict[str, Any]) -> None:
        """Nothing to learn."""


def ab_value_per_send(env: CampaignEnv, counts: ABCounts) -> np.ndarray:
    """Estimated value per send of every action, from A/B counts pooled over personas.

    ``rate * value - cost``, with ``rate`` the campaign's response rate minus the control's
    when the counts have an exposed control column (incremental rate). Action 0 and campaigns
    absent from (or unexposed in) the counts get ``-inf``.

    Returns
    -------
    np.ndarray
        ``(n_actions,)`` float64.
    """
    base = _base(env)
    exposures = counts.exposures.sum(axis=0)
    responses = counts.responses.sum(axis=0)
    column = {cid: i for i, cid in enumerate(counts.campaign_ids)}
    baseline = 0.0
    control = base.campaigns.control_index
    if control is not None:
        c = column.get(base.campaigns.ids[control])
        if c is not None and exposures[c] > 0:
            baseline = responses[c] / exposures[c]
    values = np.full(base.n_actions, -np.inf)
    for a in range(1, base.n_actions):
        c = column.get(base.action_campaign_ids[a])
        if c is None or exposures[c] == 0:
            continue
        rate = responses[c] / exposures[c] - baseline
        values[a] = rate * base.action_value[a] - base.action_cost[a]
    return values


class ABWinnerPolicy(FixedPolicy):
    """Send the A/B test's best campaign (by value per send) to every persona every week.

    Sends nothing when no campaign has a positive estimated value per send.
    """

    def __init__(self, env: CampaignEnv, counts: ABCounts) -> None:
        base = _base(env)
        values = ab_value_per_send(base, counts)
        best = int(np.argmax(values))
        if not np.isfinite(values[best]) or values[best] <= 0:
            best = 0
        self.winner: str | None = base.action_campaign_ids[best]
        logger.info("A/B winner: %s", self.winner or "send nothing")
        super().__init__(np.full(base.n_personas, best, dtype=np.int64))


class ThompsonPolicy:
    """Per-persona Beta-Bernoulli Thompson sampling over the sendable campaigns.

    Each (persona, campaign) arm has a Beta(1, 1) prior on its response rate, updated with
    the sends and responses of the arm chosen. Each week, for each persona, it samples a rate
    per arm and picks the arm with the highest ``p * value - cost``, or sends nothing if every
    sampled value is negative.
    """

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.alpha: np.ndarray | None = None
        self.beta: np.ndarray | None = None

    def reset(self, seed: int) -> None:
        """Reseed and forget: the posteriors return to the prior."""
        self.rng = np.random.default_rng(seed)
        self.alpha = None
        self.beta = None

    def act(self, obs: np.ndarray, env: CampaignEnv) -> np.ndarray:
        """Sample a rate per arm and pick the best expected value per send."""
        base = _base(env)
        shape = (base.n_personas, base.n_actions - 1)
        if self.alpha is None or self.beta is None or self.alpha.shape != shape:
            self.alpha = np.ones(shape)
            self.beta = np.ones(shape)
        p = self.rng.beta(self.alpha, self.beta)
        score = p * base.action_value[1:] - base.action_cost[1:]
        best = np.argmax(score, axis=1)
        positive = score[np.arange(base.n_personas), best] >= 0
        return np.where(positive, best + 1, 0).astype(np.int64)

    def observe(self, action: np.ndarray, info: dict[str, Any]) -> None:
        """Add the chosen arms' responses and non-responses to their posteriors."""
        if self.alpha is None or self.beta is None:
            return
        action = np.asarray(action, dtype=np.int64).reshape(-1)
        sends = np.asarray(info["sends"], dtype=np.float64)
        responses = np.asarray(info["responses"], dtype=np.float64)
        for j in np.flatnonzero(action > 0):
            arm = action[j] - 1
            self.alpha[j, arm] += responses[j]
            self.beta[j, arm] += sends[j] - responses[j]


def expected_rewards(env: CampaignEnv) -> np.ndarray:
    """Expected dollar reward this week of each action for each persona (true parameters).

    ``expected responders * value - recipients * cost``; 0 for sending nothing. Budget limits
    are ignored. Personas respond independently within a week, so each action is evaluated for
    all personas at once.

    Returns
    -------
    np.ndarray
        ``(n_personas, n_actions)`` float64.
    """
    base = _base(env)
    if base.model is None:
        raise RuntimeError("call env.reset() first")
    sizes = np.array([agent.size for agent in base.model.cohorts], dtype=np.float64)
    out = np.zeros((base.n_personas, base.n_actions))
    for a in range(1, base.n_actions):
        campaign = int(base.action_to_campaign[a])
        responders = base.model.expected_response([campaign] * base.n_personas)
        out[:, a] = responders * base.action_value[a] - sizes * base.action_cost[a]
    return out


class MyopicOraclePolicy:
    """Knows the true parameters; maximizes each persona's expected reward this week only."""

    def reset(self, seed: int) -> None:
        """Nothing to reset."""

    def act(self, obs: np.ndarray, env: CampaignEnv) -> np.ndarray:
        """Pick, per persona, the action with the highest expected one-week reward."""
        return np.argmax(expected_rewards(env), axis=1).astype(np.int64)

    def observe(self, action: np.ndarray, info: dict[str, Any]) -> None:
        """Nothing to learn."""


class SB3Policy:
    """A trained Stable-Baselines3 model, acting deterministically.

    Models trained on a flattened (``Discrete``) action space, such as DQN's, have their
    joint action unflattened to the per-persona vector.
    """

    def __init__(self, model: Any) -> None:
        self.model = model

    def reset(self, seed: int) -> None:
        """Nothing to reset (the policy is deterministic)."""

    def act(self, obs: np.ndarray, env: CampaignEnv) -> np.ndarray:
        """Predict the greedy action for ``obs``."""
        action, _ = self.model.predict(obs, deterministic=True)
        action = np.asarray(action, dtype=np.int64)
        nvec = np.asarray(_base(env).action_space.nvec, dtype=np.int64)
        if isinstance(self.model.action_space, spaces.Discrete):
            return np.array(np.unravel_index(int(action), tuple(nvec)), dtype=np.int64)
        return action.reshape(-1)

    def observe(self, action: np.ndarray, info: dict[str, Any]) -> None:
        """Nothing to learn online."""


@POLICIES.register("random")
def _random(env: CampaignEnv, context: PolicyContext) -> Policy:
    return RandomPolicy(context.seed)


@POLICIES.register("ab_winner")
def _ab_winner(env: CampaignEnv, context: PolicyContext) -> Policy:
    if context.ab_counts is None:
        raise ValueError("the ab_winner policy needs A/B results (context.ab_counts)")
    return ABWinnerPolicy(env, context.ab_counts)


@POLICIES.register("thompson")
def _thompson(env: CampaignEnv, context: PolicyContext) -> Policy:
    return ThompsonPolicy(context.seed)


@POLICIES.register("myopic_oracle")
def _myopic_oracle(env: CampaignEnv, context: PolicyContext) -> Policy:
    return MyopicOraclePolicy()


@POLICIES.register("sb3")
def _sb3(env: CampaignEnv, context: PolicyContext) -> Policy:
    if context.model is not None:
        return SB3Policy(context.model)
    if context.model_path is None:
        raise ValueError("the sb3 policy needs a trained model (context.model_path)")
    from personasim.policies.training import load_policy

    return SB3Policy(load_policy(context.algorithm, context.model_path, env))


def make_policy(name: str, env: CampaignEnv, context: PolicyContext | None = None) -> Policy:
    """Build the registered policy ``name`` for ``env``."""
    return POLICIES.get(name)(env, context or PolicyContext())
