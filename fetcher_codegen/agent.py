"""The browser-use agent that drives a capture when an LLM is configured.

The capture (:mod:`fetcher_codegen.capture`) owns Chromium through Playwright: the HAR, the
URL-policy proxy, the request budget and the screenshots stay its own. The agent connects to
the same browser over CDP (127.0.0.1, ``--remote-debugging-port``) and acts in it the way a
person would, with the channel's goals as its task: open menus and sections, set the date
range and filters of ``navigation_details``, page through results. What it makes the site
send is recorded because it happens inside the capture's browser.

browser-use is asyncio; the capture uses Playwright's sync API, whose events are pumped only
while the capture thread calls into Playwright. So the agent runs in a thread of its own
(:class:`AgentRun`) and reports each step through a queue, and the capture thread keeps
pumping until the agent is done, stopped, or out of time.

Its model is Bedrock through :meth:`BedrockClient.converse`, so the agent has the same
budgets (tokens, cost), throttling retries and usage record as the recipe writer. Login
credentials reach the agent as browser-use ``sensitive_data``: the model only sees
``<secret>username</secret>`` placeholders, browser-use types the values. A model that
cannot be used stops the agent at once and the deterministic explorer carries on
(:attr:`AgentOutcome.stopped` says why).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import queue
import re
import shutil
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amazoniax_dagster.core.redaction import Redactor
from fetcher_codegen.llm import BedrockClient
from fetcher_codegen.llm_errors import LLMUnavailable, LLMUsage
from fetcher_codegen.prompts import estimate_tokens

if TYPE_CHECKING:
    from browser_use.llm.base import BaseChatModel

log = logging.getLogger(__name__)

# Actions the agent may not use: web search (leaves the site), arbitrary JavaScript, its own
# files and extra LLM calls (extract) - a capture only needs to browse.
EXCLUDED_ACTIONS = (
    "search",
    "evaluate",
    "extract",
    "read_file",
    "write_file",
    "replace_file",
    "read_long_content",
    "upload_file",
    "save_as_pdf",
    "screenshot",
)
# browser-use phones home (telemetry, cloud sync, a PyPI version check) unless told not to.
_QUIET_ENV = {
    "ANONYMIZED_TELEMETRY": "false",
    "BROWSER_USE_CLOUD_SYNC": "false",
    "BROWSER_USE_VERSION_CHECK": "false",
    "BROWSER_USE_SETUP_LOGGING": "false",
}
_NEXT_WORDS = re.compile(
    r"^(next|next page|more|load more|show more|see more|view more|more results|older|"
    r"older posts|›|»|>|→|next ›|next »|next >|next →)$",
    re.IGNORECASE,
)
_IMAGE_TOKENS = 1600  # what one screenshot counts as, before the service says
# The libraries the agent logs through: their records pass a redacting filter while it runs.
_LIBRARY_LOGGERS = ("browser_use", "cdp_use", "bubus")


class _RedactedLogs(logging.Handler):
    """While the agent runs, the libraries' records (from any of their child loggers) reach
    the application's handlers only through here, with the channel's secrets masked: a page
    can echo what was typed, and URLs can carry tokens."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact
        self._loggers = [logging.getLogger(name) for name in _LIBRARY_LOGGERS]
        self._propagate = [logger.propagate for logger in self._loggers]

    def __enter__(self) -> _RedactedLogs:
        for logger in self._loggers:
            logger.addHandler(self)
            logger.propagate = False
        return self

    def __exit__(self, *exc: object) -> None:
        for logger, propagate in zip(self._loggers, self._propagate, strict=True):
            logger.removeHandler(self)
            logger.propagate = propagate

    def emit(self, record: logging.LogRecord) -> None:
        record.msg, record.args = self._redact(record.getMessage()), None
        log.handle(record)


@dataclass(frozen=True)
class AgentSettings:
    """How far one agent may go; its time comes from the capture's own deadline."""

    max_steps: int = 12
    max_actions_per_step: int = 3
    max_failures: int = 2  # unusable answers in a row before browser-use gives up
    use_vision: bool = True


@dataclass(frozen=True)
class AgentStep:
    """One step the agent took: what it did (values never), and what it saw before."""

    index: int
    action: str  # "click next" | "click" | "navigate" | "input" | "scroll" | "done" | ...
    detail: str
    selector: str | None = None  # a CSS selector of a "next" control it clicked
    screenshot: bytes | None = field(default=None, repr=False)


