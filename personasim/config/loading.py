"""Reading a config file: YAML, ``--set`` overrides, one-line errors, resolved paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from personasim.config.schema import ExperimentConfig
from personasim.core.errors import ConfigError
from personasim.core.suggest import did_you_mean


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Build a mapping, failing on a duplicate key with its line."""
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def yaml_error_line(exc: yaml.YAMLError, text: str) -> int | None:
    """The 1-based line a YAML error is on, as a person would point at it.

    PyYAML marks where it *noticed* the problem: for a key without its colon, an unclosed
    quote or bracket, that is the next line (or the end of the file). Its context mark (the
    scalar, key or flow collection it was reading) is the line at fault then; for a block
    mapping the context is the whole block, so the problem mark is kept. The line is never
    past the file's last non-blank line.
    """
    context = str(getattr(exc, "context", None) or "")
    use_context = context.startswith(("while scanning a", "while parsing a flow"))
    mark = getattr(exc, "context_mark" if use_context else "problem_mark", None)
    mark = mark or getattr(exc, "problem_mark", None)
    if mark is None:
        return None
    lines = text.splitlines()
    last = max((i for i, line in enumerate(lines, 1) if line.strip()), default=1)
    return min(mark.line + 1, last)


def apply_overrides(raw: dict[str, Any], overrides: list[str], source: str) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides (values parsed as YAML) to a raw config dict."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(source, f"--set {item}", "expected key.path=value")
        path, _, text = item.partition("=")
        keys = path.strip().split(".")
        node: Any = raw
        for key in keys[:-1]:
            if isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            elif isinstance(node, dict):
                node = node.setdefault(key, {})
            else:
                raise ConfigError(source, f"--set {path}", f"cannot descend into {key!r}")
        last = keys[-1]
        try:
            value = yaml.load(text, Loader=UniqueKeyLoader) if text.strip() else None
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(source, f"--set {path.strip()}",
                              f"value {text!r} is not valid YAML ({problem})") from None
        if isinstance(node, list) and last.isdigit() and int(last) < len(node):
            node[int(last)] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise ConfigError(source, f"--set {path}", f"cannot set {last!r}")
    return raw


def format_validation_error(error: ValidationError, model: type[BaseModel]) -> tuple[str, str]:
    """Return ``(location, message)`` for the first error, with a did-you-mean on typos."""
    first = error.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        key = str(first["loc"][-1])
        msg = f"unknown key {key!r}{did_you_mean(key, _known_keys(model, first['loc'][:-1]))}"
    elif msg.startswith("Value error, "):
        msg = msg.removeprefix("Value error, ")
        if not loc and ": " in msg.split(" ")[0] + " ":
            loc, _, msg = msg.partition(": ")
    if first["type"] == "missing":
        msg = "required field is missing"
    return loc or "(top level)", msg


def _known_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names (and aliases) of the model found at ``loc``, for suggestions."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        current = _model_in(field.annotation)
    if current is None or not hasattr(current, "model_fields"):
        return []
    names = list(current.model_fields)
    names += [f.alias for f in current.model_fields.values() if f.alias]
    return names


def _model_in(annotation: Any) -> Any:
    """Find a BaseModel class inside an annotation such as ``list[Persona] | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read, override and validate an experiment config.

    Data-file paths are resolved relative to the config file's folder.

    Raises
    ------
    ConfigError
        One line naming the file and the field at fault.
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise ConfigError(source, None, "config file not found")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(source, None, f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at "
                          f"offset {exc.start}); save the config as UTF-8") from None
    try:
        raw = yaml.load(text, Loader=UniqueKeyLoader)
    except yaml.YAMLError as exc:
        line = yaml_error_line(exc, text)
        problem = getattr(exc, "problem", exc)
        raise ConfigError(source, f"line {line}" if line else None,
                          f"not valid YAML ({problem})") from None
    if raw is None:
        raise ConfigError(source, None, "config file is empty")
    if not isinstance(raw, dict):
        raise ConfigError(source, None, "top level must be a mapping of keys")
    raw = apply_overrides(raw, overrides or [], source)
    try:
        config = ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        loc, msg = format_validation_error(exc, ExperimentConfig)
        raise ConfigError(source, loc, msg) from None
    return resolve_paths(config, path)


def resolve_paths(config: ExperimentConfig, config_path: Path) -> ExperimentConfig:
    """Make data, events and graph file paths absolute (relative to the config's folder).

    Raises
    ------
    ConfigError
        If a named file does not exist.
    """
    base = config_path.parent
    updates: list[tuple[str, BaseModel, str]] = [
        ("data.recipients", config.data, "recipients"),
        ("data.campaigns", config.data, "campaigns"),
        ("data.ab_results", config.data, "ab_results"),
        ("data.ab_counts", config.data, "ab_counts"),
        ("dynamics.events_file", config.dynamics, "events_file"),
        ("dynamics.influence.network.file", config.dynamics.influence.network, "file"),
    ]
    updates += [("dataset.path", config.dataset, "path")] if config.dataset else []
    for loc, owner, attr in updates:
        value = getattr(owner, attr)
        if value is None:
            continue
        resolved = value if value.is_absolute() else (base / value).resolve()
        if not resolved.is_file():
            raise ConfigError(str(config_path), loc, f"file not found: {value}")
        object.__setattr__(owner, attr, resolved)
    return config
