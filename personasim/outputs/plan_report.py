"""The report's plan section: what the plan sends, when, to whom, and what it costs.

Every number here is read from the plan itself (its summary and ``calendar.csv``), so the
section cannot disagree with ``plan.csv``, ``calendar.csv`` or the prioritization table.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import pandas as pd

from personasim.core.types import CAMPAIGN_ID, NO_SEND_ID, PERSONA_ID


def _money(x: float) -> str:
    return f"${x:,.2f}"


def _week_table(calendar: pd.DataFrame, labels: Mapping[str, str]) -> str:
    """Weeks as rows, campaigns as columns: messages planned (and the week's spend)."""
    e = html.escape
    sent = calendar[calendar[CAMPAIGN_ID] != NO_SEND_ID]
    grid = sent.pivot_table(index="week", columns=CAMPAIGN_ID, values="messages",
                            aggfunc="sum").fillna(0).astype(int)
    spend = sent.groupby("week")["spend"].sum()
    head = "".join(f"<th class=num>{e(labels.get(c, c))}</th>" for c in grid.columns)
    rows = "".join(
        f"<tr><td>{week}</td>" + "".join(f"<td class=num>{v:,}</td>" for v in grid.loc[week])
        + f"<td class=num>{_money(float(spend.get(week, 0.0)))}</td></tr>"
        for week in grid.index)
    return (f"<table class=eval><tr><th>Week</th>{head}<th class=num>Spend</th></tr>{rows}"
            "</table>")


def _persona_table(calendar: pd.DataFrame, plan: pd.DataFrame, sizes: Mapping[str, int],
                   labels: Mapping[str, str]) -> str:
    """Personas as rows: customers, customers messaged, messages per campaign, spend."""
    e = html.escape
    sent = calendar[calendar[CAMPAIGN_ID] != NO_SEND_ID]
    grid = sent.pivot_table(index=PERSONA_ID, columns=CAMPAIGN_ID, values="messages",
                            aggfunc="sum").fillna(0).astype(int)
    reached = plan.groupby(PERSONA_ID)["recipient_id"].nunique()
    spend = sent.groupby(PERSONA_ID)["spend"].sum()
    head = "".join(f"<th class=num>{e(labels.get(c, c))}</th>" for c in grid.columns)
    rows = []
    for pid, size in sizes.items():
        counts = grid.loc[pid] if pid in grid.index else pd.Series(0, index=grid.columns)
        got = int(reached.get(pid, 0))
        rows.append(f"<tr><td>{e(pid)}</td><td class=num>{size:,}</td>"
                    f"<td class=num>{got:,} ({got / size if size else 0:.0%})</td>"
                    + "".join(f"<td class=num>{int(v):,}</td>" for v in counts)
                    + f"<td class=num>{_money(float(spend.get(pid, 0.0)))}</td></tr>")
    return (f"<table class=eval><tr><th>Persona</th><th class=num>Customers</th>"
            f"<th class=num>Messaged</th>{head}<th class=num>Spend</th></tr>{''.join(rows)}"
            "</table>")


def _evidence_table(evidence: pd.DataFrame, labels: Mapping[str, str]) -> str:
    """Personas as rows, campaigns as columns: A/B responses / exposures and the class."""
    e = html.escape
    frame = pd.DataFrame(evidence)
    campaigns = list(dict.fromkeys(frame[CAMPAIGN_ID]))
    head = "".join(f"<th class=num>{e(labels.get(c, c))}</th>" for c in campaigns)
    rows = []
    for pid, cells in frame.groupby(PERSONA_ID, sort=False):
        by = cells.set_index(CAMPAIGN_ID)
        tds = "".join(
            f"<td class=num>{int(by.loc[c, 'responses']):,} / {int(by.loc[c, 'exposures']):,}"
            f"{'' if by.loc[c, 'evidence'] == 'tested' else ' (' + e(by.loc[c, 'evidence']) + ')'}"
            "</td>" for c in campaigns)
        rows.append(f"<tr><td>{e(str(pid))}</td>{tds}</tr>")
    return (f"<table class=eval><tr><th>Persona</th>{head}</tr>{''.join(rows)}</table>"
            "<p class=note>A/B responses / exposures per persona and campaign; 'thin' means "
            "fewer than 100 exposures or 5 responses, 'untested' none.</p>")


def _evaluation_table(evaluation: pd.DataFrame) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(str(r.strategy))}</td><td class=num>{_money(r.mean_return)}</td>"
        f"<td class=num>{_money(r.ci_low)} to {_money(r.ci_high)}</td>"
        f"<td class=num>{r.relative_to_plan:.2f}</td></tr>"
        for r in evaluation.sort_values("mean_return", ascending=False).itertuples())
    return ("<table class=eval><tr><th>Strategy</th><th class=num>Mean return</th>"
            "<th class=num>95% interval</th><th class=num>vs the plan</th></tr>"
            f"{rows}</table>")


