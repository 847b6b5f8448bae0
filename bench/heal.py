"""Heal on the eight demo sites, no LLM, no Dagster: does a changed site get a working ``_v2``?

    uv run python -m bench.heal                          # all eight sites
    uv run python -m bench.heal --sites html_list,rss_feed

One LocalStack (Kafka, S3, PostgreSQL, a bare Git repository as the fetchers' remote) for the
whole run; the product's own pieces throughout (``FetcherDB``, ``OutputBucket``, ``KafkaBus``,
``FetcherRepo``, ``RegistryCatalog``, ``SiteGenerator``, ``channel_job.execute``,
``heal.after_failure``) and real Chromium. Per site of the demo catalogue,
served on 127.0.0.1 and switched between variants in place (same address, so same site):

1. **v1**: two channels with the site's channel config are stored; ``SiteGenerator.generate``
   (capture → synthesize → validate → publish) makes ``_v1`` for channel A, channel B is mapped
   to it; each channel runs one job (``execute``, no generator) so both have history.
2. **v2**: the site is switched to its redesign; each channel runs again on ``_v1``. Expected:
   the job fails as ``site_changed``. A change that leaves ``_v1`` working is reported as
   "v1 still works" (every ground-truth id fetched), not as a failure of the benchmark; a
   ``_v1`` that runs but misses records is reported as a silent loss.
3. **heal**: heal-mode jobs of channel A (``execute`` with ``Flow.HEAL`` and the
   ``SiteGenerator``), requested as the product requests them: ``heal.after_failure`` on the
   failed job (the call a failed run makes) names the heal job, and again after each failed
   heal job, until ``max_heal_retries`` (counted by the product from ``job_runs``, flow
   ``heal``) are used and it answers ``human_review``. Where it requests none (``_v1`` still
   ran, or the failure is not one heal addresses) one heal job is run anyway, marked
   ``forced``. In a heal job ``choose_fetcher`` hands the generator the current version as
   baseline; a candidate is generated, validated on every mapped channel against its
   history, published as ``_v2`` (both channels remapped), and the job runs channel A on it.
4. **channels on v2**: both channels run once more; the record ids in every file each job
   fetched (uploaded now, or a duplicate of a file the channel delivered before: read back
   from the output bucket by content hash) are compared with ``site.ground_truth()``
   (``bench.codegen.ids_in_file``). OK = every id on both channels, both jobs on ``_v2``.
5. **broken**: the site loses its data; channel A's job must fail, then heal jobs follow as
   in 3. OK = the job failed in a way that leads to heal or review, every heal attempt
   fails, the last good version stays mapped on both channels and stays the newest
   published one, and the last job ends as ``requires_human_review`` with at least
   ``max_heal_retries`` heal jobs counted since the channel's last success.

The channels' retry delay is set to 0.5 s (production default 30 s; the count stays 3) so a
failing fetch does not wait minutes; ``max_heal_retries`` stays 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from amazoniax_dagster.clients.kafka import KafkaBus, Topics
from amazoniax_dagster.clients.output_bucket import OutputBucket, OutputSettings
from amazoniax_dagster.core.fetcher_names import PROVENANCE_FILE, candidate_branch
from amazoniax_dagster.core.messages import Flow, SourceType, WebSourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.core.sealing import SecretCipher
from amazoniax_dagster.core.sites import structure_id
from amazoniax_dagster.db import FetcherDB, RetryConfig
from amazoniax_dagster.db.fetcher_versions import FetcherVersion
from amazoniax_dagster.devstack.demo_sites import CATALOG, RunningSite, serve
from amazoniax_dagster.devstack.local_stack import StackEndpoints
from amazoniax_dagster.fetchers.base import LoadedFetcher
from amazoniax_dagster.fetchers.catalog import RegistryCatalog
from amazoniax_dagster.fetchers.registry import FetcherRepo
from amazoniax_dagster.fetchers.routing import GenerationRequest
from amazoniax_dagster.jobs.channel_job import JobOutcome, execute
from amazoniax_dagster.jobs.heal import TRANSIENT_STREAK, after_failure
from amazoniax_dagster.jobs.services import JobRequest, JobServices
from bench.codegen import ids_in_file
from bench.common import Row, local_stack, print_table, write_results
from fetcher_codegen.generator import SiteGenerator

RETRY = RetryConfig(max_simple_retries=3, max_heal_retries=2, retry_delay_seconds=0.5)
READ_MAX_BYTES = 256 * 1024 * 1024


# --------------------------------------------------------------------------- the product's pieces


@dataclass
class Product:
    """The services a job needs, built once over the local stack."""

    db: FetcherDB
    output: OutputBucket
    bus: KafkaBus
    repo: FetcherRepo
    policy: NetworkPolicy
    remote_git_dir: str = ""  # the bare repository behind ``repo`` (candidate branches)
    topics: Topics = field(default_factory=Topics)

    @classmethod
    def open(cls, ep: StackEndpoints) -> Product:
        db = FetcherDB(ep.database_url, SecretCipher(ep.secret_key))
        db.migrate()
        db.set_retry_config(RETRY)
        output = OutputBucket(
            OutputSettings(
                bucket=ep.output_bucket,
                endpoint_url=ep.s3_endpoint_url,
                access_key_id=ep.s3_access_key_id,
                secret_access_key=ep.s3_secret_access_key,
                region=ep.s3_region,
            )
        )
        repo = FetcherRepo(ep.fetchers_repo_path, remote_url=ep.fetchers_remote_url)
        policy = NetworkPolicy.from_env("127.0.0.0/8")
        bus = KafkaBus(ep.kafka_bootstrap, client_id="bench-heal")
        remote = urlsplit(ep.fetchers_remote_url).path
        return cls(db, output, bus, repo, policy, remote_git_dir=unquote(remote))

    def close(self) -> None:
        self.output.close()
        self.bus.close()
        self.db.close()

    def generator(self) -> SiteGenerator:
        return SiteGenerator(self.db, self.output, self.repo, self.policy)

    def services(self, generator: TimedGenerator | None = None) -> JobServices:
        return JobServices(
            db=self.db,
            output=self.output,
            bus=self.bus,
            topics=self.topics,
            policy=self.policy,
            fetcher_catalog=lambda: RegistryCatalog(self.db, self.repo),
            generator=generator,
        )


@dataclass
class TimedGenerator:
    """The product's ``SiteGenerator`` as the job's generator, timed; remembers what it was
    asked (the heal baseline) and how it ended."""

    inner: SiteGenerator
    calls: list[dict[str, Any]] = field(default_factory=list)

    def generate(self, request: GenerationRequest) -> LoadedFetcher:
        call: dict[str, Any] = {
            "heal": request.heal,
            "baseline": request.current.name if request.current else None,
        }
        self.calls.append(call)
        started = time.perf_counter()
        try:
            loaded = self.inner.generate(request)
        except Exception as exc:
            call.update(error=f"{type(exc).__name__}: {str(exc)[:300]}")
            raise
        finally:
            call["seconds"] = round(time.perf_counter() - started, 2)
        call["fetcher"] = loaded.name
        return loaded


# --------------------------------------------------------------------------- one job


@dataclass
class ChannelState:
    """What the benchmark knows of one channel: content hash -> key of every file it has
    delivered (to read back the files a later job classified as duplicates)."""

    channel_id: str
    keys_by_hash: dict[str, str] = field(default_factory=dict)


def run_job(
    product: Product,
    channel: ChannelState,
    job_id: str,
    *,
    flow: Flow = Flow.EXISTING,
    generator: TimedGenerator | None = None,
) -> tuple[JobOutcome, dict[str, Any]]:
    started = time.perf_counter()
    outcome = execute(
        JobRequest(job_id=job_id, channel_id=channel.channel_id, flow=flow),
        product.services(generator),
    )
    info: dict[str, Any] = {
        "job_id": job_id,
        "ok": outcome.ok,
        "seconds": round(time.perf_counter() - started, 2),
    }
    if not outcome.ok:
        info.update(error_class=outcome.error_class, error=(outcome.error_text or "")[:300])
        return outcome, info
    assert outcome.result is not None
    for o in outcome.result.outcomes:
        if o.s3_key is not None and not o.quarantined:
            channel.keys_by_hash.setdefault(o.content_hash, o.s3_key)
    info.update(fetcher=outcome.result.extra.get("fetcher"), files=len(outcome.result.outcomes))
    info["summary"] = {
        k: v
        for k, v in outcome.result.summary().items()
        if k in ("new", "updated", "duplicate", "files_uploaded")
    }
    return outcome, info


def fetched_ids(product: Product, channel: ChannelState, outcome: JobOutcome) -> set[str]:
    """Record ids in every file the job fetched, read back from the output bucket."""
    assert outcome.result is not None
    ids: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="bench-heal-ids-") as tmp:
        for i, o in enumerate(outcome.result.outcomes):
            key = o.s3_key or channel.keys_by_hash.get(o.content_hash)
            if key is None:
                continue
            path = Path(tmp) / f"{i}-{PurePosixPath(o.remote.relative_path).name}"
            path.write_bytes(product.output.read_head(key, READ_MAX_BYTES))
            try:
                ids |= ids_in_file(path)
            except ValueError:  # not parseable as its suffix says (e.g. an error page)
                continue
    return ids


def ids_check(
    product: Product, channel: ChannelState, outcome: JobOutcome, site: RunningSite
) -> dict[str, Any]:
    expected = {str(r["id"]) for r in site.ground_truth()}
    if not outcome.ok:
        return {"all_ids": False, "expected_ids": len(expected), "fetched_ids": 0}
    got = fetched_ids(product, channel, outcome)
    missing = sorted(expected - got)
    return {
        "all_ids": bool(expected) and not missing,
        "expected_ids": len(expected),
        "fetched_ids": len(expected & got),
        "missing_ids": missing[:5],
    }


def validation_of(product: Product, version: FetcherVersion | None) -> dict[str, Any]:
    if version is None:
        return {}
    provenance = product.repo.read(version.fetcher_name).provenance
    return dict(provenance.get("validation") or {})


def describe_break(jobs: list[dict[str, Any]]) -> str:
    """How _v1 fared on the redesign, per channel kind of outcome."""
    parts = []
    for j in jobs:
        if not j["ok"]:
            parts.append(str(j.get("error_class")))
        elif j.get("all_ids"):
            parts.append("v1 still works")
        else:
            parts.append(
                f"v1 runs, {j.get('fetched_ids')} of {j.get('expected_ids')} ids (silent loss)"
            )
    return " / ".join(dict.fromkeys(parts))


def heal_loop(product: Product, channel: ChannelState, failed_job: str) -> dict[str, Any]:
    """Heal-mode jobs after ``failed_job`` as the product asks for them: ``after_failure``
    (what a failed run calls) decides and names the next heal job, up to
    ``max_heal_retries``. When it asks for none (the job did not fail, or failed in a way
    heal does not address), one heal job is run anyway, marked ``forced``."""
    db = product.db
    decision = after_failure(db, product.bus, product.topics, failed_job)
    first = decision.action
    next_job = decision.heal_job_id if decision.action == "heal" else None
    forced = next_job is None and decision.action == "none"
    if forced:
        next_job = f"{failed_job}-heal1"
    attempts: list[dict[str, Any]] = []
    last_job = failed_job
    while next_job and len(attempts) < 5:
        last_job = next_job
        timed = TimedGenerator(product.generator())
        outcome, info = run_job(product, channel, last_job, flow=Flow.HEAL, generator=timed)
        info["generator"] = timed.calls[0] if timed.calls else None
        info["forced"] = forced and not attempts
        attempts.append(info)
        if outcome.ok:
            break
        decision = after_failure(db, product.bus, product.topics, last_job)
        next_job = decision.heal_job_id if decision.action == "heal" else None
    final = db.get_job(last_job)
    return {
        "first_decision": first,
        "forced": forced,
        "attempts": attempts,
        "decision": decision.action,
        "reason": decision.reason,
        "final_status": final.status if final else None,
    }


def transient_loop(product: Product, channel: ChannelState, failed_job: str) -> dict[str, Any]:
    """A site that keeps failing with server errors is not healed (nothing changed in its
    shape): its next jobs run as usual until ``heal.decide`` sees ``TRANSIENT_STREAK``
    transient failures in a row and asks a person."""
    db = product.db
    decision = after_failure(db, product.bus, product.topics, failed_job)
    jobs, last_job = [failed_job], failed_job
    while decision.action == "none" and len(jobs) < TRANSIENT_STREAK + 1:
        last_job = f"{failed_job}{len(jobs) + 1}"
        outcome, _ = run_job(product, channel, last_job)
        jobs.append(last_job)
        if outcome.ok:
            break
        decision = after_failure(db, product.bus, product.topics, last_job)
    final = db.get_job(last_job)
    return {
        "first_decision": "retry",
        "forced": False,
        "attempts": [],
        "transient_jobs": len(jobs),
        "decision": decision.action,
        "reason": decision.reason,
        "final_status": final.status if final else None,
    }


def rejected_validation(product: Product, site_id: str) -> dict[str, Any]:
    """The validation section of the newest rejected candidate, read from its review branch
    in the fetchers' remote (the DB row does not carry the provenance)."""
    rejected = [v for v in product.db.fetcher_versions(site_id) if v.status == "rejected"]
    if not rejected or not product.remote_git_dir:
        return {}
    name = rejected[-1].fetcher_name
    shown = subprocess.run(
        ["git", "--git-dir", product.remote_git_dir, "show",
         f"refs/heads/{candidate_branch(name)}:{name}/{PROVENANCE_FILE}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if shown.returncode != 0:
        return {"error": shown.stderr.strip()[:200]}
    return dict(json.loads(shown.stdout).get("validation") or {})


# --------------------------------------------------------------------------- one site


def bench_site(name: str, product: Product) -> dict[str, Any]:
    db = product.db
    suffix = uuid.uuid4().hex[:6]
    spec = CATALOG[name]
    result: dict[str, Any] = {"site": name, "ok": False}
    with serve(name) as site:
        config_dict = site.channel_config()
        config = WebSourceConfig.model_validate(config_dict)
        site_id = structure_id(config.url)
        channels = [ChannelState(f"hb-{name}-{tag}-{suffix}") for tag in ("a", "b")]
        a, b = channels
        for ch in channels:
            db.save_channel(ch.channel_id, spec.source_type, config_dict)

        # 1. v1: generate with the product's steps, map both channels, one job each.
        started = time.perf_counter()
        v1_loaded = product.generator().generate(
            GenerationRequest(
                site=site_id,
                channel_id=a.channel_id,
                job_id=f"hb-{name}-gen-{suffix}",
                source_type=SourceType(spec.source_type),
                config=config,
            )
        )
        result["v1_generate_s"] = round(time.perf_counter() - started, 2)
        v1 = db.channel_fetcher(a.channel_id)
        assert v1 is not None and v1.fetcher_name == v1_loaded.name
        db.map_channel(b.channel_id, v1.id)
        result["v1_fetcher"] = v1.fetcher_name
        result["v1_kind"] = v1_loaded.fetcher.kind
        v1_jobs = []
        for ch in channels:
            outcome, info = run_job(product, ch, f"{ch.channel_id}-v1")
            info |= ids_check(product, ch, outcome, site)
            v1_jobs.append(info)
        result["v1_jobs"] = v1_jobs
        result["v1_jobs_ok"] = all(j["ok"] and j["all_ids"] for j in v1_jobs)

        # 2. v2 in place: does _v1 break, and how? ("still works" is checked against the
        # ground truth too: a fetcher that runs but misses records is worse than one that fails)
        site.variant = "v2"
        v2_old: list[dict[str, Any]] = []
        for ch in channels:
            outcome, info = run_job(product, ch, f"{ch.channel_id}-v2old")
            if outcome.ok:
                info |= ids_check(product, ch, outcome, site)
            v2_old.append(info)
        result["v1_on_v2"] = v2_old
        result["v1_broke"] = describe_break(v2_old)

        # 3. heal: heal-mode jobs of channel A as the product requests them (a site where _v1
        # still runs gets a heal job all the same: that is the benchmark's request).
        heal = heal_loop(product, a, v2_old[0]["job_id"])
        latest = db.latest_fetcher(site_id)
        mapped = [db.channel_fetcher(ch.channel_id) for ch in channels]
        healed = latest is not None and latest.id != v1.id  # a newer published version
        validation = (
            validation_of(product, latest) if healed else rejected_validation(product, site_id)
        )
        good = [x for x in heal["attempts"] if x["ok"]]
        heal_ok = (
            bool(good)
            and healed
            and all(m is not None and latest is not None and m.id == latest.id for m in mapped)
            and bool(validation.get("passed"))
        )
        generated = [x["generator"] for x in heal["attempts"] if x.get("generator")]
        result.update(
            heal_ok=heal_ok,
            heal_baseline=generated[0].get("baseline") if generated else None,
            heal_generate_s=generated[-1].get("seconds") if generated else None,
            heal_attempts_v2=heal["attempts"],
            heal_first_decision=heal["first_decision"],
            heal_final_status=heal["final_status"],
            heal_error=None if heal_ok else (generated[-1].get("error") if generated else None),
            validation_rate=validation.get("success_rate"),
            validation=validation.get("channels"),
            v2_fetcher=latest.fetcher_name if healed and latest else None,
            mapped_after_heal=[m.fetcher_name if m else None for m in mapped],
        )

        # 4. both channels run again (on _v2 when heal worked), ids against the ground truth.
        v2_jobs = []
        for ch in channels:
            outcome, info = run_job(product, ch, f"{ch.channel_id}-v2new")
            info |= ids_check(product, ch, outcome, site)
            v2_jobs.append(info)
        result["v2_jobs"] = v2_jobs
        v2_name = result["v2_fetcher"]
        result["channels_on_v2_ok"] = bool(v2_name) and all(
            j["ok"] and j["all_ids"] and j.get("fetcher") == v2_name for j in v2_jobs
        )

        # 5. broken: the job fails, heal attempts fail, the last good version stays, a person
        # is asked.
        site.variant = "broken"
        before = db.latest_fetcher(site_id)
        started = time.perf_counter()
        broken_jobs = []
        for ch in channels:
            _, info = run_job(product, ch, f"{ch.channel_id}-broken")
            broken_jobs.append(info)
        result["broken_jobs"] = broken_jobs
        if broken_jobs[0].get("error_class") == "transient":
            broken = transient_loop(product, a, broken_jobs[0]["job_id"])
        else:
            broken = heal_loop(product, a, broken_jobs[0]["job_id"])
        after = db.latest_fetcher(site_id)
        mapped_after = [db.channel_fetcher(ch.channel_id) for ch in channels]
        max_heal = db.retry_config(a.channel_id).max_heal_retries
        counted = db.heal_jobs_since_success(a.channel_id)
        attempts = broken["attempts"]
        result.update(
            broken_s=round(time.perf_counter() - started, 2),
            broken_job_failed=not broken_jobs[0]["ok"],
            broken_error_class=broken_jobs[0].get("error_class"),
            broken_first_decision=broken["first_decision"],
            heal_attempts=attempts,
            heal_attempt_classes=[x.get("error_class") for x in attempts],
            heal_attempts_counted=counted,
            final_status=broken["final_status"],
            final_decision=broken["decision"],
            kept=mapped_after[0].fetcher_name if mapped_after[0] else None,
            transient_jobs=broken.get("transient_jobs"),
            broken_review_ok=(
                not broken_jobs[0]["ok"]
                and broken["first_decision"] in ("heal", "human_review", "retry")
                and all(not x["ok"] for x in attempts)
                and (counted >= max_heal or bool(broken.get("transient_jobs")))
                and broken["decision"] == "human_review"
                and broken["final_status"] == "requires_human_review"
                and before is not None
                and after is not None
                and after.id == before.id
                and all(m is not None and m.id == before.id for m in mapped_after)
            ),
        )
    result["ok"] = bool(
        result["v1_jobs_ok"]
        and result["heal_ok"]
        and result["channels_on_v2_ok"]
        and result["broken_review_ok"]
    )
    return result


# --------------------------------------------------------------------------- output


def _mark(value: bool | None) -> str:
    return "-" if value is None else ("✔" if value else "✘")


def markdown_table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| site | v1: gen s, ids | _v1 on v2 | heal: gen s (attempts) | validation | "
        "channels on _v2 (ids) | broken → review | all |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if "heal_ok" not in r:
            lines.append(f"| {r['site']} | error: {r.get('error', '?')[:80]} | | | | | | ✘ |")
            continue
        rate = r.get("validation_rate")
        validation = "-" if rate is None else f"{rate:.0%} of {len(r.get('validation') or [])}"
        heal = f"{_mark(r['heal_ok'])} {r['heal_generate_s']} s ({len(r['heal_attempts_v2'])})"
        if not r["heal_ok"]:
            heal += f" → {r['heal_final_status']}, kept {_short(r['mapped_after_heal'][0])}"
        broken = r["broken_error_class"] or "job succeeded"
        classes = ", ".join(str(c) for c in r["heal_attempt_classes"]) or "none"
        if r.get("transient_jobs"):
            classes = f"none ({r['transient_jobs']} transient jobs in a row)"
        forced = " forced" if r["heal_attempts"] and r["heal_attempts"][0].get("forced") else ""
        review = (
            f"{_mark(r['broken_review_ok'])} {broken} → {r['broken_first_decision']};{forced} "
            f"heals: {classes} → {r['final_status']}, kept {_short(r['kept'])}"
        )
        v2 = r["v2_jobs"]
        lines.append(
            f"| {r['site']} | {_mark(r['v1_jobs_ok'])} {r['v1_generate_s']} s | "
            f"{r['v1_broke']} | {heal} | {validation} | "
            f"{_mark(r['channels_on_v2_ok'])} {'/'.join(str(j['fetched_ids']) for j in v2)}"
            f" of {v2[0]['expected_ids']} | {review} | {_mark(r['ok'])} |"
        )
    return "\n".join(lines)


def _short(name: str | None) -> str:
    """``127_0_0_1_4242_fetcher_v2`` -> ``_v2``."""
    return "none" if not name else "_" + name.rsplit("_", 1)[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sites", default=",".join(CATALOG), help="comma-separated names")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.sites.split(",") if n.strip()]
    unknown = [n for n in names if n not in CATALOG]
    if unknown:
        parser.error(f"unknown sites: {', '.join(unknown)}; known: {', '.join(CATALOG)}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    with local_stack("heal") as (endpoints, _workdir):
        product = Product.open(endpoints)
        try:
            for name in names:
                site_started = time.perf_counter()
                try:
                    result = bench_site(name, product)
                except Exception as exc:  # noqa: BLE001 - a benchmark reports, it does not stop
                    result = {"site": name, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
                    traceback.print_exc()
                result["site_s"] = round(time.perf_counter() - site_started, 2)
                results.append(result)
                print(json.dumps(result, default=str), flush=True)
        finally:
            product.close()
    total = round(time.perf_counter() - started, 1)
    rows = [
        Row(
            f"heal {r['site']}: healed, _v2 on both, broken -> review",
            float(r.get("heal_generate_s") or 0.0),
            None,
            "s",
            "all steps",
            bool(r["ok"]),
            extra=r,
        )
        for r in results
    ]
    passed = sum(1 for r in results if r["ok"])
    rows.append(
        Row(f"heal: sites where every step passed ({len(results)})", float(passed), None,
            "sites", f">= {len(results)}", passed == len(results))
    )  # fmt: skip
    print_table("Heal on the demo sites (no LLM, no Dagster)", rows)
    print(markdown_table(results))
    print(f"\n{passed} of {len(results)} sites passed every step; {total} s in all")
    for r in results:
        if not r["ok"]:
            print(f"{r['site']}: {why_not(r)}")
    write_results("heal", {"sites": names, "retry": RETRY.__dict__, "total_s": total}, rows)
    return 0 if passed == len(results) else 1


def why_not(r: dict[str, Any]) -> str:
    if "error" in r and "heal_ok" not in r:
        return f"benchmark error: {r['error']}"
    reasons = []
    if not r["v1_jobs_ok"]:
        reasons.append(f"v1 jobs: {r['v1_jobs']}")
    if not r["heal_ok"]:
        failing = [
            f"{v['channel_id']}: {'; '.join(v.get('reasons') or [])}"
            for v in r.get("validation") or []
            if not v.get("passed")
        ]
        reasons.append(f"heal failed: {r.get('heal_error')} {failing}")
    if not r["channels_on_v2_ok"]:
        reasons.append(
            "channels on _v2: "
            + str([(j.get("fetcher"), j.get("missing_ids"), j.get("error")) for j in r["v2_jobs"]])
        )
    if not r["broken_review_ok"]:
        reasons.append(
            f"broken: job failed={r['broken_job_failed']} ({r['broken_error_class']}), first "
            f"decision={r['broken_first_decision']}, attempts={r['heal_attempt_classes']}, "
            f"counted={r['heal_attempts_counted']}, final={r['final_status']}/"
            f"{r['final_decision']}, kept={r['kept']}, summary={r['broken_jobs'][0].get('summary')}"
        )
    return "; ".join(reasons)


if __name__ == "__main__":
    sys.exit(main())
