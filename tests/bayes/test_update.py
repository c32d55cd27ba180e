"""Closing the loop: aggregated A/B counts, ``--prior RUN_DIR``, privacy in a run, PPC, waves."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_CONFIG, one_line_error, write_yaml
from typer.testing import CliRunner

from personasim.bayes.estimators import ESTIMATORS, EstimationRequest
from personasim.bayes.priors import PriorGrid, trait_prior
from personasim.bayes.sampling import CompiledModelCache
from personasim.bayes.storage import load_posterior
from personasim.bayes.update import build_prior, infer_stage, run_waves
from personasim.cli import app
from personasim.config.schema import ExperimentConfig
from personasim.config.sections import InferenceConfig
from personasim.core.errors import DataError
from personasim.core.registry import UnknownNameError
from personasim.core.types import ABCounts, ABResults, Diagnostics, Posterior
from personasim.data.ab_results import load_ab_counts
from personasim.outputs.bayes_plots import (
    PPC_COLUMNS,
    plot_ppc,
    plot_waves,
    posterior_predictive,
    ppc_coverage,
)

PERSONAS = ("deal_seekers", "loyal")
CAMPAIGNS = ("sale", "news", "holdout")
HEADER = "segment,campaign_id,exposures,responses\n"


def _invoke(*args: object):  # noqa: ANN202
    return CliRunner().invoke(app, [str(a) for a in args])


# --- aggregated counts -------------------------------------------------------------------


def test_counts_rows_for_the_same_cell_are_summed(tmp_path: Path) -> None:
    path = tmp_path / "counts.csv"
    path.write_text(HEADER + "loyal,news,100,7\nloyal,news,50,3\ndeal_seekers,sale,20,0\n")
    table = load_ab_counts(path, PERSONAS, CAMPAIGNS)
    assert list(table.columns) == ["segment", "campaign_id", "exposures", "responses"]
    row = table[(table["segment"] == "loyal") & (table["campaign_id"] == "news")].iloc[0]
    assert (row["exposures"], row["responses"]) == (150, 10)
    assert len(table) == 2 and table["exposures"].dtype == np.int64


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        ("loyal,news,-5,0\n", ["row 1", "'exposures'", "negative count"]),
        ("loyal,news,10,-1\n", ["row 1", "'responses'", "negative count"]),
        ("loyal,news,10,3\nloyal,sale,10,11\n", ["row 2", "responses (11) exceed exposures (10)"]),
        ("loyal,nwes,10,1\n", ["row 1", "unknown campaign 'nwes'", "did you mean 'news'"]),
        ("royal,news,10,1\n", ["row 1", "unknown segment", "'royal'"]),
        ("loyal,news,10.5,1\n", ["row 1", "whole number"]),
    ],
)
def test_bad_counts_name_the_row(tmp_path: Path, body: str, needles: list[str]) -> None:
    path = tmp_path / "counts.csv"
    path.write_text(HEADER + body)
    with pytest.raises(DataError) as info:
        load_ab_counts(path, PERSONAS, CAMPAIGNS)
    text = str(info.value)
    assert "counts.csv" in text and "\n" not in text
    for needle in needles:
        assert needle in text, text


def test_bad_counts_file_fails_validate_and_run_withone_line_error(tmp_path: Path) -> None:
    (tmp_path / "counts.csv").write_text(HEADER + "loyal,news,10,3\nloyal,sale,10,11\n")
    payload = copy.deepcopy(TINY_CONFIG)
    payload["data"] = {"ab_counts": "counts.csv"}
    config = write_yaml(tmp_path / "exp.yaml", payload)
    one_line_error(_invoke("validate", config), "counts.csv", "row 2", "exceed")
    one_line_error(_invoke("run", config, "--out", tmp_path / "run", "--quiet"), "counts.csv",
                   "row 2")
    assert not (tmp_path / "run").exists()


def test_prior_must_be_a_finished_run(tmp_path: Path, tiny_config_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = _invoke("run", tiny_config_path, "--prior", tmp_path / "empty", "--out",
                     tmp_path / "run", "--quiet")
    one_line_error(result, "--prior", "not a finished run")
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def counts_run(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny config again, from ``tiny_run``'s posterior, on noised aggregated counts."""
    base = tmp_path_factory.mktemp("counts_run")
    # strong evidence that deal_seekers respond to 'sale' far more than the prior says
    (base / "counts.csv").write_text(
        HEADER + "deal_seekers,sale,3000,900\ndeal_seekers,holdout,3000,30\n"
        "loyal,news,400,60\nloyal,holdout,400,8\n"
    )
    payload = copy.deepcopy(TINY_CONFIG)
    payload["data"] = {"ab_counts": "counts.csv"}
    payload["ab_test"] = {"waves": 0}
    payload["inference"] |= {"privacy": {"mechanism": "laplace", "epsilon": 1.0}}
    config = write_yaml(base / "exp.yaml", payload)
    result = _invoke("run", config, "--prior", tiny_run, "--out", base / "run", "--quiet")
    assert result.exit_code == 0, result.output
    return base / "run"


