"""Mapping records: detection per record shape, JSON parsed and hashed as the standard library
would, whichever parser reads it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from amazoniax_dagster.records.mapping import RecordMapping, canonical, canonical_bytes, to_item
from amazoniax_dagster.records.readers import loads


def test_detection_follows_each_records_values_not_only_the_first_of_its_shape() -> None:
    first = to_item({"id": "a", "title": "T", "name": "N", "url": ""}, RecordMapping())
    empty_title = to_item({"id": "b", "title": "", "name": "N", "url": ""}, RecordMapping())
    assert (first.title, empty_title.title) == ("T", "N")
    assert first.url is None


def test_id_like_keys_count_only_with_a_value_else_the_record_is_hashed() -> None:
    with_id = to_item({"productId": 7, "label": "x"}, RecordMapping())
    without = to_item({"productId": "", "label": "x"}, RecordMapping())
    listed = to_item({"productId": [1], "label": "x"}, RecordMapping())
    assert with_id.external_id == "7"
    assert without.external_id == f"sha256:{without.content_hash}"
    assert listed.external_id == f"sha256:{listed.content_hash}"


def test_a_mapped_path_with_list_indexes_and_a_numeric_key() -> None:
    mapping = RecordMapping(external_id="meta.0.ref", title="names.01")
    item = to_item({"meta": [{"ref": "r1"}], "names": {"01": "first"}}, mapping)
    assert (item.external_id, item.title) == ("r1", "first")


@pytest.mark.parametrize(
    "text",
    [
        b'{"id": 123456789012345678901234567890}',
        b'{"id": -98765432109876543210, "x": 1.5}',
        b'{"v": NaN, "w": -Infinity}',
        b'\xef\xbb\xbf{"id": "bom"}',
        b'{"s": "caf\\u00e9 \\ud83d\\ude00", "n": [1, 2.25, null, true]}',
    ],
)
def test_json_reads_as_the_standard_library_reads_it(text: bytes) -> None:
    assert repr(loads(text)) == repr(json.loads(text))


def test_invalid_json_raises_the_standard_librarys_error() -> None:
    with pytest.raises(json.JSONDecodeError):
        loads(b'{"id": 1,}')


@pytest.mark.parametrize(
    "record",
    [
        {"b": 1, "a": {"z": [1, 2], "y": 'caf\u00e9\t\n\\"q"'}, "c": None, "d": True},
        {"big": 2**70, "small": -1},
        {"ctl": "\x01\x1f\u2028", "emoji": "\U0001f600", "empty": {}},
    ],
)
def test_canonical_bytes_are_the_canonical_json(record: dict[str, Any]) -> None:
    assert canonical_bytes(record) == canonical(record).encode()


def test_the_content_hash_ignores_key_order_and_follows_values() -> None:
    one = to_item({"id": "x", "a": 1, "b": [1, 2]}, RecordMapping())
    reordered = to_item({"b": [1, 2], "a": 1, "id": "x"}, RecordMapping())
    changed = to_item({"id": "x", "a": 2, "b": [1, 2]}, RecordMapping())
    assert one.content_hash == reordered.content_hash != changed.content_hash
    assert one.content_hash == hashlib.sha256(one.body).hexdigest()
    assert json.loads(one.body) == one.raw
