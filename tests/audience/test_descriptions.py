"""Persona descriptions from column roles: Hillstrom's built in, declared ones, dtype defaults."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hillstrom_helpers import synthetic_hillstrom

from personasim.audience.descriptions import describe_members, describe_personas, member_facts
from personasim.audience.phrases import (
    label_of,
    nice_number,
    numeric_fields,
    phrase,
    share_words,
    words,
)
from personasim.audience.roles import HILLSTROM_ROLES, AttributeRoles, roles_from_config
from personasim.audience.synthesis import synthesize_personas
from personasim.config.columns import ColumnRole
from personasim.config.sections import SynthesisConfig
from personasim.core.errors import DataError
from personasim.core.types import PERSONA_ID

SUBSCRIPTION_COLUMNS = {
    "plan": ColumnRole(role="category", place="before"),
    "monthly_fee": ColumnRole(role="money", label="monthly fee",
                              template="who pay {range} a month", fact="Pays a month"),
    "tenure_months": ColumnRole(role="duration", template="subscribed for {range}"),
    "churn_risk": ColumnRole(role="share", label="at risk of churning"),
    "region": ColumnRole(role="category"),
}
SUBSCRIPTION_ROLES = AttributeRoles("subscribers", SUBSCRIPTION_COLUMNS)


def subscribers(n: int = 120) -> pd.DataFrame:
    """One group of subscribers with round quartiles: 6–10 months, $40–60, 80% premium."""
    i = np.arange(n)
    return pd.DataFrame({
        "recipient_id": [f"s{k}" for k in i], "consent": True,
        "tenure_months": np.linspace(4, 12, n), "monthly_fee": np.linspace(30, 70, n),
        "plan": np.where(i % 5 == 0, "basic", "premium"),
        "churn_risk": (i % 3 == 0).astype(int),
        "region": np.where(i % 4 == 0, "rural", "urban"),
    })


def subscription_business(n: int = 900, seed: int = 0) -> pd.DataFrame:
    """Three kinds of subscriber: new on basic, loyal on premium, families in between."""
    rng = np.random.default_rng(seed)
    kind = rng.permutation(np.arange(n) % 3)
    pick = lambda a, b, c: np.select([kind == 0, kind == 1], [a, b], c)  # noqa: E731
    return pd.DataFrame({
        "recipient_id": [f"s{i}" for i in range(n)], "consent": True,
        "tenure_months": pick(rng.integers(1, 6, n), rng.integers(24, 60, n),
                              rng.integers(8, 20, n)),
        "monthly_fee": pick(rng.normal(12, 1.5, n), rng.normal(45, 4, n),
                            rng.normal(28, 3, n)).round(2),
        "plan": pick("basic", "premium", "family"),
        "churn_risk": (rng.random(n) < pick(0.6, 0.05, 0.3)).astype(int),
        "region": np.where(rng.random(n) < pick(0.4, 0.85, 0.4), "urban", "rural"),
    })


def hillstrom_recipients(n: int = 1500) -> pd.DataFrame:
    frame = synthetic_hillstrom(n, seed=2)
    frame = frame[["recency", "history", "mens", "womens", "zip_code", "newbie", "channel"]]
    frame.insert(0, "recipient_id", [f"h{i}" for i in range(n)])
    return frame.assign(log_history=np.log1p(frame["history"]))


HILLSTROM_SENTENCE = re.compile(
    r"^(new |returning )?([a-z]+ )*shoppers who spent \$[\d,]+(–[\d,]+)? last year, "
    r"(mostly )?on (both )?[a-z]+wear( and [a-z]+wear)?, last bought [\d–]+ months? ago"
    r"( \(group \d\))?$")


def test_hillstrom_personas_read_like_the_campaign_team_talks() -> None:
    recipients = hillstrom_recipients()
    result = synthesize_personas(recipients, SynthesisConfig(k=4), np.random.default_rng(0))
    texts = [p.description for p in result.personas]
    assert all(HILLSTROM_SENTENCE.match(t[0].lower() + t[1:]) for t in texts), texts
    assert len(set(texts)) == len(texts)
    # the dataset stage describes them again from the built-in roles: the same words
    labelled = recipients.assign(**{PERSONA_ID: [result.personas[i].id for i in result.labels]})
    again = describe_personas([p.model_copy(update={"description": ""})
                               for p in result.personas], labelled)
    assert [p.description for p in again] == texts


def test_hillstrom_roles_are_the_same_schema_and_can_be_overridden() -> None:
    assert all(isinstance(r, ColumnRole) for r in HILLSTROM_ROLES.roles.values())
    recipients = hillstrom_recipients()
    config = SynthesisConfig(k=3, noun="customers", columns={
        "history": ColumnRole(role="money", template="with {range} spent")})
    roles = roles_from_config(config, recipients.columns)
    assert roles is not None and roles.roles["recency"] is HILLSTROM_ROLES.roles["recency"]
    texts = [p.description for p in
             synthesize_personas(recipients, config, np.random.default_rng(0)).personas]
    assert all(re.search(r"^Customers with \$[\d,–]+ spent, .*, last bought", t) for t in texts)
    assert roles_from_config(SynthesisConfig(), ["age"]) is None


def test_subscriptions_with_declared_roles() -> None:
    assert describe_members(subscribers(), SUBSCRIPTION_ROLES) == (
        "Premium subscribers who pay $40–60 a month, subscribed for 6–10 months, "
        "a third at risk of churning, three quarters urban")


def test_subscriptions_without_roles_read_by_dtype() -> None:
    others = ["tenure_months", "monthly_fee", "plan", "churn_risk", "region"]
    assert describe_members(subscribers(), None, others) == (
        "Tenure months 6–10, monthly fee 40–60, mostly premium, a third with churn risk, "
        "three quarters urban")


def test_synthesized_subscription_personas_with_and_without_roles() -> None:
    data = subscription_business()
    plain = synthesize_personas(data, SynthesisConfig(k=3), np.random.default_rng(0))
    for persona in plain.personas:
        text = persona.description
        assert "mean" not in text and "_" not in text and "Members with" not in text, text
        assert len(re.findall(r", ", text)) == 2, text  # the three most distinctive columns
    assert any("tenure months" in p.description for p in plain.personas)
    config = SynthesisConfig(k=3, noun="subscribers", columns=SUBSCRIPTION_COLUMNS)
    declared = synthesize_personas(data, config, np.random.default_rng(0))
    np.testing.assert_array_equal(declared.labels, plain.labels)  # words only, same clusters
    texts = {p.description.split(" ")[0]: p.description for p in declared.personas}
    assert set(texts) == {"Basic", "Premium", "Family"}
    assert re.match(r"Premium subscribers who pay \$4\d–\d+ a month, subscribed for "
                    r"\d\d–\d\d months, (few|none) at risk of churning, mostly urban$",
                    texts["Premium"]), texts
    assert re.match(r"Basic subscribers who pay \$1\d–\d\d a month, subscribed for \d+–\d+ "
                    r"months, (all|nearly all|mostly) at risk of churning", texts["Basic"]), texts


def test_declared_columns_must_exist_and_fit_their_role() -> None:
    data = subscription_business(300)
    cases = [({"tenure": ColumnRole(role="duration")}, "column 'tenure'", "not in the"),
             ({"plan": ColumnRole(role="money")}, "column 'plan'", "expected numbers"),
             ({"tenure_months": ColumnRole(role="share")}, "column 'tenure_months'", "0 to 1")]
    for columns, where, what in cases:
        with pytest.raises(DataError) as info:
            synthesize_personas(data, SynthesisConfig(k=2, columns=columns),
                                np.random.default_rng(0))
        assert info.value.location == where and what in info.value.message


def test_facts_follow_declared_roles() -> None:
    facts = member_facts(subscribers().drop(columns=["recipient_id", "consent"]),
                         SUBSCRIPTION_ROLES)
    assert facts["Pays a month"] == "median $50 (middle half $40–$60)"
    assert facts["Tenure months"] == "median 8 months (6–10)"
    assert facts["At risk of churning"] == "33%" and facts["Plan"] == "premium 80%, basic 20%"


def test_words_shares_and_numbers() -> None:
    assert words("tenure_months") == "tenure months" and words("monthlyFee") == "monthly fee"
    assert label_of("is_vip", ColumnRole(role="share")) == "vip"
    assert label_of("is_vip", ColumnRole(role="category")) == "is vip"
    shares = [1.0, 0.97, 0.85, 0.7, 0.5, 0.34, 0.26, 0.03, 0.0]
    assert [share_words(s) for s in shares] == [
        "all", "nearly all", "mostly", "two thirds", "half", "a third", "a quarter", "few",
        "none"]
    assert [nice_number(v) for v in (33.1, 1234.0, 0.123, 0.0)] == [33, 1200, 0.12, 0]


@pytest.mark.parametrize(
    ("values", "role", "expected"),
    [
        ([50.0] * 8, ColumnRole(role="money", unit="€"), "about €50"),
        ([1] * 8, ColumnRole(role="duration"), "1 month"),
        ([2] * 8, ColumnRole(role="duration", unit="weeks"), "2 weeks"),
        (list(range(-8, 9)), ColumnRole(role="number"), "-4 to 4"),
        ([1.0, 1.4, 1.6, 2.0], ColumnRole(role="number", unit="visits"), "1.3–1.7 visits"),
        ([3000, 4200, 5100, 8000], ColumnRole(role="money"), "$3,900–5,800"),
    ],
)
def test_numeric_ranges(values: list[float], role: ColumnRole, expected: str) -> None:
    assert numeric_fields(pd.Series(values), "x", role)["range"] == expected


def test_templates_and_words_before_the_noun() -> None:
    plan = pd.Series(["gold"] * 3 + ["basic"] * 2)
    every = ColumnRole(role="category", label="plan",
                       template="{share} ({percent}) on {level} {label}")
    assert phrase(plan, "plan", every) == "three in five (60%) on gold plan"
    before = ColumnRole(role="category", place="before")
    assert phrase(plan, "plan", before, before=True) == "gold"
    assert phrase(plan.iloc[1:], "plan", before, before=True) == ""  # half: no word
    new = ColumnRole(role="share", label="new", opposite="returning", place="before")
    assert phrase(pd.Series([0, 0, 0, 1]), "newbie", new, before=True) == "returning"
    assert phrase(pd.Series([0, 1]), "newbie", new, before=True) == ""
    # without a noun, a word meant for before it reads as a phrase
    roles = AttributeRoles("", {"plan": before, "newbie": new})
    frame = pd.DataFrame({"plan": plan, "newbie": [1, 1, 1, 1, 0]})
    assert describe_members(frame, roles) == "Three in five gold, mostly new"


def test_a_noun_followed_by_default_phrases_takes_a_comma() -> None:
    roles = AttributeRoles("subscribers", {
        "plan": ColumnRole(role="category", place="before"),
        "tenure_months": ColumnRole(role="duration", label="tenure"),
        "churn_risk": ColumnRole(role="share", label="at risk of churning")})
    assert describe_members(subscribers(), roles) == (
        "Premium subscribers, tenure 6–10 months, a third at risk of churning")
