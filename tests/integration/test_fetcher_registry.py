"""The fetcher registry on real Git repositories (a bare "remote" and clones in tmp dirs) and the
stack's PostgreSQL: sync, read, write, candidates, push races, errors, versions and mappings."""

from __future__ import annotations

import http.server
import multiprocessing
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import git
import pytest

from amazoniax_dagster.core.errors import ConfigError, InfrastructureError
from amazoniax_dagster.core.fetcher_names import fetcher_name
from amazoniax_dagster.core.sealing import SecretCipher
from amazoniax_dagster.db import FetcherDB
from amazoniax_dagster.devstack.local_stack import StackEndpoints
from amazoniax_dagster.fetchers.publishing import keep_candidate, publish_version
from amazoniax_dagster.fetchers.registry import FetcherRepo

pytestmark = pytest.mark.integration

RECIPE = {"recipe.yaml": b"requests:\n  - url: https://example.com/data.json\n"}


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], check=True, capture_output=True, text=True)
    return done.stdout.strip()


def _tree(remote: Path, ref: str) -> set[str]:
    """Top-level names on ``ref`` of the bare remote."""
    return set(_git("--git-dir", str(remote), "ls-tree", "--name-only", ref).splitlines())


def _site() -> str:
    return f"s{uuid.uuid4().hex[:8]}.example.com"


@pytest.fixture()
def remote(tmp_path: Path) -> Path:
    path = tmp_path / "remote.git"
    _git("init", "-q", "--bare", "-b", "main", str(path))
    return path


# -- Git -----------------------------------------------------------------------------------------


def test_sync_clones_the_remote_and_read_returns_what_was_written(
    tmp_path: Path, remote: Path
) -> None:
    writer = FetcherRepo(tmp_path / "a", str(remote))
    writer.sync()  # an empty remote gets a first commit
    assert _tree(remote, "main") == {"README.md"}
    provenance = {"generated_by": "deterministic", "har_sha256": "ab" * 32, "checks": [1, 2]}
    files = {**RECIPE, "fixtures/page1.json": b'{"items": []}'}
    commit = writer.write_version("site_com_fetcher_v1", files, provenance, "Publish v1")
    assert commit == _git("--git-dir", str(remote), "rev-parse", "main")
    assert "site_com_fetcher_v1" in _tree(remote, "main")

    reader = FetcherRepo(tmp_path / "b", str(remote))
    reader.sync()
    stored = reader.read("site_com_fetcher_v1")
    assert (stored.kind, stored.files, stored.provenance) == ("recipe", files, provenance)
    assert stored.entry == RECIPE["recipe.yaml"]

    # A version published after the reader's sync: read syncs once more by itself.
    writer.write_version("site_com_fetcher_v2", {"fetcher.py": b"def fetch(ctx): ...\n"}, {}, "v2")
    assert reader.read("site_com_fetcher_v2").kind == "python"
    assert reader.names() == ["site_com_fetcher_v1", "site_com_fetcher_v2"]
    with pytest.raises(InfrastructureError, match="site_com_fetcher_v9 is not in the fetcher"):
        reader.read("site_com_fetcher_v9")


def test_versions_are_immutable_and_a_retried_write_is_a_no_op(
    tmp_path: Path, remote: Path
) -> None:
    repo = FetcherRepo(tmp_path / "a", str(remote))
    first = repo.write_version("site_com_fetcher_v1", RECIPE, {"n": 1}, "v1")
    assert repo.write_version("site_com_fetcher_v1", RECIPE, {"n": 1}, "again") == first
    with pytest.raises(InfrastructureError, match="immutable"):
        repo.write_version("site_com_fetcher_v1", {"recipe.yaml": b"other"}, {"n": 1}, "x")
    assert _git("--git-dir", str(remote), "rev-parse", "main") == first


