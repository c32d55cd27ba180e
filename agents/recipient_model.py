"""``RecipientModel``: the per-recipient reference engine, one Mesa agent per recipient.

This is the textbook Mesa way to model an audience: every recipient is a
:class:`RecipientAgent` with its own traits and state, and each week runs in stages over all
agents (observe the neighbours, respond, transition). Every agent calls the *same* registered
response model and :func:`~personasim.behaviour.transition.update_fatigue` as the cohort
engine, on its own length-1 arrays, so the two engines simulate the same process. With the same
seed they even draw the same traits and the same uniforms in the same order, so their histories
agree recipient by recipient (up to float32 rounding); with different seeds they agree within
sampling error (``tests/agents/test_engines.py``). The cohort engine is measured against this one in
``benchmarks/bench_simulation.py``. Select it with ``simulation.engine: per_recipient``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import mesa
import numpy as np

from personasim.agents.model import ENGINES, CampaignModel
from personasim.behaviour.population import CohortTraits, sample_cohort
from personasim.behaviour.transition import update_fatigue
from personasim.config.persona import Persona


class RecipientAgent(mesa.Agent):
    """One recipient: its own traits (length-1 float32 arrays) and state.

    Parameters
    ----------
    model
        The owning :class:`RecipientModel`.
    persona
        The persona the recipient was drawn from.
    index
        The persona's position in the model.
    local
        The recipient's position in its persona's cohort.
    traits
        The recipient's traits (a :class:`CohortTraits` of one).
    """

    model: RecipientModel

    def __init__(
        self, model: RecipientModel, persona: Persona, index: int, local: int, traits: CohortTraits
    ) -> None:
        super().__init__(model)
        self.persona = persona
        self.index = index
        self.local = local
        self.traits = traits
        self.fatigue = np.zeros(1, dtype=np.float32)
        self.responded = False
        self.exposed = False
        self.influence = 0.0
        self.neighbours: list[RecipientAgent] = []
        self.weights: list[float] = []

    def neighbour_share(self) -> float:
        """Weighted share of this recipient's neighbours who responded last week."""
        return float(sum(w for w, other in zip(self.weights, self.neighbours, strict=True)
                         if other.responded))

    def campaign(self) -> int:
        """Return this week's campaign index for this recipient (``-1``: nothing sent)."""
        assignment = self.model.pending_assignment[self.index]
        if np.isscalar(assignment):
            return int(assignment)
        return int(np.asarray(assignment)[self.local])

    def response_probability(self, campaign: int, week: int, influence: float | None) -> float:
        """P(response) under ``campaign`` in ``week`` from the registered response model."""
        own = None if influence is None else np.array([influence], dtype=np.float32)
        p = self.model.response_probability(
            self.traits, self.fatigue, self.persona.id, campaign, week, own
        )
        return float(p[0])

    def observe(self) -> None:
        """Stage 1: read last week's responses of the neighbours."""
        self.influence = self.neighbour_share()

    def respond(self) -> None:
        """Stage 2: draw this week's response and report it to the model."""
        model = self.model
        campaign = self.campaign()
        influence = self.influence if model.influence_operator is not None else None
        p = self.response_probability(campaign, model.week, influence)
        # one float32 draw per agent: the same stream, in the same order, as the cohort engine
        self.responded = bool(self.rng.random(dtype=np.float32) < p)
        self.exposed = campaign >= 0 and campaign != model.campaigns.control_index
        model.tally(self.index, campaign, self.responded)

    def transition(self) -> None:
        """Stage 3: decay fatigue and add this week's exposure."""
        model = self.model
        _, _, multiplier = model.calendar.effects(model.week, self.persona.id)
        update_fatigue(self.fatigue, self.exposed, self.traits.fatigue_rate,
                       model.fatigue_recovery, multiplier)


@dataclass
class RecipientCohort:
    """A persona's recipients, for code that reads cohorts (sizes, mean fatigue).

    Not a Mesa agent: in this engine the agents are the recipients themselves.
    """

    persona: Persona
    index: int
    cohort: slice
    members: list[RecipientAgent] = field(default_factory=list)

    @property
    def size(self) -> int:
        """Number of recipients."""
        return len(self.members)

    @property
    def fatigue(self) -> np.ndarray:
        """``(size,)`` float32 fatigue gathered from the members."""
        return np.fromiter((a.fatigue[0] for a in self.members), np.float32, self.size)


