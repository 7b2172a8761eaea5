"""Feast's SQLite online-store bytes for whole columns at once, as fixed-width numpy records.

Feast's ``SqliteOnlineStore`` stores one row per (entity, feature): the entity key from
``serialize_entity_key``, the feature's ``ValueProto`` wire bytes and ``value_text`` (``str`` of the
scalar, NULL when the value is missing). Building those one Python object at a time is what makes Feast's
``materialize`` slow, so this module builds them per column with numpy and leaves Python work only per
*distinct* value. The result is a "slot" per cell that SQL can cut apart with ``substr``:

    2 ASCII digits len(value) | 2 digits len(text), 99 for NULL | value, zero-padded | text, zero-padded

Every distinct value except finite doubles goes through Feast's own converter; finite doubles are packed
as the ``double_val`` wire format, checked against protobuf on every call.
"""

from __future__ import annotations

import struct

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["MAX_CELL", "NULL_TEXT", "cell_slots", "digits", "serialized_keys", "struct_double"]

NULL_TEXT, MAX_CELL = 99, 98
_DOUBLE_TAG = 0x29  # field 5 (double_val), wire type 1 (64-bit)


def struct_double(value: float) -> bytes:
    """The wire bytes of ``ValueProto(double_val=value)`` (tag + little-endian IEEE 754)."""
    return bytes([_DOUBLE_TAG]) + np.float64(value).tobytes()


def digits(values: np.ndarray, width: int) -> np.ndarray:
    """Integers as (n, width) zero-padded ASCII digits, ``-`` first if negative (SQL CASTs them back)."""
    values = np.asarray(values, dtype=np.int64)
    if len(values) and (values.max() >= 10**width or values.min() <= -(10 ** (width - 1))):
        raise ValueError(f"a number does not fit in {width} digits")
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.uint64)
    out = (np.abs(values).astype(np.uint64)[:, None] // powers % 10 + ord("0")).astype(np.uint8)
    out[values < 0, 0] = ord("-")
    return out


def _padded(chunks: list[bytes], width: int) -> np.ndarray:
    joined = b"".join(c.ljust(width, b"\0") for c in chunks)
    return np.frombuffer(joined, dtype=np.uint8).reshape(len(chunks), width)


def serialized_keys(ids: pa.Array, join_key: str, version: int) -> tuple[np.ndarray, np.ndarray]:
    """Feast's ``serialize_entity_key`` of single-key entities: (n, width) zero-padded keys and lengths.

    A string key is a constant head, its UTF-8 length (4 bytes little-endian) and its bytes; the head comes
    from Feast's own function and the first keys are checked against it (a mismatch, i.e. a future
    encoding, sends every key through Feast's function). Other key types raise ValueError.
    """
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    def feast_key(v: str) -> bytes:
        return serialize_entity_key(EntityKey(join_keys=[join_key], entity_values=[Value(string_val=v)]),
                                    entity_key_serialization_version=version)

    if not (pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type)):
        raise ValueError(f"entity {join_key!r} must be a string key, got {ids.type}; use Feast's materialize")
    ids = ids.cast(pa.large_string())
    n = len(ids)
    offsets = np.frombuffer(ids.buffers()[1], dtype=np.int64)[ids.offset:ids.offset + n + 1]
    buffer = ids.buffers()[2]
    data = np.frombuffer(buffer, dtype=np.uint8) if buffer is not None else np.zeros(0, dtype=np.uint8)
    lengths = np.diff(offsets)
    empty = feast_key("")
    head = np.frombuffer(empty[:-4], dtype=np.uint8)
    body = int(lengths.max(initial=0))
    keys = np.zeros((n, len(head) + 4 + body), dtype=np.uint8)
    keys[:, :len(head)] = head
    keys[:, len(head):len(head) + 4] = lengths.astype("<u4").view(np.uint8).reshape(n, 4)
    if len(data):
        columns = np.arange(body)
        at = np.minimum(offsets[:-1, None] + columns, len(data) - 1)
        keys[:, len(head) + 4:] = np.where(columns < lengths[:, None], data[at], 0)
    sizes = len(head) + 4 + lengths
    probe = ids.slice(0, 3).to_pylist()
    if empty[-4:] != struct.pack("<I", 0) or any(
            keys[i, :sizes[i]].tobytes() != feast_key(v) for i, v in enumerate(probe)):
        serial = [feast_key(v) for v in ids.to_pylist()]
        sizes = np.array([len(k) for k in serial], dtype=np.int64)
        keys = _padded(serial, int(sizes.max(initial=0)))
    return keys, sizes


