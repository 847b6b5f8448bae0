"""The sandboxed side of a Python fetcher run: load ``fetcher.py``, call ``fetch``, report.

Started by the sandbox supervisor (:mod:`.sandbox`) as
``python -I -B -m amazoniax_dagster.fetchers.pipes_entry``, already confined. It talks to the
orchestrating process only through Dagster Pipes (``open_dagster_pipes``):

- Pipes *extras* say where the fetcher's code is (``code_path``) and where its input file is
  (``input_file``, inside the job folder);
- the input file holds ``config`` (the channel config, secrets included), ``run_date``,
  ``out_dir`` and the ``secrets`` to mask in everything sent back; it is deleted as soon as
  it is read, so the secrets never sit on disk while the fetcher runs and never appear in the
  environment or on the command line;
- log records of the fetcher (``logging``) go back as Pipes log messages, secrets masked;
- the end is one custom message: ``{"kind": RESULT_KIND, "metadata": {...}}`` or
  ``{"kind": ERROR_KIND, "phase": "load"|"fetch", "type", "message", "traceback"}``.

The session is deliberately not closed here: the supervisor closes it after the outcome, so
Dagster sees one well-formed session. The parent never trusts what this process *says* it
wrote: it lists the output folder itself.

A fetcher module has one entry point::

    def fetch(config: dict, out_dir: str, run_date: str) -> dict | None: ...

returning optional JSON metadata (shown in the UI, so no secrets).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from amazoniax_dagster.core.redaction import Redactor, redact_mapping

RESULT_KIND = "amazoniax.fetch_result"
ERROR_KIND = "amazoniax.fetch_error"
ENTRY_POINT = "fetch"
_MAX_TRACEBACK_CHARS = 4000


class _ToPipes(logging.Handler):
    """Forwards every log record of the fetcher to the Pipes log, masked."""

    def __init__(self, pipes_log: logging.Logger, redact: Redactor) -> None:
        super().__init__()
        self._pipes_log = pipes_log
        self._redact = redact

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._pipes_log.log(record.levelno, self._redact(self.format(record)))
        except Exception:
            self.handleError(record)


def _redact_tree(value: Any, redact: Redactor) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _redact_tree(v, redact) for k, v in redact_mapping(value).items()}
    if isinstance(value, list | tuple):
        return [_redact_tree(item, redact) for item in value]
    if isinstance(value, str):
        return redact(value)
    return value


def _error(phase: str, exc: BaseException, redact: Redactor) -> dict[str, Any]:
    text = "".join(traceback.format_exception(exc))[-_MAX_TRACEBACK_CHARS:]
    return {
        "kind": ERROR_KIND,
        "phase": phase,
        "type": type(exc).__qualname__,
        "module": type(exc).__module__,
        "message": redact(str(exc)),
        "traceback": redact(text),
    }


def _load_entry_point(code_path: Path) -> Callable[..., Any]:
    spec = importlib.util.spec_from_file_location("fetcher", code_path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{code_path} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules["fetcher"] = module
    spec.loader.exec_module(module)
    entry = getattr(module, ENTRY_POINT, None)
    if not callable(entry):
        raise AttributeError(
            f"{code_path.name} has no function {ENTRY_POINT}(config, out_dir, run_date)"
        )
    return entry  # type: ignore[no-any-return]


def main() -> int:
    from dagster_pipes import DAGSTER_PIPES_CONTEXT_ENV_VAR, open_dagster_pipes

    if DAGSTER_PIPES_CONTEXT_ENV_VAR not in os.environ:
        sys.stderr.write("pipes_entry: not started through Dagster Pipes (no bootstrap vars)\n")
        return 2
    pipes = open_dagster_pipes()
    input_file = Path(pipes.get_extra("input_file"))
    data = json.loads(input_file.read_text())
    input_file.unlink()
    redact = Redactor(data.get("secrets", ()))
    handler = _ToPipes(pipes.log, redact)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    try:
        fetch = _load_entry_point(Path(pipes.get_extra("code_path")))
    except BaseException as exc:
        pipes.report_custom_message(_error("load", exc, redact))
        return 1
    try:
        result = fetch(data["config"], data["out_dir"], data["run_date"])
        if result is not None and not isinstance(result, Mapping):
            raise TypeError(f"{ENTRY_POINT}() returned {type(result).__name__}, not a dict or None")
        metadata = json.loads(json.dumps(dict(result or {})))  # JSON only, or TypeError
    except BaseException as exc:  # the fetcher's own failure, SystemExit included
        pipes.report_custom_message(_error("fetch", exc, redact))
        return 1
    pipes.report_custom_message({"kind": RESULT_KIND, "metadata": _redact_tree(metadata, redact)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
