"""Prior knowledge for the Bayesian update: persona traits, earlier posteriors, campaign features.

A prior is a :class:`PriorGrid`: per persona x campaign cell, a prior mean response rate and a
prior scale of its logit. From hand-written personas both come from the trait distributions
(:func:`trait_prior`): the mean is the expected week-one response rate, the scale the spread
of the logit response probability over the persona's recipients. From an earlier run
(:func:`posterior_prior`), they are that run's posterior mean and posterior logit spread, so
the new data update the old posterior rather than starting again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from personasim.behaviour.population import sample_cohort
from personasim.config.campaign import Campaign, CampaignArrays
from personasim.config.persona import Persona
from personasim.core.numeric import logit
from personasim.core.types import Posterior

logger = logging.getLogger(__name__)

#: Bounds of a prior logit scale: below, a prior would overrule any data; above, it says
#: nothing a flat prior would not.
MIN_SCALE, MAX_SCALE = 0.1, 2.5
@dataclass(frozen=True)
class PriorGrid:
    """Prior mean response rate and logit scale per persona x campaign.

    Attributes
    ----------
    persona_ids, campaign_ids
        Row and column labels.
    mean
        ``(P, K)`` prior mean response probabilities.
    scale
        ``(P, K)`` prior standard deviation of each cell's logit.
    source
        Where the prior came from (``"traits"`` or the earlier run's folder).
    """

    persona_ids: tuple[str, ...]
    campaign_ids: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    source: str = "traits"


def trait_prior(
    personas: list[Persona], campaigns: list[Campaign], n: int = 4000, seed: int = 0
) -> PriorGrid:
    """The prior implied by the personas' trait distributions.

    Draws ``n`` recipients per persona (fixed ``seed``, so deterministic) and computes each
    one's week-one response probability per campaign, as the simulation does with no
    fatigue or influence: ``organic + (1 - organic) * sigmoid(logit(propensity) + affinity
    + price_sensitivity * discount)`` (the control: ``organic``). The mean over recipients is
    the prior mean; the standard deviation of their logits, clipped to
    [:data:`MIN_SCALE`, :data:`MAX_SCALE`], is the prior scale.
    """
    arrays = CampaignArrays.from_campaigns(campaigns)
    means = np.zeros((len(personas), arrays.n))
    scales = np.zeros((len(personas), arrays.n))
    for j, persona in enumerate(personas):
        traits = sample_cohort(persona, n, arrays, np.random.default_rng(seed))
        z = traits.base_logit.astype(np.float64) + np.outer(
            traits.price_sensitivity, arrays.discount
        )
        organic = traits.organic.astype(np.float64)[:, None]
        p = organic + (1 - organic) * (1.0 / (1.0 + np.exp(-z)))
        if arrays.control_index is not None:
            p[:, arrays.control_index] = organic[:, 0]
        means[j] = p.mean(axis=0)
        scales[j] = logit(p).std(axis=0)
    return PriorGrid(
        tuple(p.id for p in personas),
        arrays.ids,
        means,
        np.clip(scales, MIN_SCALE, MAX_SCALE),
        "traits",
    )


def posterior_prior(
    posterior: Posterior, fallback: PriorGrid, source: str, inflate: float = 1.0
) -> PriorGrid:
    """A prior from an earlier run's posterior, cell by cell where ids match.

    Cells of ``fallback`` whose persona and campaign are both in ``posterior`` take the
    posterior mean and the posterior standard deviation of the logit (times ``inflate``, to
    allow for drift between the runs; clipped to [:data:`MIN_SCALE`, :data:`MAX_SCALE`]);
    the other cells keep ``fallback``'s values.
    """
    rows = {pid: j for j, pid in enumerate(posterior.persona_ids)}
    cols = {cid: k for k, cid in enumerate(posterior.campaign_ids)}
    draws = posterior.draws.astype(np.float64)
    mean, scale = fallback.mean.copy(), fallback.scale.copy()
    matched = 0
    for j, pid in enumerate(fallback.persona_ids):
        for k, cid in enumerate(fallback.campaign_ids):
            if pid in rows and cid in cols:
                cell = draws[:, rows[pid], cols[cid]]
                mean[j, k] = cell.mean()
                scale[j, k] = inflate * logit(cell).std()
                matched += 1
    if matched < mean.size:
        logger.warning(
            "prior run %s covers %d of %d persona x campaign cells; the rest use trait priors",
            source,
            matched,
            mean.size,
        )
    return PriorGrid(
        fallback.persona_ids,
        fallback.campaign_ids,
        mean,
        np.clip(scale, MIN_SCALE, MAX_SCALE),
        source,
    )


def campaign_features(campaigns: list[Campaign]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Numeric campaign features for the model's campaign effect, ``(K, n_features)``.

    Columns: ``discount``, an indicator per channel but the first (alphabetically) of the
    sendable campaigns, then every other numeric feature found in any campaign (missing =
    0). The model keeps a linearly independent subset (see
    :func:`~personasim.bayes.cells.standardize_features`). They let a campaign with no A/B
    data borrow from the campaigns it resembles.
    """
    arrays = CampaignArrays.from_campaigns(campaigns)
    columns: dict[str, np.ndarray] = {"discount": arrays.discount.astype(np.float64)}
    sendable_channels = sorted({c.channel for c in campaigns if not c.control})
    for channel in sendable_channels[1:]:
        columns[f"channel={channel}"] = np.array(
            [float(c.channel == channel and not c.control) for c in campaigns]
        )
    extra = sorted(
        {
            name
            for c in campaigns
            for name, value in c.features.items()
            if name != "discount" and isinstance(value, int | float) and not isinstance(value, bool)
        }
    )
    for name in extra:
        columns[name] = np.array([float(c.features.get(name, 0.0) or 0.0) for c in campaigns])
    names = tuple(columns)
    return np.column_stack([columns[n] for n in names]), names
