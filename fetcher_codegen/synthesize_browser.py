"""Browser recipes: the steps a person took, replayed in Chromium, for sites whose data only a
browser sees."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from fetcher_codegen.analysis import DataGroup
from fetcher_codegen.capture import CaptureStep
from fetcher_codegen.har import resource_name
from fetcher_codegen.synthesize_base import (
    Synthesis,
    _Builder,
    recipe_name,
    url_template,
)


class _BrowserBuilder(_Builder):
    def build(self) -> Synthesis:
        data = self.analysis.html_data[0]
        # the first page of this kind that showed records (a form's empty page does not count)
        entry = next(
            (p.entry for p in data.pages if p.records is not None and p.records.count),
            data.group.first,
        )
        resource = resource_name(entry.path, "page")
        recipe: dict[str, Any] = {
            "version": 1,
            "kind": "browser",
            "name": recipe_name(self.config, resource),
            "description": "generated from a browser capture, without an LLM",
        }
        login = self.capture.login
        if login and not login.get("refused") and login.get("password_selector"):
            recipe["login"] = {
                "url": "",
                "username_selector": login.get("username_selector")
                or "input[type=email], input[type=text]",
                "password_selector": login["password_selector"],
                "submit_selector": login.get("submit_selector") or "button[type=submit]",
                "success": {"url_contains": login.get("after") or "/"},
            }
        # A fragment a script fetched is reached from the page that fetched it (its scripts set
        # cookies and state the fragment needs): start there, as a person would.
        opened = entry.resource_type in ("document", "")
        start = _pagination_start(self.capture.steps)
        if start is not None:  # pages are clicked through from where the clicking began
            recipe["start_url"] = (
                ""
                if start == self.capture.channel_url
                else url_template(start, self.config, keep_query=True)
            )
        else:
            recipe["start_url"] = (
                ""
                if entry.url == self.config.url or not opened
                else url_template(entry.url, self.config, keep_query=True)
            )
        container, item = _container_selectors(data)
        steps: list[dict[str, Any]] = [{"type": "expect", "selector": container}]
        save = {"type": "save_page", "name": f"{resource}_${{page}}.html"}
        clicks = Counter(
            s.selector for s in self.capture.steps if s.action == "click next" and s.selector
        )
        scrolls = sum(1 for s in self.capture.steps if s.action == "scroll")
        if clicks:
            selector = clicks.most_common(1)[0][0]
            strategy = {"type": "click_next", "selector": selector, "content_selector": container}
            steps.append({"type": "paginate", "strategy": strategy, "steps": [save]})
            detail = f"click {selector} until it is gone"
        elif scrolls:
            strategy = {"type": "scroll", "item_selector": item}
            steps.append({"type": "paginate", "strategy": strategy, "steps": []})
            steps.append({**save, "name": f"{resource}.html"})
            detail = "scroll until the page stops growing"
        else:
            steps.append({**save, "name": f"{resource}.html"})
            detail = "one page"
        recipe["steps"] = steps
        requests = [{**self.data_provenance(data, None), "pagination": detail, "values": []}]
        return Synthesis("browser", recipe, requests, self.warnings)


def _pagination_start(steps: Sequence[CaptureStep]) -> str | None:
    """The page the explorer was on when it first clicked "next" (the first page of records)."""
    for before, step in itertools.pairwise(steps):
        if step.action == "click next":
            return before.url
    return None


def _container_selectors(data: DataGroup) -> tuple[str, str]:
    """CSS selectors of the records' container and of one record, from their signatures."""
    path = data.records_path or "body > div"
    parent, _, child = path.partition(" > ")
    return _css(parent) or "body", _css(child) or "body *"


def _css(signature: str) -> str:
    tag, _, classes = signature.partition(".")
    if tag.startswith("#") or not re.fullmatch(r"[a-z][a-z0-9]*", tag):
        return ""
    parts = [c for c in classes.split(".") if re.fullmatch(r"-?[_a-zA-Z][_a-zA-Z0-9-]*", c)]
    return tag + "".join(f".{c}" for c in parts)
