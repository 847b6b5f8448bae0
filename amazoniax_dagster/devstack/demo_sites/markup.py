"""HTML helpers for the demo sites: one page shell, escaping, money and date formats."""

from __future__ import annotations

from datetime import date
from html import escape

from starlette.responses import HTMLResponse

__all__ = ["escape", "html_page", "long_date", "money"]


def html_page(title: str, body: str, *, head: str = "", status: int = 200) -> HTMLResponse:
    """A complete HTML document; ``body`` and ``head`` are trusted markup."""
    text = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"{head}</head>\n<body>\n<h1>{escape(title)}</h1>\n{body}\n</body>\n</html>\n"
    )
    return HTMLResponse(text, status_code=status)


def money(amount: float, symbol: str = "$") -> str:
    return f"{symbol}{amount:,.2f}"


def long_date(iso: str) -> str:
    """``2026-11-01`` -> ``01 Nov 2026``."""
    return f"{date.fromisoformat(iso):%d %b %Y}"