def test_a_candidate_is_pushed_on_its_branch_and_never_on_main(
    tmp_path: Path, remote: Path
) -> None:
    repo = FetcherRepo(tmp_path / "a", str(remote))
    repo.write_version("site_com_fetcher_v1", RECIPE, {}, "v1")
    main_before = _git("--git-dir", str(remote), "rev-parse", "main")
    commit = repo.write_candidate("site_com_fetcher_v2", RECIPE, {"validation": "failed"}, "c")
    branch = "refs/heads/candidates/site_com_fetcher_v2"
    assert _git("--git-dir", str(remote), "rev-parse", branch) == commit
    assert _tree(remote, branch) == {"README.md", "site_com_fetcher_v1", "site_com_fetcher_v2"}
    assert "site_com_fetcher_v2" not in _tree(remote, "main")
    assert _git("--git-dir", str(remote), "rev-parse", "main") == main_before
    assert not (repo.path / "site_com_fetcher_v2").exists()  # main worktree untouched
    with pytest.raises(InfrastructureError, match="not in the fetcher repository"):
        repo.read("site_com_fetcher_v2")
    # Reviewing again adds to the same branch instead of replacing it.
    again = repo.write_candidate("site_com_fetcher_v2", RECIPE, {"validation": "again"}, "c2")
    assert _git("--git-dir", str(remote), "rev-parse", f"{again}~1") == commit
    assert _git("-C", str(repo.path), "worktree", "list").count("\n") == 0  # temp one removed


def test_a_rejected_push_is_rebased_and_retried(tmp_path: Path, remote: Path) -> None:
    FetcherRepo(tmp_path / "a", str(remote)).sync()
    racer = FetcherRepo(tmp_path / "racer", str(remote), push=False)
    racer.write_version("site_com_fetcher_v2", RECIPE, {}, "v2 (racer)")  # committed, not pushed
    slow = FetcherRepo(tmp_path / "slow", str(remote))
    slow.sync()
    # Just before the slow writer's first push, the racer's push lands: the slow push is
    # rejected, exactly as when two publishers push at the same moment.
    marker = tmp_path / "raced"
    hook = slow.path / ".git" / "hooks" / "pre-push"
    hook.write_text(
        "#!/bin/sh\n"
        f"if [ ! -e '{marker}' ]; then touch '{marker}'; "
        "env -u GIT_DIR -u GIT_WORK_TREE -u GIT_INDEX_FILE "
        f"git -C '{racer.path}' push -q origin HEAD:refs/heads/main || exit 1; fi\n"
    )
    hook.chmod(0o755)

    commit = slow.write_version("site_com_fetcher_v3", RECIPE, {}, "v3 (slow)")
    assert marker.exists()
    assert _git("--git-dir", str(remote), "rev-parse", "main") == commit
    assert {"site_com_fetcher_v2", "site_com_fetcher_v3"} <= _tree(remote, "main")
    log = _git("--git-dir", str(remote), "log", "--format=%s", "main").splitlines()
    assert log[:2] == ["v3 (slow)", "v2 (racer)"]  # rebased on top, history stays linear


def test_two_writers_sharing_one_cache_take_turns(tmp_path: Path, remote: Path) -> None:
    FetcherRepo(tmp_path / "shared", str(remote)).sync()
    errors: list[BaseException] = []

    def write(version: int) -> None:
        repo = FetcherRepo(tmp_path / "shared", str(remote))  # own instance, like a process
        try:
            repo.write_version(f"site_com_fetcher_v{version}", RECIPE, {"v": version}, "w")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(v,)) for v in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    names = {f"site_com_fetcher_v{v}" for v in (1, 2, 3)}
    assert names <= _tree(remote, "main")
    assert _git("-C", str(tmp_path / "shared"), "status", "--porcelain") == ""


