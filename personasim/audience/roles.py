"""Which recipients column plays which part in a persona's description.

A config declares roles under ``synthesis.columns`` (:class:`~personasim.config.sections.
ColumnRole`) and what members are called under ``synthesis.noun``. A known dataset brings its
own roles in the same schema (:data:`HILLSTROM_ROLES`); declared roles override them column by
column (``defaults | user``). A column with no role is read by its dtype
(:func:`default_role`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from personasim.audience.phrases import NUMERIC, is_flag
from personasim.config.columns import ColumnRole
from personasim.config.sections import SynthesisConfig
from personasim.core.errors import DataError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttributeRoles:
    """What members are called and how each described column reads.

    Attributes
    ----------
    noun
        What members are called ("shoppers"); empty: the description is phrases only.
    roles
        Column -> its role, in the order the description reads them.
    """

    noun: str = ""
    roles: Mapping[str, ColumnRole] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        """Every column the roles name."""
        return list(self.roles)

    def merged(self, user: AttributeRoles) -> AttributeRoles:
        """These roles overridden by ``user``'s, column by column (its noun, when given)."""
        return AttributeRoles(user.noun or self.noun, {**self.roles, **user.roles})


def _category(levels: Mapping[str, str], fact: str) -> ColumnRole:
    return ColumnRole(role="category", place="before", levels=dict(levels), fact=fact)


HILLSTROM_ROLES = AttributeRoles(noun="shoppers", roles={
    "newbie": ColumnRole(role="share", label="new", opposite="returning", place="before",
                         fact="New this year"),
    "zip_code": _category({"Surburban": "suburban", "Urban": "urban", "Rural": "rural"}, "Area"),
    "channel": _category({"Web": "web", "Phone": "phone", "Multichannel": "multichannel"},
                         "Buys by"),
    "history": ColumnRole(role="money", label="spend last year",
                          template="who spent {range} last year", fact="Spent last year"),
    "womens": ColumnRole(role="share", label="womenswear", group="on", fact="Bought womenswear"),
    "mens": ColumnRole(role="share", label="menswear", group="on", fact="Bought menswear"),
    "recency": ColumnRole(role="duration", label="since last purchase", unit="months",
                          template="last bought {range} ago", fact="Since last purchase"),
})
"""The Hillstrom e-mail dataset's columns, for sentences such as "Suburban web shoppers who
spent $200–350 last year, mostly on womenswear, last bought 3 months ago"."""

KNOWN_ROLES = (HILLSTROM_ROLES,)
"""Built-in roles, each used when a recipients file has all of its columns."""


def roles_for(columns: list[str] | pd.Index) -> AttributeRoles | None:
    """The built-in roles whose columns are all present (Hillstrom's), else ``None``."""
    present = set(map(str, columns))
    return next((r for r in KNOWN_ROLES if set(r.columns) <= present), None)


def roles_from_config(config: SynthesisConfig,
                      columns: list[str] | pd.Index) -> AttributeRoles | None:
    """The built-in roles for ``columns`` overridden by those the config declares.

    Returns
    -------
    AttributeRoles | None
        ``None`` when nothing is built in for these columns and the config declares neither
        a noun nor a column.
    """
    declared = AttributeRoles(config.noun, dict(config.columns))
    built_in = roles_for(columns)
    if built_in is not None:
        return built_in.merged(declared)
    return declared if declared.noun or declared.roles else None


def default_role(values: pd.Series) -> ColumnRole:
    """A column without a declared role, read by its dtype.

    Booleans and 0/1 columns are shares, other numbers a range of the middle half,
    anything else a category (its commonest level).
    """
    if is_flag(values):
        return ColumnRole(role="share")
    if pd.api.types.is_numeric_dtype(values):
        return ColumnRole(role="number")
    return ColumnRole(role="category")


def check_roles(recipients: pd.DataFrame, roles: AttributeRoles) -> None:
    """Fail when a role names a missing column or one whose values do not fit the role.

    Raises
    ------
    DataError
        With source ``"recipients"`` (the caller names the file) and the column.
    """
    for column, role in roles.roles.items():
        where = f"column {column!r}"
        if column not in recipients.columns:
            raise DataError("recipients", where,
                            "named in synthesis.columns but not in the recipients file")
        values = recipients[column].dropna()
        if role.role in NUMERIC and not (pd.api.types.is_numeric_dtype(values)
                                         and not pd.api.types.is_bool_dtype(values)):
            raise DataError("recipients", where,
                            f"synthesis.columns gives it the role {role.role}; expected numbers")
        if role.role == "share" and not is_flag(values) and not (
                pd.api.types.is_numeric_dtype(values) and values.between(0, 1).all()):
            raise DataError("recipients", where, "synthesis.columns gives it the role share; "
                            "expected true/false or numbers from 0 to 1")
