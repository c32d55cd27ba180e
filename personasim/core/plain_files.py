"""Save and load Python values as plain data: one ``.npz`` file that carries no code.

A run folder is data that anyone may have edited, so nothing in it is unpickled. This module
writes a value (nested dicts, lists, tuples, sets, numbers, strings, NumPy arrays and
scalars, pandas DataFrames, paths, and instances of an explicit list of dataclasses and
pydantic models) into one ``.npz`` file:

- ``value``: the value as JSON text (UTF-8 bytes), each non-JSON part tagged
  (``{"__tuple__": [...]}``, ``{"__array__": "a3"}``,
  ``{"__object__": "package.module.Class", "fields": {...}}``);
- ``a0``, ``a1``, ...: the arrays, as plain ``.npy`` entries (object arrays are refused);
- ``f0``, ``f1``, ...: the DataFrames, each as Parquet bytes.

Reading uses ``np.load(..., allow_pickle=False)`` and Parquet, and builds instances only of
the classes the caller allows (matched by name in that list, never imported), filling their
fields without calling code from the file: a tampered file can give wrong values, or be
refused, but it cannot run code.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

VALUE_KEY = "value"
"""The entry holding the JSON tree."""


PICKLED = "holds pickled data, which personasim never loads"
"""The message for a file (or an entry) that is a pickle."""


class PlainFileError(ValueError):
    """A file that is not a plain-data file this module wrote (or names a disallowed type)."""


def type_name(cls: type) -> str:
    """The tag a class is saved under: ``module.QualifiedName``."""
    return f"{cls.__module__}.{cls.__qualname__}"


class _Encoder:
    def __init__(self, allowed: dict[str, type]) -> None:
        self.allowed = allowed
        self.arrays: dict[str, np.ndarray] = {}

    def _array(self, value: np.ndarray) -> str:
        if value.dtype.hasobject:
            raise TypeError(f"an object array ({value.dtype}) cannot be saved as plain data")
        key = f"a{len(self.arrays)}"
        self.arrays[key] = value
        return key

    def encode(self, value: Any) -> Any:  # noqa: PLR0911 - one branch per kind of value
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, (int, float)) and type(value) in (int, float):
            return value
        if isinstance(value, np.ndarray):
            return {"__array__": self._array(value)}
        if isinstance(value, np.generic):
            return {"__scalar__": self._array(np.asarray(value))}
        if isinstance(value, pd.DataFrame):
            return {"__frame__": self._frame(value)}
        if isinstance(value, PurePath):
            return {"__path__": str(value)}
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v) for v in value]}
        if isinstance(value, list):
            return [self.encode(v) for v in value]
        if isinstance(value, (set, frozenset)):
            kind = "__set__" if isinstance(value, set) else "__frozenset__"
            return {kind: [self.encode(v) for v in sorted(value, key=repr)]}
        if isinstance(value, dict):
            return {"__dict__": [[self.encode(k), self.encode(v)] for k, v in value.items()]}
        return self._object(value)

    def _frame(self, frame: pd.DataFrame) -> str:
        buffer = io.BytesIO()
        frame.to_parquet(buffer)
        key = f"f{len(self.arrays)}"
        self.arrays[key] = np.frombuffer(buffer.getvalue(), dtype=np.uint8)
        return key

    def _object(self, value: Any) -> dict[str, Any]:
        cls = type(value)
        name = type_name(cls)
        if self.allowed.get(name) is not cls:
            raise TypeError(f"{name} is not in the list of types allowed in this file")
        if isinstance(value, BaseModel):
            fields = {k: self.encode(getattr(value, k)) for k in cls.model_fields}
            return {"__object__": name, "fields": fields,
                    "set": sorted(value.model_fields_set)}
        if dataclasses.is_dataclass(value):
            fields = {f.name: self.encode(getattr(value, f.name))
                      for f in dataclasses.fields(value)}
            return {"__object__": name, "fields": fields}
        raise TypeError(f"{name} is neither a dataclass nor a pydantic model")


class _Decoder:
    def __init__(self, allowed: dict[str, type], data: Any) -> None:
        self.allowed = allowed
        self.data = data

    def _entry(self, key: Any) -> np.ndarray:
        if not isinstance(key, str) or key not in self.data.files:
            raise PlainFileError(f"refers to a missing entry {key!r}")
        return np.asarray(self.data[key])

    def decode(self, value: Any) -> Any:  # noqa: PLR0911 - one branch per tag
        if value is None or isinstance(value, (bool, str, int, float)):
            return value
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        if not isinstance(value, dict) or len(value) not in (1, 2, 3):
            raise PlainFileError(f"unexpected JSON value {str(value)[:60]!r}")
        if "__object__" in value:
            return self._object(value)
        if len(value) != 1:
            raise PlainFileError(f"unexpected JSON object {str(value)[:60]!r}")
        ((tag, body),) = value.items()
        if tag == "__array__":
            return self._entry(body)
        if tag == "__scalar__":
            return self._entry(body)[()]
        if tag == "__frame__":
            return pd.read_parquet(io.BytesIO(self._entry(body).tobytes()))
        if tag == "__path__":
            return Path(str(body))
        if tag in ("__tuple__", "__set__", "__frozenset__") and isinstance(body, list):
            items = [self.decode(v) for v in body]
            return {"__tuple__": tuple, "__set__": set, "__frozenset__": frozenset}[tag](items)
        if tag == "__dict__" and isinstance(body, list):
            return {self.decode(pair[0]): self.decode(pair[1]) for pair in body}
        raise PlainFileError(f"unknown tag {tag!r}")

    def _object(self, value: dict[str, Any]) -> Any:
        name = value["__object__"]
        cls = self.allowed.get(name) if isinstance(name, str) else None
        if cls is None:
            raise PlainFileError(f"names the type {str(name)[:80]!r}, which is not allowed here")
        raw = value.get("fields")
        if not isinstance(raw, dict):
            raise PlainFileError(f"{name} without fields")
        fields = {str(k): self.decode(v) for k, v in raw.items()}
        if issubclass(cls, BaseModel):
            given = value.get("set", list(fields))
            if not isinstance(given, list) or not all(isinstance(k, str) for k in given):
                raise PlainFileError(f"{name} with a bad list of set fields")
            unknown = set(fields) - set(cls.model_fields)
            if unknown:
                raise PlainFileError(f"{name} has no field(s) {sorted(unknown)}")
            return cls.model_construct(_fields_set=set(given), **fields)
        expected = {f.name for f in dataclasses.fields(cls)}
        if set(fields) != expected:
            raise PlainFileError(f"{name} expects fields {sorted(expected)}, "
                                 f"the file has {sorted(fields)}")
        instance = object.__new__(cls)  # as unpickling does: fields set, __init__ not run
        for key, item in fields.items():
            object.__setattr__(instance, key, item)
        return instance


def _allowed(types: Iterable[type]) -> dict[str, type]:
    return {type_name(cls): cls for cls in types}


def save_plain(value: Any, path: Path, types: Iterable[type] = ()) -> Path:
    """Write ``value`` to ``path`` (an ``.npz`` file), atomically.

    Parameters
    ----------
    value
        The value to save (see the module docstring for what it may hold).
    path
        The file to write; a temporary file beside it is renamed over it at the end.
    types
        The dataclasses and pydantic models ``value`` may contain.

    Raises
    ------
    TypeError
        ``value`` holds something that cannot be saved as plain data.
    """
    path = Path(path)
    encoder = _Encoder(_allowed(types))
    tree = json.dumps(encoder.encode(value), allow_nan=True)
    entries = {VALUE_KEY: np.frombuffer(tree.encode(), dtype=np.uint8)}
    entries |= encoder.arrays
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as fh:
        np.savez_compressed(fh, **entries)  # type: ignore[arg-type]
    os.replace(tmp, path)
    return path


def load_plain(path: Path, types: Iterable[type] = ()) -> Any:
    """Read a value written by :func:`save_plain`, building only instances of ``types``.

    Raises
    ------
    PlainFileError
        ``path`` is not such a file (a pickle, a damaged file, an unknown type, ...).
    """
    path = Path(path)
    key = VALUE_KEY
    try:
        with np.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files") or key not in data.files:
                raise PlainFileError("not a plain-data .npz file")
            tree = json.loads(np.asarray(data[key]).tobytes().decode("utf-8"))
            return _Decoder(_allowed(types), data).decode(tree)
    except PlainFileError:
        raise
    except (ValueError, TypeError, KeyError, OSError, EOFError, zipfile.BadZipFile,
            UnicodeDecodeError, ArithmeticError, RecursionError) as exc:
        if "pickle" in str(exc).lower():
            raise PlainFileError(PICKLED) from None
        raise PlainFileError(" ".join(str(exc).split()) or type(exc).__name__) from None