@dataclass
class AgentOutcome:
    usage: LLMUsage
    steps: int = 0
    done: bool = False
    success: bool | None = None
    stopped: str | None = None  # why it ended before saying done (model, budget, time)

    @property
    def drove(self) -> bool:
        """The agent took at least one step and was not cut short by its model."""
        return self.steps > 0 and (self.stopped is None or self.stopped.startswith("time"))

    def describe(self) -> dict[str, Any]:
        return {
            "driver": "browser-use",
            "drove": self.drove,
            "steps": self.steps,
            "done": self.done,
            "success": self.success,
            "stopped": self.stopped,
            "usage": self.usage.to_metadata(),
        }


@dataclass(frozen=True)
class AgentDriver:
    """What a capture needs to let an agent drive: the model and the agent's bounds."""

    bedrock: BedrockClient
    settings: AgentSettings = field(default_factory=AgentSettings)

    def start(
        self,
        *,
        cdp_url: str,
        task: str,
        allowed_domains: list[str],
        sensitive_data: Mapping[str, str],
        work_dir: Path,
    ) -> AgentRun:
        run = AgentRun(
            self.bedrock,
            self.settings,
            cdp_url=cdp_url,
            task=task,
            allowed_domains=allowed_domains,
            sensitive_data=sensitive_data,
            work_dir=work_dir,
        )
        run.start()
        return run


def agent_task(
    url: str,
    goal: str,
    navigation_details: Mapping[str, Any] | None,
    credential_names: list[str],
) -> str:
    """The agent's task: the channel's goals, in words a browsing model acts on."""
    lines = [
        f"You are exploring the website at {url} so that its data can be fetched later by a "
        "program. Goal of this data channel: " + goal + ".",
        "Reach the pages that show the channel's data records (tables, lists, search "
        "results) or link to its data files (CSV, JSON, XML, Excel, feeds), and go through "
        "every page of them: use 'next', 'more' or 'load more' controls, or scroll, until "
        "there are no more.",
        "Opening a data file's link once is enough; do not download files. Stay on this "
        "website; never submit anything that changes data (orders, messages, settings).",
    ]
    if credential_names:
        placeholders = ", ".join(f"<secret>{name}</secret>" for name in credential_names)
        lines.append(
            f"If a login form is shown, log in with {placeholders} (type the placeholders "
            "exactly; they are replaced by the real values)."
        )
    if navigation_details:
        lines.append(
            "Apply these navigation details where the site offers them (date range, "
            "filters, sections): " + json.dumps(dict(navigation_details), default=str) + "."
        )
    lines.append("Call done when every page of the data has been shown once.")
    return "\n".join(lines)


