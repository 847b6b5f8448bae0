"""The read API (FastAPI): ``/health``, ``/data``, ``/stats``, ``/metrics``, docs at ``/docs``.

Built by ``create_app`` from explicit settings (the CLI reads them from the environment); an
optional bearer token guards everything but ``/health`` and the docs.
"""

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from amazoniax_dagster.clients.output_bucket import OutputBucket, OutputSettings
from amazoniax_dagster.db.pg import Database
from amazoniax_dagster.records.api import health, job_metrics, queries


@dataclass(frozen=True)
class ApiSettings:
    database_url: str = field(repr=False)
    kafka_bootstrap: str | None = None
    output: OutputSettings | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)


def create_app(settings: ApiSettings) -> FastAPI:
    db = Database(settings.database_url, pool_size=2)
    bucket = OutputBucket(settings.output, max_connections=2) if settings.output else None
    bearer = HTTPBearer(auto_error=False)

    def authorized(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if settings.token is None:
            return
        given = credentials.credentials if credentials else ""
        if not hmac.compare_digest(given.encode(), settings.token.encode()):
            raise HTTPException(
                401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
            )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        db.close()
        if bucket is not None:
            bucket.close()

    app = FastAPI(title="amazoniax read API", version="1", lifespan=lifespan)
    guarded = [Depends(authorized)]

    def components() -> list[health.Component]:
        checks = [health.probe("database", health.database_check(db))]
        if settings.kafka_bootstrap:
            checks.append(health.probe("kafka", health.kafka_check(settings.kafka_bootstrap)))
        if bucket is not None:
            checks.append(health.probe("s3", health.s3_check(bucket)))
        return checks

    @app.get("/health", summary="Each component's health and latency; 503 when one is down")
    def get_health() -> JSONResponse:
        found = components()
        ok = all(c.healthy for c in found)
        body = {
            "status": "healthy" if ok else "unhealthy",
            "components": {c.name: c.as_dict() for c in found},
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/data", dependencies=guarded, summary="Items, oldest first, a page at a time")
    def get_data(
        channel: str | None = None,
        source_type: str | None = None,
        q: Annotated[str | None, Query(description="text in the title or content")] = None,
        since: Annotated[datetime | None, Query(description="published at or after")] = None,
        until: Annotated[datetime | None, Query(description="published before")] = None,
        limit: Annotated[int, Query(ge=1, le=queries.MAX_LIMIT)] = 100,
        cursor: Annotated[str | None, Query(description="`next` of the previous page")] = None,
    ) -> dict[str, Any]:
        try:
            after = queries.decode_cursor(cursor) if cursor else None
        except queries.BadCursor as exc:
            raise HTTPException(400, str(exc)) from None
        where = queries.ItemFilter(channel, source_type, q, since, until)
        page, next_cursor = queries.items(db, where, limit=limit, after=after)
        return {"items": page, "count": len(page), "next": next_cursor}

    @app.get("/stats", dependencies=guarded, summary="Jobs, files and records per channel")
    def get_stats(channel: str | None = None) -> dict[str, Any]:
        return {"channels": queries.stats(db, channel)}

    @app.get("/metrics", dependencies=guarded, summary="Prometheus text format")
    def get_metrics() -> Response:
        from prometheus_client import CollectorRegistry, Gauge, generate_latest
        from prometheus_client.exposition import CONTENT_TYPE_LATEST

        registry = CollectorRegistry()
        found = components()
        up = Gauge(
            "amazoniax_component_up",
            "1 when the component answers",
            ["component"],
            registry=registry,
        )
        latency = Gauge(
            "amazoniax_component_latency_seconds",
            "Time the health check took",
            ["component"],
            registry=registry,
        )
        for c in found:
            up.labels(c.name).set(1 if c.healthy else 0)
            latency.labels(c.name).set(c.latency_ms / 1000)
        if all(c.healthy for c in found if c.name == "database"):
            counts = queries.metric_counts(db)
            jobs = Gauge("amazoniax_jobs", "Jobs by status", ["status"], registry=registry)
            for status, n in counts["jobs"].items():
                jobs.labels(status).set(n)
            for name, text in (
                ("records_loaded", "Records loaded into unified_items"),
                ("records_failed", "Records that failed to normalise"),
                ("items", "Rows in unified_items"),
                ("dead_letters", "Messages refused at intake"),
                ("queue_depth", "Jobs queued and not started"),
            ):
                Gauge(f"amazoniax_{name}", text, registry=registry).set(counts[name])
            registry.register(job_metrics.JobDurationCollector(db))
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(Exception)
    def internal(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, 500)

    return app