def test_run_from_prior_on_counts_records_where_it_started(counts_run: Path,
                                                           tiny_run: Path) -> None:
    manifest = json.loads((counts_run / "manifest.json").read_text())
    assert manifest["inference"]["prior"] == str(tiny_run.resolve())
    assert manifest["ab_test"]["source"].endswith("counts.csv")
    assert manifest["ab_test"]["exposures"] > 6000  # noise moves counts, not their scale
    privacy = manifest["inference"]["privacy"]
    assert privacy["mechanism"] == "laplace" and privacy["epsilon"] == 1.0
    assert privacy["count_mae"] > 0 and privacy["rate_rmse"] >= 0


def test_run_from_prior_moves_with_the_evidence(counts_run: Path, tiny_run: Path) -> None:
    before, after = load_posterior(tiny_run), load_posterior(counts_run)
    j, k = before.persona_ids.index("deal_seekers"), before.campaign_ids.index("sale")
    assert before.mean()[j, k] < 0.2
    assert after.mean()[j, k] > 0.25  # 900 / 3000 outweighs the earlier posterior
    # a cell with no new data borrows through the campaign effect, but moves less
    jl, kl = before.persona_ids.index("loyal"), before.campaign_ids.index("sale")
    moved = after.mean() - before.mean()
    assert abs(moved[jl, kl]) < moved[j, k]


# --- what a run writes about its fit ----------------------------------------------------


def test_run_writes_ppc_and_waves(tiny_run: Path) -> None:
    ppc = pd.read_csv(tiny_run / "ppc.csv")
    assert tuple(ppc.columns) == PPC_COLUMNS and len(ppc) > 0
    assert (ppc["pred_low"] <= ppc["pred_high"]).all()
    waves = pd.read_csv(tiny_run / "ab_waves.csv")
    n_waves = TINY_CONFIG.get("ab_test", {}).get("waves", 3) + 1
    assert sorted(waves["wave"].unique()) == list(range(1, n_waves + 1))
    assert waves.groupby("wave")["exposures"].sum().is_monotonic_increasing
    manifest = json.loads((tiny_run / "manifest.json").read_text())
    assert 0 <= manifest["inference"]["ppc_coverage_90"] <= 1
    assert manifest["inference"]["waves"] == n_waves
    for name in ("ppc.png", "ab_waves.png"):
        assert (tiny_run / name).stat().st_size > 10_000


# --- posterior predictive check, waves, priors from earlier runs ------------------------


def _posterior(draws: np.ndarray) -> Posterior:
    return Posterior(PERSONAS[:2], CAMPAIGNS[:2], draws.astype(np.float32),
                     Diagnostics("test", 1.0, float(draws.shape[0]), 0, 0.0))


def _grid_counts(truth: np.ndarray, n: int, seed: int) -> ABCounts:
    exposures = np.full(truth.shape, n, dtype=np.int64)
    responses = np.random.default_rng(seed).binomial(exposures, truth)
    return ABCounts(PERSONAS[:2], CAMPAIGNS[:2], exposures, responses)


TRUTH = np.array([[0.05, 0.12], [0.20, 0.08]])


def test_ppc_flags_a_wrong_posterior() -> None:
    hits, misses = [], []
    for seed in range(10):
        counts = _grid_counts(TRUTH, 800, seed)
        exact = np.broadcast_to(TRUTH, (400, 2, 2)).copy()
        hits.append(ppc_coverage(posterior_predictive(_posterior(exact), counts, seed)))
        wrong = np.broadcast_to(TRUTH[::-1, ::-1], (400, 2, 2)).copy()
        misses.append(ppc_coverage(posterior_predictive(_posterior(wrong), counts, seed)))
    assert 0.8 <= np.mean(hits) <= 1.0
    assert np.mean(misses) < 0.2


