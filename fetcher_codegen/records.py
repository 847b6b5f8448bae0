"""Find the records in a body: the list of similar objects a response exists to carry.

One function per format, one entry point (:func:`find_records`). A record is flattened to
``{field: text}`` (nested objects as ``a.b``; numbers and booleans as JSON writes them), which
is what provenance, the summary and the proof compare. Heuristics, on purpose simple:

* JSON: the list of objects with the most ``len(list) x shared scalar fields`` (depth <= 5;
  one shared field is enough: ``[{"id": 1}, {"id": 2}]`` is a list of records);
* CSV: the rows (at least two columns);
* RSS/Atom: the items/entries; other XML: the biggest run of same-named children (its
  ``path`` is their path in the XML tree recipes read: ``response.vehicles.vehicle``);
* HTML: the biggest group of sibling elements with the same tag and class (at least 3, each
  with at least 1 value: texts of its leaves, ``data-*`` attributes, link targets); tables
  are such groups too (their ``tr``, cells keyed by column position: ``td[2]``); JSON in
  ``<script type="application/json">`` (or ``ld+json``) is read as JSON when it holds more.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET

from fetcher_codegen.har import Entry, Format

Record = dict[str, str]
MAX_JSON_DEPTH = 5
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
     "track", "wbr"}
)  # fmt: skip
_SKIP_TAGS = frozenset({"script", "style", "head", "noscript", "template", "svg"})
_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.IGNORECASE | re.DOTALL)
_JSON_TYPE = re.compile(r"\btype\s*=\s*[\"']?application/(?:ld\+)?json", re.IGNORECASE)
_SCRIPT_SRC = re.compile(r"\bsrc\s*=", re.IGNORECASE)
# `window.__STATE__ = {`, `var data = [`: a JSON literal assigned to a name
_ASSIGNMENT = re.compile(r"[\w$.\[\]\"']+\s*=\s*(?=[\[{])")
_SIMPLE_KEY = re.compile(r"[A-Za-z_][\w-]*")


@dataclass(frozen=True)
class Records:
    """The records of one body; ``path`` is a JSON path for JSON and XML (in the tree of
    :mod:`amazoniax_dagster.fetchers.recipe.xmltree`), a description otherwise."""

    format: Format
    path: str
    items: tuple[Record, ...]

    @property
    def count(self) -> int:
        return len(self.items)


def find_records(entry: Entry) -> Records | None:
    """The records ``entry``'s body carries, or None when it carries none."""
    fmt = entry.format
    try:
        if fmt == "json":
            return json_records(entry.json)
        if fmt == "csv" or (fmt == "text" and entry.is_download):
            return csv_records(entry.text)
        if fmt in ("rss", "atom", "xml"):
            return xml_records(entry.text)
        if fmt == "html":
            return html_records(entry.text)
    except (ValueError, csv.Error, SafeET.ParseError):
        return None
    return None


# --- JSON ------------------------------------------------------------------------------------


