"""The base of every config model: one that refuses unknown keys."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A config model that refuses unknown keys."""

    model_config = ConfigDict(extra="forbid")
