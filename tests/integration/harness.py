"""Drive the product the way the Dagster daemon does, against the real local stack.

``Harness.tick()`` evaluates ``kafka_fetcher_sensor`` and applies its result (partitions,
cursor); ``Harness.launch()`` executes each requested run in a real subprocess through
``execute_job`` (so compute logs are captured as in production); ``Harness.report()``
evaluates the run status sensors for a finished run.
"""

from __future__ import annotations

import json
import multiprocessing
import urllib.request
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import dagster as dg

from amazoniax_dagster.clients.kafka import KafkaBus, Record, Topics
from amazoniax_dagster.core import run_tags
from amazoniax_dagster.definitions import defs
from amazoniax_dagster.devstack.local_stack import StackEndpoints
from resources import FetcherDBResource, FetchSettings, KafkaResource, OutputBucketResource
from sensors import kafka_fetcher_sensor, status_on_cancel, status_on_failure, status_on_success


def channel_files_job_def() -> dg.JobDefinition:
    """Module-level, so that ``dg.reconstructable`` can rebuild it in the run subprocess."""
    return defs.resolve_job_def("channel_files_job")


def fetcher_code_job_def() -> dg.JobDefinition:
    return defs.resolve_job_def("fetcher_code_job")


JOB_DEFS = {"channel_files_job": channel_files_job_def, "fetcher_code_job": fetcher_code_job_def}


def _partition_config(job_name: str, partition_key: str) -> dict[str, Any]:
    """The run config the daemon and the UI take from a partitioned job for a partition."""
    partitioned = JOB_DEFS[job_name]().partitioned_config
    if partitioned is None:
        return {}
    return dict(partitioned.get_run_config_for_partition_key(partition_key))


def _run_args(request: dg.RunRequest) -> tuple[str, dict[str, str], dict[str, Any]]:
    """Job name, tags and run config of a requested run, as the daemon launches it."""
    assert request.partition_key is not None
    run_tags = {
        **request.tags,
        "dagster/partition": request.partition_key,
        "dagster/run_key": request.run_key or "",
    }
    job_name = request.job_name or "channel_files_job"
    run_config = dict(request.run_config) or _partition_config(job_name, request.partition_key)
    return job_name, run_tags, run_config


def _execute_job(
    job_name: str,
    instance_ref: Any,
    run_tags: dict[str, str],
    run_config: dict[str, Any],
    result_to: Any,
) -> None:
    try:
        with dg.DagsterInstance.from_ref(instance_ref) as instance:
            result = dg.execute_job(
                dg.reconstructable(JOB_DEFS[job_name]),
                instance=instance,
                tags=run_tags,
                run_config=run_config,
            )
        result_to.send(("ok", result.run_id))
    except BaseException as exc:
        result_to.send(("error", f"{type(exc).__name__}: {exc}"))
        raise


def end_offsets(bus: KafkaBus, topic: str) -> dict[int, int]:
    """Where a topic ends now (tansu's ListOffsets is unreliable: read to the end instead)."""
    return bus.read(topic, {}, max_records=1_000_000, max_seconds=30).next_offsets


def read_json(bus: KafkaBus, topic: str, since: dict[int, int]) -> list[dict[str, Any]]:
    batch = bus.read(topic, since, max_records=10_000, max_seconds=10)
    return [json.loads(r.value) for r in batch.records if r.value is not None]


