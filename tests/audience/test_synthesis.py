"""Tests for personasim.audience.synthesis: personas by clustering recipients."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from personasim.audience.profiles import PersonaProfiles
from personasim.audience.synthesis import SYNTHESIZERS, synthesize_personas
from personasim.config.campaign import Campaign
from personasim.config.distributions import Beta, Gamma
from personasim.config.sections import SynthesisConfig
from personasim.core.errors import DataError

CENTERS = np.array([[0.0, 0.0], [10.0, 10.0], [-10.0, 10.0]])
REGIONS = ["urban", "rural", "suburb"]


def blobs(
    sizes: tuple[int, ...] = (150, 100, 60), seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray]:
    """Three well-separated gaussian blobs with a matching categorical column."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(len(sizes)), sizes)
    points = CENTERS[truth] + rng.normal(0, 1.0, size=(len(truth), 2))
    df = pd.DataFrame(
        {
            "recipient_id": [f"r{i}" for i in range(len(truth))],
            "consent": True,
            "history": points[:, 0] * 50 + 500,
            "recency": points[:, 1],
            "region": [REGIONS[t] for t in truth],
        }
    )
    return df, truth


def test_registry_has_both_methods() -> None:
    assert SYNTHESIZERS.names() == ["dbscan", "kmeans"]
    assert SynthesisConfig().method == "kmeans"


def test_kmeans_auto_recovers_three_blobs() -> None:
    df, truth = blobs()
    config = SynthesisConfig(k="auto", k_range=(2, 6), sample_size=200)
    result = synthesize_personas(df, config, np.random.default_rng(1))
    assert [p.id for p in result.personas] == ["persona_1", "persona_2", "persona_3"]
    assert adjusted_rand_score(truth, result.labels) > 0.95
    # largest first, sizes and shares from members
    assert [p.size for p in result.personas] == [150, 100, 60]
    assert sum(p.share for p in result.personas) == pytest.approx(1.0)
    assert result.personas[0].attributes["region"] == "urban"
    assert result.personas[1].attributes["history"] == pytest.approx(1000, abs=20)
    # no roles declared: the three most distinctive columns, read by their dtype
    assert result.personas[0].description.startswith("All urban, ")
    assert {"all rural", "all suburb"} <= set(", ".join(
        p.description for p in result.personas).lower().split(", "))
    assert all("mean" not in p.description for p in result.personas)
    assert result.profiles.persona_ids == ["persona_1", "persona_2", "persona_3"]


def test_same_seed_same_result() -> None:
    df, _ = blobs(seed=3)
    config = SynthesisConfig(k="auto", k_range=(2, 5), sample_size=100)
    a = synthesize_personas(df, config, np.random.default_rng(7))
    b = synthesize_personas(df, config, np.random.default_rng(7))
    np.testing.assert_array_equal(a.labels, b.labels)
    assert [p.model_dump() for p in a.personas] == [p.model_dump() for p in b.personas]
    assert a.profiles.to_dict() == b.profiles.to_dict()


def test_fixed_k_and_feature_subset() -> None:
    df, truth = blobs()
    config = SynthesisConfig(k=3, features=["region"])
    result = synthesize_personas(df, config, np.random.default_rng(0))
    assert adjusted_rand_score(truth, result.labels) == pytest.approx(1.0)
    assert result.profiles.features == ["region"]
    assert set(result.personas[0].attributes) == {"region"}


def test_missing_feature_column_is_data_error() -> None:
    df, _ = blobs()
    with pytest.raises(DataError) as info:
        synthesize_personas(df, SynthesisConfig(k=2, features=["income"]), np.random.default_rng(0))
    assert "'income'" in str(info.value)


def test_dbscan_assigns_every_row() -> None:
    df, truth = blobs()
    outliers = pd.DataFrame(
        {
            "recipient_id": ["o1", "o2"],
            "consent": True,
            "history": [5000.0, -4000.0],
            "recency": [40.0, -30.0],
            "region": ["urban", "rural"],
        }
    )
    data = pd.concat([df, outliers], ignore_index=True)
    config = SynthesisConfig(method="dbscan", eps=1.0, min_samples=5, sample_size=200)
    result = synthesize_personas(data, config, np.random.default_rng(2))
    assert result.labels.shape == (len(data),)
    assert result.labels.min() >= 0
    assert len(result.personas) == 3
    assert sum(p.size or 0 for p in result.personas) == len(data)
    assert adjusted_rand_score(truth, result.labels[: len(df)]) > 0.95


def test_dbscan_without_clusters_fails_clearly() -> None:
    df, _ = blobs()
    config = SynthesisConfig(method="dbscan", eps=1e-4, min_samples=50)
    with pytest.raises(ValueError, match="DBSCAN found no cluster"):
        synthesize_personas(df, config, np.random.default_rng(0))


