"""A scripted stand-in for the model behind the browser-use agent (served by FakeBedrock).

It reads the page state browser-use sends (its ``[index]<tag ...>`` element list) and answers
with an ``AgentOutput`` tool call the way a careful model would: log in with the credential
placeholders when a password field shows (``login``), open the links whose labels match
``sections`` (each once), click "next"/"more" controls while they are there (at most
``max_next``), then say done. Whatever the agent really does with those answers (clicks in
Chromium over CDP) is browser-use's own code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.bedrock_server import RecordedRequest

_ELEMENT = re.compile(r"\[(\d+)\]<(\w+)([^>]*)>[ \t]*\n?[ \t]*([^\n\[<]*)")
_NEXT = re.compile(r"^(next|more|load more|show more|next ›|›|»)$", re.IGNORECASE)


@dataclass
class BrowsingModel:
    sections: str = r"catalogue|catalog|browse|reports|data|export|downloads"
    max_next: int = 6
    login: tuple[str, str] | None = None  # the names of the user and password secrets
    typed: list[str] = field(default_factory=list)  # what the model asked to type
    states: list[str] = field(default_factory=list)  # the page states it was shown
    _opened: set[str] = field(default_factory=set)
    _nexts: int = 0

    def __call__(self, request: RecordedRequest) -> dict[str, Any]:
        users = [m for m in request.messages if m.get("role") == "user"]
        blocks = users[-1].get("content", []) if users else []
        state = "\n".join(str(b["text"]) for b in blocks if "text" in b)
        self.states.append(state)
        elements = [
            (int(m.group(1)), m.group(2).lower(), m.group(3), m.group(4).strip())
            for m in _ELEMENT.finditer(state.split("<browser_state>")[-1])
        ]
        if self.login is not None and not self.typed:
            found = _login_form(elements)
            if found is not None:
                user, password, submit = found
                self.typed = [f"<secret>{name}</secret>" for name in self.login]
                return _output(
                    "log in",
                    {"input": {"index": user, "text": self.typed[0]}},
                    {"input": {"index": password, "text": self.typed[1]}},
                    {"click": {"index": submit}},
                )
        for index, tag, attributes, label in elements:
            text = label or _attribute(attributes, "aria-label")
            if tag in ("a", "button") and _NEXT.match(text) and self._nexts < self.max_next:
                self._nexts += 1
                return _output(f"page {self._nexts + 1}", {"click": {"index": index}})
        for index, tag, _attributes, label in elements:
            if tag == "a" and re.search(self.sections, label, re.IGNORECASE):
                if label not in self._opened:
                    self._opened.add(label)
                    return _output(f"open {label}", {"click": {"index": index}})
        done = {"done": {"text": "every page was shown", "success": True}}
        return _output("all pages seen", done)


def _attribute(attributes: str, name: str) -> str:
    found = re.search(rf'{name}=["\']?([^"\'>]*)', attributes)
    return found.group(1) if found else ""


def _login_form(elements: list[tuple[int, str, str, str]]) -> tuple[int, int, int] | None:
    """(user field, password field, submit button) indices, when the page shows a login."""
    password = next((e[0] for e in elements if e[1] == "input" and "password" in e[2]), None)
    user = next(
        (e[0] for e in elements if e[1] == "input" and "password" not in e[2]
         and "hidden" not in e[2]),
        None,
    )  # fmt: skip
    submit = next((e[0] for e in elements if e[1] == "button"), None)
    if password is None or user is None or submit is None:
        return None
    return user, password, submit


def _output(goal: str, *actions: dict[str, Any]) -> dict[str, Any]:
    return {
        "evaluation_previous_goal": "the page changed as expected",
        "memory": goal,
        "next_goal": goal,
        "action": list(actions),
    }
