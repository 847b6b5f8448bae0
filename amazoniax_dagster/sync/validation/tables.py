"""CSV and TSV: encoding, dialect, and a rectangular table counted row by row."""

from __future__ import annotations

import codecs
import csv
import io
import re
from typing import IO, TYPE_CHECKING, Final

from amazoniax_dagster.sync.validation.kinds import (
    _bom,
)
from amazoniax_dagster.sync.validation.rules import (
    _CHUNK,
    _SNIFF_CHARS,
    Details,
    _Input,
    _Invalid,
)

if TYPE_CHECKING:
    from _csv import Reader


# among equally likely guesses, name the encoding a data file is most likely to be in
_PREFERRED_ENCODINGS: Final = (
    "cp1252",
    "iso8859_15",
    "latin_1",
    "cp1250",
    "cp1251",
    "cp932",
    "shift_jis",
    "euc_jp",
    "gb18030",
    "big5",
    "cp949",
    "euc_kr",
    "utf_16_le",
    "utf_16_be",
)


def _check_table(item: _Input) -> Details:
    bom = _bom(item.head)
    encoding = bom[0] if bom else "utf-8"
    if bom is None and not _looks_utf8(item.head, complete=item.size <= len(item.head)):
        encoding = _fallback_encoding(item)
    try:
        return {"encoding": encoding, **_scan_table(item, encoding)}
    except UnicodeDecodeError:
        if encoding != "utf-8":
            raise _Invalid(_undecodable(item.stream, encoding)) from None
    encoding = _fallback_encoding(item)
    try:
        return {"encoding": encoding, **_scan_table(item, encoding)}
    except UnicodeDecodeError:
        raise _Invalid(_undecodable(item.stream, encoding)) from None


def _looks_utf8(head: bytes, complete: bool) -> bool:
    """Whether the first bytes are UTF-8 text (a sequence cut by the head's end is fine)."""
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return not complete and exc.reason == "unexpected end of data"
    return True


def _fallback_encoding(item: _Input) -> str:
    """The encoding a non-UTF-8 table seems to be in, if the rules accept one (else _Invalid)."""
    stream = item.stream
    where = _first_undecodable(stream, "utf-8")
    if where is None:  # valid UTF-8, but with NUL bytes: binary, or UTF-16 without a BOM
        offset = item.head.find(b"\x00")
        where = (offset, item.head.count(b"\n", 0, offset) + 1, 0)
    offset, line, byte = where
    sample = item.head
    if len(sample) < item.size and offset + 16 * 1024 > len(sample):  # add the bad part
        stream.seek((offset - 16 * 1024) & ~3)  # aligned, for UTF-16/32 without a BOM
        sample = item.head[: 32 * 1024] + stream.read(32 * 1024)
    guess = _guess_encoding(sample)
    at = f"byte 0x{byte:02X} on line {line}"
    if guess is None:
        raise _Invalid(f"not UTF-8, nor any text encoding (binary data?): {at}")
    if item.rules.csv_require_utf8:
        raise _Invalid(f"not UTF-8 (looks like {guess}): {at}", {"encoding_guess": guess})
    return guess


def _guess_encoding(sample: bytes) -> str | None:
    """charset-normalizer's guess, named as data files usually declare it ("windows-1252")."""
    import charset_normalizer

    matches = charset_normalizer.from_bytes(sample)
    best = matches.best()
    if best is None:
        return None
    candidates = {
        name
        for match in matches
        if abs(match.chaos - best.chaos) < 0.01 and abs(match.coherence - best.coherence) < 0.01
        for name in match.could_be_from_charset
    }
    chosen = next((name for name in _PREFERRED_ENCODINGS if name in candidates), best.encoding)
    return _encoding_label(chosen)


def _encoding_label(python_name: str) -> str:
    name = codecs.lookup(python_name).name
    label = re.sub(r"^cp(125\d)$", r"windows-\1", name)
    label = re.sub(r"^iso8859-(\d+)$", r"iso-8859-\1", label)
    try:
        codecs.lookup(label)
    except LookupError:
        return name
    return label


def _first_undecodable(stream: IO[bytes], encoding: str) -> tuple[int, int, int] | None:
    """Offset, line and value of the first byte that does not decode, or None."""
    stream.seek(0)
    carry = b""
    base = 0  # offset of carry + chunk in the file
    lines = 1
    ascii_lines = not codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))
    while True:
        chunk = stream.read(_CHUNK)
        data = carry + chunk
        if not data:
            return None
        try:
            data.decode(encoding)
            good = len(data)
        except UnicodeDecodeError as exc:
            if chunk and exc.end >= len(data) - 1 and len(data) - exc.start < 8:
                good = exc.start  # maybe a character cut by the chunk's end: read on
            else:
                offset = base + exc.start
                line = lines + data.count(b"\n", 0, exc.start) if ascii_lines else 0
                return offset, line, data[exc.start]
        if not chunk:
            return None
        if ascii_lines:
            lines += data.count(b"\n", 0, good)
        carry = data[good:]
        base += good


def _undecodable(stream: IO[bytes], encoding: str) -> str:
    where = _first_undecodable(stream, encoding)
    label = _encoding_label(encoding)
    if where is None:
        return f"does not decode as {label}"
    offset, line, byte = where
    at = f"line {line}" if line else f"offset {offset}"
    return f"does not decode as {label} (byte 0x{byte:02X} on {at})"


def _scan_table(item: _Input, encoding: str) -> Details:
    """Sniff the dialect, then check every row has the header's column count."""
    item.stream.seek(0)
    text = io.TextIOWrapper(item.stream, encoding=encoding, errors="strict", newline="")
    try:
        sample = text.read(_SNIFF_CHARS)
        if len(sample) == _SNIFF_CHARS and "\n" in sample:
            sample = sample[: sample.rfind("\n") + 1]
        dialect, how = _sniff_dialect(sample, item.kind)
        text.seek(0)
        return {**_count_rows(csv.reader(text, dialect, strict=True)), "dialect": how}
    finally:
        text.detach()


def _sniff_dialect(sample: str, kind: str) -> tuple[type[csv.Dialect], str]:
    delimiters = "\t" if kind == "tsv" else ",;\t|"
    try:
        return csv.Sniffer().sniff(sample, delimiters=delimiters), "sniffed"
    except csv.Error:
        return (csv.excel_tab if kind == "tsv" else csv.excel), "default"


def _count_rows(reader: Reader) -> Details:
    expected = 0
    records = 0
    blank = 0
    delimiter = reader.dialect.delimiter
    try:
        for row in reader:
            if not row:
                blank += 1
                continue
            records += 1
            if records == 1:
                expected = len(row)
            elif len(row) != expected:
                line = reader.line_num
                at = f" (line {line})" if line != records + blank else ""
                raise _Invalid(
                    f"row {records} has {len(row)} columns, expected {expected}{at}",
                    {"delimiter": delimiter, "columns": expected},
                )
    except csv.Error as exc:
        message = str(exc)
        if message == "unexpected end of data":
            message = "a quoted field is never closed (unexpected end of data)"
        raise _Invalid(f"row {records + 1}: {message}", {"delimiter": delimiter}) from None
    if records == 0:
        raise _Invalid("empty file (only blank lines)")
    details: Details = {
        "delimiter": delimiter,
        "quotechar": reader.dialect.quotechar or "",
        "columns": expected,
        "rows": records - 1,
    }
    if blank:
        details["blank_lines"] = blank
    return details
