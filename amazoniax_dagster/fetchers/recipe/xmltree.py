"""An XML document as the dict/list tree a JSON document parses to, so one path reads both.

``cursor_path: response.nextPageToken``, ``total_path: feed.totalResults`` and
``records: response.vehicles.vehicle`` then work on an XML reply as on a JSON one. The mapping
(xmltodict's conventions; parsed by defusedxml, so entities and external references are
refused, never expanded):

* the document is ``{root name: value of the root}``;
* an element with child elements or attributes is a dict: children by name (a name repeated
  among siblings gives a list, in document order), attributes as ``@name``, the element's own
  non-blank text as ``#text``;
* a leaf element without attributes is its text, stripped: ``true``/``false`` as booleans, a
  canonical integer (``0``, ``47``; not ``007``) as an int, no text as None, else the string.

Names are local: a namespace (``{uri}`` or ``prefix:``) is dropped. An element that occurs once
is a dict (or a scalar), not a one-element list: :func:`records_at` reads a records path
either way.
"""

from __future__ import annotations

import re
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from amazoniax_dagster.fetchers.recipe import jsonpath

_INTEGER = re.compile(r"0|-?[1-9]\d{0,30}")  # canonical: its int prints back the same


class XmlTreeError(ValueError):
    """The text is not well-formed XML, or it declares entities (refused)."""


def parse(content: bytes | str) -> dict[str, Any]:
    """``content`` (an XML document) as ``{root name: tree}``; XmlTreeError when it is not."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        root = SafeET.fromstring(data)
    except (SafeET.ParseError, DefusedXmlException) as exc:
        raise XmlTreeError(f"not well-formed XML: {exc}") from exc
    return {local_name(root.tag): element_value(root)}


def element_value(element: Element) -> Any:
    """One element as a dict (children, ``@attributes``, ``#text``) or as its typed text."""
    text = (element.text or "").strip()
    if not len(element) and not element.attrib:
        return typed(text)
    value: dict[str, Any] = {f"@{local_name(k)}": v for k, v in element.attrib.items()}
    for child in element:
        if not isinstance(child.tag, str):  # a comment or processing instruction
            continue
        name, item = local_name(child.tag), element_value(child)
        if name not in value:
            value[name] = item
        elif isinstance(value[name], list):  # an element's value is never a list itself
            value[name].append(item)
        else:
            value[name] = [value[name], item]
    if text:
        value["#text"] = text
    return value


def typed(text: str) -> Any:
    """A leaf's text as JSON would carry it: booleans, canonical integers, None for none."""
    if not text:
        return None
    if text in ("true", "false"):
        return text == "true"
    return int(text) if _INTEGER.fullmatch(text) else text


def links(tree: Any) -> dict[str, str]:
    """``rel`` -> ``href`` of the ``<link rel=... href=...>`` children of the document's root
    (Atom's way, and many XML APIs', of writing the web links a ``Link`` header carries); the
    first link of a relation wins. Records' own links, deeper down, are not the document's."""
    root = next(iter(tree.values()), None) if isinstance(tree, dict) and len(tree) == 1 else None
    candidates = root.get("link") if isinstance(root, dict) else None
    found: dict[str, str] = {}
    for link in candidates if isinstance(candidates, list) else [candidates]:
        if not isinstance(link, dict) or not isinstance(link.get("@href"), str):
            continue
        for rel in str(link.get("@rel", "")).split():
            found.setdefault(rel.lower(), link["@href"])
    return found


def local_name(tag: str) -> str:
    """``{uri}name`` or ``prefix:name`` -> ``name``."""
    return tag.rpartition("}")[2].rpartition(":")[2]


def records_at(tree: Any, path: str) -> list[Any] | None:
    """The records at ``path`` in an XML tree, always a list: one element (a dict or a scalar)
    is a list of one, an empty container (the path's parent is there, empty or without the
    last element) is no records. None when the parent is not there either."""
    found = jsonpath.find(tree, path)
    if found is not jsonpath.MISSING:
        return found if isinstance(found, list) else [] if found is None else [found]
    value = tree
    for part in jsonpath.parse_path(path)[:-1]:
        if isinstance(part, str) and isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(part, int) and isinstance(value, list) and -len(value) <= part < len(value):
            value = value[part]
        else:
            return None
    return [] if value is None or isinstance(value, dict) else None


def looks_like_xml(content: bytes, content_type: str) -> bool:
    """Whether a reply is XML: its media type says so, or a body that is neither JSON nor HTML
    by its media type starts with ``<``."""
    if content_type.endswith(("/xml", "+xml")):
        return True
    if "json" in content_type or "html" in content_type:
        return False
    return content.lstrip()[:1] == b"<"


__all__ = [
    "XmlTreeError",
    "element_value",
    "links",
    "local_name",
    "looks_like_xml",
    "parse",
    "records_at",
    "typed",
]
