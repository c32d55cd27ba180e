"""Personas: named audience segments whose traits are probability distributions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from personasim.config.distributions import Beta, Distribution, Gamma

AttributeValue = str | float | int | bool


def _trait(default: Callable[[], Any], description: str) -> Any:
    """A trait field with a fresh default value per persona (``Field(default_factory=...)``)."""
    return Field(default_factory=default, description=description)


class PersonaTraits(BaseModel):
    """The distributions a persona's recipients draw their traits from."""

    model_config = ConfigDict(extra="forbid")

    propensity: dict[str, Distribution] = _trait(
        lambda: {"default": Beta(a=2, b=48)},
        "Base response probability per channel; key 'default' covers any channel.",
    )
    price_sensitivity: Distribution = _trait(
        lambda: Gamma(shape=2, scale=0.5),
        "Logit gain per unit of offer discount; downturn events scale it.",
    )
    fatigue_rate: Distribution = _trait(
        lambda: Beta(a=2, b=8), "Fatigue added by each exposure (decays between weeks)."
    )
    susceptibility: Distribution = _trait(
        lambda: Beta(a=2, b=8), "How strongly neighbours' responses sway this recipient."
    )
    organic: Distribution = _trait(
        lambda: Beta(a=1, b=199),
        "Probability of responding with no campaign at all (the control rate).",
    )
    affinity: dict[str, Distribution] = _trait(
        dict, "Logit offset per campaign id: how much this persona likes that campaign."
    )

    def propensity_for(self, channel: str) -> Distribution:
        """Return the propensity distribution for ``channel`` (or the ``default`` one)."""
        if channel in self.propensity:
            return self.propensity[channel]
        if "default" in self.propensity:
            return self.propensity["default"]
        raise KeyError(channel)


class Persona(BaseModel):
    """One audience segment.

    A persona stands for a cohort of recipients. Its ``share`` sets the cohort's size in a
    simulated population; its ``attributes`` describe it (and, in data mode, its profile for
    soft membership); its ``traits`` are the distributions the cohort draws from.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, description="Stable identifier, used in every output table.")
    description: str = Field("", description="Plain-language description for campaign teams.")
    share: float = Field(1.0, gt=0, description="Relative size of the cohort in the audience.")
    size: int | None = Field(
        None, ge=1, description="Exact cohort size; overrides share (set in data mode)."
    )
    attributes: dict[str, AttributeValue] = Field(
        default_factory=dict, description="Descriptive attributes (age band, region, ...)."
    )
    traits: PersonaTraits = Field(default_factory=PersonaTraits)


def cohort_sizes(personas: list[Persona], population: int) -> list[int]:
    """Split ``population`` over personas by share (exact ``size`` wins), largest remainder.

    Parameters
    ----------
    personas
        The personas, in order.
    population
        Total recipients to split among personas without an exact ``size``.

    Returns
    -------
    list[int]
        One cohort size per persona; shares sum exactly to ``population``.
    """
    fixed = {i: p.size for i, p in enumerate(personas) if p.size is not None}
    free = [i for i in range(len(personas)) if i not in fixed]
    sizes = [0] * len(personas)
    for i, n in fixed.items():
        sizes[i] = int(n)
    if free:
        total_share = sum(personas[i].share for i in free)
        raw = [population * personas[i].share / total_share for i in free]
        floors = [int(r) for r in raw]
        remainder = population - sum(floors)
        order = sorted(range(len(free)), key=lambda j: (-(raw[j] - floors[j]), j))
        for j in order[:remainder]:
            floors[j] += 1
        for j, i in enumerate(free):
            sizes[i] = max(floors[j], 1)
    return sizes
