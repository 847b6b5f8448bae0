"""channel_records' engine on the real stack: files in S3 -> unified_items in PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from amazoniax_dagster.clients.output_bucket import OutputBucket, OutputSettings
from amazoniax_dagster.db import FetcherDB
from amazoniax_dagster.devstack.local_stack import StackEndpoints
from amazoniax_dagster.records.engine import Closeable, load_folder
from amazoniax_dagster.records.mapping import RecordMapping

pytestmark = pytest.mark.integration

ATOM = """<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">
<title>news</title>{entries}</feed>"""
ENTRY = """<entry><id>urn:n:{i}</id><title>News {i}</title><link href="https://n.test/{i}"/>
<updated>2026-02-0{i}T10:00:00Z</updated><summary>s{i}</summary></entry>"""


@pytest.fixture(scope="module")
def bucket(stack: StackEndpoints) -> Iterator[OutputBucket]:
    out = OutputBucket(
        OutputSettings(
            bucket=stack.output_bucket,
            prefix="records",
            endpoint_url=stack.s3_endpoint_url,
            access_key_id=stack.s3_access_key_id,
            secret_access_key=stack.s3_secret_access_key,
            region=stack.s3_region,
        )
    )
    yield out
    out.close()


def files(products: list[dict[str, Any]]) -> dict[str, bytes]:
    csv_rows = "".join(f"{i},Row {i},https://c.test/{i}\n" for i in range(1, 5))
    return {
        "api/products.json": json.dumps({"data": products}).encode(),
        "exports/rows.csv": f"id,title,url\n{csv_rows}".encode(),
        "feeds/news.atom": ATOM.format(entries="".join(ENTRY.format(i=i) for i in (1, 2))).encode(),
        "docs/manual.pdf": b"%PDF-1.4 not records",
    }


PRODUCTS = [{"sku": f"p{i}", "name": f"Product {i}", "price": i} for i in range(1, 4)]


def put_job(bucket: OutputBucket, channel: str, job: str, content: dict[str, bytes]) -> str:
    for relative, data in content.items():
        bucket.put_bytes(bucket.key_for(channel, job, relative), data)
    return bucket.job_folder(channel, job)


def rows(db: FetcherDB, channel: str) -> list[tuple[Any, ...]]:
    with db.database.transaction() as sql:
        return sql.all(
            "SELECT source_type, external_id, title, updated_at = created_at FROM unified_items"
            " WHERE source_name = %s ORDER BY external_id",
            (channel,),
        )


def load(db: FetcherDB, folder: Any, channel: str, job: str, prefix: str) -> Any:
    return load_folder(
        db.database,
        folder,
        prefix,
        channel_id=channel,
        job_id=job,
        source_type="api",
        mapping=RecordMapping(external_id="sku"),
    )


def test_every_record_once_then_nothing_new_then_one_update(
    fetcher_db: FetcherDB, bucket: OutputBucket
) -> None:
    channel = f"rec-{uuid.uuid4().hex[:8]}"
    first = load(fetcher_db, bucket, channel, "j1", put_job(bucket, channel, "j1", files(PRODUCTS)))
    assert first.status == "success"
    assert (first.files, first.other) == (3, 1)
    assert (first.counts.extracted, first.counts.inserted, first.counts.failed) == (9, 9, 0)
    loaded = rows(fetcher_db, channel)
    assert sorted(r[1] for r in loaded) == sorted(
        ["p1", "p2", "p3", "1", "2", "3", "4", "urn:n:1", "urn:n:2"]
    )
    assert {r[2] for r in loaded} >= {"Product 1", "Row 4", "News 2"}

    # The same files in a new job: nothing inserted, nothing rewritten.
    again = load(fetcher_db, bucket, channel, "j2", put_job(bucket, channel, "j2", files(PRODUCTS)))
    assert (again.counts.inserted, again.counts.updated, again.counts.unchanged) == (0, 0, 9)
    assert rows(fetcher_db, channel) == loaded

    # One product's price changed: exactly that row is updated.
    changed = [dict(p, price=99) if p["sku"] == "p2" else p for p in PRODUCTS]
    third = load(fetcher_db, bucket, channel, "j3", put_job(bucket, channel, "j3", files(changed)))
    assert (third.counts.inserted, third.counts.updated) == (0, 1)
    after = rows(fetcher_db, channel)
    assert [r[1] for r in after if not r[3]] == ["p2"]
    assert len(after) == 9


def test_malformed_records_end_partial_success_and_the_rest_load(
    fetcher_db: FetcherDB, bucket: OutputBucket
) -> None:
    channel = f"rec-{uuid.uuid4().hex[:8]}"
    lines = [json.dumps({"id": i, "title": f"t{i}"}) for i in range(6)]
    lines[2] = '{"id": 2, "title": '
    lines[4] = "[4]"
    prefix = put_job(bucket, channel, "j1", {"items.jsonl": "\n".join(lines).encode()})
    result = load_folder(
        fetcher_db.database,
        bucket,
        prefix,
        channel_id=channel,
        job_id="j1",
        source_type="website",
        mapping=RecordMapping(),
    )
    assert result.status == "partial_success"
    assert (result.counts.extracted, result.counts.inserted, result.counts.failed) == (6, 4, 2)
    assert sorted(r[1] for r in rows(fetcher_db, channel)) == ["0", "1", "3", "5"]


class Interrupting:
    """The bucket, except that reading ``key`` stops half-way, as a killed run would."""

    def __init__(self, bucket: OutputBucket, key: str) -> None:
        self.bucket, self.key = bucket, key

    def list_keys(self, prefix: str) -> list[str]:
        return self.bucket.list_keys(prefix)

    def open(self, key: str) -> Closeable:
        stream = self.bucket.open(key)
        if key != self.key:
            return stream
        outer = self

        class Broken:
            def read(self, size: int = -1, /) -> bytes:
                data = stream.read(min(size, 4096) if size > 0 else 4096)
                if outer.key and data:
                    raise KeyboardInterrupt("killed mid-file")
                return data

            def close(self) -> None:
                stream.close()

        return Broken()


def test_a_run_stopped_mid_load_resumes_with_no_duplicates_and_nothing_missing(
    fetcher_db: FetcherDB, bucket: OutputBucket
) -> None:
    channel = f"rec-{uuid.uuid4().hex[:8]}"
    big = "\n".join(json.dumps({"id": f"b{i}", "title": f"big {i}"}) for i in range(2000))
    content = {**files(PRODUCTS), "big/items.jsonl": big.encode()}
    prefix = put_job(bucket, channel, "j1", content)
    broken_key = bucket.key_for(channel, "j1", "big/items.jsonl")
    with pytest.raises(KeyboardInterrupt):
        load(fetcher_db, Interrupting(bucket, broken_key), channel, "j1", prefix)
    before = len(rows(fetcher_db, channel))
    assert before == 3 + 0  # api/ loaded before big/ was cut; big/ rolled back whole

    resumed = load(fetcher_db, bucket, channel, "j1", prefix)
    assert resumed.resumed == 1  # api/products.json is not read again
    ids = [r[1] for r in rows(fetcher_db, channel)]
    assert len(ids) == len(set(ids)) == 3 + 2000 + 4 + 2


def test_text_with_tabs_newlines_backslashes_and_quotes_is_stored_as_read(
    fetcher_db: FetcherDB, bucket: OutputBucket
) -> None:
    channel = f"rec-{uuid.uuid4().hex[:8]}"
    title = 'a\tb\nc\\d "e" \\N \r f\u00e9'
    record = {"id": "x", "title": title, "nested": {"k": "v\\t"}}
    prefix = put_job(bucket, channel, "j1", {"one.json": json.dumps([record]).encode()})
    load(fetcher_db, bucket, channel, "j1", prefix)
    with fetcher_db.database.transaction() as sql:
        stored = sql.first(
            "SELECT title, raw FROM unified_items WHERE source_name = %s", (channel,)
        )
    assert stored == (title, record)
