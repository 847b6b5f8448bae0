"""The read API over HTTP, served by uvicorn on a free port, on the real stack's PostgreSQL."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from amazoniax_dagster.clients.output_bucket import OutputSettings
from amazoniax_dagster.db import FetcherDB
from amazoniax_dagster.devstack.local_stack import StackEndpoints
from amazoniax_dagster.devstack.ports import free_port
from amazoniax_dagster.records.api.app import ApiSettings, create_app
from amazoniax_dagster.records.load import Counts, upsert
from amazoniax_dagster.records.mapping import RecordMapping, to_item

pytestmark = pytest.mark.integration

TOKEN = "s3cret-token"


def serve(settings: ApiSettings) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:  # uvicorn sets it once the socket listens
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join()


@pytest.fixture(scope="module")
def api(stack: StackEndpoints) -> Iterator[str]:
    output = OutputSettings(
        bucket=stack.output_bucket,
        endpoint_url=stack.s3_endpoint_url,
        access_key_id=stack.s3_access_key_id,
        secret_access_key=stack.s3_secret_access_key,
        region=stack.s3_region,
    )
    settings = ApiSettings(
        database_url=stack.database_url,
        kafka_bootstrap=stack.kafka_bootstrap,
        output=output,
        token=TOKEN,
    )
    yield from serve(settings)


@pytest.fixture(scope="module")
def channel(fetcher_db: FetcherDB) -> str:
    """A channel with 25 items, one a day from 2026-01-01; every third mentions "rain"."""
    name = f"api-{uuid.uuid4().hex[:8]}"
    start = datetime(2026, 1, 1, tzinfo=UTC)
    records = [
        {
            "id": f"i{n:02d}",
            "title": f"Item {n}" + (" rain" if n % 3 == 0 else ""),
            "published_at": (start + timedelta(days=n)).isoformat(),
        }
        for n in range(25)
    ]
    with fetcher_db.database.transaction() as sql:
        upsert(
            sql.cursor,
            (to_item(r, RecordMapping()) for r in records),
            source_type="api",
            source_name=name,
            job_id="j1",
            file_key="k",
            counts=Counts(),
        )
    return name


def get(api: str, path: str, **params: Any) -> httpx.Response:
    return httpx.get(
        api + path, params=params, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    )


def test_the_token_guards_data_but_not_health(api: str) -> None:
    assert httpx.get(api + "/data", timeout=30).status_code == 401
    wrong = httpx.get(api + "/data", headers={"Authorization": "Bearer nope"}, timeout=30)
    assert wrong.status_code == 401
    assert TOKEN not in wrong.text
    assert httpx.get(api + "/health", timeout=30).status_code == 200
    assert "/data" in httpx.get(api + "/openapi.json", timeout=30).json()["paths"]


def test_pages_cover_every_item_once_in_order(api: str, channel: str) -> None:
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"channel": channel, "limit": 7}
        if cursor:
            params["cursor"] = cursor
        body = get(api, "/data", **params).json()
        seen += [i["external_id"] for i in body["items"]]
        pages += 1
        cursor = body["next"]
        if cursor is None:
            break
    assert pages == 4
    assert seen == [f"i{n:02d}" for n in range(25)]
    assert get(api, "/data", cursor="garbage!").status_code == 400
    assert get(api, "/data", limit=1001).status_code == 422


def test_filters_by_text_and_publication_window(api: str, channel: str) -> None:
    rain = get(api, "/data", channel=channel, q="RAIN").json()["items"]
    assert [i["external_id"] for i in rain] == [f"i{n:02d}" for n in range(0, 25, 3)]
    window = get(
        api, "/data", channel=channel, since="2026-01-05T00:00:00Z", until="2026-01-08T00:00:00Z"
    ).json()["items"]
    assert [i["external_id"] for i in window] == ["i04", "i05", "i06"]
    assert get(api, "/data", channel=channel, source_type="rss").json()["items"] == []


def test_stats_and_metrics(api: str, channel: str) -> None:
    (row,) = get(api, "/stats", channel=channel).json()["channels"]
    assert (row["channel"], row["items"]) == (channel, 25)
    families = {f.name: f for f in text_string_to_metric_families(get(api, "/metrics").text)}
    up = {s.labels["component"]: s.value for s in families["amazoniax_component_up"].samples}
    assert up == {"database": 1.0, "kafka": 1.0, "s3": 1.0}
    assert families["amazoniax_items"].samples[0].value >= 25
    assert "amazoniax_dead_letters" in families


def test_health_is_unhealthy_when_the_database_does_not_answer(stack: StackEndpoints) -> None:
    gone = f"postgresql://postgres@127.0.0.1:{free_port()}/amazoniax?connect_timeout=2"
    for url in serve(ApiSettings(database_url=gone, kafka_bootstrap=stack.kafka_bootstrap)):
        response = httpx.get(url + "/health", timeout=30)
        assert response.status_code == 503
        body = response.json()
        assert body["components"]["database"]["healthy"] is False
        assert body["components"]["kafka"]["healthy"] is True


def test_health_answers_when_s3_does_not(stack: StackEndpoints, silent_port: int) -> None:
    output = OutputSettings(
        bucket=stack.output_bucket,
        endpoint_url=f"http://127.0.0.1:{silent_port}",
        access_key_id=stack.s3_access_key_id,
        secret_access_key=stack.s3_secret_access_key,
        region=stack.s3_region,
    )
    settings = ApiSettings(
        database_url=stack.database_url, kafka_bootstrap=stack.kafka_bootstrap, output=output
    )
    for url in serve(settings):
        response = httpx.get(url + "/health", timeout=30)  # one request, no retries behind it
        assert response.status_code == 503
        s3 = response.json()["components"]["s3"]
        assert s3["healthy"] is False and "timed out" in s3["error"], s3
        assert response.json()["components"]["database"]["healthy"] is True


def _durations(api: str) -> dict[tuple[str, ...], float]:
    """Samples of the job duration histogram, keyed by (name suffix, status, le)."""
    text = get(api, "/metrics").text
    (family,) = [
        f
        for f in text_string_to_metric_families(text)
        if f.name == "amazoniax_job_duration_seconds"
    ]
    return {
        (s.name.rsplit("_", 1)[-1], s.labels["status"], s.labels.get("le", "")): s.value
        for s in family.samples
        if s.labels["source_type"] == "html"
    }


def test_job_durations_are_a_histogram_by_source_type_and_status(
    api: str, fetcher_db: FetcherDB
) -> None:
    before = _durations(api)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    jobs = [("success", 0.5), ("success", 20.0), ("success", 700.0), ("failed", 3.0)]
    with fetcher_db.database.transaction() as sql:
        for status, seconds in jobs:
            sql.execute(
                "INSERT INTO job_runs (job_id, channel_id, source_type, flow, status,"
                " metadata_json, parsers_published, status_published, started_at, finished_at)"
                " VALUES (%s, 'metrics-chan', 'html', 'normal', %s, '{}', false, false, %s, %s)",
                (f"m-{uuid.uuid4().hex[:8]}", status, start, start + timedelta(seconds=seconds)),
            )
        # A job still running has no duration yet; a queued one has waited two hours.
        sql.execute(
            "INSERT INTO job_runs (job_id, channel_id, source_type, flow, status,"
            " metadata_json, parsers_published, status_published, started_at)"
            " VALUES (%s, 'metrics-chan', 'html', 'normal', 'running', '{}', false, false, %s)",
            (f"m-{uuid.uuid4().hex[:8]}", start),
        )
        sql.execute(
            "INSERT INTO job_runs (job_id, channel_id, source_type, flow, status,"
            " metadata_json, parsers_published, status_published, created_at)"
            " VALUES (%s, 'metrics-chan', 'html', 'normal', 'queued', '{}', false, false,"
            " now() - interval '2 hours')",
            (f"m-{uuid.uuid4().hex[:8]}",),
        )
    after = _durations(api)
    families = {f.name: f for f in text_string_to_metric_families(get(api, "/metrics").text)}
    with fetcher_db.database.transaction() as sql:
        sql.execute("DELETE FROM job_runs WHERE channel_id = 'metrics-chan'")
    assert families["amazoniax_oldest_queued_job_age_seconds"].samples[0].value >= 7200
    added = {key: value - before.get(key, 0.0) for key, value in after.items()}
    assert added[("count", "success", "")] == 3 and added[("sum", "success", "")] == 720.5
    assert [
        added[("bucket", "success", le)] for le in ("1.0", "15.0", "30.0", "600.0", "1800.0")
    ] == [1, 1, 2, 2, 3]
    assert added[("bucket", "success", "+Inf")] == 3
    assert added[("count", "failed", "")] == 1 and added[("bucket", "failed", "5.0")] == 1
    assert not [key for key in after if key[1] == "running"]