def test_ppc_skips_unexposed_cells_and_plots(tmp_path: Path) -> None:
    counts = _grid_counts(TRUTH, 500, 0)
    counts.exposures[0, 0] = counts.responses[0, 0] = 0
    table = posterior_predictive(_posterior(np.broadcast_to(TRUTH, (100, 2, 2)).copy()), counts)
    assert len(table) == 3
    assert plot_ppc(table, tmp_path / "ppc.png").stat().st_size > 10_000
    with pytest.raises(ValueError, match="no exposed cells"):
        plot_ppc(table.iloc[:0], tmp_path / "none.png")


def test_waves_converge_on_the_truth(tmp_path: Path) -> None:
    prior = PriorGrid(PERSONAS[:2], CAMPAIGNS[:2], np.full((2, 2), 0.1), np.ones((2, 2)))
    config = InferenceConfig(estimator="beta_binomial", draws=500, chains=2)
    first = _grid_counts(TRUTH, 60, 0)
    posterior = ESTIMATORS.get("beta_binomial")(
        EstimationRequest.from_counts(first, config, 0, prior.mean))
    table = run_waves(config, prior, np.zeros((2, 0)), (), first, posterior, 5,
                      lambda w: _grid_counts(TRUTH, 600, w), 0, TRUTH)
    per_wave = table.assign(err=(table["mean"] - table["truth"]) ** 2,
                            width=table["p_high"] - table["p_low"]).groupby("wave")
    rmse = np.sqrt(per_wave["err"].mean())
    width = per_wave["width"].mean()
    assert list(rmse.index) == [1, 2, 3, 4, 5, 6]
    assert rmse.iloc[-1] < 0.5 * rmse.iloc[0]
    assert width.is_monotonic_decreasing
    assert plot_waves(table, tmp_path / "waves.png").stat().st_size > 10_000


def test_prior_from_an_earlier_run(tiny_run: Path) -> None:
    config = ExperimentConfig.model_validate(TINY_CONFIG)
    earlier = load_posterior(tiny_run)
    inference = config.inference.model_copy(update={"prior_run": tiny_run})
    prior = build_prior(inference, list(config.personas), list(config.campaigns))
    assert prior.source == str(tiny_run)
    np.testing.assert_allclose(prior.mean, earlier.mean(), rtol=1e-5)
    traits = build_prior(config.inference, list(config.personas), list(config.campaigns))
    assert traits.source == "traits"
    # the earlier posterior is more certain than the traits alone
    assert np.median(prior.scale) < np.median(traits.scale)


# --- the estimator named by the config is the one that runs ------------------------------


def test_infer_stage_runs_the_estimator_the_config_names() -> None:
    config = ExperimentConfig.model_validate(TINY_CONFIG)
    personas, campaigns = list(config.personas), list(config.campaigns)
    pids, cids = tuple(p.id for p in personas), tuple(c.id for c in campaigns)
    exposures = np.full((len(pids), len(cids)), 50, dtype=np.int64)
    counts = ABCounts(pids, cids, exposures, exposures // 10)
    seen: list[EstimationRequest] = []

    def fake(request: EstimationRequest) -> Posterior:
        seen.append(request)
        draws = np.full((request.n_draws, *request.inputs.shape), 0.25, dtype=np.float32)
        return Posterior(request.inputs.persona_ids, request.inputs.campaign_ids, draws,
                         Diagnostics("fake", 1.0, float(request.n_draws), 0, 0.0))

    name = f"test_fake_{uuid.uuid4().hex[:8]}"  # a fresh name: registrations are for good
    ESTIMATORS.add(name, fake)
    inference = config.inference.model_copy(update={"estimator": name})
    ab = ABResults(pd.DataFrame(), counts, "simulated")
    outcome = infer_stage(inference, personas, campaigns, ab, 4, waves=2,
                          simulate_wave=lambda w: counts)
    assert outcome.posterior.diagnostics.sampler == "fake"
    assert len(seen) == 3  # the run's fit and two waves
    first = seen[0]
    assert first.config is inference and first.seed == 4 and first.covariates is None
    np.testing.assert_array_equal(first.counts.exposures, exposures)
    np.testing.assert_array_equal(first.prior_mean, trait_prior(personas, campaigns).mean)
    assert isinstance(first.cache, CompiledModelCache)
    assert all(r.cache is first.cache for r in seen)  # one compiled-model cache per run
    assert [r.seed for r in seen[1:]] == [4 + 2, 4 + 3]
    np.testing.assert_array_equal(seen[-1].counts.exposures, 3 * exposures)
    np.testing.assert_allclose(outcome.waves["mean"], 0.25)
    unknown = config.inference.model_copy(update={"estimator": "hierarchcal"})
    with pytest.raises(UnknownNameError, match="did you mean 'hierarchical'"):
        infer_stage(unknown, personas, campaigns, ab, 4)
