"""A synthesized recipe is checked against recipe.schema.json before any proof runs it."""

from __future__ import annotations

import pytest

from fetcher_codegen.deterministic import InvalidSynthesis, check_recipe

VALID = """
version: 1
kind: http
name: items
steps:
  - name: items
    request: {url: /api/items}
    records: items
    paginate: {type: offset, param: offset, limit: 10}
    save: [{type: body, name: "items_${page}.${ext}"}]
"""


def test_a_valid_recipe_passes() -> None:
    check_recipe("http", VALID)


def test_a_negative_start_is_refused_before_the_proof() -> None:
    bad = VALID.replace("limit: 10}", "limit: 10, start: -1}")
    with pytest.raises(InvalidSynthesis, match="start"):
        check_recipe("http", bad)


def test_an_unknown_paginator_is_refused_with_its_place() -> None:
    bad = VALID.replace("type: offset", "type: sideways")
    with pytest.raises(InvalidSynthesis, match="paginate"):
        check_recipe("http", bad)


def test_a_failed_proof_names_the_real_value_counts() -> None:
    from amazoniax_dagster.core.errors import FetcherCodeError
    from fetcher_codegen.generator import Candidate, fail_proof
    from fetcher_codegen.prove import ProofResult

    proof = ProofResult(ok=False, seconds=0.1, checked=40, missing=["x"], missing_count=3)
    candidate = Candidate("site", "http", VALID, {"proof": proof.describe(), "attempts": 2})
    with pytest.raises(FetcherCodeError, match=r"3 of 40 record values missing, 2 attempts"):
        fail_proof(candidate)
