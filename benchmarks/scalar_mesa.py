"""A hand-written scalar Mesa engine: the fastest honest one-agent-per-recipient floor.

Benchmark-only. Each recipient is a Mesa agent doing the logistic response, fatigue and
influence in plain Python floats (``math.exp``), without calling the registered NumPy
response model as ``personasim.agents.recipient_model`` does. It shows how much of the
per-recipient engine's cost is Mesa's per-agent overhead and how much the per-agent NumPy
calls; ``bench_simulation.py`` reports the cohort engine's speed-up against both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import mesa
import numpy as np
from scipy import sparse

from personasim.behaviour.population import sample_cohort
from personasim.behaviour.transition import EventCalendar, InfluenceOperator
from personasim.config.campaign import Campaign, CampaignArrays
from personasim.config.persona import Persona
from personasim.config.sections import DynamicsConfig, EventConfig


class ScalarRecipient(mesa.Agent):
    """One recipient with float attributes; staged like the per-recipient engine."""

    model: ScalarModel

    def __init__(self, model: ScalarModel, index: int, traits: tuple[list[float], ...]) -> None:
        super().__init__(model)
        self.index = index
        self.base, (self.price, self.rate, self.susceptibility, self.organic) = traits[0], [
            t[0] for t in traits[1:]]
        self.fatigue = 0.0
        self.share = 0.0
        self.responded = False
        self.exposed = False
        self.neighbours: list[ScalarRecipient] = []
        self.weights: list[float] = []

    def observe(self) -> None:
        """Weighted share of neighbours who responded last week."""
        self.share = sum(w for w, o in zip(self.weights, self.neighbours, strict=True)
                         if o.responded)

    def respond(self) -> None:
        """Logistic response in Python floats."""
        m = self.model
        k = m.actions[self.index]
        p = self.organic
        if k >= 0 and k != m.control:
            shift, price = m.effects[self.index]
            z = (self.base[k] + m.discount[k] * price[k] * self.price + shift[k]
                 - m.fatigue_weight * self.fatigue
                 + m.influence_weight * self.susceptibility * self.share)
            p = p + (1.0 - p) / (1.0 + math.exp(-z))
            self.exposed = True
            m.assigned[self.index][k] += 1
        else:
            self.exposed = False
        self.responded = m.random.random() < p
        if self.responded and k >= 0:
            m.responses[self.index][k] += 1

    def transition(self) -> None:
        """Fatigue decays, exposures add to it."""
        m = self.model
        self.fatigue *= m.keep
        if self.exposed:
            self.fatigue += self.rate * m.fatigue_multiplier[self.index]


class ScalarModel(mesa.Model):
    """The campaign simulation as scalar Mesa agents (benchmark reference only)."""

    def __init__(
        self, personas: Sequence[Persona], sizes: Sequence[int], campaigns: Sequence[Campaign],
        dynamics: DynamicsConfig, events: Sequence[EventConfig],
        adjacency: sparse.spmatrix | None, seed: int,
    ) -> None:
        super().__init__(rng=seed)
        arrays = CampaignArrays.from_campaigns(list(campaigns))
        self.personas = list(personas)
        self.calendar = EventCalendar(events, arrays.channels)
        self.control = -2 if arrays.control_index is None else arrays.control_index
        self.discount = arrays.discount.tolist()
        self.fatigue_weight = dynamics.fatigue.weight if dynamics.fatigue.enabled else 0.0
        self.keep = 1.0 - (dynamics.fatigue.recovery if dynamics.fatigue.enabled else 1.0)
        self.influence_weight = dynamics.influence.weight if dynamics.influence.enabled else 0.0
        self.actions = [-1] * len(self.personas)
        n = len(self.personas)
        self.assigned = [[0] * arrays.n for _ in range(n)]
        self.responses = [[0] * arrays.n for _ in range(n)]
        self.recipients: list[ScalarRecipient] = []
        for j, persona in enumerate(self.personas):
            t = sample_cohort(persona, int(sizes[j]), arrays, self.rng)
            columns = (t.price_sensitivity.tolist(), t.fatigue_rate.tolist(),
                       t.susceptibility.tolist(), t.organic.tolist())
            for i, base in enumerate(t.base_logit.tolist()):
                traits = (base, *([c[i]] for c in columns))
                self.recipients.append(ScalarRecipient(self, j, traits))
        self.use_influence = adjacency is not None and self.influence_weight > 0
        if self.use_influence:
            operator = InfluenceOperator(adjacency)
            for i, agent in enumerate(self.recipients):
                neighbours, weights = operator.row(i)
                agent.neighbours = [self.recipients[t] for t in neighbours]
                agent.weights = weights.tolist()

    def send(self, actions: Sequence[int]) -> None:
        """Run one week with one campaign index per persona."""
        self.actions = [int(a) for a in actions]
        self.step()

    def step(self) -> None:
        """Resolve the week's events, then the three stages over all agents."""
        resolved = [self.calendar.effects(self.steps, p.id) for p in self.personas]
        self.effects = [(s.tolist(), pr.tolist()) for s, pr, _ in resolved]
        self.fatigue_multiplier = [f for _, _, f in resolved]
        for row in (*self.assigned, *self.responses):
            row[:] = [0] * len(row)
        if self.use_influence:
            self.agents.do("observe")
        self.agents.do("respond")
        self.agents.do("transition")

    @property
    def mean_fatigue(self) -> float:
        """Mean fatigue over recipients."""
        return float(np.mean([a.fatigue for a in self.recipients]))