def test_a_local_only_repository_needs_no_remote(tmp_path: Path) -> None:
    repo = FetcherRepo(tmp_path / "local")
    commit = repo.write_version("site_com_fetcher_v1", RECIPE, {"k": "v"}, "v1")
    assert commit == _git("-C", str(repo.path), "rev-parse", "HEAD")
    assert repo.read("site_com_fetcher_v1").provenance == {"k": "v"}
    unstaged = FetcherRepo(tmp_path / "local", auto_commit=False)
    assert unstaged.write_version("site_com_fetcher_v2", RECIPE, {}, "v2") is None
    assert _git("-C", str(repo.path), "rev-parse", "HEAD") == commit
    assert unstaged.read("site_com_fetcher_v2").kind == "recipe"


# -- errors --------------------------------------------------------------------------------------


@pytest.fixture()
def auth_server() -> Iterator[str]:
    """A real HTTP server that refuses every request with 401 (a Git host, wrong password)."""

    class Refuse(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("userinfo", "secret"),
    [("bot:hunter22secret", "hunter22secret"), ("ghp_tokenvalue123456", "ghp_tokenvalue123456")],
)
def test_refused_credentials_are_a_config_error_that_never_shows_them(
    tmp_path: Path, auth_server: str, userinfo: str, secret: str
) -> None:
    repo = FetcherRepo(tmp_path / "a", f"http://{userinfo}@{auth_server}/fetchers.git")
    with pytest.raises(ConfigError) as caught:
        repo.sync()
    assert isinstance(caught.value.__cause__, git.GitCommandError)
    shown = [str(caught.value), str(caught.value.__cause__), repr(repo)]
    assert all(secret not in text for text in shown), shown
    assert "fetch from the remote" in str(caught.value)


def test_git_failures_map_to_the_error_tree(tmp_path: Path) -> None:
    missing = FetcherRepo(tmp_path / "a", str(tmp_path / "no-such-remote.git"))
    with pytest.raises(ConfigError, match="does not appear to be a git repository") as caught:
        missing.sync()
    assert isinstance(caught.value.__cause__, git.GitCommandError)

    url = f"http://bot:hunter22secret@127.0.0.1:{_closed_port()}/fetchers.git"
    down = FetcherRepo(tmp_path / "b", url, network_timeout=20)
    with pytest.raises(InfrastructureError) as caught_down:
        down.sync()
    assert not isinstance(caught_down.value, ConfigError)
    assert "hunter22secret" not in str(caught_down.value)
    assert "hunter22secret" not in str(caught_down.value.__cause__)

    with socket.socket() as silent:  # accepts the connection, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        hung = FetcherRepo(
            tmp_path / "c", f"http://127.0.0.1:{silent.getsockname()[1]}/f.git", network_timeout=1
        )
        with pytest.raises(InfrastructureError, match="did not complete in 1 secs"):
            hung.sync()

    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file.txt").write_text("not a repo")
    with pytest.raises(ConfigError, match="is not a Git repository"):
        FetcherRepo(tmp_path / "junk").sync()


# -- DB ------------------------------------------------------------------------------------------


