"""Column-at-once encoding gives exactly the bytes and value_text Feast's SQLite store writes per value."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import extract_text_and_num
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from feast.type_map import python_values_to_proto_values
from feast.types import Float64, Int64

from features.online_encoding import NULL_TEXT, cell_slots, digits, serialized_keys, struct_double


def _feast(values: np.ndarray, dtype) -> list[tuple[bytes, str | None]]:
    """What Feast's materialize stores: the whole column through its converter, as it does it."""
    protos = python_values_to_proto_values(values, dtype.to_value_type())
    return [(p.SerializeToString(), extract_text_and_num(p, False)[0]) for p in protos]


def _decode(slots: np.ndarray, value_width: int) -> list[tuple[bytes, str | None]]:
    """What the SQL in features.materialize cuts out of each slot."""
    cells = []
    for row in slots:
        raw = row.tobytes()
        value_length, text_length = int(raw[0:2]), int(raw[2:4])
        text_at = 4 + value_width
        text = None if text_length == NULL_TEXT else raw[text_at:text_at + text_length].decode()
        cells.append((raw[4:4 + value_length], text))
    return cells


COLUMNS = [
    (np.array([1.5, np.nan, np.inf, -np.inf, -0.0, 0.0, 0.0, -0.0, 1e16, 1e-5, 5e-324, 1.7976931348623157e308,
               123456.789, 1.5, np.nan]), Float64),
    (np.round(np.random.default_rng(0).gamma(1.5, 20.0, 500), 3), Float64),
    (np.array([np.nan, np.nan]), Float64),
    (np.array([], dtype=np.float64), Float64),
    (np.array([0, 1, -1, 127, 128, 300, 2**40, -(2**63), 2**63 - 1, 1, 0], dtype=np.int64), Int64),
    (np.array([1.0, np.nan, 3.0, -2.0, 1.0]), Int64),  # an int column with nulls, as Arrow gives it
]


@pytest.mark.parametrize(("values", "dtype"), COLUMNS)
def test_cell_slots_hold_feasts_bytes_and_text(values, dtype):
    slots, value_width = cell_slots(values, dtype)
    assert slots.shape[0] == len(values)
    assert _decode(slots, value_width) == _feast(values, dtype)


def test_negative_zero_keeps_its_sign():
    slots, width = cell_slots(np.array([0.0, -0.0]), Float64)
    assert [t for _, t in _decode(slots, width)] == ["0.0", "-0.0"]


@pytest.mark.parametrize("ids", [["P00000000001", "P2", "", "Ünïcødé-id", "P00000000001"], []])
def test_serialized_keys_are_feasts(ids):
    keys, sizes = serialized_keys(pa.array(ids, type=pa.string()), "person_id", 3)
    expected = [serialize_entity_key(EntityKey(join_keys=["person_id"], entity_values=[Value(string_val=v)]),
                                     entity_key_serialization_version=3) for v in ids]
    assert [keys[i, :sizes[i]].tobytes() for i in range(len(ids))] == expected
    assert not keys[:, :].size or all(not keys[i, sizes[i]:].any() for i in range(len(ids)))


def test_serialized_keys_reject_non_string_keys():
    with pytest.raises(ValueError, match="string key"):
        serialized_keys(pa.array([1, 2]), "person_id", 3)


def test_digits_round_trip_through_int():
    values = np.array([0, 7, 42, 1780272000, -1, -1780272000])
    assert [int(r.tobytes()) for r in digits(values, 20)] == values.tolist()
    assert digits(np.array([5, 98]), 2).tobytes() == b"0598"
    with pytest.raises(ValueError, match="does not fit"):
        digits(np.array([100]), 2)


@pytest.mark.parametrize("value", [0.0, -0.0, 1.5, -2.25, 1e-300, 1.7976931348623157e308, 123456.789])
def test_double_encoding_is_protobufs(value):
    assert struct_double(value) == Value(double_val=value).SerializeToString()
