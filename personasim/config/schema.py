"""The experiment config: one YAML file, validated by pydantic with ``extra="forbid"``.

:class:`ExperimentConfig` holds one model per section (:mod:`personasim.config.sections`);
:func:`personasim.config.loading.load_config` reads it from a file and turns every problem
into a one-line :class:`~personasim.core.errors.ConfigError` naming the file and field.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from personasim.config.campaign import Campaign
from personasim.config.persona import Persona
from personasim.config.sections import (
    ABTestConfig,
    DataConfig,
    DatasetConfig,
    DynamicsConfig,
    InferenceConfig,
    OutputConfig,
    PlanConfig,
    PolicyConfig,
    PopulationConfig,
    PrioritizationConfig,
    SimulationConfig,
    StrictModel,
    SynthesisConfig,
)
from personasim.core.suggest import did_you_mean


class ExperimentConfig(StrictModel):
    """A whole experiment."""

    name: str = Field(min_length=1)
    description: str = ""
    seed: int = Field(0, ge=0)
    personas: list[Persona] = Field(default_factory=list)
    campaigns: list[Campaign] = Field(default_factory=list)
    data: DataConfig = Field(default_factory=DataConfig)
    dataset: DatasetConfig | None = Field(None, description="A public dataset as the data.")
    synthesis: SynthesisConfig = Field(default_factory=SynthesisConfig)
    population: PopulationConfig = Field(default_factory=PopulationConfig)
    simulation: SimulationConfig = Field(default_factory=SimulationConfig)
    dynamics: DynamicsConfig = Field(default_factory=DynamicsConfig)
    ab_test: ABTestConfig = Field(default_factory=ABTestConfig)
    inference: InferenceConfig = Field(default_factory=InferenceConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    prioritization: PrioritizationConfig = Field(default_factory=PrioritizationConfig)
    plan: PlanConfig = Field(default_factory=PlanConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)

    def _check_shares(self) -> None:
        """Shares written in the config sum to 1, unless they are declared relative."""
        written = [p for p in self.personas if "share" in p.model_fields_set]
        if not written or self.population.relative_shares:
            return
        total = sum(p.share for p in self.personas)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"personas: shares sum to {total:g}, not 1; correct them, or set "
                             "population.relative_shares: true to rescale them")

    def plan_budget(self) -> float:
        """``plan.budget``, else ``simulation.budget``, else no limit (``inf``)."""
        for budget in (self.plan.budget, self.simulation.budget):
            if budget is not None:
                return float(budget)
        return float("inf")

    def _check_plan(self, campaigns: set[str]) -> None:
        error = _plan_errors(self.plan, campaigns, self.simulation.horizon)
        if error:
            raise ValueError(error)

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentConfig:
        if self.dataset is not None and (self.personas or self.campaigns
                                         or self.data.files()):
            raise ValueError("dataset: give a dataset or personas/campaigns/data files, not both")
        if not self.personas and self.data.recipients is None and self.dataset is None:
            raise ValueError("give 'personas' or 'data.recipients' (to synthesize personas)")
        if not self.campaigns and self.data.campaigns is None and self.dataset is None:
            raise ValueError("give 'campaigns' or 'data.campaigns'")
        _unique([p.id for p in self.personas], "personas", "persona id")
        self._check_shares()
        _unique([c.id for c in self.campaigns], "campaigns", "campaign id")
        if sum(c.control for c in self.campaigns) > 1:
            raise ValueError("campaigns: at most one campaign may be the control")
        known = {c.id for c in self.campaigns}
        if self.campaigns:
            for i, persona in enumerate(self.personas):
                for cid in persona.traits.affinity:
                    if cid not in known:
                        raise ValueError(
                            f"personas.{i}.traits.affinity: campaign {cid!r} is not defined"
                            f"{did_you_mean(cid, known)}"
                        )
                for c in self.campaigns:
                    if c.control:
                        continue
                    try:
                        persona.traits.propensity_for(c.channel)
                    except KeyError:
                        raise ValueError(
                            f"personas.{i}.traits.propensity: no entry for channel "
                            f"{c.channel!r} (campaign {c.id!r}) and no 'default'"
                        ) from None
        self._check_plan(known)
        persona_ids = {p.id for p in self.personas}
        for i, event in enumerate(self.dynamics.events):
            for pid in event.personas or []:
                if persona_ids and pid not in persona_ids:
                    raise ValueError(
                        f"dynamics.events.{i}.personas: persona {pid!r} is not defined"
                        f"{did_you_mean(pid, persona_ids)}"
                    )
        return self


def _plan_errors(plan: PlanConfig, campaigns: set[str], horizon: int) -> str | None:
    """The first inconsistency of the plan section with the campaigns and the horizon."""
    for cid in plan.capacity:
        if campaigns and cid not in campaigns:
            return (f"plan.capacity: campaign {cid!r} is not defined"
                    f"{did_you_mean(cid, campaigns)}")
    late = [w for w in plan.quiet_weeks if w > horizon]
    if late:
        return f"plan.quiet_weeks: week {late[0]} is after the horizon ({horizon} weeks)"
    return None


def _unique(values: list[str], where: str, what: str) -> None:
    seen: set[str] = set()
    for i, v in enumerate(values):
        if v in seen:
            raise ValueError(f"{where}.{i}.id: duplicate {what} {v!r}")
        seen.add(v)
