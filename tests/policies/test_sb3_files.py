"""SB3 zips and checkpoints are read without unpickling: a tampered file cannot run code."""

from __future__ import annotations

import base64
import json
import pickle
import signal
import zipfile
from pathlib import Path

import numpy as np
import pytest
from small_envs import tiny_env_factory

from personasim.config.sections import PolicyConfig
from personasim.core.errors import DataError
from personasim.core.interrupts import StopFlag
from personasim.policies.checkpointing import POINTER, TrainingInterrupted
from personasim.policies.training import load_policy, save_policy, train_policy


class _Payload:
    """Unpickling this opens (creates) ``target``."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.target), "w"))


@pytest.fixture(scope="module")
def saved_ppo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    result = train_policy(tiny_env_factory(), PolicyConfig(algorithm="ppo", total_timesteps=64),
                          seed=0, log_dir=None)
    path = save_policy(result.model, tmp_path_factory.mktemp("ppo") / "model.zip")
    return path, result.model


def _tamper(source: Path, target: Path, field: str, payload: object) -> Path:
    """Copy the zip with ``field`` of its ``data`` pickled as ``payload``."""
    with zipfile.ZipFile(source) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(entries["data"])
    data[field] = {":type:": "<class 'object'>",
                   ":serialized:": base64.b64encode(pickle.dumps(payload)).decode()}
    entries["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return target


def test_a_payload_in_a_pickled_field_is_never_unpickled(saved_ppo: tuple[Path, object],
                                                         tmp_path: Path) -> None:
    from stable_baselines3.common.save_util import json_to_data

    source, model = saved_ppo
    marker = tmp_path / "pwned"
    bad = _tamper(source, tmp_path / "bad.zip", "policy_class", _Payload(marker))
    with zipfile.ZipFile(bad) as archive:
        json_to_data(archive.read("data").decode())  # what SB3's own load does first
    assert marker.is_file()  # so the payload is live
    marker.unlink()

    loaded = load_policy("ppo", bad, tiny_env_factory()())
    assert not marker.exists()
    obs = np.stack([tiny_env_factory()().observation_space.sample() for _ in range(4)])
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0],
                                  model.predict(obs, deterministic=True)[0])  # type: ignore[attr-defined]


def test_an_unexpected_pickled_field_is_refused(saved_ppo: tuple[Path, object],
                                                tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    bad = _tamper(saved_ppo[0], tmp_path / "bad.zip", "surprise", _Payload(marker))
    with pytest.raises(DataError, match="surprise: is pickled in the zip"):
        load_policy("ppo", bad, tiny_env_factory()())
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"not a zip", b""])
def test_a_file_that_is_not_a_model_is_one_line(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.zip"
    path.write_bytes(content)
    with pytest.raises(DataError, match="not an SB3 model zip"):
        load_policy("ppo", path, tiny_env_factory()())


def test_a_model_for_another_environment_is_refused(saved_ppo: tuple[Path, object]) -> None:
    with pytest.raises(DataError, match="observation_space: the model was saved for shape"):
        load_policy("ppo", saved_ppo[0], tiny_env_factory(n_personas=3)())


def test_a_tampered_checkpoint_state_runs_nothing(tmp_path: Path) -> None:
    config = PolicyConfig(algorithm="ppo", total_timesteps=256, n_envs=2, checkpoint_every=64,
                          hyperparameters={"n_steps": 32, "batch_size": 16})
    stop = StopFlag()
    stop.request(signal.SIGTERM)
    checkpoints = tmp_path / "checkpoints"
    with pytest.raises(TrainingInterrupted):
        train_policy(tiny_env_factory(), config, seed=1, log_dir=None,
                     checkpoint_dir=checkpoints, stop=stop)
    tag = json.loads((checkpoints / POINTER).read_text())["tag"]
    state = checkpoints / f"state-{tag}.npz"
    assert state.is_file() and not list(checkpoints.glob("*.pkl"))
    marker = tmp_path / "pwned"
    state.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(DataError, match=f"state-{tag}.npz: not a saved checkpoint state"):
        train_policy(tiny_env_factory(), config, seed=1, log_dir=None,
                     checkpoint_dir=checkpoints)
    assert not marker.exists()
