"""The validation pipeline's judgement of one channel: candidate files against history."""

from __future__ import annotations

import json

import pytest

from amazoniax_dagster.db import DeliveredOutput, RecentOutputs
from fetcher_codegen.structure import name_shape, signature
from fetcher_codegen.validation import (
    ChannelVerdict,
    ValidationReport,
    ValidationSettings,
    compare,
    window_from,
)

SETTINGS = ValidationSettings()


def _items(ids: range, key: str = "items") -> bytes:
    return json.dumps({key: [{"id": i, "name": f"n{i}"} for i in ids], "page": 1}).encode()


def _window(files: dict[str, bytes], counts: list[int]):  # noqa: ANN202
    recent = RecentOutputs(
        file_counts=counts,
        files=[DeliveredOutput(path, f"k/{path}", len(data)) for path, data in files.items()],
    )
    return window_from(recent, lambda key: files[key.removeprefix("k/")], SETTINGS)


HISTORY = _window(
    {f"items_{n:04d}.json": _items(range(n * 20, n * 20 + 20)) for n in (1, 2, 3)}, [3]
)


def test_name_shapes_ignore_numbers_and_hashes() -> None:
    assert name_shape("a/sales-2026-11-01.csv") == name_shape("sales-2025-01-30.csv")
    assert name_shape("items_0001.json") != name_shape("orders_0001.json")


def test_new_pages_of_the_same_api_pass() -> None:
    files = {f"items_{n:04d}.json": _items(range(100 + n, 110 + n)) for n in (1, 2, 3, 4)}
    verdict = compare("c1", files, HISTORY, SETTINGS)
    assert verdict.passed, verdict.reasons


@pytest.mark.parametrize(
    ("files", "failed_check"),
    [
        ({}, "non_empty"),
        ({f"items_{n:04d}.json": _items(range(3)) for n in range(20)}, "count"),
        ({f"orders-{n}.csv": b"sku,qty\n1,2\n" for n in range(3)}, "names"),
        (
            {f"items_{n:04d}.json": json.dumps({"error": "gone"}).encode() for n in range(3)},
            "structure",
        ),
    ],
)
def test_candidates_unlike_history_fail(files: dict[str, bytes], failed_check: str) -> None:
    verdict = compare("c1", files, HISTORY, SETTINGS)
    assert not verdict.passed
    assert verdict.checks[failed_check] is False
    assert verdict.reasons


def test_renamed_files_of_the_same_kind_and_shape_pass() -> None:
    # feed.xml -> atom.xml, items_1.json -> products_1.json: a site may rename its files.
    files = {f"orders-{n}.json": _items(range(n * 20, n * 20 + 20)) for n in (1, 2, 3)}
    verdict = compare("c1", files, HISTORY, SETTINGS)
    assert verdict.passed, verdict.reasons


def test_pages_are_compared_together_not_one_by_one() -> None:
    def page(ids: range) -> bytes:
        rows = "".join(f'<li class="item">Product {i}</li>' for i in ids)
        return f"<html><body><ul>{rows}</ul></body></html>".encode()

    def card(ids: range) -> bytes:
        rows = "".join(f'<div class="card">Product {i}</div>' for i in ids)
        return f"<html><body><main>{rows}</main></body></html>".encode()

    history = _window({f"p-{n}.html": page(range(n * 10, n * 10 + 10)) for n in range(5)}, [5])
    # New markup, and the candidate's first page is not the page history sampled first.
    new = {f"p-{n}.html": card(range(n * 10, n * 10 + 10)) for n in reversed(range(5))}
    assert compare("c1", new, history, SETTINGS).passed


def test_rss_moved_to_atom_keeps_its_entries() -> None:
    rss = "".join(f"<item><guid>post-{i}</guid><title>Post {i}</title></item>" for i in range(9))
    atom = "".join(f"<entry><id>post-{i}</id><title>Post {i}</title></entry>" for i in range(9))
    history = _window({"feed.xml": f"<?xml version='1.0'?><rss>{rss}</rss>".encode()}, [1])
    new = {"atom.xml": f"<?xml version='1.0'?><feed>{atom}</feed>".encode()}
    assert compare("c1", new, history, SETTINGS).passed


