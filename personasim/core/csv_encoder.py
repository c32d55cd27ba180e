"""The NumPy CSV encoder behind :mod:`personasim.core.csv_files`: pandas' bytes, faster.

Large tables whose columns are all text, integers, booleans or floats already rounded to 6
decimals are encoded here about ten times faster than pandas' ``to_csv``, with the same
bytes; :func:`encode_table` returns None for anything it cannot guarantee, and the caller
falls back to pandas.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# --- NumPy encoder -----------------------------------------------------------------------
# Every cell is written into a fixed-width slot of 4-byte words that ends with its separator;
# the slot bytes the cell does not use are 0 (no cell holds a NUL), so the row-major bytes
# of all slots, without their zeros, are exactly the CSV text.

_UNSAFE_TEXT = '[,"\\n\\r\\x00]'  # cells pandas quotes (and CR and NUL, to be safe)
_MAX_WHOLE = 10**6  # integer parts up to six digits


def _words(rows: list[str]) -> np.ndarray:
    """Little-endian 4-byte words of 4-character rows (a space stands for a 0 byte)."""
    raw = np.array([[0 if c == " " else ord(c) for c in row] for row in rows], dtype=np.uint8)
    return np.ascontiguousarray(raw).view("<u4").ravel()


_D3 = [f"{i:03d}" for i in range(1000)]
#: Sign slot, then the high three integer digits without leading zeros (blank for 0).
_WHOLE_HIGH = _words([" " + d.lstrip("0").rjust(3) for d in _D3])
#: The low three integer digits: all of them after non-zero high digits (rows 0-999), else
#: without leading zeros but "0" for zero (rows 1000-1999); then "." or a blank.
_WHOLE_LOW = {point: _words([d + point for d in _D3]
                            + [(d.lstrip("0") or "0").rjust(3) + point for d in _D3])
              for point in (".", " ")}
#: The first three decimals: all of them when later ones are not all zero (rows 0-999),
#: else without trailing zeros and "0" for zero (rows 1000-1999); byte 3 is left for the
#: fourth decimal.
_FRACTION_HIGH = _words([d + " " for d in _D3] + [(d.rstrip("0") or "0").ljust(3) + " "
                                                  for d in _D3])
#: The last three decimals without trailing zeros, split: the first in byte 3 of the third
#: word, the other two in bytes 0-1 of the fourth.
_FRACTION_LOW_A = _words(["   " + d.rstrip("0").ljust(3)[0] for d in _D3])
_FRACTION_LOW_B = _words([d.rstrip("0").ljust(3)[1:] + "  " for d in _D3])


def _small_floats() -> np.ndarray:
    """Words of NumPy's text of ``n / 1e6`` for ``-99 <= n <= 99`` (scientific notation)."""
    text = (np.arange(-99, 100) / 1e6).astype(str)
    return _words([cell.ljust(16) for cell in text]).reshape(len(text), 4)


_SMALL = _small_floats()


def _number_words(scaled: np.ndarray, decimals: bool) -> np.ndarray:
    """Slots of integer-valued floats ``scaled`` (``|scaled| < 10**12``), without separator.

    With ``decimals`` the slot holds ``scaled / 10**6`` as NumPy writes a float (``"-12.5"``,
    ``"0.0"``, ``"1e-05"``) in four words, else the integer ``scaled`` (``"-12"``) in two.
    Integer-valued doubles below ``2**53`` divide and subtract exactly here, so every digit is
    exact.
    """
    size = np.abs(scaled)
    whole = np.floor(size / 1e6) if decimals else size
    high = np.floor(whole / 1000)
    low = (whole - high * 1000).astype(np.intp)
    words = np.empty((len(scaled), 4 if decimals else 2), dtype=np.uint32)
    words[:, 0] = np.take(_WHOLE_HIGH, high.astype(np.intp)) | (
        (scaled < 0).astype(np.uint32) * np.uint32(ord("-")))
    words[:, 1] = np.take(_WHOLE_LOW["." if decimals else " "], low + 1000 * (high == 0))
    if decimals:
        fraction = size - whole * 1e6
        f_high = np.floor(fraction / 1000)
        f_low = (fraction - f_high * 1000).astype(np.intp)
        words[:, 2] = np.take(_FRACTION_HIGH, f_high.astype(np.intp) + 1000 * (f_low == 0))
        words[:, 2] |= np.take(_FRACTION_LOW_A, f_low)
        words[:, 3] = np.take(_FRACTION_LOW_B, f_low)
        small = np.flatnonzero((size < 100) & (size > 0))
        if len(small):
            words[small] = _SMALL[(scaled[small] + 99).astype(np.intp)]
    return words