def plan_section(summary: Mapping[str, Any], calendar: pd.DataFrame, plan: pd.DataFrame,
                 sizes: Mapping[str, int], labels: Mapping[str, str],
                 evaluation: pd.DataFrame | None, figures: list[tuple[str, str]]) -> str:
    """The plan's HTML section.

    Parameters
    ----------
    summary : Mapping[str, Any]
        The manifest's ``plan`` section.
    calendar : pd.DataFrame
        ``calendar.csv``.
    plan : pd.DataFrame
        ``plan.csv``.
    sizes : Mapping[str, int]
        Customers per persona, in report order.
    labels : Mapping[str, str]
        Campaign id -> display name.
    evaluation : pd.DataFrame or None
        ``plan_evaluation.csv`` (simulated audiences only).
    figures : list[tuple[str, str]]
        ``(file name, caption)`` of the plan's figures.
    """
    e = html.escape
    budget = summary.get("budget")
    of = f" of the {_money(budget)} budget" if budget is not None else " (no budget limit)"
    pacing = {"value": "recipient-level values (with a price on the budget when it binds)",
              "policy": "the trained policy's weekly pacing, recipient-level values "
                        "picking who"}.get(str(summary.get("pacing")), str(summary.get("pacing")))
    parts = [
        "<h2>The plan</h2>",
        f"<p>{summary['messages']:,} messages to {summary['recipients_messaged']:,} of "
        f"{summary['recipients']:,} customers, {_money(summary['spend'])}{e(of)}; expected "
        f"net value {_money(summary['expected_net_value'])}. {summary['holdout']:,} customers "
        "are held out (<code>holdout.csv</code>) so that lift can be measured after launch. "
        f"Pacing: {e(pacing)}. Every message, with its week and reason, is in "
        "<code>plan.csv</code>; the prioritization table marks exactly these sends.</p>",
    ]
    for warning in summary.get("evidence_warnings", []):
        parts.append(f"<p class=warn><b>Thin evidence:</b> {e(warning)} (send rule: "
                     f"{e(str(summary.get('send_rule')))}).</p>")
    if not plan.empty:
        parts += ["<h3>Messages per week</h3>", _week_table(calendar, labels),
                  "<h3>Per persona</h3>", _persona_table(calendar, plan, sizes, labels)]
    if evaluation is not None and len(evaluation):
        parts += ["<h3>The plan in the simulation</h3>",
                  "<p class=note>Dollars per season (value of responses minus cost) on the "
                  "evaluation audiences, the same budget for every strategy.</p>",
                  _evaluation_table(evaluation)]
    if summary.get("evidence"):
        parts += ["<h3>The evidence behind the estimates</h3>",
                  _evidence_table(summary["evidence"], labels)]
    for name, caption in figures:
        parts.append(f'<figure><img src="{e(name)}" alt="{e(caption)}">'
                     f"<figcaption class=note>{e(caption)}</figcaption></figure>")
    return "\n".join(parts)
