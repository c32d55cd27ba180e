"""One column of a group of members in words: a phrase for a description, a value for a card.

Every phrase comes from a :class:`~personasim.config.columns.ColumnRole`: money reads
"$40–180", a duration "6–10 months", a number "12–40" (the members' middle half, rounded to
what people say), a share "a third", a category its commonest level ("mostly urban"). A role's
``template`` is filled with :func:`str.format` from named string fields only
(:data:`~personasim.config.columns.TEMPLATE_FIELDS`), so a template cannot run code.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from personasim.config.columns import ColumnRole

MOSTLY = 0.6
"""A category level is the word before the noun when at least this share of members have it."""

FRACTIONS = ((0.1, "a tenth"), (0.2, "a fifth"), (0.25, "a quarter"), (1 / 3, "a third"),
             (0.4, "two in five"), (0.5, "half"), (0.6, "three in five"), (2 / 3, "two thirds"),
             (0.75, "three quarters"))
"""Shares people say, for :func:`share_words` between "few" and "mostly"."""

NUMERIC = ("money", "duration", "number")


def words(column: str) -> str:
    """A column name as words: ``tenure_months`` and ``tenureMonths`` -> "tenure months"."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", str(column))
    text = re.sub(r"[\W_]+", " ", spaced).strip().lower()
    return text or str(column)


def label_of(column: str, role: ColumnRole) -> str:
    """The role's label, else the column's words ("is_vip" as a share: "vip")."""
    if role.label:
        return role.label
    text = words(column)
    head, _, rest = text.partition(" ")
    return rest if role.role == "share" and head in ("is", "has") and rest else text


def share_words(share: float) -> str:
    """A share in words: "all", "nearly all", "mostly", "two thirds", ..., "few", "none"."""
    if share >= 0.995:
        return "all"
    if share >= 0.95:
        return "nearly all"
    if share >= 0.8:
        return "mostly"
    if share < 0.005:
        return "none"
    if share < 0.07:
        return "few"
    return min(FRACTIONS, key=lambda f: abs(f[0] - share))[1]


def percent(share: float) -> str:
    """A share as a whole percentage, e.g. "33%"."""
    return f"{100 * share:.0f}%"


def nice_money(amount: float) -> int:
    """Round money to a number people say: dollars below 20, tens below 200, fifties above."""
    step = 1 if abs(amount) < 20 else 10 if abs(amount) < 200 else 50
    return int(step * round(amount / step))


def nice_number(value: float) -> float:
    """Two significant figures (whole numbers from 10 up): 33.1 -> 33, 1.65 -> 1.6."""
    if value == 0 or not math.isfinite(value):
        return value
    return float(round(value, 1 - math.floor(math.log10(abs(value)))))


