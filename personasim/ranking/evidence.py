"""The evidence behind each persona x campaign estimate: tested, thin or untested.

A cell's estimate rests on the A/B exposures and responses it saw, and on the prior for the
rest. :func:`evidence_table` lists, per cell, the exposures, the responses and the posterior's
effective sample size (the number of Bernoulli observations a Beta posterior with the same mean
and variance would rest on), and classes the cell:

- ``untested``: no exposures at all (the estimate is the prior, or borrowed from other cells);
- ``thin``: fewer than :data:`THIN_EXPOSURES` exposures or :data:`THIN_RESPONSES` responses;
- ``tested``: otherwise.

The plan's send rule (``plan.send_rule``) decides how a thin or untested estimate is used.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from personasim.core.types import CAMPAIGN_ID, PERSONA_ID, ABCounts, Posterior

logger = logging.getLogger(__name__)

THIN_EXPOSURES = 100
"""A cell with fewer exposures than this is ``thin``."""
THIN_RESPONSES = 5
"""A cell with fewer responses than this is ``thin``."""
TESTED, THIN, UNTESTED = "tested", "thin", "untested"
EVIDENCE_COLUMNS: tuple[str, ...] = (
    PERSONA_ID, CAMPAIGN_ID, "exposures", "responses", "effective_sample_size", "evidence",
)


def _effective_sample_size(draws: np.ndarray) -> np.ndarray:
    """``mean (1 - mean) / var - 1`` of each cell's draws, ``(S, J, K) -> (J, K)``, >= 0."""
    mean = draws.mean(axis=0)
    var = draws.var(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ess = np.where(var > 0, mean * (1.0 - mean) / var - 1.0, np.inf)
    return np.clip(ess, 0.0, None)


def evidence_table(counts: ABCounts, posterior: Posterior) -> pd.DataFrame:
    """One row per persona x campaign of the posterior: its A/B counts and evidence class.

    Cells the A/B test does not cover (a persona or campaign it never saw) count zero.
    """
    row = {p: j for j, p in enumerate(counts.persona_ids)}
    col = {c: k for k, c in enumerate(counts.campaign_ids)}
    ess = _effective_sample_size(np.asarray(posterior.draws, dtype=np.float64))
    rows = []
    for j, pid in enumerate(posterior.persona_ids):
        for k, cid in enumerate(posterior.campaign_ids):
            seen = pid in row and cid in col
            exposures = int(counts.exposures[row[pid], col[cid]]) if seen else 0
            responses = int(counts.responses[row[pid], col[cid]]) if seen else 0
            if exposures == 0:
                kind = UNTESTED
            elif exposures < THIN_EXPOSURES or responses < THIN_RESPONSES:
                kind = THIN
            else:
                kind = TESTED
            rows.append((pid, cid, exposures, responses, round(float(ess[j, k]), 1), kind))
    return pd.DataFrame(rows, columns=list(EVIDENCE_COLUMNS))


def evidence_warnings(table: pd.DataFrame, control: str | None) -> list[str]:
    """One sentence per untested campaign, and one for thin or untested cells elsewhere."""
    warnings = []
    sendable = table[table[CAMPAIGN_ID] != control] if control else table
    for cid, cells in sendable.groupby(CAMPAIGN_ID, sort=False):
        if (cells["evidence"] == UNTESTED).all():
            warnings.append(f"campaign {cid!r} has no A/B results: its estimate is the prior")
    tested_campaigns = sendable.groupby(CAMPAIGN_ID)["exposures"].transform("sum") > 0
    weak = sendable[tested_campaigns & (sendable["evidence"] != TESTED)]
    if len(weak):
        example = weak.iloc[0]
        warnings.append(
            f"{len(weak)} persona x campaign cells rest on thin or no A/B evidence (e.g. "
            f"{example[PERSONA_ID]} x {example[CAMPAIGN_ID]}: {example['exposures']} "
            f"exposures, {example['responses']} responses)")
    for text in warnings:
        logger.warning("%s; see plan.send_rule", text)
    return warnings