@dataclass
class Harness:
    stack: StackEndpoints
    instance: dg.DagsterInstance
    bus: KafkaBus
    topics: Topics = field(default_factory=Topics)
    cursor: str | None = None
    max_messages_per_tick: int = 500
    max_message_bytes: int = 1024 * 1024

    def resources(self) -> dict[str, Any]:
        return {
            "kafka": KafkaResource(
                bootstrap_servers=self.stack.kafka_bootstrap,
                max_messages_per_tick=self.max_messages_per_tick,
                max_message_bytes=self.max_message_bytes,
            ),
            "fetcher_db": FetcherDBResource(
                database_url=self.stack.database_url, secret_key=self.stack.secret_key
            ),
            "fetch_settings": FetchSettings(allowed_networks="127.0.0.0/8"),
            "output_bucket": OutputBucketResource(
                bucket=self.stack.output_bucket,
                endpoint_url=self.stack.s3_endpoint_url,
                access_key_id=self.stack.s3_access_key_id,
                secret_access_key=self.stack.s3_secret_access_key,
                region=self.stack.s3_region,
            ),
        }

    def start_at_end(self) -> None:
        self.cursor = json.dumps(
            {str(p): o for p, o in end_offsets(self.bus, self.topics.fetcher).items()}
        )

    def produce(self, message: dict[str, Any] | bytes, key: str = "k") -> None:
        value = message if isinstance(message, bytes) else json.dumps(message).encode()
        self.bus.publish(self.topics.fetcher, value, key=key.encode())

    def tick(self) -> dg.SensorResult:
        with dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            definitions=defs,
            resources=self.resources(),
        ) as context:
            result = kafka_fetcher_sensor(context)
        assert isinstance(result, dg.SensorResult)
        for request in result.dynamic_partitions_requests or []:
            assert isinstance(request, dg.AddDynamicPartitionsRequest)
            self.instance.add_dynamic_partitions(
                request.partitions_def_name, list(request.partition_keys)
            )
        if result.cursor is not None:
            self.cursor = result.cursor
        return result

    def launch(self, request: dg.RunRequest) -> dg.DagsterRun:
        """Execute a requested run like the daemon would (run_key and partition as tags)."""
        return self._execute(*_run_args(request))

    def launch_ui_run(self, channel_id: str) -> dg.DagsterRun:
        """A run started from the UI: a partition, no job tags."""
        return self._execute(
            "channel_files_job",
            {"dagster/partition": channel_id},
            _partition_config("channel_files_job", channel_id),
        )

    def start(self, request: dg.RunRequest) -> BaseProcess:
        """Start the run worker of ``request`` and return it without waiting (to kill it)."""
        worker, _ = self._spawn(*_run_args(request))
        return worker

    def _spawn(
        self, job_name: str, run_tags: dict[str, str], run_config: dict[str, Any]
    ) -> tuple[BaseProcess, Connection]:
        # A run worker is a process of its own, started after the environment was set: the
        # code location is imported there afresh (as the run launcher does).
        # Not a Pool: its workers are daemonic, and a multiprocess executor starts children.
        context = multiprocessing.get_context("spawn")
        receiver, sender = context.Pipe(duplex=False)
        worker = context.Process(
            target=_execute_job,
            args=(job_name, self.instance.get_ref(), run_tags, run_config, sender),
            name=f"run-worker-{job_name}",
        )
        worker.start()
        sender.close()
        return worker, receiver

    def _execute(
        self, job_name: str, run_tags: dict[str, str], run_config: dict[str, Any]
    ) -> dg.DagsterRun:
        worker, receiver = self._spawn(job_name, run_tags, run_config)
        try:
            outcome, value = receiver.recv()
        except EOFError as exc:
            died = f"the run worker of {job_name} died (exit {worker.exitcode})"
            raise RuntimeError(died) from exc
        finally:
            worker.join(timeout=60)
        if outcome != "ok":
            raise RuntimeError(f"the run worker of {job_name} failed: {value}")
        run = self.instance.get_run_by_id(value)
        assert run is not None
        return run

    def asset_checks(self, run: dg.DagsterRun) -> dict[str, Any]:
        """The asset check evaluations of ``run`` by check name (``.passed``, ``.metadata``)."""
        records = self.instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
        found: dict[str, Any] = {}
        for record in records:
            event = record.event_log_entry.dagster_event
            assert event is not None
            found[event.event_specific_data.check_name] = event.event_specific_data  # type: ignore[union-attr]
        return found

    def report(self, run: dg.DagsterRun) -> None:
        """Evaluate the run status sensor that matches how ``run`` ended."""
        sensors = {
            dg.DagsterRunStatus.SUCCESS: (status_on_success, dg.DagsterEventType.RUN_SUCCESS),
            dg.DagsterRunStatus.FAILURE: (status_on_failure, dg.DagsterEventType.RUN_FAILURE),
            dg.DagsterRunStatus.CANCELED: (status_on_cancel, dg.DagsterEventType.RUN_CANCELED),
        }
        sensor, event_type = sensors[run.status]
        records = self.instance.get_records_for_run(run.run_id, of_type=event_type).records
        event = records[-1].event_log_entry.dagster_event
        assert event is not None
        with dg.build_run_status_sensor_context(
            sensor_name=sensor.name,
            dagster_event=event,
            dagster_instance=self.instance,
            dagster_run=run,
            resources=self.resources(),
        ) as context:
            if run.status is dg.DagsterRunStatus.FAILURE:
                sensor(context.for_run_failure())
            else:
                sensor(context)

    def run_all(self, result: dg.SensorResult) -> list[dg.DagsterRun]:
        runs = [self.launch(r) for r in result.run_requests or []]
        for run in runs:
            self.report(run)
        return runs


def job_id_of(run: dg.DagsterRun) -> str:
    return run_tags.job_id_for_run(run.tags, run.run_id)


def s3_get_count(metrics_url: str, bucket: str) -> int:
    """GET requests the S3 server answered for ``bucket`` (from its Prometheus metrics)."""
    text = urllib.request.urlopen(metrics_url, timeout=10).read().decode()
    total = 0
    for line in text.splitlines():
        if line.startswith("SeaweedFS_s3_request_total{") and f'bucket="{bucket}"' in line:
            if 'type="GET"' in line:
                total += int(float(line.rsplit(" ", 1)[1]))
    return total


__all__ = ["Harness", "Record", "end_offsets", "job_id_of", "read_json", "s3_get_count"]
