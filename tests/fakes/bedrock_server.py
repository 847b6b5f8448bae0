"""A local HTTP server speaking the Bedrock Runtime Converse REST shape, for tests.

Bedrock is not reachable from here, so the real boto3 ``bedrock-runtime`` client talks to
this server instead (``endpoint_url=fake.url``). It answers ``POST /model/{modelId}/converse``
from a script of responses queued by the test, and records every request it received::

    with FakeBedrock() as fake:
        fake.throttle(2)            # two 429 ThrottlingException answers
        fake.answer("```yaml\\nkind: recipe\\n```")
        ...                         # run the code under test against fake.url
        assert fake.requests[-1].model_id == "anthropic.claude"

A test can also answer from what was asked (``respond_with``): a browser agent's next step
depends on the page it was shown. A dict answer is a tool call of the request's first tool
(Converse ``toolUse``), a string a text answer.

Errors are AWS restJson errors: botocore takes the code from the ``x-amzn-ErrorType`` header
and the message from the body's ``message``, so the client raises ``ClientError`` with that
code. An empty script answers 500 InternalServerException, so a test that sends more
requests than it scripted fails loudly.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    from fetcher_codegen.llm import BedrockClient

CHARS_PER_TOKEN = 4
IMAGE_TOKENS = 1600
_ERROR_TYPE = "x-amzn-ErrorType"
_ANSWER_MARK = "x-fake-answer"  # internal: the body is an answer spec, rendered per request
_RESPOND = "x-fake-respond"  # internal: ask the responder


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    model_id: str | None  # from the path, URL-decoded; None when the path is not Converse
    headers: dict[str, str]  # names lower-cased
    body: dict[str, Any]  # the JSON body ({} when it was not JSON)
    raw_body: bytes = field(repr=False)

    @property
    def authorization(self) -> str:
        return self.headers.get("authorization", "")

    @property
    def system_text(self) -> str:
        return "\n".join(str(b.get("text", "")) for b in self.body.get("system", []))

    @property
    def messages(self) -> list[dict[str, Any]]:
        messages = self.body.get("messages", [])
        return messages if isinstance(messages, list) else []

    @property
    def texts(self) -> list[str]:
        """Every text block of every message, in order."""
        return [
            str(block["text"])
            for message in self.messages
            for block in message.get("content", [])
            if "text" in block
        ]

    @property
    def images(self) -> list[tuple[str, bytes]]:
        """``(format, bytes)`` of every image block (the client sends bytes base64-encoded)."""
        found = []
        for message in self.messages:
            for block in message.get("content", []):
                image = block.get("image")
                if image:
                    found.append((image["format"], base64.b64decode(image["source"]["bytes"])))
        return found

    @property
    def all_text(self) -> str:
        """System prompt, every text block and the raw body: for "this never appears" asserts."""
        return "\n".join([self.system_text, *self.texts, self.raw_body.decode("utf-8", "replace")])


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class _Delay:
    seconds: float


class FakeBedrock:
    """A scriptable fake of ``bedrock-runtime`` on 127.0.0.1 and a free port.

    Each request consumes the delay steps at the head of the script (sleeping that long),
    then one reply.
    """

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._script: deque[_Reply | _Delay] = deque()
        self._responder: Callable[[RecordedRequest], dict[str, Any] | str] | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # quick shutdown
            name="fake-bedrock",
            daemon=True,
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> FakeBedrock:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes delayed replies
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeBedrock:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the script ---------------------------------------------------------------------

    def answer(
        self,
        text: str,
        *,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        stop_reason: str = "end_turn",
    ) -> None:
        """Queue a Converse answer; tokens default to chars/4 of the request and the text."""
        spec = {
            "text": text,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "stop_reason": stop_reason,
        }
        self._push(_Reply(200, json.dumps(spec).encode(), {_ANSWER_MARK: "1"}))

    def respond_with(
        self, responder: Callable[[RecordedRequest], dict[str, Any] | str] | None
    ) -> None:
        """Answer requests the script does not cover with ``responder(request)``."""
        with self._lock:
            self._responder = responder

    def throttle(self, times: int = 1) -> None:
        """Queue ``times`` answers 429 ThrottlingException."""
        for _ in range(times):
            self.error("ThrottlingException", 429, "Too many requests, please wait.")

    def error(self, code: str, status: int, message: str = "error") -> None:
        """Queue an AWS restJson error answer (code in ``x-amzn-ErrorType``)."""
        error_type = f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/"
        self._push(
            _Reply(status, json.dumps({"message": message}).encode(), {_ERROR_TYPE: error_type})
        )

    def malformed(self) -> None:
        """Queue a 200 answer whose body is not the Converse shape (not even JSON)."""
        self._push(_Reply(200, b"<html>surprise</html>", {"Content-Type": "text/html"}))

    def delay(self, seconds: float) -> None:
        """Queue a pause: the request that reaches it waits ``seconds`` before its reply."""
        self._push(_Delay(seconds))

    def pending(self) -> int:
        """Replies (not delays) still queued."""
        with self._lock:
            return sum(isinstance(step, _Reply) for step in self._script)

    def _push(self, step: _Reply | _Delay) -> None:
        with self._lock:
            self._script.append(step)

    def _next(self) -> tuple[float, _Reply]:
        delay = 0.0
        with self._lock:
            if not self._script and self._responder is not None:
                return 0.0, _Reply(500, b"", {_RESPOND: "1"})
            while self._script:
                step = self._script.popleft()
                if isinstance(step, _Reply):
                    return delay, step
                delay += step.seconds
        message = json.dumps({"message": "fake bedrock: no scripted response left"}).encode()
        return delay, _Reply(500, message, {_ERROR_TYPE: "InternalServerException"})

    # -- HTTP ---------------------------------------------------------------------------

    def client(self, *, model_id: str = "anthropic.claude-test", **settings: Any) -> BedrockClient:
        """The product's Bedrock client pointed here, quick to give up (tests wait less)."""
        from fetcher_codegen.llm import BedrockClient, BedrockSettings

        defaults: dict[str, Any] = {
            "throttle_backoff_seconds": 0.01,
            "throttle_backoff_max_seconds": 0.02,
            "max_throttle_retries": 1,
            "timeout_seconds": 10.0,
            "connect_timeout_seconds": 2.0,
        }
        return BedrockClient(
            BedrockSettings(
                model_id=model_id,
                endpoint_url=self.url,
                aws_access_key_id="test",
                aws_secret_access_key="test",
                **(defaults | settings),
            )
        )

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return  # keep test output clean

        return Handler

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        model_id = _model_id(handler.path)
        request = RecordedRequest(
            method=handler.command,
            path=handler.path,
            model_id=model_id,
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body,
            raw_body=raw,
        )
        with self._lock:
            self.requests.append(request)
        if model_id is None:
            message = json.dumps({"message": f"no route for {handler.path}"}).encode()
            delay, reply = 0.0, _Reply(404, message, {_ERROR_TYPE: "UnknownOperationException"})
        else:
            delay, reply = self._next()
            if _RESPOND in reply.headers and self._responder is not None:
                reply = _responder_reply(self._responder, request)
        if delay and self._stopping.wait(delay):
            return  # the server is stopping
        if _ANSWER_MARK in reply.headers:
            reply = _converse_reply(reply, request)
        try:
            handler.send_response(reply.status)
            handler.send_header(
                "Content-Type", reply.headers.get("Content-Type", "application/json")
            )
            handler.send_header("Content-Length", str(len(reply.body)))
            handler.send_header("x-amzn-RequestId", f"fake-{len(self.requests)}")
            for name, value in reply.headers.items():
                if name.lower() != "content-type":
                    handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a read timeout under test)