class AgentRun:
    """One browser-use agent run in its own thread, connected to Chromium over CDP.

    Its files (downloads, profile, the agent's file system) go under ``work_dir``, the capture's
    own folder, which is deleted with the capture. browser-use saves each step's screenshot in a
    folder of the system temp dir it names itself; that folder is removed when the run ends,
    because the screenshots show the site as the logged-in agent saw it.
    """

    def __init__(
        self,
        bedrock: BedrockClient,
        settings: AgentSettings,
        *,
        cdp_url: str,
        task: str,
        allowed_domains: list[str],
        sensitive_data: Mapping[str, str],
        work_dir: Path,
        config_dir: Path | None = None,
    ) -> None:
        self._bedrock = bedrock
        self._settings = settings
        self._cdp_url = cdp_url
        self._task = task
        self._allowed_domains = allowed_domains
        self._sensitive = dict(sensitive_data)
        self._work_dir = work_dir
        self._config_dir = config_dir or Path(tempfile.gettempdir()) / "amazoniax-browser-use"
        self._redact = Redactor(v for v in self._sensitive.values() if v)
        self.outcome = AgentOutcome(usage=LLMUsage(model_id=bedrock.settings.model_id))
        self.steps: queue.SimpleQueue[AgentStep] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="browser-use-agent", daemon=True)

    # -- the capture thread's side ---------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, reason: str) -> None:
        """Ask the agent to stop after its current step."""
        if not self._stop.is_set():
            # It ends up in provenance and logs: the channel's secrets are masked here.
            self.outcome.stopped = self.outcome.stopped or self._redact(reason)[:400]
            self._stop.set()

    def join(self, timeout: float) -> AgentOutcome:
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.outcome.stopped = self.outcome.stopped or "time: the agent did not stop"
        return self.outcome

    # -- the agent's thread ----------------------------------------------------------------

    def _main(self) -> None:
        for name, value in _QUIET_ENV.items():
            os.environ.setdefault(name, value)
        # browser-use writes a config.json there on import; nothing of the channel's
        os.environ.setdefault("BROWSER_USE_CONFIG_DIR", str(self._config_dir))
        try:
            with _RedactedLogs(self._redact):
                asyncio.run(self._run())
        except LLMUnavailable as exc:
            self.stop(f"{exc.reason}: {exc.detail}")
        except ModuleNotFoundError as exc:
            self.stop(
                f"the browser-use agent is not installed ({exc.name}): install the agent extra"
            )
        except Exception as exc:  # noqa: BLE001 - a library failure must not fail the capture
            self.stop(f"agent error: {type(exc).__name__}: {exc}")
            log.warning("the browser-use agent failed: %s", self.outcome.stopped)

    async def _run(self) -> None:
        from browser_use import Agent, BrowserProfile, BrowserSession, Tools
        from browser_use.browser.session import DEFAULT_BROWSER_PROFILE

        # browser-use's module-level default profile made an empty downloads folder in /tmp
        # when it was imported; this run never uses that profile.
        if DEFAULT_BROWSER_PROFILE.downloads_path:
            with contextlib.suppress(OSError):  # not empty, or already gone
                Path(DEFAULT_BROWSER_PROFILE.downloads_path).rmdir()
        session = BrowserSession(
            browser_profile=BrowserProfile(
                cdp_url=self._cdp_url,
                keep_alive=True,  # the capture closes Chromium: it writes the HAR then
                allowed_domains=self._allowed_domains,
                # Unused over CDP, but browser-use makes a temp dir for None. Its marker in
                # the name stops browser-use copying a Chrome profile into it.
                user_data_dir=self._work_dir / "browser-use-user-data-dir",
                storage_state=None,
                downloads_path=self._work_dir / "downloads",
            )
        )
        agent: Agent[Any, Any] = Agent(
            task=self._task,
            llm=_chat_model(self._bedrock, self.outcome.usage, self.stop),
            browser_session=session,
            tools=Tools(exclude_actions=list(EXCLUDED_ACTIONS)),
            sensitive_data=dict(self._sensitive) or None,
            use_vision=self._settings.use_vision,
            use_judge=False,
            enable_planning=False,
            directly_open_url=False,  # the capture opened the channel URL already
            max_actions_per_step=self._settings.max_actions_per_step,
            max_failures=self._settings.max_failures,
            calculate_cost=False,
            register_new_step_callback=self._on_step,
            register_should_stop_callback=self._should_stop,
            file_system_path=str(self._work_dir / "files"),
        )
        try:
            history = await agent.run(max_steps=self._settings.max_steps)
            self.outcome.done = history.is_done()
            self.outcome.success = history.is_successful()
            if not self.outcome.done and self.outcome.stopped is None:
                errors = [e for e in history.errors() if e]
                self.outcome.stopped = (
                    f"model: {self._redact(errors[-1])[:300]}"
                    if errors
                    else f"steps: {self._settings.max_steps} steps were not enough"
                )
        finally:
            await session.stop()  # disconnects; Chromium stays up for the capture
            shutil.rmtree(agent.agent_directory, ignore_errors=True)

    async def _should_stop(self) -> bool:
        return self._stop.is_set()

    def _on_step(self, state: Any, output: Any, step: int) -> None:
        self.outcome.steps = step
        shot = getattr(state, "screenshot", None)
        screenshot = base64.b64decode(shot) if isinstance(shot, str) and shot else None
        selectors = getattr(getattr(state, "dom_state", None), "selector_map", {}) or {}
        for i, action in enumerate(getattr(output, "action", []) or []):
            name, params = _action(action)
            element = selectors.get(params.get("index")) if "index" in params else None
            kind, detail, selector = _describe(name, params, element)
            shown = screenshot if i == 0 else None  # what the model saw before this step
            self.steps.put(AgentStep(step, kind, self._redact(detail), selector, shown))


def _action(action: Any) -> tuple[str, dict[str, Any]]:
    """(name, parameters) of one browser-use ActionModel (a model with one field set)."""
    dumped = action.model_dump(exclude_none=True) if hasattr(action, "model_dump") else {}
    for name, params in dumped.items():
        return str(name), dict(params) if isinstance(params, Mapping) else {}
    return "unknown", {}


