"""The fetcher registry's pure parts: names, remote URLs, error classes, the file lock."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from amazoniax_dagster.core.errors import ConfigError, InfrastructureError
from amazoniax_dagster.core.fetcher_names import (
    candidate_branch,
    entry_kind,
    fetcher_name,
    parse_fetcher_name,
    site_slug,
)
from amazoniax_dagster.fetchers.git_remote import (
    check_remote_url,
    classify_git_failure,
    display_url,
)
from amazoniax_dagster.fetchers.registry import FetcherRepo
from amazoniax_dagster.fetchers.repo_files import file_lock
from resources.git import FetcherRepoResource


@pytest.mark.parametrize(
    ("structure_id", "version", "expected"),
    [
        ("amazon.co.uk", 1, "amazon_co_uk_fetcher_v1"),
        ("127.0.0.1:8080", 1, "127_0_0_1_8080_fetcher_v1"),
        ("Example.COM", 12, "example_com_fetcher_v12"),
        ("my-shop.de", 3, "my-shop_de_fetcher_v3"),
        ("bücher.de", 1, "xn--bcher-kva_de_fetcher_v1"),
        ("[::1]:8080", 2, "1_8080_fetcher_v2"),
        ("localhost:80", 1, "localhost_80_fetcher_v1"),
    ],
)
def test_fetcher_names_follow_the_documented_rule(
    structure_id: str, version: int, expected: str
) -> None:
    name = fetcher_name(structure_id, version)
    assert name == expected
    assert parse_fetcher_name(name) == (name.rsplit("_fetcher_v", 1)[0], version)


def test_hyphen_and_dot_sites_get_different_names() -> None:
    assert site_slug("a-b.com") != site_slug("a.b-com") != site_slug("a.b.com")


def test_a_very_long_site_is_cut_but_stays_unique() -> None:
    one, two = "a" * 240 + ".com", "a" * 240 + ".net"
    assert len(fetcher_name(one, 999)) <= 220
    assert site_slug(one) != site_slug(two)
    assert parse_fetcher_name(fetcher_name(one, 7))[1] == 7


def test_unusable_sites_and_versions_are_refused() -> None:
    with pytest.raises(ConfigError, match="no letters or digits"):
        fetcher_name("...:", 1)
    with pytest.raises(ValueError, match="start at 1"):
        fetcher_name("amazon.com", 0)


@pytest.mark.parametrize(
    "name",
    ["../x_fetcher_v1", "x_fetcher_v0", "X_fetcher_v1", "x_fetcher_v1/..", "x_fetcher_v", "x"],
)
def test_parse_refuses_anything_but_a_fetcher_name(name: str) -> None:
    with pytest.raises(ValueError, match="not a fetcher name"):
        parse_fetcher_name(name)


def test_candidate_branches_are_named_after_the_version() -> None:
    assert candidate_branch("amazon_com_fetcher_v4") == "candidates/amazon_com_fetcher_v4"
    with pytest.raises(ValueError):
        candidate_branch("main")


def test_the_entry_file_names_the_kind() -> None:
    assert entry_kind({"recipe.yaml": b"", "data/x.json": b""}) == "recipe"
    assert entry_kind(["browser.yaml"]) == "browser"
    assert entry_kind({"fetcher.py": b""}) == "python"
    with pytest.raises(ValueError, match="exactly one of"):
        entry_kind({"notes.txt": b""})
    with pytest.raises(ValueError, match="found 2"):
        entry_kind({"recipe.yaml": b"", "fetcher.py": b""})


@pytest.mark.parametrize(
    "url",
    [
        "https://git.example.com/org/fetchers.git",
        "https://user:pass@git.example.com/org/fetchers.git",
        "ssh://git@git.example.com/org/fetchers.git",
        "git@github.com:org/fetchers.git",
        "file:///srv/git/fetchers.git",
        "/srv/git/fetchers.git",
    ],
)
def test_usual_remotes_are_accepted(url: str) -> None:
    assert check_remote_url(url) == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ext::sh -c touch% /tmp/pwned", "whitespace"),
        ("ext::sh", "not a URL Git should run"),
        ("--upload-pack=touch /tmp/x", "whitespace"),
        ("-uhelp", "not a URL Git should run"),
        ("ftp://user:hunter22@host/x.git", "scheme must be one of"),
        ("relative/path", "neither a URL"),
        (" https://host/x.git", "whitespace"),
        ("", "empty"),
    ],
)
def test_dangerous_or_odd_remotes_are_a_config_error(url: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason) as caught:
        check_remote_url(url)
    assert "hunter22" not in str(caught.value)


def test_remote_urls_are_shown_without_credentials() -> None:
    assert display_url("https://bot:hunter22@git.example.com/f.git") == (
        "https://bot:***@git.example.com/f.git"
    )
    # A token used as the user name (GitHub style) is a secret too.
    assert display_url("https://ghp_abcdef123456@github.com/o/f.git") == (
        "https://***@github.com/o/f.git"
    )
    assert display_url("ssh://git@host/f.git") == "ssh://git@host/f.git"
    repo = FetcherRepo("/tmp/unused-cache", "https://bot:hunter22@git.example.com/f.git")
    assert "hunter22" not in repr(repo)


_CONFIG = [
    "fatal: Authentication failed for 'https://host/f.git/'",
    "fatal: could not read Username for 'https://host': terminal prompts disabled",
    "ERROR: Repository not found.\nfatal: Could not read from remote repository.",
    "fatal: '/nope' does not appear to be a git repository",
    "git@host: Permission denied (publickey).",
    "fatal: unable to access 'https://h/': The requested URL returned error: 403",
]
_INFRASTRUCTURE = [
    "fatal: unable to access 'https://h/': Failed to connect to h port 443",
    "fatal: unable to access 'https://h/': Could not resolve host: h",
    " ! [rejected]        HEAD -> main (fetch first)",
    "fatal: Unable to create '/c/.git/index.lock': File exists.",
]


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [(e, ConfigError) for e in _CONFIG] + [(e, InfrastructureError) for e in _INFRASTRUCTURE],
)
def test_git_failures_are_classified(stderr: str, expected: type[Exception]) -> None:
    assert classify_git_failure(stderr) is expected


def test_bad_files_are_refused_before_git_runs(tmp_path: Path) -> None:
    repo = FetcherRepo(tmp_path / "cache")
    good = {"recipe.yaml": b"steps: []\n"}
    name = "site_com_fetcher_v1"
    for files in (
        {**good, "../escape": b"x"},
        {**good, "provenance.json": b"{}"},
        {**good, ".git/config": b"x"},
        {"notes.txt": b"no entry file"},
    ):
        with pytest.raises(ValueError):
            repo.write_version(name, files, {}, "m")
    with pytest.raises(TypeError, match="must be bytes"):
        repo.write_version(name, {"recipe.yaml": "text"}, {}, "m")  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="not JSON"):
        repo.write_version(name, good, {"when": object()}, "m")
    with pytest.raises(ValueError, match="not a fetcher name"):
        repo.write_version("../etc", good, {}, "m")
    assert not (tmp_path / "cache").exists()


def test_an_exclusive_lock_keeps_out_every_other_holder(tmp_path: Path) -> None:
    lock = tmp_path / "cache.lock"
    with file_lock(lock, shared=True, timeout=1), file_lock(lock, shared=True, timeout=1):
        with pytest.raises(InfrastructureError, match="held by another process"):
            with file_lock(lock, shared=False, timeout=0.1):
                pass
    released = threading.Event()
    with file_lock(lock, shared=False, timeout=1):

        def other() -> None:
            with file_lock(lock, shared=True, timeout=5):
                released.set()

        thread = threading.Thread(target=other)
        thread.start()
        assert not released.wait(0.3)  # blocked while we hold it
    thread.join(5)
    assert released.is_set()  # granted once we let go


def test_the_resource_builds_the_repository_lazily(tmp_path: Path) -> None:
    resource = FetcherRepoResource(repo_path=str(tmp_path / "cache"), sync_on_startup=False)
    repo = resource.get_repo()
    assert (repo.path, repo.remote_url, repo.branch) == (tmp_path / "cache", None, "main")
    assert (repo.auto_commit, repo.push) == (True, True)
    assert resource.get_repo() is repo
    assert not (tmp_path / "cache").exists()  # no sync asked: nothing touched
    with pytest.raises(ConfigError, match="scheme"):
        FetcherRepoResource(repo_path=str(tmp_path / "c2"), remote_url="ftp://h/x").get_repo()
