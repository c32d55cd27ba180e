"""Plain-data files: values round-trip exactly, and a tampered file cannot run code."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import BaseModel

from personasim.core.plain_files import PlainFileError, load_plain, save_plain


@dataclass(frozen=True)
class _Point:
    x: float
    label: str


class _Model(BaseModel):
    name: str
    size: int | None = None


class _Payload:
    """Unpickling this opens (creates) ``target``: what a tampered file would do."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.target), "w"))


def _payload(target: Path) -> bytes:
    payload = pickle.dumps(_Payload(target))
    control = target.with_name("control")
    pickle.loads(pickle.dumps(_Payload(control))).close()  # the payload works when unpickled
    assert control.is_file()
    control.unlink()
    return payload


def test_values_round_trip_exactly(tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": ["a", "b"], "n": np.array([1, 2], dtype=np.int8),
                          "ok": [True, False], "x": [0.1, np.nan]})
    value = {
        "frame": frame, "draws": np.arange(6, dtype=np.float32).reshape(2, 3),
        "scalar": np.float64(0.3), "tuple": (1, "two", None), "set": {3, 1},
        "nested": [{"k": (0.5, float("inf"))}], 7: "int key", ("a", 1): "tuple key",
        "point": _Point(1.5, "p"), "model": _Model(name="m"), "path": Path("a/b.csv"),
        "big": 2**100,
    }
    path = save_plain(value, tmp_path / "v.npz", [_Point, _Model])
    back = load_plain(path, [_Point, _Model])
    pd.testing.assert_frame_equal(back.pop("frame"), frame, check_exact=True)
    draws = back.pop("draws")
    assert draws.dtype == np.float32 and np.array_equal(draws, value["draws"])
    assert type(back["scalar"]) is np.float64
    assert back["model"].model_fields_set == {"name"}
    expected = {k: v for k, v in value.items() if k not in ("frame", "draws")}
    assert back == expected


def test_types_not_listed_are_refused_both_ways(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="not in the list"):
        save_plain({"p": _Point(1.0, "x")}, tmp_path / "v.npz")
    with pytest.raises(TypeError, match="object array"):
        save_plain(np.array([object()]), tmp_path / "v.npz")
    save_plain(_Point(1.0, "x"), tmp_path / "v.npz", [_Point])
    with pytest.raises(PlainFileError, match="not allowed"):
        load_plain(tmp_path / "v.npz")  # the reader's list decides, not the file


def test_a_pickle_in_place_of_a_plain_file_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "stage.npz"
    path.write_bytes(_payload(marker))
    with pytest.raises(PlainFileError, match="pickled data, which personasim never loads"):
        load_plain(path)
    assert not marker.exists()


def test_pickles_hidden_inside_the_npz_run_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "stage.npz"
    buffer = io.BytesIO()
    np.save(buffer, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    tree = json.dumps({"__array__": "a0"}).encode()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("value.npy", _npy(np.frombuffer(tree, dtype=np.uint8)))
        archive.writestr("a0.npy", buffer.getvalue())
    with pytest.raises(PlainFileError, match="pickled data"):
        load_plain(path)
    assert not marker.exists()


def test_a_tag_naming_a_callable_is_refused(tmp_path: Path) -> None:
    tree = {"__object__": "os.system", "fields": {"command": "touch pwned"}}
    path = tmp_path / "stage.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("value.npy", _npy(np.frombuffer(json.dumps(tree).encode(), np.uint8)))
    with pytest.raises(PlainFileError, match="'os.system', which is not allowed"):
        load_plain(path, [_Point])


@pytest.mark.parametrize("content", [b"", b"garbage", b"PK\x03\x04broken"])
def test_damaged_files_are_plain_file_errors(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "stage.npz"
    path.write_bytes(content)
    with pytest.raises(PlainFileError):
        load_plain(path)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()
