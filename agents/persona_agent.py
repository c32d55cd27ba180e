"""``PersonaAgent``: one Mesa agent per persona, holding its cohort of recipients as arrays."""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

from personasim.behaviour.population import CohortTraits
from personasim.behaviour.transition import update_fatigue
from personasim.config.persona import Persona

if TYPE_CHECKING:
    from personasim.agents.model import CampaignModel


class PersonaAgent(mesa.Agent):
    """A persona's cohort: traits and state as float32 arrays, views into the model's arrays.

    Parameters
    ----------
    model
        The owning :class:`~personasim.agents.model.CampaignModel`.
    persona
        The persona the cohort was drawn from.
    index
        The persona's position in the model (row of its outcome matrices).
    cohort
        The cohort's slice of the population arrays.
    traits
        The cohort's sampled traits.
    """

    model: CampaignModel

    def __init__(
        self,
        model: CampaignModel,
        persona: Persona,
        index: int,
        cohort: slice,
        traits: CohortTraits,
    ) -> None:
        super().__init__(model)
        self.persona = persona
        self.index = index
        self.cohort = cohort
        self.traits = traits
        self.fatigue = model.fatigue[cohort]
        self.responded = model.responded[cohort]
        self.exposed = model.exposed[cohort]

    @property
    def size(self) -> int:
        """Number of recipients in the cohort."""
        return self.traits.n

    def response_probability(
        self, assignment: int | np.ndarray, week: int, influence: np.ndarray | None
    ) -> np.ndarray:
        """P(response) of each recipient in ``week`` under ``assignment`` (no draws).

        ``influence`` is the population's neighbour-response share (or ``None``).
        """
        cohort_influence = None if influence is None else influence[self.cohort]
        return self.model.response_probability(
            self.traits, self.fatigue, self.persona.id, assignment, week, cohort_influence
        )

    def respond(self) -> None:
        """Draw this week's responses to the model's pending assignment for this cohort."""
        assignment = self.model.pending_assignment[self.index]
        p = self.response_probability(assignment, self.model.week, self.model.influence)
        np.less(self.model.uniform(self.size), p, out=self.responded)
        self.model.record(self.index, assignment, self.responded, self.exposed)

    def transition(self) -> None:
        """Update fatigue: decay, then add this week's exposures."""
        _, _, multiplier = self.model.calendar.effects(self.model.week, self.persona.id)
        assignment = self.model.pending_assignment[self.index]
        # a whole-cohort send exposes everyone or no one: one flag instead of a mask
        exposed = bool(self.exposed[0]) if np.isscalar(assignment) and self.size else self.exposed
        update_fatigue(
            self.fatigue,
            exposed,
            self.traits.fatigue_rate,
            self.model.fatigue_recovery,
            multiplier,
        )
