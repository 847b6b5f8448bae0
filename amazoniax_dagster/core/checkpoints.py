"""A channel's incremental checkpoint: the cursor value the next job starts after."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CursorType = Literal["timestamp", "id", "page"]
CURSOR_TYPES: tuple[CursorType, ...] = ("timestamp", "id", "page")


@dataclass(frozen=True)
class Checkpoint:
    """The greatest cursor value a successful job saw, as the records carry it (for ``page``:
    the last page number or offset that had records)."""

    cursor_type: str  # one of CURSOR_TYPES
    value: str


__all__ = ["CURSOR_TYPES", "Checkpoint", "CursorType"]
