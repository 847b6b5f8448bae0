"""FTP/SFTP listing logic without a server: line parsers, host keys, the bounded walk, the pool."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime

import pytest

from amazoniax_dagster.core.errors import ConfigError, TransientError
from amazoniax_dagster.core.paths import FilePattern
from amazoniax_dagster.sources.base import RejectedFile, RemoteFile
from amazoniax_dagster.sources.ftp_protocol import (
    parse_features,
    parse_ftp_time,
    parse_list_line,
    parse_mlsd_line,
    parse_nlst_name,
    parse_size_reply,
    split_listing_lines,
)
from amazoniax_dagster.sources.remote_tree import (
    ConnectionPool,
    DirEntry,
    Unlistable,
    WalkLimits,
    join_remote,
    normalize_root,
    walk,
)
from amazoniax_dagster.sources.sftp_keys import HostKeys

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
ED25519_BLOB = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"

# --- MLSD -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "type=file;size=156;modify=20071029155301;unique=8012; music.mp3",
            DirEntry(
                "music.mp3", "file", 156, datetime(2007, 10, 29, 15, 53, 1, tzinfo=UTC), "8012"
            ),
        ),
        (
            "Type=DIR;Modify=20240101000000.123;Perm=el; ebooks",
            DirEntry(
                "ebooks", "dir", None, datetime(2024, 1, 1, 0, 0, 0, 123000, tzinfo=UTC), None
            ),
        ),
        ("type=file;size=1;  two  spaces", DirEntry(" two  spaces", "file", 1)),
        ("type=file;size=3; new\nline.csv", DirEntry("new\nline.csv", "file", 3)),
        ("type=OS.unix=slink:/etc;size=4; etc", DirEntry("etc", "link")),
        ("type=OS.unix=symlink; l", DirEntry("l", "link")),
        ("type=OS.unix=blk-8/0; sda", DirEntry("sda", "other")),
        ("type=file;size=x;modify=bogus; f", DirEntry("f", "file")),
        ("type=cdir;modify=20240101000000; .", None),
        ("type=pdir; ..", None),
        ("no facts here", None),
        ("type=file;size=1;", None),
    ],
)
def test_parse_mlsd_line(line: str, expected: DirEntry | None) -> None:
    assert parse_mlsd_line(line) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20250105123000", datetime(2025, 1, 5, 12, 30, tzinfo=UTC)),
        ("20250105123000.5", datetime(2025, 1, 5, 12, 30, 0, 500000, tzinfo=UTC)),
        ("20250105123060", datetime(2025, 1, 5, 12, 30, 59, tzinfo=UTC)),  # leap second
        ("20251305123000", None),
        ("2025", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_ftp_time(text: str | None, expected: datetime | None) -> None:
    assert parse_ftp_time(text) == expected


# --- LIST -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "-rw-r--r--   1 owner    group        1234 Jan 05 11:30 report.csv",
            DirEntry("report.csv", "file", 1234, datetime(2025, 1, 5, 11, 30, tzinfo=UTC)),
        ),
        (  # in the future this year: it was last year
            "-rw-r--r--   1 owner    group        1234 Dec 24 18:00 xmas.csv",
            DirEntry("xmas.csv", "file", 1234, datetime(2024, 12, 24, 18, 0, tzinfo=UTC)),
        ),
        (
            "drwxr-xr-x   2 1000     1000         4096 Jan  5  2019 old dir",
            DirEntry("old dir", "dir", None, datetime(2019, 1, 5, tzinfo=UTC)),
        ),
        (
            "lrwxrwxrwx   1 owner    group          10 Mar 01 09:00 latest -> 2025/x.csv",
            DirEntry("latest", "link", None, datetime(2025, 3, 1, 9, 0, tzinfo=UTC)),
        ),
        (  # no group, ACL marker after the mode
            "-rw-r--r--+ 1 ftp 42 Feb 28 2024 a.txt",
            DirEntry("a.txt", "file", 42, datetime(2024, 2, 28, tzinfo=UTC)),
        ),
        (
            "-rw-r--r-- 1 o g 3 Mar 09 10:00 new\nline.csv",
            DirEntry("new\nline.csv", "file", 3, datetime(2025, 3, 9, 10, 0, tzinfo=UTC)),
        ),
        (
            "-rw-r--r-- 1 o g 3 Mar 09 10:00  leading space",
            DirEntry(" leading space", "file", 3, datetime(2025, 3, 9, 10, 0, tzinfo=UTC)),
        ),
        (  # a month name the parser does not know: the size is kept, the time asked later
            "-rw-r--r-- 1 o g 3 Mär 09 10:00 german.csv",
            DirEntry("german.csv", "file", 3),
        ),
        ("-rw-r--r-- 1 o g 3 Feb 30 10:00 bad-date.csv", DirEntry("bad-date.csv", "file", 3)),
        (
            "crw-rw-rw- 1 root root 0 Mar 09 10:00 null",
            DirEntry("null", "other", None, datetime(2025, 3, 9, 10, 0, tzinfo=UTC)),
        ),
        ("total 12", None),
        ("01-05-25  12:30PM       1234 dos.csv", None),
        ("", None),
    ],
)
def test_parse_list_line(line: str, expected: DirEntry | None) -> None:
    assert parse_list_line(line, now=NOW) == expected


def test_split_listing_lines_keeps_a_bare_newline_inside_a_crlf_listing() -> None:
    data = b"a.csv\r\nnew\nline.csv\r\nb.csv\r\n"
    assert split_listing_lines(data) == [b"a.csv", b"new\nline.csv", b"b.csv"]
    assert split_listing_lines(b"a\nb\n") == [b"a", b"b"]  # a server that only sends LF
    assert split_listing_lines(b"") == []


def test_small_reply_parsers() -> None:
    assert parse_nlst_name("/data/x/a.csv", "/data/x") == "a.csv"
    assert parse_nlst_name("a.csv", "/data/x") == "a.csv"
    assert parse_nlst_name("sub/a.csv", ".") == "sub/a.csv"
    feat = "211-Features:\n MLST type*;size*;modify*;\n UTF8\n SIZE\n211 End"
    assert parse_features(feat) == {"MLST", "UTF8", "SIZE"}
    assert parse_size_reply("213 1234") == 1234
    assert parse_size_reply("213 abc") is None


# --- SFTP host keys ------------------------------------------------------------------------


def test_host_keys_accept_key_lines_known_hosts_lines_and_fingerprints() -> None:
    keys = HostKeys.parse(
        f"# comment\n\nssh-ed25519 {ED25519_BLOB} me@host\n"
        f"[sftp.example]:2222,10.0.0.1 ssh-ed25519 {ED25519_BLOB}\n"
        "SHA256:abcDEF123=\n"
    )
    assert len(keys.keys) == 1 and keys.fingerprints == {"SHA256:abcDEF123"}
    import base64

    blob = base64.b64decode(ED25519_BLOB)
    assert keys.accepts("ssh-ed25519", blob, "SHA256:other")
    assert keys.accepts("ssh-rsa", b"x", "SHA256:abcDEF123")
    assert not keys.accepts("ssh-rsa", b"x", "SHA256:other")
    assert keys.algorithms() == []  # a fingerprint does not say its type
    assert HostKeys.parse(f"ssh-ed25519 {ED25519_BLOB}").algorithms() == ["ssh-ed25519"]
    assert not HostKeys.parse(None)


@pytest.mark.parametrize(
    "text",
    [
        "not a key",
        "ssh-ed25519 %%%notbase64",
        f"ssh-rsa {ED25519_BLOB}",  # the blob says ed25519
    ],
)
def test_host_keys_refuse_garbage(text: str) -> None:
    with pytest.raises(ConfigError, match="host_key line 1"):
        HostKeys.parse(text)


# --- paths ---------------------------------------------------------------------------------


def test_remote_paths() -> None:
    assert normalize_root("/data/") == "/data"
    assert normalize_root("/") == "/"
    assert normalize_root("") == "."
    assert normalize_root("in/../out") == "out"
    assert join_remote("/", "a") == "/a"
    assert join_remote(".", "a") == "a"
    assert join_remote("/data", "a") == "/data/a"


# --- the walk ------------------------------------------------------------------------------


class FakeTree:
    """Directories as dicts of entries; records which directories were listed."""

    def __init__(self, dirs: dict[str, list[DirEntry]], targets: dict[str, DirEntry] | None = None):
        self.dirs = dirs
        self.targets = targets or {}
        self.listed: list[str] = []
        self.resolved: list[str] = []

    def list_dir(self, path: str) -> Iterable[DirEntry]:
        self.listed.append(path)
        if path not in self.dirs:
            raise Unlistable("550 No such directory")
        return self.dirs[path]

    def resolve(self, path: str, entry: DirEntry) -> DirEntry | None:
        self.resolved.append(path)
        return self.targets.get(path)


T0 = datetime(2025, 1, 1, tzinfo=UTC)


def f(name: str, size: int = 1) -> DirEntry:
    return DirEntry(name, "file", size, T0)


def d(name: str, identity: str | None = None) -> DirEntry:
    return DirEntry(name, "dir", identity=identity)


def run(tree: FakeTree, pattern: str, **kwargs: object) -> tuple[list[str], list[str]]:
    files, rejected = [], []
    for item in walk(tree, "/r", FilePattern.parse(pattern), **kwargs):  # type: ignore[arg-type]
        if isinstance(item, RemoteFile):
            files.append(item.relative_path)
        else:
            assert isinstance(item, RejectedFile)
            rejected.append(item.key)
    return files, rejected


def test_walk_recursive_and_flat() -> None:
    tree = FakeTree(
        {
            "/r": [f("b.csv"), d("sub"), f("a.csv"), f("x.txt"), d("."), d("..")],
            "/r/sub": [f("c.csv"), d("deep")],
            "/r/sub/deep": [f("d.csv")],
        }
    )
    assert run(tree, "**/*.csv") == (["a.csv", "b.csv", "sub/c.csv", "sub/deep/d.csv"], [])
    tree.listed.clear()
    assert run(tree, "*.csv") == (["a.csv", "b.csv"], [])
    assert tree.listed == ["/r"]  # a flat pattern never lists a subfolder
    assert run(tree, "sub/*.csv") == (["sub/c.csv"], [])


def test_walk_rejects_hostile_names_before_the_pattern() -> None:
    tree = FakeTree(
        {
            "/r": [
                f("..\\evil.csv"),
                f("new\nline.csv"),
                f("a/b.csv"),
                f(".."),
                f("bad\udcff.csv"),
                d("dir\nname"),
                f("ok.csv"),
            ],
        }
    )
    files, rejected = run(tree, "**/*.csv")
    assert files == ["ok.csv"]
    assert set(rejected) == {
        "/r/..\\evil.csv",
        "/r/new\nline.csv",
        "/r/a/b.csv",
        "/r/bad\udcff.csv",
        "/r/dir\nname",
    }
    assert tree.listed == ["/r"]


def test_walk_breaks_loops_by_identity() -> None:
    tree = FakeTree(
        {
            "/r": [f("a.csv"), d("loop", "root"), d("sub", "s")],
            "/r/sub": [f("b.csv"), d("up", "root"), d("again", "s")],
        }
    )
    assert run(tree, "**", root_identity="root") == (["a.csv", "sub/b.csv"], [])
    assert tree.listed == ["/r", "/r/sub"]


def test_walk_depth_and_size_bounds_are_config_errors() -> None:
    endless = FakeTree({})
    endless.dirs = _EndlessDirs()
    with pytest.raises(ConfigError, match="deeper than 5 levels"):
        run(endless, "**", limits=WalkLimits(max_depth=5))
    wide = FakeTree({"/r": [f(f"{i}.csv") for i in range(50)]})
    with pytest.raises(ConfigError, match="more than 10 entries"):
        run(wide, "**", limits=WalkLimits(max_entries=10))


class _EndlessDirs(dict[str, list[DirEntry]]):
    """Every directory holds another one: a loop the server does not show (no identity)."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> list[DirEntry]:
        return [f("x.csv"), d("loop")]