def _int_words(values: np.ndarray) -> np.ndarray | None:
    """Slots of an integer column, or ``None`` outside ``|v| < 10**6``."""
    if len(values) and np.abs(values).max() >= _MAX_WHOLE:
        return None
    return _number_words(values.astype(np.float64), decimals=False)


def _float_words(values: np.ndarray) -> np.ndarray | None:
    """Slots of a float64 column as NumPy's ``astype(str)`` writes it, or ``None``.

    Only for finite values equal to their rounding to 6 decimals, below ``10**6`` in size and
    not ``-0.0``: such a value is the double nearest to ``n / 10**6`` for the integer
    ``n = rint(v * 10**6)``, and no shorter decimal lies within half a unit in the last place
    of it, so its shortest round-trip text is the decimal ``n / 10**6`` without trailing
    zeros (in scientific notation below ``1e-4``, as Python's ``repr``).
    """
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = np.rint(values * 1e6)
        if not ((np.abs(scaled) < _MAX_WHOLE * 1e6).all() and (scaled / 1e6 == values).all()):
            return None  # NaN and infinities fail both tests
    if ((values == 0) & np.signbit(values)).any():
        return None
    return _number_words(scaled, decimals=True)


def _text_words(labels: pa.Array) -> np.ndarray | None:
    """Zero-padded slots of each label, or ``None`` when one would need quoting."""
    if labels.null_count or pc.any(pc.match_substring_regex(labels, _UNSAFE_TEXT)).as_py():
        return None
    labels = labels.cast(pa.large_string())
    offsets = np.frombuffer(labels.buffers()[1], dtype=np.int64)[
        labels.offset : labels.offset + len(labels) + 1]
    raw = labels.buffers()[2]
    chars = np.frombuffer(raw, dtype=np.uint8) if raw is not None else np.zeros(0, np.uint8)
    if len(chars) == 0:
        chars = np.zeros(1, dtype=np.uint8)  # only empty labels
    lengths = np.diff(offsets)
    width = 4 * (int(lengths.max(initial=0)) // 4 + 1)  # room for the separator
    span = np.arange(width)
    valid = span[None, :] < lengths[:, None]
    where = np.minimum(offsets[:-1, None] + span[None, :], len(chars) - 1)
    cells = np.where(valid, chars[np.where(valid, where, 0)], 0).astype(np.uint8)
    return np.ascontiguousarray(cells).view("<u4")


_BUFFERS = threading.local()


def _scratch(name: str, size: int, dtype: type) -> np.ndarray:
    """A per-thread buffer of at least ``size`` elements, reused between calls.

    Fresh large arrays cost a page fault per 4 KiB on first touch; encoding chunk after chunk
    into the same memory avoids that.
    """
    cache: dict[str, np.ndarray] | None = getattr(_BUFFERS, "arrays", None)
    if cache is None:  # only CsvStream's threads keep buffers (they end with the stream)
        return np.empty(size, dtype=dtype)
    buffer = cache.get(name)
    if buffer is None or buffer.size < size or buffer.dtype != dtype:
        buffer = cache[name] = np.empty(max(size, 1), dtype=dtype)
    return buffer[:size]


def keep_buffers() -> None:
    """Let this thread reuse its encoding buffers (see :func:`_scratch`)."""
    _BUFFERS.arrays = {}


Slots = tuple[np.ndarray, "np.ndarray | None"]
"""A column's distinct slots ``(n_distinct, n_words)`` and each row's distinct slot."""


def _distinct(values: np.ndarray, slots: Callable[[np.ndarray], np.ndarray | None]
              ) -> Slots | None:
    """``slots`` of the distinct values when they repeat a lot, else of all the values."""
    sample = values[:4096]
    if len(pd.unique(sample)) * 4 <= len(sample):
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
        if len(uniques) * 4 <= len(values):
            block = slots(np.asarray(uniques))
            return None if block is None else (block, codes)
    block = slots(values)
    return None if block is None else (block, None)


def _column_slots(column: pa.ChunkedArray) -> Slots | None:
    """The slots of one column, or ``None`` when pandas must write it."""
    kind = column.type
    if column.null_count:
        return None
    if pa.types.is_dictionary(kind):
        array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
        values, codes = array.dictionary, array.indices.to_numpy(zero_copy_only=False)
        if values.null_count:
            return None
        if pa.types.is_float64(values.type):
            block = _float_words(values.to_numpy())
        elif pa.types.is_integer(values.type):
            block = _int_words(values.to_numpy().astype(np.int64))
        elif pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            block = _text_words(values)
        else:
            return None
        return None if block is None else (block, codes)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        array = pc.dictionary_encode(column).combine_chunks()
    elif pa.types.is_boolean(kind):
        array = pa.DictionaryArray.from_arrays(column.combine_chunks().cast(pa.int8()),
                                               pa.array(["False", "True"]))
    elif pa.types.is_integer(kind):
        return _distinct(column.to_numpy().astype(np.int64), _int_words)
    elif pa.types.is_float64(kind):
        return _distinct(column.to_numpy(), _float_words)
    else:
        return None
    block = _text_words(array.dictionary)
    return None if block is None else (block, array.indices.to_numpy(zero_copy_only=False))


def encode_table(table: pa.Table, header: bool) -> np.ndarray | None:
    """The bytes pandas' ``to_csv`` writes for ``table``, or ``None`` if this cannot vouch.

    Handles text (plain or dictionary-encoded, no cell that pandas would quote), integers
    below ``10**6``, booleans and float64 values equal to their rounding to 6 decimals, none
    missing. Text must already be neutralized (see :func:`neutralize_table`).

    Returns
    -------
    numpy.ndarray or None
        The bytes, as a ``uint8`` array.
    """
    names = table.column_names
    if not names or any(c in name for name in names for c in ',"\n\r\x00'):
        return None
    if table.num_columns == 1 and table.num_rows:
        return None  # pandas quotes an empty cell alone on its line
    head = np.frombuffer((",".join(names) + "\n").encode("utf-8") if header else b"",
                         dtype=np.uint8)
    columns = []
    for column in table.columns:
        slots = _column_slots(column)
        if slots is None:
            return None
        columns.append(slots)
    widths = [block.shape[1] for block, _ in columns]  # each slot's last byte is free
    # every word is written below, so a reused buffer needs no clearing
    words = _scratch("words", table.num_rows * sum(widths), np.uint32).reshape(
        table.num_rows, sum(widths))
    at = 0
    for i, ((block, rows), width) in enumerate(zip(columns, widths, strict=True)):
        words[:, at : at + block.shape[1]] = block if rows is None else np.take(block, rows,
                                                                                axis=0)
        separator = ord("\n") if i == len(columns) - 1 else ord(",")
        words[:, at + width - 1] |= np.uint32(separator << 24)
        at += width
    data = words.view(np.uint8).ravel()
    body = data[np.not_equal(data, 0, out=_scratch("mask", len(data), np.bool_))]
    return np.concatenate([head, body]) if len(head) else body


