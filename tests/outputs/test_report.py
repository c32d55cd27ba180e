"""Persona descriptions from templates, persona cards, and the HTML report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hillstrom_helpers import synthetic_hillstrom

from personasim.audience.descriptions import (
    HILLSTROM_ROLES,
    describe_members,
    describe_personas,
    member_facts,
    roles_for,
)
from personasim.config.campaign import Campaign
from personasim.config.persona import Persona
from personasim.core.types import Diagnostics, Posterior
from personasim.outputs.report import (
    ReportContext,
    headline,
    persona_cards,
    policy_label,
    render_report,
    write_report,
)

CAMPAIGNS = [Campaign(id="mens_email", offer="Mens E-Mail", value=1.0, cost=0.05),
             Campaign(id="womens_email", offer="Womens E-Mail", value=1.0, cost=0.05),
             Campaign(id="no_email", offer="No E-Mail", control=True)]


def members(n: int = 200, **columns: object) -> pd.DataFrame:
    """Customers in the Hillstrom attribute columns, every column overridable."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "recency": np.full(n, 3), "history": np.linspace(150, 400, n),
        "mens": np.zeros(n, int), "womens": np.ones(n, int),
        "zip_code": np.where(np.arange(n) % 5 == 0, "Urban", "Surburban"),
        "newbie": (rng.random(n) < 0.5).astype(int), "channel": np.full(n, "Web"),
    })
    for name, value in columns.items():
        frame[name] = value
    return frame


def test_the_issue_example_sentence() -> None:
    assert describe_members(members(), HILLSTROM_ROLES) == (
        "Suburban web shoppers who spent $200–350 last year, mostly on womenswear, "
        "last bought 3 months ago")


def test_template_parts_follow_the_members() -> None:
    n = 200
    text = describe_members(members(
        newbie=1, zip_code=np.array(["Urban", "Rural", "Surburban", "Urban"] * 50),
        channel="Phone", mens=1, womens=np.arange(n) % 2,
        recency=np.arange(n) % 12 + 1, history=np.linspace(20, 90, n)), HILLSTROM_ROLES)
    # new customers; no dominant area; both lines, menswear first; a spread of recencies
    assert text == ("New phone shoppers who spent $40–70 last year, on menswear and "
                    "womenswear, last bought 3–9 months ago")


def test_roles_are_found_by_columns() -> None:
    assert roles_for(members().columns) is HILLSTROM_ROLES
    assert roles_for(["age", "region"]) is None


def test_facts_are_plain_words() -> None:
    facts = member_facts(members(), HILLSTROM_ROLES)
    assert facts["Bought womenswear"] == "100%" and facts["Bought menswear"] == "0%"
    assert facts["Area"] == "suburban 80%, urban 20%"
    assert facts["Spent last year"].startswith("median $275")
    generic = member_facts(pd.DataFrame({"age": [20, 30, 40], "vip": [1, 0, 1],
                                         "region": ["n", "n", "s"]}))
    assert generic == {"age": "median 30 (25–35)", "vip": "67%", "region": "n 67%, s 33%"}


def test_describe_personas_keeps_every_card_distinct() -> None:
    frame = pd.concat([members(), members()], ignore_index=True)
    frame.insert(0, "persona_id", ["a"] * 200 + ["b"] * 200)
    personas = describe_personas([Persona(id="a"), Persona(id="b")], frame)
    assert personas[0].description.startswith("Suburban web shoppers")
    assert personas[1].description == personas[0].description + " (group 2)"
    plain = [Persona(id="a", description="kept")]
    assert describe_personas(plain, pd.DataFrame({"persona_id": ["a"], "age": [3]})) == plain


def posterior(rates: list[list[float]], spread: float = 0.005) -> Posterior:
    draws = np.random.default_rng(0).normal(np.array(rates), spread, (400, len(rates), 3))
    return Posterior(tuple(f"p{j}" for j in range(len(rates))),
                     tuple(c.id for c in CAMPAIGNS), draws.astype(np.float32),
                     Diagnostics("test", 1.0, 400.0, 0, 0.0))


def test_cards_say_what_the_plan_sends_and_why() -> None:
    post = posterior([[0.20, 0.12, 0.10], [0.11, 0.13, 0.10]])
    personas = [Persona(id="p0", description="first"), Persona(id="p1", description="second")]
    plan = pd.DataFrame({"recipient_id": ["a", "b", "a"], "persona_id": ["p0", "p0", "p0"],
                         "campaign_id": ["mens_email", "mens_email", "womens_email"],
                         "week": [1, 1, 3], "cost": [0.05, 0.05, 0.05]})
    cards = persona_cards(personas, post, CAMPAIGNS, {"p0": 2, "p1": 1}, {}, plan,
                          outcome="visits")
    assert [c.send for c in cards] == [True, False]
    assert cards[0].action == "Send Mens E-Mail" and cards[1].action == "Do not e-mail"
    assert ("The plan sends 3 messages (Mens E-Mail 2, Womens E-Mail 1) to 2 of these "
            "customers (100%) in weeks 1–3, for $0.15.") in cards[0].detail
    assert "adds +10.0 visits per 100 customers" in cards[0].detail
    assert "nets +$50 per 1,000 customers" in cards[0].detail
    # p1's best arm pays on its own, but the plan (budget, fatigue) sends them nothing: the
    # card follows the plan and keeps the evidence.
    assert "The plan sends these customers nothing." in cards[1].detail
    assert "Womens E-Mail adds +3.0 visits" in cards[1].detail
    assert cards[0].share == pytest.approx(2 / 3)
    arms = cards[0].arms.set_index("campaign_id")
    assert arms.loc["mens_email", "p_low"] < 0.2 < arms.loc["mens_email", "p_high"]


