"""Fetchers generated from scratch, without an LLM, for demo sites served on 127.0.0.1.

Each test captures a site with Chromium, synthesizes a recipe, proves it, then runs it once
more and compares the records it fetched with the site's ground truth. The eight-site run is
``bench/codegen.py``; here four shapes that cover the method's branches (JSON API probed
through its documentation, login form + cursor, login + linked CSV downloads, HTML-only pages
read by a browser recipe).
"""

from __future__ import annotations

import ipaddress
import json
import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml

from amazoniax_dagster.core.errors import UnsafeURLError
from amazoniax_dagster.core.messages import WebSourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.devstack.demo_sites import serve
from amazoniax_dagster.fetchers.base import FetchContext
from fetcher_codegen.capture import CaptureLimits, capture_site
from fetcher_codegen.deterministic import generate_deterministic
from fetcher_codegen.prove import run
from fetcher_codegen.summary import summarize_har

pytestmark = [
    pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium"),
    pytest.mark.timeout(120),
]
LOOPBACK = NetworkPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),))


@pytest.mark.parametrize(
    ("site_name", "kind", "recipe_part"),
    [
        ("json_pages", "http", {"type": "page_number", "param": "page"}),
        ("login_cursor", "http", {"type": "cursor", "cursor_path": "next_cursor"}),
        ("csv_links", "http", {"type": "links"}),
        ("html_list", "browser", {"type": "click_next"}),
    ],
)
def test_generated_fetcher_gets_every_record(
    tmp_path: Path, site_name: str, kind: str, recipe_part: dict[str, str]
) -> None:
    with serve(site_name) as site:
        raw = site.channel_config()
        config = WebSourceConfig.model_validate(raw)
        candidate = generate_deterministic(config, tmp_path / "work", policy=LOOPBACK)

        assert candidate.kind == kind
        assert candidate.proof.ok, candidate.proof.describe()
        assert candidate.proof.terminated and candidate.proof.checked > 20
        assert _contains(yaml.safe_load(candidate.recipe_text), recipe_part)

        out = tmp_path / "out"
        out.mkdir()
        ctx = FetchContext(config, out, LOOPBACK, date.today(), max_retries=1)
        report = run(candidate.recipe_text, ctx)
        text = "\n".join((out / f.relative_path).read_text() for f in report.files)
        missing = [r["id"] for r in site.ground_truth() if str(r["id"]) not in text]
        assert missing == []

    secrets = [
        str(v) for key in ("login_credentials", "auth_keys") for v in (raw.get(key) or {}).values()
    ]
    shown = candidate.recipe_text + json.dumps(candidate.provenance)
    shown += summarize_har(candidate.capture, secrets)
    assert not [s for s in secrets if s in shown]
    assert candidate.capture.har_path.exists() and candidate.capture.screenshots()


def test_a_channel_url_outside_the_network_policy_is_refused(tmp_path: Path) -> None:
    with serve("html_list") as site:
        config = WebSourceConfig.model_validate(site.channel_config())
        with pytest.raises(UnsafeURLError):
            capture_site(config, tmp_path, policy=NetworkPolicy(), limits=CaptureLimits())
        assert site.requests == []


def _contains(data: object, part: dict[str, str]) -> bool:
    """Whether some mapping inside ``data`` has every key/value of ``part``."""
    if isinstance(data, dict):
        if all(data.get(k) == v for k, v in part.items()):
            return True
        return any(_contains(v, part) for v in data.values())
    if isinstance(data, list):
        return any(_contains(v, part) for v in data)
    return False
