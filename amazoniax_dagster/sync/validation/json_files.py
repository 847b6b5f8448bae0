"""JSON and JSON Lines: UTF-8, well-formed, standard constants only, and the schema when one
applies."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any, Final

from amazoniax_dagster.core.errors import ConfigError
from amazoniax_dagster.sync.validation.kinds import (
    _bom,
)
from amazoniax_dagster.sync.validation.rules import (
    _CHUNK,
    JSON_STREAM_ABOVE,
    Details,
    _human_bytes,
    _Input,
    _Invalid,
    _short,
)

if TYPE_CHECKING:
    from jsonschema.protocols import Validator


_JSON_TOP_EVENTS: Final[Mapping[str, str]] = {
    "start_map": "object",
    "start_array": "array",
    "string": "string",
    "number": "number",
    "integer": "number",
    "double": "number",
    "boolean": "boolean",
    "null": "null",
}


_UTF8_CONTINUATION: Final = bytes(range(0x80, 0xC0))


class _NonStandardConstant(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NonStandardConstant(name)


def _json_encoding(item: _Input, what: str) -> int:
    """How many BOM bytes to skip; non-UTF-8 byte order marks are refused."""
    bom = _bom(item.head)
    if bom is None:
        return 0
    if bom[0] != "utf-8-sig":
        raise _Invalid(f"{what} must be UTF-8 (RFC 8259), this file is {bom[0].upper()}")
    return bom[1]


def _check_json(item: _Input) -> Details:
    skip = _json_encoding(item, "JSON")
    details: Details = {"encoding": "utf-8-sig" if skip else "utf-8"}
    pattern, validator = item.rules.json_validator_for(item.path)
    if pattern is not None:
        details["schema_pattern"] = pattern
    fits = item.size <= item.rules.max_bytes_parsed
    if fits and (item.size <= JSON_STREAM_ABOVE or validator is not None):
        doc = _load_json(item.stream, skip)
        details.update(parsed="whole", top=_json_type(doc))
        if isinstance(doc, list):
            details["items"] = len(doc)
        if validator is not None:
            _check_against_schema(validator, doc, where="")
            details["schema"] = "valid"
        return details
    top = _stream_json(item.stream, skip)
    limit = min(JSON_STREAM_ABOVE, item.rules.max_bytes_parsed)
    details.update(parsed=f"streamed (larger than {_human_bytes(limit)})", top=top)
    if validator is not None:
        details["schema"] = (
            f"skipped: larger than max_bytes_parsed ({_human_bytes(item.rules.max_bytes_parsed)})"
        )
    return details


def _load_json(stream: IO[bytes], skip: int) -> Any:
    stream.seek(skip)
    data = stream.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _text_position(data, exc.start)
        raise _Invalid(
            f"line {line}, column {column}: not UTF-8 (byte 0x{data[exc.start]:02X})"
        ) from None
    del data
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise _Invalid(f"line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except _NonStandardConstant as exc:
        _, error = _parse_json_stream(stream, skip)  # json.loads does not say where
        where = f"line {error[0]}, column {error[1]}: " if error else ""
        raise _Invalid(f"{where}{exc} is not valid JSON") from None
    except RecursionError:
        raise _Invalid("nested too deeply to check") from None


def _stream_json(stream: IO[bytes], skip: int) -> str:
    """Check well-formedness chunk by chunk with ijson; the type of the top-level value."""
    top, error = _parse_json_stream(stream, skip)
    if error is not None:
        line, column, message = error
        raise _Invalid(f"line {line}, column {column}: {message}")
    return top


def _parse_json_stream(stream: IO[bytes], skip: int) -> tuple[str, tuple[int, int, str] | None]:
    """The top-level value's type, and the first error's line, column and message if any."""
    import ijson  # type: ignore[import-untyped]  # only for JSON too large to load whole

    events = ijson.utils.sendable_list()
    parser = ijson.basic_parse_coro(events, use_float=True)
    stream.seek(skip)
    top = ""
    chunks = 0
    try:
        while chunk := stream.read(_CHUNK):
            parser.send(chunk)
            if not top and events:
                top = _JSON_TOP_EVENTS.get(events[0][0], "value")
            events.clear()
            chunks += 1
        parser.close()
    except ijson.JSONError:
        return top or "value", _locate_json_error(stream, skip, chunks)
    return top or "value", None


def _locate_json_error(stream: IO[bytes], skip: int, good_chunks: int) -> tuple[int, int, str]:
    """Re-parse up to the failing chunk, then byte by byte: where and what the error is."""
    import ijson

    events = ijson.utils.sendable_list()
    parser = ijson.basic_parse_coro(events, use_float=True)
    position = _TextPosition()
    stream.seek(skip)
    try:
        for _ in range(good_chunks):
            chunk = stream.read(_CHUNK)
            parser.send(chunk)
            events.clear()
            position.advance(chunk)
        chunk = stream.read(_CHUNK)
        for index in range(len(chunk)):
            parser.send(chunk[index : index + 1])
            events.clear()
            position.advance(chunk[index : index + 1])
        parser.close()
    except ijson.JSONError as exc:
        return position.line, position.column + 1, _ijson_message(exc)
    return position.line, position.column + 1, "invalid JSON"


def _ijson_message(exc: Exception) -> str:
    raw = exc.args[0] if exc.args else ""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    first = text.strip().splitlines()[0] if text.strip() else "invalid JSON"
    return re.sub(r"^(lexical|parse) error: ", "", first).rstrip(".")


class _TextPosition:
    """Line and column (in characters) reached after the UTF-8 bytes seen so far."""

    def __init__(self) -> None:
        self.line = 1
        self.column = 0

    def advance(self, data: bytes) -> None:
        newlines = data.count(b"\n")
        if newlines:
            self.line += newlines
            self.column = _utf8_chars(data[data.rfind(b"\n") + 1 :])
        else:
            self.column += _utf8_chars(data)


def _utf8_chars(data: bytes) -> int:
    return len(data.translate(None, _UTF8_CONTINUATION))


def _text_position(data: bytes, offset: int) -> tuple[int, int]:
    position = _TextPosition()
    position.advance(data[:offset])
    return position.line, position.column + 1


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def _check_against_schema(validator: Validator, doc: Any, where: str) -> None:
    from jsonschema.exceptions import best_match
    from referencing.exceptions import Unresolvable

    try:
        error = best_match(validator.iter_errors(doc))
    except Unresolvable as exc:
        raise ConfigError(f"the JSON Schema has a $ref that cannot be resolved: {exc}") from exc
    except RecursionError:
        raise _Invalid(f"{where}nested too deeply to check against the schema") from None
    if error is not None:
        message = _short(error.message, 160)
        raise _Invalid(f"{where}schema violation at {error.json_path}: {message}")


def _check_jsonl(item: _Input) -> Details:
    skip = _json_encoding(item, "JSON Lines")
    pattern, validator = item.rules.json_validator_for(item.path)
    limit = item.rules.max_bytes_parsed
    stream = item.stream
    stream.seek(skip)
    records = 0
    number = 0
    while line := stream.readline(limit + 1):
        number += 1
        if len(line) > limit:
            raise _Invalid(f"line {number} is longer than max_bytes_parsed ({_human_bytes(limit)})")
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            _, column = _text_position(line, exc.start)
            raise _Invalid(
                f"line {number}, column {column}: not UTF-8 (byte 0x{line[exc.start]:02X})"
            ) from None
        try:
            record = json.loads(text, parse_constant=_refuse_constant)
        except json.JSONDecodeError as exc:
            raise _Invalid(f"line {number}, column {exc.colno}: {exc.msg}") from None
        except _NonStandardConstant as exc:
            raise _Invalid(f"line {number}: {exc} is not valid JSON") from None
        except RecursionError:
            raise _Invalid(f"line {number}: nested too deeply to check") from None
        if validator is not None:
            _check_against_schema(validator, record, where=f"line {number}: ")
        records += 1
    if records == 0:
        raise _Invalid("empty file (only blank lines)")
    details: Details = {"encoding": "utf-8-sig" if skip else "utf-8", "records": records}
    if validator is not None:
        details["schema"] = "valid"
    if pattern is not None:
        details["schema_pattern"] = pattern
    return details
