"""What a fetched file looks like, reduced to a set of features that survive new data.

Validation compares a candidate fetcher's files with a channel's history by these features,
not by bytes: records change every day, their shape does not. JSON and XML are reduced to
their key/element paths (array positions collapsed; JSON also keeps key names and values, which
survive a redesign around the same records), CSV to its header, HTML to its
landmarks (repeated ``tag.class`` blocks, ids, headings) plus the words and numbers of its
visible text and data-* attributes, so a
markup change that keeps the data still shares the text, and a page that lost its data
shares neither.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from dataclasses import dataclass
from html.parser import HTMLParser

_DIGITS = re.compile(r"\d+")
_HEXISH = re.compile(r"[0-9a-f]{12,}", re.IGNORECASE)
_MAX_BYTES = 4 * 1024 * 1024  # a signature needs the head of a file, not all of it
_MAX_VALUES = 5000  # JSON scalar values kept per file


@dataclass(frozen=True)
class Signature:
    kind: str  # json | csv | xml | html | text | binary
    features: frozenset[str]
    # Secondary features: visible text (HTML), cell values (CSV), key names (JSON).
    text: frozenset[str] = frozenset()
    values: frozenset[str] = frozenset()  # JSON scalar values: the data itself


def name_shape(path: str) -> str:
    """``sales-2026-11-01.csv`` and ``sales-2026-11-08.csv`` have one shape: ``sales-9-9-9.csv``."""
    return _DIGITS.sub("9", _HEXISH.sub("X", path.rsplit("/", 1)[-1].lower()))


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard similarity; two empty sets are the same shape."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def signature(name: str, data: bytes) -> Signature:
    head = data[:_MAX_BYTES]
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    text = head.decode("utf-8", errors="replace")
    stripped = text.lstrip()
    if suffix in ("json", "jsonl", "ndjson") or stripped[:1] in ("{", "["):
        parsed = _json_features(text)
        if parsed is not None:
            # Key names wherever they sit: a renamed wrapper keeps the records' own keys; and
            # the values: an API redesigned around the same records keeps its data.
            keys = frozenset(p.rsplit(".", 1)[-1].removesuffix("[]") for p in parsed[0])
            return Signature("json", parsed[0], keys, parsed[1])
    if suffix in ("csv", "tsv"):
        return _csv_signature(text, "\t" if suffix == "tsv" else ",")
    if suffix in ("html", "htm") or stripped[:15].lower().startswith(("<!doctype html", "<html")):
        return _html_signature(text)
    if suffix in ("xml", "rss", "atom") or stripped.startswith("<"):
        return Signature("xml", _xml_features(text), _xml_text(text))
    if b"\x00" in head[:1024]:
        return Signature("binary", frozenset({suffix}))
    lines = frozenset(line.strip() for line in text.splitlines() if line.strip())
    return Signature("text", frozenset({suffix}), lines)


def _json_features(text: str) -> tuple[frozenset[str], frozenset[str]] | None:
    """The key paths and the scalar values (strings and numbers of 2+ characters)."""
    try:
        values = [json.loads(text)]
    except json.JSONDecodeError:
        try:  # JSON lines
            values = [json.loads(line) for line in text.splitlines()[:200] if line.strip()]
        except json.JSONDecodeError:
            return None
    paths: set[str] = set()
    scalars: set[str] = set()
    for value in values:
        _walk(value, "$", paths, scalars, depth=0)
    return frozenset(paths), frozenset(scalars)


def _walk(value: object, path: str, out: set[str], scalars: set[str], depth: int) -> None:
    if depth > 6 or len(out) > 2000:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}"
            out.add(child)
            _walk(item, child, out, scalars, depth + 1)
    elif isinstance(value, list):
        for item in value[:1000]:
            _walk(item, f"{path}[]", out, scalars, depth + 1)
    elif isinstance(value, str | int | float) and not isinstance(value, bool):
        text = str(value).strip()
        if len(text) >= 2 and len(scalars) < _MAX_VALUES:
            scalars.add(text)


def _csv_signature(text: str, delimiter: str) -> Signature:
    rows = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(rows, [])
    cells = {cell.strip() for row in list(rows)[:500] for cell in row if cell.strip()}
    return Signature("csv", frozenset(h.strip().lower() for h in header), frozenset(cells))


_XML_TAG = re.compile(r"<([A-Za-z_][\w:.-]*)")


def _xml_features(text: str) -> frozenset[str]:
    return frozenset(tag.lower() for tag in _XML_TAG.findall(text[:200_000]))


_XML_TEXT = re.compile(r">([^<>]+)<")
_TOKEN = re.compile(r"\w[\w.,:/-]*\w|\w")


def _xml_text(text: str) -> frozenset[str]:
    """Element text (titles, ids, dates): RSS and Atom of one feed share it."""
    return frozenset(" ".join(t.split()) for t in _XML_TEXT.findall(text[:2_000_000]) if t.strip())


class _Landmarks(HTMLParser):
    _SKIP = frozenset({"script", "style", "noscript", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: Counter[str] = Counter()
        self.ids: set[str] = set()
        self.text: set[str] = set()
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        attributes = dict(attrs)
        for cls in (attributes.get("class") or "").split():
            self.blocks[f"{tag}.{cls}"] += 1
        for name, value in attrs:  # record ids often live in data-* attributes
            if name.startswith("data-") and value:
                self.text.add(value.strip())
        if attributes.get("id"):
            self.ids.add(f"#{attributes['id']}")
        if tag in ("h1", "h2", "h3", "table", "form", "ul", "ol", "article"):
            self.blocks[tag] += 2

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1

    def handle_data(self, data: str) -> None:
        # Words and numbers, not whole text nodes: "$339.29" and "€339.29", or "23 Sep" and
        # "Added 23 Sep", are the same data in another markup.
        if not self._skipping:
            self.text.update(_TOKEN.findall(data))


def _html_signature(text: str) -> Signature:
    parser = _Landmarks()
    parser.feed(text)
    repeated = {block for block, count in parser.blocks.items() if count >= 2}
    return Signature("html", frozenset(repeated | parser.ids), frozenset(parser.text))