def test_walk_links_and_unknown_entries_are_resolved_only_when_needed() -> None:
    tree = FakeTree(
        {
            "/r": [
                DirEntry("to-file.csv", "link"),
                DirEntry("to-dir", "link"),
                DirEntry("skipped.txt", "link"),
                DirEntry("nlst.csv", "unknown"),
                DirEntry("nlst-dir", "unknown"),
                DirEntry("no-time.csv", "file", 5),
            ],
            "/r/nlst-dir": [f("e.csv")],
        },
        targets={
            "/r/to-file.csv": DirEntry("t", "file", 9, T0),
            "/r/nlst.csv": DirEntry("n", "file", 3, T0),
            "/r/nlst-dir": DirEntry("n", "dir"),
            "/r/no-time.csv": DirEntry("n", "file", 5, T0),
        },
    )
    files, _ = run(tree, "**/*.csv")
    assert files == ["nlst.csv", "no-time.csv", "to-file.csv", "nlst-dir/e.csv"]
    assert "/r/skipped.txt" not in tree.resolved and "/r/to-dir" not in tree.resolved


def test_walk_missing_root_is_a_config_error_and_a_missing_subfolder_is_skipped() -> None:
    with pytest.raises(ConfigError, match="cannot list remote_path '/r'"):
        run(FakeTree({}), "**")
    tree = FakeTree({"/r": [d("gone"), f("a.csv")]})
    assert run(tree, "**") == (["a.csv"], [])