def evaluation() -> pd.DataFrame:
    rows = []
    for policy, value in (("prioritization_table", 0.134), ("mens_email_to_all", 0.132),
                          ("t_learner", 0.126), ("nothing", 0.102)):
        adv = 0.134 - value
        rows.append({"policy": policy, "metric": "net_value", "value": value,
                     "ci_low": value - 0.008, "ci_high": value + 0.008, "share_emailed": 1.0,
                     "table_advantage": adv, "advantage_low": adv - 0.003,
                     "advantage_high": adv + 0.003})
    return pd.DataFrame(rows)


def test_headline_names_the_best_arm_and_the_t_learner() -> None:
    labels = {c.id: c.offer for c in CAMPAIGNS}
    assert policy_label("mens_email_to_all", labels) == "Mens E-Mail to all"
    assert headline(evaluation(), labels) == (
        "On held-out customers the plan's first message earns $134 net per 1,000 customers "
        "(95% interval $126–$142): +$2 against Mens E-Mail to all (paired 95% interval -$1 "
        "to +$5); +$8 against T-learner (gradient boosting) (paired 95% interval +$5 to +$11).")


def test_report_has_a_card_per_persona_and_escapes_text(tmp_path: Path) -> None:
    post = posterior([[0.20, 0.12, 0.10], [0.11, 0.13, 0.10]])
    personas = [Persona(id="p0", description="<script>alert(1)</script>"),
                Persona(id="p1", description="Second & last")]
    cards = persona_cards(personas, post, CAMPAIGNS, {"p0": 30, "p1": 10},
                          {"p0": {"Area": "urban 90%"}})
    context = ReportContext("Persona report: t", "intro", evaluation=evaluation(),
                            figures=[("qini.png", "Uplift")],
                            labels={c.id: c.offer for c in CAMPAIGNS})
    path = write_report(tmp_path, cards, context)
    page = path.read_text()
    assert page.count("class=card>") == 2
    assert "<script>" not in page and "&lt;script&gt;" in page and "Second &amp; last" in page
    assert "Mens E-Mail to all" in page and "$134 net per 1,000" in page
    for card in ("card_p0.png", "card_p1.png"):
        assert f'src="{card}"' in page and (tmp_path / card).stat().st_size > 1000
    assert "Held-out" not in render_report(cards, ReportContext("t", "i"))


def test_a_real_looking_persona_reads_well() -> None:
    frame = synthetic_hillstrom(3000, seed=4)
    women = frame[(frame["womens"] == 1) & (frame["mens"] == 0)]
    text = describe_members(women, HILLSTROM_ROLES)
    assert "mostly on womenswear" in text and text.endswith("months ago")
    assert text[0].isupper() and "  " not in text


def test_footnote_speaks_of_held_out_rates_only_when_there_are_some() -> None:
    from personasim.outputs.report import ReportContext, render_report

    plain = render_report([], ReportContext("t", "i"))
    assert "held-out rates" not in plain and "90% posterior intervals." in plain
    sim = pd.DataFrame({"inside": [True, False]})
    assert "held-out rates are observed" in render_report([], ReportContext("t", "i",
                                                                          sim_to_real=sim))


def test_cards_read_the_tables_draws() -> None:
    from personasim.ranking.prioritization import TABLE_DRAWS, draw_subset

    rng = np.random.default_rng(3)
    draws = rng.beta(2, 18, (1000, 2, 3)).astype(np.float32)
    post = Posterior(("p0", "p1"), tuple(c.id for c in CAMPAIGNS), draws,
                     Diagnostics("test", 1.0, 1000.0, 0, 0.0))
    personas = [Persona(id="p0"), Persona(id="p1")]
    cards = persona_cards(personas, post, CAMPAIGNS, {"p0": 1, "p1": 1}, {})
    subset = draw_subset(1000, TABLE_DRAWS)
    for j, card in enumerate(cards):
        expected = draws[subset, j, :].astype(np.float64).mean(axis=0)
        assert np.allclose(card.arms["mean"].to_numpy(), expected, rtol=0, atol=1e-12)
        assert not np.allclose(card.arms["mean"].to_numpy(),
                               draws[:, j, :].astype(np.float64).mean(axis=0), rtol=0,
                               atol=1e-12)
