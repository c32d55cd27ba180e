"""Synthesize personas by clustering a recipients file.

The clustering runs on a feature matrix where numeric (and bool) columns are standardized
and categorical columns one-hot encoded. :class:`PersonaProfiles` keeps that transform and
one centroid per persona, so any recipients file can later be given soft memberships. Each
persona is described in words (:mod:`personasim.audience.descriptions`) by the column roles of
``synthesis.columns`` over a known dataset's built-in ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import DBSCAN, KMeans, MiniBatchKMeans
from sklearn.metrics import silhouette_score

from personasim.audience.descriptions import describe_members, distinct
from personasim.audience.profiles import PersonaProfiles, is_numeric, squared_distances
from personasim.audience.roles import check_roles, roles_from_config
from personasim.config.campaign import Campaign
from personasim.config.distributions import Beta, Gamma
from personasim.config.persona import Persona, PersonaTraits
from personasim.config.sections import SynthesisConfig
from personasim.core.registry import Registry
from personasim.core.types import CAMPAIGN_ID, OUTCOME, RECIPIENT_ID

logger = logging.getLogger(__name__)

Synthesizer = Callable[[np.ndarray, SynthesisConfig, np.random.Generator], np.ndarray]
"""Cluster a feature matrix; return one integer label (>= 0) per row."""

SYNTHESIZERS: Registry[Synthesizer] = Registry("persona synthesizer")

MINIBATCH_ABOVE = 50_000
SCALAR_TRAITS = ("price_sensitivity", "fatigue_rate", "susceptibility")


@dataclass(frozen=True)
class SynthesisResult:
    """Synthesized personas.

    Attributes
    ----------
    personas
        Personas ``persona_1..persona_k``, largest first.
    labels
        int64 index into ``personas`` for each recipient row.
    profiles
        The transform and centroids for soft membership.
    """

    personas: list[Persona]
    labels: np.ndarray
    profiles: PersonaProfiles


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


def _subsample(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    if n <= size:
        return np.arange(n)
    return np.sort(rng.choice(n, size=size, replace=False))


@SYNTHESIZERS.register("kmeans")
def kmeans_labels(x: np.ndarray, config: SynthesisConfig, rng: np.random.Generator) -> np.ndarray:
    """K-means; with ``k='auto'`` pick k in ``k_range`` by silhouette on a subsample."""
    n = len(x)
    if config.k == "auto":
        lo, hi = config.k_range
        if lo < 2 or hi < lo:
            raise ValueError(f"synthesis.k_range must satisfy 2 <= low <= high, got {lo, hi}")
        idx = _subsample(n, config.sample_size, rng)
        xs = x[idx]
        distinct = len(np.unique(xs, axis=0))
        candidates = [k for k in range(lo, hi + 1) if k < min(len(xs), distinct + 1)]
        if not candidates:
            raise ValueError(f"too few distinct rows ({distinct}) to choose k in {lo}..{hi}")
        scores: dict[int, float] = {}
        for k in candidates:
            labels = KMeans(n_clusters=k, n_init=4, random_state=_seed(rng)).fit_predict(xs)
            ok = 2 <= len(np.unique(labels)) < len(xs)
            scores[k] = float(silhouette_score(xs, labels)) if ok else -1.0
        k = max(scores, key=lambda c: (scores[c], -c))
        shown = ", ".join(f"{c}: {s:.3f}" for c, s in scores.items())
        logger.info("silhouette by k: %s; chose k=%d", shown, k)
    else:
        k = int(config.k)
        if not 1 <= k <= n:
            raise ValueError(f"synthesis.k must be between 1 and the number of rows ({n}), got {k}")
    seed = _seed(rng)
    if n > MINIBATCH_ABOVE:
        model: KMeans | MiniBatchKMeans = MiniBatchKMeans(
            n_clusters=k, n_init=4, random_state=seed, batch_size=4096
        )
    else:
        model = KMeans(n_clusters=k, n_init=4, random_state=seed)
    return model.fit(x).predict(x)


@SYNTHESIZERS.register("dbscan")
def dbscan_labels(x: np.ndarray, config: SynthesisConfig, rng: np.random.Generator) -> np.ndarray:
    """DBSCAN on a subsample; every row (noise included) joins the nearest cluster centroid."""
    xs = x[_subsample(len(x), config.sample_size, rng)]
    found = DBSCAN(eps=config.eps, min_samples=config.min_samples).fit_predict(xs)
    clusters = np.unique(found[found >= 0])
    if len(clusters) == 0:
        raise ValueError(
            f"DBSCAN found no cluster in {len(xs)} sampled rows (all noise); "
            "raise synthesis.eps or lower synthesis.min_samples"
        )
    centroids = np.stack([xs[found == c].mean(axis=0) for c in clusters])
    noise = int((found < 0).sum())
    logger.info("DBSCAN: %d clusters, %d of %d sampled rows noise", len(clusters), noise, len(xs))
    return np.argmin(squared_distances(x, centroids), axis=1)


def _by_size(raw: np.ndarray) -> np.ndarray:
    """Relabel clusters 0..k-1 by size, largest first (ties: first row seen)."""
    raw = np.asarray(raw, dtype=np.int64)
    present, first, counts = np.unique(raw, return_index=True, return_counts=True)
    order = np.lexsort((first, -counts))
    remap = np.full(int(present.max()) + 1, -1, dtype=np.int64)
    remap[present[order]] = np.arange(len(order))
    return remap[raw]


DISTINCTIVE = 3
"""Columns described when no role is declared: the ones that most set a persona apart."""


def _summarize(
    members: pd.DataFrame, profiles: PersonaProfiles, centroid: np.ndarray, overall: np.ndarray
) -> tuple[dict[str, float | str], list[str]]:
    """Member attributes and the :data:`DISTINCTIVE` features most apart from everyone's."""
    attributes: dict[str, float | str] = {}
    scored: list[tuple[float, int, str]] = []
    pos = 0
    for order, f in enumerate(profiles.features):
        if f in profiles.means:
            mean = float(members[f].to_numpy(dtype=np.float64).mean())
            attributes[f] = float(f"{mean:.4g}")
            scored.append((abs(float(centroid[pos])), order, f))
            pos += 1
        else:
            counts = members[f].astype(str).value_counts()
            top = min(counts.index, key=lambda v: (-counts[v], str(v)))
            attributes[f] = str(top)
            width = len(profiles.levels[f])
            share, base = centroid[pos : pos + width], overall[pos : pos + width]
            sd = np.sqrt(np.clip(base * (1 - base), 1e-12, None))
            dev = float(np.max(np.abs(share - base) / sd)) if width else 0.0
            scored.append((dev, order, f))
            pos += width
    scored.sort(key=lambda t: (-t[0], t[1]))
    return attributes, [f for _, _, f in scored[:DISTINCTIVE]]


