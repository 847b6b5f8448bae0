"""The agent's plain parts: its task, how its steps become capture steps, its token estimate."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from fetcher_codegen.agent import (
    AgentOutcome,
    _describe,
    agent_task,
    estimate_request_tokens,
)
from fetcher_codegen.llm_errors import LLMUsage


@dataclass
class Element:
    """The parts of browser-use's DOM node the step description reads."""

    tag_name: str
    text: str
    attributes: dict[str, str] = field(default_factory=dict)

    def get_all_children_text(self) -> str:
        return self.text


def test_the_task_carries_the_goal_filters_and_credential_placeholders() -> None:
    task = agent_task(
        "https://shop.example/reports",
        "daily sales CSV exports",
        {"date_range": {"last_days": 7}, "region": "EU"},
        ["username", "password"],
    )
    assert "https://shop.example/reports" in task
    assert "daily sales CSV exports" in task
    assert '"last_days": 7' in task and '"region": "EU"' in task
    assert "<secret>username</secret>" in task and "<secret>password</secret>" in task


def test_a_task_without_credentials_does_not_mention_a_login() -> None:
    task = agent_task("https://x.example/", "news", None, [])
    assert "login" not in task.lower() and "<secret>" not in task


def test_a_click_on_a_next_control_becomes_a_click_next_step_with_a_selector() -> None:
    by_rel = Element("a", "Next", {"rel": "next", "href": "?page=2"})
    assert _describe("click", {"index": 4}, by_rel) == (
        "click next", "the agent clicked 'Next'", 'a[rel~="next"]',
    )  # fmt: skip
    by_text = Element("button", "Load more", {"class": "btn more"})
    kind, _, selector = _describe("click", {"index": 9}, by_text)
    assert (kind, selector) == ("click next", "button.btn.more")
    by_aria = Element("a", "›", {"aria-label": "Next page"})
    assert _describe("click", {"index": 1}, by_aria)[2] == 'a[aria-label="Next page"]'


def test_other_clicks_and_typing_are_recorded_without_values() -> None:
    assert _describe("click", {"index": 2}, Element("a", "Previous"))[0] == "click"
    assert _describe("click", {"index": 2}, Element("a", "Reports"))[2] is None
    kind, detail, selector = _describe("input", {"index": 3, "text": "hunter2"}, None)
    assert (kind, selector) == ("input", None) and "hunter2" not in detail


def test_the_token_estimate_counts_texts_and_images() -> None:
    image = {"image": {"format": "png", "source": {"bytes": base64.b64encode(b"x" * 10)}}}
    request: dict[str, Any] = {
        "system": [{"text": "s" * 400}],
        "messages": [{"role": "user", "content": [{"text": "u" * 800}, image]}],
    }
    assert estimate_request_tokens(request) == 100 + 200 + 1600


def test_the_agent_drove_only_when_its_model_answered() -> None:
    usage = LLMUsage(model_id="m")
    assert AgentOutcome(usage, steps=3, done=True).drove
    assert AgentOutcome(usage, steps=3, stopped="time: out").drove
    assert not AgentOutcome(usage, steps=2, stopped="throttled: gave up").drove
    assert not AgentOutcome(usage, steps=0).drove