def test_walk_reports_a_folder_it_cannot_read() -> None:
    class Undecodable(FakeTree):
        def list_dir(self, path: str) -> Iterable[DirEntry]:
            if path == "/r/weird":
                raise Unlistable("not UTF-8", reject=True)
            return super().list_dir(path)

    tree = Undecodable({"/r": [d("weird"), f("a.csv")]})
    assert run(tree, "**") == (["a.csv"], ["/r/weird"])


# --- the pool ------------------------------------------------------------------------------


class Conn:
    def __init__(self, n: int) -> None:
        self.n = n
        self.closed = False


def make_pool(
    size: int = 2, factory_error: Exception | None = None
) -> tuple[ConnectionPool[Conn], list[Conn]]:
    made: list[Conn] = []

    def factory() -> Conn:
        if factory_error is not None:
            made.append(Conn(-1))
            raise factory_error
        conn = Conn(len(made))
        made.append(conn)
        return conn

    def close(conn: Conn) -> None:
        conn.closed = True

    return ConnectionPool(factory, close=close, healthy=lambda c: not c.closed, size=size), made


def test_pool_reuses_returns_and_discards() -> None:
    pool, made = make_pool()
    with pool.borrow() as lease:
        first = lease.conn
    with pool.borrow() as lease:
        assert lease.conn is first  # given back, reused
    with pytest.raises(TransientError), pool.borrow() as lease:
        raise TransientError("cut")
    assert first.closed  # failed: closed, not returned
    with pool.borrow() as lease:
        assert lease.conn is not first
        lease.broken = True
    assert made[1].closed
    pool.close()


def test_pool_never_opens_more_than_its_size() -> None:
    pool, made = make_pool(size=2)
    in_use = 0
    peak = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal in_use, peak
        with pool.borrow():
            with lock:
                in_use += 1
                peak = max(peak, in_use)
            time.sleep(0.01)
            with lock:
                in_use -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak <= 2 and len(made) <= 2
    pool.close()
    assert all(c.closed for c in made)


def test_pool_remembers_a_refused_login() -> None:
    pool, made = make_pool(factory_error=ConfigError("login refused"))
    for _ in range(3):
        with pytest.raises(ConfigError, match="login refused"), pool.borrow():
            pass
    assert len(made) == 1  # one attempt, not three


def test_pool_does_not_remember_a_transient_failure() -> None:
    pool, made = make_pool(factory_error=TransientError("timeout"))
    for _ in range(2):
        with pytest.raises(TransientError), pool.borrow():
            pass
    assert len(made) == 2
