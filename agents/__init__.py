"""Mesa agent models: persona cohorts as agents in a campaign simulation."""

from __future__ import annotations

from personasim.agents.model import ENGINES, NO_SEND, CampaignModel, StepOutcome
from personasim.agents.persona_agent import PersonaAgent

__all__ = ["ENGINES", "NO_SEND", "CampaignModel", "PersonaAgent", "StepOutcome"]
