"""The fetcher registry's Git side: every fetcher version is a folder in one Git repository.

Layout of the repository (branch ``main``)::

    README.md
    amazon_co_uk_fetcher_v1/        <- fetcher_name(structure_id, version)
        recipe.yaml                 <- the entry file names the kind (see ENTRY_FILES)
        provenance.json             <- how it was generated: HAR digest, validation results
    amazon_co_uk_fetcher_v2/
        ...

A version folder is immutable once committed. Candidates that failed validation are kept for
review on their own branch, ``candidates/<fetcher_name>``, never on ``main``.

Publishing order (:func:`publish_version`); the DB decides the number, Git holds the code:

1. allocate the version in the DB (row status ``candidate``; race-safe, so two publishers of one
   site get v2 and v3, never two v2);
2. write the folder, commit and push it to ``main`` (a rejected push is rebased and retried);
3. mark the DB row ``published`` with the commit;
4. remap every channel of the site to the new version (only forward: when two publishers
   race, the channels end on the higher number whatever order the remaps ran in).

A crash between two steps leaves a ``candidate`` row (and maybe an orphan folder) that no
channel ever uses; a re-run allocates the next number. At run time a fetcher is found through
the channel's mapping -> ``fetcher_name`` -> the folder in the local cache, which is synced at
start-up and once more when a folder is missing.

Concurrency: writers sharing one local cache take an exclusive ``fcntl.flock`` on
``<cache>.lock`` (next to the cache folder), readers a shared one, so two processes never
interleave git commands on one index. Separate caches of one remote meet at the push, where the
loser rebases (its folder never conflicts: names are unique) and pushes again.

Errors: a failing git command becomes ConfigError (bad remote URL or credentials) or
InfrastructureError (anything else), ``raise ... from`` a copy of the git error whose text has
the remote's credentials masked. The remote URL itself is only ever shown redacted. GitPython is
imported lazily (it runs ``git --version`` on import).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amazoniax_dagster.core.errors import ConfigError, FetcherCodeError, InfrastructureError
from amazoniax_dagster.core.fetcher_names import (
    _NAME,
    CANDIDATE_PREFIX,
    ENTRY_FILES,
    KINDS,
    PROVENANCE_FILE,
    candidate_branch,
    entry_kind,
    fetcher_name,
    parse_fetcher_name,
    site_slug,
)
from amazoniax_dagster.core.redaction import MASK, Redactor
from amazoniax_dagster.fetchers.git_remote import (
    GitCommand,
    _url_secrets,
    check_remote_url,
    classify_git_failure,
    display_url,
)
from amazoniax_dagster.fetchers.repo_files import (
    _folder_content,
    _load_folder,
    _write_folder,
    file_lock,
)

if TYPE_CHECKING:
    pass


_README = """# amazoniax fetchers

