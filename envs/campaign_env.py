"""``CampaignEnv``: the campaign simulation as a Gymnasium environment.

Each step is one week. The agent picks, for every persona, one campaign to send to the
persona's whole cohort (or nothing); the wrapped :class:`~personasim.agents.model.CampaignModel`
draws the responses and the reward is the value of responses minus the cost of sends.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from scipy import sparse

from personasim.agents.model import ENGINES, NO_SEND, CampaignModel
from personasim.behaviour.network import GraphCache, build_adjacency
from personasim.config.campaign import Campaign, CampaignArrays
from personasim.config.persona import Persona, cohort_sizes
from personasim.config.schema import ExperimentConfig
from personasim.config.sections import DynamicsConfig, EventConfig, SimulationConfig

logger = logging.getLogger(__name__)

FATIGUE_OBS_MAX = 10.0
"""Upper bound of the mean-fatigue observation; larger cohort means are clipped to it."""

OBS_FEATURES = ("response_rate", "mean_fatigue", "budget_left", "time_left")
"""The observation's per-persona features, in order."""

MAX_FLAT_ACTIONS = 4096
"""Largest joint action space :class:`FlatActionWrapper` accepts."""

_BUDGET_TOL = 1e-9


class CampaignEnv(gym.Env[np.ndarray, np.ndarray]):
    """Weekly campaign allocation over persona cohorts.

    Parameters
    ----------
    personas, sizes
        The personas and their cohort sizes (recipients).
    campaigns
        All campaigns, control included; the control is never an action.
    simulation
        Engine, response model, horizon (weeks per episode) and budget.
    dynamics
        Fatigue and influence settings (``dynamics.events`` is *not* read: pass the full
        calendar as ``events``).
    events
        External-events calendar.
    graph_seed
        Seed of the recipient graph, built once here and reused by every episode.
    reward_scale
        Multiplier on the dollar reward. Default ``1 / n_recipients``: the reward is then
        dollars per recipient, which keeps returns O(1) for learning.
        ``info["reward_dollars"]`` always carries the unscaled value.
    graph_cache
        Generated graphs shared with the other environments of a run, so that the graph is
        generated once (see :class:`~personasim.behaviour.network.GraphCache`); ``None``
        generates it here.

    Notes
    -----
    Action: ``MultiDiscrete([n_actions] * n_personas)``; action ``0`` sends nothing and action
    ``i >= 1`` sends the ``i``-th sendable (non-control) campaign (see
    :attr:`action_campaign_ids`).

    Observation: ``float32`` of shape ``(n_personas * 4,)``, per persona (see
    :data:`OBS_FEATURES`): last week's response rate among the persona's sent recipients
    (0 if none were sent), the cohort's mean fatigue clipped to ``[0, FATIGUE_OBS_MAX]``, the
    remaining budget fraction (1 when the budget is unlimited) and the remaining fraction of
    the horizon.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        personas: list[Persona],
        sizes: list[int],
        campaigns: list[Campaign],
        simulation: SimulationConfig,
        dynamics: DynamicsConfig,
        events: Sequence[EventConfig] = (),
        graph_seed: int = 0,
        reward_scale: float | None = None,
        graph_cache: GraphCache | None = None,
    ) -> None:
        super().__init__()
        if len(personas) != len(sizes):
            raise ValueError(f"got {len(personas)} personas but {len(sizes)} cohort sizes")
        if not personas:
            raise ValueError("the environment needs at least one persona")
        self.personas = list(personas)
        self.sizes = [int(s) for s in sizes]
        self.campaign_list = list(campaigns)
        self.campaigns = CampaignArrays.from_campaigns(self.campaign_list)
        self.simulation = simulation
        self.dynamics = dynamics
        self.events = list(events)
        self.graph_seed = int(graph_seed)
        self.n_personas = len(self.personas)
        self.n_recipients = int(sum(self.sizes))
        if self.n_recipients <= 0:
            raise ValueError("the population is empty")
        self.reward_scale = 1.0 / self.n_recipients if reward_scale is None else float(reward_scale)

        sendable = self.campaigns.sendable
        if not sendable:
            raise ValueError("the environment needs at least one sendable (non-control) campaign")
        self.action_to_campaign = np.array([NO_SEND, *sendable], dtype=np.int64)
        self.action_campaign_ids: tuple[str | None, ...] = (
            None,
            *(self.campaigns.ids[k] for k in sendable),
        )
        self.action_cost = np.concatenate([[0.0], self.campaigns.cost[sendable]])
        self.action_value = np.concatenate([[0.0], self.campaigns.value[sendable]])
        self.min_send_cost = float(self.campaigns.cost[sendable].min())

        self.adjacency = self._build_graph(graph_cache)
        self.engine = ENGINES.get(simulation.engine)
        self.model: CampaignModel | None = None
        self._episode_start: dict[str, Any] | None = None
        self._episode_actions: list[np.ndarray] = []

        self.action_space = spaces.MultiDiscrete([self.n_actions] * self.n_personas)
        per_persona_high = np.array([1.0, FATIGUE_OBS_MAX, 1.0, 1.0], dtype=np.float32)
        self.observation_space = spaces.Box(
            low=np.zeros(self.n_personas * len(OBS_FEATURES), dtype=np.float32),
            high=np.tile(per_persona_high, self.n_personas),
            dtype=np.float32,
        )

    @classmethod
    def from_config(
        cls,
        config: ExperimentConfig,
        personas: list[Persona],
        campaigns: list[Campaign],
        events: Sequence[EventConfig],
        *,
        reward_scale: float | None = None,
        graph_cache: GraphCache | None = None,
    ) -> CampaignEnv:
        """Build the environment from an experiment config.

        Cohort sizes come from :func:`~personasim.config.persona.cohort_sizes` and the graph is
        seeded with ``config.seed``. ``reward_scale`` and ``graph_cache`` are passed on to the
        constructor. To build an environment from a config file, a config alone or a finished
        run, see :func:`personasim.envs.factory.make_campaign_env`.
        """
        return cls(
            personas,
            cohort_sizes(personas, config.population.size),
            campaigns,
            config.simulation,
            config.dynamics,
            events,
            graph_seed=config.seed,
            reward_scale=reward_scale,
            graph_cache=graph_cache,
        )

    @property
    def n_actions(self) -> int:
        """Actions per persona: send nothing plus one per sendable campaign."""
        return int(self.action_to_campaign.size)

    @property
    def horizon(self) -> int:
        """Weeks per episode."""
        return int(self.simulation.horizon)

    def _build_graph(self, cache: GraphCache | None) -> sparse.csr_matrix | None:
        influence = self.dynamics.influence
        if not influence.enabled or influence.weight <= 0:
            return None
        recipient_ids = None
        if influence.network.file is not None:
            # same ids as CampaignModel.recipient_ids, without building a model
            recipient_ids = [
                f"{p.id}-{i:07d}" for p, n in zip(self.personas, self.sizes, strict=True)
                for i in range(n)
            ]
        rng = np.random.default_rng(self.graph_seed)
        adjacency = build_adjacency(influence.network, self.n_recipients, rng, recipient_ids,
                                    cache)
        logger.debug("recipient graph: %d nodes, %d edges", self.n_recipients, adjacency.nnz)
        return adjacency

    def campaign_indices(self, action: np.ndarray | Sequence[int]) -> np.ndarray:
        """Map an action to the model's campaign index per persona (``NO_SEND`` for 0)."""
        action = np.asarray(action, dtype=np.int64).reshape(-1)
        if action.size != self.n_personas:
            raise ValueError(f"expected {self.n_personas} actions, got {action.size}")
        if np.any(action < 0) or np.any(action >= self.n_actions):
            raise ValueError(f"actions must lie in [0, {self.n_actions - 1}], got {action}")
        return self.action_to_campaign[action]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new episode with a fresh simulation (new cohorts, zero fatigue).

        Parameters
        ----------
        seed
            Seeds the environment's ``np_random``, which seeds the model's generator.
        options
            Unused.
        """
        super().reset(seed=seed)
        self._episode_start = copy.deepcopy(self.np_random.bit_generator.state)
        self._episode_actions = []
        model_rng = np.random.default_rng(int(self.np_random.integers(2**63 - 1)))
        self.model = self.engine(
            self.personas,
            self.sizes,
            self.campaign_list,
            dynamics=self.dynamics,
            events=self.events,
            response_model=self.simulation.response_model,
            budget=self.simulation.budget,
            adjacency=self.adjacency,
            rng=model_rng,
        )
        return self._observation(), {"week": 0}

    def step(
        self, action: np.ndarray
    ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Run one week.

        Parameters
        ----------
        action
            ``(n_personas,)`` ints: 0 sends nothing, ``i >= 1`` the ``i``-th sendable campaign.

        Returns
        -------
        observation : np.ndarray
            The state after the week (see the class notes).
        reward : float
            ``(value of responses - cost of sends) * reward_scale``.
        terminated : bool
            True when the task reached an end state: a budget is set and what is left cannot
            pay for the cheapest sendable campaign to a single recipient.
        truncated : bool
            True when the horizon (``simulation.horizon`` weeks) cut the episode off. For
            training, :class:`SeasonEndWrapper` reports the horizon as terminal instead, so
            learners do not bootstrap past the season's end (the observation's ``time_left``
            reaches 0 there; bootstrapping made PPO value unspent budget as if it could still
            be spent).
        info : dict
            ``reward_dollars`` (unscaled reward), ``cost``, ``value``, ``week``, and
            ``(n_personas,)`` arrays ``sends`` (recipients sent), ``responses`` (responders
            among them) and ``campaign_index`` (model campaign index, -1 for nothing).
        """
        if self.model is None:
            raise RuntimeError("call reset() before step()")
        indices = self.campaign_indices(action)
        self._episode_actions.append(np.asarray(action, dtype=np.int64).reshape(-1).copy())
        outcome = self.model.send(indices.tolist())
        sendable = self.campaigns.sendable
        sends = outcome.assigned[:, sendable].sum(axis=1).astype(np.int64)
        responses = outcome.responses[:, sendable].sum(axis=1).astype(np.int64)
        reward_dollars = float(outcome.reward)
        terminated = self._budget_exhausted()
        truncated = not terminated and self.model.week >= self.horizon
        info: dict[str, Any] = {
            "reward_dollars": reward_dollars,
            "cost": float(outcome.cost),
            "value": float(outcome.value),
            "week": self.model.week,
            "sends": sends,
            "responses": responses,
            "campaign_index": indices.copy(),
        }
        return (
            self._observation(),
            float(reward_dollars * self.reward_scale),
            bool(terminated),
            bool(truncated),
            info,
        )

    def get_state(self) -> dict[str, Any]:
        """The episode in progress, as plain data: enough to rebuild it exactly.

        An episode is a deterministic function of the generator state at its ``reset`` and of
        the actions taken since, so the state is those two (no simulation internals).

        Returns
        -------
        dict
            ``episode_start`` (bit-generator state before the reset's draw, or ``None`` before
            the first reset) and ``actions`` (``(weeks, n_personas)`` int64).
        """
        actions = (np.stack(self._episode_actions) if self._episode_actions
                   else np.zeros((0, self.n_personas), dtype=np.int64))
        return {"episode_start": copy.deepcopy(self._episode_start), "actions": actions}

    def set_state(self, state: dict[str, Any]) -> None:
        """Rebuild the episode recorded by :meth:`get_state` by replaying it.

        The environment then continues exactly as the recorded one would have: same
        simulation state, same random draws, same ``np_random`` position.
        """
        start = state.get("episode_start")
        self.model = None
        self._episode_actions = []
        if start is None:
            self._episode_start = None
            return
        self.np_random.bit_generator.state = copy.deepcopy(start)
        self.reset()
        for action in np.asarray(state["actions"], dtype=np.int64):
            self.step(action)

    def _budget_exhausted(self) -> bool:
        assert self.model is not None
        if self.model.budget is None or self.min_send_cost <= 0:
            return False
        return self.model.budget_remaining + _BUDGET_TOL < self.min_send_cost

    def _observation(self) -> np.ndarray:
        assert self.model is not None
        model = self.model
        obs = np.zeros((self.n_personas, len(OBS_FEATURES)), dtype=np.float64)
        if model.last_outcome is not None:
            sendable = self.campaigns.sendable
            sent = model.last_outcome.assigned[:, sendable].sum(axis=1)
            hits = model.last_outcome.responses[:, sendable].sum(axis=1)
            obs[:, 0] = np.divide(hits, sent, out=np.zeros(self.n_personas), where=sent > 0)
        obs[:, 1] = [float(agent.fatigue.mean()) if agent.size else 0.0 for agent in model.cohorts]
        if model.budget is None:
            obs[:, 2] = 1.0
        else:
            obs[:, 2] = model.budget_remaining / model.budget
        obs[:, 3] = (self.horizon - model.week) / self.horizon
        low = self.observation_space.low.reshape(self.n_personas, -1)
        high = self.observation_space.high.reshape(self.n_personas, -1)
        return np.clip(obs, low, high).astype(np.float32).reshape(-1)


