"""One plain-language sentence per planned message, built with Arrow string kernels.

A reason reads, for example, "25% off everything in week 1: +8.43 responses per 100 like this
customer (bargain_hunters), worth $0.76 for a $0.05 send, net $0.71; 1 earlier message lowers
it through fatigue; during downturn." Plans run to millions of rows, so the sentences are
assembled column by column in Arrow (numbers formatted as fixed two-decimal text from whole
cents), never row by row in Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from personasim.core.types import CAMPAIGN_ID, PERSONA_ID, RECIPIENT_ID

_NOTES = {"untested": "; no A/B results for this persona and campaign, so valued at the low "
                      "end of its estimate",
          "thin": "; thin A/B evidence for this persona and campaign"}
_DOUBT = "; below cost on average, but its interval reaches a profit, so not held back"


def fixed2(values: np.ndarray, plus: bool = False) -> pa.Array:
    """``values`` as text with two decimals (``-0.05``, ``12.30``; ``+`` too with ``plus``)."""
    x = np.asarray(values, dtype=float)
    cents = np.rint(np.abs(x) * 100).astype(np.int64)
    whole = pc.cast(pa.array(cents // 100), pa.string())
    frac = pc.utf8_lpad(pc.cast(pa.array(cents % 100), pa.string()), 2, "0")
    negative = (x < 0) & (cents > 0)
    sign = pc.if_else(pa.array(negative), pa.scalar("-"), pa.scalar("+" if plus else ""))
    return pc.binary_join_element_wise(sign, whole, ".", frac, "")


def money(values: np.ndarray) -> pa.Array:
    """Dollars with two decimals, the sign in front: ``$0.71``, ``-$0.04``."""
    x = np.asarray(values, dtype=float)
    negative = (x < 0) & (np.rint(np.abs(x) * 100) > 0)
    sign = pc.if_else(pa.array(negative), pa.scalar("-$"), pa.scalar("$"))
    return pc.binary_join_element_wise(sign, fixed2(np.abs(x)), "")


def _lookup(keys: pd.Series | pd.MultiIndex, table: Mapping[object, str]) -> pa.Array:
    """``table[key]`` for every key (``""`` when absent), via the distinct keys."""
    codes, distinct = pd.factorize(keys)
    words = pa.array([table.get(k, "") for k in distinct], pa.string())
    return pc.take(words, pa.array(codes))


def plan_reasons(plan: pd.DataFrame, labels: Mapping[str, str],
                 events_by_week: Mapping[tuple[str, int], Sequence[str]],
                 outcome: str = "response") -> pa.Array:
    """One plain sentence per plan row naming what put it there.

    Parameters
    ----------
    plan : pd.DataFrame
        The plan (recipient, persona, week, campaign, uplift, expected value, cost, priority,
        optional evidence), in order.
    labels : Mapping[str, str]
        Campaign id -> what a person calls it (its offer).
    events_by_week : Mapping[tuple[str, int], Sequence[str]]
        (persona id, week) -> names of the events on then.
    outcome : str
        What a response is called (``response``, ``visit``, ``order``).

    Returns
    -------
    pa.Array
        Arrow strings, one per row.
    """
    n = len(plan)
    if n == 0:
        return pa.array([], pa.string())
    earlier = plan.groupby(RECIPIENT_ID, sort=False).cumcount()
    fatigue = {e: (f"; {e} earlier messages lower it through fatigue" if e > 1 else
                   "; 1 earlier message lowers it through fatigue")
               for e in range(1, int(earlier.max()) + 1)}
    during = {(str(pid), int(w)): f"; during {', '.join(names)}"
              for (pid, w), names in events_by_week.items() if names}
    when = pd.MultiIndex.from_arrays([plan[PERSONA_ID].astype(str), plan["week"].astype(int)])
    note = (_lookup(plan["evidence"].astype(str), _NOTES) if "evidence" in plan
            else pa.scalar(""))
    priority = plan["priority"].to_numpy(dtype=float)
    doubt = pc.if_else(pa.array(priority <= 0), pa.scalar(_DOUBT), pa.scalar(""))
    campaign = plan[CAMPAIGN_ID].astype(str)
    parts = [
        _lookup(campaign, {c: labels.get(c, c) for c in campaign.unique()}),
        pa.scalar(" in week "), pc.cast(pa.array(plan["week"].to_numpy(np.int64)), pa.string()),
        pa.scalar(": "), fixed2(100 * plan["uplift"].to_numpy(dtype=float), True),
        pa.scalar(f" {outcome}s per 100 like this customer ("),
        pa.array(plan[PERSONA_ID].astype(str), pa.string()),
        pa.scalar("), worth "), money(plan["expected_value"].to_numpy(float)),
        pa.scalar(" for a "), money(plan["cost"].to_numpy(dtype=float)),
        pa.scalar(" send, net "), money(priority),
        _lookup(earlier, fatigue), _lookup(when, during), note, doubt, pa.scalar("."),
    ]
    return pc.binary_join_element_wise(*parts, "")
