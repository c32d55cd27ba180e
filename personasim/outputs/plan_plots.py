"""Figures of the plan: messages and spend per week, and the plan against the alternatives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.ticker import FuncFormatter

from personasim.core.types import CAMPAIGN_ID, NO_SEND_ID
from personasim.outputs.plots import _DOLLARS, _figure, _require, plot_policy_comparison


def plot_plan(calendar: pd.DataFrame, path: Path, budget: float) -> Path:
    """Messages per week stacked by campaign, and the cumulative spend against the budget.

    Parameters
    ----------
    calendar : pd.DataFrame
        ``calendar.csv`` (``persona_id, week, campaign_id, messages, share, spend``).
    path : Path
        The PNG to write.
    budget : float
        The plan's budget (``inf``: none, not drawn).
    """
    _require(calendar, ["week", CAMPAIGN_ID, "messages", "spend"], "plan")
    sent = calendar[calendar[CAMPAIGN_ID] != NO_SEND_ID]
    weeks = np.sort(calendar["week"].unique())
    by = sent.pivot_table(index="week", columns=CAMPAIGN_ID, values="messages",
                          aggfunc="sum").reindex(weeks).fillna(0)
    spend = sent.groupby("week")["spend"].sum().reindex(weeks).fillna(0).cumsum()
    colors = colormaps["tab10"]
    with _figure(path, (8.0, 5.0)) as fig:
        ax = fig.add_subplot()
        bottom = np.zeros(len(weeks))
        for i, cid in enumerate(by.columns):
            ax.bar(weeks, by[cid].to_numpy(), bottom=bottom, color=colors(i % 10),
                   label=str(cid), width=0.7)
            bottom += by[cid].to_numpy()
        ax.set_xlabel("Week")
        ax.set_ylabel("Messages planned")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.set_xticks(weeks)
        ax.grid(axis="y", alpha=0.3)
        right = ax.twinx()
        right.plot(weeks, spend.to_numpy(), color="black", marker="o", lw=1.5,
                   label="cumulative spend")
        if np.isfinite(budget):
            right.axhline(budget, color="tab:red", ls="--", lw=1.2, label="budget")
        right.set_ylim(0, max(float(spend.max()), budget if np.isfinite(budget) else 0) * 1.1
                       or 1.0)
        right.set_ylabel("Cumulative spend")
        right.yaxis.set_major_formatter(_DOLLARS)
        right.spines["right"].set_visible(True)
        handles, labels = ax.get_legend_handles_labels()
        more, more_labels = right.get_legend_handles_labels()
        fig.legend(handles + more, labels + more_labels, loc="outside lower center",
                   ncols=min(6, len(labels) + len(more_labels)), frameon=False)
        ax.set_title("The plan: messages per week and spend against the budget")
    return Path(path)


def plot_plan_evaluation(evaluation: pd.DataFrame, path: Path, horizon: int) -> Path:
    """The plan and the alternatives in the simulation: mean return with 95% intervals."""
    _require(evaluation, ["strategy", "mean_return", "ci_low", "ci_high"], "plan evaluation")
    table = evaluation.rename(columns={"strategy": "policy"})
    return plot_policy_comparison(table, path, horizon,
                                  title="The plan and the alternatives: same budget, same "
                                        "seasons (95% CI)", ylabel="Strategy", highlight="plan")
