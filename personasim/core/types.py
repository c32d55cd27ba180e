"""Typed hand-offs between pipeline stages (the contracts each stage module honours)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

RECIPIENT_ID = "recipient_id"
PERSONA_ID = "persona_id"
CAMPAIGN_ID = "campaign_id"
OUTCOME = "outcome"
CONSENT = "consent"
NO_SEND = -1
"""Campaign index meaning "send nothing" (a rest week, or the A/B test's untreated arm)."""
NO_SEND_ID = "no_send"
"""How :data:`NO_SEND` is written where tables hold campaign ids (calendars)."""



def is_consent_column(name: object) -> bool:
    """Whether a recipients column is consent (``consent``, ``consent_<channel>``)."""
    return isinstance(name, str) and (name == CONSENT or name.startswith(CONSENT + "_"))

@dataclass(frozen=True)
class Audience:
    """The recipients to rank, with their persona membership.

    Attributes
    ----------
    recipients
        One row per recipient: ``recipient_id`` (str, unique), ``persona_id`` (hard
        assignment), ``consent`` (bool) and attribute columns.
    membership
        ``(n_recipients, n_personas)`` float32 soft membership; rows sum to 1. Column order is
        ``persona_ids``.
    persona_ids
        Persona ids in column order.
    """

    recipients: pd.DataFrame
    membership: np.ndarray
    persona_ids: tuple[str, ...]


@dataclass(frozen=True)
class ABCounts:
    """A/B results aggregated to persona x campaign cells.

    Attributes
    ----------
    persona_ids, campaign_ids
        Row and column labels.
    exposures, responses
        ``(n_personas, n_campaigns)`` int64 counts; ``responses <= exposures``.
    """

    persona_ids: tuple[str, ...]
    campaign_ids: tuple[str, ...]
    exposures: np.ndarray
    responses: np.ndarray

    @classmethod
    def from_cells(
        cls,
        persona_ids: tuple[str, ...],
        campaign_ids: tuple[str, ...],
        cells: tuple[np.ndarray, np.ndarray],
        exposures: np.ndarray | int,
        responses: np.ndarray,
    ) -> ABCounts:
        """Sum counts given per entry into the persona x campaign grid.

        Parameters
        ----------
        persona_ids, campaign_ids
            Row and column labels of the grid.
        cells
            ``(rows, cols)``: each entry's persona and campaign index.
        exposures, responses
            Each entry's counts (``exposures`` may be one number for all).
        """
        shape = (len(persona_ids), len(campaign_ids))
        exposure_grid = np.zeros(shape, dtype=np.int64)
        response_grid = np.zeros(shape, dtype=np.int64)
        np.add.at(exposure_grid, cells, exposures)
        np.add.at(response_grid, cells, responses)
        return cls(persona_ids, campaign_ids, exposure_grid, response_grid)

    @classmethod
    def from_table(
        cls, table: pd.DataFrame, persona_ids: tuple[str, ...], campaign_ids: tuple[str, ...]
    ) -> ABCounts:
        """Aggregate per-recipient rows with ``persona_id, campaign_id, outcome`` columns."""
        p_index = {p: i for i, p in enumerate(persona_ids)}
        c_index = {c: i for i, c in enumerate(campaign_ids)}
        rows = table[PERSONA_ID].map(p_index).to_numpy()
        cols = table[CAMPAIGN_ID].map(c_index).to_numpy()
        outcomes = table[OUTCOME].to_numpy().astype(np.int64)
        return cls.from_cells(persona_ids, campaign_ids, (rows, cols), 1, outcomes)

    @property
    def rates(self) -> np.ndarray:
        """Observed response rates (NaN where a cell has no exposures)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.responses / np.where(self.exposures > 0, self.exposures, np.nan)


@dataclass(frozen=True)
class ABResults:
    """An A/B test's outcome, per recipient and aggregated.

    Attributes
    ----------
    table
        ``recipient_id, persona_id, campaign_id, outcome`` (+ optional ``value``, ``propensity``).
    counts
        The same data aggregated to persona x campaign cells.
    source
        ``"simulated"`` or the results file's path.
    """

    table: pd.DataFrame
    counts: ABCounts
    source: str

    @classmethod
    def from_table(
        cls,
        table: pd.DataFrame,
        persona_ids: tuple[str, ...],
        campaign_ids: tuple[str, ...],
        source: str,
    ) -> ABResults:
        """Per-recipient rows with their counts (see :meth:`ABCounts.from_table`)."""
        return cls(table=table, counts=ABCounts.from_table(table, persona_ids, campaign_ids),
                   source=source)

    @property
    def per_recipient(self) -> bool:
        """True when :attr:`table` holds per-recipient rows (not only aggregated counts)."""
        return {RECIPIENT_ID, PERSONA_ID, CAMPAIGN_ID, OUTCOME} <= set(self.table.columns)


@dataclass
class Diagnostics:
    """Sampler health, recorded in the run manifest."""

    sampler: str
    rhat_max: float
    ess_bulk_min: float
    divergences: int
    seconds: float
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no diagnostic failed its threshold."""
        return not self.warnings


@dataclass(frozen=True)
class Posterior:
    """Posterior response probabilities per persona x campaign.

    Attributes
    ----------
    persona_ids, campaign_ids
        Labels of the last two axes of ``draws``.
    draws
        ``(n_draws, n_personas, n_campaigns)`` float32 samples of P(response).
    diagnostics
        How the sampler fared.
    """

    persona_ids: tuple[str, ...]
    campaign_ids: tuple[str, ...]
    draws: np.ndarray
    diagnostics: Diagnostics

    def mean(self) -> np.ndarray:
        """Posterior mean, ``(n_personas, n_campaigns)``."""
        return self.draws.mean(axis=0)

    def interval(self, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """Equal-tailed credible interval at ``level``, each ``(n_personas, n_campaigns)``."""
        tail = (1 - level) / 2
        low, high = np.quantile(self.draws, [tail, 1 - tail], axis=0)
        return low, high