def json_path(parts: tuple[str | int, ...]) -> str:
    """A path in :mod:`amazoniax_dagster.fetchers.recipe.jsonpath` syntax (``$`` = the root)."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _SIMPLE_KEY.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text or "$"


def flatten(value: Any, prefix: str = "") -> Record:
    """Scalars of a JSON object as ``{"a.b": "text"}``; lists of scalars joined by commas."""
    out: Record = {}
    if isinstance(value, dict):
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}{key}."))
    elif isinstance(value, list):
        if value and all(not isinstance(v, dict | list) for v in value):
            out[prefix.rstrip(".")] = ",".join(scalar_text(v) for v in value)
    elif value is not None:
        out[prefix.rstrip(".")] = scalar_text(value)
    return out


def scalar_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def json_lists(
    data: Any, parts: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], list[Any]]]:
    """Every list in ``data`` with its path (list elements are not searched)."""
    if len(parts) > MAX_JSON_DEPTH:
        return
    if isinstance(data, list):
        yield parts, data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from json_lists(value, (*parts, str(key)))


def json_records(data: Any) -> Records | None:
    best: tuple[int, str, list[Record]] | None = None
    for parts, items in json_lists(data):
        objects = [item for item in items if isinstance(item, dict)]
        if not objects or len(objects) < 0.8 * len(items):
            continue
        flat = [flatten(item) for item in objects]
        shared = set(flat[0]).intersection(*flat[1:])
        if not shared:
            continue
        score = len(objects) * len(shared)
        if best is None or score > best[0]:
            best = (score, json_path(parts), flat)
    if best is None:
        return _scalar_records(data)
    return Records("json", best[1], tuple(best[2]))


def _scalar_records(data: Any) -> Records | None:
    """Without object lists: the longest list of distinct strings of one shape with digits
    (``RPT-0001``, ``RPT-0002``: ids), one record each, its field ``value``."""
    best: tuple[int, str, list[Record]] | None = None
    for parts, items in json_lists(data):
        if len(items) < 2 or not all(isinstance(item, str) and item for item in items):
            continue
        shape, alike = Counter(_shape(item) for item in items).most_common(1)[0]
        if len(set(items)) < len(items) or alike < 0.8 * len(items) or "9" not in shape:
            continue
        if best is None or len(items) > best[0]:
            best = (len(items), json_path(parts), [{"value": item} for item in items])
    return None if best is None else Records("json", best[1], tuple(best[2]))


def _shape(text: str) -> str:
    """``RPT-0042`` -> ``A-9``: runs of letters and of digits by class, the rest kept."""
    return re.sub(r"[A-Za-z]+", "A", re.sub(r"\d+", "9", text))


# --- CSV -------------------------------------------------------------------------------------


def csv_records(text: str) -> Records | None:
    sample = text[:8192]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    if not reader.fieldnames or len(reader.fieldnames) < 2:
        return None
    rows = [
        {str(k): str(v) for k, v in row.items() if k is not None and v not in (None, "")}
        for row in reader
    ]
    return Records("csv", "rows", tuple(row for row in rows if row))


# --- XML, RSS, Atom --------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _element_record(element: Element) -> Record:
    record: Record = {f"@{_local(k)}": v for k, v in element.attrib.items()}
    for child in element:
        name = _local(child.tag)
        text = (child.text or "").strip()
        if text:
            record.setdefault(name, text)
        for key, value in child.attrib.items():
            if _local(key) in ("href", "term", "url"):
                record.setdefault(f"{name}@{_local(key)}", value)
    if not len(element) and (element.text or "").strip():
        record["text"] = (element.text or "").strip()
    return record


def xml_records(text: str) -> Records | None:
    root = SafeET.fromstring(text.encode("utf-8"))
    root_name = _local(root.tag)
    if root_name == "rss":
        items = root.findall("./channel/item")
        return Records("rss", "channel/item", tuple(_element_record(i) for i in items))
    if root_name == "feed":
        entries = [child for child in root if _local(child.tag) == "entry"]
        return Records("atom", "feed/entry", tuple(_element_record(e) for e in entries))
    best: tuple[int, str, list[Element]] | None = None
    for parts, parent in _xml_paths(root, (root_name,)):
        counts = Counter(_local(child.tag) for child in parent)
        for name, count in counts.items():
            if count >= 2 and (best is None or count > best[0]):
                path = json_path((*parts, name))
                best = (count, path, [c for c in parent if _local(c.tag) == name])
    if best is None:
        return None
    return Records("xml", best[1], tuple(_element_record(e) for e in best[2]))


def _xml_paths(
    element: Element, parts: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], Element]]:
    """Every element with its path in the XML tree recipes read (``response.vehicles``; a
    repeated element by its position: ``a.b[1]``)."""
    yield parts, element
    counts = Counter(_local(child.tag) for child in element)
    seen: Counter[str] = Counter()
    for child in element:
        name = _local(child.tag)
        here: tuple[str | int, ...] = (*parts, name)
        if counts[name] > 1:
            here = (*here, seen[name])
        seen[name] += 1
        yield from _xml_paths(child, here)


# --- HTML ------------------------------------------------------------------------------------


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node]
    texts: list[str]

    def signature(self) -> str:
        return f"{self.tag}.{'.'.join(sorted(self.attrs.get('class', '').split()))}"

    def values(self) -> Record:
        """``data-*`` attributes, link targets and leaf texts of this element and below."""
        out: Record = {}
        self._collect(out, "")
        return out

    def _collect(self, out: Record, where: str, position: int = 0) -> None:
        here = f"{where}/{self.signature()}" if where else self.signature()
        here += f"[{position}]" if position else ""
        for key, value in self.attrs.items():
            if (key.startswith("data-") or key in ("href", "datetime", "src")) and value:
                out.setdefault(f"{here}@{key}", value)
        text = " ".join(" ".join(self.texts).split())
        if text:
            out.setdefault(f"{here}#text", text)
        same = Counter(child.signature() for child in self.children)
        seen: Counter[str] = Counter()
        for child in self.children:
            signature = child.signature()
            seen[signature] += 1
            # siblings alike (table cells, list items) are told apart by their position
            child._collect(out, here, seen[signature] if same[signature] > 1 else 0)


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, [], [])
        self.stack = [self.root]
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skipping:
            if tag in _SKIP_TAGS:
                self.skipping += 1
            return
        if tag in _SKIP_TAGS:
            self.skipping = 1
            return
        node = Node(tag, {k: v or "" for k, v in attrs}, [], [])
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        if self.skipping:
            if tag in _SKIP_TAGS:
                self.skipping -= 1
            return
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        if not self.skipping and data.strip():
            self.stack[-1].texts.append(data.strip())


def parse_html(text: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root


def _walk(node: Node) -> Iterator[Node]:
    yield node
    for child in node.children:
        yield from _walk(child)


def repeated_blocks(root: Node, minimum: int = 3) -> tuple[str, list[Node]] | None:
    """The biggest group of same-signature siblings that look like records."""
    best: tuple[float, str, list[Node]] | None = None
    for parent in _walk(root):
        by_signature: dict[str, list[Node]] = {}
        for child in parent.children:
            by_signature.setdefault(child.signature(), []).append(child)
        for signature, nodes in by_signature.items():
            if len(nodes) < minimum or signature.split(".")[0] in ("option", "br", "hr"):
                continue
            sizes = [len(node.values()) for node in nodes]
            average = sum(sizes) / len(sizes)
            if average < 1:
                continue
            score = len(nodes) * average
            if best is None or score > best[0]:
                best = (score, f"{parent.signature()} > {signature}", nodes)
    return None if best is None else (best[1], best[2])


def script_json_records(text: str) -> Records | None:
    """The records of JSON embedded in the page's scripts: ``<script type="application/json">``
    blocks, and JSON assigned in inline scripts (``window.__INITIAL_STATE__ = {...}``)."""
    best: Records | None = None
    for number, data in enumerate(_script_json(text)):
        found = json_records(data)
        if found is not None and (best is None or found.count > best.count):
            best = Records("json", f"script[{number}] {found.path}", found.items)
    return best


def _script_json(text: str) -> Iterator[Any]:
    decoder = json.JSONDecoder()
    for match in _SCRIPT.finditer(text):
        attrs, body = match.group(1), match.group(2)
        if _JSON_TYPE.search(attrs):
            try:
                yield json.loads(body)
            except ValueError:
                continue
        elif not _SCRIPT_SRC.search(attrs):
            for assignment in _ASSIGNMENT.finditer(body):
                try:
                    yield decoder.raw_decode(body, assignment.end())[0]
                except ValueError:
                    continue


def html_records(text: str) -> Records | None:
    """The markup's repeated blocks, or the embedded JSON records when those are more."""
    found = repeated_blocks(parse_html(text))
    embedded = script_json_records(text)
    if found is None or (embedded is not None and embedded.count > len(found[1])):
        return None if embedded is None else Records("html", embedded.path, embedded.items)
    where, nodes = found
    records = []
    for node in nodes:
        values = node.values()
        prefix = node.signature()
        records.append(
            {key.removeprefix(prefix).lstrip("/") or key: v for key, v in values.items()}
        )
    return Records("html", where, tuple(records))


def html_texts(text: str) -> set[str]:
    """Every text and attribute value of an HTML document (for checking values in a DOM)."""
    values: set[str] = set()
    for node in _walk(parse_html(text)):
        values.update(v for v in node.attrs.values() if v)
        joined = " ".join(" ".join(node.texts).split())
        if joined:
            values.add(joined)
            values.update(node.texts)
    return values


__all__ = [
    "Node",
    "Record",
    "Records",
    "csv_records",
    "find_records",
    "flatten",
    "html_records",
    "html_texts",
    "json_lists",
    "json_path",
    "json_records",
    "parse_html",
    "repeated_blocks",
    "scalar_text",
    "script_json_records",
    "xml_records",
]
