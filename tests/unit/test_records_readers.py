"""Records read out of fetched files, and mapped to the unified schema."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from amazoniax_dagster.records.load import Counts, items_of
from amazoniax_dagster.records.mapping import RecordError, RecordMapping, parse_time, to_item
from amazoniax_dagster.records.readers import UnreadableFile, read_records

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
<entry><id>urn:a:1</id><title>First</title><link href="https://x.test/1"/>
<updated>2026-01-02T03:04:05Z</updated><summary>one</summary></entry>
<entry><id>urn:a:2</id><title>Second</title><link href="https://x.test/2"/>
<updated>2026-01-03T03:04:05Z</updated><summary>two</summary></entry>
</feed>"""

RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>c</title>
<item><guid>g-1</guid><title>A</title><link>https://y.test/a</link>
<pubDate>Tue, 10 Jun 2025 04:00:00 GMT</pubDate><description>d</description></item>
</channel></rss>"""


def records(key: str, data: bytes) -> list[dict[str, object]]:
    return [r.record for r in read_records(key, io.BytesIO(data)) if r.record is not None]


def test_jsonl_streams_objects_and_reports_bad_lines_without_stopping() -> None:
    data = b'{"id": 1}\nnot json\n\n[1, 2]\n{"id": 2}'
    reads = list(read_records("x/a.jsonl", io.BytesIO(data)))
    assert [r.record for r in reads if r.record] == [{"id": 1}, {"id": 2}]
    assert [r.position for r in reads if r.error] == [1, 2]


def test_json_document_array_envelope_and_single_object() -> None:
    assert records("a.json", b'[{"id": 1}, {"id": 2}]') == [{"id": 1}, {"id": 2}]
    assert records("a.json", b'{"meta": {}, "results": [{"id": 3}]}') == [{"id": 3}]
    assert records("a.json", b'{"data": {"items": [{"k": 1}, {"k": 2}]}}') == [{"k": 1}, {"k": 2}]
    assert records("a.json", b'{"id": 9, "title": "x"}') == [{"id": 9, "title": "x"}]
    # no name: detected from the first bytes
    assert records("download", b' [{"id": 4}]') == [{"id": 4}]
    with pytest.raises(UnreadableFile):
        records("a.json", b'{"id": ')


def test_csv_in_a_legacy_encoding_and_tsv_with_a_short_row() -> None:
    rows = [
        ("1", "Le café crème est très apprécié à Genève"),
        ("2", "Hôtel près de la rivière, où l'été dure"),
        ("3", "Déjà vu: naïve façade, cœur léger"),
    ]
    text = "id;title\n" + "".join(f"{i};{t}\n" for i, t in rows)
    assert records("a.csv", text.encode("cp1252")) == [{"id": i, "title": t} for i, t in rows]
    cyrillic = "id,title\n1,Привет как дела сегодня утром\n2,Добро пожаловать в наш город\n"
    assert [r["title"] for r in records("r.csv", cyrillic.encode("cp1251"))] == [
        "Привет как дела сегодня утром",
        "Добро пожаловать в наш город",
    ]
    reads = list(read_records("b.tsv", io.BytesIO(b"id\tname\n1\ta\n2\n3\tc\n")))
    assert [r.record for r in reads if r.record] == [
        {"id": "1", "name": "a"},
        {"id": "3", "name": "c"},
    ]
    assert [r.error for r in reads if r.error] == ["row has 1 fields, the header 2"]


def test_atom_and_rss_entries_map_to_ids_links_and_dates() -> None:
    atom = [to_item(r, RecordMapping()) for r in records("f.atom", ATOM)]
    assert [(i.external_id, i.title, i.url) for i in atom] == [
        ("urn:a:1", "First", "https://x.test/1"),
        ("urn:a:2", "Second", "https://x.test/2"),
    ]
    assert atom[0].published_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    (rss,) = [to_item(r, RecordMapping()) for r in records("feed.xml", RSS)]
    assert (rss.external_id, rss.url, rss.content) == ("g-1", "https://y.test/a", "d")
    assert rss.published_at == datetime(2025, 6, 10, 4, 0, tzinfo=UTC)


def test_plain_xml_repeated_elements_are_records() -> None:
    data = (
        b"<catalog><book sku='b1'><name>One</name></book>"
        b"<book sku='b2'><name>Two</name></book></catalog>"
    )
    assert records("c.xml", data) == [{"sku": "b1", "name": "One"}, {"sku": "b2", "name": "Two"}]
    with pytest.raises(UnreadableFile):
        records("bad.xml", b"<a><b></a>")
    with pytest.raises(UnreadableFile):  # entity expansion is refused, not run
        records("bomb.xml", b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>')


def test_mapping_paths_win_over_detection() -> None:
    mapping = RecordMapping(external_id="meta.sku", title="names.0", published_at="ts")
    item = to_item({"id": 1, "meta": {"sku": "S-9"}, "names": ["N"], "ts": 1767225600}, mapping)
    assert (item.external_id, item.title) == ("S-9", "N")
    assert item.published_at == datetime(2026, 1, 1, tzinfo=UTC)


def test_detection_finds_id_like_keys_and_hashes_records_without_one() -> None:
    assert to_item({"productId": 77, "name": "p"}, RecordMapping()).external_id == "77"
    first = to_item({"a": 1, "b": 2}, RecordMapping())
    again = to_item({"b": 2, "a": 1}, RecordMapping())
    assert first.external_id == again.external_id
    assert first.external_id.startswith("sha256:")
    assert to_item({"a": 2, "b": 2}, RecordMapping()).external_id != first.external_id


def test_required_fields_and_bad_dates_fail_the_record_not_the_file() -> None:
    mapping = RecordMapping(title="headline", required=("title",))
    reads = read_records(
        "r.jsonl",
        io.BytesIO(
            b'{"id": 1, "headline": "h"}\n{"id": 2}\n{"id": 3, "headline": "x", "date": "soon"}\n'
        ),
    )
    counts = Counts()
    items = list(items_of(reads, mapping, counts))
    assert [i.external_id for i in items] == ["1"]
    assert (counts.extracted, counts.failed) == (3, 2)
    assert "title is missing" in counts.errors[0]
    assert "not a date" in counts.errors[1]


def test_timestamps_in_the_usual_shapes() -> None:
    want = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    for value in (
        "2026-03-04T05:06:07Z",
        "2026-03-04T05:06:07",
        "Wed, 04 Mar 2026 05:06:07 +0000",
        1772600767,
        1772600767000,
        "1772600767",
    ):
        assert parse_time(value) == want, value
    with pytest.raises(RecordError):
        parse_time("yesterday")
