"""The fetcher repository's Git remote: which URLs are accepted, shown, how Git failures are
classified, and :class:`GitCommand`, which runs git with them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit

from amazoniax_dagster.core.errors import ConfigError, InfrastructureError
from amazoniax_dagster.core.redaction import MASK, redact_url

if TYPE_CHECKING:
    from git import GitCommandError


_SCP_LIKE = re.compile(r"^(?:[^@/\s]+@)?[A-Za-z0-9.\-\[\]:]+:(?!//)[^\s]*$")


_REMOTE_SCHEMES = frozenset({"https", "http", "ssh", "git", "file"})


# Lower-cased stderr fragments that mean the remote URL or its credentials are wrong.
_CONFIG_FAILURES = (
    "authentication failed",
    "could not read username",
    "could not read password",
    "terminal prompts disabled",
    "permission denied",
    "repository not found",
    "does not appear to be a git repository",
    "access denied",
    "invalid username or password",
    "host key verification failed",
    "the requested url returned error: 401",
    "the requested url returned error: 403",
    "the requested url returned error: 404",
    "is not supported",
)


def check_remote_url(url: str) -> str:
    """The URL if Git may use it as the registry's remote, else ConfigError.

    Accepted: ``https``/``http``/``ssh``/``git``/``file`` URLs, scp-like ``user@host:path`` and
    absolute local paths. Refused: transport helpers (``ext::``, which runs commands), anything
    that starts like an option, whitespace.
    """
    shown = display_url(url)
    if not url or url != url.strip() or any(ch.isspace() for ch in url):
        raise ConfigError(f"fetcher repository remote {shown!r} is empty or has whitespace")
    if url.startswith("-") or "::" in url:
        raise ConfigError(f"fetcher repository remote {shown!r} is not a URL Git should run")
    if "://" in url:
        scheme = url.split("://", 1)[0].lower()
        if scheme not in _REMOTE_SCHEMES:
            allowed = ", ".join(sorted(_REMOTE_SCHEMES))
            raise ConfigError(
                f"fetcher repository remote {shown!r}: scheme must be one of {allowed}"
            )
        return url
    if url.startswith("/") or _SCP_LIKE.match(url):
        return url
    raise ConfigError(
        f"fetcher repository remote {shown!r} is neither a URL, user@host:path nor an absolute path"
    )


def display_url(url: str) -> str:
    """The remote URL as it may be shown: password masked, and a user name that is really a
    token (``https://<token>@host``, no password) masked too."""
    if "://" in url:
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.username and parts.password is None:
            host = parts.netloc.rpartition("@")[2]
            url = parts._replace(netloc=f"{MASK}@{host}").geturl()
    return redact_url(url)


def _url_secrets(url: str | None) -> list[str]:
    """Strings of the remote URL to mask wherever they appear (e.g. echoed in git's stderr)."""
    if not url or "://" not in url:
        return []
    parts = urlsplit(url)
    secrets = []
    if parts.password:
        secrets += [parts.password, unquote(parts.password)]
    elif parts.username and parts.scheme in ("http", "https"):
        secrets += [parts.username, unquote(parts.username)]
    return secrets


def classify_git_failure(stderr: str) -> type[ConfigError] | type[InfrastructureError]:
    """ConfigError when git's message says the remote or its credentials are wrong."""
    lowered = stderr.lower()
    if any(fragment in lowered for fragment in _CONFIG_FAILURES):
        return ConfigError
    return InfrastructureError


def _stderr_text(exc: GitCommandError) -> str:
    """GitPython keeps stderr pre-formatted (``\\n  stderr: '...'``); this is the text inside."""
    text = str(exc.stderr or "")
    match = re.match(r"\s*stderr: '(.*)'\s*$", text, re.DOTALL)
    return match.group(1) if match else text


def _summary(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.lower().startswith("hint:")] or lines
    if len(lines) > 4:  # git says what went wrong first, and what it was doing last
        lines = [*lines[:2], "...", *lines[-2:]]
    text = " / ".join(lines)
    return text[:500] or "no message from git"


class GitCommand:
    """Runs ``git`` in one directory with the registry's environment; translates failures."""

    def __init__(
        self,
        cwd: Path,
        env: Mapping[str, str],
        redact: _Redact,
        where: str,
        timeout: float,
    ) -> None:
        self.cwd, self.env, self.redact, self.where, self.timeout = cwd, env, redact, where, timeout

    def __call__(self, *args: str, what: str, network: bool = False) -> str:
        import git

        try:
            return git.Git(str(self.cwd)).execute(
                ["git", *args],
                env=dict(self.env),
                kill_after_timeout=self.timeout if network else None,
            )
        except git.GitCommandError as exc:
            stderr = self.redact(_stderr_text(exc))
            error = classify_git_failure(stderr)
            raise error(f"could not {what} ({self.where}): {_summary(stderr)}") from self._scrubbed(
                exc
            )
        except (git.GitError, OSError) as exc:
            raise InfrastructureError(
                f"could not {what} ({self.where}): git did not run ({type(exc).__name__}: "
                f"{self.redact(str(exc))})"
            ) from exc

    def _scrubbed(self, exc: GitCommandError) -> GitCommandError:
        """A copy of ``exc`` whose command line and output have the credentials masked: the
        original would show them in any traceback that includes the cause."""
        import git

        status = exc.status if isinstance(exc.status, int) else self.redact(str(exc.status))
        clean = git.GitCommandError([self.redact(str(a)) for a in exc.command], status)
        clean.stdout = self.redact(str(exc.stdout or ""))
        clean.stderr = self.redact(str(exc.stderr or ""))
        return clean


class _Redact(Protocol):
    def __call__(self, text: str, /) -> str: ...
