"""FTP replies and listings, without a connection: MLSD/LIST/NLST parsing, times, features, and
FTP errors in the product's error tree."""

from __future__ import annotations

import ftplib
import re
import ssl
from datetime import UTC, datetime, timedelta

from amazoniax_dagster.core.errors import AmazoniaxError, ConfigError, TransientError
from amazoniax_dagster.sources.remote_tree import (
    DirEntry,
    EntryKind,
    network_error,
)

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}


# "-rw-r--r--   1 owner group  1234 Jan 05 12:30 name"; owner, group and link count may be
# missing; a month name in another language keeps the line (its time is asked with MDTM);
# the name starts after exactly one space.
_LIST_LINE = re.compile(
    r"^(?P<mode>[-a-zA-Z?][-rwxsStTlL?]{9})\S*\s+"
    r"(?:\d+\s+)?"
    r"(?:\S+\s+){0,2}?"
    r"(?P<size>\d+)\s+"
    r"(?P<month>[^\s\d]\S{1,5})\s+(?P<day>\d{1,2})\s+"
    r"(?P<when>\d{1,2}:\d{2}|\d{4}) "
    r"(?P<name>.+)\Z",
    re.DOTALL,  # a newline inside a name is part of the name (and gets it refused)
)


_LIST_KINDS: dict[str, EntryKind] = {"-": "file", "d": "dir", "l": "link"}


_FTP_TIME = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{1,6})\d*)?$")


def split_listing_lines(data: bytes) -> list[bytes]:
    """Listing lines: CRLF-separated as RFC 959 says, LF-separated only without any CRLF."""
    separator = b"\r\n" if b"\r\n" in data else b"\n"
    return [line for line in data.split(separator) if line]


def parse_ftp_time(text: str | None) -> datetime | None:
    """An MLSD ``modify`` fact or MDTM reply (``YYYYMMDDHHMMSS[.sss]``, UTC) as aware UTC."""
    match = _FTP_TIME.match((text or "").strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            min(int(second), 59),  # a leap second "60" exists in the RFC 3659 grammar
            int((fraction or "0").ljust(6, "0")),
            tzinfo=UTC,
        )
    except ValueError:
        return None


def parse_mlsd_line(line: str) -> DirEntry | None:
    """One MLSD line (``fact=value;...; name``); None when it is not one."""
    facts_text, sep, name = line.partition(" ")
    if not sep or "=" not in facts_text:
        return None
    facts: dict[str, str] = {}
    for fact in facts_text.split(";"):
        key, eq, value = fact.partition("=")
        if eq:
            facts[key.strip().lower()] = value
    kind = _mlsd_kind(facts.get("type", ""))
    if kind is None:
        return None
    size_text = facts.get("size", "")
    return DirEntry(
        name=name,
        kind=kind,
        size=int(size_text) if size_text.isdigit() and kind == "file" else None,
        mtime=parse_ftp_time(facts.get("modify")),
        identity=facts.get("unique") or None,
    )


def _mlsd_kind(type_fact: str) -> EntryKind | None:
    """RFC 3659 ``type``; ``cdir``/``pdir`` are the directory itself and its parent (None)."""
    value = type_fact.lower()
    if value in ("cdir", "pdir"):
        return None
    if value == "file":
        return "file"
    if value == "dir":
        return "dir"
    if value.startswith(("os.unix=slink", "os.unix=symlink")):
        return "link"
    return "other"


def parse_list_line(line: str, *, now: datetime | None = None) -> DirEntry | None:
    """One unix-style LIST line; None for ``total N`` and anything else not in that shape.

    The time is read as UTC (the server's zone is unknown); ``Mon DD HH:MM`` lies within the
    past year, so its year is the one that does not put it (more than a day) in the future.
    """
    match = _LIST_LINE.match(line)
    if match is None:
        return None
    type_char = match["mode"][0]
    kind = _LIST_KINDS.get(type_char, "other")
    name = match["name"]
    if kind == "link":
        name = name.split(" -> ", 1)[0]
    mtime = _list_time(match["month"], match["day"], match["when"], now or datetime.now(UTC))
    return DirEntry(
        name=name, kind=kind, size=int(match["size"]) if kind == "file" else None, mtime=mtime
    )


def _list_time(month_text: str, day_text: str, when: str, now: datetime) -> datetime | None:
    month = _MONTHS.get(month_text.lower())
    if month is None:
        return None
    day = int(day_text)
    try:
        if ":" not in when:
            return datetime(int(when), month, day, tzinfo=UTC)
        hour, minute = (int(p) for p in when.split(":"))
        stamp = datetime(now.year, month, day, hour, minute, tzinfo=UTC)
        if stamp > now + timedelta(days=1):
            stamp = stamp.replace(year=now.year - 1)
        return stamp
    except ValueError:
        return None


def parse_nlst_name(line: str, directory: str) -> str:
    """An NLST line as a name in ``directory`` (some servers repeat the directory in front)."""
    prefix = directory.rstrip("/") + "/"
    return line[len(prefix) :] if directory not in ("", ".") and line.startswith(prefix) else line


def parse_features(reply: str) -> frozenset[str]:
    """The FEAT reply's feature names, upper-cased (``MLST``, ``UTF8``, ``SIZE``...)."""
    names = set()
    for line in reply.splitlines()[1:]:
        if line.startswith(" ") and line.strip():
            names.add(line.split()[0].upper())
    return frozenset(names)


def parse_size_reply(reply: str) -> int | None:
    """``213 1234`` -> 1234."""
    code, _, value = reply.partition(" ")
    return int(value.strip()) if code == "213" and value.strip().isdigit() else None


def ftp_errors() -> tuple[type[BaseException], ...]:
    """The exception types :func:`translate_ftp_error` accepts, for ``except`` clauses."""
    return (ftplib.Error, OSError, EOFError)


def translate_ftp_error(
    exc: BaseException, what: str, *, secret: str | None = None
) -> AmazoniaxError:
    """Map an ftplib, ssl or socket error into the error tree; ``what`` says what failed.

    ``secret`` (the password) is removed from the server's reply before it is quoted.
    """
    if isinstance(exc, AmazoniaxError):
        return exc
    detail = _scrub(str(exc), secret)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ConfigError(
            f"cannot {what}: the server's TLS certificate was not accepted "
            f"({exc.verify_message or detail}); for a self-signed server set ca_cert_pem"
        )
    if isinstance(exc, ftplib.error_temp):
        return TransientError(f"cannot {what}: server said {detail}")
    if isinstance(exc, ftplib.error_perm):
        return ConfigError(f"cannot {what}: server said {detail}")
    if isinstance(exc, ftplib.error_reply | ftplib.error_proto):
        return TransientError(f"cannot {what}: unexpected reply {detail!r}")
    network = network_error(exc, what, detail)  # ssl.SSLError is an OSError
    if network is not None:
        return network
    raise TypeError(f"not an FTP error: {type(exc).__name__}") from exc


def _scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def _reply_code(exc: ftplib.Error) -> str:
    return str(exc)[:3]
