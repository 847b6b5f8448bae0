"""Format checks before upload: exact verdicts and the telling part of each reason."""

from __future__ import annotations

import re
import tempfile
import tracemalloc
from collections.abc import Iterator
from typing import IO, Any

import pytest

from amazoniax_dagster.core.errors import ConfigError
from amazoniax_dagster.sync.validation import summarize, validate_file
from amazoniax_dagster.sync.validation.kinds import kind_of
from amazoniax_dagster.sync.validation.rules import (
    DEFAULT_RULES,
    FileCheck,
    ValidationRules,
    Verdict,
)

MIB = 1024 * 1024
VALID, INVALID, SKIPPED = Verdict.VALID, Verdict.INVALID, Verdict.SKIPPED

ITEMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["items"],
    "properties": {
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id"],
                "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
            },
        }
    },
}
RECORD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id"],
    "properties": {"id": {"type": "integer"}},
}

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<lolz>&lol3;</lolz>
"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<foo>&xxe;</foo>
"""
RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0">
  <channel>
    <title>Boletim</title>
    <item><title>Edital 1</title><link>https://example.org/1</link></item>
  </channel>
</rss>
"""
RSS_091 = b"""<?xml version="1.0"?>
<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"
 "http://my.netscape.com/publish/formats/rss-0.91.dtd">
<rss version="0.91"><channel><title>old</title></channel></rss>
"""
ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title></feed>
"""
ERROR_PAGE = b"""<!DOCTYPE html>
<html><head><title>502 Bad Gateway</title></head>
<body><h1>502 Bad Gateway</h1></body></html>
"""


def spool(data: bytes) -> IO[bytes]:
    """The file as the fetch hands it over: a SpooledTemporaryFile."""
    stream: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=MIB)
    stream.write(data)
    stream.seek(0)
    return stream


def check(path: str, data: bytes, rules: ValidationRules = DEFAULT_RULES) -> FileCheck:
    with spool(data) as stream:
        result = validate_file(path, stream, rules)
        assert stream.tell() == 0, "the stream is handed back at its start"
        assert not stream.closed
    return result


def case(
    name: str,
    path: str,
    data: bytes,
    verdict: Verdict,
    reason: str | None = None,
    *,
    rules: ValidationRules = DEFAULT_RULES,
    **details: Any,
) -> Any:
    """One row of the table: the expected verdict, a reason fragment and a details subset."""
    return pytest.param(path, data, rules, verdict, reason, details, id=name)


SCHEMA = ValidationRules(json_schema=ITEMS_SCHEMA)
STREAMED = ValidationRules(max_bytes_parsed=1)
# fmt: off
CASES = [
    # JSON
    case("json-valid", "a.json", b'{"a": [1, 2.5, "x", null, true]}', VALID,
         top="object", encoding="utf-8", parsed="whole"),
    case("json-array", "a.geojson", b"[1, 2, 3]\n", VALID, top="array", items=3),
    case("json-broken", "a.json", b'{"a": 1,\n "b": }', INVALID,
         "line 2, column 7: Expecting value"),
    case("json-trailing", "a.json", b'{"a": 1}\n{"a": 2}', INVALID, "line 2, column 1: Extra data"),
    case("json-nan", "a.json", b"[1,\n NaN]", INVALID, "line 2, column 2: NaN is not valid JSON"),
    case("json-bom", "a.json", b'\xef\xbb\xbf{"a": 1}', VALID, encoding="utf-8-sig"),
    case("json-utf16", "a.json", '{"a": 1}'.encode("utf-16"), INVALID,
         "JSON must be UTF-8 (RFC 8259), this file is UTF-16"),
    case("json-latin1", "a.json", b'{"a": "caf\xe9"}', INVALID,
         "line 1, column 11: not UTF-8 (byte 0xE9)"),
    case("json-empty", "a.json", b"", INVALID, "empty file"),
    case("json-html-error-page", "data.json", ERROR_PAGE, INVALID,
         "expected JSON, got what looks like HTML", looks_like="HTML"),
    case("json-xml", "data.json", RSS, INVALID, "expected JSON, got what looks like XML"),
    case("json-gzip", "data.json", b"\x1f\x8b\x08\x00rest", INVALID,
         "expected JSON, got what looks like gzip data"),
    # JSON Schema
    case("schema-pass", "a.json", b'{"items": [{"id": 1, "name": "x"}]}', VALID, rules=SCHEMA,
         schema="valid"),
    case("schema-fail-path", "a.json", b'{"items": [{"id": 1}, {"id": "two"}]}', INVALID,
         "schema violation at $.items[1].id: 'two' is not of type 'integer'", rules=SCHEMA),
    case("schema-fail-required", "a.json", b'{"things": []}', INVALID,
         "schema violation at $: 'items' is a required property", rules=SCHEMA),
    case("schema-long-instance-cut", "a.json", b'{"items": "' + b"x" * 5000 + b'"}', INVALID,
         "schema violation at $.items: 'xxx", rules=SCHEMA),
    case("schema-by-pattern-wins", "exports/2025/a.json", b'{"id": 7}', VALID,
         rules=ValidationRules(json_schema=ITEMS_SCHEMA,
                               json_schemas_by_pattern={"exports/**/*.json": RECORD_SCHEMA}),
         schema="valid", schema_pattern="exports/**/*.json"),
    case("schema-by-pattern-first-match", "exports/a.json", b'{"id": 7}', INVALID,
         "schema violation at $: 'items' is a required property",
         rules=ValidationRules(json_schemas_by_pattern={"exports/*.json": ITEMS_SCHEMA,
                                                        "**/*.json": RECORD_SCHEMA})),
    case("schema-pattern-misses", "other/a.json", b'{"id": 7}', VALID,
         rules=ValidationRules(json_schemas_by_pattern={"exports/*.json": ITEMS_SCHEMA})),
    # above max_bytes_parsed: streamed by ijson, schema skipped with a note
    case("json-streamed", "a.json", b'{"items": [{"id": "two"}]}', VALID,
         rules=ValidationRules(json_schema=ITEMS_SCHEMA, max_bytes_parsed=8),
         parsed="streamed (larger than 8 bytes)", top="object",
         schema="skipped: larger than max_bytes_parsed (8 bytes)"),
    case("json-streamed-broken", "a.json", b"[1,\n2,\n tru]", INVALID,
         "line 3, column 5: invalid string in json text", rules=STREAMED),
    case("json-streamed-truncated", "a.json", b'[{"a": 1},\n{"a"', INVALID,
         "line 2, column 5: premature EOF", rules=STREAMED),
    # JSON Lines
    case("jsonl-valid", "a.jsonl", b'{"id": 1}\n\n{"id": 2}\r\n[3]\n', VALID, records=3),
    case("jsonl-bad-line", "a.ndjson", b'{"id": 1}\n{"id": 2}\n{"id": 3,}\n{"id": 4}\n', INVALID,
         "line 3, column 10: Expecting property name enclosed in double quotes"),
    case("jsonl-schema", "a.jsonl", b'{"id": 1}\n{"id": "2"}\n', INVALID,
         "line 2: schema violation at $.id: '2' is not of type 'integer'",
         rules=ValidationRules(json_schema=RECORD_SCHEMA)),
    case("jsonl-blank-only", "a.jsonl", b"\n \n", INVALID, "empty file (only blank lines)"),
    case("jsonl-error-page", "a.jsonl", ERROR_PAGE, INVALID,
         "expected JSON Lines, got what looks like HTML"),
    # CSV and TSV
    case("csv-valid", "a.csv", b'id,name,value\n1,ana,1.5\n2,"bo, b",2\n', VALID,
         encoding="utf-8", delimiter=",", columns=3, rows=2),
    case("csv-ragged", "a.csv", b"a,b,c\n1,2,3\n4,5,6\n7,8\n9,10,11\n", INVALID,
         "row 4 has 2 columns, expected 3", columns=3),
    case("csv-ragged-after-multiline", "a.csv", b'a,b\n1,"two\nlines"\n3,4,5\n', INVALID,
         "row 3 has 3 columns, expected 2 (line 4)"),
    case("csv-semicolon", "a.csv", b"id;price;city\n1;2,50;Bel\xc3\xa9m\n2;3,10;Manaus\n", VALID,
         delimiter=";", columns=3, rows=2, dialect="sniffed"),
    case("tsv", "a.tsv", b"id\tname, full\n1\tAna, Maria\n2\tBo\n", VALID,
         delimiter="\t", columns=2, rows=2),
    case("tsv-single-column", "a.tsv", b"id\n1\n2\n", VALID,
         delimiter="\t", columns=1, rows=2, dialect="default"),
    case("csv-windows-1252", "a.csv", b"id,name\n1,caf\xe9\n", INVALID,
         "not UTF-8 (looks like windows-1252): byte 0xE9 on line 2", encoding_guess="windows-1252"),
    case("csv-windows-1252-allowed", "a.csv", b"id,name\n1,caf\xe9\n", VALID,
         rules=ValidationRules(csv_require_utf8=False), encoding="windows-1252", columns=2, rows=1),
    case("csv-utf8-bom", "a.csv", b"\xef\xbb\xbfid,name\n1,caf\xc3\xa9\n", VALID,
         encoding="utf-8-sig", columns=2, rows=1),
    case("csv-utf16", "a.csv", "id\tnome\n1\tSão Paulo\n".encode("utf-16"), VALID,
         encoding="utf-16", delimiter="\t", columns=2, rows=1),
    case("csv-utf16-no-bom", "a.csv", "id,nome\n1,São Paulo\n".encode("utf-16-le"), INVALID,
         "not UTF-8 (looks like utf-16-le)"),
    case("csv-empty", "a.csv", b"", INVALID, "empty file"),
    case("csv-blank-lines-only", "a.csv", b"\n\n", INVALID, "empty file (only blank lines)"),
    case("csv-header-only", "a.csv", b"id,name,value\n", VALID, columns=3, rows=0),
    case("csv-unclosed-quote", "a.csv", b'a,b\n1,"x\n2,3\n', INVALID,
         "row 2: a quoted field is never closed"),
    case("csv-json-error", "a.csv", b'{"error": "rate limited"}\n', INVALID,
         "expected CSV, got what looks like JSON"),
    case("csv-error-page", "a.csv", ERROR_PAGE, INVALID, "expected CSV, got what looks like HTML"),
    case("csv-zip", "a.csv", b"PK\x03\x04rest", INVALID,
         "expected CSV, got what looks like a ZIP archive"),
    # XML
    case("xml-malformed", "a.xml", b"<a>\n  <b>text</c>\n</a>", INVALID,
         "line 2, column 12: mismatched tag"),
    case("xml-not-closed", "a.xml", b"<a><b/>", INVALID, "line 1, column 8: no element found"),
    case("xml-entity-bomb", "a.xml", BILLION_LAUGHS, INVALID,
         "line 3: declares the entity 'lol'; entity declarations are refused"),
    case("xml-external-entity", "a.xml", EXTERNAL_ENTITY, INVALID,
         "declares the entity 'xxe'; entity declarations are refused"),
    case("rss", "feed.rss", RSS, VALID, root="rss", elements=6),
    case("rss-091-doctype", "feed.xml", RSS_091, VALID, root="rss"),
    case("atom", "feed.atom", ATOM, VALID, root="feed"),
    case("xml-error-page", "feed.xml", ERROR_PAGE, INVALID,
         "expected XML, got what looks like HTML"),
    # HTML
    case("html-valid", "a.html", ERROR_PAGE, VALID, encoding="utf-8", elements=5),
    case("html-meta-charset", "a.htm", b'<meta charset="windows-1252"><p>caf\xe9</p>', VALID,
         encoding="windows-1252", encoding_from="meta"),
    case("html-empty", "a.html", b"", INVALID, "empty file"),
    case("html-whitespace", "a.html", b" \r\n\t ", INVALID, "empty file (only whitespace)"),
    case("html-no-element", "a.html", b"just text", INVALID, "no HTML element found"),
    case("html-json", "a.html", b'{"a": 1}', INVALID, "expected HTML, got what looks like JSON"),
    # other types
    case("exe", "setup.exe", b"MZ\x90\x00\x03", INVALID, "file type .exe is not allowed"),
    case("no-extension-binary", "blob", b"\x00\x01\x02", INVALID,
         "file type (no extension) is not allowed"),
    case("no-extension-json", "export", b'{"a": 1}', VALID, top="object"),
    case("no-extension-allowed", "blob", b"\x00\x01", SKIPPED,
         rules=ValidationRules(allowed_other_extensions=frozenset({""}))),
    case("pdf", "report.pdf", b"%PDF-1.7\n...", SKIPPED, signature="ok"),
    case("pdf-upper-case", "REPORT.PDF", b"%PDF-1.7\n...", SKIPPED),
    case("pdf-error-page", "report.pdf", ERROR_PAGE, INVALID,
         "expected PDF, got what looks like HTML"),
    case("pdf-empty", "report.pdf", b"", INVALID, "empty file"),
    case("xlsx-garbage", "book.xlsx", b"hello", INVALID,
         "expected XLSX, but the file does not start with the XLSX signature"),
    case("gz", "a.csv.gz", b"\x1f\x8b\x08\x00", SKIPPED),
    case("txt", "notes.txt", b"{not checked", SKIPPED),
    case("txt-not-allowed", "notes.txt", b"x", INVALID, "file type .txt is not allowed",
         rules=ValidationRules(allowed_other_extensions=frozenset({".pdf"}))),
]
# fmt: on


@pytest.mark.parametrize(("path", "data", "rules", "verdict", "reason", "details"), CASES)
def test_validate_file(
    path: str,
    data: bytes,
    rules: ValidationRules,
    verdict: Verdict,
    reason: str | None,
    details: dict[str, Any],
) -> None:
    result = check(path, data, rules)
    assert (result.path, result.verdict) == (path, verdict), result
    if reason is None:
        assert result.reason is None
    else:
        assert result.reason is not None and reason in result.reason, result.reason
    assert result.details["bytes"] == len(data)
    assert {k: result.details.get(k) for k in details} == details, result.details


@pytest.mark.parametrize(
    ("path", "head", "kind"),
    [
        ("a.json", b"<html>", "json"),
        ("a.GEOJSON", b"", "json"),
        ("a.jsonl", b"", "jsonl"),
        ("a.ndjson", b"", "jsonl"),
        ("a.csv", b"", "csv"),
        ("a.tsv", b"", "tsv"),
        ("a.xml", b"", "xml"),
        ("a.rss", b"", "xml"),
        ("a.atom", b"", "xml"),
        ("a.xsd", b"", "xml"),
        ("a.html", b"", "html"),
        ("a.htm", b"", "html"),
        ("dir.v2/export", b'<?xml version="1.0"?><a/>', "xml"),
        ("export", b"  <rss version='2.0'>", "xml"),
        ("export", b"<!-- hi --><!DOCTYPE HTML><html>", "html"),
        ("export", b'\xef\xbb\xbf{"a": 1}', "json"),
        ("export", b"[1, 2]", "json"),
        ("export", '{"a": 1}'.encode("utf-16"), "json"),
        ("export", b"id,name\n", "other"),
        ("a.pdf", b"%PDF-1.4", "other"),
        ("a.php", b"<html><body>", "html"),
    ],
)
def test_kind_of(path: str, head: bytes, kind: str) -> None:
    assert kind_of(path, head) == kind


def test_unknown_extension_is_refused_even_when_its_content_is_known() -> None:
    result = check("page.php", ERROR_PAGE)
    assert (result.kind, result.verdict, result.reason) == (
        "html",
        INVALID,
        "file type .php is not allowed",
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"json_schema": {"type": "no-such-type"}}, "json_schema is not a valid JSON Schema"),
        (
            {"json_schemas_by_pattern": {"*.json": {"minLength": "3"}}},
            "json_schemas_by_pattern['*.json'] is not a valid JSON Schema",
        ),
        ({"allowed_other_extensions": frozenset({"pdf"})}, "must start with '.'"),
        ({"max_bytes_parsed": -1}, "must not be negative"),
    ],
)
def test_bad_rules_are_config_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        ValidationRules(**kwargs)


def test_allowed_extensions_are_case_insensitive() -> None:
    rules = ValidationRules(allowed_other_extensions=frozenset({".PDF"}))
    assert rules.allowed_other_extensions == frozenset({".pdf"})


def test_unresolvable_schema_ref_is_a_config_error() -> None:
    rules = ValidationRules(json_schema={"$ref": "https://example.org/nowhere.json"})
    with pytest.raises(ConfigError, match=r"\$ref that cannot be resolved"):
        check("a.json", b"{}", rules)


def test_summarize_counts_every_verdict() -> None:
    checks = [
        check("a.json", b"{}"),
        check("b.json", b"{"),
        check("c.pdf", b"%PDF-"),
        check("d.json", b"1"),
    ]
    assert summarize(checks) == {"valid": 2, "invalid": 1, "skipped": 1}
    assert summarize([]) == {"valid": 0, "invalid": 0, "skipped": 0}


def test_streamed_json_error_position_past_the_first_chunk() -> None:
    body = b"[\n" + (b'  {"id": 1, "text": "' + b"x" * 100 + b'"},\n') * 2000  # ~250 KB
    data = body + b'  {"id": 2 "oops": 1}\n]\n'
    result = check("big.json", data, ValidationRules(max_bytes_parsed=1024))
    assert result.verdict is INVALID
    assert result.reason is not None and result.reason.startswith(
        "line 2002, column 17: after key and value"
    ), result.reason


def test_non_utf8_csv_far_from_the_start() -> None:
    data = b"id,name\n" + b"1,ana\n" * 20_000 + b"2,jos\xe9\n"
    result = check("a.csv", data)
    assert result.reason == "not UTF-8 (looks like windows-1252): byte 0xE9 on line 20002"
    relaxed = check("a.csv", data, ValidationRules(csv_require_utf8=False))
    assert (relaxed.verdict, relaxed.details["rows"]) == (VALID, 20_001)


# --- big files: memory stays flat -----------------------------------------------------------


def _spool_generated(parts: Iterator[bytes]) -> IO[bytes]:
    stream: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=MIB)
    for part in parts:
        stream.write(part)
    stream.seek(0)
    return stream


def _big_csv(size: int, tail: bytes = b"") -> Iterator[bytes]:
    yield b"id,name,text,value\n"
    text = b"lorem ipsum " * 40
    rows = b"".join(b"%d,name %d,%s,%d.5\n" % (i, i, text, i) for i in range(1000))
    for _ in range(size // len(rows) + 1):
        yield rows
    yield tail


def _big_json(size: int, tail: bytes = b"\n]\n") -> Iterator[bytes]:
    item = b'{"id": 1, "ok": true, "tags": ["a", "b"], "text": "' + b"x" * 900 + b'"}'
    batch = b",\n".join([item] * 1000)
    yield b"[\n" + batch
    for _ in range(size // len(batch)):
        yield b",\n" + batch
    yield tail


def _big_jsonl(size: int, tail: bytes = b"") -> Iterator[bytes]:
    batch = b'{"id": 1, "text": "' + b"y" * 400 + b'"}\n'
    batch *= 1000
    for _ in range(size // len(batch) + 1):
        yield batch
    yield tail


def _big_xml(size: int, tail: bytes = b"</channel></rss>\n") -> Iterator[bytes]:
    yield b'<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>\n'
    item = b"<item><title>t</title><description>" + b"z" * 400 + b"</description></item>\n"
    batch = item * 1000
    for _ in range(size // len(batch) + 1):
        yield batch
    yield tail


@pytest.mark.parametrize(
    ("path", "generate", "size", "tail", "verdict", "expected"),
    [
        pytest.param("big.csv", _big_csv, 50 * MIB, b"", VALID, {"columns": 4, "rows": 105_000},
                     id="csv-50MB"),
        pytest.param("big.csv", _big_csv, 50 * MIB, b"1,2\n", INVALID,
                     {"reason": "row 105002 has 2 columns, expected 4"}, id="csv-50MB-ragged-end"),
        pytest.param("big.json", _big_json, 70 * MIB, b"\n]\n", VALID,
                     {"top": "array", "parsed": "streamed (larger than 32 MiB)"}, id="json-70MB"),
        pytest.param("big.json", _big_json, 70 * MIB, b"\n", INVALID,
                     {"reason": "line 77002, column 1: premature EOF"}, id="json-70MB-truncated"),
        pytest.param("big.jsonl", _big_jsonl, 20 * MIB, b"", VALID, {"records": 50_000},
                     id="jsonl-20MB"),
        pytest.param("big.rss", _big_xml, 20 * MIB, b"</channel></rss>\n", VALID,
                     {"root": "rss", "elements": 138_002}, id="xml-20MB"),
        pytest.param("big.rss", _big_xml, 20 * MIB, b"</channel>\n", INVALID,
                     {"reason": "line 46004, column 1: no element found"}, id="xml-20MB-unclosed"),
    ],
)  # fmt: skip
def test_big_files_keep_memory_flat(
    path: str,
    generate: Any,
    size: int,
    tail: bytes,
    verdict: Verdict,
    expected: dict[str, Any],
) -> None:
    with _spool_generated(generate(size, tail)) as stream:
        tracemalloc.start()
        try:
            result = validate_file(path, stream)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert result.verdict is verdict, result
    assert int(result.details["bytes"]) >= size
    seen = {"reason": result.reason, **result.details}
    assert {k: seen[k] for k in expected} == expected
    assert peak < 32 * MIB, f"peak {peak / MIB:.1f} MiB"