def _fit_rows(rows: pd.DataFrame) -> Beta:
    """Beta(rate * c, (1 - rate) * c) with c = distinct recipients, clipped to [2, 200]."""
    c = float(np.clip(rows[RECIPIENT_ID].nunique(), 2, 200))
    rate = float(np.clip(rows[OUTCOME].mean(), 1e-3, 1 - 1e-3))
    return Beta(a=rate * c, b=(1 - rate) * c)


def _ab_traits(ab: pd.DataFrame, campaigns: list[Campaign]) -> dict[str, Any]:
    """``propensity`` per channel (+ ``default``) and ``organic`` from one persona's A/B rows."""
    traits: dict[str, Any] = {}
    propensity: dict[str, Beta] = {}
    control = {c.id for c in campaigns if c.control}
    channel = {c.id: c.channel for c in campaigns}
    sent = ab[~ab[CAMPAIGN_ID].isin(control)]
    if len(sent):
        for ch, rows in sent.groupby(sent[CAMPAIGN_ID].map(channel), sort=True):
            propensity[str(ch)] = _fit_rows(rows)
        propensity["default"] = _fit_rows(sent)
        traits["propensity"] = propensity
    held = ab[ab[CAMPAIGN_ID].isin(control)]
    if len(held):
        traits["organic"] = _fit_rows(held)
    return traits


