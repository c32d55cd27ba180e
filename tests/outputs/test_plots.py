"""Tests for the report figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from personasim.outputs.plots import (
    plot_learning_curve,
    plot_policy_comparison,
    plot_response_heatmap,
    plot_step_metrics,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _assert_png(path: Path) -> None:
    assert path.is_file()
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 5_000


def _posterior_table() -> pd.DataFrame:
    rows = []
    for i, persona in enumerate(["bargain_hunter", "loyalist", "lapsed"]):
        for j, campaign in enumerate(["control", "spring_sale", "vip_email"]):
            mean = 0.02 + 0.03 * i + 0.02 * j
            rows.append((persona, campaign, mean, mean - 0.01, mean + 0.015))
    return pd.DataFrame(rows, columns=["persona_id", "campaign_id", "mean", "p_low", "p_high"])


def test_response_heatmap(tmp_path: Path) -> None:
    path = plot_response_heatmap(_posterior_table(), tmp_path / "heatmap.png")
    assert path == tmp_path / "heatmap.png"
    _assert_png(path)


def test_response_heatmap_with_missing_cell(tmp_path: Path) -> None:
    table = _posterior_table().iloc[1:]
    _assert_png(plot_response_heatmap(table, tmp_path / "sub" / "heatmap.png"))


def test_response_heatmap_requires_columns(tmp_path: Path) -> None:
    table = _posterior_table().drop(columns=["p_high"])
    with pytest.raises(ValueError, match="p_high"):
        plot_response_heatmap(table, tmp_path / "h.png")
    assert not (tmp_path / "h.png").exists()


def test_learning_curve_single_run(tmp_path: Path) -> None:
    t = np.arange(0, 10_000, 1_000)
    ret = np.log1p(t / 1_000)
    curve = pd.DataFrame({"timesteps": t, "mean_return": ret, "ci_low": ret - 0.2,
                          "ci_high": ret + 0.2})
    _assert_png(plot_learning_curve(curve, tmp_path / "curve.png"))
    _assert_png(plot_learning_curve(curve[["timesteps", "mean_return"]], tmp_path / "c2.png"))


def test_learning_curve_several_seeds(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    frames = []
    for seed in range(4):
        t = np.arange(0, 10_000, 500) + seed * 7  # misaligned timesteps
        frames.append(pd.DataFrame({"timesteps": t, "seed": seed,
                                    "mean_return": np.sqrt(t) + rng.normal(0, 3, t.size)}))
    _assert_png(plot_learning_curve(pd.concat(frames), tmp_path / "seeds.png"))


def test_policy_comparison(tmp_path: Path) -> None:
    evaluation = pd.DataFrame({
        "policy": ["random", "ab_winner", "thompson", "ppo"],
        "mean_return": [10.0, 25.0, 22.0, 31.0],
        "ci_low": [7.0, 21.0, 18.0, 26.0],
        "ci_high": [13.0, 29.0, 26.0, 36.0],
    })
    _assert_png(plot_policy_comparison(evaluation, tmp_path / "policies.png"))


def test_step_metrics(tmp_path: Path) -> None:
    steps = np.arange(1, 13)
    metrics = pd.DataFrame({
        "step": steps,
        "response_rate": 0.05 + 0.01 * np.sin(steps),
        "mean_fatigue": 0.1 * steps,
        "spend": 100.0 * steps,
        "label": ["x"] * steps.size,
    })
    _assert_png(plot_step_metrics(metrics, tmp_path / "steps.png"))


def test_step_metrics_with_seeds_and_policies(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    rows = [(policy, seed, step, rng.random(), rng.random() * step)
            for policy in ("ppo", "random") for seed in range(3) for step in range(1, 9)]
    metrics = pd.DataFrame(rows, columns=["policy", "seed", "step", "response_rate", "spend"])
    _assert_png(plot_step_metrics(metrics, tmp_path / "steps.png"))


def test_step_metrics_needs_a_metric(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="numeric"):
        plot_step_metrics(pd.DataFrame({"step": [1, 2]}), tmp_path / "s.png")
