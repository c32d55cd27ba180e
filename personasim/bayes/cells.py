"""What the hierarchical model reads: aggregated cells, priors and campaign features.

:class:`ModelInputs` holds one row per aggregated cell (persona x campaign, or persona x
campaign x covariate bin) with its counts and covariates, plus the per-cell prior and the
campaign features; :func:`grid_inputs` builds it from persona x campaign counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from personasim.core.numeric import logit
from personasim.core.types import ABCounts


@dataclass(frozen=True)
class ModelInputs:
    """Everything the model reads, in long (one row per aggregated cell) format.

    Attributes
    ----------
    persona_ids, campaign_ids
        Labels of the persona x campaign grid.
    persona, campaign
        ``(n_cells,)`` int64 grid coordinates of each aggregated cell.
    exposures, responses
        ``(n_cells,)`` int64 counts.
    covariates
        ``(n_cells, n_covariates)`` float64 standardized recipient covariates of each cell
        (zero columns when the model has no covariates).
    prior_logit, prior_scale
        ``(P, K)`` prior mean and scale of each cell's logit.
    features
        ``(K, n_features)`` standardized campaign features (zero columns when none).
    feature_names, covariate_names
        Column names of ``features`` and ``covariates``.
    centers
        ``(P, n_covariates)`` each persona's mean covariates (standardized, before centring);
        ``covariates`` are centred on them. Required when there are covariates.
    """

    persona_ids: tuple[str, ...]
    campaign_ids: tuple[str, ...]
    persona: np.ndarray
    campaign: np.ndarray
    exposures: np.ndarray
    responses: np.ndarray
    covariates: np.ndarray
    prior_logit: np.ndarray
    prior_scale: np.ndarray
    features: np.ndarray
    feature_names: tuple[str, ...] = ()
    covariate_names: tuple[str, ...] = ()
    centers: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(P, K)``."""
        return len(self.persona_ids), len(self.campaign_ids)

    @property
    def is_grid(self) -> bool:
        """True when the cells are exactly the persona x campaign grid, row-major."""
        n_p, n_k = self.shape
        return (
            self.persona.shape[0] == n_p * n_k
            and np.array_equal(self.persona, np.repeat(np.arange(n_p), n_k))
            and np.array_equal(self.campaign, np.tile(np.arange(n_k), n_p))
        )

    @property
    def structure(self) -> tuple[int, ...]:
        """What fixes the compiled model: ``(P, K, n_features, n_covariates, is_grid)``."""
        return (*self.shape, self.features.shape[1], self.covariates.shape[1], int(self.is_grid))

    def grid_counts(self) -> ABCounts:
        """The cells summed to the persona x campaign grid."""
        return ABCounts.from_cells(self.persona_ids, self.campaign_ids,
                                   (self.persona, self.campaign), self.exposures, self.responses)

    def validate(self) -> None:
        """Raise ``ValueError`` on inconsistent shapes or impossible counts."""
        n = self.persona.shape[0]
        for name in ("campaign", "exposures", "responses"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must have shape ({n},)")
        if self.covariates.shape[0] != n:
            raise ValueError(f"covariates must have {n} rows")
        for name in ("prior_logit", "prior_scale"):
            if getattr(self, name).shape != self.shape:
                raise ValueError(f"{name} must have shape {self.shape}")
        if self.features.shape[0] != self.shape[1]:
            raise ValueError(f"features must have {self.shape[1]} rows")
        if np.any(self.exposures < 0) or np.any(self.responses < 0):
            raise ValueError("counts must be non-negative")
        if np.any(self.responses > self.exposures):
            raise ValueError("responses must not exceed exposures")
        if not np.all(np.isfinite(self.prior_logit)) or np.any(self.prior_scale <= 0):
            raise ValueError("prior_logit must be finite and prior_scale positive")
        if self.covariates.shape[1] and (
            self.centers is None or self.centers.shape != (self.shape[0], self.covariates.shape[1])
        ):
            raise ValueError("covariates need centers of shape (P, n_covariates)")


def grid_inputs(
    counts: ABCounts,
    prior_mean: np.ndarray | None = None,
    prior_scale: np.ndarray | float | None = None,
    features: np.ndarray | None = None,
    feature_names: tuple[str, ...] = (),
) -> ModelInputs:
    """Model inputs for grid counts, one aggregated cell per persona x campaign.

    Parameters
    ----------
    counts
        Persona x campaign counts (shape ``(P, K)``).
    prior_mean
        ``(P, K)`` prior response probabilities; default the pooled observed rate.
    prior_scale
        Prior scale of each cell's logit; default 1.
    features
        ``(K, n_features)`` campaign features (standardized here); default none.
    feature_names
        Their names.
    """
    shape = counts.exposures.shape
    if counts.responses.shape != shape or shape != (
        len(counts.persona_ids),
        len(counts.campaign_ids),
    ):
        raise ValueError(f"counts arrays must have shape {shape}")
    if prior_mean is None:
        pooled = (counts.responses.sum() + 0.5) / (counts.exposures.sum() + 1.0)
        prior_logit = np.full(shape, float(logit(pooled)))
    else:
        prior_mean = np.asarray(prior_mean, dtype=np.float64)
        if prior_mean.shape != shape:
            raise ValueError(f"prior_mean must have shape {shape}, got {prior_mean.shape}")
        prior_logit = logit(prior_mean)
    scale = np.broadcast_to(
        np.asarray(1.0 if prior_scale is None else prior_scale, dtype=np.float64), shape
    ).copy()
    rows, cols = np.indices(shape)
    if features is None:
        feats, names = np.zeros((shape[1], 0)), ()
    else:
        feats, names = standardize_features(features, feature_names)
    return ModelInputs(
        persona_ids=tuple(counts.persona_ids),
        campaign_ids=tuple(counts.campaign_ids),
        persona=rows.ravel().astype(np.int64),
        campaign=cols.ravel().astype(np.int64),
        exposures=np.asarray(counts.exposures, dtype=np.int64).ravel(),
        responses=np.asarray(counts.responses, dtype=np.int64).ravel(),
        covariates=np.zeros((rows.size, 0)),
        prior_logit=prior_logit,
        prior_scale=scale,
        features=feats,
        feature_names=names,
    )


def standardize_features(
    features: np.ndarray | None, names: tuple[str, ...] = ()
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Centre and scale campaign feature columns, keeping a linearly independent subset.

    Constant columns and columns that are linear combinations of earlier ones are dropped,
    and at most ``K - 2`` columns are kept, so the campaign effects keep a dimension of
    their own beside the features.
    """
    if features is None:
        return np.zeros((0, 0)), ()
    f = np.asarray(features, dtype=np.float64)
    n_campaigns = f.shape[0]
    names = tuple(names) or tuple(f"f{i}" for i in range(f.shape[1]))
    kept: list[np.ndarray] = []
    kept_names: list[str] = []
    for column, name in zip(f.T, names, strict=True):
        if len(kept) >= max(n_campaigns - 2, 0):
            break
        sd = column.std()
        if sd < 1e-9:
            continue
        z = (column - column.mean()) / sd
        candidate = np.column_stack([*kept, z])
        if np.linalg.matrix_rank(candidate, tol=1e-8) == candidate.shape[1]:
            kept.append(z)
            kept_names.append(name)
    if not kept:
        return np.zeros((n_campaigns, 0)), ()
    return np.column_stack(kept), tuple(kept_names)
