"""Plain-language persona descriptions and key facts, from column roles over member attributes.

A campaign team reads "Suburban web shoppers who spent $200–350 last year, mostly on
womenswear, last bought 3 months ago", not centroid coordinates. :class:`AttributeRoles`
(:mod:`personasim.audience.roles`) says how each recipients column reads; the Hillstrom
dataset's roles are built in, any dataset's can be declared under ``synthesis.columns``, and
a column with no role reads by its dtype ("tenure months 12–40, mostly urban").
:func:`describe_members` writes the sentence; :func:`member_facts` the persona card's facts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import pandas as pd

from personasim.audience.phrases import fact, group_phrase, label_of, phrase
from personasim.audience.roles import (
    HILLSTROM_ROLES,
    AttributeRoles,
    default_role,
    roles_for,
    roles_from_config,
)
from personasim.config.columns import ColumnRole
from personasim.config.persona import Persona
from personasim.core.types import CONSENT, PERSONA_ID, RECIPIENT_ID, is_consent_column

__all__ = ["HILLSTROM_ROLES", "AttributeRoles", "describe_members", "describe_personas",
           "distinct", "member_facts", "roles_for", "roles_from_config"]

logger = logging.getLogger(__name__)


def _roles_with(members: pd.DataFrame, roles: AttributeRoles | None,
                others: Iterable[str]) -> list[tuple[str, ColumnRole]]:
    """The declared roles of present columns, then ``others`` by their dtype."""
    declared = dict(roles.roles) if roles is not None else {}
    items = [(c, r) for c, r in declared.items() if c in members.columns]
    items += [(c, default_role(members[c])) for c in others
              if c in members.columns and c not in declared]
    return items


def describe_members(members: pd.DataFrame, roles: AttributeRoles | None = None,
                     others: Sequence[str] = ()) -> str:
    """One sentence describing a group of customers.

    Parameters
    ----------
    members
        The group's rows.
    roles
        The noun and the declared roles; columns they name but ``members`` lacks are skipped.
    others
        Columns without a role to describe too, by their dtype, in this order.

    Returns
    -------
    str
        With a noun, the words placed before it, the noun, then the other phrases:
        "Suburban web shoppers who spent $200–350 last year, mostly on womenswear, last bought
        3 months ago" (a comma after the noun unless the first phrase is a template's or a
        group's, which reads on from it). Without one, the phrases only: "Tenure months
        12–40, mostly urban".

    Raises
    ------
    ValueError
        If ``members`` is empty.
    """
    if members.empty:
        raise ValueError("cannot describe an empty group")
    noun = roles.noun if roles is not None else ""
    items = _roles_with(members, roles, others)
    before: list[str] = []
    after: list[str] = []
    reads_on = False  # the first phrase after the noun continues it ("who spent ...")
    groups_done: set[str] = set()
    for column, role in items:
        in_front = bool(noun) and role.place == "before" and role.group is None
        if role.group is not None:
            if role.group in groups_done:
                continue
            groups_done.add(role.group)
            text = group_phrase(members, {c: r for c, r in items if r.group == role.group})
        else:
            text = phrase(members[column], column, role, before=in_front)
        if text and in_front:
            before.append(text)
        elif text:
            if not after:
                reads_on = role.template is not None or role.group is not None
            after.append(text)
    subject = " ".join([*before, noun]) if noun else ""
    joint = " " if reads_on else ", "
    sentence = joint.join(p for p in (subject, ", ".join(after)) if p) or "Members"
    return sentence[0].upper() + sentence[1:]


def member_facts(members: pd.DataFrame, roles: AttributeRoles | None = None) -> dict[str, str]:
    """Key attributes of a group in plain words (label -> value), for persona cards.

    With ``roles`` each declared column is named by its ``fact`` (else its label, e.g.
    "Spent last year"); any other column is named as it is and summarized by its dtype:
    the share for 0/1 columns, the median and middle half for numbers, the two commonest
    levels for categories. With roles, ``log_`` columns (transforms) are left out.
    """
    facts: dict[str, str] = {}
    used: set[str] = set()
    if roles is not None:
        for column, role in roles.roles.items():
            if column in members.columns:
                name = role.fact or label_of(column, role)
                facts[name[0].upper() + name[1:]] = fact(members[column], role)
        used = set(roles.columns)
    skip = {RECIPIENT_ID, CONSENT, PERSONA_ID, *used}
    for column in members.columns:
        if column in skip or is_consent_column(column) or (
                roles is not None and str(column).startswith("log_")):
            continue
        facts[column] = fact(members[column], default_role(members[column]))
    return facts


def distinct(descriptions: Sequence[str]) -> list[str]:
    """The descriptions, a repeated one with its persona's number: "... (group 2)"."""
    seen: set[str] = set()
    out: list[str] = []
    for i, text in enumerate(descriptions):
        if text in seen:
            text = f"{text} (group {i + 1})"
        seen.add(text)
        out.append(text)
    return out


def describe_personas(personas: list[Persona], recipients: pd.DataFrame,
                      roles: AttributeRoles | None = None) -> list[Persona]:
    """Copies of ``personas`` with descriptions from their members' attributes.

    Parameters
    ----------
    personas
        Synthesized personas.
    recipients
        Recipients with a ``persona_id`` column.
    roles
        Column roles (default :func:`roles_for` the recipients' columns, the built-in ones);
        without any, the personas are returned unchanged.

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
    texts = [describe_members(groups[p.id], roles) if p.id in groups else p.description
             for p in personas]
    described: list[Persona] = []
    for persona, text in zip(personas, distinct(texts), strict=True):
        if persona.id in groups:
            logger.info("%s: %s", persona.id, text)
            persona = persona.model_copy(update={"description": text})
        described.append(persona)
    return described
