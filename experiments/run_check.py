"""One truth: check that a finished run's plan, table, calendar, manifest and report agree.

:func:`disagreements` reads the files a campaign team reads and lists every place where one
says something another contradicts. A finished run must give an empty list; the tests run it
on every bundled config.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from personasim.core import run_layout as files
from personasim.core.types import CAMPAIGN_ID, NO_SEND_ID, PERSONA_ID, RECIPIENT_ID

_TOL = 1e-6


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={RECIPIENT_ID: str, PERSONA_ID: str, CAMPAIGN_ID: str},
                       keep_default_na=False, na_values=[""])


def _table_errors(plan: pd.DataFrame, table: pd.DataFrame) -> list[str]:
    """The table sends exactly the plan's (recipient, campaign) pairs, at their first week."""
    errors = []
    first = plan.groupby([RECIPIENT_ID, CAMPAIGN_ID])["week"].min()
    sent = table[table["action"] == "send"].set_index([RECIPIENT_ID, CAMPAIGN_ID])["week"]
    if set(first.index) != set(sent.index):
        extra = len(set(sent.index) - set(first.index))
        missing = len(set(first.index) - set(sent.index))
        errors.append(f"prioritization.csv sends {extra} pairs the plan does not, and misses "
                      f"{missing} the plan sends")
    elif not np.array_equal(sent.reindex(first.index).to_numpy(dtype=float),
                            first.to_numpy(dtype=float)):
        errors.append("prioritization.csv's week is not the plan's first week for some pairs")
    if table.loc[table["action"] != "send", "week"].notna().any():
        errors.append("prioritization.csv gives a week to rows it does not send")
    return errors


def _calendar_errors(plan: pd.DataFrame, calendar: pd.DataFrame) -> list[str]:
    """The calendar's messages and spend per persona, week and campaign are the plan's."""
    counts = plan.groupby([PERSONA_ID, "week", CAMPAIGN_ID]).agg(
        messages=("cost", "size"), spend=("cost", "sum"))
    cal = calendar[calendar[CAMPAIGN_ID] != NO_SEND_ID].set_index(
        [PERSONA_ID, "week", CAMPAIGN_ID])
    joined = (cal[["messages", "spend"]].join(counts, rsuffix="_plan", how="outer")
              .fillna(0).astype(float))
    errors = []
    if not np.array_equal(joined["messages"].to_numpy(), joined["messages_plan"].to_numpy()):
        errors.append("calendar.csv's messages differ from plan.csv's")
    if not np.allclose(joined["spend"], joined["spend_plan"], atol=1e-4):
        errors.append("calendar.csv's spend differs from plan.csv's")
    return errors


def _manifest_errors(plan: pd.DataFrame, holdout: pd.DataFrame, summary: dict) -> list[str]:
    errors = []
    if summary["messages"] != len(plan):
        errors.append(f"the manifest counts {summary['messages']} messages, plan.csv "
                      f"{len(plan)}")
    spend = float(plan["cost"].sum())
    if abs(summary["spend"] - spend) > _TOL * max(1.0, spend):
        errors.append(f"the manifest's spend {summary['spend']} is not plan.csv's {spend}")
    budget = summary.get("budget")
    if budget is not None and spend > budget + _TOL * max(1.0, budget):
        errors.append(f"the plan spends {spend}, above the budget {budget}")
    if summary["holdout"] != len(holdout):
        errors.append("the manifest's holdout count is not holdout.csv's")
    if set(holdout[RECIPIENT_ID]) & set(plan[RECIPIENT_ID]):
        errors.append("the plan messages recipients listed in holdout.csv")
    return errors


def disagreements(run_dir: Path) -> list[str]:
    """Every contradiction between the run's plan and what else it writes, one line each.

    Parameters
    ----------
    run_dir : Path
        A finished run.

    Returns
    -------
    list[str]
        Empty when ``plan.csv``, ``prioritization.csv``, ``calendar.csv``, ``holdout.csv``,
        ``manifest.json`` and ``report.html`` agree.
    """
    plan = _read(files.PLAN_CSV.path(run_dir))
    table = _read(files.PRIORITIZATION_CSV.path(run_dir))
    calendar = _read(files.CALENDAR.path(run_dir))
    holdout = _read(files.HOLDOUT.path(run_dir))
    summary = json.loads(files.MANIFEST.path(run_dir).read_text(encoding="utf-8"))["plan"]
    errors = _table_errors(plan, table) + _calendar_errors(plan, calendar)
    errors += _manifest_errors(plan, holdout, summary)
    report = files.REPORT.path(run_dir).read_text(encoding="utf-8")
    for phrase in (f"{len(plan):,} messages", f"${plan['cost'].sum():,.2f}"):
        if phrase not in report:
            errors.append(f"report.html does not say {phrase!r}")
    return errors
