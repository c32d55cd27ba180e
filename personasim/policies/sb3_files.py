"""Read SB3 model zips and replay buffers without unpickling anything.

Stable-Baselines3 saves a model as a zip (``model.save``): the weights and optimizer state
as ``.pth`` files, which SB3 reads with ``torch.load(..., weights_only=True)`` (torch's
restricted loader: tensors and plain containers, no code), and the other attributes in a
JSON ``data`` entry, where the ones JSON cannot hold (spaces, the policy class, schedules,
the last observation, the episode-info buffer) are *cloudpickled*. Loading such a zip with
``Algorithm.load`` would unpickle them, so a tampered zip could run code.

:func:`load_model` never does: it reads ``data`` as JSON and hands SB3 a replacement for
every pickled field (``custom_objects``, which SB3 uses *instead of* unpickling):

- spaces come from the environment the caller gives, and their saved shape is checked;
- the policy class, schedules, buffer classes and ``train_freq`` come from a template model
  built with the caller's hyperparameters (SB3 then sets them up as for a new model);
- ``policy_kwargs`` (pickled when it holds a class, e.g. A2C's RMSprop optimizer) is read
  from the JSON notes SB3 writes beside the pickle, each class taken from the template only
  when its name matches the note;
- the training state (last observation, episode starts, episode-info buffers) comes from
  :func:`model_state`, saved by the caller as plain data (``None``/empty: a fresh start).

A zip with any other pickled field is refused. The zip itself stays a normal SB3 zip that
``PPO.load`` opens (for files one trusts). Replay buffers (SB3 pickles them whole) are
saved by :func:`save_replay_buffer` as an ``.npz`` of their arrays instead.
"""

from __future__ import annotations

import json
import zipfile
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from gymnasium import spaces

from personasim.core.errors import DataError

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm

REBUILT = frozenset({
    "policy_class", "lr_schedule", "clip_range", "clip_range_vf", "exploration_schedule",
    "train_freq", "rollout_buffer_class", "replay_buffer_class",
})
"""Pickled fields replaced by the template model's own (set up again by SB3's ``load``)."""

SPACES = ("observation_space", "action_space")
"""Pickled fields replaced by the caller's spaces."""

STATE = ("_last_obs", "_last_episode_starts", "_last_original_obs", "ep_info_buffer",
         "ep_success_buffer")
"""Pickled training state, restored from :func:`model_state`'s plain data."""

_BUFFERS = ("ep_info_buffer", "ep_success_buffer")
_NOTES = (":type:", ":serialized:")


def pickled_fields(path: Path) -> dict[str, dict[str, Any]]:
    """The fields of an SB3 zip's ``data`` that SB3 would unpickle, with their JSON notes.

    Raises
    ------
    DataError
        ``path`` is not an SB3 model zip.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data").decode("utf-8"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(str(path), None, f"not an SB3 model zip ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(str(path), "data", "not an SB3 model zip")
    return {key: value for key, value in data.items()
            if isinstance(value, dict) and ":serialized:" in value}


def model_state(model: BaseAlgorithm) -> dict[str, Any]:
    """The training state SB3 would pickle, as plain data (arrays, lists, numbers)."""
    state: dict[str, Any] = {}
    for key in STATE:
        value = getattr(model, key, None)
        if isinstance(value, deque):
            state[key] = {"items": [dict(item) for item in value], "maxlen": value.maxlen}
        elif value is None or isinstance(value, np.ndarray) or (
                isinstance(value, dict) and all(isinstance(v, np.ndarray) for v in value.values())):
            state[key] = value  # arrays (a dict of them for dict observations)
        else:
            raise TypeError(f"{key} is a {type(value).__name__}, not an array")
    return state


def _state_value(key: str, state: dict[str, Any] | None) -> Any:
    value = (state or {}).get(key)
    if key in _BUFFERS:
        if not isinstance(value, dict):
            return None  # SB3 starts empty buffers when it learns
        maxlen = value.get("maxlen")
        return deque(value.get("items", []), maxlen=None if maxlen is None else int(maxlen))
    return value


def _check_space(path: Path, key: str, saved: dict[str, Any], space: spaces.Space[Any]) -> None:
    shape = saved.get("_shape")
    if shape is not None and list(shape) != list(space.shape or ()):
        raise DataError(str(path), key, f"the model was saved for shape {shape}, the "
                        f"environment has {list(space.shape or ())}")
    if isinstance(space, spaces.Discrete) and "n" in saved and str(saved["n"]) != str(space.n):
        raise DataError(str(path), key, f"the model was saved for {saved['n']} actions, the "
                        f"environment has {space.n}")


def _policy_kwargs(path: Path, notes: dict[str, Any], mine: dict[str, Any]) -> dict[str, Any]:
    """``policy_kwargs`` from SB3's notes on the pickled dict; classes from the template."""
    kwargs: dict[str, Any] = {}
    for key, note in notes.items():
        if key in _NOTES:
            continue
        if key in mine and (mine[key] == note or str(mine[key]) == note):
            kwargs[key] = mine[key]
        elif isinstance(note, str) and note.startswith("<"):
            raise DataError(str(path), f"policy_kwargs.{key}", f"{note} is pickled in the zip and "
                            "personasim does not unpickle model files")
        else:
            kwargs[key] = note
    return kwargs


