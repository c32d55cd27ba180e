"""Mesa agent models: persona cohorts as agents (default), or one agent per recipient."""

from __future__ import annotations

from personasim.agents.model import ENGINES, NO_SEND, CampaignModel, StepOutcome
from personasim.agents.persona_agent import PersonaAgent
from personasim.agents.recipient_model import RecipientAgent, RecipientCohort, RecipientModel

__all__ = [
    "ENGINES",
    "NO_SEND",
    "CampaignModel",
    "PersonaAgent",
    "RecipientAgent",
    "RecipientCohort",
    "RecipientModel",
    "StepOutcome",
]
