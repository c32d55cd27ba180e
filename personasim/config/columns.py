"""How recipients columns read in persona descriptions (``synthesis.columns``)."""

from __future__ import annotations

import string
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from personasim.config.base import StrictModel

#: The fields a ``synthesis.columns`` phrase template may name, by the column's role.
TEMPLATE_FIELDS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("money", "duration", "number"), ("label", "low", "high", "mid", "range",
                                                      "unit")),
    "share": ("label", "share", "percent"), "category": ("label", "level", "share", "percent")}


class ColumnRole(StrictModel):
    """How one recipients column reads in persona descriptions and persona cards."""

    role: Literal["money", "duration", "number", "share", "category"] = Field(
        description="money ('$40–180'), duration ('6–10 months'), number ('12–40'), share (a "
        "0–1 or boolean column: 'a third ...'), category (its commonest level: 'mostly urban').")
    label: str | None = Field(None, description="Words for the column (default: its name).")
    unit: str | None = Field(None, description="Currency sign for money (default $), time unit "
                             "for a duration (default months), a word after a number.")
    template: str | None = Field(
        None, description="The phrase, str.format-style with named fields: {label}, and {low} "
        "{high} {mid} {range} {unit} for numbers, {share} {percent} for shares, {level} too "
        "for a category; e.g. 'who pay {range} a month'.")
    place: Literal["before", "after"] = Field(
        "after", description="before: a word in front of synthesis.noun ('urban', 'new'), "
        "shown when most members share it; after: a phrase after the noun.")
    levels: dict[str, str] = Field({}, description="Category: the words for each level.")
    opposite: str | None = Field(None, description="Share before the noun: the word when few "
                                 "members have it ('returning' beside 'new').")
    group: str | None = Field(None, description="Share: columns with the same group read as one "
                              "phrase led by it ('on': 'mostly on womenswear').")
    fact: str | None = Field(None, description="Its name on persona cards (default: label).")

    @field_validator("template")
    @classmethod
    def _known_fields(cls, template: str | None, info: ValidationInfo) -> str | None:
        role = info.data.get("role")
        if template is None or role is None:
            return template
        allowed = TEMPLATE_FIELDS[role]
        try:
            names = [n for _, n, _, _ in string.Formatter().parse(template) if n is not None]
            bad = next((n for n in names if n not in allowed), None)
            if bad is None:
                template.format(**dict.fromkeys(allowed, "x"))
        except (ValueError, KeyError, IndexError) as exc:
            hint = "; fields are words, so a number format does not apply" if (
                "format code" in str(exc)) else ""
            raise ValueError(f"not a valid template ({exc}{hint})") from None
        if bad is not None:
            raise ValueError(f"unknown field {{{bad}}}; a {role} column has "
                             + ", ".join(f"{{{f}}}" for f in allowed))
        return template

    @model_validator(mode="after")
    def _fits_role(self) -> ColumnRole:
        for key, value in {"opposite": self.opposite, "group": self.group}.items():
            if value is not None and self.role != "share":
                raise ValueError(f"{key}: only a share column has one (role is {self.role})")
        if self.levels and self.role != "category":
            raise ValueError(f"levels: only a category column has levels (role is {self.role})")
        if self.group is not None and self.template is not None:
            raise ValueError("template: a grouped share column reads as its group's phrase")
        return self
