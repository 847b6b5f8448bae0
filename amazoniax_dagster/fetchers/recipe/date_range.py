"""A recipe's or channel's date window: the last N days up to the run date, or fixed dates."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from pydantic import Field, model_validator

from amazoniax_dagster.fetchers.recipe.fields import Model
from amazoniax_dagster.fetchers.recipe.templating import DateWindow


class DateRange(Model):
    """``{last_days: 7}`` (the 7 days up to the run date) or ``{from: ..., to: ...}``."""

    last_days: Annotated[int, Field(ge=0, le=3660)] | None = None
    from_: date | None = Field(default=None, alias="from")
    to: date | None = None

    @model_validator(mode="after")
    def _one_form(self) -> DateRange:
        if (self.last_days is None) == (self.from_ is None):
            raise ValueError("set either last_days or from (with an optional to)")
        if self.last_days is not None and self.to is not None:
            raise ValueError("'to' goes with 'from', not with last_days")
        if self.from_ is not None and self.to is not None and self.to < self.from_:
            raise ValueError("'to' is before 'from'")
        return self

    def window(self, run_date: date) -> DateWindow:
        if self.last_days is not None:
            return DateWindow(run_date - timedelta(days=self.last_days), run_date)
        assert self.from_ is not None  # the validator guarantees one form
        return DateWindow(self.from_, self.to or run_date)


__all__ = ["DateRange"]
