"""Campaigns: the stimuli a recipient can be sent (RecSim's 'documents')."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

FeatureValue = float | int | str | bool


class Campaign(BaseModel):
    """One campaign: what is sent, through which channel, what it costs and earns."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(min_length=1, description="Stable identifier, used in every output table.")
    channel: str = Field("email", description="Delivery channel (email, sms, push, ...).")
    offer: str = Field("", description="The offer in words, e.g. '20% off outerwear'.")
    copy_text: str = Field("", alias="copy", description="The message copy.")
    cost: float = Field(0.0, ge=0, description="Cost of one send, in currency units.")
    value: float = Field(0.0, ge=0, description="Economic value of one response.")
    control: bool = Field(False, description="The holdout arm: nothing is sent, nothing is paid.")
    features: dict[str, FeatureValue] = Field(
        default_factory=dict,
        description="Extra numeric or categorical columns; 'discount' (0-1) feeds the response.",
    )

    @property
    def discount(self) -> float:
        """The offer's discount in [0, 1] (0 when the campaign has none)."""
        raw = self.features.get("discount", 0.0)
        return float(raw) if isinstance(raw, int | float) else 0.0


@dataclass(frozen=True)
class CampaignArrays:
    """Campaigns as aligned arrays, for vectorized response and reward computation.

    Attributes
    ----------
    ids
        Campaign ids in index order.
    channels
        Channel name per campaign.
    cost, value
        float64 arrays (currency), one entry per campaign; the control costs nothing.
    discount
        float32 array, one entry per campaign.
    control_index
        Index of the control campaign, or ``None``.
    """

    ids: tuple[str, ...]
    channels: tuple[str, ...]
    cost: np.ndarray
    value: np.ndarray
    discount: np.ndarray
    control_index: int | None

    @classmethod
    def from_campaigns(cls, campaigns: list[Campaign]) -> CampaignArrays:
        """Build the arrays from campaign models."""
        control = [i for i, c in enumerate(campaigns) if c.control]
        return cls(
            ids=tuple(c.id for c in campaigns),
            channels=tuple(c.channel for c in campaigns),
            cost=np.array([0.0 if c.control else c.cost for c in campaigns], dtype=np.float64),
            value=np.array([c.value for c in campaigns], dtype=np.float64),
            discount=np.array([c.discount for c in campaigns], dtype=np.float32),
            control_index=control[0] if control else None,
        )

    @property
    def n(self) -> int:
        """Number of campaigns, control included."""
        return len(self.ids)

    @property
    def sendable(self) -> list[int]:
        """Indices of campaigns that are actually sent (all but the control)."""
        return [i for i in range(self.n) if i != self.control_index]
