"""XML (well-formed, no entity declarations) and HTML (at least one element)."""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser
from typing import Final
from xml.sax import SAXParseException
from xml.sax.handler import ContentHandler, feature_external_ges, feature_external_pes
from xml.sax.xmlreader import AttributesImpl

from amazoniax_dagster.sync.validation.kinds import (
    _bom,
)
from amazoniax_dagster.sync.validation.rules import (
    _CHUNK,
    Details,
    _Input,
    _Invalid,
)
from amazoniax_dagster.sync.validation.tables import (
    _encoding_label,
)


class _XmlOutline(ContentHandler):
    def __init__(self) -> None:
        super().__init__()
        self.root = ""
        self.elements = 0

    def startElement(self, name: str, attrs: AttributesImpl) -> None:
        if not self.root:
            self.root = name
        self.elements += 1


def _check_xml(item: _Input) -> Details:
    # A DOCTYPE may name an external DTD (old RSS feeds do): expat skips it unread, as
    # nothing may fetch it. Entity declarations, which every entity attack needs, are refused.
    # Imported here: the expat reader pulls in urllib.request, which most jobs never need.
    from defusedxml import EntitiesForbidden
    from defusedxml.expatreader import DefusedExpatParser

    parser = DefusedExpatParser(forbid_dtd=False, forbid_entities=True, forbid_external=False)
    parser.setFeature(feature_external_ges, False)
    parser.setFeature(feature_external_pes, False)
    outline = _XmlOutline()
    parser.setContentHandler(outline)
    item.stream.seek(0)
    try:
        while chunk := item.stream.read(_CHUNK):
            parser.feed(chunk)
        parser.close()
    except SAXParseException as exc:
        line, column = exc.getLineNumber(), (exc.getColumnNumber() or 0) + 1
        raise _Invalid(f"line {line}, column {column}: {exc.getMessage()}") from None
    except EntitiesForbidden as exc:
        raise _Invalid(
            f"line {parser.getLineNumber()}: declares the entity {exc.name!r}; entity "
            "declarations are refused (they enable entity-expansion and external-entity attacks)"
        ) from None
    return {"root": outline.root, "elements": outline.elements}


_META_CHARSET: Final = re.compile(rb"<meta[^>]*?charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.I)


class _HtmlOutline(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements += 1


def _html_encoding(head: bytes) -> tuple[str, str]:
    """The encoding to read an HTML file with, and where it came from."""
    bom = _bom(head)
    if bom is not None:
        return bom[0], "bom"
    match = _META_CHARSET.search(head[:8192])
    if match is not None:
        try:
            name = codecs.lookup(match.group(1).decode("ascii")).name
        except LookupError:
            return "utf-8", "default (unknown meta charset)"
        # as browsers do: a meta tag cannot declare UTF-16/32, the bytes read it as ASCII
        return ("utf-8" if name.startswith(("utf-16", "utf-32")) else name), "meta"
    return "utf-8", "default"


def _check_html(item: _Input) -> Details:
    encoding, source = _html_encoding(item.head)
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    parser = _HtmlOutline()
    has_text = False
    item.stream.seek(0)
    try:
        while True:
            chunk = item.stream.read(_CHUNK)
            text = decoder.decode(chunk, final=not chunk)
            has_text = has_text or bool(text.strip())
            parser.feed(text)
            if not chunk:
                break
        parser.close()
    except AssertionError as exc:  # how html.parser (via _markupbase) reports what it can't read
        line, column = parser.getpos()
        raise _Invalid(f"line {line}, column {column + 1}: {exc}") from None
    if not has_text:
        raise _Invalid("empty file (only whitespace)")
    if parser.elements == 0:
        raise _Invalid("no HTML element found")
    return {
        "encoding": _encoding_label(encoding),
        "encoding_from": source,
        "elements": parser.elements,
    }
