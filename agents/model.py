"""``CampaignModel``: the Mesa model in which persona cohorts respond to campaigns each week."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import mesa
import numpy as np
from scipy import sparse

from personasim.agents.persona_agent import PersonaAgent
from personasim.behaviour.population import CohortTraits, sample_cohort
from personasim.behaviour.response import RESPONSE_MODELS, ResponseContext
from personasim.behaviour.transition import EventCalendar, InfluenceOperator
from personasim.config.campaign import Campaign, CampaignArrays
from personasim.config.persona import Persona, cohort_sizes
from personasim.config.schema import ExperimentConfig
from personasim.config.sections import DynamicsConfig, EventConfig
from personasim.core.registry import Registry
from personasim.core.types import NO_SEND


@dataclass(frozen=True)
class StepOutcome:
    """What one week produced.

    Attributes
    ----------
    assigned
        ``(n_personas, n_campaigns)`` recipients assigned each campaign (control included).
    responses
        ``(n_personas, n_campaigns)`` responders among them.
    organic
        ``(n_personas,)`` responders among recipients sent nothing.
    cost, value
        Spend on sends and value of responses to sent (non-control) campaigns.
    """

    assigned: np.ndarray
    responses: np.ndarray
    organic: np.ndarray
    cost: float
    value: float

    @property
    def reward(self) -> float:
        """Value of responses minus cost of sends."""
        return self.value - self.cost


class CampaignModel(mesa.Model):
    """Persona cohorts receiving campaigns week by week.

    Each week: word-of-mouth exposure is computed from last week's responses, every persona
    agent draws its cohort's responses to the pending assignment, fatigue transitions, and
    the data collector records the week.

    Parameters
    ----------
    personas, sizes
        The personas and their cohort sizes.
    campaigns
        Campaigns in action-index order.
    dynamics
        Fatigue and influence settings.
    events
        External-events calendar.
    response_model
        Registered response model name.
    budget
        Send budget for the episode (``None``: unlimited).
    adjacency
        Recipient graph in population order (``None``: no influence).
    rng
        Seed or generator: the model's single source of randomness.
    """

    def __init__(
        self,
        personas: Sequence[Persona],
        sizes: Sequence[int],
        campaigns: Sequence[Campaign],
        dynamics: DynamicsConfig | None = None,
        events: Sequence[EventConfig] = (),
        response_model: str = "logistic",
        budget: float | None = None,
        adjacency: sparse.spmatrix | None = None,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(rng=rng)
        dynamics = dynamics or DynamicsConfig()
        self.personas = list(personas)
        self.campaigns = CampaignArrays.from_campaigns(list(campaigns))
        self.response_model = RESPONSE_MODELS.get(response_model)()
        self.calendar = EventCalendar(events, self.campaigns.channels)
        self.fatigue_weight = dynamics.fatigue.weight if dynamics.fatigue.enabled else 0.0
        self.fatigue_recovery = dynamics.fatigue.recovery if dynamics.fatigue.enabled else 1.0
        self.influence_weight = dynamics.influence.weight if dynamics.influence.enabled else 0.0
        self.budget = budget
        self.budget_remaining = float("inf") if budget is None else float(budget)

        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.n_recipients = int(offsets[-1])
        use_influence = adjacency is not None and self.influence_weight > 0
        self.influence_operator = InfluenceOperator(adjacency) if use_influence else None
        self.influence: np.ndarray | None = None
        self.cohorts: list[PersonaAgent] = []
        self._populate([int(s) for s in sizes], offsets)
        shape = (len(self.personas), self.campaigns.n)
        self.assigned = np.zeros(shape, dtype=np.int64)
        self.responses = np.zeros(shape, dtype=np.int64)
        self.organic = np.zeros(len(self.personas), dtype=np.int64)
        self.pending_assignment: list[int | np.ndarray] = [NO_SEND] * len(self.personas)
        self.last_outcome: StepOutcome | None = None
        self.datacollector = mesa.DataCollector(
            model_reporters={
                "week": "week",
                "sends": lambda m: m.last_outcome.assigned[:, m.campaigns.sendable].sum(),
                "responses": lambda m: m.last_outcome.responses[:, m.campaigns.sendable].sum(),
                "response_rate": "last_response_rate",
                "mean_fatigue": lambda m: float(m.fatigue.mean()),
                "spend": lambda m: m.last_outcome.cost,
                "value": lambda m: m.last_outcome.value,
                "reward": lambda m: m.last_outcome.reward,
                "budget_remaining": "budget_remaining",
            }
        )

    def _populate(self, sizes: list[int], offsets: np.ndarray) -> None:
        """Draw each persona's cohort and create the agents (one per persona here).

        Engines that hold recipients differently override this hook.
        """
        self.fatigue = np.zeros(self.n_recipients, dtype=np.float32)
        self.responded = np.zeros(self.n_recipients, dtype=bool)
        self.exposed = np.zeros(self.n_recipients, dtype=bool)
        self._draws = np.empty(max(sizes, default=0), dtype=np.float32)
        for j, persona in enumerate(self.personas):
            cohort = slice(int(offsets[j]), int(offsets[j + 1]))
            traits = sample_cohort(persona, sizes[j], self.campaigns, self.rng)
            self.cohorts.append(PersonaAgent(self, persona, j, cohort, traits))

    def response_probability(
        self,
        traits: CohortTraits,
        fatigue: np.ndarray,
        persona_id: str,
        assignment: int | np.ndarray,
        week: int,
        influence: np.ndarray | None,
    ) -> np.ndarray:
        """P(response) of recipients of one persona in ``week`` under ``assignment`` (no draws).

        Asks the registered response model, with ``week``'s events for ``persona_id`` and
        the model's dynamics. ``fatigue`` and ``influence`` (their neighbour-response share,
        or ``None``) are those recipients' own, aligned with ``traits``.
        """
        shift, price, _ = self.calendar.effects(week, persona_id)
        context = ResponseContext(
            week=week,
            logit_shift=shift,
            price_multiplier=price,
            fatigue_weight=self.fatigue_weight,
            influence_weight=self.influence_weight,
            influence=influence,
        )
        return self.response_model.probability(
            traits, fatigue, self.campaigns, assignment, context
        )

    def uniform(self, n: int) -> np.ndarray:
        """``n`` float32 uniform draws from the model's generator, in a reused buffer."""
        return self.rng.random(dtype=np.float32, out=self._draws[:n])

    @property
    def state_nbytes(self) -> int:
        """Bytes of simulation state: traits, per-recipient state, graph and buffers.

        The graph is counted although the environment shares it between episodes.
        """
        arrays = [self.fatigue, self.responded, self.exposed, self._draws]
        total = sum(a.nbytes for a in arrays) + sum(c.traits.nbytes for c in self.cohorts)
        if self.influence_operator is not None:  # the operator and the weekly share
            total += self.influence_operator.nbytes + 4 * self.n_recipients
        return int(total)

    @property
    def week(self) -> int:
        """Weeks simulated so far (Mesa's step counter)."""
        return int(self.steps)

    @property
    def persona_ids(self) -> tuple[str, ...]:
        """Persona ids in agent order."""
        return tuple(p.id for p in self.personas)

    @property
    def last_response_rate(self) -> float:
        """Responders per send among last week's sent recipients."""
        if self.last_outcome is None:
            return 0.0
        sent = self.last_outcome.assigned[:, self.campaigns.sendable].sum()
        hits = self.last_outcome.responses[:, self.campaigns.sendable].sum()
        return float(hits / sent) if sent else 0.0

    def send(self, actions: Sequence[int]) -> StepOutcome:
        """Send one campaign (or :data:`NO_SEND`) to each persona's whole cohort for a week.

        When the budget cannot cover every send, each sending cohort is sent to the same
        random fraction of its recipients that the remaining budget pays for.
        """
        actions = [int(a) for a in actions]
        if len(actions) != len(self.cohorts):
            raise ValueError(f"expected {len(self.cohorts)} actions, got {len(actions)}")
        needed = sum(agent.size * float(self.campaigns.cost[a]) for agent, a in zip(
            self.cohorts, actions, strict=True) if a >= 0)
        assignment: list[int | np.ndarray] = list(actions)
        if needed > self.budget_remaining:
            fraction = max(self.budget_remaining, 0.0) / needed
            for j, agent in enumerate(self.cohorts):
                if actions[j] >= 0 and self.campaigns.cost[actions[j]] > 0:
                    chosen = np.full(agent.size, NO_SEND, dtype=np.int64)
                    count = int(np.floor(fraction * agent.size))
                    chosen[self.rng.permutation(agent.size)[:count]] = actions[j]
                    assignment[j] = chosen
        return self.send_assignment(assignment)

    def send_assignment(self, assignment: Sequence[int | np.ndarray]) -> StepOutcome:
        """Run one week with a per-cohort assignment: a campaign index or a per-recipient array."""
        self.pending_assignment = list(assignment)
        self.step()
        assert self.last_outcome is not None
        return self.last_outcome

    def step(self) -> None:
        """One week: influence, responses, fatigue, bookkeeping, data collection."""
        if self.influence_operator is not None:
            self.influence = self.influence_operator.neighbour_share(self.responded)
        self._start_week()
        self.agents.do("respond")
        self.agents.do("transition")
        self._finish_week()

    def _start_week(self) -> None:
        """Zero the week's tallies."""
        self.assigned[:] = 0
        self.responses[:] = 0
        self.organic[:] = 0

    def _finish_week(self) -> None:
        """Charge the week's sends, record its outcome and collect data."""
        cost = float((self.assigned * self.campaigns.cost).sum())
        sendable = self.campaigns.sendable
        value = float((self.responses[:, sendable] * self.campaigns.value[sendable]).sum())
        self.budget_remaining -= cost
        self.last_outcome = StepOutcome(
            self.assigned.copy(), self.responses.copy(), self.organic.copy(), cost, value
        )
        self.datacollector.collect(self)

    def record(
        self,
        index: int,
        assignment: int | np.ndarray,
        responded: np.ndarray,
        exposed: np.ndarray,
    ) -> None:
        """Tally a cohort's week and mark who was exposed (called by the persona agent)."""
        control = self.campaigns.control_index
        if np.isscalar(assignment):
            k = int(assignment)
            is_sent = k >= 0 and k != control
            exposed[:] = is_sent
            if k < 0:
                self.organic[index] += int(np.count_nonzero(responded))
            else:
                self.assigned[index, k] += responded.size
                self.responses[index, k] += int(np.count_nonzero(responded))
            return
        assignment = np.asarray(assignment)
        assigned = assignment >= 0
        exposed[:] = assigned if control is None else assigned & (assignment != control)
        n = self.campaigns.n
        self.assigned[index] += np.bincount(assignment[assigned], minlength=n)
        self.responses[index] += np.bincount(
            assignment[assigned], weights=responded[assigned], minlength=n
        ).astype(np.int64)
        self.organic[index] += int(responded[~assigned].sum())

    def recipient_ids(self, index: int) -> np.ndarray:
        """Synthetic recipient ids of cohort ``index``: ``<persona_id>-<number>``."""
        persona_id = self.personas[index].id
        n = self.cohorts[index].size
        return np.array([f"{persona_id}-{i:07d}" for i in range(n)], dtype=object)

    def expected_response(self, actions: Sequence[int]) -> np.ndarray:
        """Expected responders per persona if ``actions`` were sent now (no randomness drawn).

        Used by the myopic oracle, which knows the true parameters.
        """
        influence = None
        if self.influence_operator is not None:
            influence = self.influence_operator.neighbour_share(self.responded)
        out = np.zeros(len(self.cohorts), dtype=np.float64)
        for j, agent in enumerate(self.cohorts):
            p = agent.response_probability(int(actions[j]), self.week + 1, influence)
            out[j] = float(p.sum())
        return out


ENGINES: Registry[type[CampaignModel]] = Registry("simulation engine")
ENGINES.add("cohort", CampaignModel)


def simulation_from_config(
    config: ExperimentConfig,
    personas: Sequence[Persona],
    campaigns: Sequence[Campaign],
    events: Sequence[EventConfig],
    rng: np.random.Generator | int,
    adjacency: sparse.spmatrix | None = None,
) -> CampaignModel:
    """A fresh simulation of ``personas`` with the config's engine, dynamics and budget.

    Cohort sizes split ``config.population.size`` by persona share; ``adjacency`` is the word
    of mouth graph (``None``: no influence, as one A/B week needs none).
    """
    engine = ENGINES.get(config.simulation.engine)
    return engine(
        personas, cohort_sizes(list(personas), config.population.size), campaigns,
        config.dynamics, events, config.simulation.response_model, config.simulation.budget,
        adjacency, rng,
    )
