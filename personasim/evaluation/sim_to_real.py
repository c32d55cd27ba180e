"""Sim-to-real check: how well the posterior-calibrated simulation predicts held-out customers.

For each replication the Mesa simulation is rebuilt from one posterior draw (personas
calibrated to that draw with :func:`~personasim.bayes.calibration.calibrate_personas`), given
exactly the held-out customers' persona x arm counts, and run for one A/B week. Across
replications the simulated response rate of each persona x arm cell has a predictive
interval that carries both the posterior's uncertainty and the binomial noise of a cell of
that size; the observed held-out rate should fall inside the 90% interval about 90% of the
time when the simulation is calibrated.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from personasim.agents.model import ENGINES
from personasim.bayes.calibration import calibrate_personas
from personasim.config.campaign import Campaign
from personasim.config.persona import Persona
from personasim.config.sections import DynamicsConfig, EventConfig
from personasim.core.types import CAMPAIGN_ID, OUTCOME, PERSONA_ID, Posterior
from personasim.ranking.prioritization import draw_subset

logger = logging.getLogger(__name__)

SIM_COLUMNS = ("persona_id", "campaign_id", "heldout_customers", "observed_responses",
               "observed_rate", "observed_low", "observed_high", "simulated_rate",
               "simulated_low", "simulated_high", "inside")


@dataclass(frozen=True)
class SimulationSettings:
    """How the simulation is built (as in the run's config)."""

    engine: str = "cohort"
    response_model: str = "logistic"
    dynamics: DynamicsConfig | None = None
    events: Sequence[EventConfig] = ()


def wilson_interval(successes: np.ndarray, trials: np.ndarray, level: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for binomial proportions (NaN where ``trials`` is 0)."""
    z = float(norm.ppf(0.5 + level / 2))
    n = np.asarray(trials, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.asarray(successes, dtype=np.float64) / n
        centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return centre - half, centre + half


def simulate_cells(personas: list[Persona], posterior: Posterior, campaigns: list[Campaign],
                   exposures: np.ndarray, settings: SimulationSettings, seed: int,
                   replications: int = 200) -> np.ndarray:
    """Simulated response rates of held-out-sized cells, one row per replication.

    Parameters
    ----------
    personas
        The prior personas (calibrated per draw here).
    posterior
        Posterior draws; replication ``r`` uses an evenly spaced draw.
    campaigns
        Campaigns in the order of ``exposures``' columns.
    exposures
        ``(n_personas, n_campaigns)`` held-out customers per cell.
    settings
        Engine, response model, dynamics and events of the simulation.
    seed
        Seed of the simulation's generator.
    replications
        Simulated A/B weeks.

    Returns
    -------
    numpy.ndarray
        ``(replications, n_personas, n_campaigns)`` response rates (NaN for empty cells).
    """
    engine = ENGINES.get(settings.engine)
    sizes = exposures.sum(axis=1)
    keep = np.flatnonzero(sizes > 0)
    chosen = [personas[j] for j in keep]
    assignment = [np.repeat(np.arange(exposures.shape[1]), exposures[j]) for j in keep]
    rng = np.random.default_rng(seed)
    picks = draw_subset(posterior.draws.shape[0], replications)
    picks = picks[rng.permutation(len(picks))] if len(picks) < replications else picks
    rates = np.full((replications, *exposures.shape), np.nan)
    for r in range(replications):
        s = int(picks[r % len(picks)])
        one = Posterior(posterior.persona_ids, posterior.campaign_ids,
                        posterior.draws[s : s + 1], posterior.diagnostics)
        calibrated = calibrate_personas(chosen, one, campaigns)
        model = engine(calibrated, [int(sizes[j]) for j in keep], campaigns,
                       settings.dynamics or DynamicsConfig(), settings.events,
                       settings.response_model, None, None, rng)
        model.send_assignment([a.copy() for a in assignment])
        with np.errstate(invalid="ignore", divide="ignore"):
            rates[r, keep] = model.responses / np.where(model.assigned > 0, model.assigned,
                                                        np.nan)
    return rates


def sim_to_real(personas: list[Persona], posterior: Posterior, campaigns: list[Campaign],
                heldout: pd.DataFrame, settings: SimulationSettings, seed: int,
                replications: int = 200, level: float = 0.9) -> pd.DataFrame:
    """Simulated vs observed held-out response rates per persona x arm.

    Parameters
    ----------
    personas, posterior, campaigns, settings, seed, replications
        See :func:`simulate_cells`.
    heldout
        Held-out rows: ``persona_id, campaign_id, outcome``.
    level
        Level of both intervals: the simulated predictive interval and the observed rate's
        Wilson interval.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SIM_COLUMNS`, one row per cell with held-out customers; ``inside``
        says whether the observed rate lies in the simulated interval.
    """
    p_index = {p.id: j for j, p in enumerate(personas)}
    c_index = {c.id: k for k, c in enumerate(campaigns)}
    rows = heldout[PERSONA_ID].astype(str).map(p_index).to_numpy(np.int64)
    cols = heldout[CAMPAIGN_ID].astype(str).map(c_index).to_numpy(np.int64)
    shape = (len(personas), len(campaigns))
    exposures = np.zeros(shape, dtype=np.int64)
    responses = np.zeros(shape, dtype=np.int64)
    np.add.at(exposures, (rows, cols), 1)
    np.add.at(responses, (rows, cols), heldout[OUTCOME].to_numpy(np.int64))
    rates = simulate_cells(personas, posterior, campaigns, exposures, settings, seed,
                           replications)
    tail = (1 - level) / 2
    with np.errstate(invalid="ignore"):
        sim_mean = np.nanmean(rates, axis=0)
        sim_low, sim_high = np.nanquantile(rates, [tail, 1 - tail], axis=0)
        observed = responses / np.where(exposures > 0, exposures, np.nan)
    obs_low, obs_high = wilson_interval(responses, exposures, level)
    j, k = np.nonzero(exposures > 0)
    frame = pd.DataFrame({
        "persona_id": [personas[a].id for a in j],
        "campaign_id": [campaigns[b].id for b in k],
        "heldout_customers": exposures[j, k],
        "observed_responses": responses[j, k],
        "observed_rate": observed[j, k],
        "observed_low": obs_low[j, k],
        "observed_high": obs_high[j, k],
        "simulated_rate": sim_mean[j, k],
        "simulated_low": sim_low[j, k],
        "simulated_high": sim_high[j, k],
    })
    frame["inside"] = ((frame["observed_rate"] >= frame["simulated_low"])
                       & (frame["observed_rate"] <= frame["simulated_high"]))
    logger.info("sim-to-real: %d of %d held-out cells inside the simulated %.0f%% interval",
                int(frame["inside"].sum()), len(frame), 100 * level)
    return frame[list(SIM_COLUMNS)]