def test_a_renamed_field_keeps_most_of_the_structure() -> None:
    files = {f"items_{n:04d}.json": _items(range(5), key="results") for n in (1, 2, 3)}
    # items[] -> results[]: three of six paths changed, still one API.
    assert compare("c1", files, HISTORY, SETTINGS).checks["structure"] is True


def test_html_markup_change_with_the_same_data_passes() -> None:
    rows = "".join(f'<li class="item">Product {i}</li>' for i in range(10))
    new_rows = "".join(f'<div class="product-card">Product {i}</div>' for i in range(10))
    old = {"catalog_1.html": f"<html><body><ul>{rows}</ul></body></html>".encode()}
    new = {"catalog_1.html": f"<html><body><main>{new_rows}</main></body></html>".encode()}
    history = _window(old, [1])
    assert compare("c1", new, history, SETTINGS).passed
    empty = {"catalog_1.html": b"<html><body><p>No results</p></body></html>"}
    assert not compare("c1", empty, history, SETTINGS).passed


def test_a_channel_without_history_passes_when_something_was_fetched() -> None:
    empty = _window({}, [])
    assert compare("new", {"a.json": b"{}"}, empty, SETTINGS).passed
    assert not compare("new", {}, empty, SETTINGS).passed


def test_success_rate_decides_and_the_table_names_every_channel() -> None:
    verdicts = [ChannelVerdict(f"c{i}", passed=i != 0) for i in range(5)]
    report = ValidationReport(verdicts, min_success_rate=0.8)
    assert report.success_rate == 0.8 and report.passed
    assert not ValidationReport(verdicts[:2], 0.8).passed
    assert not ValidationReport([], 0.8).passed
    table = report.table()
    assert all(f"| c{i} |" in table for i in range(5)) and "FAIL" in table


def test_signatures_by_format() -> None:
    assert signature("a.csv", b"id,name\n1,x\n").features == frozenset({"id", "name"})
    assert "$.items[].id" in signature("a.json", _items(range(2))).features
    assert signature("f.xml", b"<?xml version='1.0'?><rss><item/></rss>").kind == "xml"


def test_header_only_csvs_do_not_pass_for_csvs_with_rows() -> None:
    history = _window({"sales-2026-11-01.csv": b"id,amount\n1,2\n3,4\n"}, [1])
    empty = {"sales-2026-11-08.csv": b"id,amount\n"}
    assert not compare("c1", empty, history, SETTINGS).passed
    rows = {"sales-2026-11-08.csv": b"id,amount\n5,6\n1,2\n"}
    assert compare("c1", rows, history, SETTINGS).passed


def test_a_failed_proof_says_how_many_values_were_missing() -> None:
    from amazoniax_dagster.core.errors import FetcherCodeError
    from fetcher_codegen.generator import Candidate, fail_proof
    from fetcher_codegen.prove import ProofResult

    proof = ProofResult(ok=False, seconds=1.0, checked=37, missing=["x"], missing_count=27)
    candidate = Candidate("example.com", "http", "", {"proof": proof.describe(), "attempts": 3})
    with pytest.raises(FetcherCodeError, match=r"\(27 of 37 record values missing, 3 attempts\)"):
        fail_proof(candidate)


def test_an_api_redesigned_around_the_same_records_passes_and_losing_them_fails() -> None:
    old = [{"sku": f"SKU-{i}", "title": f"Chair {i}", "price": 40 + i} for i in range(30)]
    history = _window({f"chairs_{n}.json": json.dumps(old[n * 10 : n * 10 + 10]).encode()
                       for n in range(3)}, [3])  # fmt: skip
    # v2: an envelope with other key names, bare values where objects were
    redesigned = {
        f"catalog_{n}.json": json.dumps(
            {"result": {"rows": [[r["sku"], r["title"], r["price"]] for r in old[n * 10 :][:10]]},
             "cursor": f"c{n + 1}"}
        ).encode()
        for n in range(3)
    }  # fmt: skip
    assert compare("c1", redesigned, history, SETTINGS).checks["structure"] is True
    emptied = {f"catalog_{n}.json": b'{"result": {"rows": []}, "cursor": null}' for n in range(3)}
    verdict = compare("c1", emptied, history, SETTINGS)
    assert verdict.checks["structure"] is False and not verdict.passed
