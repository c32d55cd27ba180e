"""``gymnasium.make(ENV_ID)`` with no arguments, a config, or a finished run directory."""

from __future__ import annotations

import warnings
from importlib import resources
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import yaml
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from personasim.config.loading import load_config
from personasim.config.schema import ExperimentConfig
from personasim.core.errors import ConfigError, DataError
from personasim.core.run_layout import CAMPAIGNS, CONFIG, PERSONAS_POSTERIOR
from personasim.envs import ENV_ID, CampaignEnv, GraphCache, make_campaign_env
from personasim.envs.factory import QUICKSTART, SCENARIOS_PACKAGE

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART_CONFIG = ROOT / "configs" / "quickstart.yaml"
FATIGUE_CONFIG = ROOT / "configs" / "fatigue.yaml"

PERSONAS = [
    {"id": "a", "share": 0.5, "traits": {"propensity": {"default": {"dist": "beta", "a": 2,
                                                                     "b": 30}}}},
    {"id": "b", "share": 0.5, "traits": {"propensity": {"default": {"dist": "beta", "a": 5,
                                                                     "b": 30}}}},
]
CAMPAIGN_ROWS = [
    {"id": "sale", "channel": "email", "cost": 0.05, "value": 10.0},
    {"id": "holdout", "control": True},
]


def _trace(env: gymnasium.Env, seed: int, weeks: int = 4) -> list[np.ndarray]:
    obs, _ = env.reset(seed=seed)
    trace = [obs]
    for week in range(weeks):
        action = np.full(env.unwrapped.n_personas, 1 + week % 2, dtype=np.int64)
        action %= env.unwrapped.n_actions
        obs, reward, *_ = env.step(action)
        trace += [obs, np.array([reward])]
    return trace