One folder per fetcher version, `<domain>_fetcher_v<N>`, written by amazoniax; never edit a
published folder, publish a new version instead. Each folder holds one entry file
(`recipe.yaml`, `browser.yaml` or `fetcher.py`) and `provenance.json`. Candidates that failed
validation live on branches `candidates/<fetcher_name>`.
"""


# -- names -------------------------------------------------------------------------------------


# -- remote URLs -------------------------------------------------------------------------------


# -- errors ------------------------------------------------------------------------------------


# -- the repository ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredFetcher:
    """One version folder as read from the cache. ``files`` excludes ``provenance.json``."""

    name: str
    kind: str
    files: dict[str, bytes]
    provenance: dict[str, Any]

    @property
    def entry(self) -> bytes:
        """The entry file's content (the recipe, or the module's code)."""
        return self.files[ENTRY_FILES[self.kind]]


class FetcherRepo:
    """The local cache of the fetchers repository (a clone of ``remote_url`` when given).

    ``auto_commit=False`` only writes folders (someone else commits); ``push=False`` keeps
    commits local (they are rebased onto the remote on sync). With ``push=True`` the cache is a
    disposable mirror: sync resets and cleans it to the remote branch and drops anything not
    pushed (so ``auto_commit=False`` only makes sense without a remote or with ``push=False``).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        remote_url: str | None = None,
        branch: str = "main",
        auto_commit: bool = True,
        push: bool = True,
        *,
        push_attempts: int = 5,
        lock_timeout: float = 300.0,
        network_timeout: float = 120.0,
        author: tuple[str, str] = ("amazoniax", "amazoniax@localhost"),
    ) -> None:
        self.path = Path(path).absolute()
        self.remote_url = check_remote_url(remote_url) if remote_url else None
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/-]*", branch) or ".." in branch:
            raise ConfigError(f"fetcher repository branch {branch!r} is not a plain branch name")
        self.branch = branch
        self.auto_commit = auto_commit
        self.push = push
        self.push_attempts = max(1, push_attempts)
        self.lock_timeout = lock_timeout
        self.network_timeout = network_timeout
        self.lock_path = self.path.with_name(f"{self.path.name}.lock")
        self._redactor = Redactor(_url_secrets(self.remote_url))
        self._env = {
            "GIT_TERMINAL_PROMPT": "0",  # never wait for a password nobody will type
            "GIT_ASKPASS": "",
            "SSH_ASKPASS": "",
            "GIT_AUTHOR_NAME": author[0],
            "GIT_AUTHOR_EMAIL": author[1],
            "GIT_COMMITTER_NAME": author[0],
            "GIT_COMMITTER_EMAIL": author[1],
        }

    def __repr__(self) -> str:
        return (
            f"FetcherRepo({str(self.path)!r}, remote={self.shown_remote!r}, branch={self.branch!r})"
        )

    @property
    def shown_remote(self) -> str | None:
        return display_url(self.remote_url) if self.remote_url else None

    # -- public API ----------------------------------------------------------------------------

    def sync(self) -> str:
        """Bring the cache to the remote branch (clone when missing); without a remote, make
        sure a repository with a first commit exists. Returns the commit of ``HEAD``."""
        with self._lock(shared=False):
            return self._sync()

    def read(self, name: str, *, sync_if_missing: bool = True) -> StoredFetcher:
        """The version folder ``name``; when it is not in the cache, sync once and look again."""
        parse_fetcher_name(name)
        stored = self._read_locked(name)
        if stored is None and sync_if_missing and (self.remote_url or not self._is_repo()):
            self.sync()
            stored = self._read_locked(name)
        if stored is None:
            raise InfrastructureError(
                f"fetcher {name} is not in the fetcher repository {self._where()} "
                f"(branch {self.branch})"
            )
        return stored

    def exists(self, name: str) -> bool:
        parse_fetcher_name(name)
        with self._lock(shared=True):
            return (self.path / name / PROVENANCE_FILE).is_file()

    def names(self) -> list[str]:
        """Every version folder in the cache, by site then version."""
        with self._lock(shared=True):
            if not self.path.is_dir():
                return []
            found = [p.name for p in self.path.iterdir() if p.is_dir() and _NAME.match(p.name)]
        return sorted(found, key=parse_fetcher_name)

    def write_version(
        self,
        name: str,
        files: Mapping[str, bytes],
        provenance: Mapping[str, Any],
        message: str,
    ) -> str | None:
        """Write the folder ``name`` on the branch; commit it (``auto_commit``) and push it
        (``push`` and a remote). Returns the commit, or None when nothing was committed.

        A folder already committed with the same content returns the commit that added it (a
        retried publish); with other content it is refused, since versions are immutable.
        """
        content = _folder_content(name, files, provenance)
        with self._lock(shared=False):
            self._sync()
            git = self._git(self.path)
            if git("ls-tree", "--name-only", "HEAD", "--", name, what="look up the folder"):
                if _load_folder(self.path / name) != content:
                    raise InfrastructureError(
                        f"fetcher {name} is already in the fetcher repository {self._where()} "
                        "with other content; versions are immutable, allocate a new one"
                    )
                return git("log", "-1", "--format=%H", "--", name, what="find the commit")
            _write_folder(self.path / name, content)
            if not self.auto_commit:
                return None
            self._commit(git, name, message)
            if self.push and self.remote_url:
                self._push(git, self.branch)
            return git("rev-parse", "HEAD", what="read the commit")

    def write_candidate(
        self,
        name: str,
        files: Mapping[str, bytes],
        provenance: Mapping[str, Any],
        message: str,
    ) -> str:
        """Commit the folder on branch ``candidates/<name>`` (kept for review, never on the main
        branch) and push that branch when ``push`` and a remote. Always commits; returns the
        commit. The main worktree is not touched: the commit is made in a temporary worktree."""
        content = _folder_content(name, files, provenance)
        branch = candidate_branch(name)
        with self._lock(shared=False):
            self._sync()
            git = self._git(self.path)
            # The sync fetched every remote branch: continue a candidate branch that exists.
            base = "HEAD"
            for ref in (f"refs/remotes/origin/{branch}", f"refs/heads/{branch}"):
                if git("for-each-ref", ref, what="look up the candidate branch"):
                    base = ref
                    break
            tmp = Path(
                tempfile.mkdtemp(prefix=f".{self.path.name}-candidate-", dir=self.path.parent)
            )
            try:
                git(
                    "worktree",
                    "add",
                    "--force",
                    "-B",
                    branch,
                    str(tmp),
                    base,
                    what="check out the candidate branch",
                )
                work = self._git(tmp)
                shutil.rmtree(tmp / name, ignore_errors=True)
                _write_folder(tmp / name, content)
                self._commit(work, name, message)
                if self.push and self.remote_url:
                    self._push(work, branch)
                return work("rev-parse", "HEAD", what="read the commit")
            finally:
                with contextlib.suppress(InfrastructureError, ConfigError):
                    git("worktree", "remove", "--force", str(tmp), what="remove the worktree")
                shutil.rmtree(tmp, ignore_errors=True)

    # -- steps ---------------------------------------------------------------------------------

    def _sync(self) -> str:
        self._ensure_repo()
        git = self._git(self.path)
        git("worktree", "prune", what="prune stale worktrees")
        if self.remote_url:
            git("fetch", "--prune", "origin", what="fetch from the remote", network=True)
            remote_ref = f"refs/remotes/origin/{self.branch}"
            if git("for-each-ref", remote_ref, what="look up the remote branch"):
                if self.push or not self._has_commits(git):
                    # A mirror: drop unpushed commits and leftovers of crashed writes.
                    git(
                        "checkout",
                        "-q",
                        "-f",
                        "-B",
                        self.branch,
                        remote_ref,
                        what="reset to the remote",
                    )
                    git("clean", "-q", "-f", "-d", "-x", what="clean the cache")
                else:
                    git("checkout", "-q", "-f", self.branch, what="check out the branch")
                    self._rebase(git, remote_ref)
            else:  # an empty remote: give it a first commit
                self._first_commit(git)
                if self.push:
                    self._push(git, self.branch)
        else:
            self._first_commit(git)
        return git("rev-parse", "HEAD", what="read the commit")

    def _ensure_repo(self) -> None:
        """An initialised repository at ``path`` whose ``origin`` is ``remote_url``.

        The URL is written with GitPython's config writer, never passed on a command line, so
        it shows in no process list and no error message."""
        import git

        if not self._is_repo():
            if self.path.exists() and any(self.path.iterdir()):
                raise ConfigError(
                    f"fetcher repository cache {self.path} exists and is not a Git repository"
                )
            self.path.mkdir(parents=True, exist_ok=True)
            self._git(self.path)("init", "-q", "-b", self.branch, what="create the repository")
        if self.remote_url is None:
            return
        try:
            repo = git.Repo(self.path)
            try:
                with repo.config_reader() as reader:
                    current = reader.get_value('remote "origin"', "url", default="")
                if current != self.remote_url:
                    with repo.config_writer() as writer:
                        writer.set_value('remote "origin"', "url", self.remote_url)
                        writer.set_value(
                            'remote "origin"', "fetch", "+refs/heads/*:refs/remotes/origin/*"
                        )
            finally:
                repo.close()
        except (git.GitError, OSError, ValueError) as exc:
            raise InfrastructureError(
                f"could not configure the remote of the fetcher repository {self._where()}: "
                f"{type(exc).__name__}"
            ) from exc

    def _first_commit(self, git: GitCommand) -> None:
        if self._has_commits(git):
            return
        (self.path / "README.md").write_text(_README, encoding="utf-8")
        git("add", "--", "README.md", what="stage the README")
        git("commit", "-q", "-m", "Start the fetchers repository", what="make the first commit")

    def _commit(self, git: GitCommand, name: str, message: str) -> None:
        git("add", "-A", "--", name, what=f"stage {name}")
        if git("status", "--porcelain", "--", name, what=f"check {name}"):
            git("commit", "-q", "-m", message, "--", name, what=f"commit {name}")

    def _push(self, git: GitCommand, branch: str) -> None:
        """Push ``HEAD`` to ``branch``; when the remote moved on, rebase onto it and retry."""
        failure: InfrastructureError | None = None
        for attempt in range(1, self.push_attempts + 1):
            try:
                git(
                    "push",
                    "-q",
                    "origin",
                    f"HEAD:refs/heads/{branch}",
                    what=f"push {branch}",
                    network=True,
                )
                return
            except InfrastructureError as exc:  # ConfigError (credentials) is not retried
                failure = exc
            if attempt == self.push_attempts:
                break
            time.sleep(random.uniform(0.05, 0.2) * attempt)  # let racing publishers spread out
            git(
                "fetch",
                "origin",
                f"+refs/heads/{branch}:refs/remotes/origin/{branch}",
                what=f"fetch {branch}",
                network=True,
            )
            self._rebase(git, f"refs/remotes/origin/{branch}")
        raise InfrastructureError(
            f"could not push {branch} to the fetcher repository {self._where()} after "
            f"{self.push_attempts} attempts: {failure}"
        ) from failure

    def _rebase(self, git: GitCommand, onto: str) -> None:
        try:
            git("rebase", "-q", onto, what=f"rebase onto {onto}")
        except (InfrastructureError, ConfigError):
            with contextlib.suppress(InfrastructureError, ConfigError):
                git("rebase", "--abort", what="abort the rebase")
            raise

    def _read_locked(self, name: str) -> StoredFetcher | None:
        with self._lock(shared=True):
            folder = self.path / name
            if not (folder / PROVENANCE_FILE).is_file():
                return None
            content = _load_folder(folder)
        files = dict(content)
        raw = files.pop(PROVENANCE_FILE)
        try:
            provenance = json.loads(raw)
            kind = entry_kind(files)
        except (ValueError, UnicodeDecodeError) as exc:
            raise FetcherCodeError(f"fetcher {name} is malformed in its repository: {exc}") from exc
        if not isinstance(provenance, dict):
            raise FetcherCodeError(f"fetcher {name}: {PROVENANCE_FILE} is not a JSON object")
        return StoredFetcher(name=name, kind=kind, files=files, provenance=provenance)

    # -- plumbing ------------------------------------------------------------------------------

    def _is_repo(self) -> bool:
        return (self.path / ".git").is_dir()

    @staticmethod
    def _has_commits(git: GitCommand) -> bool:
        return bool(git("rev-list", "-n", "1", "--all", what="look for commits"))

    def _where(self) -> str:
        return f"{self.path} ({self.shown_remote})" if self.remote_url else str(self.path)

    def _git(self, cwd: Path) -> GitCommand:
        return GitCommand(cwd, self._env, self._redact, self._where(), self.network_timeout)

    def _redact(self, text: str) -> str:
        if self.remote_url:
            text = text.replace(self.remote_url, self.shown_remote or MASK)
        return self._redactor(text)

    @contextlib.contextmanager
    def _lock(self, *, shared: bool) -> Iterator[None]:
        with file_lock(self.lock_path, shared=shared, timeout=self.lock_timeout):
            yield


__all__ = [
    "CANDIDATE_PREFIX",
    "ENTRY_FILES",
    "KINDS",
    "PROVENANCE_FILE",
    "FetcherRepo",
    "StoredFetcher",
    "candidate_branch",
    "check_remote_url",
    "classify_git_failure",
    "display_url",
    "entry_kind",
    "fetcher_name",
    "parse_fetcher_name",
    "site_slug",
]
