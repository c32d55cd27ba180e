"""Stage: the Bayesian update, and the personas re-parameterized from its posterior."""

from __future__ import annotations

from dataclasses import dataclass

from personasim.agents.abtest import simulate_ab_test
from personasim.bayes.calibration import calibrate_personas
from personasim.bayes.update import InferenceOutcome, infer_stage
from personasim.config.persona import Persona
from personasim.core.types import ABCounts, ABResults, Posterior
from personasim.experiments.progress import Advance
from personasim.experiments.seeds import stage_seed
from personasim.experiments.stage import RunContext, Stage
from personasim.experiments.stages.ab_test import build_simulation
from personasim.experiments.stages.inputs import Inputs

STAGE = Stage("inference", "Bayesian update (PyMC)", saved=True)


@dataclass(frozen=True)
class InferenceResult:
    """The posterior with its diagnostics, and the personas calibrated from it."""

    outcome: InferenceOutcome
    personas: list[Persona]

    @property
    def posterior(self) -> Posterior:
        """The posterior response rates."""
        return self.outcome.posterior


def infer(ctx: RunContext, inputs: Inputs, ab: ABResults) -> InferenceOutcome:
    """Posterior response rates (see :func:`personasim.bayes.update.infer_stage`).

    With a simulated A/B test, ``ab_test.waves`` further simulated waves show the estimates
    closing in on the simulation's truth.
    """
    config = ctx.config

    def wave(i: int) -> ABCounts:
        model = build_simulation(ctx, inputs.personas, inputs,
                                 stage_seed(config.seed, f"wave-{i}"))
        return simulate_ab_test(model, config.ab_test.sample_size).counts

    simulated = ab.source == "simulated"
    return infer_stage(config.inference, inputs.personas, inputs.campaigns, ab,
                       stage_seed(config.seed, "inference"), inputs.recipients,
                       config.ab_test.waves if simulated else 0, wave if simulated else None)


def run(ctx: RunContext, advance: Advance, inputs: Inputs, ab: ABResults) -> InferenceResult:
    """Fit the posterior (failed diagnostics are logged as warnings) and calibrate personas."""
    outcome = infer(ctx, inputs, ab)
    return InferenceResult(outcome, calibrate_personas(inputs.personas, outcome.posterior,
                                                       inputs.campaigns))
