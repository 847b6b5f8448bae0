"""The proof asks for every captured download that has no records (a PDF, an archive)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from amazoniax_dagster.core.messages import WebSourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.fetchers.base import FetchContext, FetchedFile, FetchReport
from fetcher_codegen.prove import prove_fetcher

LOOPBACK = NetworkPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))
CONFIG = WebSourceConfig.model_validate({"url": "http://127.0.0.1:9/list"})


def fetch_one_sheet(ctx: FetchContext) -> FetchReport:
    (ctx.out_dir / "a.pdf").write_bytes(b"%PDF-1.4")
    return FetchReport(files=[FetchedFile("a.pdf", 8, "http://127.0.0.1:9/p/a/sheet.pdf?v=1")])


def test_a_captured_file_the_fetcher_left_behind_fails_the_proof(tmp_path: Path) -> None:
    expected = ["/p/a/sheet.pdf", "/p/b/sheet.pdf"]
    proof = prove_fetcher(fetch_one_sheet, CONFIG, [], policy=LOOPBACK, out_dir=tmp_path,
                          expected_files=expected)  # fmt: skip
    assert not proof.ok
    assert proof.missing == ["file /p/b/sheet.pdf"]
    assert proof.describe()["values_checked"] == 2


def test_every_captured_file_fetched_again_passes(tmp_path: Path) -> None:
    proof = prove_fetcher(fetch_one_sheet, CONFIG, [], policy=LOOPBACK, out_dir=tmp_path,
                          expected_files=["/p/a/sheet.pdf"])  # fmt: skip
    assert proof.ok, proof
