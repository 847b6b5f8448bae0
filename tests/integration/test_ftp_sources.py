"""FtpSource and SftpSource against real servers (pyftpdlib, asyncssh) on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from amazoniax_dagster.core.errors import ConfigError, TransientError, UnsafeURLError
from amazoniax_dagster.core.messages import FtpSourceConfig
from amazoniax_dagster.core.netpolicy import NetworkPolicy
from amazoniax_dagster.core.retry import RetryPolicy
from amazoniax_dagster.sources.base import RejectedFile, RemoteFile
from amazoniax_dagster.sources.ftp import FtpSource
from amazoniax_dagster.sources.remote_tree import WalkLimits
from amazoniax_dagster.sources.sftp import SftpSource
from amazoniax_dagster.sources.sftp_stream import READS_IN_FLIGHT
from tests.integration.ftp_servers import (
    HOST,
    PASSWORD,
    USER,
    FtpServer,
    SftpServer,
    TlsFiles,
    Tree,
    build_tree,
    make_tls,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

LOCAL = NetworkPolicy.from_env("127.0.0.0/8")
CSV_FILES = {"a.csv", "link.csv", "sub/c.csv", "sub/deeper/d.csv"}
HOSTILE = {"/data/bad\\name.csv", "/data/new\nline.csv"}

Source = FtpSource | SftpSource


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlsd_tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    # pyftpdlib's MLSD shows a symlinked directory as a plain one, so this tree has no link
    # to a folder inside the server root (the LIST and SFTP trees do).
    return build_tree(tmp_path_factory.mktemp("ftp"), escape_link=False)


@pytest.fixture(scope="module")
def full_tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    return build_tree(tmp_path_factory.mktemp("full"), non_utf8=True)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def ftp_server(mlsd_tree: Tree) -> Iterator[FtpServer]:
    with FtpServer(mlsd_tree.server_root) as server:
        yield server


@pytest.fixture(scope="module")
def list_server(full_tree: Tree) -> Iterator[FtpServer]:
    with FtpServer(full_tree.server_root, mlsd=False) as server:
        yield server


@pytest.fixture(scope="module")
def ftps_server(mlsd_tree: Tree, tls: TlsFiles) -> Iterator[FtpServer]:
    with FtpServer(mlsd_tree.server_root, tls=tls) as server:
        yield server


@pytest.fixture(scope="module")
def client_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


@pytest.fixture(scope="module")
def sftp_server(full_tree: Tree, client_key: asyncssh.SSHKey) -> Iterator[SftpServer]:
    public = client_key.export_public_key().decode()
    with SftpServer(full_tree.server_root, client_public_key=public) as server:
        yield server


def ftp_source(port: int, **overrides: Any) -> FtpSource:
    policy = overrides.pop("policy", LOCAL)
    fields: dict[str, Any] = {
        "host": HOST,
        "port": port,
        "username": USER,
        "password": PASSWORD,
        "remote_path": "/data",
        "file_pattern": "**/*.csv",
        "timeout_seconds": 5,
    }
    fields.update(overrides)
    return FtpSource(FtpSourceConfig(**fields), policy=policy)


def sftp_source(server: SftpServer, **overrides: Any) -> SftpSource:
    fields: dict[str, Any] = {
        "protocol": "sftp",
        "host": HOST,
        "port": server.port,
        "username": USER,
        "password": PASSWORD,
        "remote_path": "/data",
        "file_pattern": "**/*.csv",
        "host_key": server.host_key_line,
        "timeout_seconds": 5,
    }
    fields.update(overrides)
    return SftpSource(FtpSourceConfig(**fields), policy=LOCAL)


def listing(source: Source) -> tuple[dict[str, RemoteFile], dict[str, RejectedFile]]:
    found: dict[str, RemoteFile] = {}
    rejected: dict[str, RejectedFile] = {}
    for item in source.list_files():
        if isinstance(item, RemoteFile):
            found[item.relative_path] = item
        else:
            rejected[item.key] = item
    return found, rejected


def download(source: Source, remote: RemoteFile) -> bytes:
    chunks = []
    with source.open(remote) as stream:
        while chunk := stream.read(64 * 1024):
            chunks.append(chunk)
    return b"".join(chunks)


def mtime_of(path: Path) -> datetime:
    return datetime.fromtimestamp(int(os.stat(path).st_mtime), UTC)


@pytest.fixture()
def closing() -> Iterator[list[Source]]:
    """Sources to close after the test."""
    sources: list[Source] = []
    yield sources
    for source in sources:
        source.close()


# --- FTP ------------------------------------------------------------------------------------


def test_ftp_recursive_listing_with_mlsd(
    ftp_server: FtpServer, mlsd_tree: Tree, closing: list[Source]
) -> None:
    source = ftp_source(ftp_server.port)
    closing.append(source)
    found, rejected = listing(source)
    assert set(found) == CSV_FILES  # the loop/ link is listed once (MLSD unique), outside/ not
    assert set(rejected) == HOSTILE
    remote = found["sub/deeper/d.csv"]
    assert remote.key == "/data/sub/deeper/d.csv"
    assert remote.size == len(mlsd_tree.files["sub/deeper/d.csv"])
    assert remote.mtime == mtime_of(mlsd_tree.data / "sub/deeper/d.csv")
    assert remote.etag is None


def test_ftp_non_recursive_pattern_does_not_descend(
    ftp_server: FtpServer, closing: list[Source]
) -> None:
    source = ftp_source(ftp_server.port, file_pattern="*.csv")
    closing.append(source)
    with ftp_server.counts.lock:
        before = len(ftp_server.counts.commands)
    found, rejected = listing(source)
    assert set(found) == {"a.csv", "link.csv"}
    assert set(rejected) == HOSTILE
    with ftp_server.counts.lock:
        listed = [c for c in ftp_server.counts.commands[before:] if c.startswith("MLSD")]
    assert len(listed) == 1 and listed[0].endswith("/data")


def test_ftp_reads_every_file_byte_for_byte(
    ftp_server: FtpServer, mlsd_tree: Tree, closing: list[Source]
) -> None:
    source = ftp_source(ftp_server.port, file_pattern="**")
    closing.append(source)
    found, _ = listing(source)
    for rel, content in mlsd_tree.files.items():
        assert download(source, found[rel]) == content
    assert download(source, found["link.csv"]) == mlsd_tree.files["a.csv"]


def test_ftp_parallel_downloads_use_a_bounded_pool(mlsd_tree: Tree, closing: list[Source]) -> None:
    with FtpServer(mlsd_tree.server_root) as server:
        source = ftp_source(server.port, file_pattern="**", max_connections=2)
        closing.append(source)
        found, _ = listing(source)
        wanted = [found[rel] for rel in mlsd_tree.files] * 3
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda r: download(source, r), wanted))
        assert results == [mlsd_tree.files[r.relative_path] for r in wanted]
        assert len(server.counts.logins) <= 2  # one login per pooled connection


def test_ftp_wrong_password_is_one_attempt_and_never_shown(
    ftp_server: FtpServer, closing: list[Source]
) -> None:
    with ftp_server.counts.lock:
        before = len(ftp_server.counts.logins)
    source = ftp_source(ftp_server.port, password="wrong-Pa55")
    closing.append(source)
    with pytest.raises(ConfigError) as info:
        listing(source)
    message = str(info.value)
    assert HOST in message and USER in message and "wrong-Pa55" not in message
    with pytest.raises(ConfigError):  # later borrowers get the error without a new login
        listing(source)
    with ftp_server.counts.lock:
        assert ftp_server.counts.logins[before:] == [f"failed:{USER}"]


def test_ftp_missing_remote_path_is_a_config_error(
    ftp_server: FtpServer, closing: list[Source]
) -> None:
    source = ftp_source(ftp_server.port, remote_path="/no/such/folder")
    closing.append(source)
    with pytest.raises(ConfigError, match="remote_path"):
        listing(source)


@pytest.mark.parametrize("mode", ["426", "vanish"])
def test_ftp_transfer_cut_midway_is_transient_and_retried(
    mlsd_tree: Tree, mode: str, closing: list[Source]
) -> None:
    with FtpServer(mlsd_tree.server_root, drop_file="big.bin", drop_mode=mode) as server:
        source = ftp_source(server.port, file_pattern="big.bin")
        closing.append(source)
        found, _ = listing(source)
        with pytest.raises(TransientError) as info:
            download(source, found["big.bin"])
        # 426: the data ended early and the final reply said why; vanish: a reset mid-read.
        # (the server's reply text, not a bare "426" that a random port number may contain)
        assert ("426 Connection closed" in str(info.value)) == (mode == "426")
        # What the engine does next: retry; the broken connection was not reused.
        content = RetryPolicy(retries=1, delay_seconds=0).call(
            lambda: download(source, found["big.bin"]), what="download"
        )
        assert content == mlsd_tree.files["big.bin"]
        assert server.counts.downloads["big.bin"] == 2


def test_depth_bound_on_a_real_tree_is_a_config_error(
    ftp_server: FtpServer, sftp_server: SftpServer, closing: list[Source]
) -> None:
    ftp = FtpSource(
        FtpSourceConfig(
            host=HOST,
            port=ftp_server.port,
            username=USER,
            password=PASSWORD,
            remote_path="/data",
            file_pattern="**",
        ),
        policy=LOCAL,
        limits=WalkLimits(max_depth=1),
    )
    sftp = SftpSource(
        FtpSourceConfig(
            protocol="sftp",
            host=HOST,
            port=sftp_server.port,
            username=USER,
            password=PASSWORD,
            remote_path="/data",
            file_pattern="**",
            host_key=sftp_server.host_key_line,
        ),
        policy=LOCAL,
        limits=WalkLimits(max_depth=1),
    )
    closing.extend([ftp, sftp])
    for source in (ftp, sftp):
        with pytest.raises(ConfigError, match="deeper than 1 levels"):
            listing(source)
    assert set(listing(ftp_source(ftp_server.port, file_pattern="*.csv"))[0]) == {
        "a.csv",
        "link.csv",
    }  # a flat pattern never gets near the bound


def test_ftp_a_transfer_left_unfinished_does_not_poison_the_pool(
    mlsd_tree: Tree, closing: list[Source]
) -> None:
    with FtpServer(mlsd_tree.server_root) as server:
        source = ftp_source(server.port, file_pattern="**", max_connections=1)
        closing.append(source)
        found, _ = listing(source)
        with source.open(found["big.bin"]) as stream:
            assert len(stream.read(1024)) > 0  # then stop reading
        assert download(source, found["a.csv"]) == mlsd_tree.files["a.csv"]
        assert server.counts.logins == [f"ok:{USER}", f"ok:{USER}"]  # a fresh connection


def test_ftp_list_fallback_parses_ls_lines_and_skips_links(
    list_server: FtpServer, full_tree: Tree, closing: list[Source]
) -> None:
    source = ftp_source(list_server.port)
    closing.append(source)
    found, rejected = listing(source)
    # loop/, outside/ and escape/ are links to folders: never followed; weird/'s name is
    # mangled by pyftpdlib into a harmless one.
    assert set(found) - {"weird/bad?.csv"} == CSV_FILES
    assert set(rejected) == HOSTILE
    with list_server.counts.lock:
        assert not any(c.startswith("MLSD") for c in list_server.counts.commands)
    a = found["a.csv"]
    assert a.size == len(full_tree.files["a.csv"])
    assert a.mtime is not None and a.mtime.tzinfo is UTC
    assert abs((a.mtime - mtime_of(full_tree.data / "a.csv")).total_seconds()) < 60
    link = found["link.csv"]  # a link to a file: SIZE/MDTM give the target's size and time
    assert link.size == len(full_tree.files["a.csv"])
    assert download(source, link) == full_tree.files["a.csv"]


def test_ftps_refuses_an_unknown_ca_and_works_with_ca_cert_pem(
    ftps_server: FtpServer, tls: TlsFiles, mlsd_tree: Tree, closing: list[Source]
) -> None:
    untrusted = ftp_source(ftps_server.port, protocol="ftps")
    closing.append(untrusted)
    with pytest.raises(ConfigError, match="certificate"):
        listing(untrusted)
    trusted = ftp_source(ftps_server.port, protocol="ftps", ca_cert_pem=tls.ca_pem)
    closing.append(trusted)
    found, rejected = listing(trusted)
    assert set(found) == CSV_FILES and set(rejected) == HOSTILE
    assert download(trusted, found["sub/c.csv"]) == mlsd_tree.files["sub/c.csv"]
    with ftps_server.counts.lock:
        assert f"failed:{USER}" not in ftps_server.counts.logins  # no password before TLS


def test_policy_refuses_loopback_before_connecting(
    ftp_server: FtpServer, closing: list[Source]
) -> None:
    with ftp_server.counts.lock:
        before = len(ftp_server.counts.logins)
    source = ftp_source(ftp_server.port, policy=NetworkPolicy())
    closing.append(source)
    with pytest.raises(UnsafeURLError):
        listing(source)
    with ftp_server.counts.lock:
        assert len(ftp_server.counts.logins) == before


@pytest.mark.parametrize("protocol", ["ftp", "sftp"])
def test_a_silent_server_times_out_as_transient(
    silent_port: int, protocol: str, closing: list[Source]
) -> None:
    config = FtpSourceConfig(
        host=HOST,
        port=silent_port,
        protocol=protocol,
        password=PASSWORD,
        timeout_seconds=0.5,
        host_key_policy="accept_any",
    )
    source: Source = (
        FtpSource(config, policy=LOCAL) if protocol == "ftp" else SftpSource(config, policy=LOCAL)
    )
    closing.append(source)
    started = time.monotonic()
    with pytest.raises(TransientError):
        listing(source)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("protocol", ["ftp", "sftp"])
def test_connection_refused_is_transient(protocol: str, closing: list[Source]) -> None:
    with socket.create_server((HOST, 0)) as probe:
        port = probe.getsockname()[1]
    config = FtpSourceConfig(
        host=HOST, port=port, protocol=protocol, timeout_seconds=2, host_key_policy="accept_any"
    )
    source: Source = (
        FtpSource(config, policy=LOCAL) if protocol == "ftp" else SftpSource(config, policy=LOCAL)
    )
    closing.append(source)
    with pytest.raises(TransientError):
        listing(source)


# --- SFTP -----------------------------------------------------------------------------------


def test_sftp_recursive_listing(
    sftp_server: SftpServer, full_tree: Tree, closing: list[Source]
) -> None:
    source = sftp_source(sftp_server)
    closing.append(source)
    found, rejected = listing(source)
    assert set(found) == CSV_FILES  # loop/, outside/, escape/: links to folders, not followed
    assert set(rejected) == HOSTILE | {"/data/weird"}  # paramiko cannot list non-UTF-8 names
    remote = found["sub/c.csv"]
    assert remote.key == "/data/sub/c.csv"
    assert remote.size == len(full_tree.files["sub/c.csv"])
    assert remote.mtime == mtime_of(full_tree.data / "sub/c.csv")
    assert found["link.csv"].size == len(full_tree.files["a.csv"])


def test_sftp_non_recursive_pattern_does_not_descend(
    sftp_server: SftpServer, closing: list[Source]
) -> None:
    source = sftp_source(sftp_server, file_pattern="*.csv")
    closing.append(source)
    found, rejected = listing(source)
    assert set(found) == {"a.csv", "link.csv"}
    assert set(rejected) == HOSTILE  # weird/ is not even looked at


def test_sftp_reads_every_file_byte_for_byte_in_parallel(
    sftp_server: SftpServer, full_tree: Tree, closing: list[Source]
) -> None:
    source = sftp_source(sftp_server, file_pattern="**", max_connections=3)
    closing.append(source)
    found, _ = listing(source)
    wanted = [found[rel] for rel in full_tree.files] * 2
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda r: download(source, r), wanted))
    assert results == [full_tree.files[r.relative_path] for r in wanted]


def read_listed(source: Source, remote: RemoteFile) -> bytes:
    """As the sync engine reads a small file: its listed size and one byte more, in one call."""
    with source.open(remote) as stream:
        return stream.read((remote.size or 0) + 1)


def write_files(root: Path, sizes: dict[str, int]) -> dict[str, bytes]:
    (root / "data").mkdir(parents=True)
    files = {name: os.urandom(size) for name, size in sizes.items()}
    for name, content in files.items():
        (root / "data" / name).write_bytes(content)
    return files


def test_sftp_reads_ask_for_whole_replies_and_once_more_for_the_end(
    tmp_path: Path, closing: list[Source]
) -> None:
    sizes = {"small.bin": 100 * 1024, "large.bin": 600 * 1024, "huge.bin": 5 * 1024 * 1024}
    files = write_files(tmp_path, sizes)
    with SftpServer(tmp_path) as server:
        source = sftp_source(server, file_pattern="*.bin")
        closing.append(source)
        found, _ = listing(source)
        assert read_listed(source, found["small.bin"]) == files["small.bin"]
        assert download(source, found["large.bin"]) == files["large.bin"]
        assert download(source, found["huge.bin"]) == files["huge.bin"]
        # Replies of up to 255 KiB (what OpenSSH answers), then one request meets the end.
        assert server.counts.reads["small.bin"] == 2
        assert server.counts.reads["large.bin"] == 3 + 1
        assert server.counts.reads["huge.bin"] == 21 + 1
        assert source.reply_limit == 255 * 1024  # the server answered every read in full


def test_sftp_large_file_keeps_reads_in_flight(
    tmp_path: Path, closing: list[Source], monkeypatch: pytest.MonkeyPatch
) -> None:
    import paramiko

    files = write_files(tmp_path, {"huge.bin": 5 * 1024 * 1024})
    in_flight: list[int] = []
    read_response = paramiko.SFTPClient._read_response

    def counting(client: Any, waitfor: int | None = None) -> Any:
        # Requests sent and not answered yet, of an open file (paramiko keeps ``type(None)``
        # for requests whose caller waits for the reply, such as listing's).
        in_flight.append(sum(not isinstance(f, type) for f in client._expecting.values()))
        return read_response(client, waitfor)

    monkeypatch.setattr(paramiko.SFTPClient, "_read_response", counting)
    with SftpServer(tmp_path) as server:
        source = sftp_source(server, file_pattern="*.bin")
        closing.append(source)
        found, _ = listing(source)
        assert download(source, found["huge.bin"]) == files["huge.bin"]
    assert 1 < max(in_flight) <= READS_IN_FLIGHT  # never one request at a time, never more


@pytest.mark.parametrize("max_read", [40 * 1024, 10 * 1024])
def test_sftp_server_that_answers_reads_short_is_read_whole_and_asked_less(
    tmp_path: Path, closing: list[Source], max_read: int
) -> None:
    sizes = {"first.bin": 100 * 1024, "second.bin": 100 * 1024, "tiny.bin": 5 * 1024}
    files = write_files(tmp_path, sizes | {"large.bin": 300 * 1024})
    with SftpServer(tmp_path, max_read=max_read) as server:
        source = sftp_source(server, file_pattern="*.bin")
        closing.append(source)
        found, _ = listing(source)
        assert read_listed(source, found["first.bin"]) == files["first.bin"]
        # Data followed a short reply: the server answers no more than that.
        assert source.reply_limit == max_read
        for name in ("second.bin", "tiny.bin"):
            assert read_listed(source, found[name]) == files[name]
        assert download(source, found["large.bin"]) == files["large.bin"]
        assert server.counts.reads["tiny.bin"] == 2
        # Asked in pieces the server answers whole: 300 KiB and the end, nothing asked twice.
        assert server.counts.reads["large.bin"] == -(-300 * 1024 // max_read) + 1


def test_sftp_key_authentication(
    sftp_server: SftpServer, client_key: asyncssh.SSHKey, closing: list[Source]
) -> None:
    private = client_key.export_private_key().decode()
    source = sftp_source(sftp_server, password=None, private_key=private, file_pattern="a.csv")
    closing.append(source)
    found, _ = listing(source)
    assert set(found) == {"a.csv"}
    stranger = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    refused = sftp_source(sftp_server, password=None, private_key=stranger)
    closing.append(refused)
    with pytest.raises(ConfigError, match="refused"):
        listing(refused)


def test_sftp_wrong_password_is_one_attempt_and_never_shown(
    sftp_server: SftpServer, closing: list[Source]
) -> None:
    with sftp_server.counts.lock:
        before = len(sftp_server.counts.logins)
    source = sftp_source(sftp_server, password="wrong-Pa55")
    closing.append(source)
    with pytest.raises(ConfigError) as info:
        listing(source)
    message = str(info.value)
    assert HOST in message and USER in message and "wrong-Pa55" not in message
    with pytest.raises(ConfigError):
        listing(source)
    with sftp_server.counts.lock:
        assert sftp_server.counts.logins[before:] == [f"failed:{USER}"]


def test_sftp_host_key_is_verified_before_any_password(
    sftp_server: SftpServer, closing: list[Source]
) -> None:
    with sftp_server.counts.lock:
        before = len(sftp_server.counts.logins)
    unconfigured = sftp_source(sftp_server, host_key=None)
    closing.append(unconfigured)
    with pytest.raises(ConfigError, match="no host_key") as info:
        listing(unconfigured)
    assert sftp_server.host_key_line.split()[1] in str(info.value)  # shown, to check and paste
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    wrong = sftp_source(sftp_server, host_key=other)
    closing.append(wrong)
    with pytest.raises(ConfigError, match="does not match"):
        listing(wrong)
    with sftp_server.counts.lock:
        assert len(sftp_server.counts.logins) == before  # the password was never sent


def test_sftp_host_key_by_fingerprint_or_accept_any(
    sftp_server: SftpServer, closing: list[Source]
) -> None:
    import paramiko

    blob = sftp_server.host_key_line.split()[1]
    fingerprint = paramiko.PKey.from_type_string("ssh-ed25519", _b64(blob)).fingerprint
    for overrides in (
        {"host_key": f"# pinned\n{fingerprint}\n"},
        {"host_key": f"[{HOST}]:{sftp_server.port} {sftp_server.host_key_line}"},
        {"host_key": None, "host_key_policy": "accept_any"},
    ):
        source = sftp_source(sftp_server, file_pattern="a.csv", **overrides)
        closing.append(source)
        assert set(listing(source)[0]) == {"a.csv"}


def test_sftp_missing_remote_path_is_a_config_error(
    sftp_server: SftpServer, closing: list[Source]
) -> None:
    source = sftp_source(sftp_server, remote_path="/no/such/folder")
    closing.append(source)
    with pytest.raises(ConfigError, match="remote_path"):
        listing(source)


@pytest.mark.parametrize(
    ("size", "read"),
    # 100 KiB is one reply: the cut meets the request that looks for the end of the file.
    [(300 * 1024, download), (100 * 1024, read_listed)],
    ids=["pipelined", "one-reply"],
)
def test_sftp_connection_cut_midway_is_transient_and_retried(
    tmp_path: Path, closing: list[Source], size: int, read: Callable[[Source, RemoteFile], bytes]
) -> None:
    files = write_files(tmp_path, {"big.bin": size})
    with SftpServer(tmp_path, drop_file="big.bin") as server:
        source = sftp_source(server, file_pattern="big.bin")
        closing.append(source)
        found, _ = listing(source)
        with pytest.raises(TransientError):
            read(source, found["big.bin"])
        content = RetryPolicy(retries=1, delay_seconds=0).call(
            lambda: read(source, found["big.bin"]), what="download"
        )
        assert content == files["big.bin"]
        assert server.counts.downloads["big.bin"] == 2
        assert server.counts.logins == [f"ok:{USER}", f"ok:{USER}"]  # a new SSH connection


def _b64(text: str) -> bytes:
    import base64

    return base64.b64decode(text)