def load_model(
    algorithm_cls: type[BaseAlgorithm],
    path: Path,
    *,
    observation_space: spaces.Space[Any],
    action_space: spaces.Space[Any],
    policy: str,
    hyperparameters: dict[str, Any] | None = None,
    env: Any = None,
    state: dict[str, Any] | None = None,
    force_reset: bool = True,
) -> BaseAlgorithm:
    """Load an SB3 model zip without unpickling (see the module docstring).

    Parameters
    ----------
    algorithm_cls
        The SB3 algorithm class the zip was saved from.
    path
        The zip.
    observation_space, action_space
        The spaces of the environment the model acts in (checked against the saved shapes).
    policy
        The SB3 policy name the model was built with (e.g. ``"MlpPolicy"``).
    hyperparameters
        The hyperparameters it was trained with (schedules are rebuilt from them).
    env
        The (vectorized) environment to continue training on, or ``None`` for prediction.
    state
        Training state from :func:`model_state` (``None``: none, as for prediction).
    force_reset
        Reset the environment before training continues (passed to SB3's ``load``).

    Raises
    ------
    DataError
        Not an SB3 zip, a pickled field this loader does not replace, or a model that does not
        fit the spaces or the policy.
    """
    path = Path(path)
    fields = pickled_fields(path)
    unknown = sorted(set(fields) - REBUILT - set(SPACES) - set(STATE) - {"policy_kwargs"})
    if unknown:
        raise DataError(str(path), unknown[0], "is pickled in the zip and personasim does not "
                        "unpickle model files")
    template = algorithm_cls(policy, env=None, device="cpu", _init_setup_model=False,
                             **dict(hyperparameters or {}))
    given = dict(zip(SPACES, (observation_space, action_space), strict=True))
    custom: dict[str, Any] = {}
    for key, saved in fields.items():
        if key in given:
            _check_space(path, key, saved, given[key])
            custom[key] = given[key]
        elif key in STATE:
            custom[key] = _state_value(key, state)
        elif key == "policy_kwargs":
            custom[key] = _policy_kwargs(path, saved, dict(template.policy_kwargs or {}))
        else:
            custom[key] = getattr(template, key, None)
    try:
        return algorithm_cls.load(path, env=env, device="cpu", custom_objects=custom,
                                  force_reset=force_reset)
    except (RuntimeError, ValueError, KeyError, AssertionError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(str(path), None, f"does not load as a {algorithm_cls.__name__} model "
                        f"({first})") from None


def save_replay_buffer(model: BaseAlgorithm, path: Path) -> Path:
    """Write an off-policy model's replay buffer as arrays (``.npz``), not a pickle."""
    buffer = getattr(model, "replay_buffer", None)
    if buffer is None:
        raise ValueError("the model has no replay buffer")
    arrays = {k: v for k, v in vars(buffer).items() if isinstance(v, np.ndarray)}
    with Path(path).open("wb") as fh:
        np.savez(fh, __pos=np.asarray(int(buffer.pos)), __full=np.asarray(bool(buffer.full)),
                 **arrays)
    return Path(path)


def load_replay_buffer(model: BaseAlgorithm, path: Path) -> None:
    """Fill ``model``'s (freshly set up) replay buffer from :func:`save_replay_buffer`'s file.

    Raises
    ------
    DataError
        The file does not hold arrays matching the buffer.
    """
    buffer = getattr(model, "replay_buffer", None)
    if buffer is None:
        raise ValueError("the model has no replay buffer")
    try:
        with np.load(path, allow_pickle=False) as data:
            saved = {key: np.asarray(data[key]) for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(str(path), None, f"not a saved replay buffer ({exc})") from None
    for key, current in vars(buffer).items():
        if not isinstance(current, np.ndarray):
            continue
        value = saved.get(key)
        if value is None or value.shape != current.shape or value.dtype != current.dtype:
            raise DataError(str(path), key, "does not match the model's replay buffer")
        setattr(buffer, key, value)
    if "__pos" not in saved or "__full" not in saved:
        raise DataError(str(path), None, "not a saved replay buffer (no position)")
    buffer.pos = int(saved["__pos"])
    buffer.full = bool(saved["__full"])