class FlatActionWrapper(gym.ActionWrapper[np.ndarray, np.ndarray, np.int64]):
    """Expose a ``MultiDiscrete`` action space as one ``Discrete`` joint action (for DQN).

    Joint action ``a`` maps to ``np.unravel_index(a, nvec)``.

    Raises
    ------
    ValueError
        If the wrapped action space is not ``MultiDiscrete`` or has more than
        :data:`MAX_FLAT_ACTIONS` joint actions.
    """

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        if not isinstance(env.action_space, spaces.MultiDiscrete):
            raise ValueError(
                f"FlatActionWrapper needs a MultiDiscrete action space, got {env.action_space}"
            )
        self.nvec = np.asarray(env.action_space.nvec, dtype=np.int64).reshape(-1)
        n = int(np.prod(self.nvec))
        if n > MAX_FLAT_ACTIONS:
            raise ValueError(
                f"DQN needs a small joint action space: {' x '.join(map(str, self.nvec))} = {n} "
                f"joint actions exceeds {MAX_FLAT_ACTIONS}; use fewer personas or campaigns, "
                "or a MultiDiscrete-capable algorithm (ppo, a2c)"
            )
        self.action_space = spaces.Discrete(n)

    def action(self, action: np.int64 | int) -> np.ndarray:
        """Unflatten a joint action into the per-persona action vector."""
        return np.array(np.unravel_index(int(action), tuple(self.nvec)), dtype=np.int64)
