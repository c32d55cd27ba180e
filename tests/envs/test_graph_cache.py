"""The recipient-graph cache is an object its owner passes around, not module state."""

from __future__ import annotations

import numpy as np
import pytest

import personasim.behaviour.network as network
from personasim.behaviour.network import GRAPH_CACHE_SIZE, GraphCache, build_adjacency
from personasim.config.campaign import Campaign
from personasim.config.distributions import Beta
from personasim.config.persona import Persona, PersonaTraits
from personasim.config.sections import DynamicsConfig, NetworkConfig, SimulationConfig
from personasim.envs import CampaignEnv

WATTS = NetworkConfig(generator="watts_strogatz", params={"k": 4, "p": 0.1})


def _env(cache: GraphCache | None) -> CampaignEnv:
    traits = PersonaTraits(propensity={"default": Beta(a=2, b=18)})
    personas = [Persona(id="steady", traits=traits), Persona(id="varied", traits=traits)]
    campaigns = [Campaign(id="holdout", control=True), Campaign(id="email", cost=0.05, value=2.0)]
    return CampaignEnv(personas, [300, 500], campaigns, SimulationConfig(horizon=4),
                       DynamicsConfig(), graph_seed=3, graph_cache=cache)


def test_network_module_keeps_no_graphs() -> None:
    assert not hasattr(network, "_GRAPH_CACHE")
    first = build_adjacency(WATTS, 200, np.random.default_rng(1))
    second = build_adjacency(WATTS, 200, np.random.default_rng(1))
    assert first is not second
    assert (first != second).nnz == 0


def test_cache_returns_the_same_graph_and_advances_the_rng_alike() -> None:
    cache = GraphCache()
    rng_a, rng_b = np.random.default_rng(9), np.random.default_rng(9)
    first = build_adjacency(WATTS, 300, rng_a, cache=cache)
    again = build_adjacency(WATTS, 300, rng_b, cache=cache)
    assert again is first and len(cache) == 1
    assert rng_a.integers(1000) == rng_b.integers(1000)  # a hit draws the seed too
    uncached = build_adjacency(WATTS, 300, np.random.default_rng(9))
    assert (uncached != first).nnz == 0


def test_cache_drops_the_least_recently_used() -> None:
    cache = GraphCache(size=2)
    assert GraphCache().size == GRAPH_CACHE_SIZE
    graphs = {seed: build_adjacency(WATTS, 100, np.random.default_rng(seed), cache=cache)
              for seed in (1, 2)}
    assert build_adjacency(WATTS, 100, np.random.default_rng(1), cache=cache) is graphs[1]
    build_adjacency(WATTS, 100, np.random.default_rng(3), cache=cache)  # evicts seed 2
    assert len(cache) == 2
    assert build_adjacency(WATTS, 100, np.random.default_rng(1), cache=cache) is graphs[1]
    assert build_adjacency(WATTS, 100, np.random.default_rng(2), cache=cache) is not graphs[2]
    cache.clear()
    assert len(cache) == 0


def test_cache_keys_include_size_and_parameters() -> None:
    cache = GraphCache(size=4)
    base = build_adjacency(WATTS, 100, np.random.default_rng(0), cache=cache)
    bigger = build_adjacency(WATTS, 120, np.random.default_rng(0), cache=cache)
    denser = build_adjacency(NetworkConfig(params={"k": 6, "p": 0.1}), 100,
                             np.random.default_rng(0), cache=cache)
    assert bigger.shape == (120, 120) and denser.nnz > base.nnz and len(cache) == 3


def test_cache_needs_room() -> None:
    with pytest.raises(ValueError, match="at least one graph"):
        GraphCache(size=0)


def test_envs_built_with_one_cache_share_the_graph() -> None:
    cache = GraphCache()
    first, second = _env(cache), _env(cache)
    assert first.adjacency is not None and second.adjacency is first.adjacency
    alone = _env(None)
    assert alone.adjacency is not first.adjacency
    assert (alone.adjacency != first.adjacency).nnz == 0