class RecipientModel(CampaignModel):
    """The campaign simulation with one Mesa agent per recipient.

    Same constructor, outcomes and data collection as
    :class:`~personasim.agents.model.CampaignModel`; traits are drawn by the same
    :func:`~personasim.behaviour.population.sample_cohort` calls, so one seed gives both engines the
    same audience. Each week the agents run in three stages so that everyone reads last
    week's neighbour responses: ``observe``, ``respond``, ``transition``.
    """

    def _populate(self, sizes: list[int], offsets: np.ndarray) -> None:
        self.recipients: list[RecipientAgent] = []
        for j, persona in enumerate(self.personas):
            traits = sample_cohort(persona, sizes[j], self.campaigns, self.rng)
            group = RecipientCohort(persona, j, slice(int(offsets[j]), int(offsets[j + 1])))
            for i in range(sizes[j]):
                group.members.append(RecipientAgent(self, persona, j, i, _one(traits, i)))
            self.recipients.extend(group.members)
            self.cohorts.append(group)  # type: ignore[arg-type]
        operator = self.influence_operator
        if operator is not None:
            for i, agent in enumerate(self.recipients):
                neighbours, weights = operator.row(i)
                agent.neighbours = [self.recipients[t] for t in neighbours]
                agent.weights = weights.tolist()

    @property
    def fatigue(self) -> np.ndarray:  # type: ignore[override]
        """``(n,)`` float32 fatigue gathered from the agents (population order)."""
        return np.fromiter((a.fatigue[0] for a in self.recipients), np.float32,
                           self.n_recipients)

    @property
    def responded(self) -> np.ndarray:  # type: ignore[override]
        """``(n,)`` bool: who responded last week."""
        return np.fromiter((a.responded for a in self.recipients), bool, self.n_recipients)

    @property
    def exposed(self) -> np.ndarray:  # type: ignore[override]
        """``(n,)`` bool: who was sent a campaign last week."""
        return np.fromiter((a.exposed for a in self.recipients), bool, self.n_recipients)

    @property
    def state_nbytes(self) -> int:
        """Bytes of the agents' NumPy payloads only (Python object overhead not counted)."""
        return int(sum(a.traits.nbytes + a.fatigue.nbytes for a in self.recipients))

    def step(self) -> None:
        """One week in stages over every recipient agent, then bookkeeping."""
        self._start_week()
        if self.influence_operator is not None:
            self.agents.do("observe")
        self.agents.do("respond")
        self.agents.do("transition")
        self._finish_week()

    def tally(self, index: int, campaign: int, responded: bool) -> None:
        """Count one recipient's week (called by the agent)."""
        if campaign < 0:
            self.organic[index] += responded
        else:
            self.assigned[index, campaign] += 1
            self.responses[index, campaign] += responded

    def expected_response(self, actions: Sequence[int]) -> np.ndarray:
        """Expected responders per persona if ``actions`` were sent now (no randomness)."""
        use_influence = self.influence_operator is not None
        out = np.zeros(len(self.cohorts), dtype=np.float64)
        for agent in self.recipients:
            influence = agent.neighbour_share() if use_influence else None
            out[agent.index] += agent.response_probability(
                int(actions[agent.index]), self.week + 1, influence
            )
        return out


def _one(traits: CohortTraits, i: int) -> CohortTraits:
    """Recipient ``i``'s traits as its own length-1 arrays (copies, not views)."""
    return CohortTraits(
        base_logit=traits.base_logit[i : i + 1].copy(),
        price_sensitivity=traits.price_sensitivity[i : i + 1].copy(),
        fatigue_rate=traits.fatigue_rate[i : i + 1].copy(),
        susceptibility=traits.susceptibility[i : i + 1].copy(),
        organic=traits.organic[i : i + 1].copy(),
    )


ENGINES.add("per_recipient", RecipientModel)
