"""Chunked, threaded and streamed ranking gives exactly the single-chunk table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml

from personasim.audience.profiles import PersonaProfiles
from personasim.bayes.covariates import CovariatePosterior, CovariateSpec
from personasim.bayes.storage import save_posterior
from personasim.config.campaign import Campaign
from personasim.config.loading import load_config
from personasim.config.sections import PrioritizationConfig
from personasim.core import run_layout as files
from personasim.core.csv_files import neutralize, write_csv
from personasim.core.types import Audience, Diagnostics, Posterior
from personasim.experiments.rank import rank_recipients
from personasim.ranking.prioritization import (
    PRIORITY_COLUMNS,
    draw_subset,
    plain_table,
    prioritize,
    prioritized_chunks,
)
from personasim.ranking.scoring_stats import ChunkScorer, prepare

ROOT = Path(__file__).resolve().parents[2]
PERSONAS = ("p0", "p1", "p2", "p3")
CAMPAIGNS = ("c0", "c1", "c2", "ctl")


def _case(seed: int, n: int, covariates: int = 0, soft_share: float = 0.3,
          control: bool = True) -> tuple[Audience, Posterior, list[Campaign]]:
    """One-hot and soft members, repeated rows, optional covariate slopes."""
    rng = np.random.default_rng(seed)
    draws = 150
    eta = rng.normal(-2.5, 0.5, (1, len(PERSONAS), len(CAMPAIGNS))) + rng.normal(
        0, 0.3, (draws, len(PERSONAS), len(CAMPAIGNS)))
    rates = (1 / (1 + np.exp(-eta))).astype(np.float32)
    diag = Diagnostics("test", 1.0, 1000.0, 0, 0.0)
    names = tuple(f"x{d}" for d in range(covariates))
    if covariates:
        gamma = rng.normal(0, 0.3, (draws, len(CAMPAIGNS), covariates)).astype(np.float32)
        posterior: Posterior = CovariatePosterior(
            PERSONAS, CAMPAIGNS, rates, diag, eta.astype(np.float32), gamma,
            CovariateSpec(names, (0.0,) * covariates, (1.0,) * covariates))
    else:
        posterior = Posterior(PERSONAS, CAMPAIGNS, rates, diag)
    membership = np.eye(len(PERSONAS), dtype=np.float32)[rng.integers(0, len(PERSONAS), n)]
    soft = rng.random(n) < soft_share
    membership[soft] = rng.dirichlet(np.ones(len(PERSONAS)), soft.sum()).astype(np.float32)
    membership[: n // 4] = membership[n // 4 : 2 * (n // 4)]  # repeated inputs
    recipients = pd.DataFrame({
        "recipient_id": [f"r{i:05d}" for i in rng.permutation(n)],
        "persona_id": [PERSONAS[j] for j in membership.argmax(axis=1)],
        "consent": rng.random(n) > 0.2,
    })
    for name in names:
        recipients[name] = np.round(rng.normal(size=n), 1)
    campaigns = [Campaign(id=c, value=float(rng.uniform(5, 40)), cost=float(rng.uniform(0, 1)))
                 for c in CAMPAIGNS[:-1]]
    if control:
        campaigns.append(Campaign(id="ctl", control=True))
    return Audience(recipients, membership, PERSONAS), posterior, campaigns


def _reference(audience: Audience, posterior: Posterior, campaigns: list[Campaign],
               level: float = 0.9) -> dict[str, np.ndarray]:
    """The statistics as first written: whole audience at once, sorted draws, one loop."""
    covariate = isinstance(posterior, CovariatePosterior)
    s_idx = draw_subset(posterior.draws.shape[0], 400)
    source = np.asarray(posterior.eta if covariate else posterior.draws, np.float64)[s_idx]
    weights = audience.membership.astype(np.float64)
    x = (posterior.spec.transform(audience.recipients) if covariate else None)

    def mixture(k: int) -> np.ndarray:
        rates = source[:, :, k].T
        if not covariate:
            return weights @ rates
        shift = x @ np.asarray(posterior.gamma, np.float64)[s_idx][:, k].T
        out = np.zeros_like(shift)
        for j in np.flatnonzero(weights.max(axis=0) > 0):
            out += weights[:, j : j + 1] / (1.0 + np.exp(-(rates[j][None, :] + shift)))
        return out

    def bounds(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = values.shape[1]
        ordered, tail, result = np.sort(values, axis=1), (1.0 - level) / 2.0, []
        for pos in (tail * (n - 1), (1.0 - tail) * (n - 1)):
            i = int(np.floor(pos))
            a, b = ordered[:, i], ordered[:, min(i + 1, n - 1)]
            result.append(a + (b - a) * (pos - i))
        return result[0], result[1]

    control = next((posterior.campaign_ids.index(c.id) for c in campaigns if c.control), None)
    p0 = None if control is None else mixture(control)
    out: dict[str, list[np.ndarray]] = {"p_response": [], "p_low": [], "priority_high": []}
    for c in sorted((c for c in campaigns if not c.control), key=lambda c: c.id):
        p = mixture(posterior.campaign_ids.index(c.id))
        diff = p if p0 is None else p - p0
        out["p_response"].append(p.mean(axis=1))
        out["p_low"].append(bounds(p)[0])
        out["priority_high"].append(bounds(diff)[1] * c.value - c.cost)
    return {k: np.round(np.column_stack(v), 6) + 0.0 for k, v in out.items()}


@pytest.mark.parametrize(("covariates", "soft_share"), [(0, 0.3), (0, 1.0), (2, 0.3), (2, 0.0)])
def test_statistics_equal_the_reference_bit_for_bit(covariates: int, soft_share: float) -> None:
    audience, posterior, campaigns = _case(1, 300, covariates, soft_share)
    prep = prepare(audience, posterior, campaigns, draw_subset(posterior.draws.shape[0], 400))
    x = posterior.spec.transform(audience.recipients) if covariates else None  # type: ignore[attr-defined]
    stats, inverse = ChunkScorer(prep, 0.9, block_rows=16).score(audience.membership, x)
    assert len(stats["priority"]) < len(audience.recipients)  # repeated inputs scored once
    for name, want in _reference(audience, posterior, campaigns).items():
        np.testing.assert_array_equal(stats[name][inverse], want, err_msg=name)


@pytest.mark.parametrize("covariates", [0, 3])
@pytest.mark.parametrize("control", [True, False])
def test_chunks_threads_and_blocks_do_not_change_the_table(covariates: int,
                                                            control: bool) -> None:
    case = _case(2, 500, covariates, control=control)
    config = PrioritizationConfig(top_n=2)
    whole = prioritize(*case, config, chunk_size=10_000)
    assert list(whole.columns) == list(PRIORITY_COLUMNS)
    for chunk_size, workers in ((1, 1), (37, 3), (128, 2)):
        chunks = list(prioritized_chunks(*case, config, chunk_size=chunk_size, workers=workers))
        assert len(chunks) == -(-500 // chunk_size)
        joined = pa.concat_tables([plain_table(t) for t in chunks]).to_pandas()
        pd.testing.assert_frame_equal(joined, whole, check_exact=True)


def _run_dir(tmp_path: Path, posterior: Posterior, campaigns: list[Campaign]) -> Path:
    """The files ``personasim rank`` reads from a finished run."""
    run = tmp_path / "run"
    run.mkdir()
    config = load_config(ROOT / "configs" / "quickstart.yaml")
    files.CONFIG.path(run).write_text(yaml.safe_dump(
        config.model_dump(mode="json", by_alias=True, exclude_none=True), sort_keys=False))
    files.CAMPAIGNS.path(run).write_text(yaml.safe_dump(
        [c.model_dump(mode="json", by_alias=True) for c in campaigns], sort_keys=False))
    profiles = PersonaProfiles(["f"], {"f": 0.0}, {"f": 1.0}, {}, list(PERSONAS),
                               np.arange(len(PERSONAS), dtype=float)[:, None])
    files.PROFILES.path(run).write_text(json.dumps(profiles.to_dict()))
    save_posterior(posterior, run)
    return run


@pytest.mark.parametrize("covariates", [0, 2])
def test_rank_streams_the_table_prioritize_returns(tmp_path: Path, covariates: int) -> None:
    audience, posterior, campaigns = _case(3, 45_000, covariates)
    recipients = audience.recipients.drop(columns="persona_id").assign(
        f=np.random.default_rng(0).normal(1.5, 1.0, len(audience.recipients)))
    recipients.loc[:4, "recipient_id"] = ["=1+1", "@x", "-3", "+a", "\tt"]
    recipients.to_parquet(tmp_path / "recipients.parquet")
    run = _run_dir(tmp_path, posterior, campaigns)
    written = {}
    for fmt in ("csv", "parquet"):
        out = tmp_path / f"ranked.{fmt}"
        decisions = rank_recipients(run, tmp_path / "recipients.parquet", out)
        written[fmt] = out
    assert not list(tmp_path.glob(".ranked.partial-*"))
    # the same table, held whole: rank's audience is the soft membership of the profiles
    from personasim.audience.membership import audience_from_recipients
    from personasim.data.recipients import load_recipients

    loaded = load_recipients(tmp_path / "recipients.parquet", max_levels=None)
    profiles = PersonaProfiles.from_dict(json.loads(files.PROFILES.path(run).read_text()))
    full = audience_from_recipients(loaded, PERSONAS, profiles, 1.0, "recipients")
    table = prioritize(full, posterior, campaigns, PrioritizationConfig())
    assert written["csv"].read_bytes() == write_csv(table, tmp_path / "whole.csv").read_bytes()
    pandas_text = neutralize(table).to_csv(index=False, lineterminator="\n")
    assert written["csv"].read_bytes() == pandas_text.encode("utf-8")
    pd.testing.assert_frame_equal(pd.read_parquet(written["parquet"]), table)
    assert len(decisions) == len(table)
    assert decisions["campaign_id"].astype(str).tolist() == table["campaign_id"].tolist()
    assert (decisions["action"].astype(str) == table["action"]).all()
    lines = written["csv"].read_text().splitlines()[1:12]
    assert any(line.startswith("'=1+1,") for line in lines)  # neutralized on the fast path


def test_chunked_arrow_text_columns_rank_like_plain_ones() -> None:
    """Large pyarrow-backed columns arrive in several chunks (as from a big Parquet file)."""
    audience, posterior, campaigns = _case(4, 200)
    recipients = audience.recipients.copy()
    for name in ("recipient_id", "persona_id"):
        values = recipients[name].tolist()
        chunks = pa.chunked_array([pa.array(values[:70]), pa.array(values[70:])])
        recipients[name] = pd.Series(pd.arrays.ArrowStringArray(chunks), index=recipients.index)
    chunked = Audience(recipients, audience.membership, audience.persona_ids)
    config = PrioritizationConfig()
    pd.testing.assert_frame_equal(prioritize(chunked, posterior, campaigns, config),
                                  prioritize(audience, posterior, campaigns, config))
