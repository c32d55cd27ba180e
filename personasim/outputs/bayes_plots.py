"""Figures of the Bayesian update: posterior predictive check and convergence over A/B waves.

Drawn like :mod:`personasim.outputs.plots` (an Agg ``Figure``, never ``pyplot``). Each plotting
function writes one PNG and returns its path; :func:`write_bayes_plots` writes a run's.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from personasim.core import run_layout as files
from personasim.core.csv_files import write_csv
from personasim.core.types import ABCounts, Posterior
from personasim.outputs.plots import _figure

if TYPE_CHECKING:
    from personasim.bayes.update import InferenceOutcome

logger = logging.getLogger(__name__)

PPC_COLUMNS = ("persona_id", "campaign_id", "exposures", "observed_rate", "pred_low",
               "pred_high", "pred_mean")


def posterior_predictive(
    posterior: Posterior, counts: ABCounts, seed: int = 0, level: float = 0.9,
    max_draws: int = 1000,
) -> pd.DataFrame:
    """Posterior predictive check per exposed cell.

    For each draw of the cell rates, a replicate count ``Binomial(exposures, p)`` is drawn;
    the table gives the observed rate beside the replicate rates' mean and equal-tailed
    ``level`` interval (columns :data:`PPC_COLUMNS`). Cells are matched by id.
    """
    rng = np.random.default_rng(seed)
    index = np.unique(np.linspace(0, posterior.draws.shape[0] - 1, max_draws).astype(int))
    rows = {p: j for j, p in enumerate(posterior.persona_ids)}
    cols = {c: k for k, c in enumerate(posterior.campaign_ids)}
    records: list[dict[str, Any]] = []
    tail = (1 - level) / 2
    for j, pid in enumerate(counts.persona_ids):
        for k, cid in enumerate(counts.campaign_ids):
            n = int(counts.exposures[j, k])
            if n == 0 or pid not in rows or cid not in cols:
                continue
            p = posterior.draws[index, rows[pid], cols[cid]].astype(np.float64)
            replicate = rng.binomial(n, np.clip(p, 0, 1)) / n
            low, high = np.quantile(replicate, [tail, 1 - tail])
            records.append({
                "persona_id": pid, "campaign_id": cid, "exposures": n,
                "observed_rate": counts.responses[j, k] / n,
                "pred_low": float(low), "pred_high": float(high),
                "pred_mean": float(replicate.mean()),
            })
    return pd.DataFrame(records, columns=list(PPC_COLUMNS))


def ppc_coverage(table: pd.DataFrame) -> float:
    """Share of cells whose observed rate lies inside its predictive interval (NaN if none)."""
    if table.empty:
        return float("nan")
    inside = (table["observed_rate"] >= table["pred_low"]) & (
        table["observed_rate"] <= table["pred_high"])
    return float(inside.mean())


def plot_ppc(table: pd.DataFrame, path: Path, level: float = 0.9) -> Path:
    """Observed cell rates against their posterior predictive intervals.

    Raises
    ------
    ValueError
        If the table is empty (no exposed cells).
    """
    if table.empty:
        raise ValueError("posterior predictive check: no exposed cells")
    order = table.sort_values("pred_mean").reset_index(drop=True)
    y = np.arange(len(order))
    inside = (order["observed_rate"] >= order["pred_low"]) & (
        order["observed_rate"] <= order["pred_high"])
    height = max(3.5, 0.28 * len(order) + 1.5)
    with _figure(path, (8.0, min(height, 30.0))) as fig:
        ax = fig.add_subplot()
        ax.hlines(y, order["pred_low"], order["pred_high"], color="#9ab", lw=4,
                  label=f"{level:.0%} posterior predictive interval")
        ax.plot(order["pred_mean"], y, "|", color="#357", ms=10, label="predictive mean")
        ax.plot(order["observed_rate"][inside], y[inside], "o", color="#1a7", ms=5,
                label="observed (inside)")
        ax.plot(order["observed_rate"][~inside], y[~inside], "o", color="#c33", ms=6,
                label="observed (outside)")
        labels = [f"{p} · {c} (n={n})" for p, c, n in
                  zip(order["persona_id"], order["campaign_id"], order["exposures"], strict=True)]
        ax.set_yticks(y, labels, fontsize=7 if len(order) > 30 else 9)
        ax.set_xlabel("response rate")
        ax.set_title(f"Posterior predictive check: {inside.mean():.0%} of cells inside")
        ax.legend(loc="lower right", fontsize=8)
    return Path(path)


def plot_waves(table: pd.DataFrame, path: Path) -> Path:
    """Estimates converging on the truth over successive simulated A/B waves.

    Left: each cell's error (posterior mean minus truth) with its 90% interval, per wave.
    Right: RMSE to the truth and mean interval width per wave.

    Raises
    ------
    ValueError
        If the table is empty.
    """
    if table.empty:
        raise ValueError("waves: the table is empty")
    waves = np.sort(table["wave"].unique())
    per_wave = table.assign(
        sq=(table["mean"] - table["truth"]) ** 2, width=table["p_high"] - table["p_low"],
        inside=(table["truth"] >= table["p_low"]) & (table["truth"] <= table["p_high"]),
    ).groupby("wave").agg(rmse=("sq", "mean"), width=("width", "mean"),
                          coverage=("inside", "mean"), exposures=("exposures", "sum"))
    per_wave["rmse"] = np.sqrt(per_wave["rmse"])
    with _figure(path, (11.0, 4.5)) as fig:
        left, right = fig.subplots(1, 2)
        cells = table.groupby(["persona_id", "campaign_id"], sort=False)
        personas = list(dict.fromkeys(table["persona_id"]))
        campaigns = list(dict.fromkeys(table["campaign_id"]))
        colors = {p: f"C{i % 10}" for i, p in enumerate(personas)}
        markers = {c: "osD^vP*Xh<>"[i % 11] for i, c in enumerate(campaigns)}
        offsets = np.linspace(-0.25, 0.25, max(cells.ngroups, 1))
        for offset, ((persona, campaign), cell) in zip(offsets, cells, strict=False):
            cell = cell.sort_values("wave")
            x = cell["wave"].to_numpy() + offset
            err = (cell["mean"] - cell["truth"]).to_numpy()
            left.errorbar(x, err, yerr=[err - (cell["p_low"] - cell["truth"]).to_numpy(),
                                        (cell["p_high"] - cell["truth"]).to_numpy() - err],
                          fmt=markers[campaign] + "-", ms=4, lw=0.8, alpha=0.7, capsize=0,
                          color=colors[persona])
        left.axhline(0.0, color="black", lw=1)
        left.set_xticks(waves)
        left.set_xlabel("A/B wave")
        left.set_ylabel("estimate − true response rate (90% interval)")
        left.set_title("Each persona × campaign cell")
        handles = [Line2D([], [], color=colors[p], lw=2, label=p) for p in personas]
        handles += [Line2D([], [], color="0.4", marker=markers[c], ls="", label=c)
                    for c in campaigns]
        left.legend(handles=handles, fontsize=7, ncol=2, loc="lower right",
                    title="persona (colour), campaign (marker)", title_fontsize=7)
        right.plot(per_wave.index, per_wave["rmse"], "o-", label="RMSE to truth")
        right.plot(per_wave.index, per_wave["width"], "s--", label="mean 90% interval width")
        right.set_xticks(waves)
        right.set_xlabel("A/B wave (cumulative exposures below)")
        right.set_ylabel("response rate (share of recipients)")
        right.set_title("Convergence on the simulation's truth")
        right.set_ylim(bottom=0)
        for wave, row in per_wave.iterrows():
            right.annotate(f"{int(row['exposures']):,}", (wave, 0), textcoords="offset points",
                           xytext=(0, 4), ha="center", fontsize=8)
        right.legend()
    return Path(path)


def write_bayes_plots(out: Path, outcome: InferenceOutcome, plots: bool, seed: int = 0,
                      level: float = 0.9) -> dict[str, Any]:
    """Write ``ppc.csv`` (+ ``ppc.png``) and, with waves, ``ab_waves.csv`` (+ ``.png``).

    Returns the manifest's posterior-predictive entry: ``{"ppc_coverage_90": ...}``.
    """
    out = Path(out)
    table = posterior_predictive(outcome.posterior, outcome.counts, seed, level)
    write_csv(table, files.PPC.path(out))
    if plots and not table.empty:
        plot_ppc(table, files.PPC_PLOT.path(out), level)
    if outcome.waves is not None:
        write_csv(outcome.waves, files.AB_WAVES.path(out))
        if plots:
            plot_waves(outcome.waves, files.AB_WAVES_PLOT.path(out))
    coverage = ppc_coverage(table)
    return {"ppc_coverage_90": None if np.isnan(coverage) else round(coverage, 4)}