def _model_id(path: str) -> str | None:
    parts = path.split("?", 1)[0].split("/")
    if len(parts) == 4 and parts[1] == "model" and parts[3] == "converse" and parts[2]:
        return unquote(parts[2])
    return None


def _converse_reply(reply: _Reply, request: RecordedRequest) -> _Reply:
    spec = json.loads(reply.body)
    text = spec["text"]
    input_tokens = spec["input_tokens"]
    if input_tokens is None:
        chars = len(request.system_text) + sum(len(t) for t in request.texts)
        input_tokens = -(-chars // CHARS_PER_TOKEN) + IMAGE_TOKENS * len(request.images)
    output_tokens = spec["output_tokens"]
    if output_tokens is None:
        output_tokens = -(-len(text) // CHARS_PER_TOKEN)
    body = {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": spec["stop_reason"],
        "usage": {
            "inputTokens": input_tokens,
            "outputTokens": output_tokens,
            "totalTokens": input_tokens + output_tokens,
        },
        "metrics": {"latencyMs": 12},
    }
    return _Reply(200, json.dumps(body).encode(), {})


def _responder_reply(
    responder: Callable[[RecordedRequest], dict[str, Any] | str], request: RecordedRequest
) -> _Reply:
    answer = responder(request)
    if isinstance(answer, str):
        spec = {"text": answer, "input_tokens": None, "output_tokens": None,
                "stop_reason": "end_turn"}  # fmt: skip
        return _converse_reply(_Reply(200, json.dumps(spec).encode(), {}), request)
    tools = request.body.get("toolConfig", {}).get("tools", [])
    name = tools[0]["toolSpec"]["name"] if tools else "tool"
    content = [{"toolUse": {"toolUseId": f"tool-{len(answer)}", "name": name, "input": answer}}]
    chars = len(request.system_text) + sum(len(t) for t in request.texts)
    input_tokens = -(-chars // CHARS_PER_TOKEN) + IMAGE_TOKENS * len(request.images)
    output_tokens = -(-len(json.dumps(answer)) // CHARS_PER_TOKEN)
    body = {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": input_tokens, "outputTokens": output_tokens,
                  "totalTokens": input_tokens + output_tokens},
        "metrics": {"latencyMs": 12},
    }  # fmt: skip
    return _Reply(200, json.dumps(body).encode(), {})
