"""A channel's ``records`` config: where each unified field is in its records."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Field = Literal["external_id", "title", "content", "url", "published_at"]


class RecordMapping(BaseModel):
    """A channel's ``records`` config: a path for each field; fields left out are detected.
    ``required`` lists the fields whose absence makes a record fail instead of loading empty."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    external_id: str | None = None
    title: str | None = None
    content: str | None = None
    url: str | None = None
    published_at: str | None = None
    required: tuple[Field, ...] = ()