def _slots(cells: list[tuple[bytes, str | None]]) -> tuple[np.ndarray, int]:
    """Cells as a (len(cells), width) array of slots, and the value width."""
    texts = [None if t is None else t.encode("utf8") for _, t in cells]
    vw = max((len(v) for v, _ in cells), default=0)
    tw = max((len(t) for t in texts if t is not None), default=0)
    if max(vw, tw) > MAX_CELL:
        raise ValueError(f"a value or value_text longer than {MAX_CELL} bytes; use Feast's materialize")
    rows = [b"%02d%02d" % (len(v), NULL_TEXT if t is None else len(t)) + v.ljust(vw, b"\0")
            + (t or b"").ljust(tw, b"\0") for (v, _), t in zip(cells, texts, strict=True)]
    return np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(cells), 4 + vw + tw), vw


def _widen(slots: np.ndarray, value_width: int, to_value: int, to_text: int) -> np.ndarray:
    """The same slots with value and text areas padded to ``to_value`` and ``to_text`` bytes."""
    text_width = slots.shape[1] - 4 - value_width
    out = np.zeros((len(slots), 4 + to_value + to_text), dtype=np.uint8)
    out[:, :4 + value_width] = slots[:, :4 + value_width]
    out[:, 4 + to_value:4 + to_value + text_width] = slots[:, 4 + value_width:]
    return out


def _feast_cells(values: np.ndarray, value_type) -> list[tuple[bytes, str | None]]:
    """Feast's bytes and value_text, one value at a time, each passed as Feast's materialize passes it."""
    from feast.infra.online_stores.helpers import extract_text_and_num
    from feast.type_map import python_values_to_proto_values

    protos = [python_values_to_proto_values(values[i:i + 1], value_type)[0] for i in range(len(values))]
    return [(p.SerializeToString(), extract_text_and_num(p, False)[0]) for p in protos]


def _double_slots(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Doubles: finite ones packed by numpy, the wire bytes and ``repr`` (= Feast's ``str(double_val)``).

    Non-finite ones go through Feast's converter (NaN is stored as an empty value without text).
    """
    from feast.protos.feast.types.Value_pb2 import Value
    from feast.value_type import ValueType

    n = len(values)
    texts = np.array(list(map(repr, values.tolist())), dtype="S") if n else np.zeros(0, dtype="S1")
    slots = np.zeros((n, 13 + texts.dtype.itemsize), dtype=np.uint8)
    slots[:, 0:2] = np.frombuffer(b"09", dtype=np.uint8)
    slots[:, 2:4] = digits(np.char.str_len(texts), 2)
    slots[:, 4] = _DOUBLE_TAG
    slots[:, 5:13] = values.astype("<f8").view(np.uint8).reshape(n, 8)
    slots[:, 13:] = texts.view(np.uint8).reshape(n, texts.dtype.itemsize)
    finite = np.isfinite(values)
    if finite.any():
        probe = float(values[finite][0])
        if Value(double_val=probe).SerializeToString() != struct_double(probe):
            raise RuntimeError("ValueProto double encoding changed; use Feast's materialize (--feast)")
    odd = np.flatnonzero(~finite)
    if len(odd) == 0:
        return slots, 9
    special, special_vw = _slots(_feast_cells(values[odd], ValueType.DOUBLE))
    vw, tw = max(9, special_vw), max(slots.shape[1] - 13, special.shape[1] - 4 - special_vw)
    slots = _widen(slots, 9, vw, tw)
    slots[odd] = _widen(special, special_vw, vw, tw)
    return slots, vw


def cell_slots(values: np.ndarray, dtype) -> tuple[np.ndarray, int]:
    """One column's cells as (len(values), width) slots, and the value width (the text follows it).

    ``values`` is the column as Feast's materialize sees it (``to_numpy(zero_copy_only=False)`` of the
    Arrow column); ``dtype`` is the Feast field type. Encodes each distinct value once.
    """
    from feast.types import Float64

    if values.dtype.kind == "f":  # by bit pattern: factorize would merge -0.0 into 0.0
        codes, uniques = pd.factorize(values.view(f"i{values.dtype.itemsize}"), use_na_sentinel=False)
        uniques = np.asarray(uniques).view(values.dtype)
    else:
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
        uniques = np.asarray(uniques, dtype=values.dtype)
    if dtype == Float64:
        table, vw = _double_slots(uniques.astype(np.float64))
    else:
        table, vw = _slots(_feast_cells(uniques, dtype.to_value_type()))
    return table[codes], vw