def _num(value: float) -> str:
    """A rounded number as written: "1,200", "33", "1.6"."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:g}"


def is_flag(values: pd.Series) -> bool:
    """Whether a column is boolean or holds only 0 and 1."""
    values = values.dropna()
    return bool(pd.api.types.is_bool_dtype(values) or (
        pd.api.types.is_numeric_dtype(values) and values.isin((0, 1)).all()))


def levels(values: pd.Series, names: Mapping[str, str]) -> list[tuple[str, float]]:
    """Levels in words with their shares, commonest first (ties by name)."""
    shares = values.dropna().astype(str).value_counts(normalize=True)
    ordered = sorted(shares.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(names.get(str(k), str(k)), float(v)) for k, v in ordered]


def _quartiles(values: pd.Series) -> np.ndarray:
    return np.quantile(values.dropna().to_numpy(np.float64), [0.25, 0.5, 0.75])


def _singular(unit: str, value: str) -> str:
    return unit[:-1] if value == "1" and unit.endswith("s") and len(unit) > 2 else unit


def numeric_fields(values: pd.Series, column: str, role: ColumnRole) -> dict[str, str]:
    """``low``, ``high``, ``mid`` (quartiles, rounded), ``range``, ``unit`` and ``label``."""
    q = _quartiles(values)
    label = label_of(column, role)
    if role.role == "money":
        sign = role.unit or "$"
        low, mid, high = (f"{nice_money(v):,}" for v in q)
        spread = nice_money(q[2]) > nice_money(q[0])
        text = f"{sign}{low}–{high}" if spread else f"about {sign}{low}"
        return {"low": low, "high": high, "mid": mid, "range": text, "unit": sign, "label": label}
    whole = role.role == "duration" and abs(q[2]) >= 3
    low, mid, high = (_num(float(round(v)) if whole else nice_number(float(v))) for v in q)
    unit = role.unit or ("months" if role.role == "duration" else "")
    if low == high:
        text = mid if role.role == "duration" else f"about {mid}"
        text = f"{text} {_singular(unit, mid)}".strip()
    else:
        text = f"{low} to {high}" if low.startswith("-") else f"{low}–{high}"
        text = f"{text} {unit}".strip()
    return {"low": low, "high": high, "mid": mid, "range": text, "unit": unit, "label": label}


def phrase(values: pd.Series, column: str, role: ColumnRole, before: bool = False) -> str:
    """The column's phrase for a group, or "" when it says nothing about them.

    Parameters
    ----------
    values
        The members' values of the column.
    column
        Its name (the label when the role gives none).
    role
        How it reads; its ``template``, when given, is filled from the role's fields.
    before
        The phrase stands in front of the noun: a share or category then shows only when
        most members agree (a share's ``opposite`` when few have it).
    """
    if values.dropna().empty:
        return ""
    label = label_of(column, role)
    if role.role in NUMERIC:
        fields = numeric_fields(values, column, role)
        default = fields["range"] if before else f"{label} {fields['range']}"
    elif role.role == "share":
        share = float(values.dropna().astype(float).mean())
        if before:
            label = label if share >= 0.7 else (role.opposite or "") if share <= 0.3 else ""
            if not label:
                return ""
        fields = {"label": label, "share": share_words(share), "percent": percent(share)}
        joint = " " if role.label else " with "  # "a third at risk", "a third with vip"
        default = label if before else f"{fields['share']}{joint}{label}"
    else:
        level, share = levels(values, role.levels)[0]
        if before and share < MOSTLY:
            return ""
        fields = {"label": label, "level": level, "share": share_words(share),
                  "percent": percent(share)}
        named = f" {role.label}" if role.label else ""
        default = level if before else f"{fields['share']} {level}{named}"
    return role.template.format(**fields) if role.template else default


def group_phrase(members: pd.DataFrame, roles: Mapping[str, ColumnRole]) -> str:
    """Share columns read together, led by their group: "mostly on womenswear".

    One column held by at least 80% of members while the others are at most 35% reads
    "mostly on X"; all held by 80% or more read "on both X and Y"; otherwise the columns
    are listed, the most held first.
    """
    lead = next(iter(roles.values())).group or ""
    shares = {label_of(column, role): float(members[column].astype(float).mean())
              for column, role in roles.items()}
    high = [n for n, s in shares.items() if s >= 0.8]
    low = [n for n, s in shares.items() if s <= 0.35]
    if len(high) == 1 and len(low) == len(shares) - 1:
        parts = ["mostly", lead, high[0]]
    elif len(high) == len(shares) and len(shares) > 1:
        parts = [lead, "both", " and ".join(shares)]
    else:
        parts = [lead, " and ".join(sorted(shares, key=lambda n: -shares[n]))]
    return " ".join(w for w in parts if w)


def fact(values: pd.Series, role: ColumnRole) -> str:
    """A card's value for the column: a median and middle half, a share, the top levels."""
    if values.dropna().empty:
        return "no values"
    if role.role == "share":
        return percent(float(values.dropna().astype(float).mean()))
    if role.role == "category":
        return ", ".join(f"{n} {percent(s)}" for n, s in levels(values, role.levels)[:2])
    q = _quartiles(values)
    if role.role == "money":
        sign = role.unit or "$"
        return f"median {sign}{q[1]:,.0f} (middle half {sign}{q[0]:,.0f}–{sign}{q[2]:,.0f})"
    unit = f" {role.unit or 'months'}" if role.role == "duration" else (
        f" {role.unit}" if role.unit else "")
    return f"median {q[1]:.3g}{unit} ({q[0]:.3g}–{q[2]:.3g})"