def test_allocation_numbers_every_version_once_under_contention(fetcher_db: FetcherDB) -> None:
    site = _site()
    barrier = threading.Barrier(6)
    got: list[int] = []

    def allocate() -> None:
        barrier.wait(10)
        got.append(fetcher_db.allocate_fetcher_version(site, "recipe").version)

    threads = [threading.Thread(target=allocate) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(got) == [1, 2, 3, 4, 5, 6]
    assert [v.fetcher_name for v in fetcher_db.fetcher_versions(site)] == [
        fetcher_name(site, n) for n in range(1, 7)
    ]
    assert {v.status for v in fetcher_db.fetcher_versions(site)} == {"candidate"}


def test_only_published_versions_are_latest_or_mapped(fetcher_db: FetcherDB) -> None:
    site = _site()
    v1 = fetcher_db.allocate_fetcher_version(site, "browser", provenance={"har": "x"})
    assert (v1.version, v1.status, v1.kind) == (1, "candidate", "browser")
    assert fetcher_db.latest_fetcher(site) is None
    with pytest.raises(ValueError, match="only published versions are mapped"):
        fetcher_db.map_channel(f"ch-{site}", v1.id)
    published = fetcher_db.mark_fetcher_published(v1.id, "a" * 40)
    assert (published.status, published.git_commit) == ("published", "a" * 40)
    assert published.published_at is not None
    assert fetcher_db.mark_fetcher_published(v1.id, "a" * 40) == published  # idempotent
    with pytest.raises(ValueError, match="is published"):
        fetcher_db.mark_fetcher_published(v1.id, "b" * 40)
    with pytest.raises(ValueError, match="already published"):
        fetcher_db.mark_fetcher_rejected(v1.id)
    v2 = fetcher_db.allocate_fetcher_version(site, "recipe")
    rejected = fetcher_db.mark_fetcher_rejected(v2.id, git_commit="c" * 40)
    assert rejected.status == "rejected"
    assert fetcher_db.latest_fetcher(site) == published
    with pytest.raises(ValueError, match="rejected"):
        fetcher_db.mark_fetcher_published(v2.id, "c" * 40)
    with pytest.raises(ValueError, match="unknown fetcher kind"):
        fetcher_db.allocate_fetcher_version(site, "shell")


def test_sites_whose_names_collide_are_refused(fetcher_db: FetcherDB) -> None:
    tag = uuid.uuid4().hex[:8]
    fetcher_db.allocate_fetcher_version(f"c{tag}.example", "recipe")
    with pytest.raises(ConfigError, match="taken by another site"):
        fetcher_db.allocate_fetcher_version(f"c{tag}_example", "recipe")


def test_remap_moves_every_channel_of_the_site_and_keeps_history(fetcher_db: FetcherDB) -> None:
    site, other = _site(), _site()
    ch1, ch2, ch3 = (f"ch{i}-{site}" for i in (1, 2, 3))

    def publish(s: str) -> int:
        version = fetcher_db.allocate_fetcher_version(s, "recipe")
        return fetcher_db.mark_fetcher_published(version.id, uuid.uuid4().hex).id

    v1, o1 = publish(site), publish(other)
    secret_config = {"page_size": 50, "api_key": "k-very-secret"}
    assert fetcher_db.map_channel(ch1, v1, secret_config) is True
    assert fetcher_db.map_channel(ch1, v1, secret_config) is False  # no change, no new row
    assert fetcher_db.map_channel(ch2, v1) is True
    assert fetcher_db.map_channel(ch3, o1) is True
    assert fetcher_db.channels_for_site(site) == [ch1, ch2]

    v2 = publish(site)
    assert fetcher_db.remap_site(site, v2) == [ch1, ch2]
    assert fetcher_db.channels_for_site(site) == [ch1, ch2]
    for channel in (ch1, ch2):
        moved = fetcher_db.channel_fetcher(channel)
        assert moved is not None and (moved.id, moved.version) == (v2, 2)
    other_mapping = fetcher_db.channel_fetcher(ch3)
    assert other_mapping is not None and other_mapping.id == o1
    mapping = fetcher_db.channel_mapping(ch1)
    assert mapping is not None and mapping.config == secret_config  # carried over, unsealed

    with fetcher_db.database.transaction() as sql:
        rows = sql.all(
            "SELECT fetcher_id, replaced_at, config_json::text FROM channel_fetcher_details"
            " WHERE channel_id = %s ORDER BY id",
            (ch1,),
        )
    assert all("k-very-secret" not in raw for _, _, raw in rows)  # sealed at rest
    assert [fetcher_id for fetcher_id, _, _ in rows] == [v1, v2]
    assert rows[0][1] is not None and rows[1][1] is None

    # Never backwards: remapping to the older version moves nobody.
    assert fetcher_db.remap_site(site, v1) == []
    with pytest.raises(ValueError, match="belongs to"):
        fetcher_db.remap_site(site, o1)
    assert fetcher_db.remap_site(site, v2) == []


# -- DB + Git: publishing --------------------------------------------------------------------------


def test_publish_and_keep_candidate_write_both_sides(
    fetcher_db: FetcherDB, tmp_path: Path, remote: Path
) -> None:
    site = _site()
    repo = FetcherRepo(tmp_path / "a", str(remote))
    v1 = publish_version(
        fetcher_db, repo, structure_id=site, files=RECIPE, provenance={"how": "deterministic"}
    )
    assert (v1.version, v1.status) == (1, "published")
    assert v1.git_commit == _git("--git-dir", str(remote), "rev-parse", "main")
    fetcher_db.map_channel(f"ch-{site}", v1.id)

    failed = keep_candidate(
        fetcher_db, repo, structure_id=site, files=RECIPE, provenance={"validation": "0/3"}
    )
    assert (failed.version, failed.status) == (2, "rejected")
    branch = f"refs/heads/candidates/{failed.fetcher_name}"
    assert failed.git_commit == _git("--git-dir", str(remote), "rev-parse", branch)
    assert failed.fetcher_name not in _tree(remote, "main")
    assert fetcher_db.latest_fetcher(site) == v1
    assert fetcher_db.channel_fetcher(f"ch-{site}") == v1


def _publish_in_process(
    database_url: str,
    secret_key: str,
    remote: str,
    cache: str,
    site: str,
    barrier: Any,
    results: Any,
) -> None:
    """One publisher: its own DB connection and its own clone (runs in a spawned process)."""
    db = FetcherDB(database_url, SecretCipher(secret_key), pool_size=1)
    try:
        repo = FetcherRepo(cache, remote)
        repo.sync()
        barrier.wait(60)
        files = {"recipe.yaml": f"# published by {cache}\n".encode()}
        version = publish_version(
            db, repo, structure_id=site, files=files, provenance={"cache": cache}
        )
        results.put((version.version, version.fetcher_name, version.git_commit))
    except BaseException as exc:  # the parent reports it
        results.put(("error", repr(exc), None))
    finally:
        db.close()


def test_two_processes_publishing_one_site_get_v2_and_v3(
    fetcher_db: FetcherDB, stack: StackEndpoints, tmp_path: Path, remote: Path
) -> None:
    site = _site()
    first = FetcherRepo(tmp_path / "first", str(remote))
    v1 = publish_version(fetcher_db, first, structure_id=site, files=RECIPE, provenance={})
    channels = [f"ch{i}-{site}" for i in range(3)]
    for channel in channels:
        fetcher_db.map_channel(channel, v1.id)

    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(
            target=_publish_in_process,
            args=(
                stack.database_url,
                stack.secret_key,
                str(remote),
                str(tmp_path / f"clone{i}"),
                site,
                barrier,
                results,
            ),
        )
        for i in (1, 2)
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    assert all(o[0] != "error" for o in outcomes), outcomes
    assert sorted(o[0] for o in outcomes) == [2, 3]

    names = {fetcher_name(site, n) for n in (1, 2, 3)}
    assert names <= _tree(remote, "main")
    versions = fetcher_db.fetcher_versions(site)
    assert [(v.version, v.status) for v in versions] == [
        (1, "published"),
        (2, "published"),
        (3, "published"),
    ]
    remote_commits = _git("--git-dir", str(remote), "rev-list", "main").splitlines()
    assert all(v.git_commit in remote_commits for v in versions)
    # Whatever order the two remaps ran in, every channel ends on the newest version.
    latest = fetcher_db.latest_fetcher(site)
    assert latest is not None and latest.version == 3
    assert {fetcher_db.channel_fetcher(c) for c in channels} == {latest}
    reader = FetcherRepo(tmp_path / "reader", str(remote))
    assert reader.read(latest.fetcher_name).provenance["cache"].endswith(("clone1", "clone2"))