def _assert_same(first: list[np.ndarray], second: list[np.ndarray]) -> None:
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def _checked(env: CampaignEnv) -> None:
    """Both checkers, warnings as errors (on the unwrapped env, as the checkers ask)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(env, skip_render_check=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(env)


def test_shipped_quickstart_is_a_byte_identical_copy() -> None:
    shipped = resources.files(SCENARIOS_PACKAGE).joinpath(QUICKSTART).read_bytes()
    assert shipped == QUICKSTART_CONFIG.read_bytes()


def test_make_without_arguments_builds_the_quickstart() -> None:
    env = gymnasium.make(ENV_ID)
    inner = env.unwrapped
    assert isinstance(inner, CampaignEnv)
    assert [p.id for p in inner.personas] == [
        "bargain_hunters", "loyal_regulars", "mobile_first", "lapsed"]
    assert inner.n_recipients == 10_000 and inner.horizon == 12
    assert inner.action_campaign_ids == (None, "spring_sale", "new_arrivals", "flash_sms")
    assert [e.name for e in inner.events] == ["downturn"]
    assert inner.adjacency is not None and inner.adjacency.shape == (10_000, 10_000)
    config = load_config(QUICKSTART_CONFIG)
    reference = CampaignEnv.from_config(config, config.personas, config.campaigns,
                                        config.dynamics.events)
    _assert_same(_trace(env, 3), _trace(reference, 3))


def test_quickstart_env_passes_both_checkers() -> None:
    _checked(gymnasium.make(ENV_ID).unwrapped)


def test_make_with_a_config_file_builds_its_env() -> None:
    env = gymnasium.make(ENV_ID, config=str(FATIGUE_CONFIG))
    inner = env.unwrapped
    assert isinstance(inner, CampaignEnv)
    assert inner.n_recipients == 6000 and inner.adjacency is None
    assert inner.action_campaign_ids == (None, "flash_sale_sms", "new_season_mail")
    loaded = load_config(FATIGUE_CONFIG)
    assert [p.traits for p in inner.personas] == [p.traits for p in loaded.personas]  # as written
    for same in (gymnasium.make(ENV_ID, config=FATIGUE_CONFIG), make_campaign_env(loaded)):
        _assert_same(_trace(env, 8), _trace(same, 8))


def test_fatigue_env_passes_both_checkers() -> None:
    _checked(make_campaign_env(FATIGUE_CONFIG))


def test_config_events_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "events.csv").write_text("name,start_week,end_week,propensity_shift\n"
                                         "promo,2,3,0.5\n")
    payload = {"name": "ev", "personas": PERSONAS, "campaigns": CAMPAIGN_ROWS,
               "population": {"size": 200}, "simulation": {"horizon": 4},
               "dynamics": {"events": [{"name": "dip", "start_week": 1, "end_week": 1,
                                        "propensity_shift": -0.2}],
                            "events_file": "events.csv",
                            "influence": {"enabled": False}}}
    path = tmp_path / "ev.yaml"
    path.write_text(yaml.safe_dump(payload))
    env = make_campaign_env(path)
    assert [e.name for e in env.events] == ["dip", "promo"]
    assert env.sizes == [100, 100]


def test_listed_personas_with_a_recipients_file_are_sized_by_it(tmp_path: Path) -> None:
    rows = ["recipient_id,persona_id,age"] + [f"r{i},{'a' if i < 30 else 'b'},{20 + i}"
                                              for i in range(50)]
    (tmp_path / "recipients.csv").write_text("\n".join(rows) + "\n")
    payload = {"name": "sized", "personas": PERSONAS, "campaigns": CAMPAIGN_ROWS,
               "data": {"recipients": "recipients.csv"}, "population": {"size": 999}}
    path = tmp_path / "sized.yaml"
    path.write_text(yaml.safe_dump(payload))
    assert make_campaign_env(path).sizes == [30, 20]


def _data_mode_config(tmp_path: Path) -> Path:
    rows = ["recipient_id,age,spend"] + [f"r{i},{20 + i % 40},{i % 7}" for i in range(60)]
    (tmp_path / "recipients.csv").write_text("\n".join(rows) + "\n")
    payload = {"name": "data_mode", "seed": 5, "campaigns": CAMPAIGN_ROWS,
               "data": {"recipients": "recipients.csv"}, "simulation": {"horizon": 5},
               "dynamics": {"influence": {"network": {"params": {"k": 4}}}}}
    path = tmp_path / "data_mode.yaml"
    path.write_text(yaml.safe_dump(payload))
    return path


def test_data_mode_config_asks_for_a_run_directory(tmp_path: Path) -> None:
    path = _data_mode_config(tmp_path)
    with pytest.raises(ConfigError) as err:
        gymnasium.make(ENV_ID, config=str(path))
    message = str(err.value)
    assert message.startswith(str(path)) and "run directory" in message
    with pytest.raises(ConfigError, match="hillstrom.yaml.*dataset"):
        make_campaign_env(ROOT / "configs" / "hillstrom.yaml")


def _fake_run(tmp_path: Path) -> Path:
    """A run folder of a data-mode config, written the way the runner writes these files."""
    config = load_config(_data_mode_config(tmp_path))
    run = tmp_path / "run"
    run.mkdir()
    resolved = config.model_dump(mode="json", by_alias=True, exclude_none=True)
    CONFIG.path(run).write_text(yaml.safe_dump(resolved, sort_keys=False))
    personas = [dict(p, size=n) for p, n in zip(PERSONAS, (36, 24), strict=True)]
    PERSONAS_POSTERIOR.path(run).write_text(yaml.safe_dump(personas, sort_keys=False))
    CAMPAIGNS.path(run).write_text(yaml.safe_dump(CAMPAIGN_ROWS, sort_keys=False))
    return run


def test_run_directory_builds_the_run_env(tmp_path: Path) -> None:
    run = _fake_run(tmp_path)
    env = gymnasium.make(ENV_ID, config=str(run)).unwrapped
    assert isinstance(env, CampaignEnv)
    assert [p.id for p in env.personas] == ["a", "b"] and env.sizes == [36, 24]
    assert env.horizon == 5 and env.graph_seed == 5
    assert env.adjacency is not None and env.adjacency.shape == (60, 60)
    _checked(make_campaign_env(run))


def test_run_directory_missing_a_file_is_named(tmp_path: Path) -> None:
    run = _fake_run(tmp_path)
    PERSONAS_POSTERIOR.path(run).unlink()
    with pytest.raises(ConfigError, match="personas_posterior.yaml.*file missing"):
        make_campaign_env(run)


def test_run_directory_with_a_bad_persona_names_the_file(tmp_path: Path) -> None:
    run = _fake_run(tmp_path)
    PERSONAS_POSTERIOR.path(run).write_text(yaml.safe_dump([{"id": "a", "shar": 1}]))
    with pytest.raises(ConfigError, match=r"personas_posterior.yaml: 0.shar: unknown key"):
        make_campaign_env(run)


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        make_campaign_env(tmp_path / "nope.yaml")


def test_bad_events_file_in_a_run_is_a_data_error(tmp_path: Path) -> None:
    run = _fake_run(tmp_path)
    events = tmp_path / "events.csv"
    events.write_text("name,start_week\nx,1\n")
    resolved = yaml.safe_load(CONFIG.path(run).read_text())
    resolved["dynamics"]["events_file"] = str(events)
    CONFIG.path(run).write_text(yaml.safe_dump(resolved))
    with pytest.raises(DataError, match="end_week"):
        make_campaign_env(run)


def test_config_and_env_arguments_together_are_refused() -> None:
    with pytest.raises(TypeError, match="not both"):
        make_campaign_env(FATIGUE_CONFIG, personas=[])


def test_envs_of_one_run_share_a_graph_cache() -> None:
    cache = GraphCache()
    first = make_campaign_env(graph_cache=cache)
    second = gymnasium.make(ENV_ID, graph_cache=cache).unwrapped
    assert second.adjacency is first.adjacency and len(cache) == 1
    alone = make_campaign_env()
    assert alone.adjacency is not first.adjacency
    assert (alone.adjacency != first.adjacency).nnz == 0
    _assert_same(_trace(first, 4), _trace(alone, 4))


def test_reward_scale_is_passed_on() -> None:
    config = ExperimentConfig.model_validate(yaml.safe_load(FATIGUE_CONFIG.read_text()))
    assert make_campaign_env(config, reward_scale=1.0).reward_scale == 1.0


@pytest.mark.slow
def test_a_real_finished_run_builds_its_env(tiny_run: Path) -> None:
    env = make_campaign_env(tiny_run)
    posterior = yaml.safe_load(PERSONAS_POSTERIOR.path(tiny_run).read_text())
    assert [p.model_dump(mode="json", exclude_none=True) for p in env.personas] == posterior
    assert env.n_recipients == 600 and env.horizon == 4
    _checked(env)