def test_membership_rows_sum_to_one_and_centroid_wins() -> None:
    df, truth = blobs()
    profiles = PersonaProfiles.fit(df, truth, ["a", "b", "c"])
    weights = profiles.membership(df, temperature=1.0)
    assert weights.shape == (len(df), 3) and weights.dtype == np.float32
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)
    # a recipient sitting exactly at persona b's centre
    members = df[truth == 1]
    at_b = pd.DataFrame(
        {
            "history": [members["history"].mean()],
            "recency": [members["recency"].mean()],
            "region": ["rural"],
        }
    )
    w = profiles.membership(at_b)[0]
    assert int(np.argmax(w)) == 1
    assert profiles.hard_labels(at_b).tolist() == [1]
    # far-away points stay finite (numerically stable softmax)
    far = at_b.assign(history=1e9, recency=-1e9)
    w_far = profiles.membership(far, temperature=0.01)
    assert np.isfinite(w_far).all() and w_far.sum() == pytest.approx(1.0, abs=1e-5)


def test_unseen_level_and_missing_column() -> None:
    df, truth = blobs()
    profiles = PersonaProfiles.fit(df, truth, ["a", "b", "c"])
    x = profiles.transform(df.head(2).assign(region="mars"))
    assert x.shape == (2, profiles.n_dims)
    assert (x[:, 2:] == 0).all()  # one-hot block all zeros for an unseen level
    with pytest.raises(DataError) as info:
        profiles.transform(df.drop(columns="recency"), source="new.csv")
    assert info.value.source == "new.csv" and "'recency'" in str(info.value)


def test_profiles_round_trip_through_json() -> None:
    df, truth = blobs()
    profiles = PersonaProfiles.fit(df, truth, ["a", "b", "c"])
    restored = PersonaProfiles.from_dict(json.loads(json.dumps(profiles.to_dict())))
    assert restored.to_dict() == profiles.to_dict()
    np.testing.assert_array_equal(restored.membership(df, 0.5), profiles.membership(df, 0.5))


def test_profiles_from_bad_dict() -> None:
    with pytest.raises(ValueError, match="centroids"):
        PersonaProfiles.from_dict({"features": [], "means": {}})


def test_bool_column_is_numeric() -> None:
    df = pd.DataFrame({"recipient_id": ["a", "b", "c", "d"], "vip": [True, False, True, False]})
    profiles = PersonaProfiles.fit(df, np.array([0, 1, 0, 1]), ["p1", "p2"])
    assert profiles.n_dims == 1
    assert profiles.hard_labels(df).tolist() == [0, 1, 0, 1]


def test_trait_priors_from_ab_and_columns() -> None:
    df, truth = blobs(sizes=(200, 100, 100))
    rng = np.random.default_rng(5)
    df["fatigue_rate"] = np.where(truth == 0, 0.2, 0.6) + rng.normal(0, 0.02, len(df))
    df["price_sensitivity"] = np.where(truth == 0, 2.0, 4.0) + rng.normal(0, 0.1, len(df))
    campaigns = [
        Campaign(id="mail", channel="email", cost=1, value=10),
        Campaign(id="text", channel="sms", cost=1, value=10),
        Campaign(id="hold", control=True),
    ]
    members = df["recipient_id"][truth == 0].to_numpy()
    # cluster 0: 100 get email (30 respond), 60 sms (6 respond), 40 held out (2 respond)
    outcomes = np.r_[np.ones(30), np.zeros(70), np.ones(6), np.zeros(54), np.ones(2), np.zeros(38)]
    ab = pd.DataFrame(
        {
            "recipient_id": members,
            "campaign_id": ["mail"] * 100 + ["text"] * 60 + ["hold"] * 40,
            "outcome": outcomes.astype(np.int8),
        }
    )
    config = SynthesisConfig(k=3, features=["history", "recency", "region"])
    result = synthesize_personas(df, config, np.random.default_rng(0), ab, campaigns)
    first = result.personas[0]
    assert first.size == 200
    email = first.traits.propensity["email"]
    assert isinstance(email, Beta)
    assert email.mean() == pytest.approx(0.3, abs=1e-6)
    assert email.a + email.b == pytest.approx(100)  # pseudo-count = members in the cell
    assert first.traits.propensity["sms"].mean() == pytest.approx(0.1, abs=1e-6)
    assert first.traits.propensity["default"].mean() == pytest.approx(36 / 160, abs=1e-6)
    assert first.traits.organic.mean() == pytest.approx(0.05, abs=1e-6)
    assert first.traits.fatigue_rate.mean() == pytest.approx(0.2, abs=0.01)
    assert isinstance(first.traits.fatigue_rate, Beta)
    assert isinstance(first.traits.price_sensitivity, Gamma)
    assert first.traits.price_sensitivity.mean() == pytest.approx(2.0, abs=0.05)
    # personas without A/B rows keep the default propensity prior
    assert set(result.personas[1].traits.propensity) == {"default"}
    assert result.personas[1].traits.price_sensitivity.mean() == pytest.approx(4.0, abs=0.05)
