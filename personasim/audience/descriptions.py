"""Plain-language persona descriptions and key facts, from templates over member attributes.

A campaign team reads "Suburban web shoppers who spent $200–350 last year, mostly on
womenswear, last bought 3 months ago", not centroid coordinates. :class:`AttributeRoles` says
which recipient column plays which part (area, channel, spend, product lines, recency,
newness); :func:`describe_members` fills the template from the members' attribute summaries
(modes, shares, quartiles). Without roles, :func:`member_facts` still summarizes any columns.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from personasim.config.persona import Persona
from personasim.core.types import CONSENT, PERSONA_ID, RECIPIENT_ID, is_consent_column

logger = logging.getLogger(__name__)

MOSTLY = 0.6
"""A category level describes a group when at least this share of members have it."""


@dataclass(frozen=True)
class AttributeRoles:
    """Which recipient columns fill which part of the description template.

    Attributes
    ----------
    area, channel
        Categorical columns: where members live and how they buy.
    spend
        Numeric column: dollars spent last year.
    lines
        0/1 columns -> product line bought (e.g. ``womens`` -> ``womenswear``).
    recency
        Numeric column: months since the last purchase.
    new
        0/1 column: a customer new this year.
    labels
        Display names for category levels (e.g. the source's ``Surburban``).
    """

    area: str | None = None
    channel: str | None = None
    spend: str | None = None
    lines: Mapping[str, str] = field(default_factory=dict)
    recency: str | None = None
    new: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        """Every column the roles name."""
        named = [self.area, self.channel, self.spend, self.recency, self.new, *self.lines]
        return [c for c in named if c is not None]


HILLSTROM_ROLES = AttributeRoles(
    area="zip_code", channel="channel", spend="history",
    lines={"womens": "womenswear", "mens": "menswear"}, recency="recency", new="newbie",
    labels={"Surburban": "suburban", "Urban": "urban", "Rural": "rural", "Web": "web",
            "Phone": "phone", "Multichannel": "multichannel"},
)


def roles_for(columns: list[str] | pd.Index) -> AttributeRoles | None:
    """The known roles whose columns are all present (Hillstrom's), else ``None``."""
    present = set(map(str, columns))
    return HILLSTROM_ROLES if set(HILLSTROM_ROLES.columns) <= present else None


def _nice(amount: float) -> int:
    """Round dollars to a number people say: tens below $200, fifties above."""
    step = 10 if amount < 200 else 50
    return int(step * round(amount / step))


def _levels(values: pd.Series, labels: Mapping[str, str]) -> list[tuple[str, float]]:
    shares = values.astype(str).value_counts(normalize=True)
    ordered = sorted(shares.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(labels.get(str(k), str(k)), float(v)) for k, v in ordered]


def _category_phrase(values: pd.Series, labels: Mapping[str, str]) -> str:
    """The dominant level (at least :data:`MOSTLY` of members), or nothing when mixed."""
    name, share = _levels(values, labels)[0]
    return name if share >= MOSTLY else ""


def _spend_phrase(spend: pd.Series) -> str:
    low, high = (_nice(float(q)) for q in np.quantile(spend.to_numpy(np.float64), [0.25, 0.75]))
    if high <= low:
        return f"about ${low:,}"
    return f"${low:,}–{high:,}"


def _lines_phrase(members: pd.DataFrame, lines: Mapping[str, str]) -> str:
    shares = {name: float(members[col].mean()) for col, name in lines.items()}
    high = [n for n, s in shares.items() if s >= 0.8]
    low = [n for n, s in shares.items() if s <= 0.35]
    if len(high) == 1 and len(low) == len(shares) - 1:
        return f"mostly on {high[0]}"
    if len(high) == len(shares) and len(shares) > 1:
        return "on both " + " and ".join(shares)
    top = sorted(shares, key=lambda n: -shares[n])
    return "on " + " and ".join(top)


def _recency_phrase(months: pd.Series) -> str:
    values = months.to_numpy(np.float64)
    low, mid, high = (int(round(q)) for q in np.quantile(values, [0.25, 0.5, 0.75]))
    if high - low >= 4:
        return f"last bought {low}–{high} months ago"
    return "last bought 1 month ago" if mid == 1 else f"last bought {mid} months ago"


def describe_members(members: pd.DataFrame, roles: AttributeRoles) -> str:
    """One sentence describing a group of customers, from the template.

    Example: "Suburban web shoppers who spent $200–350 last year, mostly on womenswear,
    last bought 3 months ago".
    """
    if members.empty:
        raise ValueError("cannot describe an empty group")
    words: list[str] = []
    if roles.new is not None:
        new = float(members[roles.new].mean())
        words += ["new"] if new >= 0.7 else ["returning"] if new <= 0.3 else []
    for column in (roles.area, roles.channel):
        if column is not None:
            phrase = _category_phrase(members[column], roles.labels)
            words += [phrase] if phrase else []
    words.append("shoppers")
    text = " ".join(words)
    clauses = []
    if roles.spend is not None:
        clauses.append(f"who spent {_spend_phrase(members[roles.spend])} last year")
    if roles.lines:
        clauses.append(_lines_phrase(members, roles.lines))
    if roles.recency is not None:
        clauses.append(_recency_phrase(members[roles.recency]))
    sentence = " ".join([text, ", ".join(clauses)]) if clauses else text
    return sentence[0].upper() + sentence[1:]


def _share(value: float) -> str:
    return f"{100 * value:.0f}%"


def _is_flag(values: pd.Series) -> bool:
    return bool(pd.api.types.is_bool_dtype(values) or (
        pd.api.types.is_numeric_dtype(values) and values.isin((0, 1)).all()))


def member_facts(members: pd.DataFrame, roles: AttributeRoles | None = None) -> dict[str, str]:
    """Key attributes of a group in plain words (label -> value), for persona cards.

    With ``roles`` the labels are named for their part (e.g. "Spent last year"); any other
    column is summarized generically: the share for 0/1 columns, the median and middle half
    for numbers, the two commonest levels for categories.
    """
    facts: dict[str, str] = {}
    used: set[str] = set()
    if roles is not None:
        labels = roles.labels
        if roles.spend is not None:
            q = np.quantile(members[roles.spend].to_numpy(np.float64), [0.25, 0.5, 0.75])
            facts["Spent last year"] = (f"median ${q[1]:,.0f} (middle half ${q[0]:,.0f}–"
                                        f"${q[2]:,.0f})")
        for column, name in roles.lines.items():
            facts[f"Bought {name}"] = _share(float(members[column].mean()))
        if roles.recency is not None:
            q = np.quantile(members[roles.recency].to_numpy(np.float64), [0.25, 0.5, 0.75])
            facts["Last purchase"] = f"median {q[1]:.0f} months ago ({q[0]:.0f}–{q[2]:.0f})"
        for label, column in (("Area", roles.area), ("Buys by", roles.channel)):
            if column is not None:
                top = _levels(members[column], labels)[:2]
                facts[label] = ", ".join(f"{name} {_share(s)}" for name, s in top)
        if roles.new is not None:
            facts["New this year"] = _share(float(members[roles.new].mean()))
        used = set(roles.columns)
    skip = {RECIPIENT_ID, CONSENT, PERSONA_ID, *used}
    for column in members.columns:
        if column in skip or is_consent_column(column) or (
                roles is not None and column.startswith("log_")):
            continue
        values = members[column]
        if _is_flag(values):
            facts[column] = _share(float(values.astype(float).mean()))
        elif pd.api.types.is_numeric_dtype(values):
            q = np.quantile(values.to_numpy(np.float64), [0.25, 0.5, 0.75])
            facts[column] = f"median {q[1]:.3g} ({q[0]:.3g}–{q[2]:.3g})"
        else:
            top = _levels(values, {})[:2]
            facts[column] = ", ".join(f"{name} {_share(s)}" for name, s in top)
    return facts


def describe_personas(personas: list[Persona], recipients: pd.DataFrame,
                      roles: AttributeRoles | None = None) -> list[Persona]:
    """Copies of ``personas`` with template descriptions from their members' attributes.

    Parameters
    ----------
    personas
        Synthesized personas.
    recipients
        Recipients with a ``persona_id`` column.
    roles
        Column roles (default :func:`roles_for` the recipients' columns); without any, the
        personas are returned unchanged.

    Returns
    -------
    list[Persona]
        Same order; a description shared by two personas gets the persona's number appended
        to the later one so every card reads differently.
    """
    roles = roles or roles_for(recipients.columns)
    if roles is None:
        return list(personas)
    groups = dict(tuple(recipients.groupby(PERSONA_ID, sort=False)))
    seen: set[str] = set()
    described: list[Persona] = []
    for i, persona in enumerate(personas):
        members = groups.get(persona.id)
        if members is None or members.empty:
            described.append(persona)
            continue
        text = describe_members(members, roles)
        if text in seen:
            text = f"{text} (group {i + 1})"
        seen.add(text)
        logger.info("%s: %s", persona.id, text)
        described.append(persona.model_copy(update={"description": text}))
    return described
