"""Tests for the per-recipient campaign ranking."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from personasim.config.campaign import Campaign
from personasim.config.sections import PrioritizationConfig
from personasim.core.types import Audience, Diagnostics, Posterior
from personasim.ranking.prioritization import (
    PRIORITY_COLUMNS,
    draw_subset,
    equal_tailed,
    prioritize,
)

GOLDEN_COLUMNS = [
    "recipient_id",
    "persona_id",
    "campaign_id",
    "rank",
    "p_response",
    "p_low",
    "p_high",
    "uplift",
    "expected_value",
    "priority",
    "priority_low",
    "priority_high",
    "action",
]
FLOATS = GOLDEN_COLUMNS[4:12]


def _diag() -> Diagnostics:
    return Diagnostics(
        sampler="test", rhat_max=1.0, ess_bulk_min=1000.0, divergences=0, seconds=0.0
    )


def _posterior(
    persona_ids: tuple[str, ...], campaign_ids: tuple[str, ...], draws: np.ndarray
) -> Posterior:
    return Posterior(persona_ids, campaign_ids, draws.astype(np.float32), _diag())


def _constant_posterior(rates: dict[str, dict[str, float]], n_draws: int = 10) -> Posterior:
    """Persona -> campaign -> constant rate, as ``n_draws`` identical draws."""
    personas = tuple(rates)
    campaigns = tuple(next(iter(rates.values())))
    grid = np.array([[rates[p][c] for c in campaigns] for p in personas])
    return _posterior(personas, campaigns, np.broadcast_to(grid, (n_draws, *grid.shape)))


def _audience(
    ids: list[str],
    personas: list[str],
    membership: list[list[float]],
    persona_ids: tuple[str, ...],
    consent: list[bool] | None = None,
) -> Audience:
    recipients = pd.DataFrame(
        {
            "recipient_id": ids,
            "persona_id": personas,
            "consent": consent if consent is not None else [True] * len(ids),
        }
    )
    return Audience(recipients, np.array(membership, dtype=np.float32), persona_ids)


# Two personas, two campaigns, constant draws: hand-computable.
RATES = {"p1": {"a": 0.10, "b": 0.30, "ctl": 0.05}, "p2": {"a": 0.20, "b": 0.05, "ctl": 0.10}}
CAMPAIGNS = [
    Campaign(id="a", value=10.0, cost=0.5),
    Campaign(id="b", value=4.0, cost=0.2),
    Campaign(id="ctl", control=True),
]


def _tiny(consent: list[bool] | None = None) -> Audience:
    return _audience(
        ["r1", "r2", "r3"], ["p1", "p2", "p1"], [[1, 0], [0, 1], [0.5, 0.5]], ("p1", "p2"), consent
    )


@pytest.fixture
def random_case() -> tuple[Audience, Posterior, list[Campaign]]:
    rng = np.random.default_rng(7)
    n, personas, campaigns = 57, ("x", "y", "z"), ("c1", "c2", "c3", "c4", "base")
    draws = rng.beta(2, 20, size=(120, len(personas), len(campaigns)))
    membership = rng.dirichlet(np.ones(len(personas)), size=n)
    ids = [f"r{int(i):04d}" for i in rng.permutation(n)]
    recipients = pd.DataFrame(
        {
            "recipient_id": ids,
            "persona_id": [personas[j] for j in membership.argmax(axis=1)],
            "consent": rng.random(n) > 0.2,
            "age": rng.integers(18, 80, n),
        }
    )
    audience = Audience(recipients, membership.astype(np.float32), personas)
    camps = [
        Campaign(id=c, value=float(rng.uniform(5, 40)), cost=float(rng.uniform(0, 1)))
        for c in campaigns[:-1]
    ] + [Campaign(id="base", control=True)]
    return audience, _posterior(personas, campaigns, draws), camps


def test_schema_and_dtypes(random_case: tuple[Audience, Posterior, list[Campaign]]) -> None:
    out = prioritize(*random_case, PrioritizationConfig())
    assert list(out.columns) == GOLDEN_COLUMNS
    assert list(PRIORITY_COLUMNS) == GOLDEN_COLUMNS
    assert out["rank"].dtype == np.int32
    for col in FLOATS:
        assert out[col].dtype == np.float64, col
        assert np.array_equal(out[col].to_numpy(), np.round(out[col].to_numpy(), 6))
    for col in ("recipient_id", "persona_id", "campaign_id", "action"):
        assert pd.api.types.is_string_dtype(out[col]), col
    assert set(out["action"]) <= {"send", "suppress"}
    assert "base" not in set(out["campaign_id"])


def test_sorted_and_contiguous_ranks(
    random_case: tuple[Audience, Posterior, list[Campaign]],
) -> None:
    out = prioritize(*random_case, PrioritizationConfig())
    expected = out.sort_values(["recipient_id", "rank"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(out, expected)
    assert out["recipient_id"].is_monotonic_increasing
    for _, group in out.groupby("recipient_id"):
        assert group["rank"].tolist() == list(range(1, 5))
        pri = group["priority"].to_numpy()
        assert np.all(np.diff(pri) <= 0)


def test_actions_follow_consent_and_priority(
    random_case: tuple[Audience, Posterior, list[Campaign]],
) -> None:
    audience = random_case[0]
    out = prioritize(*random_case, PrioritizationConfig())
    consent = dict(
        zip(audience.recipients["recipient_id"], audience.recipients["consent"], strict=True)
    )
    no_consent = out["recipient_id"].map(consent) == False  # noqa: E712
    assert no_consent.any()
    assert (out.loc[no_consent, "action"] == "suppress").all()
    assert (out.loc[out["priority"] <= 0, "action"] == "suppress").all()
    sendable = (out["priority"] > 0) & ~no_consent
    assert (out.loc[sendable, "action"] == "send").all()


def test_top_n(random_case: tuple[Audience, Posterior, list[Campaign]]) -> None:
    full = prioritize(*random_case, PrioritizationConfig())
    top = prioritize(*random_case, PrioritizationConfig(top_n=2))
    assert top.groupby("recipient_id").size().eq(2).all()
    assert set(top["rank"]) == {1, 2}
    pd.testing.assert_frame_equal(top, full[full["rank"] <= 2].reset_index(drop=True))
    more = prioritize(*random_case, PrioritizationConfig(top_n=10))
    pd.testing.assert_frame_equal(more, full)


def test_with_control_hand_computed() -> None:
    out = prioritize(_tiny(), _constant_posterior(RATES), CAMPAIGNS, PrioritizationConfig())
    got = out.set_index(["recipient_id", "campaign_id"])
    # r1 (p1): a -> (0.10-0.05)*10-0.5 = 0.0 ; b -> (0.30-0.05)*4-0.2 = 0.8
    assert got.loc[("r1", "b"), ["uplift", "expected_value", "priority"]].tolist() == pytest.approx(
        [0.25, 1.0, 0.8]
    )
    assert got.loc[("r1", "a"), "priority"] == pytest.approx(0.0)
    assert got.loc[("r1", "b"), "rank"] == 1
    assert got.loc[("r1", "a"), "action"] == "suppress"  # priority 0 is not > 0
    assert got.loc[("r1", "b"), "action"] == "send"
    # r2 (p2): a -> (0.20-0.10)*10-0.5 = 0.5 ; b -> (0.05-0.10)*4-0.2 = -0.4
    assert got.loc[("r2", "a"), ["uplift", "priority", "rank"]].tolist() == pytest.approx(
        [0.10, 0.5, 1]
    )
    assert got.loc[("r2", "b"), ["uplift", "priority", "rank"]].tolist() == pytest.approx(
        [-0.05, -0.4, 2]
    )
    assert got.loc[("r2", "b"), "action"] == "suppress"
    # Constant draws: the intervals collapse on the mean.
    assert (out["p_low"] == out["p_response"]).all()
    assert (out["priority_low"] == out["priority"]).all()
    assert (out["priority_high"] == out["priority"]).all()


def test_without_control_hand_computed() -> None:
    campaigns = CAMPAIGNS[:2]
    out = prioritize(_tiny(), _constant_posterior(RATES), campaigns, PrioritizationConfig())
    got = out.set_index(["recipient_id", "campaign_id"])
    assert (out["uplift"] == 0.0).all()
    # r1: a -> 0.10*10-0.5 = 0.5 ; b -> 0.30*4-0.2 = 1.0
    assert got.loc[("r1", "a"), ["expected_value", "priority", "rank"]].tolist() == pytest.approx(
        [1.0, 0.5, 2]
    )
    assert got.loc[("r1", "b"), ["expected_value", "priority", "rank"]].tolist() == pytest.approx(
        [1.2, 1.0, 1]
    )
    # r2: a -> 0.20*10-0.5 = 1.5 ; b -> 0.05*4-0.2 = 0.0
    assert got.loc[("r2", "a"), "priority"] == pytest.approx(1.5)
    assert got.loc[("r2", "b"), "priority"] == pytest.approx(0.0)
    assert got.loc[("r2", "b"), "action"] == "suppress"


def test_soft_membership_is_the_mixture() -> None:
    out = prioritize(_tiny(), _constant_posterior(RATES), CAMPAIGNS, PrioritizationConfig())
    got = out.set_index(["recipient_id", "campaign_id"])
    for cid in ("a", "b"):
        half = got.loc[("r3", cid)]
        pure = [got.loc[(r, cid)] for r in ("r1", "r2")]
        for col in ("p_response", "uplift", "expected_value", "priority"):
            assert half[col] == pytest.approx((pure[0][col] + pure[1][col]) / 2, abs=1e-6)
    assert got.loc[("r3", "a"), "p_response"] == pytest.approx(0.15)
    assert got.loc[("r3", "b"), "p_response"] == pytest.approx(0.175)


def test_ties_broken_by_campaign_id() -> None:
    rates = {"p1": {"z": 0.2, "m": 0.2}, "p2": {"z": 0.2, "m": 0.2}}
    campaigns = [Campaign(id="z", value=5.0), Campaign(id="m", value=5.0)]
    out = prioritize(_tiny(), _constant_posterior(rates), campaigns, PrioritizationConfig())
    assert (out.loc[out["rank"] == 1, "campaign_id"] == "m").all()


def test_consent_false_never_sends() -> None:
    out = prioritize(
        _tiny(consent=[False, False, False]),
        _constant_posterior(RATES),
        CAMPAIGNS,
        PrioritizationConfig(),
    )
    assert (out["action"] == "suppress").all()
    assert (out["priority"] > 0).any()


def test_chunking_matches_single_chunk(
    random_case: tuple[Audience, Posterior, list[Campaign]],
) -> None:
    whole = prioritize(*random_case, PrioritizationConfig(), chunk_size=10_000)
    for size in (1, 7, 56):
        pd.testing.assert_frame_equal(
            prioritize(*random_case, PrioritizationConfig(), chunk_size=size), whole
        )


def test_credible_interval_and_draw_subset(
    random_case: tuple[Audience, Posterior, list[Campaign]],
) -> None:
    audience, posterior, campaigns = random_case
    out = prioritize(audience, posterior, campaigns, PrioritizationConfig(), max_draws=40)
    assert (out["p_low"] <= out["p_response"]).all()
    assert (out["p_response"] <= out["p_high"]).all()
    assert (out["priority_low"] <= out["priority"] + 1e-6).all()
    assert (out["priority"] <= out["priority_high"] + 1e-6).all()
    idx = draw_subset(120, 40)
    assert len(idx) == 40 and idx[0] == 0 and idx[-1] == 119
    assert np.array_equal(draw_subset(30, 40), np.arange(30))
    # Reference: the subset draws computed directly for one recipient and campaign.
    row = audience.recipients.index[0]
    rid = audience.recipients.loc[row, "recipient_id"]
    d = posterior.draws.astype(np.float64)[idx]
    k, k0 = posterior.campaign_ids.index("c2"), posterior.campaign_ids.index("base")
    w = audience.membership[row].astype(np.float64)
    diff = d[:, :, k] @ w - d[:, :, k0] @ w
    c2 = next(c for c in campaigns if c.id == "c2")
    pri = diff * c2.value - c2.cost
    got = out[(out["recipient_id"] == rid) & (out["campaign_id"] == "c2")].iloc[0]
    assert got["uplift"] == pytest.approx(diff.mean(), abs=1e-6)
    assert got["priority"] == pytest.approx(pri.mean(), abs=1e-6)
    low, high = np.quantile(pri, [0.05, 0.95])
    assert got["priority_low"] == pytest.approx(low, abs=1e-6)
    assert got["priority_high"] == pytest.approx(high, abs=1e-6)


def test_byte_identical_csv(random_case: tuple[Audience, Posterior, list[Campaign]]) -> None:
    texts = []
    for _ in range(2):
        buf = io.StringIO()
        prioritize(*random_case, PrioritizationConfig()).to_csv(
            buf, index=False, lineterminator="\n"
        )
        texts.append(buf.getvalue())
    assert texts[0] == texts[1]


def test_unknown_persona_id() -> None:
    audience = _audience(["r1"], ["ghost"], [[0.5, 0.5]], ("p1", "ghost"))
    with pytest.raises(ValueError, match="ghost"):
        prioritize(audience, _constant_posterior(RATES), CAMPAIGNS, PrioritizationConfig())


def test_unknown_campaign_id() -> None:
    campaigns = [*CAMPAIGNS, Campaign(id="new_offer", value=1.0)]
    with pytest.raises(ValueError, match="new_offer"):
        prioritize(_tiny(), _constant_posterior(RATES), campaigns, PrioritizationConfig())


def test_posterior_order_is_aligned_by_id() -> None:
    base = prioritize(_tiny(), _constant_posterior(RATES), CAMPAIGNS, PrioritizationConfig())
    shuffled = {
        "p2": {c: RATES["p2"][c] for c in ("ctl", "b", "a")},
        "p1": {c: RATES["p1"][c] for c in ("ctl", "b", "a")},
    }
    other = prioritize(
        _tiny(), _constant_posterior(shuffled), CAMPAIGNS[::-1], PrioritizationConfig()
    )
    pd.testing.assert_frame_equal(base, other)


def test_only_control_gives_empty_frame() -> None:
    out = prioritize(_tiny(), _constant_posterior(RATES), [CAMPAIGNS[2]], PrioritizationConfig())
    assert out.empty
    assert list(out.columns) == GOLDEN_COLUMNS
    assert out["rank"].dtype == np.int32


@pytest.mark.parametrize("n_draws", [1, 2, 3, 10, 41, 400])
@pytest.mark.parametrize("level", [0.5, 0.8, 0.9, 0.95, 0.999])
def test_equal_tailed_matches_numpy_quantile(n_draws: int, level: float) -> None:
    x = np.random.default_rng(n_draws).normal(size=(25, n_draws))
    low, high = equal_tailed(x, level)
    tail = (1 - level) / 2
    ref_low, ref_high = np.quantile(x, [tail, 1 - tail], axis=1)
    np.testing.assert_allclose(low, ref_low, rtol=0, atol=1e-12)
    np.testing.assert_allclose(high, ref_high, rtol=0, atol=1e-12)


def test_missing_consent_counts_as_no_consent() -> None:
    audience = _tiny()
    recipients = audience.recipients.assign(
        consent=pd.array([True, None, True], dtype="boolean")
    )
    out = prioritize(Audience(recipients, audience.membership, audience.persona_ids),
                     _constant_posterior(RATES), CAMPAIGNS, PrioritizationConfig())
    assert (out.loc[out["recipient_id"] == "r2", "action"] == "suppress").all()
    assert (out.loc[out["recipient_id"] == "r1", "action"] == "send").any()
