"""XML replies: records, probes and pagination read the same tree the recipe engine reads."""

from __future__ import annotations

from typing import Any

from amazoniax_dagster.fetchers.recipe.xmltree import parse
from fetcher_codegen.har import entries_from_har
from fetcher_codegen.pagination import Page, infer
from fetcher_codegen.probes import next_page_probes
from fetcher_codegen.records import find_records

ORIGIN = "http://fleet.test"


def xml_entry(path: str, body: str) -> dict[str, Any]:
    return {
        "startedDateTime": "2026-03-10T10:00:00.000Z",
        "_resourceType": "document",
        "request": {"method": "GET", "url": ORIGIN + path, "headers": []},
        "response": {
            "status": 200,
            "headers": [],
            "content": {"mimeType": "application/xml", "text": body},
        },
    }


def pages(*items: dict[str, Any]) -> list[Page]:
    return [Page(e, find_records(e)) for e in entries_from_har({"log": {"entries": list(items)}})]


def token_page(start: int, token: int | None) -> str:
    rows = "".join(f"<vehicle><id>V{n}</id></vehicle>" for n in range(start, start + 3))
    more = f"<nextPageToken>{token}</nextPageToken>" if token is not None else ""
    return f"<response><vehicles>{rows}</vehicles>{more}</response>"


def test_xml_records_carry_their_path_in_the_tree() -> None:
    (page,) = pages(xml_entry("/v.xml", token_page(0, 3)))
    assert page.records is not None and page.records.path == "response.vehicles.vehicle"
    assert page.records.items[0] == {"id": "V0"}


def test_a_numeric_token_the_reply_names_is_a_cursor_not_an_offset() -> None:
    found, warnings = infer(
        pages(
            xml_entry("/v.xml", token_page(0, 3)),
            xml_entry("/v.xml?pageToken=3", token_page(3, 6)),
            xml_entry("/v.xml?pageToken=6", token_page(6, None)),
        )
    )
    assert warnings == [] and found is not None
    assert found.config == {
        "type": "cursor",
        "cursor_path": "response.nextPageToken",
        "param": "pageToken",
    }


def offset_page(start: int) -> str:
    rows = "".join(f'<item id="R{n}"/>' for n in range(start, min(start + 2, 5)))
    return f"<results><totalResults>5</totalResults>{rows}</results>"


def test_an_xml_offset_stops_at_the_total_the_reply_gives() -> None:
    found, _ = infer(
        pages(
            xml_entry("/r.xml", offset_page(0)),
            xml_entry("/r.xml?start=2", offset_page(2)),
            xml_entry("/r.xml?start=4", offset_page(4)),
        )
    )
    assert found is not None
    assert found.config["type"] == "offset" and found.config["param"] == "start"
    assert found.config["total_path"] == "results.totalResults"


def test_probes_send_an_xml_token_back_under_its_own_name() -> None:
    url = ORIGIN + "/v.xml"
    probes = next_page_probes(url, parse(token_page(0, 3)), 3)
    assert probes[0].url == url + "?pageToken=3"


def test_an_aws_style_continuation_token_is_probed_as_continuation_token() -> None:
    body = parse(
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        "<IsTruncated>true</IsTruncated><Contents><Key>a</Key></Contents>"
        "<Contents><Key>b</Key></Contents>"
        "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm</NextContinuationToken>"
        "</ListBucketResult>"
    )
    urls = [p.url for p in next_page_probes(ORIGIN + "/bucket?list-type=2", body, 2)]
    assert (
        ORIGIN + "/bucket?list-type=2&continuation-token=1ueGcxLPRx1Tr%2FXYExHnhbYLgveDs2J%2Fwm"
        in urls
    )


def test_the_offset_an_xml_reply_echoes_is_the_one_probed() -> None:
    body = parse("<register><totalResults>23</totalResults><start>0</start><p/><p/></register>")
    urls = [p.url for p in next_page_probes(ORIGIN + "/permits.xml", body, 2)]
    assert ORIGIN + "/permits.xml?start=2" in urls
    assert ORIGIN + "/permits.xml?offset=2" not in urls


def next_page(number: int, more: bool) -> str:
    rows = "".join(f"<row><code>C{number}{n}</code></row>" for n in range(3))
    link = f"<next>{ORIGIN}/rows.xml?cursor=k{number + 1}</next>" if more else ""
    return f"<dataset><rows>{rows}</rows>{link}</dataset>"


def test_a_next_element_holding_a_url_is_a_next_url() -> None:
    found, _ = infer(
        pages(
            xml_entry("/rows.xml", next_page(1, True)),
            xml_entry("/rows.xml?cursor=k2", next_page(2, True)),
            xml_entry("/rows.xml?cursor=k3", next_page(3, False)),
        )
    )
    assert found is not None
    assert found.config == {"type": "next_url", "next_url_path": "dataset.next"}


def linked_page(number: int, last: int) -> str:
    rows = "".join(f"<row><code>L{number}{n}</code></row>" for n in range(3))
    links = '<link rel="self" href="/l.xml"/>'
    links += f'<link rel="prev" href="/l.xml?pg={number - 1}"/>' if number > 1 else ""
    links += f'<link rel="next" href="/l.xml?pg={number + 1}"/>' if number < last else ""
    return f"<dataset>{links}<rows>{rows}</rows></dataset>"


def test_root_link_elements_rel_next_are_followed_as_links() -> None:
    found, _ = infer(
        pages(
            xml_entry("/l.xml", linked_page(1, 3)),
            xml_entry("/l.xml?pg=2", linked_page(2, 3)),
            xml_entry("/l.xml?pg=3", linked_page(3, 3)),
        )
    )
    assert found is not None and found.config == {"type": "link_header"}
    probes = next_page_probes(ORIGIN + "/l.xml", parse(linked_page(1, 3)), 3)
    assert probes[0].url == ORIGIN + "/l.xml?pg=2"


def s3_page(keys: str, token: str | None) -> str:
    rows = "".join(f"<Contents><Key>{k}.csv</Key><Size>1</Size></Contents>" for k in keys)
    following = f"<NextContinuationToken>{token}</NextContinuationToken>" if token else ""
    return (
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>'
        f"<IsTruncated>{'true' if token else 'false'}</IsTruncated>{rows}{following}"
        "</ListBucketResult>"
    )


def test_an_aws_style_listing_pages_by_its_continuation_token_while_truncated() -> None:
    found, warnings = infer(
        pages(
            xml_entry("/b?list-type=2", s3_page("abc", "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J")),
            xml_entry(
                "/b?list-type=2&continuation-token=1ueGcxLPRx1Tr%2FXYExHnhbYLgveDs2J",
                s3_page("def", "2pfHdyMQSy2Us/ZAFyIoicZMhwfEt3K"),
            ),
            xml_entry(
                "/b?list-type=2&continuation-token=2pfHdyMQSy2Us%2FZAFyIoicZMhwfEt3K",
                s3_page("gh", None),
            ),
        )
    )
    assert warnings == [] and found is not None
    assert found.config == {
        "type": "cursor",
        "cursor_path": "ListBucketResult.NextContinuationToken",
        "param": "continuation-token",
        "has_more_path": "ListBucketResult.IsTruncated",
    }
