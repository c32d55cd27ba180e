"""Figures for the held-out evaluation and the persona report.

``plot_qini`` draws the uplift (Qini) curves; ``plot_persona_response`` one persona's response
per arm with intervals (a small figure per report card); ``plot_sim_to_real`` simulated
against observed held-out rates. Figures are drawn on the Agg canvas, as in
:mod:`personasim.outputs.plots`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from personasim.outputs.plots import _figure

METRIC_TITLES = {
    "visit": "Extra visits per 1,000 customers",
    "conversion": "Extra orders per 1,000 customers",
    "spend": "Extra spend per 1,000 customers ($)",
    "net_value": "Net value per 1,000 customers ($)",
}
POLICY_LABELS = {"prioritization_table": "prioritization table", "t_learner": "T-learner"}
_COLORS = {"prioritization_table": "tab:green", "t_learner": "tab:purple"}
_PERCENT = FuncFormatter(lambda v, _: f"{100 * v:.3g}%")


def plot_qini(curves: pd.DataFrame, path: Path,
              operating: dict[str, float] | None = None) -> Path:
    """Uplift curves: gain over sending nothing as more customers are e-mailed.

    Parameters
    ----------
    curves
        ``policy, metric, share_targeted, gain`` (gain per customer).
    path
        PNG to write.
    operating
        Optional ``policy -> share`` of customers that policy actually e-mails; marked.
    """
    metrics = list(dict.fromkeys(curves["metric"]))
    with _figure(path, (4.6 * len(metrics), 4.4)) as fig:
        axes = np.atleast_1d(fig.subplots(1, len(metrics), squeeze=False)).ravel()
        for ax, metric in zip(axes, metrics, strict=True):
            part = curves[curves["metric"] == metric]
            for policy, rows in part.groupby("policy", sort=False):
                x = rows["share_targeted"].to_numpy(float)
                y = 1000 * rows["gain"].to_numpy(float)
                color = _COLORS.get(str(policy))
                label = POLICY_LABELS.get(str(policy), str(policy))
                ax.plot(x, y, lw=2, color=color, label=label)
                if str(policy) == "prioritization_table":
                    ax.plot([0, 1], [0, y[-1]], ls="--", lw=1.2, color="0.5",
                            label="same e-mails, random order")
                if operating and str(policy) in operating:
                    share = operating[str(policy)]
                    ax.plot([share], [np.interp(share, x, y)], "o", color=color, ms=7,
                            mec="black", label=f"{label}: who it e-mails")
            ax.axhline(0, color="0.3", lw=0.8)
            ax.set_title(METRIC_TITLES.get(metric, metric))
            ax.set_xlabel("Share of customers e-mailed (highest priority first)")
            ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("Gain over no e-mail (held-out, IPW)")
        axes[0].legend(loc="best", fontsize=8)
        fig.suptitle("Uplift (Qini) curves on held-out customers")
    return Path(path)


def plot_persona_response(cells: pd.DataFrame, path: Path, title: str,
                          xmax: float | None = None) -> Path:
    """One persona's response rate per arm: posterior mean with interval, and held-out.

    Parameters
    ----------
    cells
        One row per arm: ``label, mean, p_low, p_high`` and optionally
        ``observed_rate, observed_low, observed_high``.
    path
        PNG to write.
    title
        Figure title.
    xmax
        Right end of the rate axis (the same for every card makes them comparable).
    """
    y = np.arange(len(cells))[::-1]
    observed = "observed_rate" in cells and cells["observed_rate"].notna().any()
    with _figure(path, (5.2, 0.55 * len(cells) + 1.8)) as fig:
        ax = fig.add_subplot()
        mean = cells["mean"].to_numpy(float)
        err = np.vstack([mean - cells["p_low"].to_numpy(float),
                         cells["p_high"].to_numpy(float) - mean])
        shift = 0.12 if observed else 0.0
        ax.errorbar(mean, y + shift, xerr=err, fmt="o", color="tab:blue", capsize=4,
                    label="model (90% interval)")
        if observed:
            obs = cells["observed_rate"].to_numpy(float)
            oerr = np.vstack([obs - cells["observed_low"].to_numpy(float),
                              cells["observed_high"].to_numpy(float) - obs])
            ax.errorbar(obs, y - shift, xerr=oerr, fmt="s", mfc="white", color="tab:orange",
                        capsize=4, label="held-out customers (90%)")
        ax.set_yticks(y, cells["label"].tolist())
        ax.xaxis.set_major_formatter(_PERCENT)
        ax.set_xlabel("Response rate")
        ax.set_xlim(0, xmax)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
        ax.set_ylim(-0.6, len(cells) - 0.4)
        ax.grid(axis="x", alpha=0.3)
        fig.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
        ax.set_title(title, fontsize=11)
    return Path(path)


def plot_sim_to_real(table: pd.DataFrame, path: Path, level: float = 0.9) -> Path:
    """Observed held-out rate against the simulated interval, one point per cell."""
    sim = table["simulated_rate"].to_numpy(float)
    obs = table["observed_rate"].to_numpy(float)
    inside = table["inside"].to_numpy(bool)
    with _figure(path, (5.2, 4.8)) as fig:
        ax = fig.add_subplot()
        err = np.vstack([sim - table["simulated_low"].to_numpy(float),
                         table["simulated_high"].to_numpy(float) - sim])
        ax.errorbar(sim, obs, xerr=err, fmt="none", ecolor="0.6", lw=1)
        ax.scatter(sim[inside], obs[inside], color="tab:green", zorder=3,
                   label=f"inside ({inside.sum()})")
        ax.scatter(sim[~inside], obs[~inside], color="tab:red", marker="x", zorder=3,
                   label=f"outside ({(~inside).sum()})")
        top = float(np.nanmax(np.concatenate([sim, obs, table["simulated_high"]]))) * 1.05
        ax.plot([0, top], [0, top], ls="--", color="0.4", lw=1)
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.xaxis.set_major_formatter(_PERCENT)
        ax.yaxis.set_major_formatter(_PERCENT)
        ax.set_xlabel(f"Simulated rate ({level:.0%} interval)")
        ax.set_ylabel("Observed held-out rate")
        ax.set_title("Simulation vs held-out customers\n(persona x arm cells)")
        ax.legend(loc="upper left")
        ax.grid(alpha=0.3)
    return Path(path)


_BUDGET_LABELS = {"plan": "The plan", "random_best_arm": "Random customers, best arm",
                  "t_learner": "T-learner's top customers"}
_BUDGET_METRICS = {"visit": ("Visits per 1,000 customers", "{:,.0f}"),
                   "net_value": ("Net value per 1,000 customers", "${:,.0f}")}


def plot_budget_targeting(table: pd.DataFrame, path: Path) -> Path:
    """Value per 1,000 held-out customers at each budget, one panel per metric.

    Parameters
    ----------
    table : pd.DataFrame
        ``budget_targeting.csv`` (``budget_share, policy, metric, value, ci_low, ci_high``).
    path : Path
        The PNG to write.
    """
    metrics = [m for m in _BUDGET_METRICS if m in set(table["metric"])]
    if table.empty or not metrics:
        raise ValueError("budget targeting: the table has no visit or net_value rows")
    policies = list(dict.fromkeys(table["policy"]))
    shares = sorted(table["budget_share"].unique())
    width = 0.8 / len(policies)
    colors = {"plan": "tab:green", "random_best_arm": "tab:gray", "t_learner": "tab:blue"}
    with _figure(path, (5.2 * len(metrics), 4.4)) as fig:
        axes = fig.subplots(1, len(metrics), squeeze=False)[0]
        for ax, metric in zip(axes, metrics, strict=True):
            label, fmt = _BUDGET_METRICS[metric]
            rows = table[table["metric"] == metric]
            for i, policy in enumerate(policies):
                mine = rows[rows["policy"] == policy].set_index("budget_share").reindex(shares)
                x = np.arange(len(shares)) + (i - (len(policies) - 1) / 2) * width
                value = 1000 * mine["value"].to_numpy(dtype=float)
                err = 1000 * np.vstack([mine["value"] - mine["ci_low"],
                                        mine["ci_high"] - mine["value"]])
                color = colors.get(policy, "tab:orange")
                ax.errorbar(x, value, yerr=err, fmt="o", color=color, ecolor=color, capsize=4,
                            lw=1.5, ms=7, label=_BUDGET_LABELS.get(policy, policy))
            ax.set_xticks(np.arange(len(shares)), [f"{s:.0%} e-mailed" for s in shares])
            ax.set_ylabel(label)
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _, f=fmt: f.format(v)))
            ax.grid(axis="y", alpha=0.3)
            low = 1000 * float(rows["ci_low"].min())
            high = 1000 * float(rows["ci_high"].max())
            pad = 0.15 * (high - low or 1.0)
            ax.set_ylim(low - pad, high + pad)
        axes[0].legend(loc="upper left", fontsize=8)
        fig.suptitle("Held-out customers: the same number of e-mails, three ways to pick them "
                     "(95% CI)")
    return Path(path)
