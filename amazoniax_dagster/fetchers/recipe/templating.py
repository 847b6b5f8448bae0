"""``${...}`` templates: a fixed namespace, looked up and formatted, never evaluated.

Syntax: ``${root}`` or ``${root.name}``, with an optional format after a colon:
``${window.start:%Y-%m-%d}`` (strftime for dates), ``${page:03d}`` (Python format spec for
other values). ``$${`` is a literal ``${``. The namespace:

==============================  ==========================================================
``config.url``                  the channel URL; ``config.origin``, ``.scheme``, ``.host``,
                                ``.path`` are its parts, ``config.channel_name`` its name
``secrets.<name>``              ``auth_keys[name]``, else ``login_credentials[name]``
``extract.<name>``              a value an earlier step extracted
``page`` ``offset`` ``cursor``  the current page (1, 2, ...), offset (0, ...), cursor ("")
``window.start`` ``window.end`` the date window of the run (``navigation_details.date_range``)
``run_date``                    the day of the run
``incremental.start_value``     the step's checkpoint (or ``initial_value``; "" when none)
``step`` ``ext``                only in ``save`` names: the step name, the body's extension
==============================  ==========================================================

An unknown name is an error when the recipe is loaded; a missing secret, extract or date
window is a :class:`ConfigError` when the template is first rendered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from amazoniax_dagster.core.errors import ConfigError

# A root maps to the names allowed after its dot; None means "no dot", ANY means any name.
ANY: frozenset[str] = frozenset({"*"})
ROOTS: Mapping[str, frozenset[str] | None] = {
    "config": frozenset({"url", "origin", "scheme", "host", "path", "channel_name"}),
    "secrets": ANY,
    "extract": ANY,
    "window": frozenset({"start", "end"}),
    "page": None,
    "offset": None,
    "cursor": None,
    "run_date": None,
    "incremental": frozenset({"start_value"}),
}
SAVE_NAME_ROOTS: Mapping[str, frozenset[str] | None] = {**ROOTS, "step": None, "ext": None}

_PIECE = re.compile(r"\$\$\{|\$\{(?P<expr>[^{}]*)\}|\$\{")
_EXPR = re.compile(r"(?P<root>[A-Za-z_]\w*)(?:\.(?P<name>[A-Za-z0-9_][\w-]*))?(?::(?P<fmt>.*))?")


@dataclass(frozen=True)
class Expr:
    """One ``${root.name:fmt}``."""

    root: str
    name: str | None = None
    fmt: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.root}.{self.name}" if self.name else self.root


def parse_template(
    text: str, roots: Mapping[str, frozenset[str] | None] = ROOTS
) -> tuple[str | Expr, ...]:
    """Literal text and expressions; ValueError names the first bad expression."""
    pieces: list[str | Expr] = []
    position = 0
    for match in _PIECE.finditer(text):
        pieces.append(text[position : match.start()])
        position = match.end()
        if match.group() == "$${":
            pieces.append("${")
        elif match["expr"] is None:
            raise ValueError("unclosed '${' (write '$${' for a literal '${')")
        else:
            pieces.append(_parse_expr(match["expr"].strip(), roots))
    pieces.append(text[position:])
    return tuple(piece for piece in pieces if piece != "")


def _parse_expr(text: str, roots: Mapping[str, frozenset[str] | None]) -> Expr:
    match = _EXPR.fullmatch(text)
    if match is None:
        raise ValueError(f"'${{{text}}}' is not a template expression (write ${{root.name}})")
    expr = Expr(match["root"], match["name"], match["fmt"])
    if expr.root not in roots:
        known = ", ".join(sorted(roots))
        raise ValueError(f"unknown template name {expr.ref!r} (known: {known})")
    allowed = roots[expr.root]
    if allowed is None and expr.name is not None:
        raise ValueError(f"template name {expr.root!r} takes no '.{expr.name}'")
    if allowed is not None and expr.name is None:
        raise ValueError(f"template name {expr.root!r} needs a '.name'")
    if allowed not in (None, ANY) and expr.name not in (allowed or ()):
        known = ", ".join(f"{expr.root}.{n}" for n in sorted(allowed or ()))
        raise ValueError(f"unknown template name {expr.ref!r} (known: {known})")
    return expr


def expressions(text: str, roots: Mapping[str, frozenset[str] | None] = ROOTS) -> list[Expr]:
    return [piece for piece in parse_template(text, roots) if isinstance(piece, Expr)]


@dataclass(frozen=True)
class DateWindow:
    start: date
    end: date


@dataclass(frozen=True)
class Scope:
    """The values templates see during one request; ``variables`` holds page/offset/cursor."""

    url: str
    channel_name: str | None = None
    secrets: Mapping[str, SecretStr] = field(default_factory=dict)
    extracts: Mapping[str, Any] = field(default_factory=dict)
    window: DateWindow | None = None
    run_date: date = field(default_factory=date.today)
    variables: Mapping[str, Any] = field(default_factory=dict)

    def with_variables(self, **values: Any) -> Scope:
        return replace(self, variables={**self.variables, **values})

    def lookup(self, expr: Expr) -> Any:
        """The raw value of ``expr``; ConfigError when the run does not have it."""
        name = expr.name or ""
        if expr.root == "config":
            return _url_parts(self.url, self.channel_name)[name]
        if expr.root == "secrets":
            if name not in self.secrets:
                raise ConfigError(
                    f"the recipe uses ${{secrets.{name}}} but the channel has no {name!r} "
                    "in auth_keys or login_credentials"
                )
            return self.secrets[name].get_secret_value()
        if expr.root == "extract":
            if name not in self.extracts:
                raise ConfigError(f"the recipe uses ${{extract.{name}}} before it is extracted")
            return self.extracts[name]
        if expr.root == "window":
            if self.window is None:
                raise ConfigError(
                    f"the recipe uses ${{window.{name}}} but neither the channel's "
                    "navigation_details.date_range nor the recipe's date_range is set"
                )
            return self.window.start if name == "start" else self.window.end
        if expr.root == "run_date":
            return self.run_date
        if expr.root == "incremental":
            return self.variables.get("incremental_start")
        if expr.root in self.variables:
            return self.variables[expr.root]
        raise ConfigError(f"template name {expr.ref!r} has no value here")


def render(text: str, scope: Scope, roots: Mapping[str, frozenset[str] | None] = ROOTS) -> str:
    """``text`` with every expression replaced by its formatted value."""
    return "".join(
        piece if isinstance(piece, str) else _format(scope.lookup(piece), piece)
        for piece in _parsed(text, roots)
    )


def render_value(text: str, scope: Scope) -> Any:
    """Like :func:`render`, but a string that is one bare expression keeps its type.

    So ``{"page": "${page}"}`` in a JSON body sends the number 2, not the string "2".
    """
    pieces = _parsed(text, ROOTS)
    if len(pieces) == 1 and isinstance(pieces[0], Expr) and pieces[0].fmt is None:
        value = scope.lookup(pieces[0])
        return value.isoformat() if isinstance(value, date) else value
    return render(text, scope)


def render_data(data: Any, scope: Scope) -> Any:
    """Render every string inside a JSON value (a request body)."""
    if isinstance(data, str):
        return render_value(data, scope)
    if isinstance(data, list):
        return [render_data(item, scope) for item in data]
    if isinstance(data, dict):
        return {key: render_data(value, scope) for key, value in data.items()}
    return data


def template_strings(data: Any) -> list[str]:
    """Every string inside a JSON value, for checking templates at load time."""
    if isinstance(data, str):
        return [data]
    if isinstance(data, list):
        return [text for item in data for text in template_strings(item)]
    if isinstance(data, dict):
        return [text for value in data.values() for text in template_strings(value)]
    return []


def _parsed(text: str, roots: Mapping[str, frozenset[str] | None]) -> tuple[str | Expr, ...]:
    try:
        return parse_template(text, roots)
    except ValueError as exc:  # models check templates at load; this is for direct callers
        raise ConfigError(f"bad template: {exc}") from exc


def _format(value: Any, expr: Expr) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    try:
        if isinstance(value, date):
            return value.strftime(expr.fmt) if expr.fmt else value.isoformat()
        return format(value, expr.fmt) if expr.fmt else str(value)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"cannot format ${{{expr.ref}}} with {expr.fmt!r}: {exc}") from exc


def _url_parts(url: str, channel_name: str | None) -> dict[str, str]:
    parts = urlsplit(url)
    return {
        "url": url,
        "origin": f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}",  # no userinfo
        "scheme": parts.scheme,
        "host": parts.hostname or "",
        "path": parts.path,
        "channel_name": channel_name or "",
    }


__all__ = [
    "ROOTS",
    "SAVE_NAME_ROOTS",
    "DateWindow",
    "Expr",
    "Scope",
    "expressions",
    "parse_template",
    "render",
    "render_data",
    "render_value",
    "template_strings",
]