def _describe(name: str, params: Mapping[str, Any], element: Any) -> tuple[str, str, str | None]:
    """A capture step for one action: its kind, a value-free detail, a "next" selector."""
    if name == "click" and element is not None:
        attributes = dict(getattr(element, "attributes", None) or {})
        tag = str(getattr(element, "tag_name", "") or "a").lower()
        text = _element_text(element)
        found = {
            "tag": tag,
            "text": text,
            "rel": attributes.get("rel"),
            "aria": attributes.get("aria-label"),
            "id": attributes.get("id"),
            "cls": attributes.get("class"),
        }
        how = _next_how(found)
        if how is not None:
            from fetcher_codegen.capture_scripts import next_selector

            selector = next_selector(found | {"how": how})
            return "click next", f"the agent clicked {text[:60]!r}", selector
        return "click", f"the agent clicked <{tag}> {text[:60]!r}", None
    if name == "input":
        return "input", "the agent typed into a field", None
    if name == "navigate":
        return "navigate", "the agent opened a URL", None
    if name == "scroll":
        return "scroll", "the agent scrolled", None
    if name == "done":
        return "done", "the agent said it is done", None
    return name, f"the agent used {name}", None


def _element_text(element: Any) -> str:
    getter = getattr(element, "get_all_children_text", None)
    text = getter() if callable(getter) else getattr(element, "node_value", "") or ""
    return " ".join(str(text).split())


def _next_how(found: Mapping[str, Any]) -> str | None:
    """How a clicked element is a "next"/"more" control, as the explorer's FIND_NEXT_JS judges."""
    if re.search(r"(^|\s)next(\s|$)", str(found.get("rel") or ""), re.IGNORECASE):
        return "rel"
    aria = str(found.get("aria") or "")
    if re.search(r"\b(next|more|older)\b", aria, re.IGNORECASE) and "prev" not in aria.lower():
        return "aria-label"
    if _NEXT_WORDS.match(str(found.get("text") or "").strip()):
        return "text"
    return None


def estimate_request_tokens(request: Mapping[str, Any]) -> int:
    """Input tokens of a Converse request: its texts at chars/4, a fixed cost per image."""
    texts: list[str] = [str(b.get("text", "")) for b in request.get("system") or []]
    images = 0
    for message in request.get("messages") or []:
        for block in message.get("content") or []:
            if "image" in block:
                images += 1
            elif "text" in block:
                texts.append(str(block["text"]))
            else:
                texts.append(json.dumps(block, default=str))
    return estimate_tokens(*texts) + _IMAGE_TOKENS * images


class _MeteredConverse:
    """boto3's ``converse`` for browser-use, through :meth:`BedrockClient.converse`."""

    def __init__(self, bedrock: BedrockClient, usage: LLMUsage) -> None:
        self._bedrock = bedrock
        self._usage = usage

    def converse(self, **request: Any) -> Mapping[str, Any]:
        return self._bedrock.converse(
            request, self._usage, estimated_input=estimate_request_tokens(request)
        )


def _chat_model(bedrock: BedrockClient, usage: LLMUsage, stop: Any) -> BaseChatModel:
    """browser-use's Bedrock chat model, its client swapped for the metered one.

    A model that cannot be used (budget, throttled past the retries, unreachable, refused)
    stops the agent at once: browser-use would otherwise retry it as a bad answer.
    """
    from browser_use.llm.aws.chat_bedrock import ChatAWSBedrock

    settings = bedrock.settings
    metered = _MeteredConverse(bedrock, usage)

    class MeteredChatBedrock(ChatAWSBedrock):
        def _get_client(self) -> Any:
            return metered

        async def ainvoke(self, messages: Any, output_format: Any = None, **kwargs: Any) -> Any:
            try:
                return await super().ainvoke(messages, output_format, **kwargs)
            except Exception as exc:
                # browser-use wraps whatever the client raised; ours says why, plainly
                if isinstance(exc.__cause__, LLMUnavailable):
                    stop(f"{exc.__cause__.reason}: {exc.__cause__.detail}")
                raise

    return MeteredChatBedrock(
        model=settings.model_id,
        max_tokens=settings.max_tokens,
        temperature=settings.temperature,
        aws_region=settings.region,
    )


__all__ = [
    "EXCLUDED_ACTIONS",
    "AgentDriver",
    "AgentOutcome",
    "AgentRun",
    "AgentSettings",
    "AgentStep",
    "agent_task",
    "estimate_request_tokens",
]
