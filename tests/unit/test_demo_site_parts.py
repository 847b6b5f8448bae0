"""Pure parts of the demo sites: GraphQL argument reading and the hand-built PDF."""

from __future__ import annotations

import re

import pytest

from amazoniax_dagster.devstack.demo_sites.export_links import _pdf
from amazoniax_dagster.devstack.demo_sites.graphql_relay import _argument


@pytest.mark.parametrize(
    ("arguments", "variables", "first", "after"),
    [
        ("first: $first, after: $after", {"first": 10, "after": "YQ"}, "10", "YQ"),
        ("first: $first, after: $after", {"first": 5}, "5", None),
        ('first: 3, after: "abc"', {}, "3", "abc"),
        ("first: 3, after: null", {}, "3", None),
        ("", {"first": 7}, None, None),
    ],
)
def test_graphql_arguments_inline_or_through_variables(
    arguments: str, variables: dict[str, object], first: str | None, after: str | None
) -> None:
    assert _argument(arguments, "first", variables) == first
    assert _argument(arguments, "after", variables) == after


def test_the_pdf_has_a_consistent_cross_reference_table() -> None:
    document = _pdf("Methodology")
    assert document.startswith(b"%PDF-1.4\n") and document.endswith(b"%%EOF\n")
    found = re.search(rb"startxref\n(\d+)\n", document)
    assert found
    start = int(found[1])
    assert document[start:].startswith(b"xref\n0 6\n")
    offsets = [int(o) for o in re.findall(rb"(\d{10}) 00000 n ", document)]
    assert len(offsets) == 5
    for number, offset in enumerate(offsets, start=1):
        assert document[offset:].startswith(b"%d 0 obj\n" % number)
    assert b"(Methodology) Tj" in document