def _scalar_trait(values: np.ndarray, unit: bool) -> Beta | Gamma | None:
    mean, var = float(values.mean()), float(values.var())
    if unit:
        return Beta.from_moments(mean, var)
    if mean <= 0:
        return None
    var = max(var, (mean * 1e-3) ** 2)
    return Gamma(shape=mean**2 / var, scale=var / mean)


def synthesize_personas(
    recipients: pd.DataFrame,
    config: SynthesisConfig,
    rng: np.random.Generator,
    ab_results: pd.DataFrame | None = None,
    campaigns: list[Campaign] | None = None,
) -> SynthesisResult:
    """Cluster recipients into personas with descriptions and data-informed trait priors.

    Parameters
    ----------
    recipients
        As returned by :func:`personasim.data.tables.load_recipients`.
    config
        Method, k, features, and how descriptions read the columns (``noun``, ``columns``,
        over the built-in roles of a known dataset such as Hillstrom's).
    rng
        Source of all randomness (same seed and data give the same result).
    ab_results, campaigns
        Optional A/B outcomes (``recipient_id, campaign_id, outcome``) and their campaigns,
        used to estimate each persona's propensity per channel and organic rate.

    Returns
    -------
    SynthesisResult
        Personas ordered by size (largest is ``persona_1``), row labels and profiles.

    Raises
    ------
    DataError
        A feature, or a column named in ``config.columns``, is missing or does not fit.
    """
    if len(recipients) == 0:
        raise ValueError("recipients is empty")
    recipients = recipients.reset_index(drop=True)
    roles = roles_from_config(config, recipients.columns)
    if roles is not None:
        check_roles(recipients, roles)
    enc = PersonaProfiles.encoder(recipients, config.features)
    x = enc.transform(recipients)
    labels = _by_size(SYNTHESIZERS.get(config.method)(x, config, rng))
    persona_ids = [f"persona_{i + 1}" for i in range(int(labels.max()) + 1)]
    profiles = enc.with_centroids(x, labels, persona_ids)
    overall = x.mean(axis=0)

    ab_by_persona: dict[int, pd.DataFrame] = {}
    if ab_results is not None and campaigns is not None and len(ab_results):
        index = pd.Series(labels, index=recipients[RECIPIENT_ID].astype(str).to_numpy())
        ab = ab_results.assign(_p=ab_results[RECIPIENT_ID].astype(str).map(index))
        dropped = int(ab["_p"].isna().sum())
        if dropped:
            logger.warning("%d A/B rows name recipients not in the recipients file", dropped)
        ab = ab.dropna(subset=["_p"])
        ab_by_persona = {int(p): rows for p, rows in ab.groupby("_p")}
    scalar_cols = [
        t for t in SCALAR_TRAITS if t in recipients.columns and is_numeric(recipients[t])
    ]
    unit = {t: bool(((recipients[t] >= 0) & (recipients[t] <= 1)).all()) for t in scalar_cols}

    n = len(recipients)
    summaries = [_summarize(recipients.loc[labels == p], profiles, profiles.centroids[p], overall)
                 for p in range(len(persona_ids))]
    descriptions = distinct([
        describe_members(recipients.loc[labels == p], roles,
                         () if roles is not None and roles.roles else distinctive)
        for p, (_, distinctive) in enumerate(summaries)])
    personas: list[Persona] = []
    for p, pid in enumerate(persona_ids):
        mask = labels == p
        members = recipients.loc[mask]
        attributes, description = summaries[p][0], descriptions[p]
        traits: dict[str, Any] = {}
        if p in ab_by_persona:
            traits.update(_ab_traits(ab_by_persona[p], campaigns or []))
        for t in scalar_cols:
            fitted = _scalar_trait(members[t].to_numpy(dtype=np.float64), unit[t])
            if fitted is not None:
                traits[t] = fitted
        personas.append(
            Persona(
                id=pid,
                description=description,
                share=int(mask.sum()) / n,
                size=int(mask.sum()),
                attributes=attributes,
                traits=PersonaTraits(**traits),
            )
        )
        logger.info("%s (%d recipients): %s", pid, int(mask.sum()), description)
    return SynthesisResult(personas=personas, labels=labels, profiles=profiles)
